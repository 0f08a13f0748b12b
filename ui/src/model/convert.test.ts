import { describe, expect, it } from 'vitest';
import { autoLayout, graphToRules, rulesToGraph } from './convert';
import { DEMO_RULES_ORIGINAL, DEMO_RULES_SERVED } from './fixtures/demo';
import { NODE_HEIGHT, NODE_WIDTH } from './layout';
import { ruleNodeSchema, type RuleNode } from './rules';
import { prng, randomRules } from './testing';

function roundTrip(rules: RuleNode[]): RuleNode[] {
  const graph = rulesToGraph(rules);
  return graphToRules(graph.nodes, graph.edges).rules;
}

describe('rules → graph → rules', () => {
  it('is lossless on the demo rule as the API serves it, key order included', () => {
    const back = roundTrip(DEMO_RULES_SERVED);
    expect(back).toEqual(DEMO_RULES_SERVED);
    expect(JSON.stringify(back)).toBe(JSON.stringify(DEMO_RULES_SERVED));
  });

  it('is lossless on the demo rule in the original format (root without depends_on)', () => {
    expect(JSON.stringify(roundTrip(DEMO_RULES_ORIGINAL))).toBe(JSON.stringify(DEMO_RULES_ORIGINAL));
  });

  it('draws one node per rule at its ui position and one edge per dependency', () => {
    const graph = rulesToGraph(DEMO_RULES_SERVED);
    expect(graph.nodes.map((node) => node.id)).toEqual(DEMO_RULES_SERVED.map((node) => node.node_id));
    expect(graph.nodes.map((node) => node.position)).toEqual(DEMO_RULES_SERVED.map((node) => ({ x: node.ui?.x, y: node.ui?.y })));
    expect(graph.nodes.map((node) => node.type)).toEqual(['condition', 'task', 'condition', 'task', 'task', 'task']);
    expect(graph.edges.map((edge) => [edge.source, edge.sourceHandle, edge.target])).toEqual([
      ['is-physical-product', 'success', 'generate-shipment'],
      ['generate-shipment', 'success', 'is-book'],
      ['is-book', 'success', 'duplicate-shipment-royalties'],
      ['duplicate-shipment-royalties', 'success', 'notify-royalties'],
      ['is-physical-product', 'success', 'generate-commission'],
    ]);
  });

  it('writes moved positions back as ui', () => {
    const graph = rulesToGraph(DEMO_RULES_SERVED);
    const moved = graph.nodes.map((node) => (node.id === 'is-book' ? { ...node, position: { x: 40, y: 320 } } : node));
    const rules = graphToRules(moved, graph.edges).rules;
    expect(rules.find((node) => node.node_id === 'is-book')?.ui).toEqual({ x: 40, y: 320 });
  });

  it('keeps fields it does not know, at every level', () => {
    const rules = [
      {
        node_type: 'condition',
        node_id: 'a',
        'x-owner': { team: 'billing' },
        expect: [{ field: '$context.event.type', operator: 'eq', value: ['product'], 'x-why': 'legacy' }],
        ui: { x: 1.5, y: -2, collapsed: true },
      },
      {
        node_type: 'task',
        node_id: 'b',
        depends_on: [{ node_id: 'a', state: 'failure', since: 3 }],
        task_name: 'acme.tasks.custom',
        parameters: { nested: { list: [1, '$context.event.a', null] } },
        retry: { max_attempts: 2, jitter: 'full' },
        timeout_ms: 100,
        trigger: 'any',
      },
    ] as unknown as RuleNode[];
    const back = roundTrip(rules);
    expect(back).toEqual(rules);
    expect(JSON.stringify(back)).toBe(JSON.stringify(rules));
  });

  it('keeps a dependency on a node that does not exist, and duplicate dependencies', () => {
    const rules: RuleNode[] = [
      { node_type: 'task', node_id: 'a', task_name: 'payment.tasks.notify', parameters: { channel: 'x' }, depends_on: [{ node_id: 'ghost', state: 'success' }] },
      {
        node_type: 'task',
        node_id: 'b',
        task_name: 'payment.tasks.notify',
        depends_on: [
          { node_id: 'a', state: 'success' },
          { node_id: 'a', state: 'success' },
        ],
      },
    ];
    const graph = rulesToGraph(rules);
    expect(new Set(graph.edges.map((edge) => edge.id)).size).toBe(3);
    expect(roundTrip(rules)).toEqual(rules);
  });

  it('maps every rule and dependency back to its node and edge', () => {
    const graph = rulesToGraph(DEMO_RULES_SERVED);
    const { index } = graphToRules(graph.nodes, graph.edges);
    expect(index.nodeAt).toEqual(DEMO_RULES_SERVED.map((node) => node.node_id));
    expect(index.edgeAt[2]).toEqual(['generate-shipment:success->is-book']);
    expect(index.edgeAt[0]).toEqual([]);
  });

  it('is lossless on 300 generated rule sets', () => {
    const random = prng(20261129);
    for (let round = 0; round < 300; round += 1) {
      const rules = randomRules(random, 1 + Math.floor(random() * 25));
      for (const node of rules) expect(ruleNodeSchema.safeParse(node).success).toBe(true);
      const back = roundTrip(rules);
      expect(JSON.stringify(back)).toBe(JSON.stringify(rules));
    }
  });
});

describe('nodes without ui', () => {
  const bare = DEMO_RULES_ORIGINAL.map((node) => Object.fromEntries(Object.entries(node).filter(([key]) => key !== 'ui')) as RuleNode);

  it('are laid out by dagre, top to bottom, without overlaps', () => {
    const graph = rulesToGraph(bare);
    const at = new Map(graph.nodes.map((node) => [node.id, node.position]));
    for (const edge of graph.edges) {
      const source = at.get(edge.source);
      const target = at.get(edge.target);
      expect(source && target && target.y > source.y).toBe(true);
    }
    for (const a of graph.nodes) {
      for (const b of graph.nodes) {
        if (a.id >= b.id) continue;
        const apart = Math.abs(a.position.x - b.position.x) >= NODE_WIDTH || Math.abs(a.position.y - b.position.y) >= NODE_HEIGHT;
        expect(apart, `${a.id} and ${b.id} overlap`).toBe(true);
      }
    }
  });

  it('get no ui written back until they are moved or tidied', () => {
    expect(roundTrip(bare)).toEqual(bare);
    const tidied = autoLayout(rulesToGraph(bare));
    const rules = graphToRules(tidied.nodes, tidied.edges).rules;
    for (const node of rules) expect(node.ui).toBeDefined();
  });

  it('next to placed nodes, do not land on them', () => {
    const mixed = DEMO_RULES_ORIGINAL.map((node, i) => (i % 2 === 0 ? node : (Object.fromEntries(Object.entries(node).filter(([key]) => key !== 'ui')) as RuleNode)));
    const graph = rulesToGraph(mixed);
    const placed = graph.nodes.filter((node) => !node.data.autoPlaced);
    const auto = graph.nodes.filter((node) => node.data.autoPlaced);
    expect(auto.length).toBe(3);
    for (const a of auto) {
      for (const b of placed) {
        const apart = Math.abs(a.position.x - b.position.x) >= NODE_WIDTH || Math.abs(a.position.y - b.position.y) >= NODE_HEIGHT;
        expect(apart, `${a.id} lands on ${b.id}`).toBe(true);
      }
    }
    expect(roundTrip(mixed)).toEqual(mixed);
  });
});
