import { describe, expect, it } from 'vitest';
import { eventPaths, filterSuggestions, renameNodeReferences, upstreamPaths } from './paths';
import type { TaskSpec } from './catalogue';

describe('$context paths', () => {
  it('lists every path of a sample event', () => {
    const paths = eventPaths({ type: 'product', product: { id: 'book-1', tags: ['a'] } }).map((suggestion) => suggestion.path);
    expect(paths).toEqual(['$context.event.type', '$context.event.product', '$context.event.product.id', '$context.event.product.tags']);
  });

  it('offers the outputs of upstream tasks', () => {
    const tasks = new Map<string, TaskSpec>([['t.ship', { name: 't.ship', output: { properties: { shipment_id: { description: 'the id' } } } }]]);
    const paths = upstreamPaths([{ id: 'ship' , taskName: 't.ship' }, { id: 'cond' }], tasks);
    expect(paths).toEqual([{ path: '$context.nodes.ship.output.shipment_id', detail: 'the id', group: 'Upstream outputs' }]);
  });

  it('filters by prefix first, then by substring', () => {
    const all = eventPaths({ product: { id: 1, type: 'b' }, type: 'product' });
    expect(filterSuggestions(all, '$context.event.pro').map((s) => s.path)).toEqual(['$context.event.product', '$context.event.product.id', '$context.event.product.type']);
    expect(filterSuggestions(all, 'type').map((s) => s.path)).toEqual(['$context.event.product.type', '$context.event.type']);
    expect(filterSuggestions(all, '$').length).toBe(all.length);
  });

  it('renames node references at any depth', () => {
    const rule = { parameters: { a: '$context.nodes.old.output.id', b: ['$context.nodes.old'], c: '$context.nodes.older.output.x', d: 3 } };
    expect(renameNodeReferences(rule, 'old', 'new')).toEqual({
      parameters: { a: '$context.nodes.new.output.id', b: ['$context.nodes.new'], c: '$context.nodes.older.output.x', d: 3 },
    });
  });
});
