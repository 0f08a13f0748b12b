import { describe, expect, it } from 'vitest';
import { runEventSchema, runSchema, simulationSchema, type Run, type RunEvent, type RunSummary } from '../api/types';
import {
  applyCompanyEvent,
  applyRunEvent,
  countStates,
  describeResult,
  edgeOutcome,
  errorText,
  insertRun,
  isRetrying,
  matchesFilters,
  resultsFromRun,
  resultsFromSimulation,
  type RunListState,
} from './runs';

/** What `POST /payment-rules/demo/simulate` answers for a book (trimmed). */
const SIMULATION = simulationSchema.parse({
  company_id: 'demo',
  rule_version: null,
  status: 'succeeded',
  path: ['is-physical-product', 'generate-shipment', 'is-digital', 'is-book'],
  nodes: [
    {
      node_id: 'is-physical-product',
      node_type: 'condition',
      state: 'success',
      attempts: 1,
      output: { matched: true, match: 'all', expectations: [{ field: '$context.event.type', operator: 'eq', value: ['product'], actual: 'product', held: true }] },
    },
    { node_id: 'generate-shipment', node_type: 'task', task_name: 'payment.tasks.generate_shipment', state: 'success', attempts: 1, parameters: { product_id: 'b1' }, output: { shipment_id: 'shp_1' } },
    {
      node_id: 'is-digital',
      node_type: 'condition',
      state: 'failure',
      attempts: 1,
      output: {
        matched: false,
        match: 'all',
        expectations: [{ field: '$context.event.total', operator: 'gt', value: ['abc'], actual: '120.00', held: false, reason: 'cannot compare a number with a string' }],
      },
    },
    { node_id: 'is-book', node_type: 'condition', state: 'success', attempts: 1, output: { matched: true, match: 'any', expectations: [] } },
    { node_id: 'call-erp', node_type: 'task', task_name: 'payment.tasks.http_request', state: 'success', attempts: 0, output: null, note: 'not executed in a simulation' },
    { node_id: 'digital-access', node_type: 'task', task_name: 'payment.tasks.grant_digital_access', state: 'skipped', attempts: 0, output: null },
  ],
  documents: [{ node_id: 'generate-shipment', kind: 'shipment', body: { shipment_id: 'shp_1' } }],
});

describe('simulation results', () => {
  it('maps every node onto its state, step, explanation and details', () => {
    const results = resultsFromSimulation(SIMULATION);
    expect([...results.keys()]).toEqual(['is-physical-product', 'generate-shipment', 'is-digital', 'is-book', 'call-erp', 'digital-access']);
    expect(results.get('is-physical-product')).toMatchObject({ state: 'success', step: 1, explanation: { matched: true } });
    expect(results.get('generate-shipment')).toMatchObject({ state: 'success', step: 2, parameters: { product_id: 'b1' }, output: { shipment_id: 'shp_1' }, explanation: undefined });
    const digital = results.get('is-digital');
    expect(digital?.state).toBe('failure');
    expect(digital?.explanation?.expectations[0]).toMatchObject({ held: false, actual: '120.00', reason: 'cannot compare a number with a string' });
    expect(results.get('call-erp')).toMatchObject({ note: 'not executed in a simulation', output: undefined, step: undefined });
    expect(results.get('digital-access')?.state).toBe('skipped');
    expect(countStates(results)).toEqual({ pending: 0, running: 0, success: 4, failure: 1, skipped: 1 });
  });

  it('says which dependencies were followed', () => {
    const results = resultsFromSimulation(SIMULATION);
    expect(edgeOutcome(results, 'is-physical-product', 'success')).toBe('taken');
    expect(edgeOutcome(results, 'is-physical-product', 'failure')).toBe('not-taken');
    expect(edgeOutcome(results, 'is-digital', 'failure')).toBe('taken');
    expect(edgeOutcome(results, 'digital-access', 'success')).toBe('not-taken');
    expect(edgeOutcome(results, 'unknown-node', 'success')).toBe('waiting');
  });
});

const RUN_ID = 'run_1';
let nextId = 100;
function event(seq: number, kind: string, data: Record<string, unknown> = {}): RunEvent {
  return runEventSchema.parse({ id: (nextId += 3), run_id: RUN_ID, company_id: 'broken', seq, kind, data, created_at: `2026-11-29T01:20:${String(10 + seq).padStart(2, '0')}Z` });
}

function pendingRun(): Run {
  return runSchema.parse({
    run_id: RUN_ID,
    company_id: 'broken',
    event_id: 'evt_1',
    event_type: 'product',
    rule_version: 1,
    status: 'queued',
    created_at: '2026-11-29T01:20:10Z',
    nodes: ['is-product', 'call-erp', 'notify-finance'].map((node_id) => ({ node_id, state: 'pending', attempts: 0 })),
    documents: [],
  });
}

