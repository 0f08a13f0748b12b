import { describe, expect, it } from 'vitest';
import { ancestors, descendants, topologicalOrder, wouldCreateCycle, type EdgeLike } from './graph';
import { prng } from './testing';

const chain: EdgeLike[] = [
  { source: 'a', target: 'b' },
  { source: 'b', target: 'c' },
  { source: 'c', target: 'd' },
];

describe('wouldCreateCycle', () => {
  it('refuses a self-loop', () => {
    expect(wouldCreateCycle([], 'a', 'a')).toBe(true);
  });

  it('refuses an edge back up a chain, direct or long', () => {
    expect(wouldCreateCycle(chain, 'b', 'a')).toBe(true);
    expect(wouldCreateCycle(chain, 'd', 'a')).toBe(true);
  });

  it('allows edges down a chain, across a diamond, and to new nodes', () => {
    expect(wouldCreateCycle(chain, 'a', 'd')).toBe(false);
    const diamond = [...chain, { source: 'a', target: 'x' }, { source: 'x', target: 'd' }];
    expect(wouldCreateCycle(diamond, 'x', 'c')).toBe(false);
    expect(wouldCreateCycle(diamond, 'b', 'x')).toBe(false);
    expect(wouldCreateCycle(chain, 'd', 'new')).toBe(false);
    expect(wouldCreateCycle(chain, 'ghost', 'a')).toBe(false);
  });

  it('agrees with reachability computed the slow way on random graphs', () => {
    const random = prng(7);
    for (let round = 0; round < 200; round += 1) {
      const size = 2 + Math.floor(random() * 12);
      const ids = Array.from({ length: size }, (_, i) => `n${i}`);
      const edges: EdgeLike[] = [];
      // Random DAG edges (i < j), so the graph starts acyclic.
      for (let i = 0; i < size; i += 1) {
        for (let j = i + 1; j < size; j += 1) {
          if (random() < 0.25) edges.push({ source: ids[i] ?? '', target: ids[j] ?? '' });
        }
      }
      // reach[i * size + j]: j is reachable from i (Floyd–Warshall).
      const reach = Array.from({ length: size * size }, (_, n) => Math.floor(n / size) === n % size);
      for (const edge of edges) reach[ids.indexOf(edge.source) * size + ids.indexOf(edge.target)] = true;
      for (let k = 0; k < size; k += 1) {
        for (let i = 0; i < size; i += 1) {
          for (let j = 0; j < size; j += 1) {
            if (reach[i * size + k] && reach[k * size + j]) reach[i * size + j] = true;
          }
        }
      }
      for (let i = 0; i < size; i += 1) {
        for (let j = 0; j < size; j += 1) {
          // Adding i → j closes a cycle exactly when j already reaches i.
          expect(wouldCreateCycle(edges, ids[i] ?? '', ids[j] ?? '')).toBe(reach[j * size + i]);
        }
      }
    }
  });
});

describe('ancestors, descendants and order', () => {
  it('walk the graph both ways', () => {
    expect([...descendants(chain, 'b')].sort()).toEqual(['c', 'd']);
    expect([...ancestors(chain, 'c')].sort()).toEqual(['a', 'b']);
    expect(ancestors(chain, 'a').size).toBe(0);
  });

  it('orders dependencies first, and puts nodes on a cycle last', () => {
    expect(topologicalOrder(['d', 'c', 'b', 'a'], chain)).toEqual(['a', 'b', 'c', 'd']);
    const cyclic = [...chain, { source: 'd', target: 'b' }];
    expect(topologicalOrder(['a', 'b', 'c', 'd'], cyclic)).toEqual(['a', 'b', 'c', 'd']);
    expect(topologicalOrder(['e', 'a', 'b', 'c', 'd'], cyclic)[0]).toBe('e');
  });
});
