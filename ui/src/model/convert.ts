/**
 * The one place where the saved rule model meets React Flow.
 *
 * `rulesToGraph` turns the JSON nodes into React Flow nodes (one per rule,
 * in rule order, positioned from `ui` or by dagre) and edges (one per
 * `depends_on` entry, in order); `graphToRules` turns them back. The round
 * trip is lossless: fields the canvas does not know, the order of a node's
 * keys, whether `depends_on` was written out, and positions all survive.
 * Nodes that had no `ui` keep none until someone moves them.
 */
import type { Edge, Node, XYPosition } from '@xyflow/react';
import { layoutPositions, NODE_HEIGHT, NODE_WIDTH } from './layout';
import type { Dependency, DependencyState, RuleBody, RuleNode } from './rules';

export interface FlowNodeData extends Record<string, unknown> {
  /** The node's rule fields except `node_id`, `depends_on` and `ui`, which the graph holds. */
  rule: RuleBody;
  /** The node's keys in their original order, so a round trip writes them back alike. */
  keyOrder: string[];
  /** Whether `depends_on` was written out (absent means `[]`). */
  dependsOnWritten: boolean;
  /** Fields of `ui` other than `x` and `y`. */
  uiExtra: Record<string, unknown>;
  /** Placed by auto layout: written back without `ui` until it is moved. */
  autoPlaced: boolean;
}

export interface FlowEdgeData extends Record<string, unknown> {
  state: DependencyState;
  /** Fields of the `depends_on` entry other than `node_id` and `state`. */
  extra: Record<string, unknown>;
}

export type FlowNodeType = 'condition' | 'task';
export type FlowNode = Node<FlowNodeData, FlowNodeType>;
export type FlowEdge = Edge<FlowEdgeData, 'state'>;

export interface Graph {
  nodes: FlowNode[];
  edges: FlowEdge[];
}

/** Where each rule and each dependency of the converted JSON came from, to map validation paths back. */
export interface RulesIndex {
  /** `rules[i]` is the node with this id. */
  nodeAt: string[];
  /** `rules[i].depends_on[j]` is the edge with this id. */
  edgeAt: string[][];
}

const GRAPH_FIELDS = new Set(['node_id', 'depends_on', 'ui']);
/** The key order of nodes created on the canvas. */
export const CANONICAL_KEY_ORDER = ['node_type', 'node_id', 'depends_on', 'trigger', 'expect', 'match', 'task_name', 'parameters', 'retry', 'timeout_ms', 'ui'];

export function edgeIdFor(source: string, state: DependencyState, target: string, taken: ReadonlySet<string>): string {
  const base = `${source}:${state}->${target}`;
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(`${base}#${n}`)) n += 1;
  return `${base}#${n}`;
}

export function makeEdge(
  source: string,
  state: DependencyState,
  target: string,
  taken: ReadonlySet<string>,
  extra: Record<string, unknown> = {},
): FlowEdge {
  return {
    id: edgeIdFor(source, state, target, taken),
    source,
    target,
    sourceHandle: state,
    type: 'state',
    data: { state, extra },
  };
}

/** The rule body of a node (everything but the graph fields), keys in order. */
function ruleBody(node: RuleNode): RuleBody {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (!GRAPH_FIELDS.has(key)) body[key] = value;
  }
  return body as RuleBody;
}

export function rulesToGraph(rules: readonly RuleNode[]): Graph {
  const taken = new Set<string>();
  const edges: FlowEdge[] = [];
  for (const node of rules) {
    for (const dependency of node.depends_on ?? []) {
      const { node_id: source, state, ...extra } = dependency;
      const edge = makeEdge(source, state, node.node_id, taken, extra);
      taken.add(edge.id);
      edges.push(edge);
    }
  }

  const unplaced = rules.filter((node) => !node.ui).map((node) => node.node_id);
  const auto = unplaced.length > 0 ? autoPositions(rules, edges, new Set(unplaced)) : new Map<string, XYPosition>();

  const nodes = rules.map((node): FlowNode => {
    const ui = node.ui;
    let position: XYPosition;
    let uiExtra: Record<string, unknown> = {};
    if (ui) {
      const { x, y, ...rest } = ui;
      position = { x, y };
      uiExtra = rest;
    } else {
      position = auto.get(node.node_id) ?? { x: 0, y: 0 };
    }
    return {
      id: node.node_id,
      type: node.node_type,
      position,
      data: {
        rule: ruleBody(node),
        keyOrder: Object.keys(node),
        dependsOnWritten: node.depends_on !== undefined,
        uiExtra,
        autoPlaced: !ui,
      },
    };
  });
  return { nodes, edges };
}

