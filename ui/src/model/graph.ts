/** Graph helpers over dependency edges (`source` runs before `target`). */

export interface EdgeLike {
  source: string;
  target: string;
}

/** Every node reachable from `start` following edges forward. */
export function descendants(edges: readonly EdgeLike[], start: string): Set<string> {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    const list = next.get(edge.source);
    if (list) list.push(edge.target);
    else next.set(edge.source, [edge.target]);
  }
  const seen = new Set<string>();
  const stack = [start];
  for (let current = stack.pop(); current !== undefined; current = stack.pop()) {
    for (const target of next.get(current) ?? []) {
      if (!seen.has(target)) {
        seen.add(target);
        stack.push(target);
      }
    }
  }
  return seen;
}

/** Every node `start` (transitively) depends on. */
export function ancestors(edges: readonly EdgeLike[], start: string): Set<string> {
  return descendants(
    edges.map((edge) => ({ source: edge.target, target: edge.source })),
    start,
  );
}

/**
 * Whether adding the edge `source → target` closes a cycle: true for a
 * self-loop, and when `source` is already reachable from `target`.
 */
export function wouldCreateCycle(edges: readonly EdgeLike[], source: string, target: string): boolean {
  if (source === target) return true;
  return descendants(edges, target).has(source);
}

/** The nodes in an order where every node comes after its dependencies (Kahn); nodes on a cycle come last. */
export function topologicalOrder(nodeIds: readonly string[], edges: readonly EdgeLike[]): string[] {
  const known = new Set(nodeIds);
  const indegree = new Map<string, number>(nodeIds.map((id) => [id, 0]));
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    if (!known.has(edge.source) || !known.has(edge.target)) continue;
    indegree.set(edge.target, (indegree.get(edge.target) ?? 0) + 1);
    const list = next.get(edge.source);
    if (list) list.push(edge.target);
    else next.set(edge.source, [edge.target]);
  }
  const queue = nodeIds.filter((id) => indegree.get(id) === 0);
  const order: string[] = [];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    order.push(id);
    for (const target of next.get(id) ?? []) {
      const degree = (indegree.get(target) ?? 0) - 1;
      indegree.set(target, degree);
      if (degree === 0) queue.push(target);
    }
  }
  const placed = new Set(order);
  return [...order, ...nodeIds.filter((id) => !placed.has(id))];
}