/** A run that failed on `call-erp`, was redriven, and succeeded. */
const LOG: RunEvent[] = [
  event(1, 'run.queued', { event_id: 'evt_1', event_type: 'product', rule_version: 1 }),
  event(2, 'run.started'),
  event(3, 'node.finished', { node_id: 'is-product', state: 'success', attempts: 1, error: null, duration_ms: 0 }),
  event(4, 'node.finished', { node_id: 'call-erp', state: 'failure', attempts: 1, task_name: 'payment.tasks.http_request', error: 'connection refused' }),
  event(5, 'node.finished', { node_id: 'notify-finance', state: 'skipped', attempts: 0, error: null }),
  event(6, 'run.finished', { status: 'failed' }),
  event(7, 'run.redriven', { failed_nodes: ['call-erp'], skipped_nodes: ['notify-finance'] }),
  event(8, 'run.started'),
  event(9, 'node.finished', { node_id: 'call-erp', state: 'success', attempts: 1, error: null }),
  event(10, 'node.finished', { node_id: 'notify-finance', state: 'success', attempts: 1, error: null }),
  event(11, 'run.finished', { status: 'succeeded' }),
];

const states = (run: Run) => Object.fromEntries((run.nodes ?? []).map((node) => [node.node_id, node.state]));

describe('a run followed live', () => {
  it('rebuilds each state from the events, through a failure and a redrive', () => {
    let run = pendingRun();
    const seen: string[] = [];
    for (const item of LOG) {
      run = applyRunEvent(run, item);
      seen.push(`${item.seq}:${run.status}`);
      if (item.seq === 6) {
        expect(states(run)).toEqual({ 'is-product': 'success', 'call-erp': 'failure', 'notify-finance': 'skipped' });
        expect(errorText(run.nodes?.[1]?.error)).toBe('connection refused');
      }
      if (item.seq === 7) expect(states(run)).toEqual({ 'is-product': 'success', 'call-erp': 'pending', 'notify-finance': 'pending' });
    }
    expect(seen).toEqual(['1:queued', '2:running', '3:running', '4:running', '5:running', '6:failed', '7:queued', '8:running', '9:running', '10:running', '11:succeeded']);
    expect(states(run)).toEqual({ 'is-product': 'success', 'call-erp': 'success', 'notify-finance': 'success' });
    expect(run.finished_at).toBe('2026-11-29T01:20:21Z');
    expect(errorText(run.nodes?.[1]?.error)).toBeUndefined();
  });

  it('replayed over a fetched run, ends where the run is and keeps its details', () => {
    let run: Run = { ...pendingRun(), status: 'succeeded', nodes: [{ node_id: 'is-product', state: 'success', attempts: 1, output: { matched: true } }] };
    for (const item of LOG) run = applyRunEvent(run, item);
    expect(run.status).toBe('succeeded');
    expect(run.nodes?.[0]?.output).toEqual({ matched: true });
    // A node the fetched run did not list is added.
    expect(states(run)).toEqual({ 'is-product': 'success', 'call-erp': 'success', 'notify-finance': 'success' });
    // Another run's events change nothing.
    expect(applyRunEvent(run, { ...LOG[0], run_id: 'run_2' } as RunEvent)).toBe(run);
  });

  it('maps a fetched run onto the canvas', () => {
    const run = runSchema.parse({
      ...pendingRun(),
      status: 'failed',
      nodes: [
        { node_id: 'is-product', node_type: 'condition', state: 'success', attempts: 1, output: { matched: true, match: 'all', expectations: [] }, started_at: '2026-11-29T01:20:11Z', finished_at: '2026-11-29T01:20:11Z' },
        {
          node_id: 'call-erp',
          node_type: 'task',
          state: 'failure',
          attempts: 1,
          parameters: { url: 'http://127.0.0.1:9/orders' },
          output: null,
          error: { message: 'private or loopback address', retryable: false },
          history: [{ state: 'failure', attempts: 1 }],
        },
        { node_id: 'notify-finance', node_type: 'task', state: 'skipped', attempts: 0 },
      ],
    });
    const results = resultsFromRun(run);
    expect(results.get('is-product')).toMatchObject({ state: 'success', explanation: { matched: true }, startedAt: '2026-11-29T01:20:11Z' });
    expect(results.get('call-erp')).toMatchObject({ state: 'failure', output: undefined, history: [{ state: 'failure' }], parameters: { url: 'http://127.0.0.1:9/orders' } });
    expect(errorText(results.get('call-erp')?.error)).toBe('private or loopback address');
    expect(edgeOutcome(results, 'call-erp', 'success')).toBe('not-taken');
  });
});

function summary(run_id: string, created_at: string, extra: Partial<RunSummary> = {}): RunSummary {
  return { run_id, company_id: 'acme', event_id: `evt_${run_id}`, event_type: 'product', rule_version: 1, status: 'succeeded', redrive_count: 0, created_at, started_at: null, finished_at: null, ...extra };
}

function companyEvent(run_id: string, kind: string, data: Record<string, unknown>, created_at = '2026-11-29T12:00:00Z'): RunEvent {
  return { id: (nextId += 1), run_id, company_id: 'acme', seq: 1, kind, data, created_at };
}

