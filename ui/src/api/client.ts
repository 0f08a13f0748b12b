/**
 * The MoneyFlow API, typed. One client per credential; every answer is
 * checked with zod, and every error is an `ApiError` carrying the server's
 * problem details (and field problems, for a 422).
 *
 * Endpoints an older server may not have (simulate, run list, run events,
 * redrive) throw `NotAvailableError` when the server says it has no such
 * route, so screens can say so instead of failing.
 */
import type { z } from 'zod';
import type { RuleSet } from '../model/rules';
import {
  acceptedPaymentSchema,
  companyListSchema,
  companySchema,
  problemDetailsSchema,
  ruleVersionSchema,
  runListSchema,
  runSchema,
  runSummarySchema,
  simulationSchema,
  taskListSchema,
  validationResultSchema,
  versionListSchema,
  type ProblemDetails,
} from './types';
import type { FieldProblem } from '../model/problems';
import { SseParser, type Connect, type SseMessage } from './sse';

/** Where the API lives: the same origin as the UI (served under `/ui/`), unless configured. */
export const API_BASE: string = (import.meta.env.VITE_MONEYFLOW_API as string | undefined) ?? '';

export class ApiError extends Error {
  readonly status: number;
  readonly problem: ProblemDetails | undefined;

  constructor(status: number, message: string, problem?: ProblemDetails) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }

  /** The field problems of a 422 (`errors` of the problem details). */
  get fieldProblems(): FieldProblem[] {
    return this.problem?.errors ?? [];
  }
}

/** The server has no such route yet (an older server, or a feature still to come). */
export class NotAvailableError extends ApiError {
  constructor(status: number, readonly endpoint: string, problem?: ProblemDetails) {
    super(status, `${endpoint} is not available on this server yet`, problem);
    this.name = 'NotAvailableError';
  }
}

