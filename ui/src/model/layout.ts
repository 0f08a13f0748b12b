/** Auto layout with dagre, top to bottom like the canvas reads. */
import dagre from '@dagrejs/dagre';
import type { XYPosition } from '@xyflow/react';
import type { EdgeLike } from './graph';

/** The size the canvas draws a node at (see `.flow-node` in the styles). */
export const NODE_WIDTH = 256;
export const NODE_HEIGHT = 96;

/** Top-left positions, rounded to the 8px grid, for `nodeIds` laid out by their edges. */
export function layoutPositions(nodeIds: readonly string[], edges: readonly EdgeLike[]): Map<string, XYPosition> {
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({ rankdir: 'TB', nodesep: 48, ranksep: 64, marginx: 0, marginy: 0 });
  graph.setDefaultEdgeLabel(() => ({}));
  const known = new Set(nodeIds);
  for (const id of nodeIds) graph.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  edges.forEach((edge, i) => {
    if (known.has(edge.source) && known.has(edge.target) && edge.source !== edge.target) {
      graph.setEdge(edge.source, edge.target, {}, `e${i}`);
    }
  });
  dagre.layout(graph);
  const positions = new Map<string, XYPosition>();
  for (const id of nodeIds) {
    const node = graph.node(id) as { x: number; y: number } | undefined;
    if (!node) continue;
    positions.set(id, { x: snap(node.x - NODE_WIDTH / 2), y: snap(node.y - NODE_HEIGHT / 2) });
  }
  return positions;
}

function snap(value: number): number {
  return Math.round(value / 8) * 8;
}