describe('a run list followed live', () => {
  const list: RunListState = { items: [summary('run_b', '2026-11-29T11:00:00Z'), summary('run_a', '2026-11-29T10:00:00Z', { status: 'failed' })], nextCursor: null };

  it('adds a new run at the top, then follows its status', () => {
    const queued = applyCompanyEvent(list, companyEvent('run_c', 'run.queued', { event_id: 'evt_c', event_type: 'subscription', rule_version: 2 }), {});
    expect(queued.fetch).toBeUndefined();
    expect(queued.list.items.map((item) => `${item.run_id}:${item.status}`)).toEqual(['run_c:queued', 'run_b:succeeded', 'run_a:failed']);
    expect(queued.list.items[0]).toMatchObject({ event_type: 'subscription', rule_version: 2 });

    const started = applyCompanyEvent(queued.list, companyEvent('run_c', 'run.started', {}, '2026-11-29T12:00:01Z'), {}).list;
    expect(started.items[0]).toMatchObject({ status: 'running', started_at: '2026-11-29T12:00:01Z' });
    const finished = applyCompanyEvent(started, companyEvent('run_c', 'run.finished', { status: 'failed' }, '2026-11-29T12:00:02Z'), {}).list;
    expect(finished.items[0]).toMatchObject({ status: 'failed', finished_at: '2026-11-29T12:00:02Z' });
    const redriven = applyCompanyEvent(finished, companyEvent('run_c', 'run.redriven', { failed_nodes: [] }), {}).list;
    expect(redriven.items[0]).toMatchObject({ status: 'queued', redrive_count: 1, finished_at: null });
    // The other runs are the same objects.
    expect(redriven.items[1]).toBe(list.items[0]);
  });

  it('adds only what matches the filters, and asks for a run that may have come to match', () => {
    const queued = companyEvent('run_c', 'run.queued', { event_id: 'evt_c', event_type: 'product', rule_version: 1 });
    expect(applyCompanyEvent(list, queued, { eventType: 'service' }).list).toBe(list);
    expect(applyCompanyEvent(list, queued, { createdBefore: '2026-11-29T11:30:00Z' }).list).toBe(list);
    expect(applyCompanyEvent(list, queued, { status: 'queued', createdAfter: '2026-11-29T11:59:00Z' }).list.items).toHaveLength(3);
    // Failed runs only: a run the list does not show finishing may now be one.
    expect(applyCompanyEvent(list, companyEvent('run_z', 'run.finished', { status: 'failed' }), { status: 'failed' })).toEqual({ list, fetch: 'run_z' });
    expect(applyCompanyEvent(list, companyEvent('run_z', 'node.finished', { node_id: 'x' }), { status: 'failed' })).toEqual({ list });
    expect(applyCompanyEvent(list, companyEvent('run_z', 'run.finished', { status: 'failed' }), {})).toEqual({ list });
    expect(matchesFilters(summary('run_q', '2026-11-29T11:00:00Z', { status: 'failed', event_type: 'service' }), { status: 'failed', eventType: 'service', createdAfter: '2026-11-29T11:00:00Z' })).toBe(true);
  });

  it('inserts in order, never twice, and leaves older runs to the next page', () => {
    const middle = insertRun(list, summary('run_m', '2026-11-29T10:30:00Z'));
    expect(middle.items.map((item) => item.run_id)).toEqual(['run_b', 'run_m', 'run_a']);
    expect(insertRun(middle, summary('run_m', '2026-11-29T10:30:00Z'))).toBe(middle);
    const paged: RunListState = { ...list, nextCursor: 'abc' };
    expect(insertRun(paged, summary('run_old', '2026-11-29T09:00:00Z'))).toBe(paged);
    expect(insertRun(paged, summary('run_new', '2026-11-29T11:30:00Z')).items[0]?.run_id).toBe('run_new');
  });
});

describe('describeResult', () => {
  it('gives each state a short line for the card', () => {
    const results = resultsFromSimulation(SIMULATION);
    const line = (id: string) => {
      const result = results.get(id);
      if (!result) throw new Error(`no result for ${id}`);
      return describeResult(result);
    };
    expect(line('is-physical-product')).toEqual({ text: 'Held · found "product"', tone: 'success' });
    expect(line('generate-shipment')).toEqual({ text: 'shipment_id: shp_1', tone: 'success' });
    expect(line('is-digital')).toEqual({ text: 'cannot compare a number with a string', tone: 'danger' });
    expect(line('call-erp')).toEqual({ text: 'not executed in a simulation', tone: 'muted' });
    expect(line('digital-access').tone).toBe('muted');
    // A task waiting for its next attempt is `pending` with `next_attempt_at`.
    const waiting = resultsFromRun(
      runSchema.parse({ ...pendingRun(), status: 'running', nodes: [{ node_id: 'call-erp', state: 'pending', attempts: 1, next_attempt_at: '2026-11-29T01:42:21Z', error: { message: 'timed out', retryable: true } }] }),
    ).get('call-erp');
    expect(waiting && isRetrying(waiting)).toBe(true);
    expect(waiting && describeResult(waiting)).toEqual({ text: 'Attempt 1 failed: retrying', tone: 'primary' });
  });
});