/** The server could not be reached at all. */
export class NetworkError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`Could not reach the MoneyFlow server (${url}): ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'NetworkError';
  }
}

interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** The endpoint's name for `NotAvailableError`; set on endpoints a server may lack. */
  optional?: string;
}

export type CompanyKeyPrincipal = { kind: 'company'; companyId: string };
export type Principal = { kind: 'admin' } | CompanyKeyPrincipal;

export class MoneyFlowClient {
  constructor(
    private readonly token: string,
    private readonly base: string = API_BASE,
  ) {}

  private async request<S extends z.ZodType>(path: string, schema: S, options: RequestOptions = {}): Promise<z.infer<S>> {
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method: options.method ?? 'GET',
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') throw error;
      throw new NetworkError(url, error);
    }
    const text = await response.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!response.ok) {
      const parsed = problemDetailsSchema.safeParse(json);
      const problem = parsed.success ? parsed.data : undefined;
      if (options.optional && isMissingRoute(response.status, problem)) {
        throw new NotAvailableError(response.status, options.optional, problem);
      }
      const message = problem?.detail ?? problem?.title ?? `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message, problem);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ApiError(response.status, `unexpected answer from ${path}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    return parsed.data;
  }

  health(signal?: AbortSignal) {
    return this.request('/tasks', taskListSchema, { signal }).then(() => true);
  }

  /**
   * Who this credential is. The admin token lists companies; a company key
   * is checked against the company it names (there is no "who am I" route).
   */
  async whoAmI(companyId?: string): Promise<Principal> {
    try {
      await this.listCompanies();
      return { kind: 'admin' };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
    }
    if (!companyId) throw new ApiError(403, 'This is a company API key: enter the id of its company too.');
    try {
      await this.getCompany(companyId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        throw new ApiError(404, `This key does not belong to company “${companyId}”.`);
      }
      throw error;
    }
    return { kind: 'company', companyId };
  }

  listTasks(signal?: AbortSignal) {
    return this.request('/tasks', taskListSchema, { signal }).then((list) => list.items);
  }

  listCompanies(signal?: AbortSignal) {
    return this.request('/companies', companyListSchema, { signal }).then((list) => list.items);
  }

  getCompany(companyId: string, signal?: AbortSignal) {
    return this.request(`/companies/${encodeURIComponent(companyId)}`, companySchema, { signal });
  }

  createCompany(input: { name: string; id?: string }) {
    return this.request('/companies', companySchema, { method: 'POST', body: input });
  }

  /** The company's current version, or null when it has none. */
  async currentRules(companyId: string, signal?: AbortSignal) {
    try {
      return await this.request(`/payment-rules/${encodeURIComponent(companyId)}`, ruleVersionSchema, { signal });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }

  saveRules(ruleSet: RuleSet) {
    return this.request('/payment-rules/', ruleVersionSchema, { method: 'POST', body: ruleSet });
  }

  validateRules(ruleSet: RuleSet, signal?: AbortSignal) {
    return this.request('/payment-rules/validate', validationResultSchema, { method: 'POST', body: ruleSet, signal });
  }

  /** Every version, newest first; empty when the company has none. */
  async listVersions(companyId: string, signal?: AbortSignal) {
    try {
      const list = await this.request(`/payment-rules/${encodeURIComponent(companyId)}/versions`, versionListSchema, { signal });
      return list.items;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return [];
      throw error;
    }
  }

  getVersion(companyId: string, version: number, signal?: AbortSignal) {
    return this.request(`/payment-rules/${encodeURIComponent(companyId)}/versions/${version}`, ruleVersionSchema, { signal });
  }

  sendPayment(event: Record<string, unknown>) {
    return this.request('/payment', acceptedPaymentSchema, { method: 'POST', body: event });
  }

  getRun(runId: string, signal?: AbortSignal) {
    return this.request(`/runs/${encodeURIComponent(runId)}`, runSchema, { signal, optional: 'GET /runs/{run_id}' });
  }

  // ---- Simulation and runs: each throws NotAvailableError on a server without it.

  /** Evaluates the draft (or, without `rules`, the current version) against an event, with no side effects. */
  simulate(companyId: string, input: { rules?: RuleSet['rules']; event: unknown }, signal?: AbortSignal) {
    return this.request(`/payment-rules/${encodeURIComponent(companyId)}/simulate`, simulationSchema, {
      method: 'POST',
      body: input,
      signal,
      optional: 'Simulation (POST /payment-rules/{company_id}/simulate)',
    });
  }

  listRuns(query: RunQuery, signal?: AbortSignal) {
    const params = new URLSearchParams();
    if (query.companyId) params.set('company_id', query.companyId);
    if (query.status) params.set('status', query.status);
    if (query.eventType) params.set('event_type', query.eventType);
    if (query.createdAfter) params.set('created_after', query.createdAfter);
    if (query.createdBefore) params.set('created_before', query.createdBefore);
    if (query.limit) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    return this.request(`/runs?${params.toString()}`, runListSchema, { signal, optional: 'The run list (GET /runs)' });
  }

  /** Queues a failed run again from its failed nodes (202); a 409 says the run is not failed. */
  redrive(runId: string) {
    return this.request(`/runs/${encodeURIComponent(runId)}/redrive`, runSummarySchema, {
      method: 'POST',
      optional: 'Redrive (POST /runs/{run_id}/redrive)',
    });
  }

  /** A run's events (SSE), once: for `follow` in `sse.ts`, which reconnects. Ends after `run.finished`. */
  runEvents(runId: string): Connect {
    return (lastEventId, handlers, signal) => this.openEventStream(`/runs/${encodeURIComponent(runId)}/events`, 'Run events (GET /runs/{run_id}/events)', lastEventId, handlers, signal);
  }

  /** Every run event of a company (SSE), once; the server never ends it on purpose. */
  companyEvents(companyId: string): Connect {
    return (lastEventId, handlers, signal) =>
      this.openEventStream(`/companies/${encodeURIComponent(companyId)}/events`, 'Company events (GET /companies/{company_id}/events)', lastEventId, handlers, signal);
  }

  /**
   * Reads an SSE stream with fetch (`EventSource` cannot send the bearer
   * token), resuming after `lastEventId`; resolves when the server ends it.
   */
  private async openEventStream(
    path: string,
    endpoint: string,
    lastEventId: string,
    handlers: { onOpen: () => void; onMessage: (message: SseMessage) => void },
    signal: AbortSignal,
  ): Promise<void> {
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'text/event-stream' };
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    let response: Response;
    try {
      response = await fetch(url, { headers, signal, cache: 'no-store' });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'AbortError') throw error;
      throw new NetworkError(url, error);
    }
    if (!response.ok || !response.body) {
      const problem = problemDetailsSchema.safeParse(await response.json().catch(() => undefined));
      const details = problem.success ? problem.data : undefined;
      if (isMissingRoute(response.status, details)) throw new NotAvailableError(response.status, endpoint, details);
      throw new ApiError(response.status, details?.detail ?? `${response.status} ${response.statusText}`, details);
    }
    handlers.onOpen();
    const parser = new SseParser();
    parser.lastEventId = lastEventId;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        for (const message of parser.push(value)) handlers.onMessage(message);
      }
    } catch (error) {
      if (signal.aborted) return;
      throw new NetworkError(url, error);
    } finally {
      reader.releaseLock();
    }
  }
}

export interface RunQuery {
  companyId?: string;
  status?: string;
  eventType?: string;
  /** RFC 3339: runs created at or after. */
  createdAfter?: string;
  /** RFC 3339: runs created strictly before. */
  createdBefore?: string;
  limit?: number;
  cursor?: string;
}

/** Whether trying the same request again cannot help: a 4xx other than 408 and 429. */
export function isPermanentError(error: unknown): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
}

/** A 404 for the route itself (not for a resource), or a 405: the endpoint does not exist here. */
function isMissingRoute(status: number, problem: ProblemDetails | undefined): boolean {
  if (status === 405) return true;
  return status === 404 && (problem?.detail ?? '').startsWith('no route');
}

/** A message for people, from any error. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
