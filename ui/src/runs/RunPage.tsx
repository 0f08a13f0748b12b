/**
 * One run: the graph of the rule version it is pinned to (read-only), every
 * node coloured by its state; the side panel with the run's facts, nodes and
 * documents, or the selected node's attempts, timings, parameters, output,
 * error and history. While the run is not finished it follows the run's
 * event stream; a failed run can be redriven (after a confirmation), and is
 * then followed live again.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { applyEdgeChanges, applyNodeChanges, ReactFlowProvider, useReactFlow, type EdgeChange, type NodeChange } from '@xyflow/react';
import { ApiError, errorMessage, NetworkError, type MoneyFlowClient } from '../api/client';
import type { Run, RunEvent } from '../api/types';
import { IconAlert, IconArrowRight, IconCheck, IconChevronRight, IconClose, IconRotate } from '../components/icons';
import { Button, Callout, Dialog, formatDate, formatTimestamp, Spinner } from '../components/ui';
import { Canvas } from '../editor/Canvas';
import { CanvasContext, type CanvasContextValue } from '../editor/context';
import { NODE_SPECS } from '../editor/nodes';
import { parseVersionRules } from '../editor/VersionsDialog';
import type { TaskSpec } from '../model/catalogue';
import { rulesToGraph, type FlowEdge, type FlowNode, type Graph } from '../model/convert';
import { durationMs, formatDuration } from '../model/format';
import { applyRunEvent, countStates, errorText, isTerminalRun, resultsFromRun, type NodeResult, type NodeResults } from '../model/runs';
import { routeHref } from '../router';
import { DocumentList, JsonBlock, NodeResultDetails } from './ResultDetails';
import { LiveIndicator, NodeStateBadge, RunStatusBadge } from './StateBadge';
import { useEventStream } from './useEventStream';

interface Loaded {
  run: Run;
  tasks: TaskSpec[];
  graph: Graph;
}

type Load = { status: 'loading' } | { status: 'error'; error: unknown } | { status: 'ready'; data: Loaded };

export function RunPage({ client, companyId, runId, onSignOut }: { client: MoneyFlowClient; companyId: string; runId: string; onSignOut: () => void }) {
  const [state, setState] = useState<Load>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    Promise.all([client.getRun(runId, signal), client.listTasks(signal)])
      .then(async ([run, tasks]) => {
        const version = run.rule_version === undefined ? null : await client.getVersion(run.company_id, run.rule_version, signal);
        const graph = rulesToGraph(version ? parseVersionRules(version.rules) : []);
        setState({ status: 'ready', data: { run, tasks, graph } });
      })
      .catch((error: unknown) => {
        if (!signal.aborted) setState({ status: 'error', error });
      });
    return () => controller.abort();
  }, [client, runId, attempt]);

  if (state.status === 'loading') {
    return (
      <div className="screen-center">
        <Spinner size={24} label="Loading the run" />
        <p className="muted">Loading run {runId}…</p>
      </div>
    );
  }
  if (state.status === 'error') {
    const { error } = state;
    const notFound = error instanceof ApiError && error.status === 404;
    const unauthorized = error instanceof ApiError && error.status === 401;
    return (
      <div className="screen-center">
        <div className="card narrow">
          <Callout
            tone="danger"
            title={notFound ? 'No such run' : unauthorized ? 'Your credential is no longer accepted' : error instanceof NetworkError ? 'The MoneyFlow server cannot be reached' : 'The run could not be loaded'}
          >
            {notFound
              ? `There is no run “${runId}” for this company. Check the link, or pick the run from the list.`
              : unauthorized
                ? 'The token was revoked or the server was restarted with another admin token. Sign in again.'
                : errorMessage(error)}
          </Callout>
          <div className="row end">
            {unauthorized ? (
              <Button variant="primary" onClick={onSignOut}>
                Sign in again
              </Button>
            ) : (
              <>
                <a className="btn btn-secondary btn-md" href={routeHref({ name: 'runs', companyId, query: {} })}>
                  <span>All runs</span>
                </a>
                {notFound ? null : (
                  <Button
                    variant="primary"
                    onClick={() => {
                      setState({ status: 'loading' });
                      setAttempt((n) => n + 1);
                    }}
                  >
                    Try again
                  </Button>
                )}
              </>
            )}
          </div>
        </div>
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <RunView client={client} companyId={companyId} loaded={state.data} />
    </ReactFlowProvider>
  );
}

const noop = () => undefined;
const never = () => false;

function RunView({ client, companyId, loaded }: { client: MoneyFlowClient; companyId: string; loaded: Loaded }) {
  const [run, setRun] = useState<Run>(loaded.run);
  const [graph, setGraph] = useState<Graph>(loaded.graph);
  const [following, setFollowing] = useState(() => !isTerminalRun(loaded.run.status));
  const [restartKey, setRestartKey] = useState(0);
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState<{ tone: 'success' | 'danger'; text: string } | null>(null);
  const { fitView } = useReactFlow<FlowNode, FlowEdge>();
  const tasks = useMemo(() => new Map(loaded.tasks.map((task) => [task.name, task])), [loaded.tasks]);
  const results = useMemo(() => resultsFromRun(run), [run]);
  const runRef = useRef(run);
  useLayoutEffect(() => {
    runRef.current = run;
  });

  // ---- Live: events move the states at once; the run is read again (debounced) for outputs and timings.
  const refreshTimer = useRef<number | undefined>(undefined);
  const refreshSeq = useRef(0);
  const refresh = useCallback(
    (delayMs: number) => {
      window.clearTimeout(refreshTimer.current);
      refreshTimer.current = window.setTimeout(() => {
        const seq = ++refreshSeq.current;
        client.getRun(loaded.run.run_id).then(
          (fresh) => {
            if (seq === refreshSeq.current) setRun(fresh);
          },
          () => undefined,
        );
      }, delayMs);
    },
    [client, loaded.run.run_id],
  );
  useEffect(() => () => window.clearTimeout(refreshTimer.current), []);

  const onEvent = useCallback(
    (event: RunEvent) => {
      setRun((current) => applyRunEvent(current, event));
      refresh(event.kind === 'run.finished' ? 50 : 400);
    },
    [refresh],
  );
  const connect = useMemo(() => (following ? client.runEvents(loaded.run.run_id) : null), [client, following, loaded.run.run_id]);
  const live = useEventStream({ connect, onEvent, restartKey, reconnectAfterEnd: () => !isTerminalRun(runRef.current.status) });

  // ---- Selection on the read-only graph.
  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => setGraph((current) => ({ ...current, nodes: applyNodeChanges(changes.filter((change) => change.type === 'select' || change.type === 'dimensions'), current.nodes) })),
    [],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) => setGraph((current) => ({ ...current, edges: applyEdgeChanges(changes.filter((change) => change.type === 'select'), current.edges) })),
    [],
  );
  const selectNode = useCallback(
    (nodeId: string | null) => {
      setGraph((current) => ({
        nodes: current.nodes.map((node) => (Boolean(node.selected) === (node.id === nodeId) ? node : { ...node, selected: node.id === nodeId })),
        edges: current.edges.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)),
      }));
      if (nodeId) void fitView({ nodes: [{ id: nodeId }], duration: 300, maxZoom: 1.1, padding: 0.6 });
    },
    [fitView],
  );
  // Escape goes back from a node's details to the run's overview.
  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key === 'Escape' && !document.querySelector('dialog[open]')) selectNode(null);
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [selectNode]);
  const selected = graph.nodes.filter((node) => node.selected);
  const selectedNode = selected.length === 1 ? selected[0] : undefined;

  const context: CanvasContextValue = useMemo(() => ({ problemsByNode: new Map(), problemEdges: new Set(), tasks, readOnly: true, results }), [tasks, results]);

  // ---- Redrive.
  const redrive = async () => {
    try {
      const summary = await client.redrive(run.run_id);
      setRun((current) => ({ ...current, status: summary.status, finished_at: null }));
      setFollowing(true);
      setRestartKey((n) => n + 1);
      setNotice({ tone: 'success', text: 'Redriven: the failed tasks run again. Following the run live.' });
      refresh(300);
      setConfirming(false);
    } catch (error) {
      setConfirming(false);
      setNotice({ tone: 'danger', text: `Not redriven: ${errorMessage(error)}` });
      refresh(0);
    }
  };
  useEffect(() => {
    if (!notice) return;
    const timer = window.setTimeout(() => setNotice(null), 5000);
    return () => window.clearTimeout(timer);
  }, [notice]);

  const took = durationMs(run.started_at ?? run.created_at, run.finished_at);
  const failedTasks = (run.nodes ?? []).filter((node) => node.state === 'failure' && node.node_type !== 'condition').map((node) => node.node_id);

  return (
    <CanvasContext.Provider value={context}>
      <div className="editor run-view">
        <div className="toolbar" role="toolbar" aria-label="Run">
          <div className="toolbar-group toolbar-title">
            <a className="back-link" href={routeHref({ name: 'runs', companyId, query: {} })}>
              Runs
            </a>
            <IconChevronRight size={14} className="breadcrumb-sep" />
            <h1 className="mono run-title" title={run.run_id}>
              {run.run_id}
            </h1>
            <RunStatusBadge status={run.status} large />
            <span className="run-meta">
              v{run.rule_version ?? '?'} · {run.event_type?.replaceAll('_', ' ') ?? 'event'}
              {run.created_at ? ` · ${formatDate(run.created_at)}` : ''}
              {took !== undefined ? ` · took ${formatDuration(took)}` : ''}
            </span>
          </div>
          <div className="toolbar-group toolbar-end">
            {following ? <LiveIndicator status={live.status} onRetry={() => setRestartKey((n) => n + 1)} /> : null}
            {run.status === 'failed' ? (
              <Button variant="primary" icon={<IconRotate size={14} />} onClick={() => setConfirming(true)}>
                Redrive
              </Button>
            ) : null}
          </div>
        </div>

        <div className="workspace run-workspace">
          <main className="canvas-column" aria-label="Run graph">
            {run.status === 'failed' ? (
              <div className="run-banner is-failed" role="status">
                <IconAlert size={16} />
                <span>
                  {failedTasks.length > 0 ? (
                    <>
                      Failed at <strong className="mono">{failedTasks.join(', ')}</strong>. Fix the cause, then redrive: the failed tasks run again, what succeeded is kept.
                    </>
                  ) : (
                    (errorText(run.error) ?? 'The run failed.')
                  )}
                </span>
              </div>
            ) : null}
            <Canvas nodes={graph.nodes} edges={graph.edges} onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={noop} isValidConnection={never} onDropItem={noop} readOnly />
            {graph.nodes.length === 0 ? (
              <div className="canvas-empty">
                <div className="empty-state">
                  <h3>No graph to show</h3>
                  <div className="empty-state-body">The rule version this run is pinned to has no nodes, or could not be read.</div>
                </div>
              </div>
            ) : null}
          </main>
          {selectedNode ? (
            <RunNodePanel node={selectedNode} result={results.get(selectedNode.id)} tasks={tasks} onClose={() => selectNode(null)} />
          ) : (
            <RunOverviewPanel run={run} results={results} onPickNode={selectNode} />
          )}
        </div>

        {notice ? (
          <div className={`toast toast-${notice.tone}`} role="status" aria-live="polite">
            {notice.tone === 'success' ? <IconCheck size={16} /> : <IconAlert size={16} />}
            <span>{notice.text}</span>
          </div>
        ) : null}

        {confirming ? <RedriveDialog run={run} failedTasks={failedTasks} onCancel={() => setConfirming(false)} onConfirm={redrive} /> : null}
      </div>
    </CanvasContext.Provider>
  );
}

function RedriveDialog({ run, failedTasks, onCancel, onConfirm }: { run: Run; failedTasks: string[]; onCancel: () => void; onConfirm: () => Promise<void> }) {
  const [busy, setBusy] = useState(false);
  return (
    <Dialog
      open
      onClose={onCancel}
      title="Redrive this run?"
      description={`Runs it again on version ${run.rule_version ?? '?'}, the version it is pinned to.`}
      footer={
        <>
          <Button onClick={onCancel}>Cancel</Button>
          <Button
            variant="primary"
            icon={<IconRotate size={14} />}
            busy={busy}
            disabled={busy}
            onClick={() => {
              setBusy(true);
              void onConfirm().finally(() => setBusy(false));
            }}
          >
            Redrive run
          </Button>
        </>
      }
    >
      <ul className="plain-list redrive-points">
        <li>
          {failedTasks.length > 0 ? (
            <>
              The failed task{failedTasks.length === 1 ? '' : 's'} <strong className="mono">{failedTasks.join(', ')}</strong> and the nodes skipped because of {failedTasks.length === 1 ? 'it' : 'them'} run again.
            </>
          ) : (
            'The nodes that did not finish run again.'
          )}
        </li>
        <li>Nodes that succeeded keep their results and are not executed again.</li>
        <li>Each task keeps its idempotency key, so an effect that already happened is not repeated. The earlier attempts stay in each node’s history.</li>
      </ul>
      <p className="panel-help">Redriving does not change the flow: if the cause is in a rule, save a new version first — new payments run on it, this run stays on its version.</p>
    </Dialog>
  );
}

function RunOverviewPanel({ run, results, onPickNode }: { run: Run; results: NodeResults; onPickNode: (nodeId: string) => void }) {
  const counts = countStates(results);
  const took = durationMs(run.started_at ?? run.created_at, run.finished_at);
  const runError = errorText(run.error);
  return (
    <aside className="side-panel" aria-label="Run overview">
      <header className="side-panel-header">
        <div className="side-panel-titles">
          <span className="side-panel-kind">Run</span>
          <h2>Overview</h2>
        </div>
      </header>
      <div className="side-panel-body">
        <section className="panel-section">
          <dl className="stats">
            <div>
              <dt>Success</dt>
              <dd className={counts.success > 0 ? 'state-success' : undefined}>{counts.success}</dd>
            </div>
            <div>
              <dt>Failure</dt>
              <dd className={counts.failure > 0 ? 'state-failure' : undefined}>{counts.failure}</dd>
            </div>
            <div>
              <dt>Skipped</dt>
              <dd>{counts.skipped}</dd>
            </div>
            <div>
              <dt>Pending</dt>
              <dd>{counts.pending + counts.running}</dd>
            </div>
          </dl>
          {runError ? (
            <Callout tone="danger" title="The run failed as a whole">
              {runError}
            </Callout>
          ) : null}
          <dl className="facts facts-wide">
            <div>
              <dt>Event</dt>
              <dd className="mono" title={run.event_id}>
                {run.event_id ?? '—'}
              </dd>
            </div>
            <div>
              <dt>Event type</dt>
              <dd>{run.event_type?.replaceAll('_', ' ') ?? '—'}</dd>
            </div>
            <div>
              <dt>Rule version</dt>
              <dd>{run.rule_version ?? '—'}</dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>{run.created_at ? formatTimestamp(run.created_at) : '—'}</dd>
            </div>
            {run.finished_at ? (
              <div>
                <dt>Finished</dt>
                <dd>{formatTimestamp(run.finished_at)}</dd>
              </div>
            ) : null}
            <div>
              <dt>Duration</dt>
              <dd>{took !== undefined ? formatDuration(took) : isTerminalRun(run.status) ? '—' : 'running…'}</dd>
            </div>
          </dl>
        </section>
        <section className="panel-section" aria-label="Nodes">
          <div className="panel-section-header">
            <h3>Nodes</h3>
            <span className="panel-section-note">select one for its details</span>
          </div>
          <ol className="path-list">
            {[...results.values()].map((result) => (
              <li key={result.nodeId}>
                <button type="button" className={`path-row${result.state === 'skipped' || result.state === 'pending' ? ' is-not-run' : ''}`} onClick={() => onPickNode(result.nodeId)} aria-label={`${result.nodeId}, ${result.state}`}>
                  <span className="path-node mono">{result.nodeId}</span>
                  {result.history.length > 0 ? <IconRotate size={12} className="muted" aria-label="redriven" /> : null}
                  <NodeStateBadge state={result.state} />
                </button>
              </li>
            ))}
          </ol>
        </section>
        <section className="panel-section" aria-label="Documents">
          <div className="panel-section-header">
            <h3>Documents</h3>
            <span className="panel-section-note">{run.documents?.length ?? 0}</span>
          </div>
          <DocumentList documents={run.documents ?? []} onPickNode={onPickNode} />
        </section>
      </div>
    </aside>
  );
}

function RunNodePanel({ node, result, tasks, onClose }: { node: FlowNode; result: NodeResult | undefined; tasks: ReadonlyMap<string, TaskSpec>; onClose: () => void }) {
  const spec = NODE_SPECS[node.data.rule.node_type];
  return (
    <aside className="side-panel" aria-label={`Result of ${node.id}`}>
      <header className="side-panel-header">
        <span className={`flow-node-icon flow-node-icon-${spec.kind}`}>
          <spec.Icon size={18} rule={node.data.rule} />
        </span>
        <div className="side-panel-titles">
          <span className="side-panel-kind">{spec.label(node.data.rule, tasks)}</span>
          <h2 className="mono">{node.id}</h2>
        </div>
        <Button variant="ghost" icon={<IconClose />} aria-label="Back to the run overview" title="Back to the overview (Escape)" onClick={onClose} />
      </header>
      <div className="side-panel-body">
        {result ? <NodeResultDetails result={result} mode="run" /> : <p className="panel-help panel-pad">No result recorded for this node.</p>}
        <section className="panel-section" aria-label="Definition">
          <details className="definition">
            <summary>
              <IconArrowRight size={12} className="definition-arrow" />
              As defined in the version
            </summary>
            <JsonBlock value={node.data.rule} label={`Definition of ${node.id}`} />
          </details>
        </section>
      </div>
    </aside>
  );
}
