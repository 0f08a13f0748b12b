/**
 * The editor's document: React Flow nodes and edges with undo/redo, and
 * every edit the canvas and panels make (add, connect, rename, change a
 * rule, copy/paste, delete). Conversion to and from JSON is `model/convert`.
 */
import { useCallback, useLayoutEffect, useMemo, useReducer, useRef } from 'react';
import { applyEdgeChanges, applyNodeChanges, type Connection, type EdgeChange, type NodeChange, type XYPosition } from '@xyflow/react';
import { uniqueId } from '../model/catalogue';
import { autoLayout, edgeState, makeEdge, newFlowNode, type FlowEdge, type FlowNode, type Graph } from '../model/convert';
import { wouldCreateCycle } from '../model/graph';
import { renameNodeReferences } from '../model/paths';
import { NODE_ID_PATTERN, type DependencyState, type RuleBody } from '../model/rules';
import { historyReducer, initialHistory, type HistoryState } from './history';

export interface FlowDocument {
  nodes: FlowNode[];
  edges: FlowEdge[];
  canUndo: boolean;
  canRedo: boolean;
  onNodesChange: (changes: NodeChange<FlowNode>[]) => void;
  onEdgesChange: (changes: EdgeChange<FlowEdge>[]) => void;
  onConnect: (connection: Connection) => void;
  /** Why a connection would be refused, or null when it is fine. */
  connectionProblem: (connection: { source: string | null; target: string | null; sourceHandle?: string | null }) => string | null;
  addNode: (rule: RuleBody, baseId: string, position: XYPosition) => string;
  updateRule: (nodeId: string, update: (rule: RuleBody) => RuleBody, key: string) => void;
  renameNode: (from: string, to: string) => string | null;
  removeEdge: (edgeId: string) => void;
  setEdgeState: (edgeId: string, state: DependencyState) => void;
  removeNodes: (ids: readonly string[]) => void;
  select: (nodeIds: readonly string[], edgeIds?: readonly string[]) => void;
  copy: () => number;
  paste: () => number;
  undo: () => void;
  redo: () => void;
  /** Replaces everything as one undoable step (import, restore a version, tidy up). */
  replace: (graph: Graph) => void;
  /** Starts over from a graph, forgetting the history (a load). */
  reset: (graph: Graph) => void;
  tidy: () => void;
}

type Doc = Graph;

const PASTE_OFFSET = 48;
/** React Flow reports a node deletion and its edges' removal separately, at once: one undo step. */
const DELETE_WINDOW_MS = 100;

/** Keeps the current selection when undo/redo swaps the document. */
function carrySelection(from: Doc, to: Doc): Doc {
  const nodes = new Set(from.nodes.filter((node) => node.selected).map((node) => node.id));
  const edges = new Set(from.edges.filter((edge) => edge.selected).map((edge) => edge.id));
  return {
    nodes: to.nodes.map((node) => (Boolean(node.selected) === nodes.has(node.id) ? node : { ...node, selected: nodes.has(node.id) })),
    edges: to.edges.map((edge) => (Boolean(edge.selected) === edges.has(edge.id) ? edge : { ...edge, selected: edges.has(edge.id) })),
  };
}

