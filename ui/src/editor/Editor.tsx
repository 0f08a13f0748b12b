/**
 * The flow editor screen: loads the catalogue and the company's current
 * version, then lays out the palette, the canvas and the side panel, with
 * the toolbar (undo/redo, layout, sample event, test run, history, JSON,
 * save) and the problems found by the server's validation. A test run
 * (a simulation of the draft) is drawn over the canvas until the flow changes.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { applyEdgeChanges, applyNodeChanges, ReactFlowProvider, useReactFlow, type EdgeChange, type FinalConnectionState, type NodeChange, type XYPosition } from '@xyflow/react';
import { ApiError, errorMessage, NetworkError, type MoneyFlowClient } from '../api/client';
import type { Simulation, VersionSummary } from '../api/types';
import {
  IconBraces,
  IconCode,
  IconCondition,
  IconHistory,
  IconLayout,
  IconPlay,
  IconRedo,
  IconUndo,
  IconCheck,
  IconAlert,
  IconEye,
} from '../components/icons';
import { Badge, Button, Callout, EmptyState, formatDate, Spinner } from '../components/ui';
import type { TaskSpec } from '../model/catalogue';
import { graphToRules, rulesToGraph, type FlowEdge, type FlowNode, type Graph } from '../model/convert';
import { locateProblems, problemsByNode, type LocatedProblem } from '../model/problems';
import type { RuleNode, RuleSet } from '../model/rules';
import { resultsFromSimulation, type NodeResult } from '../model/runs';
import { Canvas, FIT_VIEW_OPTIONS } from './Canvas';
import { CanvasContext, type CanvasContextValue } from './context';
import { forgetDraft, keepDraft, peekDraft } from './drafts';
import { ImportExportDialog } from './ImportExportDialog';
import { NODE_SPECS } from './nodes';
import type { PaletteItem } from './Palette';
import { Palette } from './Palette';
import { ProblemsPanel } from './ProblemsPanel';
import { loadSampleEvent, SampleEventDialog, saveSampleEvent } from './SampleEventDialog';
import { EdgePanel, FlowPanel, NodePanel } from './SidePanel';
import { SimulateDialog } from './SimulateDialog';
import { TestRunBanner, TestRunPanel } from './TestRunPanel';
import { useFlowDocument } from './useFlowDocument';
import { usePathSuggestions } from './usePathSuggestions';
import { useValidation } from './useValidation';
import { parseVersionRules, VersionsDialog } from './VersionsDialog';

interface Loaded {
  tasks: TaskSpec[];
  version: number | null;
  rules: RuleNode[];
  versions: VersionSummary[];
}

type LoadState = { status: 'loading' } | { status: 'error'; error: unknown } | { status: 'ready'; data: Loaded };

export function EditorScreen({ client, companyId, onSignOut }: { client: MoneyFlowClient; companyId: string; onSignOut: () => void }) {
  const [state, setState] = useState<LoadState>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([client.listTasks(controller.signal), client.currentRules(companyId, controller.signal), client.listVersions(companyId, controller.signal)]).then(
      ([tasks, current, versions]) =>
        setState({
          status: 'ready',
          data: { tasks, version: current?.version ?? null, rules: current ? parseVersionRules(current.rules) : [], versions },
        }),
      (error: unknown) => {
        if (!controller.signal.aborted) setState({ status: 'error', error });
      },
    );
    return () => controller.abort();
  }, [client, companyId, attempt]);

  if (state.status === 'loading') {
    return (
      <div className="screen-center">
        <Spinner size={24} label="Loading the flow" />
        <p className="muted">Loading the flow of {companyId}…</p>
      </div>
    );
  }
  if (state.status === 'error') {
    const { error } = state;
    const unauthorized = error instanceof ApiError && error.status === 401;
    return (
      <div className="screen-center">
        <div className="card narrow">
          <Callout
            tone="danger"
            title={unauthorized ? 'Your credential is no longer accepted' : error instanceof NetworkError ? 'The MoneyFlow server cannot be reached' : 'The flow could not be loaded'}
          >
            {unauthorized ? 'The token was revoked or the server was restarted with another admin token. Sign in again.' : errorMessage(error)}
          </Callout>
          <div className="row end">
            {unauthorized ? (
              <Button variant="primary" onClick={onSignOut}>
                Sign in again
              </Button>
            ) : (
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
          </div>
        </div>
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <Editor key={companyId} client={client} companyId={companyId} loaded={state.data} />
    </ReactFlowProvider>
  );
}

type DialogName = 'history' | 'json' | 'sample' | 'simulate' | null;

interface Viewing {
  version: number;
  createdAt: string | undefined;
  graph: Graph;
}

/** A simulation of the draft, drawn over the canvas while the flow's logic is the one simulated. */
interface TestRun {
  /** The rules it ran, without positions: moving a node keeps the test run, any other edit clears it. */
  logic: string;
  simulation: Simulation;
  results: Map<string, NodeResult>;
  at: number;
}

