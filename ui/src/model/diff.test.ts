import { describe, expect, it } from 'vitest';
import { diffRuleSets, isEmptyDiff, jsonEqual } from './diff';
import { DEMO_RULES_ORIGINAL, DEMO_RULES_SERVED } from './fixtures/demo';
import type { RuleNode } from './rules';

describe('diffRuleSets', () => {
  it('finds no difference between a rule set and its normalised form', () => {
    expect(isEmptyDiff(diffRuleSets(DEMO_RULES_ORIGINAL, DEMO_RULES_SERVED))).toBe(true);
  });

  it('lists nodes added, removed, changed field by field, and moved', () => {
    const after: RuleNode[] = structuredClone(DEMO_RULES_SERVED);
    const book = after.find((node) => node.node_id === 'is-book');
    if (book?.node_type !== 'condition') throw new Error('fixture');
    book.expect[0]?.value?.push('audiobook');
    const commission = after.find((node) => node.node_id === 'generate-commission');
    if (commission?.node_type !== 'task') throw new Error('fixture');
    commission.parameters = { ...commission.parameters, rate: '0.08' };
    commission.depends_on = [{ node_id: 'is-book', state: 'failure' }];
    const shipment = after.find((node) => node.node_id === 'generate-shipment');
    if (!shipment) throw new Error('fixture');
    shipment.ui = { x: 999, y: 999 };
    const withoutNotify = after.filter((node) => node.node_id !== 'notify-royalties');
    withoutNotify.push({ node_type: 'task', node_id: 'generate-invoice', task_name: 'payment.tasks.generate_invoice', parameters: null });

    const diff = diffRuleSets(DEMO_RULES_SERVED, withoutNotify);
    expect(diff.added.map((node) => node.node_id)).toEqual(['generate-invoice']);
    expect(diff.removed.map((node) => node.node_id)).toEqual(['notify-royalties']);
    expect(diff.moved).toEqual(['generate-shipment']);
    expect(diff.changed.map((change) => change.nodeId)).toEqual(['is-book', 'generate-commission']);
    expect(diff.changed[0]?.changes).toEqual([{ path: 'expect[0].value', before: ['book', 'ebook'], after: ['book', 'ebook', 'audiobook'] }]);
    expect(diff.changed[1]?.changes.map((change) => change.path).sort()).toEqual(['depends_on', 'parameters.rate']);
    expect(diff.unchanged).toBe(2);
  });

  it('ignores the order of dependencies and of keys', () => {
    const a: RuleNode = {
      node_type: 'task',
      node_id: 'n',
      task_name: 't',
      depends_on: [
        { node_id: 'x', state: 'success' },
        { node_id: 'y', state: 'failure' },
      ],
    };
    const b = { ...a, depends_on: [...(a.depends_on ?? [])].reverse() };
    expect(isEmptyDiff(diffRuleSets([a], [b]))).toBe(true);
    expect(jsonEqual({ a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  });
});
