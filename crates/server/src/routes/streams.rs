//! Live run events as Server-Sent Events:
//! - `GET /runs/{run_id}/events`: one run's events, `id:` its per-run `seq`;
//!   the stream ends after the run's `run.finished` (unless a redrive
//!   follows it).
//! - `GET /companies/{company_id}/events`: every run event of a company,
//!   `id:` the global event id; it does not end.
//!
//! Each event is `id:`, `event:` the kind (`run.queued`, `run.started`,
//! `node.finished`, `run.finished`, `run.redriven`) and `data:` the event as
//! JSON. Keep-alive comments flow while nothing happens.
//!
//! # Resuming without a gap or a duplicate
//! A client resumes with `Last-Event-ID` (or `?last_event_id=`): the
//! stream first replays the stored events after it, then goes live. The
//! stream subscribes to the store's live feed *before* it reads the
//! backlog, so nothing committed in between is lost, and it drops live
//! events it already sent (id ≤ the last one sent). The store stays the
//! record: a run stream that sees a gap in `seq`, or that lagged behind the
//! feed, reads the store; a company stream reads the store whenever the
//! feed says its company has news (global ids have gaps, so only the store
//! can say nothing is missing). What other processes commit arrives through
//! PostgreSQL's `LISTEN/NOTIFY` (see [`crate::remote_events`]): a stream
//! that hears its run or company has news reads the store. Both also read
//! the store every few seconds, in case a notification was missed.
//!
//! A company has at most `--max-streams-per-company` streams open (run and
//! company streams together, whoever opened them); one more is 429.
//!
//! Auth as `GET /runs/{run_id}`: a company key sees its own company alone;
//! anything else is 404. A stream lives no longer than the key that opened
//! it: revoking the key ends it (at once in this process, within
//! [`KEY_CHECK_INTERVAL`] when another process revoked it).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use moneyflow_core::ports::{
    ApiKeyStore, CompanyStore, RunEvent, RunEventKind, RunEventStore, RunStore,
};
use moneyflow_store::{FeedBatch, Store};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::Path;
use crate::limits::StreamSlot;
use crate::remote_events::RemoteNews;
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::routes::run_list::{invalid_query, query_pairs};
use crate::state::AppState;

