/**
 * The right-hand panel: the selected node's settings (id, dependencies and
 * trigger, then its kind's own panel), the selected dependency, or an
 * overview of the flow when nothing is selected.
 */
import { useEffect, useRef, useState } from 'react';
import { IconAlert, IconArrowRight, IconCheck, IconPlus, IconTrash } from '../components/icons';
import { Button, Field, Kbd, RichText, Segmented } from '../components/ui';
import type { TaskSpec } from '../model/catalogue';
import { edgeState, type FlowEdge, type FlowNode } from '../model/convert';
import type { PathSuggestion } from '../model/paths';
import type { LocatedProblem } from '../model/problems';
import type { NodeResult } from '../model/runs';
import { NodeResultDetails } from '../runs/ResultDetails';
import type { DependencyState, Trigger } from '../model/rules';
import { NODE_SPECS } from './nodes';
import type { FlowDocument } from './useFlowDocument';
import type { ValidationState } from './useValidation';

export function NodePanel({
  node,
  incoming,
  nodeIds,
  doc,
  tasks,
  problems,
  suggestions,
  readOnly,
  result,
}: {
  node: FlowNode;
  incoming: readonly FlowEdge[];
  /** Every node id of the flow, for adding a dependency from the keyboard. */
  nodeIds: readonly string[];
  doc: FlowDocument;
  tasks: ReadonlyMap<string, TaskSpec>;
  problems: readonly LocatedProblem[];
  suggestions: readonly PathSuggestion[];
  readOnly: boolean;
  /** What the test run did at this node, shown above its settings. */
  result?: NodeResult | undefined;
}) {
  const spec = NODE_SPECS[node.data.rule.node_type];
  const rule = node.data.rule;
  const Panel = spec.Panel;
  const trigger: Trigger = rule.trigger ?? 'all';
  const dependencyProblems = problems.filter((problem) => problem.field.startsWith('depends_on') || problem.field === 'trigger');
  const general = problems.filter((problem) => problem.field === '' || problem.field === 'node_id' || problem.field === 'node_type');
  const body = useRef<HTMLDivElement>(null);

  // Opened on a node with problems: bring the first field at fault into view.
  useEffect(() => {
    body.current?.querySelector('[aria-invalid="true"]')?.scrollIntoView({ block: 'center' });
    // Only when another node is opened, not on every edit.
  }, [node.id]);

  return (
    <aside className="side-panel" aria-label={`Settings of ${node.id}`}>
      <header className="side-panel-header">
        <span className={`flow-node-icon flow-node-icon-${spec.kind}`}>
          <spec.Icon size={18} rule={rule} />
        </span>
        <div className="side-panel-titles">
          <span className="side-panel-kind">{spec.label(rule, tasks)}</span>
          <h2 className="mono">{node.id}</h2>
        </div>
        {readOnly ? null : (
          <Button variant="ghost" icon={<IconTrash />} aria-label={`Delete ${node.id}`} title="Delete node (Delete)" onClick={() => doc.removeNodes([node.id])} />
        )}
      </header>
      <div className="side-panel-body" ref={body}>
        {problems.length > 0 ? (
          <div className="node-problems" role="status">
            <IconAlert size={14} />
            <span>
              {problems.length} problem{problems.length > 1 ? 's' : ''} to fix before saving
            </span>
          </div>
        ) : null}
        {result ? (
          <div className="panel-result">
            <NodeResultDetails result={result} mode="simulation" />
          </div>
        ) : null}
        <section className="panel-section" aria-label="Node">
          <RenameField key={node.id} nodeId={node.id} doc={doc} readOnly={readOnly} problems={general} />
        </section>

        <section className="panel-section" aria-label="Runs after">
          <div className="panel-section-header">
            <h3>Runs after</h3>
            {incoming.length > 1 ? (
              <Segmented<Trigger>
                label="Trigger"
                value={trigger}
                disabled={readOnly}
                options={[
                  { value: 'all', label: 'All', title: 'Every dependency must end in its state' },
                  { value: 'any', label: 'Any', title: 'One dependency ending in its state is enough' },
                ]}
                onChange={(value) => doc.updateRule(node.id, (current) => ({ ...current, trigger: value }), `${node.id}:trigger`)}
              />
            ) : null}
          </div>
          {incoming.length === 0 ? (
            <p className="panel-help">A root: it runs as soon as the payment arrives. Drag from another node’s output handle to this node to make it wait.</p>
          ) : (
            <>
              <p className="panel-help">
                {incoming.length === 1 ? 'Runs when this dependency ends in its state.' : trigger === 'any' ? 'Runs when any one of these ends in its state.' : 'Runs when every one of these ends in its state.'}
              </p>
              <ul className="dependency-list">
                {incoming.map((edge) => (
                  <li key={edge.id}>
                    <span className="mono dependency-source" title={edge.source}>
                      {edge.source}
                    </span>
                    <select
                      className={`input state-select state-select-${edgeState(edge)}`}
                      aria-label={`State of ${edge.source} that ${node.id} waits for`}
                      value={edgeState(edge)}
                      disabled={readOnly}
                      onChange={(event) => doc.setEdgeState(edge.id, event.target.value as DependencyState)}
                    >
                      <option value="success">on success</option>
                      <option value="failure">on failure</option>
                    </select>
                    {readOnly ? null : (
                      <Button variant="ghost" size="sm" icon={<IconTrash size={14} />} aria-label={`Remove dependency on ${edge.source}`} onClick={() => doc.removeEdge(edge.id)} />
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
          {readOnly ? null : <AddDependency target={node.id} nodeIds={nodeIds} incoming={incoming} doc={doc} />}
          {dependencyProblems.map((problem) => (
            <p className="field-error" key={problem.key}>
              <RichText text={problem.message} />
              {problem.hint ? (
                <span className="field-error-hint">
                  {' '}
                  <RichText text={problem.hint} />
                </span>
              ) : null}
            </p>
          ))}
        </section>

        <Panel
          nodeId={node.id}
          rule={rule}
          onChange={(update, key) => doc.updateRule(node.id, update, key)}
          problems={problems}
          suggestions={suggestions}
          tasks={tasks}
          readOnly={readOnly}
        />
      </div>
    </aside>
  );
}

/** Adds a dependency without dragging: pick the node and the state it must end in. */
function AddDependency({ target, nodeIds, incoming, doc }: { target: string; nodeIds: readonly string[]; incoming: readonly FlowEdge[]; doc: FlowDocument }) {
  const [source, setSource] = useState('');
  const [state, setState] = useState<DependencyState>('success');
  const taken = new Set(incoming.map((edge) => edge.source));
  const candidates = nodeIds.filter((id) => id !== target && !taken.has(id) && doc.connectionProblem({ source: id, target }) === null);
  if (candidates.length === 0) return null;
  return (
    <form
      className="add-dependency"
      aria-label="Add a dependency"
      onSubmit={(event) => {
        event.preventDefault();
        if (!source) return;
        doc.onConnect({ source, target, sourceHandle: state, targetHandle: null });
        setSource('');
      }}
    >
      <select className="input" aria-label="Node to wait for" value={source} onChange={(event) => setSource(event.target.value)}>
        <option value="">Wait for…</option>
        {candidates.map((id) => (
          <option key={id} value={id}>
            {id}
          </option>
        ))}
      </select>
      <select className={`input state-select state-select-${state}`} aria-label="State to wait for" value={state} onChange={(event) => setState(event.target.value as DependencyState)}>
        <option value="success">on success</option>
        <option value="failure">on failure</option>
      </select>
      <Button type="submit" size="sm" icon={<IconPlus size={14} />} aria-label="Add dependency" disabled={!source} />
    </form>
  );
}

function RenameField({ nodeId, doc, readOnly, problems }: { nodeId: string; doc: FlowDocument; readOnly: boolean; problems: readonly LocatedProblem[] }) {
  const [draft, setDraft] = useState(nodeId);
  const [error, setError] = useState<string | null>(null);
  const commit = () => {
    const next = draft.trim();
    if (next === nodeId) {
      setError(null);
      return;
    }
    const problem = doc.renameNode(nodeId, next);
    setError(problem);
  };
  const serverError = problems.map((problem) => problem.message).join(' ');
  return (
    <Field
      label="Node id"
      htmlFor="node-id-input"
      hint="Unique in the flow: letters, digits, - and _. Renaming keeps its connections and $context.nodes references."
      error={error ?? (serverError ? <RichText text={serverError} /> : undefined)}
    >
      <input
        id="node-id-input"
        className={`input mono${error ? ' is-invalid' : ''}`}
        value={draft}
        disabled={readOnly}
        spellCheck={false}
        autoComplete="off"
        onChange={(event) => {
          setDraft(event.target.value);
          setError(null);
        }}
        onBlur={commit}
        onKeyDown={(event) => {
          if (event.key === 'Enter') {
            event.preventDefault();
            commit();
          } else if (event.key === 'Escape') {
            setDraft(nodeId);
            setError(null);
          }
        }}
      />
    </Field>
  );
}

export function EdgePanel({ edge, doc, readOnly, problems }: { edge: FlowEdge; doc: FlowDocument; readOnly: boolean; problems: readonly LocatedProblem[] }) {
  const state = edgeState(edge);
  return (
    <aside className="side-panel" aria-label="Dependency">
      <header className="side-panel-header">
        <span className={`flow-node-icon edge-icon-${state}`}>
          <IconArrowRight size={18} />
        </span>
        <div className="side-panel-titles">
          <span className="side-panel-kind">Dependency</span>
          <h2 className="mono">
            {edge.source} → {edge.target}
          </h2>
        </div>
        {readOnly ? null : <Button variant="ghost" icon={<IconTrash />} aria-label="Delete dependency" onClick={() => doc.removeEdge(edge.id)} />}
      </header>
      <div className="side-panel-body">
        <section className="panel-section">
          <Field label="Runs when the first node ends in" htmlFor="edge-state">
            <Segmented<DependencyState>
              label="State"
              value={state}
              disabled={readOnly}
              options={[
                { value: 'success', label: 'success' },
                { value: 'failure', label: 'failure' },
              ]}
              onChange={(value) => doc.setEdgeState(edge.id, value)}
            />
          </Field>
          <p className="panel-help">
            <span className="mono">{edge.target}</span> waits for <span className="mono">{edge.source}</span> to end in <span className={`state-text state-${state}`}>{state}</span>.
          </p>
          {problems.map((problem) => (
            <p className="field-error" key={problem.key}>
              <RichText text={problem.message} />
            </p>
          ))}
        </section>
      </div>
    </aside>
  );
}

export function FlowPanel({ nodes, edges, validation, readOnly }: { nodes: readonly FlowNode[]; edges: readonly FlowEdge[]; validation: ValidationState; readOnly: boolean }) {
  const conditions = nodes.filter((node) => node.data.rule.node_type === 'condition').length;
  const targets = new Set(edges.map((edge) => edge.target));
  const roots = nodes.filter((node) => !targets.has(node.id)).length;
  return (
    <aside className="side-panel" aria-label="Flow overview">
      <header className="side-panel-header">
        <div className="side-panel-titles">
          <span className="side-panel-kind">Flow</span>
          <h2>Overview</h2>
        </div>
      </header>
      <div className="side-panel-body">
        <section className="panel-section">
          <dl className="stats">
            <div>
              <dt>Nodes</dt>
              <dd>{nodes.length}</dd>
            </div>
            <div>
              <dt>Conditions</dt>
              <dd>{conditions}</dd>
            </div>
            <div>
              <dt>Tasks</dt>
              <dd>{nodes.length - conditions}</dd>
            </div>
            <div>
              <dt>Roots</dt>
              <dd>{roots}</dd>
            </div>
          </dl>
          {readOnly ? null : validation.status === 'valid' && nodes.length > 0 ? (
            <p className="panel-ok">
              <IconCheck size={14} /> The server accepts this flow.
            </p>
          ) : null}
        </section>
        <section className="panel-section">
          <h3>How it works</h3>
          <ul className="tips">
            <li>Roots run when a payment arrives; every other node runs after its dependencies.</li>
            <li>
              Drag from a node’s <span className="state-text state-success">success</span> or <span className="state-text state-failure">failure</span> handle to another node to make it wait for that outcome.
            </li>
            <li>Select a node to edit it. Paths such as <code className="mono">$context.event.total</code> read the payment event.</li>
          </ul>
        </section>
        <section className="panel-section">
          <h3>Keyboard</h3>
          <dl className="shortcuts">
            <div>
              <dt>Undo / redo</dt>
              <dd>
                <Kbd>Ctrl</Kbd>
                <Kbd>Z</Kbd> / <Kbd>Ctrl</Kbd>
                <Kbd>Shift</Kbd>
                <Kbd>Z</Kbd>
              </dd>
            </div>
            <div>
              <dt>Copy / paste</dt>
              <dd>
                <Kbd>Ctrl</Kbd>
                <Kbd>C</Kbd> / <Kbd>Ctrl</Kbd>
                <Kbd>V</Kbd>
              </dd>
            </div>
            <div>
              <dt>Delete selection</dt>
              <dd>
                <Kbd>Delete</Kbd>
              </dd>
            </div>
            <div>
              <dt>Save a version</dt>
              <dd>
                <Kbd>Ctrl</Kbd>
                <Kbd>S</Kbd>
              </dd>
            </div>
          </dl>
        </section>
      </div>
    </aside>
  );
}
