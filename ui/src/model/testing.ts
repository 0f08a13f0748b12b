/** Test helpers: a seeded PRNG and a generator of random (valid-shaped) rule sets. */
import type { RuleNode } from './rules';
import { OPERATORS, operatorArity } from './rules';

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TASKS = ['payment.tasks.generate_shipment', 'payment.tasks.notify', 'payment.tasks.generate_invoice', 'acme.tasks.custom'];

/**
 * A random DAG of `size` nodes: each node depends on a few earlier ones,
 * with random fields (some unknown to the canvas), `ui` on some nodes only,
 * and `depends_on` sometimes absent.
 */
export function randomRules(random: () => number, size: number): RuleNode[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const rules: RuleNode[] = [];
  for (let i = 0; i < size; i += 1) {
    const id = `n${i}-${Math.floor(random() * 1000)}`;
    const deps: Record<string, unknown>[] = [];
    const count = i === 0 ? 0 : Math.floor(random() * Math.min(3, i + 1));
    const taken = new Set<string>();
    for (let d = 0; d < count; d += 1) {
      const source = rules[Math.floor(random() * rules.length)];
      if (!source || taken.has(source.node_id)) continue;
      taken.add(source.node_id);
      const dep: Record<string, unknown> = { node_id: source.node_id, state: random() < 0.7 ? 'success' : 'failure' };
      if (random() < 0.1) dep.note = 'kept';
      deps.push(dep);
    }
    const common: Record<string, unknown> = { node_id: id };
    if (deps.length > 0 || random() < 0.5) common.depends_on = deps;
    if (random() < 0.3) common.trigger = pick(['all', 'any'] as const);
    if (random() < 0.7) common.ui = { x: Math.round(random() * 2000) - 1000 + (random() < 0.2 ? 0.5 : 0), y: Math.round(random() * 2000) };
    if (random() < 0.15) common['x-extension'] = { nested: [1, 'two', { three: null }] };
    let node: Record<string, unknown>;
    if (random() < 0.4) {
      const rows = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
        const operator = pick(OPERATORS);
        const arity = operatorArity(operator);
        const row: Record<string, unknown> = { field: `$context.event.f${Math.floor(random() * 10)}`, operator };
        if (arity === 'one') row.value = [pick(['a', 1, 2.5, true, null, '120.0'])];
        else if (arity === 'list') row.value = ['x', 'y', 3];
        else if (random() < 0.5) row.value = [];
        return row;
      });
      node = { node_type: 'condition', ...common, expect: rows };
      if (random() < 0.3) node.match = pick(['all', 'any'] as const);
    } else {
      node = { node_type: 'task', ...common, task_name: pick(TASKS), parameters: random() < 0.1 ? null : { a: '$context.event.a', b: 2, deep: { c: ['$context.event.c'] } } };
      if (random() < 0.2) node.retry = { max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 1000 };
      if (random() < 0.2) node.timeout_ms = 5000;
    }
    // Shuffle the key order now and then: the round trip must keep it.
    if (random() < 0.3) node = Object.fromEntries(Object.entries(node).reverse());
    rules.push(node as RuleNode);
  }
  return rules;
}
