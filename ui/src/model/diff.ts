/**
 * The difference between two rule sets (two versions, or a version and the
 * draft), computed here from their JSON: nodes added, removed, changed
 * (field by field) and moved (only their position changed).
 */
import type { RuleNode } from './rules';

export interface FieldChange {
  /** `parameters.product_id`, `expect[0].value`, `depends_on`… */
  path: string;
  before: unknown;
  after: unknown;
}

export interface NodeChange {
  nodeId: string;
  nodeType: string;
  changes: FieldChange[];
}

export interface RuleSetDiff {
  added: RuleNode[];
  removed: RuleNode[];
  changed: NodeChange[];
  /** Same content, new position. */
  moved: string[];
  unchanged: number;
}

export function diffRuleSets(before: readonly RuleNode[], after: readonly RuleNode[]): RuleSetDiff {
  const beforeById = new Map(before.map((node) => [node.node_id, node]));
  const afterById = new Map(after.map((node) => [node.node_id, node]));
  const diff: RuleSetDiff = { added: [], removed: [], changed: [], moved: [], unchanged: 0 };
  for (const node of after) {
    const old = beforeById.get(node.node_id);
    if (!old) {
      diff.added.push(node);
      continue;
    }
    const changes = diffValues(withoutUi(old), withoutUi(node), '');
    if (changes.length > 0) diff.changed.push({ nodeId: node.node_id, nodeType: node.node_type, changes });
    else if (!jsonEqual(old.ui, node.ui)) diff.moved.push(node.node_id);
    else diff.unchanged += 1;
  }
  for (const node of before) {
    if (!afterById.has(node.node_id)) diff.removed.push(node);
  }
  return diff;
}

export function isEmptyDiff(diff: RuleSetDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0 && diff.moved.length === 0;
}

function withoutUi(node: RuleNode): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...node };
  delete copy.ui;
  // `depends_on` absent and `[]` mean the same.
  if (Array.isArray(copy.depends_on) && copy.depends_on.length === 0) delete copy.depends_on;
  return copy;
}

/** Leaf-level changes; lists of dependencies are compared whole (order does not matter). */
function diffValues(before: unknown, after: unknown, path: string): FieldChange[] {
  if (path === 'depends_on') {
    return sameDependencies(before, after) ? [] : [{ path, before, after }];
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    const out: FieldChange[] = [];
    for (const key of keys) out.push(...diffValues(before[key], after[key], path ? `${path}.${key}` : key));
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length && before.some((item) => isPlainObject(item))) {
    return before.flatMap((item, i) => diffValues(item, after[i], `${path}[${i}]`));
  }
  return jsonEqual(before, after) ? [] : [{ path, before, after }];
}

function sameDependencies(before: unknown, after: unknown): boolean {
  const key = (list: unknown) =>
    (Array.isArray(list) ? list : [])
      .map((item) => JSON.stringify(canonical(item)))
      .sort()
      .join('|');
  return key(before) === key(after);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical(value[key])]),
    );
  }
  return value;
}

/** Deep equality of JSON values, ignoring key order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
