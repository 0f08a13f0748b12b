/**
 * What a run (or a simulation) did, node by node, in the shape the canvas
 * draws: each node's state and details keyed by node id, which edges were
 * followed, a run kept up to date from its event stream, and a run list
 * kept up to date from the company's stream.
 */
import { z } from 'zod';
import type { Run, RunEvent, RunNode, RunSummary, Simulation } from '../api/types';
import type { DependencyState } from './rules';

export type NodeState = 'pending' | 'running' | 'success' | 'failure' | 'skipped';
const NODE_STATE_SET = new Set<string>(['pending', 'running', 'success', 'failure', 'skipped']);

/** A state from the server; anything unknown reads as `pending`. */
export function nodeState(value: string | undefined): NodeState {
  return value !== undefined && NODE_STATE_SET.has(value) ? (value as NodeState) : 'pending';
}

/** A task waiting for its next attempt (after a retryable error) is `pending` with `next_attempt_at`. */
export function isRetrying(result: NodeResult | undefined): boolean {
  return result?.state === 'pending' && result.nextAttemptAt !== undefined;
}

export function isTerminalState(state: NodeState): boolean {
  return state === 'success' || state === 'failure' || state === 'skipped';
}

const TERMINAL_RUN = new Set(['succeeded', 'failed', 'aborted']);
export function isTerminalRun(status: string): boolean {
  return TERMINAL_RUN.has(status);
}

/** One expectation of a condition, as evaluated: the value found and whether it held. */
export const expectationResultSchema = z.looseObject({
  field: z.string(),
  operator: z.string(),
  value: z.array(z.unknown()).catch([]),
  actual: z.unknown(),
  held: z.boolean(),
  reason: z.string().nullish(),
});
export type ExpectationResult = z.infer<typeof expectationResultSchema>;

/** A condition's output: `{matched, match, expectations}`. */
export const conditionExplanationSchema = z.looseObject({
  matched: z.boolean(),
  match: z.string().catch('all'),
  expectations: z.array(expectationResultSchema),
});
export type ConditionExplanation = z.infer<typeof conditionExplanationSchema>;

export function parseExplanation(output: unknown): ConditionExplanation | undefined {
  const parsed = conditionExplanationSchema.safeParse(output);
  return parsed.success ? parsed.data : undefined;
}

/** The message of a node's `error` (`{message, retryable, …}` or a string). */
export function errorText(error: unknown): string | undefined {
  if (error === null || error === undefined) return undefined;
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && 'message' in error && typeof error.message === 'string') return error.message;
  return JSON.stringify(error);
}

/** One node's result, from a simulation or a run. */
export interface NodeResult {
  nodeId: string;
  nodeType: string | undefined;
  taskName: string | undefined;
  state: NodeState;
  attempts: number;
  parameters: unknown;
  output: unknown;
  error: unknown;
  /** Why the result is not the task's own (a simulation does not call `http_request`…). */
  note: string | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  nextAttemptAt: string | undefined;
  /** Earlier executions a redrive reset, oldest first. */
  history: unknown[];
  /** A condition's explanation, when its output is one. */
  explanation: ConditionExplanation | undefined;
  /** 1-based position in the order nodes were evaluated (simulations). */
  step: number | undefined;
}

export type NodeResults = ReadonlyMap<string, NodeResult>;

function present(value: unknown): unknown {
  return value === null ? undefined : value;
}

export function resultsFromSimulation(simulation: Simulation): Map<string, NodeResult> {
  const steps = new Map(simulation.path.map((nodeId, index) => [nodeId, index + 1]));
  return new Map(
    simulation.nodes.map((node): [string, NodeResult] => [
      node.node_id,
      {
        nodeId: node.node_id,
        nodeType: node.node_type,
        taskName: node.task_name ?? undefined,
        state: nodeState(node.state),
        attempts: node.attempts ?? 0,
        parameters: present(node.parameters),
        output: present(node.output),
        error: present(node.error),
        note: node.note ?? undefined,
        startedAt: undefined,
        finishedAt: undefined,
        nextAttemptAt: undefined,
        history: [],
        explanation: node.node_type === 'condition' ? parseExplanation(node.output) : undefined,
        step: steps.get(node.node_id),
      },
    ]),
  );
}

export function resultFromRunNode(node: RunNode): NodeResult {
  return {
    nodeId: node.node_id,
    nodeType: node.node_type,
    taskName: node.task_name ?? undefined,
    state: nodeState(node.state),
    attempts: node.attempts ?? 0,
    parameters: present(node.parameters),
    output: present(node.output),
    error: present(node.error),
    note: undefined,
    startedAt: node.started_at ?? undefined,
    finishedAt: node.finished_at ?? undefined,
    nextAttemptAt: node.next_attempt_at ?? undefined,
    history: node.history ?? [],
    explanation: node.node_type === 'condition' ? parseExplanation(node.output) : undefined,
    step: undefined,
  };
}

