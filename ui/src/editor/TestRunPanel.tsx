/** A test run's overview (side panel with nothing selected) and the banner over the canvas. */
import type { Simulation } from '../api/types';
import { IconClose, IconPlay } from '../components/icons';
import { Button } from '../components/ui';
import { countStates, type NodeResults } from '../model/runs';
import { DocumentList } from '../runs/ResultDetails';
import { NodeStateBadge, RunStatusBadge } from '../runs/StateBadge';

const OUTCOME_TEXT: Record<string, string> = {
  succeeded: 'A payment like this one would succeed.',
  failed: 'A payment like this one would fail: a task ends in failure and nothing handles it.',
  aborted: 'A payment like this one would be aborted by an abort task.',
};

export function TestRunBanner({ simulation, results, onRerun, onClear }: { simulation: Simulation; results: NodeResults; onRerun: () => void; onClear: () => void }) {
  const counts = countStates(results);
  return (
    <div className={`test-run-banner is-${simulation.status}`} role="status" data-testid="test-run-banner">
      <IconPlay size={14} />
      <span className="test-run-text">
        <strong>Test run</strong>
        <RunStatusBadge status={simulation.status} />
        <span className="test-run-counts">
          {simulation.path.length} of {results.size} nodes ran
          {counts.skipped > 0 ? ` · ${counts.skipped} skipped` : ''}
          {simulation.documents && simulation.documents.length > 0 ? ` · ${simulation.documents.length} document${simulation.documents.length === 1 ? '' : 's'}` : ''}
        </span>
      </span>
      <Button size="sm" onClick={onRerun}>
        Edit event &amp; run again
      </Button>
      <Button size="sm" variant="ghost" icon={<IconClose size={14} />} onClick={onClear} aria-label="Clear the test run" title="Clear the test run" />
    </div>
  );
}

export function TestRunPanel({ simulation, results, onPickNode }: { simulation: Simulation; results: NodeResults; onPickNode: (nodeId: string) => void }) {
  const counts = countStates(results);
  const notRun = [...results.values()].filter((result) => result.step === undefined);
  return (
    <aside className="side-panel" aria-label="Test run">
      <header className="side-panel-header">
        <div className="side-panel-titles">
          <span className="side-panel-kind">Test run · not stored</span>
          <h2>Outcome</h2>
        </div>
        <RunStatusBadge status={simulation.status} large />
      </header>
      <div className="side-panel-body">
        <section className="panel-section">
          <p className="panel-help">{OUTCOME_TEXT[simulation.status] ?? `The run would end as ${simulation.status}.`}</p>
          <dl className="stats">
            <div>
              <dt>Ran</dt>
              <dd>{simulation.path.length}</dd>
            </div>
            <div>
              <dt>Success</dt>
              <dd className="state-success">{counts.success}</dd>
            </div>
            <div>
              <dt>Failure</dt>
              <dd className={counts.failure > 0 ? 'state-failure' : undefined}>{counts.failure}</dd>
            </div>
            <div>
              <dt>Skipped</dt>
              <dd>{counts.skipped}</dd>
            </div>
          </dl>
        </section>
        <section className="panel-section" aria-label="Path">
          <div className="panel-section-header">
            <h3>Path</h3>
            <span className="panel-section-note">in the order evaluated</span>
          </div>
          <ol className="path-list">
            {simulation.path.map((nodeId, index) => {
              const result = results.get(nodeId);
              return (
                <li key={nodeId}>
                  <button type="button" className="path-row" onClick={() => onPickNode(nodeId)} aria-label={`Step ${index + 1}: ${nodeId}, ${result?.state ?? 'pending'}`}>
                    <span className="path-step">{index + 1}</span>
                    <span className="path-node mono">{nodeId}</span>
                    {result ? <NodeStateBadge state={result.state} /> : null}
                  </button>
                </li>
              );
            })}
            {notRun.map((result) => (
              <li key={result.nodeId}>
                <button type="button" className="path-row is-not-run" onClick={() => onPickNode(result.nodeId)} aria-label={`${result.nodeId}, ${result.state}`}>
                  <span className="path-step">–</span>
                  <span className="path-node mono">{result.nodeId}</span>
                  <NodeStateBadge state={result.state} />
                </button>
              </li>
            ))}
          </ol>
        </section>
        <section className="panel-section" aria-label="Documents it would create">
          <div className="panel-section-header">
            <h3>Documents it would create</h3>
            <span className="panel-section-note">{simulation.documents?.length ?? 0}</span>
          </div>
          <DocumentList documents={simulation.documents ?? []} onPickNode={onPickNode} />
        </section>
        <section className="panel-section">
          <p className="panel-help">Select a node to see what its expectations found, its resolved parameters and its output. Any change to the flow clears the test run.</p>
        </section>
      </div>
    </aside>
  );
}
