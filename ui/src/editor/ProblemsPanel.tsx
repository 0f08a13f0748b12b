/** The validation problems under the canvas; a click selects the node at fault. */
import { IconAlert, IconChevronDown, IconChevronRight } from '../components/icons';
import type { LocatedProblem } from '../model/problems';
import { RichText } from '../components/ui';

export function ProblemsPanel({
  problems,
  open,
  onToggle,
  onPick,
}: {
  problems: readonly LocatedProblem[];
  open: boolean;
  onToggle: () => void;
  onPick: (problem: LocatedProblem) => void;
}) {
  if (problems.length === 0) return null;
  return (
    <section className={`problems-panel${open ? ' is-open' : ''}`} aria-label="Problems">
      <button type="button" className="problems-header" aria-expanded={open} onClick={onToggle}>
        {open ? <IconChevronDown size={14} /> : <IconChevronRight size={14} />}
        <IconAlert size={14} className="problems-icon" />
        <span>
          {problems.length} problem{problems.length > 1 ? 's' : ''} — the server would refuse to save this flow
        </span>
      </button>
      {open ? (
        <ul className="problems-list">
          {problems.map((problem) => (
            <li key={problem.key}>
              <button type="button" className="problem-item" onClick={() => onPick(problem)} aria-label={`${problem.nodeId ?? 'Rule set'}: ${problem.message}`}>
                <span className="problem-node mono">{problem.nodeId ?? 'rule set'}</span>
                <span className="problem-text">
                  <span className="problem-message">
                    <RichText text={problem.message} />
                  </span>
                  {problem.hint ? (
                    <span className="problem-hint">
                      <RichText text={problem.hint} />
                    </span>
                  ) : null}
                </span>
                <span className="problem-path mono">{problem.field || problem.path}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