export function resultsFromRun(run: Run): Map<string, NodeResult> {
  return new Map((run.nodes ?? []).map((node) => [node.node_id, resultFromRunNode(node)]));
}

/**
 * Whether a dependency was followed: `taken` when its source ended in the
 * state it waits for, `waiting` while the source has not ended, else
 * `not-taken`.
 */
export type EdgeOutcome = 'taken' | 'not-taken' | 'waiting';

export function edgeOutcome(results: NodeResults, source: string, state: DependencyState): EdgeOutcome {
  const result = results.get(source);
  if (!result || !isTerminalState(result.state)) return 'waiting';
  return result.state === state ? 'taken' : 'not-taken';
}

/** How many nodes are in each state. */
export function countStates(results: NodeResults): Record<NodeState, number> {
  const counts: Record<NodeState, number> = { pending: 0, running: 0, success: 0, failure: 0, skipped: 0 };
  for (const result of results.values()) counts[result.state] += 1;
  return counts;
}

// ---- A run kept up to date from its event stream.

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * A run after one of its events. Applied in stream order from the first
 * event, the events rebuild the states the stored run has (a redrive
 * included); details the events do not carry (outputs, parameters) stay as
 * last fetched.
 */
export function applyRunEvent(run: Run, event: RunEvent): Run {
  if (event.run_id !== run.run_id) return run;
  const data = event.data;
  switch (event.kind) {
    case 'run.queued':
      return { ...run, status: 'queued' };
    case 'run.started':
      return { ...run, status: 'running', started_at: run.started_at ?? event.created_at, finished_at: null };
    case 'run.finished':
      return { ...run, status: typeof data.status === 'string' ? data.status : run.status, finished_at: event.created_at };
    case 'run.redriven': {
      const reset = new Set([...stringList(data.failed_nodes), ...stringList(data.skipped_nodes)]);
      return {
        ...run,
        status: 'queued',
        finished_at: null,
        nodes: (run.nodes ?? []).map((node) => (reset.has(node.node_id) ? { ...node, state: 'pending', error: null, output: null } : node)),
      };
    }
    case 'node.finished': {
      const nodeId = typeof data.node_id === 'string' ? data.node_id : undefined;
      if (!nodeId) return run;
      const nodes = run.nodes ?? [];
      const update = (node: RunNode): RunNode => ({
        ...node,
        state: typeof data.state === 'string' ? data.state : node.state,
        attempts: typeof data.attempts === 'number' ? data.attempts : node.attempts,
        error: typeof data.error === 'string' ? { message: data.error } : data.error === null ? null : node.error,
        finished_at: node.finished_at ?? event.created_at,
      });
      const known = nodes.some((node) => node.node_id === nodeId);
      return {
        ...run,
        status: run.status === 'queued' ? 'running' : run.status,
        nodes: known ? nodes.map((node) => (node.node_id === nodeId ? update(node) : node)) : [...nodes, update({ node_id: nodeId, state: 'pending' })],
      };
    }
    default:
      return run;
  }
}

// ---- A run list kept up to date from the company's stream.

export interface RunFilters {
  status?: string;
  eventType?: string;
  /** RFC 3339. */
  createdAfter?: string;
  /** RFC 3339. */
  createdBefore?: string;
}

export function matchesFilters(run: RunSummary, filters: RunFilters): boolean {
  if (filters.status && run.status !== filters.status) return false;
  if (filters.eventType && run.event_type !== filters.eventType) return false;
  const created = Date.parse(run.created_at);
  if (filters.createdAfter && created < Date.parse(filters.createdAfter)) return false;
  if (filters.createdBefore && created >= Date.parse(filters.createdBefore)) return false;
  return true;
}

/** Newest first, as `GET /runs` lists them: by `created_at`, then `run_id`. */
export function compareRuns(a: RunSummary, b: RunSummary): number {
  const byTime = Date.parse(b.created_at) - Date.parse(a.created_at);
  if (byTime !== 0) return byTime;
  return a.run_id < b.run_id ? 1 : a.run_id > b.run_id ? -1 : 0;
}

export interface RunListState {
  items: RunSummary[];
  /** The next (older) page's cursor; null when everything is loaded. */
  nextCursor: string | null;
}

/**
 * Adds a run to a list in its place, unless it is already there or older
 * than the last run loaded while older pages remain (it will come with them).
 */
export function insertRun(list: RunListState, run: RunSummary): RunListState {
  if (list.items.some((item) => item.run_id === run.run_id)) return list;
  const last = list.items[list.items.length - 1];
  if (list.nextCursor !== null && last && compareRuns(run, last) > 0) return list;
  return { ...list, items: [...list.items, run].sort(compareRuns) };
}