/**
 * Positions for the nodes without `ui`: dagre lays out the whole graph; a
 * node that would land on an already placed one moves right until it is clear.
 */
function autoPositions(rules: readonly RuleNode[], edges: readonly FlowEdge[], unplaced: ReadonlySet<string>): Map<string, XYPosition> {
  const laidOut = layoutPositions(
    rules.map((node) => node.node_id),
    edges,
  );
  const placed = rules.filter((node) => node.ui).map((node) => node.ui as XYPosition);
  const result = new Map<string, XYPosition>();
  for (const id of unplaced) {
    const position = { ...(laidOut.get(id) ?? { x: 0, y: 0 }) };
    let guard = 0;
    while (placed.some((other) => overlaps(position, other)) && guard < 200) {
      position.x += NODE_WIDTH + 40;
      guard += 1;
    }
    placed.push(position);
    result.set(id, position);
  }
  return result;
}

function overlaps(a: XYPosition, b: XYPosition): boolean {
  return Math.abs(a.x - b.x) < NODE_WIDTH + 16 && Math.abs(a.y - b.y) < NODE_HEIGHT + 16;
}

/** The JSON rules of a graph, in node order, and where each came from. */
export function graphToRules(nodes: readonly FlowNode[], edges: readonly FlowEdge[]): { rules: RuleNode[]; index: RulesIndex } {
  const incoming = new Map<string, FlowEdge[]>();
  for (const edge of edges) {
    const list = incoming.get(edge.target);
    if (list) list.push(edge);
    else incoming.set(edge.target, [edge]);
  }
  const index: RulesIndex = { nodeAt: [], edgeAt: [] };
  const rules = nodes.map((node) => {
    const deps = incoming.get(node.id) ?? [];
    const fields: Record<string, unknown> = { ...node.data.rule, node_id: node.id };
    if (deps.length > 0 || node.data.dependsOnWritten) {
      fields.depends_on = deps.map((edge): Dependency => ({ node_id: edge.source, state: edgeState(edge), ...(edge.data?.extra ?? {}) }));
    }
    if (!node.data.autoPlaced) {
      fields.ui = { x: node.position.x, y: node.position.y, ...node.data.uiExtra };
    }
    index.nodeAt.push(node.id);
    index.edgeAt.push(deps.map((edge) => edge.id));
    return orderKeys(fields, node.data.keyOrder) as RuleNode;
  });
  return { rules, index };
}

export function edgeState(edge: FlowEdge): DependencyState {
  return edge.data?.state ?? (edge.sourceHandle === 'failure' ? 'failure' : 'success');
}

function orderKeys(fields: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of order) {
    if (key in fields) out[key] = fields[key];
  }
  for (const key of CANONICAL_KEY_ORDER) {
    if (key in fields && !(key in out)) out[key] = fields[key];
  }
  for (const [key, value] of Object.entries(fields)) {
    if (!(key in out)) out[key] = value;
  }
  return out;
}

/** A new node for the canvas, as the palette creates it. */
export function newFlowNode(id: string, rule: RuleBody, position: XYPosition): FlowNode {
  return {
    id,
    type: rule.node_type,
    position,
    data: { rule, keyOrder: CANONICAL_KEY_ORDER, dependsOnWritten: true, uiExtra: {}, autoPlaced: false },
  };
}

/** Positions every node with dagre (the "Tidy up" command); the result is explicit, so saved. */
export function autoLayout(graph: Graph): Graph {
  const positions = layoutPositions(
    graph.nodes.map((node) => node.id),
    graph.edges,
  );
  return {
    nodes: graph.nodes.map((node) => ({
      ...node,
      position: positions.get(node.id) ?? node.position,
      data: { ...node.data, autoPlaced: false },
    })),
    edges: graph.edges,
  };
}