export function useFlowDocument(initial: Graph): FlowDocument {
  const [history, dispatch] = useReducer(historyReducer<Doc>, initial, (value): HistoryState<Doc> => initialHistory(value));
  const { nodes, edges } = history.present;
  // The document as of the last render, for callbacks that must not change identity.
  const latest = useRef(history.present);
  useLayoutEffect(() => {
    latest.current = history.present;
  });
  const clipboard = useRef<Graph | null>(null);

  const set = useCallback((update: (doc: Doc) => Doc, key?: string) => dispatch({ type: 'set', update, key, now: Date.now() }), []);

  const onNodesChange = useCallback((changes: NodeChange<FlowNode>[]) => {
    const apply = (doc: Doc): Doc => {
      const removed = new Set(changes.filter((change) => change.type === 'remove').map((change) => change.id));
      const moved = new Set(changes.filter((change) => change.type === 'position').map((change) => change.id));
      let next = applyNodeChanges(changes, doc.nodes);
      // A node someone moved now has a position of its own, saved as `ui`.
      if (moved.size > 0) next = next.map((node) => (moved.has(node.id) && node.data.autoPlaced ? { ...node, data: { ...node.data, autoPlaced: false } } : node));
      const nextEdges = removed.size > 0 ? doc.edges.filter((edge) => !removed.has(edge.source) && !removed.has(edge.target)) : doc.edges;
      return { nodes: next, edges: nextEdges };
    };
    const kinds = new Set(changes.map((change) => change.type));
    if (kinds.has('remove') || kinds.has('add') || kinds.has('replace')) {
      dispatch({ type: 'set', update: apply, key: 'delete', now: Date.now(), windowMs: DELETE_WINDOW_MS });
    } else if (kinds.has('position')) {
      const dragging = changes.some((change) => change.type === 'position' && change.dragging);
      if (dragging) dispatch({ type: 'transient', update: apply });
      else dispatch({ type: 'commit', update: apply, now: Date.now() });
    } else {
      dispatch({ type: 'silent', update: apply });
    }
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange<FlowEdge>[]) => {
    const apply = (doc: Doc): Doc => ({ nodes: doc.nodes, edges: applyEdgeChanges(changes, doc.edges) });
    if (changes.some((change) => change.type !== 'select')) dispatch({ type: 'set', update: apply, key: 'delete', now: Date.now(), windowMs: DELETE_WINDOW_MS });
    else dispatch({ type: 'silent', update: apply });
  }, []);

  const connectionProblem = useCallback((connection: { source: string | null; target: string | null; sourceHandle?: string | null }): string | null => {
    const { source, target } = connection;
    if (!source || !target) return 'Connect an output to another node.';
    if (source === target) return 'A node cannot depend on itself.';
    const current = latest.current.edges;
    if (current.some((edge) => edge.source === source && edge.target === target)) return `${target} already depends on ${source}.`;
    if (wouldCreateCycle(current, source, target)) return `That would make a cycle: ${source} already runs after ${target}.`;
    return null;
  }, []);

  const onConnect = useCallback(
    (connection: Connection) => {
      if (connectionProblem(connection) !== null) return;
      const state: DependencyState = connection.sourceHandle === 'failure' ? 'failure' : 'success';
      set((doc) => {
        const taken = new Set(doc.edges.map((edge) => edge.id));
        return { nodes: doc.nodes, edges: [...doc.edges, makeEdge(connection.source, state, connection.target, taken)] };
      });
    },
    [connectionProblem, set],
  );

  const addNode = useCallback(
    (rule: RuleBody, baseId: string, position: XYPosition): string => {
      const id = uniqueId(baseId, new Set(latest.current.nodes.map((node) => node.id)));
      set((doc) => ({
        nodes: [...doc.nodes.map((node) => (node.selected ? { ...node, selected: false } : node)), { ...newFlowNode(id, rule, position), selected: true }],
        edges: doc.edges.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)),
      }));
      return id;
    },
    [set],
  );

  const updateRule = useCallback(
    (nodeId: string, update: (rule: RuleBody) => RuleBody, key: string) =>
      set(
        (doc) => ({
          nodes: doc.nodes.map((node) => {
            if (node.id !== nodeId) return node;
            const rule = update(node.data.rule);
            return rule === node.data.rule ? node : { ...node, type: rule.node_type, data: { ...node.data, rule } };
          }),
          edges: doc.edges,
        }),
        key,
      ),
    [set],
  );

  const renameNode = useCallback(
    (from: string, to: string): string | null => {
      if (from === to) return null;
      if (!NODE_ID_PATTERN.test(to)) return 'Use letters, digits, - and _ only.';
      if (latest.current.nodes.some((node) => node.id === to)) return `There is already a node “${to}”.`;
      set((doc) => {
        const taken = new Set<string>();
        const edges = doc.edges.map((edge) => {
          if (edge.source !== from && edge.target !== from) {
            taken.add(edge.id);
            return edge;
          }
          const source = edge.source === from ? to : edge.source;
          const target = edge.target === from ? to : edge.target;
          const renamed = { ...makeEdge(source, edgeState(edge), target, taken, edge.data?.extra ?? {}), selected: edge.selected ?? false };
          taken.add(renamed.id);
          return renamed;
        });
        const nodes = doc.nodes.map((node) => {
          const rule = renameNodeReferences(node.data.rule, from, to);
          const data = rule === node.data.rule ? node.data : { ...node.data, rule };
          return node.id === from ? { ...node, id: to, data } : { ...node, data };
        });
        return { nodes, edges };
      });
      return null;
    },
    [set],
  );

  const removeEdge = useCallback((edgeId: string) => set((doc) => ({ nodes: doc.nodes, edges: doc.edges.filter((edge) => edge.id !== edgeId) })), [set]);

  const setEdgeState = useCallback(
    (edgeId: string, state: DependencyState) =>
      set((doc) => {
        const taken = new Set(doc.edges.filter((edge) => edge.id !== edgeId).map((edge) => edge.id));
        return {
          nodes: doc.nodes,
          edges: doc.edges.map((edge) =>
            edge.id === edgeId ? { ...makeEdge(edge.source, state, edge.target, taken, edge.data?.extra ?? {}), selected: edge.selected ?? false } : edge,
          ),
        };
      }),
    [set],
  );

  const removeNodes = useCallback(
    (ids: readonly string[]) => {
      const gone = new Set(ids);
      set((doc) => ({
        nodes: doc.nodes.filter((node) => !gone.has(node.id)),
        edges: doc.edges.filter((edge) => !gone.has(edge.source) && !gone.has(edge.target)),
      }));
    },
    [set],
  );

  const select = useCallback((nodeIds: readonly string[], edgeIds: readonly string[] = []) => {
    const nodeSet = new Set(nodeIds);
    const edgeSet = new Set(edgeIds);
    dispatch({
      type: 'silent',
      update: (doc) => ({
        nodes: doc.nodes.map((node) => (Boolean(node.selected) === nodeSet.has(node.id) ? node : { ...node, selected: nodeSet.has(node.id) })),
        edges: doc.edges.map((edge) => (Boolean(edge.selected) === edgeSet.has(edge.id) ? edge : { ...edge, selected: edgeSet.has(edge.id) })),
      }),
    });
  }, []);

  const copy = useCallback((): number => {
    const chosen = latest.current.nodes.filter((node) => node.selected);
    if (chosen.length === 0) return 0;
    const ids = new Set(chosen.map((node) => node.id));
    clipboard.current = {
      nodes: chosen,
      edges: latest.current.edges.filter((edge) => ids.has(edge.source) && ids.has(edge.target)),
    };
    return chosen.length;
  }, []);

  const paste = useCallback((): number => {
    const copied = clipboard.current;
    if (!copied || copied.nodes.length === 0) return 0;
    set((doc) => {
      const taken = new Set(doc.nodes.map((node) => node.id));
      const renames = new Map<string, string>();
      for (const node of copied.nodes) {
        const id = uniqueId(node.id, taken);
        taken.add(id);
        renames.set(node.id, id);
      }
      const pasted = copied.nodes.map((node): FlowNode => {
        let rule = node.data.rule;
        for (const [from, to] of renames) rule = renameNodeReferences(rule, from, to);
        return {
          id: renames.get(node.id) ?? node.id,
          type: node.type,
          position: { x: node.position.x + PASTE_OFFSET, y: node.position.y + PASTE_OFFSET },
          data: { ...node.data, rule, autoPlaced: false },
          selected: true,
        };
      });
      const edgeIds = new Set(doc.edges.map((edge) => edge.id));
      const pastedEdges = copied.edges.map((edge) => {
        const made = makeEdge(renames.get(edge.source) ?? edge.source, edgeState(edge), renames.get(edge.target) ?? edge.target, edgeIds, edge.data?.extra ?? {});
        edgeIds.add(made.id);
        return made;
      });
      return {
        nodes: [...doc.nodes.map((node) => (node.selected ? { ...node, selected: false } : node)), ...pasted],
        edges: [...doc.edges.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)), ...pastedEdges],
      };
    });
    // The next paste lands a step further.
    clipboard.current = { nodes: copied.nodes.map((node) => ({ ...node, position: { x: node.position.x + PASTE_OFFSET, y: node.position.y + PASTE_OFFSET } })), edges: copied.edges };
    return copied.nodes.length;
  }, [set]);

  const undo = useCallback(() => dispatch({ type: 'undo', carry: carrySelection }), []);
  const redo = useCallback(() => dispatch({ type: 'redo', carry: carrySelection }), []);
  const replace = useCallback((graph: Graph) => set(() => graph), [set]);
  const reset = useCallback((graph: Graph) => dispatch({ type: 'reset', value: graph }), []);
  const tidy = useCallback(() => set((doc) => autoLayout(doc)), [set]);

  return useMemo(
    () => ({
      nodes,
      edges,
      canUndo: history.past.length > 0,
      canRedo: history.future.length > 0,
      onNodesChange,
      onEdgesChange,
      onConnect,
      connectionProblem,
      addNode,
      updateRule,
      renameNode,
      removeEdge,
      setEdgeState,
      removeNodes,
      select,
      copy,
      paste,
      undo,
      redo,
      replace,
      reset,
      tidy,
    }),
    [
      nodes,
      edges,
      history.past.length,
      history.future.length,
      onNodesChange,
      onEdgesChange,
      onConnect,
      connectionProblem,
      addNode,
      updateRule,
      renameNode,
      removeEdge,
      setEdgeState,
      removeNodes,
      select,
      copy,
      paste,
      undo,
      redo,
      replace,
      reset,
      tidy,
    ],
  );
}