/** The rules without their canvas positions. */
function logicOf(rules: readonly RuleNode[]): string {
  return JSON.stringify(rules.map(({ ui: _ui, ...rest }) => rest));
}

interface Toast {
  id: number;
  tone: 'success' | 'danger' | 'info';
  text: string;
}

function isEditableTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

function Editor({ client, companyId, loaded }: { client: MoneyFlowClient; companyId: string; loaded: Loaded }) {
  const initialGraph = useMemo(() => rulesToGraph(loaded.rules), [loaded.rules]);
  // A draft left unsaved when the editor was closed in this tab (to look at runs) comes back.
  const [restored] = useState(() => peekDraft(companyId));
  const doc = useFlowDocument(restored ?? initialGraph);
  const { fitView, screenToFlowPosition } = useReactFlow<FlowNode, FlowEdge>();
  const tasks = useMemo(() => new Map(loaded.tasks.map((task) => [task.name, task])), [loaded.tasks]);

  const initialJson = useMemo(() => JSON.stringify({ company_id: companyId, rules: graphToRules(initialGraph.nodes, initialGraph.edges).rules }), [companyId, initialGraph]);
  const [baseline, setBaseline] = useState<{ version: number | null; json: string }>({ version: loaded.version, json: initialJson });
  const [versions, setVersions] = useState<VersionSummary[]>(loaded.versions);
  const [versionsState, setVersionsState] = useState<{ loading: boolean; error: string | null }>({ loading: false, error: null });
  const [viewing, setViewing] = useState<Viewing | null>(null);
  const [dialog, setDialog] = useState<DialogName>(null);
  const [sampleEvent, setSampleEvent] = useState(() => loadSampleEvent(companyId));
  const [problemsOpen, setProblemsOpen] = useState(true);
  const [toast, setToast] = useState<Toast | null>(() => (restored ? { id: Date.now(), tone: 'info', text: 'Your unsaved changes are back.' } : null));
  const [saving, setSaving] = useState(false);
  const [testRun, setTestRun] = useState<TestRun | null>(null);
  const canvasRef = useRef<HTMLDivElement>(null);

  const showToast = useCallback((tone: Toast['tone'], text: string) => setToast({ id: Date.now(), tone, text }), []);
  useEffect(() => {
    if (!toast) return;
    const timer = window.setTimeout(() => setToast(null), toast.tone === 'info' ? 2500 : 4500);
    return () => window.clearTimeout(timer);
  }, [toast]);

  // ---- The draft as JSON, validated by the server as it changes.
  const { rules, index } = useMemo(() => graphToRules(doc.nodes, doc.edges), [doc.nodes, doc.edges]);
  const ruleSet: RuleSet = useMemo(() => ({ company_id: companyId, rules }), [companyId, rules]);
  const json = useMemo(() => JSON.stringify(ruleSet), [ruleSet]);
  const validation = useValidation(client, ruleSet, json, index, viewing === null);
  const located = useMemo(() => (viewing ? [] : locateProblems(validation.problems, validation.index)), [validation.problems, validation.index, viewing]);
  const dirty = json !== baseline.json;
  const readOnly = viewing !== null;

  // Keep an unsaved draft when the editor closes; forget it once saved or undone.
  const latestDraft = useRef({ graph: { nodes: doc.nodes, edges: doc.edges }, dirty });
  useLayoutEffect(() => {
    latestDraft.current = { graph: { nodes: doc.nodes, edges: doc.edges }, dirty };
  });
  useEffect(
    () => () => {
      const { graph, dirty: unsaved } = latestDraft.current;
      if (unsaved) keepDraft(companyId, { nodes: graph.nodes.map((node) => ({ ...node, selected: false })), edges: graph.edges.map((edge) => ({ ...edge, selected: false })) });
      else forgetDraft(companyId);
    },
    [companyId],
  );

  // The test run holds while the flow's logic is the one it ran.
  const logic = useMemo(() => logicOf(rules), [rules]);
  if (testRun && testRun.logic !== logic) {
    setTestRun(null);
    setToast({ id: testRun.at, tone: 'info', text: 'Test run cleared: the flow changed.' });
  }
  const overlay = viewing ? null : testRun;

  const byNode = useMemo(() => problemsByNode(located), [located]);
  const context: CanvasContextValue = useMemo(
    () => ({
      problemsByNode: byNode,
      problemEdges: new Set(located.flatMap((problem) => (problem.edgeId ? [problem.edgeId] : []))),
      tasks,
      readOnly,
      results: overlay?.results ?? null,
    }),
    [byNode, located, tasks, readOnly, overlay],
  );

  // ---- What the canvas shows: the draft, or a version read-only.
  const shownNodes = viewing ? viewing.graph.nodes : doc.nodes;
  const shownEdges = viewing ? viewing.graph.edges : doc.edges;
  const shown: Graph = { nodes: shownNodes, edges: shownEdges };
  const onViewNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) =>
      setViewing((current) => (current ? { ...current, graph: { ...current.graph, nodes: applyNodeChanges(changes.filter((change) => change.type === 'select' || change.type === 'dimensions'), current.graph.nodes) } } : current)),
    [],
  );
  const onViewEdgesChange = useCallback(
    (changes: EdgeChange<FlowEdge>[]) =>
      setViewing((current) => (current ? { ...current, graph: { ...current.graph, edges: applyEdgeChanges(changes.filter((change) => change.type === 'select'), current.graph.edges) } } : current)),
    [],
  );

  const selectedNodes = shown.nodes.filter((node) => node.selected);
  const selectedEdges = shown.edges.filter((edge) => edge.selected);
  const selectedNode = selectedNodes.length === 1 ? selectedNodes[0] : undefined;
  const selectedEdge = !selectedNode && selectedNodes.length === 0 && selectedEdges.length === 1 ? selectedEdges[0] : undefined;

  // ---- `$context` completion for the selected node.
  const suggestions = usePathSuggestions(sampleEvent, selectedNode?.id, shownNodes, shownEdges, tasks);

  // ---- Adding nodes.
  const addItem = useCallback(
    (item: PaletteItem, position: XYPosition) => {
      const spec = NODE_SPECS[item.kind];
      const id = doc.addNode(spec.defaultRule(item.taskName), spec.defaultId(item.taskName), position);
      return id;
    },
    [doc],
  );
  const addAtCenter = useCallback(
    (item: PaletteItem) => {
      const rect = canvasRef.current?.getBoundingClientRect();
      const center = rect ? screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 }) : { x: 0, y: 0 };
      const offset = (doc.nodes.length % 6) * 24;
      addItem(item, { x: Math.round((center.x - 128 + offset) / 8) * 8, y: Math.round((center.y - 44 + offset) / 8) * 8 });
    },
    [addItem, doc.nodes.length, screenToFlowPosition],
  );

  const isValidConnection = useCallback((connection: FlowEdge | { source: string; target: string; sourceHandle?: string | null }) => doc.connectionProblem(connection) === null, [doc]);
  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid !== false || !state.toNode) return;
      const [source, target] = state.fromHandle.type === 'target' ? [state.toNode.id, state.fromNode.id] : [state.fromNode.id, state.toNode.id];
      const problem = doc.connectionProblem({ source, target });
      if (problem) showToast('danger', problem);
    },
    [doc, showToast],
  );

  // ---- Saving, versions, import.
  const refreshVersions = useCallback(async () => {
    setVersionsState({ loading: true, error: null });
    try {
      setVersions(await client.listVersions(companyId));
      setVersionsState({ loading: false, error: null });
    } catch (error) {
      setVersionsState({ loading: false, error: errorMessage(error) });
    }
  }, [client, companyId]);

  const { setProblems } = validation;
  const save = useCallback(async () => {
    if (readOnly || saving) return;
    setSaving(true);
    try {
      const saved = await client.saveRules(ruleSet);
      setBaseline({ version: saved.version, json });
      showToast('success', `Saved as version ${saved.version}. New payments run on it.`);
      void refreshVersions();
    } catch (error) {
      if (error instanceof ApiError && error.status === 422 && error.fieldProblems.length > 0) {
        setProblems(error.fieldProblems);
        setProblemsOpen(true);
        showToast('danger', `Not saved: ${error.fieldProblems.length} problem${error.fieldProblems.length > 1 ? 's' : ''} to fix first.`);
      } else {
        showToast('danger', `Not saved: ${errorMessage(error)}`);
      }
    } finally {
      setSaving(false);
    }
  }, [client, json, readOnly, refreshVersions, ruleSet, saving, setProblems, showToast]);

  const openVersion = useCallback(
    async (version: number) => {
      try {
        const body = await client.getVersion(companyId, version);
        const graph = rulesToGraph(parseVersionRules(body.rules));
        setViewing({ version, createdAt: body.updated_at ?? body.created_at, graph });
        setDialog(null);
        window.setTimeout(() => void fitView(FIT_VIEW_OPTIONS), 120);
      } catch (error) {
        showToast('danger', `Could not open version ${version}: ${errorMessage(error)}`);
      }
    },
    [client, companyId, fitView, showToast],
  );

  const backToDraft = useCallback(() => {
    setViewing(null);
    window.setTimeout(() => void fitView(FIT_VIEW_OPTIONS), 120);
  }, [fitView]);

  const restoreViewed = useCallback(() => {
    if (!viewing) return;
    doc.replace({ nodes: viewing.graph.nodes.map((node) => ({ ...node, selected: false })), edges: viewing.graph.edges.map((edge) => ({ ...edge, selected: false })) });
    showToast('info', `Version ${viewing.version} is now the draft. Save to make it live again.`);
    setViewing(null);
  }, [doc, showToast, viewing]);

  const importRuleSet = useCallback(
    (imported: RuleSet, note?: string) => {
      doc.replace(rulesToGraph(imported.rules));
      setDialog(null);
      showToast('info', note ?? `Imported ${imported.rules.length} node${imported.rules.length === 1 ? '' : 's'}. Undo brings the previous canvas back.`);
      window.setTimeout(() => void fitView(FIT_VIEW_OPTIONS), 120);
    },
    [doc, fitView, showToast],
  );

  const focusNode = useCallback(
    (nodeId: string) => {
      doc.select([nodeId]);
      void fitView({ nodes: [{ id: nodeId }], duration: 300, maxZoom: 1.1, padding: 0.6 });
    },
    [doc, fitView],
  );

  const focusProblem = useCallback(
    (problem: LocatedProblem) => {
      if (!problem.nodeId) return;
      doc.select([problem.nodeId]);
      void fitView({ nodes: [{ id: problem.nodeId }], duration: 300, maxZoom: 1.1, padding: 0.6 });
    },
    [doc, fitView],
  );

  // ---- Keyboard: undo/redo, copy/paste, save.
  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => {
      const mod = event.ctrlKey || event.metaKey;
      if (!mod || document.querySelector('dialog[open]')) return;
      const key = event.key.toLowerCase();
      if (key === 's') {
        event.preventDefault();
        void save();
        return;
      }
      if (readOnly || isEditableTarget(event.target)) return;
      if (key === 'z' && !event.shiftKey) {
        event.preventDefault();
        doc.undo();
      } else if ((key === 'z' && event.shiftKey) || key === 'y') {
        event.preventDefault();
        doc.redo();
      } else if (key === 'c') {
        const count = doc.copy();
        if (count > 0) showToast('info', `Copied ${count} node${count > 1 ? 's' : ''}.`);
      } else if (key === 'v') {
        event.preventDefault();
        doc.paste();
      }
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [doc, readOnly, save, showToast]);

  // Warn before leaving with unsaved changes.
  useEffect(() => {
    if (!dirty) return;
    const onBeforeUnload = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [dirty]);

  const statusText = viewing
    ? `Version ${viewing.version} · read-only`
    : baseline.version === null
      ? dirty
        ? 'Not saved yet'
        : 'No version yet'
      : dirty
        ? `Unsaved changes · based on version ${baseline.version}`
        : `Version ${baseline.version} · saved`;

  return (
    <CanvasContext.Provider value={context}>
      <div className="editor">
        <div className="toolbar" role="toolbar" aria-label="Flow editor">
          <div className="toolbar-group toolbar-title">
            <h1>Payment flow</h1>
            <span className={`status-pill${dirty && !viewing ? ' is-dirty' : ''}`} data-testid="version-status">
              {statusText}
            </span>
          </div>
          <div className="toolbar-group">
            <Button variant="ghost" icon={<IconUndo />} aria-label="Undo" title="Undo (Ctrl+Z)" disabled={readOnly || !doc.canUndo} onClick={doc.undo} />
            <Button variant="ghost" icon={<IconRedo />} aria-label="Redo" title="Redo (Ctrl+Shift+Z)" disabled={readOnly || !doc.canRedo} onClick={doc.redo} />
            <span className="toolbar-divider" />
            <Button
              variant="ghost"
              icon={<IconLayout />}
              aria-label="Tidy up the layout"
              title="Tidy up the layout"
              disabled={readOnly || doc.nodes.length === 0}
              onClick={() => {
                doc.tidy();
                window.setTimeout(() => void fitView({ ...FIT_VIEW_OPTIONS, duration: 300 }), 120);
              }}
            />
            <span className="toolbar-divider" />
            <Button variant="ghost" icon={<IconBraces />} onClick={() => setDialog('sample')}>
              Sample event
            </Button>
            <Button variant="ghost" icon={<IconPlay />} disabled={readOnly || rules.length === 0} onClick={() => setDialog('simulate')} title="Run the draft against a payment event, with no side effects">
              Test run
            </Button>
            <span className="toolbar-divider" />
            <Button
              variant="ghost"
              icon={<IconHistory />}
              onClick={() => {
                setDialog('history');
                void refreshVersions();
              }}
            >
              History
            </Button>
            <Button variant="ghost" icon={<IconCode />} onClick={() => setDialog('json')}>
              JSON
            </Button>
          </div>
          <div className="toolbar-group toolbar-end">
            {viewing ? null : <ValidationChip status={validation.status} count={located.length} error={validation.error} />}
            <Button variant="primary" busy={saving} disabled={readOnly || saving || (!dirty && baseline.version !== null) || (baseline.version === null && rules.length === 0)} onClick={() => void save()} title="Save as a new version (Ctrl+S)">
              Save version
            </Button>
          </div>
        </div>

        <div className="workspace">
          <Palette tasks={loaded.tasks} onAdd={addAtCenter} disabled={readOnly} />
          <main className="canvas-column" ref={canvasRef} aria-label="Canvas">
            {viewing ? (
              <div className="viewing-banner" role="status">
                <IconEye size={16} />
                <span className="viewing-text" title={viewing.createdAt ? `Saved ${formatDate(viewing.createdAt)}` : undefined}>
                  Viewing <strong>version {viewing.version}</strong> · read-only
                  {viewing.createdAt ? <span className="viewing-date"> · saved {formatDate(viewing.createdAt)}</span> : null}
                </span>
                <Button size="sm" onClick={restoreViewed}>
                  Restore as draft
                </Button>
                <Button size="sm" variant="primary" onClick={backToDraft}>
                  Back to the draft
                </Button>
              </div>
            ) : null}
            {overlay ? (
              <TestRunBanner
                simulation={overlay.simulation}
                results={overlay.results}
                onRerun={() => setDialog('simulate')}
                onClear={() => setTestRun(null)}
              />
            ) : null}
            <Canvas
              nodes={shown.nodes}
              edges={shown.edges}
              onNodesChange={viewing ? onViewNodesChange : doc.onNodesChange}
              onEdgesChange={viewing ? onViewEdgesChange : doc.onEdgesChange}
              onConnect={doc.onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onDropItem={addItem}
              readOnly={readOnly}
            />
            {shown.nodes.length === 0 ? (
              <div className="canvas-empty">
                <EmptyState
                  icon={<IconCondition size={24} />}
                  title={viewing ? 'This version has no nodes' : 'Start this company’s payment flow'}
                  action={
                    viewing ? null : (
                      <Button icon={<IconCode size={14} />} onClick={() => setDialog('json')}>
                        Import JSON
                      </Button>
                    )
                  }
                >
                  {viewing
                    ? null
                    : 'Drag a Condition or a task from the left onto the canvas. Nodes without dependencies run as soon as a payment arrives; connect a node’s success or failure handle to another node to chain them.'}
                </EmptyState>
              </div>
            ) : null}
            {viewing ? null : <ProblemsPanel problems={located} open={problemsOpen} onToggle={() => setProblemsOpen((open) => !open)} onPick={focusProblem} />}
          </main>
          {selectedNode ? (
            <NodePanel
              key={selectedNode.id}
              node={selectedNode}
              incoming={shown.edges.filter((edge) => edge.target === selectedNode.id)}
              nodeIds={shown.nodes.map((node) => node.id)}
              doc={doc}
              tasks={tasks}
              problems={byNode.get(selectedNode.id) ?? []}
              suggestions={suggestions}
              readOnly={readOnly}
              result={overlay?.results.get(selectedNode.id)}
            />
          ) : selectedEdge ? (
            <EdgePanel edge={selectedEdge} doc={doc} readOnly={readOnly} problems={located.filter((problem) => problem.edgeId === selectedEdge.id)} />
          ) : overlay ? (
            <TestRunPanel simulation={overlay.simulation} results={overlay.results} onPickNode={focusNode} />
          ) : (
            <FlowPanel nodes={shown.nodes} edges={shown.edges} validation={validation} readOnly={readOnly} />
          )}
        </div>

        {toast ? (
          <div key={toast.id} className={`toast toast-${toast.tone}`} role="status" aria-live="polite">
            {toast.tone === 'success' ? <IconCheck size={16} /> : toast.tone === 'danger' ? <IconAlert size={16} /> : null}
            <span>{toast.text}</span>
          </div>
        ) : null}

        <VersionsDialog
          open={dialog === 'history'}
          onClose={() => setDialog(null)}
          client={client}
          companyId={companyId}
          versions={versions}
          loading={versionsState.loading && versions.length === 0}
          error={versionsState.error}
          draft={rules}
          currentVersion={baseline.version}
          onOpenVersion={(version) => void openVersion(version)}
        />
        <ImportExportDialog open={dialog === 'json'} onClose={() => setDialog(null)} ruleSet={viewing ? { company_id: companyId, rules: graphToRules(viewing.graph.nodes, viewing.graph.edges).rules } : ruleSet} onImport={importRuleSet} readOnly={readOnly} />
        {dialog === 'sample' ? (
          <SampleEventDialog
            open
            onClose={() => setDialog(null)}
            value={sampleEvent}
            onChange={(event) => {
              setSampleEvent(event);
              saveSampleEvent(companyId, event);
            }}
          />
        ) : null}
        {dialog === 'simulate' ? (
          <SimulateDialog
            open
            onClose={() => setDialog(null)}
            client={client}
            companyId={companyId}
            rules={rules}
            event={sampleEvent}
            onResult={(simulation, event) => {
              setSampleEvent(event);
              saveSampleEvent(companyId, event);
              setTestRun({ logic, simulation, results: resultsFromSimulation(simulation), at: Date.now() });
              setDialog(null);
              doc.select([]);
              // The banner takes some room: keep the whole path in view.
              window.setTimeout(() => void fitView({ ...FIT_VIEW_OPTIONS, duration: 300 }), 60);
            }}
          />
        ) : null}
      </div>
    </CanvasContext.Provider>
  );
}

function ValidationChip({ status, count, error }: { status: 'checking' | 'valid' | 'invalid' | 'error'; count: number; error?: string }) {
  switch (status) {
    case 'checking':
      return (
        <span className="validation-chip" role="status" data-testid="validation-status">
          <Spinner size={12} /> Checking…
        </span>
      );
    case 'valid':
      return (
        <span className="validation-chip is-valid" role="status" data-testid="validation-status">
          <IconCheck size={14} /> Valid
        </span>
      );
    case 'invalid':
      return (
        <span className="validation-chip is-invalid" role="status" data-testid="validation-status">
          <IconAlert size={14} /> {count} problem{count === 1 ? '' : 's'}
        </span>
      );
    case 'error':
      return (
        <Badge tone="warning" title={error}>
          Validation unavailable
        </Badge>
      );
  }
}