/** The summary of a run's detail, for the list. */
export function summaryOfRun(run: Run): RunSummary | undefined {
  if (!run.event_id || !run.event_type || run.rule_version === undefined || !run.created_at) return undefined;
  return {
    run_id: run.run_id,
    company_id: run.company_id,
    event_id: run.event_id,
    event_type: run.event_type,
    rule_version: run.rule_version,
    status: run.status,
    created_at: run.created_at,
    started_at: run.started_at ?? null,
    finished_at: run.finished_at ?? null,
  };
}

/**
 * A run list after a company event. A run the list shows changes status in
 * place; a new run (`run.queued`) is added when it matches the filters; for
 * another event of a run the list does not show, `fetch` asks the caller to
 * read the run and `insertRun` it if it matches (it may have just come to
 * match the status filter).
 */
export function applyCompanyEvent(list: RunListState, event: RunEvent, filters: RunFilters): { list: RunListState; fetch?: string } {
  const index = list.items.findIndex((item) => item.run_id === event.run_id);
  const data = event.data;
  if (index < 0) {
    if (event.kind === 'run.queued' && typeof data.event_id === 'string' && typeof data.event_type === 'string' && typeof data.rule_version === 'number') {
      const run: RunSummary = {
        run_id: event.run_id,
        company_id: event.company_id,
        event_id: data.event_id,
        event_type: data.event_type,
        rule_version: data.rule_version,
        status: 'queued',
        redrive_count: 0,
        created_at: event.created_at,
        started_at: null,
        finished_at: null,
      };
      return { list: matchesFilters(run, filters) ? insertRun(list, run) : list };
    }
    if (event.kind === 'run.queued') return { list, fetch: event.run_id };
    // Only a new status can bring a run the list does not show into the filters.
    if (filters.status && ['run.started', 'run.finished', 'run.redriven'].includes(event.kind)) return { list, fetch: event.run_id };
    return { list };
  }
  const current = list.items[index];
  if (!current) return { list };
  let next: RunSummary = current;
  switch (event.kind) {
    case 'run.started':
      next = { ...current, status: 'running', started_at: current.started_at ?? event.created_at, finished_at: null };
      break;
    case 'run.finished':
      next = { ...current, status: typeof data.status === 'string' ? data.status : current.status, finished_at: event.created_at };
      break;
    case 'run.redriven':
      next = { ...current, status: 'queued', finished_at: null, redrive_count: (current.redrive_count ?? 0) + 1 };
      break;
    case 'node.finished':
      if (current.status === 'queued') next = { ...current, status: 'running', started_at: current.started_at ?? event.created_at };
      break;
    default:
      break;
  }
  if (next === current) return { list };
  const items = [...list.items];
  items[index] = next;
  return { list: { ...list, items } };
}

// ---- One line about a node's result, for its card on the canvas.

/** A value in one short line: strings quoted, objects as JSON. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  return JSON.stringify(value);
}

/** What a node's card says about its result: a short line, and its tone. */
export function describeResult(result: NodeResult): { text: string; tone: 'success' | 'danger' | 'muted' | 'primary' } {
  switch (result.state) {
    case 'pending':
      if (result.nextAttemptAt) return { text: `Attempt ${result.attempts} failed: retrying`, tone: 'primary' };
      return { text: 'Waiting', tone: 'muted' };
    case 'running':
      if (result.nextAttemptAt) return { text: `Retrying (attempt ${result.attempts + 1} scheduled)`, tone: 'primary' };
      return { text: result.attempts > 1 ? `Running, attempt ${result.attempts}` : 'Running…', tone: 'primary' };
    case 'skipped':
      return { text: 'Not reached on this path', tone: 'muted' };
    case 'failure': {
      if (result.explanation) {
        const failed = result.explanation.expectations.find((expectation) => !expectation.held);
        if (failed) return { text: failed.reason ?? `Found ${formatValue(failed.actual)}`, tone: 'danger' };
        return { text: 'Did not hold', tone: 'danger' };
      }
      return { text: errorText(result.error) ?? 'Failed', tone: 'danger' };
    }
    case 'success': {
      if (result.explanation) {
        const first = result.explanation.expectations[0];
        return { text: first ? `Held · found ${formatValue(first.actual)}` : 'Held', tone: 'success' };
      }
      if (result.note) return { text: result.note, tone: 'muted' };
      if (result.output !== null && typeof result.output === 'object' && !Array.isArray(result.output)) {
        const [entry] = Object.entries(result.output);
        if (entry) return { text: `${entry[0]}: ${typeof entry[1] === 'string' ? entry[1] : JSON.stringify(entry[1])}`, tone: 'success' };
      }
      return { text: 'Done', tone: 'success' };
    }
  }
}
