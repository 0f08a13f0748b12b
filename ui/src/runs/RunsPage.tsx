/**
 * A company's runs, newest first: filters (status, event type, time range)
 * kept in the URL, cursor paging ("Load more"), and live updates from the
 * company's event stream (new runs appear, statuses change), which resumes
 * after a dropped connection from the last event received.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, errorMessage, NotAvailableError, type MoneyFlowClient } from '../api/client';
import { EVENT_TYPES, RUN_STATUSES, type RunEvent } from '../api/types';
import { IconActivity, IconArrowRight, IconClose, IconFlow } from '../components/icons';
import { Button, Callout, EmptyState, formatDate, Spinner } from '../components/ui';
import { durationMs, formatDuration, formatRelative, rangeBounds, TIME_RANGES } from '../model/format';
import { applyCompanyEvent, insertRun, matchesFilters, summaryOfRun, type RunFilters, type RunListState } from '../model/runs';
import { navigate, routeHref, type RunsQuery } from '../router';
import { parseRunEvent, useEventStream } from './useEventStream';
import { LiveIndicator, RunStatusBadge } from './StateBadge';

const PAGE_SIZE = 50;

type Load = { status: 'loading' } | { status: 'error'; error: unknown } | { status: 'ready' };

function eventTypeLabel(type: string): string {
  return type.replaceAll('_', ' ');
}

/** Ticks every 15 s, so "2 min ago" stays true. */
function useNow(intervalMs = 15_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/**
 * Where the company stream starts: just before the newest run's first event
 * (its `id` is the global event id), so the stream replays only what is
 * newer, not the company's whole history.
 */
async function streamStart(client: MoneyFlowClient, companyId: string, signal: AbortSignal): Promise<string> {
  const newest = (await client.listRuns({ companyId, limit: 1 }, signal)).items[0];
  if (!newest) return '0';
  const reader = new AbortController();
  const stop = () => reader.abort();
  signal.addEventListener('abort', stop);
  let start = '0';
  try {
    await client.runEvents(newest.run_id)(
      '',
      {
        onOpen: () => undefined,
        onMessage: (message) => {
          const event = parseRunEvent(message.data);
          if (event) start = String(Math.max(0, event.id - 1));
          reader.abort();
        },
      },
      reader.signal,
    );
  } catch {
    // Without it, the stream starts from the beginning: slower, still right.
  } finally {
    signal.removeEventListener('abort', stop);
  }
  return start;
}

export function RunsPage({ client, companyId, query, onSignOut }: { client: MoneyFlowClient; companyId: string; query: RunsQuery; onSignOut: () => void }) {
  const [list, setList] = useState<RunListState>({ items: [], nextCursor: null });
  const [load, setLoad] = useState<Load>({ status: 'loading' });
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [streamFrom, setStreamFrom] = useState<string | null>(null);
  const [streamKey, setStreamKey] = useState(0);
  // Runs that arrived live: their rows flash once.
  const [arrived, setArrived] = useState<ReadonlySet<string>>(() => new Set());
  const listRef = useRef(list);
  const updateList = useCallback((update: (current: RunListState) => RunListState) => {
    const next = update(listRef.current);
    listRef.current = next;
    setList(next);
  }, []);
  const markArrived = useCallback((runId: string) => setArrived((current) => new Set(current).add(runId)), []);
  const now = useNow();

  // The filters of the URL, with a time range turned into bounds when the list is loaded.
  const { status = '', type = '', range = '', from = '', to = '' } = query;
  const [loadedAt, setLoadedAt] = useState(() => Date.now());
  const filters: RunFilters = useMemo(() => ({ status: status || undefined, eventType: type || undefined, ...rangeBounds(range, loadedAt, from, to) }), [status, type, range, from, to, loadedAt]);
  const filtered = Boolean(status || type || range);

  const setQuery = (next: RunsQuery) => {
    setLoad({ status: 'loading' });
    navigate({ name: 'runs', companyId, query: next }, { replace: true });
  };

  useEffect(() => {
    const controller = new AbortController();
    client.listRuns({ companyId, ...filters, limit: PAGE_SIZE }, controller.signal).then(
      (page) => {
        updateList(() => ({ items: page.items, nextCursor: page.next_cursor ?? null }));
        setLoad({ status: 'ready' });
      },
      (error: unknown) => {
        if (!controller.signal.aborted) setLoad({ status: 'error', error });
      },
    );
    return () => controller.abort();
  }, [client, companyId, filters, attempt, updateList]);

  // Where the live stream starts (once per page visit).
  useEffect(() => {
    const controller = new AbortController();
    streamStart(client, companyId, controller.signal).then(
      (start) => setStreamFrom(start),
      () => {
        if (!controller.signal.aborted) setStreamFrom('0');
      },
    );
    return () => controller.abort();
  }, [client, companyId]);

  const filtersRef = useRef(filters);
  useEffect(() => {
    filtersRef.current = filters;
  }, [filters]);

  const onEvent = useCallback(
    (event: RunEvent) => {
      const before = listRef.current;
      const { list: next, fetch } = applyCompanyEvent(before, event, filtersRef.current);
      if (next !== before) {
        updateList(() => next);
        if (event.kind === 'run.queued') markArrived(event.run_id);
      }
      if (fetch) {
        // A run the list does not show may have just come to match the filters.
        client.getRun(fetch).then(
          (run) => {
            const summary = summaryOfRun(run);
            if (summary && matchesFilters(summary, filtersRef.current)) {
              updateList((current) => insertRun(current, summary));
              markArrived(summary.run_id);
            }
          },
          () => undefined,
        );
      }
    },
    [client, markArrived, updateList],
  );

  const connect = useMemo(() => (streamFrom === null ? null : client.companyEvents(companyId)), [client, companyId, streamFrom]);
  const live = useEventStream({ connect, onEvent, startAfter: streamFrom ?? undefined, reconnectAfterEnd: () => true, restartKey: streamKey });

  const loadMore = async () => {
    if (!list.nextCursor || loadingMore) return;
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await client.listRuns({ companyId, ...filters, limit: PAGE_SIZE, cursor: list.nextCursor });
      updateList((current) => {
        const known = new Set(current.items.map((item) => item.run_id));
        return { items: [...current.items, ...page.items.filter((item) => !known.has(item.run_id))], nextCursor: page.next_cursor ?? null };
      });
    } catch (error) {
      setMoreError(errorMessage(error));
    } finally {
      setLoadingMore(false);
    }
  };

  const refresh = () => {
    setLoad({ status: 'loading' });
    setLoadedAt(Date.now());
    setAttempt((n) => n + 1);
  };

  const customInvalid = range === 'custom' && from && to && Date.parse(from) >= Date.parse(to);

  return (
    <div className="page page-wide">
      <div className="page-header">
        <div>
          <h1>Runs</h1>
          <p className="muted">Every payment this company received and what its flow did, newest first.</p>
        </div>
        <div className="row">
          <LiveIndicator status={live.status} onRetry={() => setStreamKey((n) => n + 1)} />
        </div>
      </div>

      <section className="card list-card" aria-label="Runs">
        <div className="list-toolbar runs-filters" role="search" aria-label="Filter runs">
          <label className="filter">
            <span>Status</span>
            <select className="input" aria-label="Status" value={status} onChange={(change) => setQuery({ ...query, status: change.target.value || undefined })}>
              <option value="">All statuses</option>
              {RUN_STATUSES.map((option) => (
                <option key={option} value={option}>
                  {option}
                </option>
              ))}
            </select>
          </label>
          <label className="filter">
            <span>Event type</span>
            <select className="input" aria-label="Event type" value={type} onChange={(change) => setQuery({ ...query, type: change.target.value || undefined })}>
              <option value="">All types</option>
              {EVENT_TYPES.map((option) => (
                <option key={option} value={option}>
                  {eventTypeLabel(option)}
                </option>
              ))}
            </select>
          </label>
          <label className="filter">
            <span>Created</span>
            <select
              className="input"
              aria-label="Time range"
              value={range}
              onChange={(change) => {
                setLoadedAt(Date.now());
                setQuery({ ...query, range: change.target.value || undefined, from: undefined, to: undefined });
              }}
            >
              {TIME_RANGES.map((option) => (
                <option key={option.value} value={option.value}>
                  {option.label}
                </option>
              ))}
            </select>
          </label>
          {range === 'custom' ? (
            <>
              <label className="filter">
                <span>From</span>
                <input className="input" type="datetime-local" aria-label="Created from" value={from} onChange={(change) => setQuery({ ...query, from: change.target.value || undefined })} />
              </label>
              <label className="filter">
                <span>To</span>
                <input className={`input${customInvalid ? ' is-invalid' : ''}`} type="datetime-local" aria-label="Created before" value={to} onChange={(change) => setQuery({ ...query, to: change.target.value || undefined })} />
              </label>
            </>
          ) : null}
          <div className="filters-end">
            {filtered ? (
              <Button variant="ghost" size="sm" icon={<IconClose size={14} />} onClick={() => setQuery({})}>
                Clear filters
              </Button>
            ) : null}
            {load.status === 'ready' && list.items.length > 0 ? (
              <span className="muted small" data-testid="runs-count">
                {list.items.length} run{list.items.length === 1 ? '' : 's'}
                {list.nextCursor ? '+' : ''}
              </span>
            ) : null}
          </div>
        </div>
        {customInvalid ? <p className="list-note field-error">The end of the range is before its start: no run can match.</p> : null}

        {load.status === 'loading' ? (
          <div className="centered">
            <Spinner size={24} label="Loading runs" />
          </div>
        ) : load.status === 'error' ? (
          <div className="list-message">
            <LoadError error={load.error} onRetry={refresh} onSignOut={onSignOut} />
          </div>
        ) : list.items.length === 0 ? (
          filtered ? (
            <EmptyState
              icon={<IconActivity size={24} />}
              title="No run matches these filters"
              action={
                <Button icon={<IconClose size={14} />} onClick={() => setQuery({})}>
                  Clear filters
                </Button>
              }
            >
              New runs that match appear here as they arrive.
            </EmptyState>
          ) : (
            <NoRunsYet companyId={companyId} />
          )
        ) : (
          <>
            <table className="runs-table">
              <thead>
                <tr>
                  <th scope="col">Status</th>
                  <th scope="col">Run</th>
                  <th scope="col">Event type</th>
                  <th scope="col">Version</th>
                  <th scope="col">Created</th>
                  <th scope="col">Duration</th>
                  <th scope="col" aria-label="Open" />
                </tr>
              </thead>
              <tbody>
                {list.items.map((run) => {
                  const href = routeHref({ name: 'run', companyId, runId: run.run_id });
                  const took = durationMs(run.started_at ?? run.created_at, run.finished_at);
                  return (
                    <tr
                      key={run.run_id}
                      className={arrived.has(run.run_id) ? 'is-new' : undefined}
                      data-testid={`run-row-${run.run_id}`}
                      data-status={run.status}
                      onClick={(click) => {
                        if (!(click.target instanceof HTMLAnchorElement)) window.location.hash = href;
                      }}
                    >
                      <td>
                        <RunStatusBadge status={run.status} />
                      </td>
                      <td>
                        <a href={href} className="run-link mono" aria-label={`Run ${run.run_id}, ${run.status}`}>
                          {run.run_id}
                        </a>
                        {run.redrive_count ? <span className="redrive-note">redriven{run.redrive_count > 1 ? ` ×${run.redrive_count}` : ''}</span> : null}
                      </td>
                      <td>{eventTypeLabel(run.event_type)}</td>
                      <td className="muted">v{run.rule_version}</td>
                      <td title={formatDate(run.created_at)}>{formatRelative(run.created_at, now) ?? formatDate(run.created_at)}</td>
                      <td className="muted">{took !== undefined ? formatDuration(took) : run.status === 'running' || run.status === 'queued' ? '…' : '—'}</td>
                      <td className="row-arrow">
                        <IconArrowRight size={14} />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            {list.nextCursor || moreError || list.items.length > PAGE_SIZE / 2 ? (
              <div className="list-footer">
                {list.nextCursor ? (
                  <Button busy={loadingMore} disabled={loadingMore} onClick={() => void loadMore()}>
                    Load more
                  </Button>
                ) : (
                  <span className="muted small">That is every run{filtered ? ' matching these filters' : ''}.</span>
                )}
                {moreError ? <span className="field-error">Could not load more: {moreError}</span> : null}
              </div>
            ) : null}
          </>
        )}
      </section>
    </div>
  );
}

function LoadError({ error, onRetry, onSignOut }: { error: unknown; onRetry: () => void; onSignOut: () => void }) {
  if (error instanceof NotAvailableError) {
    return (
      <Callout tone="info" title="Not available on this server yet">
        {error.endpoint} is not on this MoneyFlow server. Update the server to see runs here.
      </Callout>
    );
  }
  if (error instanceof ApiError && error.status === 401) {
    return (
      <Callout tone="danger" title="Your credential is no longer accepted" action={<Button onClick={onSignOut}>Sign in again</Button>}>
        The token was revoked or the server was restarted with another admin token.
      </Callout>
    );
  }
  return (
    <Callout tone="danger" title="Could not load the runs" action={<Button onClick={onRetry}>Try again</Button>}>
      {errorMessage(error)}
    </Callout>
  );
}

function NoRunsYet({ companyId }: { companyId: string }) {
  const origin = window.location.origin;
  const example = `curl -X POST ${origin}/payment \\
  -H "Authorization: Bearer <company API key>" \\
  -H "Content-Type: application/json" \\
  -d '{"company_id": "${companyId}", "type": "product", "total": "120.00"}'`;
  return (
    <EmptyState
      icon={<IconActivity size={24} />}
      title="No runs yet"
      action={
        <a className="btn btn-secondary btn-md" href={routeHref({ name: 'editor', companyId })}>
          <IconFlow size={14} />
          <span>Open the flow</span>
        </a>
      }
    >
      <p>A run starts each time a payment for this company reaches POST /payment, and shows up here at once. Send one from your shop, or with:</p>
      <pre className="code-snippet">{example}</pre>
      <p>To try the flow without a payment, use Test run in the editor.</p>
    </EmptyState>
  );
}