/// The resume header browsers send on reconnecting.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";
/// Events read from the store at a time.
const PAGE: usize = 500;
/// How often a stream reads the store even without news from the feed:
/// what another process committed arrives at most this late.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How often a stream opened with a company key checks that the key is
/// still live.
pub const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How often a keep-alive comment is sent on a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a stream resumes: `Last-Event-ID`, else `?last_event_id=`, else 0.
/// Each one given must be an event id, even the one that does not count.
fn last_event_id(
    headers: &HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<i64, ApiError> {
    let mut errors = Vec::new();
    let pairs = query_pairs(query, &["last_event_id"], &mut errors)?;
    let from_query = pairs
        .iter()
        .find(|(name, _)| name == "last_event_id")
        .map(|(_, value)| ("last_event_id", value.clone()));
    let from_header = headers
        .get(LAST_EVENT_ID_HEADER)
        .map(|value| ("Last-Event-ID", value.to_str().unwrap_or("").to_owned()));
    let mut ids = Vec::new();
    for (name, value) in from_header.into_iter().chain(from_query) {
        match value.trim().parse::<i64>() {
            Ok(id) if id >= 0 => ids.push(id),
            _ => errors.push(FieldError::new(
                name,
                "invalid_value",
                format!("`{name}` must be the `id` of an event this stream sent (an integer from 0), got `{value}`"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids.first().copied().unwrap_or(0))
    } else {
        Err(invalid_query(errors))
    }
}

/// Which events a stream carries, and how it is positioned.
#[derive(Debug, Clone)]
enum Scope {
    /// One run, by `seq`: gap-free, so live events can be used as they come.
    Run(String),
    /// A company, by global `id`: gaps are normal, so the store decides.
    Company(String),
}

impl Scope {
    fn position(&self, event: &RunEvent) -> i64 {
        match self {
            Scope::Run(_) => event.seq,
            Scope::Company(_) => event.id,
        }
    }

    fn wants(&self, event: &RunEvent) -> bool {
        match self {
            Scope::Run(run_id) => &event.run_id == run_id,
            Scope::Company(company_id) => &event.company_id == company_id,
        }
    }
}

/// A stream's state between two events.
struct EventStream {
    store: Store,
    scope: Scope,
    /// The position (seq or id) of the last event sent.
    last: i64,
    /// Events to send, in order (they may repeat ones already sent).
    buffer: VecDeque<RunEvent>,
    feed: broadcast::Receiver<FeedBatch>,
    /// Other processes' news (PostgreSQL): a matching one means "read the
    /// store". `None` once the sender is gone.
    remote: Option<broadcast::Receiver<RemoteNews>>,
    poll: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
    /// The store must be read before waiting.
    reload: bool,
    /// A run stream sent `run.finished`: it ends unless the store has more.
    finished: bool,
    done: bool,
    /// The company key that opened the stream (`None`: the admin token).
    key: Option<KeyWatch>,
    /// Counts against the company's open streams until the stream is dropped.
    _slot: StreamSlot,
}

/// What a stream opened with a company key needs to end with the key.
struct KeyWatch {
    company_id: String,
    key_id: String,
    /// Local revocations; `None` once the state is gone.
    revocations: Option<watch::Receiver<u64>>,
    timer: tokio::time::Interval,
    /// The key must be checked before the next event.
    check: bool,
}

impl KeyWatch {
    fn new(state: &AppState, principal: &Principal) -> Option<Self> {
        let Principal::Company { company_id, key_id } = principal else {
            return None;
        };
        let mut timer = tokio::time::interval(KEY_CHECK_INTERVAL);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Some(Self {
            company_id: company_id.clone(),
            key_id: key_id.clone(),
            revocations: Some(state.key_revocations()),
            timer,
            check: false,
        })
    }

    /// Waits until the key should be checked again.
    async fn due(&mut self) {
        match &mut self.revocations {
            Some(revocations) => tokio::select! {
                changed = revocations.changed() => {
                    if changed.is_err() {
                        self.revocations = None;
                    }
                }
                _ = self.timer.tick() => {}
            },
            None => {
                self.timer.tick().await;
            }
        }
        self.check = true;
    }
}

/// Waits for [`KeyWatch::due`]; never, for a stream opened by the admin.
async fn key_due(key: &mut Option<KeyWatch>) {
    match key {
        Some(key) => key.due().await,
        None => std::future::pending().await,
    }
}

impl EventStream {
    /// Subscribes to the live feed now, before anything is read. `ended`:
    /// the run had finished when the stream was asked for, so once the
    /// stored events are replayed the stream ends.
    fn new(
        state: &AppState,
        principal: &Principal,
        scope: Scope,
        last: i64,
        ended: bool,
        slot: StreamSlot,
    ) -> Self {
        let store = state.store().clone();
        let feed = store.subscribe_run_events();
        let remote = Some(state.subscribe_remote_events());
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            store,
            scope,
            last,
            buffer: VecDeque::new(),
            feed,
            remote,
            poll,
            shutdown: state.shutdown_signal(),
            reload: true,
            finished: ended,
            done: false,
            key: KeyWatch::new(state, principal),
            _slot: slot,
        }
    }

    /// Whether the key that opened the stream is still live; a store that
    /// cannot say ends the stream too (the client reconnects and is
    /// authenticated again).
    async fn key_is_live(&self) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        match self.store.list_api_keys(&key.company_id).await {
            Ok(keys) => keys
                .iter()
                .any(|k| k.id == key.key_id && k.revoked_at.is_none()),
            Err(error) => {
                tracing::warn!(error = %error, "event stream: checking its key failed; ending the stream");
                false
            }
        }
    }

    async fn read_store(&self) -> Result<Vec<RunEvent>, ApiError> {
        let events = match &self.scope {
            Scope::Run(run_id) => self.store.list_run_events(run_id, self.last, PAGE).await?,
            Scope::Company(company_id) => {
                self.store
                    .list_company_events(company_id, self.last, PAGE)
                    .await?
            }
        };
        Ok(events)
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<RunEvent> {
        loop {
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            if let Some(key) = &mut self.key
                && std::mem::take(&mut key.check)
                && !self.key_is_live().await
            {
                tracing::info!("event stream: its key was revoked; ending the stream");
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                let position = self.scope.position(&event);
                if position <= self.last {
                    continue;
                }
                if matches!(self.scope, Scope::Run(_)) && position != self.last + 1 {
                    // A gap: something is missing from what the feed gave.
                    self.buffer.clear();
                    self.reload = true;
                    continue;
                }
                self.last = position;
                if matches!(self.scope, Scope::Run(_)) {
                    self.finished = event.kind == RunEventKind::Finished;
                }
                return Some(event);
            }
            if self.reload || self.finished {
                self.reload = false;
                match self.read_store().await {
                    Ok(events) => {
                        if self.finished && events.is_empty() {
                            // The run ended and nothing followed.
                            return None;
                        }
                        self.finished = false;
                        // A full page: more may be stored.
                        self.reload = events.len() == PAGE;
                        self.buffer.extend(events);
                        continue;
                    }
                    Err(error) => {
                        // The client resumes from its last event once the
                        // store is back.
                        tracing::warn!(error = %error, "event stream: reading the store failed; ending the stream");
                        return None;
                    }
                }
            }
            tokio::select! {
                message = self.feed.recv() => match message {
                    Ok(batch) => match &self.scope {
                        Scope::Run(_) => self
                            .buffer
                            .extend(batch.iter().filter(|e| self.scope.wants(e)).cloned()),
                        Scope::Company(_) => {
                            if batch.iter().any(|e| self.scope.wants(e) && e.id > self.last) {
                                self.reload = true;
                            }
                        }
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => self.reload = true,
                    // The store is gone: the server is stopping.
                    Err(broadcast::error::RecvError::Closed) => self.done = true,
                },
                news = remote_news(&mut self.remote) => match news {
                    Ok(RemoteNews::Events { run_id, company_id }) => {
                        if match &self.scope {
                            Scope::Run(id) => *id == *run_id,
                            Scope::Company(id) => *id == *company_id,
                        } {
                            self.reload = true;
                        }
                    }
                    Ok(RemoteNews::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.reload = true;
                    }
                    // The sender is gone (the server is stopping): the
                    // poll still reads the store.
                    Err(broadcast::error::RecvError::Closed) => self.remote = None,
                },
                _ = self.poll.tick() => self.reload = true,
                _ = self.shutdown.changed() => self.done = true,
                _ = key_due(&mut self.key) => {}
            }
        }
    }
}

/// The next piece of news from other processes; never, once there is no
/// sender.
async fn remote_news(
    remote: &mut Option<broadcast::Receiver<RemoteNews>>,
) -> Result<RemoteNews, broadcast::error::RecvError> {
    match remote {
        Some(remote) => remote.recv().await,
        None => std::future::pending().await,
    }
}

fn sse_event(scope: &Scope, event: &RunEvent) -> Event {
    // Serialising a RunEvent cannot fail (string keys, plain values).
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    Event::default()
        .id(scope.position(event).to_string())
        .event(event.kind.as_str())
        .data(data)
}

fn sse(stream: EventStream) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let events = futures::stream::unfold(stream, |mut stream| async move {
        let event = stream.next().await?;
        let sse = sse_event(&stream.scope, &event);
        Some((Ok(sse), stream))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn run_not_found(run_id: &str) -> ApiError {
    ApiError::not_found(format!("run `{run_id}` not found"))
}

/// One message of an event stream, as an SSE parser hands it over (the
/// keep-alive comments are not messages).
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the stream in the OpenAPI document.
pub struct RunEventMessage {
    /// The run event's kind: `run.queued`, `run.started`, `node.finished`,
    /// `run.finished` or `run.redriven`.
    #[schema(
        pattern = "^(run\\.queued|run\\.started|node\\.finished|run\\.finished|run\\.redriven)$"
    )]
    event: String,
    /// What to send as `Last-Event-ID` to resume after this message.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// The run event as JSON: `{id, run_id, company_id, seq, kind, data, created_at}`.
    data: String,
}

/// A run's events, live (Server-Sent Events).
#[utoipa::path(get, path = "/runs/{run_id}/events", tag = "runs",
    params(
        ("run_id" = String, Path, description = "The run's id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event (its `id:`, the run's `seq`)", minimum = 0),
        ("last_event_id" = Option<i64>, Query, description = "The same, for clients that cannot set headers", minimum = 0),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `id:` the event's seq in the run, `event:` its kind (`run.queued`, `run.started`, `node.finished`, `run.finished`, `run.redriven`), `data:` the event as JSON (`{id, run_id, company_id, seq, kind, data, created_at}`). Ends after `run.finished`.",
            content_type = "text/event-stream", body = RunEventMessage),
        (status = 400, description = "`Last-Event-ID` is not an event id", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such run (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "The run's company has as many streams open as the server allows (`--max-streams-per-company`)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(run_id = %run_id, company_id = tracing::field::Empty))]
pub async fn run_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static>, ApiError> {
    let last = last_event_id(&headers, query)?;
    if !is_valid_id(&run_id) {
        return Err(run_not_found(&run_id));
    }
    let run = match state.store().get_run(&run_id).await? {
        Some(run) if principal.may_act_for(&run.company_id) => run,
        _ => return Err(run_not_found(&run_id)),
    };
    tracing::Span::current().record("company_id", run.company_id.as_str());
    let slot = state.tenant_limits().streams.open(&run.company_id)?;
    let ended = run.status.is_terminal();
    Ok(sse(EventStream::new(
        &state,
        &principal,
        Scope::Run(run_id),
        last,
        ended,
        slot,
    )))
}

/// A company's run events, live (Server-Sent Events).
#[utoipa::path(get, path = "/companies/{company_id}/events", tag = "runs",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event (its `id:`, the global event id)", minimum = 0),
        ("last_event_id" = Option<i64>, Query, description = "The same, for clients that cannot set headers", minimum = 0),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of every run event of the company: `id:` the global event id (increasing, with gaps), `event:` its kind, `data:` the event as JSON. Does not end.",
            content_type = "text/event-stream", body = RunEventMessage),
        (status = 400, description = "`Last-Event-ID` is not an event id", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company (or not the key's)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "The company has as many streams open as the server allows (`--max-streams-per-company`)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn company_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static>, ApiError> {
    let last = last_event_id(&headers, query)?;
    if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    if principal.is_admin() && state.store().get_company(&company_id).await?.is_none() {
        return Err(company_not_found(&company_id));
    }
    let slot = state.tenant_limits().streams.open(&company_id)?;
    Ok(sse(EventStream::new(
        &state,
        &principal,
        Scope::Company(company_id),
        last,
        false,
        slot,
    )))
}
