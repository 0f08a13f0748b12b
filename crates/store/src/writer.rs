//! The group-commit writer (DESIGN §8). Every write on the hot path —
//! accepting an event, claiming runs, renewing leases, committing a step — is
//! a request on a bounded channel. A writer task takes one request, drains
//! whatever else is waiting (up to [`WriterConfig::max_batch`]), runs them all
//! in ONE transaction, commits once (one fsync for all of them) and only then
//! answers each: nothing is answered before the commit that holds it returned.
//!
//! - Back-pressure: the channel is bounded. A full channel fails the call at
//!   once with [`StoreError::Overloaded`] (the router answers 503 with
//!   `Retry-After`), so memory never grows without limit.
//! - Isolation: when a batch's transaction fails, each of its requests runs
//!   again in a transaction of its own, so one bad request cannot fail the
//!   others, and each gets its own error.
//! - Outages: when the failure means the database is unreachable, every
//!   request of the batch is answered [`StoreError::Unavailable`] at once (one
//!   by one would only fail slower), the connection is given up, and the next
//!   batch acquires a fresh one: the writer outlives the outage.
//! - Lifetime: the writers stop when the store's last handle is dropped and
//!   the channel closes.
//!
//! What a batch writes is each backend's business: on PostgreSQL,
//! [`BatchDb::run_ops`] (`postgres/runs.rs`) run by the writer tasks here;
//! on SQLite, a thread of its own on a rusqlite connection
//! (`sqlite/writer.rs`) that takes requests from the same kind of channel.
//! This module moves requests and answers, and fixes the order a batch
//! runs in ([`Plan`]).
//!
//! - Run events: a batch appends the run events of what it wrote in the same
//!   transaction; once it has committed, and before anyone is answered, the
//!   writer publishes them on the live feed (`run_events.rs`), so a caller
//!   that got its answer knows its events were published.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moneyflow_core::ports::{
    AcceptOutcome, NewEvent, Redrive, RunSummary, StepCommit, StoreError, StoreResult,
};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{debug, warn};

use crate::error::{
    connection_lost, connection_suspect, from_rusqlite_as, from_sqlx, from_sqlx_as, is_outage,
};
use crate::run_events::{EventSink, Feed};

/// How the group-commit writer queues and batches writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Writes that may wait for a writer; one more fails at once with
    /// [`StoreError::Overloaded`]. Default 16,384.
    pub queue_capacity: usize,
    /// The most writes one transaction carries. Default 1,024.
    pub max_batch: usize,
    /// Writer tasks, each with its own connection (PostgreSQL only: SQLite
    /// has one write lock, so it always has one writer). Default 4.
    pub writers: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 16_384,
            max_batch: 1_024,
            writers: 4,
        }
    }
}

/// One write, as the caller asked for it.
pub(crate) enum WriteOp {
    Accept(NewEvent),
    Claim(Claim),
    Renew(Renewal),
    Commit(StepCommit),
    /// SQLite only (PostgreSQL redrives in a transaction of its own).
    Redrive(Redrive),
    /// SQLite only: `release_all_leases`.
    ReleaseAll,
}

/// `claim_runs`, with the lease's end already computed.
pub(crate) struct Claim {
    pub owner: String,
    pub limit: usize,
    pub now: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// `renew_leases`.
pub(crate) struct Renewal {
    pub owner: String,
    pub run_ids: Vec<String>,
    pub until: OffsetDateTime,
}

impl WriteOp {
    /// What this request's conflict and missing reference are, the way the
    /// caller knows them (the databases' own messages do not say).
    fn names(&self) -> Option<(String, String)> {
        match self {
            WriteOp::Accept(event) => Some((
                format!("run {}", event.run_id),
                format!("company {}", event.company_id),
            )),
            WriteOp::Commit(step) => Some((
                format!("a document of run {}", step.run_id),
                format!("run {}", step.run_id),
            )),
            WriteOp::Redrive(redrive) => Some((
                format!("run {}", redrive.run_id),
                format!("run {}", redrive.run_id),
            )),
            WriteOp::Claim(_) | WriteOp::Renew(_) | WriteOp::ReleaseAll => None,
        }
    }

    /// This request's own error, when it failed in a transaction of its own.
    fn error(&self, err: sqlx::Error) -> StoreError {
        match self.names() {
            Some((conflict, missing)) => from_sqlx_as(err, || conflict, || missing),
            None => from_sqlx(err),
        }
    }

    /// [`WriteOp::error`] for SQLite's writer thread.
    pub(crate) fn rusqlite_error(&self, err: rusqlite::Error) -> StoreError {
        match self.names() {
            Some((conflict, missing)) => from_rusqlite_as(err, Some(conflict), Some(missing)),
            None => from_rusqlite_as(err, None, None),
        }
    }
}

/// A request's answer.
pub(crate) enum Reply {
    Accepted(AcceptOutcome),
    Claimed(Vec<String>),
    Done,
    /// Leases released.
    Released(u64),
    Redriven(RunSummary),
}

impl Reply {
    pub(crate) fn into_accept(self) -> StoreResult<AcceptOutcome> {
        match self {
            Reply::Accepted(outcome) => Ok(outcome),
            _ => Err(mismatched()),
        }
    }

    pub(crate) fn into_claimed(self) -> StoreResult<Vec<String>> {
        match self {
            Reply::Claimed(ids) => Ok(ids),
            _ => Err(mismatched()),
        }
    }

    pub(crate) fn into_done(self) -> StoreResult<()> {
        match self {
            Reply::Done => Ok(()),
            _ => Err(mismatched()),
        }
    }

    pub(crate) fn into_released(self) -> StoreResult<u64> {
        match self {
            Reply::Released(count) => Ok(count),
            _ => Err(mismatched()),
        }
    }

    pub(crate) fn into_redriven(self) -> StoreResult<RunSummary> {
        match self {
            Reply::Redriven(summary) => Ok(summary),
            _ => Err(mismatched()),
        }
    }
}

fn mismatched() -> StoreError {
    StoreError::Internal("the writer answered a request with another request's reply".into())
}

/// One request's result inside a batch: its answer, which may be a refusal
/// of its own (a lost lease) that leaves the transaction usable.
pub(crate) type OpResult = StoreResult<Reply>;

/// A backend's way of running a batch.
pub(crate) trait BatchDb: Database {
    /// The statement that opens a batch's transaction.
    const BEGIN: &'static str;

    /// Runs `ops` inside the open transaction: one answer per op, in the
    /// order of `ops`, and the run events it appended into `events` (when
    /// it collects). `Err` fails the whole transaction.
    fn run_ops<'a>(
        conn: &'a mut Self::Connection,
        ops: &'a [WriteOp],
        events: &'a mut EventSink,
    ) -> impl Future<Output = Result<Vec<OpResult>, sqlx::Error>> + Send + 'a;
}

/// The order a batch runs in. The requests of one batch come from
/// concurrent callers (a caller waits for each answer before its next
/// write), so any order is one they could have arrived in:
///
/// 1. step commits, which free queue entries and fence on leases;
/// 2. redrives (SQLite), which queue failed runs again;
/// 3. accepts, sorted by (company, idempotency key) — arrival order among
///    equal keys, so the first one wins — so concurrent PostgreSQL writers
///    take the key locks in one order and cannot deadlock on them;
/// 4. lease renewals, then releases (SQLite);
/// 5. claims last, so they can take the runs accepted in the same batch.
pub(crate) struct Plan<'a> {
    pub commits: Vec<(usize, &'a StepCommit)>,
    pub redrives: Vec<(usize, &'a Redrive)>,
    pub accepts: Vec<(usize, &'a NewEvent)>,
    pub renewals: Vec<(usize, &'a Renewal)>,
    pub releases: Vec<usize>,
    pub claims: Vec<(usize, &'a Claim)>,
}

impl<'a> Plan<'a> {
    pub(crate) fn new(ops: &'a [WriteOp]) -> Self {
        let mut plan = Plan {
            commits: Vec::new(),
            redrives: Vec::new(),
            accepts: Vec::new(),
            renewals: Vec::new(),
            releases: Vec::new(),
            claims: Vec::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            match op {
                WriteOp::Commit(step) => plan.commits.push((i, step)),
                WriteOp::Redrive(redrive) => plan.redrives.push((i, redrive)),
                WriteOp::Accept(event) => plan.accepts.push((i, event)),
                WriteOp::Renew(renewal) => plan.renewals.push((i, renewal)),
                WriteOp::ReleaseAll => plan.releases.push(i),
                WriteOp::Claim(claim) => plan.claims.push((i, claim)),
            }
        }
        // Stable: equal keys keep their arrival order.
        plan.accepts.sort_by(|(_, a), (_, b)| {
            (&a.company_id, &a.idempotency_key).cmp(&(&b.company_id, &b.idempotency_key))
        });
        plan
    }

    /// The requests' indexes in the order the batch runs them.
    pub(crate) fn order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        order.extend(self.commits.iter().map(|(i, _)| *i));
        order.extend(self.redrives.iter().map(|(i, _)| *i));
        order.extend(self.accepts.iter().map(|(i, _)| *i));
        order.extend(self.renewals.iter().map(|(i, _)| *i));
        order.extend(self.releases.iter().copied());
        order.extend(self.claims.iter().map(|(i, _)| *i));
        order
    }
}

/// Splits a batch's step commits into rounds in which each run appears once
/// (round k holds each run's k-th step), so a round can be written with one
/// statement per table and still mean the same as one step after another.
/// Almost always there is one round: a worker waits for a step's answer
/// before it commits the run's next one.
pub(crate) fn rounds<'a>(commits: &[(usize, &'a StepCommit)]) -> Vec<Vec<(usize, &'a StepCommit)>> {
    let mut seen: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    let mut rounds: Vec<Vec<(usize, &'a StepCommit)>> = Vec::new();
    for &(i, step) in commits {
        let k = seen.entry(step.run_id.as_str()).or_insert(0);
        if rounds.len() <= *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push((i, step));
        *k += 1;
    }
    rounds
}

/// Answers each step of a round from its run's lease holder (`holders`:
/// run id → lease owner, for the runs that are queued) and returns the steps
/// that hold their lease, to be written.
pub(crate) fn fence<'a>(
    round: &[(usize, &'a StepCommit)],
    holders: &std::collections::HashMap<String, Option<String>>,
    answers: &mut Answers,
) -> Vec<&'a StepCommit> {
    let mut fenced = Vec::with_capacity(round.len());
    for &(i, step) in round {
        match lease_lost(step, holders.get(&step.run_id).cloned()) {
            Some(refusal) => answers.set(i, Err(refusal)),
            None => {
                answers.set(i, Ok(Reply::Done));
                fenced.push(step);
            }
        }
    }
    fenced
}

/// Collects a batch's answers by request index.
pub(crate) struct Answers(Vec<Option<OpResult>>);

impl Answers {
    pub(crate) fn new(len: usize) -> Self {
        Self((0..len).map(|_| None).collect())
    }

    pub(crate) fn set(&mut self, index: usize, answer: OpResult) {
        if let Some(slot) = self.0.get_mut(index) {
            *slot = Some(answer);
        }
    }

    pub(crate) fn finish(self) -> Vec<OpResult> {
        self.0
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(StoreError::Internal(
                        "a write request was left out of its batch".into(),
                    ))
                })
            })
            .collect()
    }
}

/// Why a step commit is refused before it changes anything: `holder` is the
/// run's queue entry (`None`: no entry) and its lease owner.
pub(crate) fn lease_lost(step: &StepCommit, holder: Option<Option<String>>) -> Option<StoreError> {
    match holder {
        None => Some(StoreError::Conflict(format!(
            "lease lost: run {} is no longer queued",
            step.run_id
        ))),
        Some(owner) if owner.as_deref() != Some(step.owner.as_str()) => {
            Some(StoreError::Conflict(format!(
                "lease lost: run {} is not leased to {}",
                step.run_id, step.owner
            )))
        }
        Some(_) => None,
    }
}

/// The answer for a key seen before: a replay when the body is the same.
pub(crate) fn earlier_outcome(
    event: &NewEvent,
    event_id: String,
    run_id: String,
    body_sha256: &str,
) -> AcceptOutcome {
    if body_sha256 == event.body_sha256 {
        AcceptOutcome::Replayed { event_id, run_id }
    } else {
        AcceptOutcome::KeyReused { event_id, run_id }
    }
}

/// A write and where its answer goes.
pub(crate) struct Request {
    pub op: WriteOp,
    pub reply: oneshot::Sender<OpResult>,
}

/// The store's side of the channel. Cloning shares it; when the last clone
/// is dropped the writers stop.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Request>,
    batches: Arc<AtomicU64>,
    feed: Feed,
}

impl WriterHandle {
    /// Queues `op` and waits for the commit that holds it.
    pub(crate) async fn call(&self, op: WriteOp) -> StoreResult<Reply> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Request { op, reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Transactions committed so far (batches, and requests re-run alone).
    pub(crate) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Writes waiting for a writer.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The live feed of committed run events.
    pub(crate) fn feed(&self) -> &Feed {
        &self.feed
    }
}

impl fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.queued())
            .field("batches", &self.batches())
            .finish()
    }
}

/// The writer task died with the runtime that ran it, or the store is
/// shutting down.
fn stopped() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".into())
}

/// One writer task's state; [`Writer::run`] is the task.
pub(crate) struct Writer<DB: Database> {
    pool: Pool<DB>,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
    batches: Arc<AtomicU64>,
    feed: Feed,
    max_batch: usize,
    /// Keep the connection between batches. Off for SQLite in memory, whose
    /// one connection the readers need too.
    hold_connection: bool,
}

/// A channel and `count` writers on `pool` sharing its receiving end. The
/// caller spawns each [`Writer::run`] (where the backend is concrete, so the
/// task is known to be `Send`).
pub(crate) fn writers<DB: Database>(
    pool: &Pool<DB>,
    config: WriterConfig,
    count: usize,
    hold_connection: bool,
) -> (WriterHandle, Vec<Writer<DB>>) {
    let (handle, rx) = channel(config);
    let rx = Arc::new(Mutex::new(rx));
    let (batches, feed) = handle.parts();
    let tasks = (0..count.max(1))
        .map(|_| Writer {
            pool: pool.clone(),
            rx: rx.clone(),
            batches: batches.clone(),
            feed: feed.clone(),
            // A batch of 0 would never progress.
            max_batch: config.max_batch.max(1),
            hold_connection,
        })
        .collect();
    (handle, tasks)
}

/// The bounded request channel, with the handle callers write through and
/// the receiving end a writer takes batches from.
pub(crate) fn channel(config: WriterConfig) -> (WriterHandle, mpsc::Receiver<Request>) {
    // A channel of capacity 0 panics.
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let handle = WriterHandle {
        tx,
        batches: Arc::new(AtomicU64::new(0)),
        feed: Feed::new(),
    };
    (handle, rx)
}

impl WriterHandle {
    /// The committed-batch counter and the live feed, for a writer that
    /// must not hold the sending end (the channel closes when the last
    /// handle goes).
    pub(crate) fn parts(&self) -> (Arc<AtomicU64>, Feed) {
        (self.batches.clone(), self.feed.clone())
    }
}

impl<DB: BatchDb> Writer<DB> {
    /// Takes batches until the channel closes.
    pub(crate) async fn run(self) {
        let mut conn = None;
        let mut requests = Vec::with_capacity(self.max_batch);
        loop {
            // Writers take turns at the receiver; the lock is released
            // before the batch runs, so another writer collects the next one
            // meanwhile.
            let received = self
                .rx
                .lock()
                .await
                .recv_many(&mut requests, self.max_batch)
                .await;
            if received == 0 {
                break;
            }
            let (ops, replies): (Vec<WriteOp>, Vec<oneshot::Sender<OpResult>>) =
                requests.drain(..).map(|r| (r.op, r.reply)).unzip();
            let answers = self.execute(&mut conn, &ops).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that stopped waiting is no error: its write stands.
                let _ = reply.send(answer);
            }
            if !self.hold_connection {
                conn = None;
            }
        }
        debug!("store writer stopped: the store was dropped");
    }

    async fn execute(
        &self,
        conn: &mut Option<PoolConnection<DB>>,
        ops: &[WriteOp],
    ) -> Vec<OpResult> {
        let err = match self.transaction(conn, ops).await {
            Ok(answers) => return answers,
            Err(err) => err,
        };
        if is_outage(&err) {
            warn!(error = %err, requests = ops.len(), "write batch failed: store unavailable");
            let err = Arc::new(err);
            return ops.iter().map(|_| Err(unavailable(&err))).collect();
        }
        if let [op] = ops {
            return vec![Err(op.error(err))];
        }
        debug!(error = %err, requests = ops.len(), "write batch failed; running its requests one by one");
        let mut answers = Vec::with_capacity(ops.len());
        let mut outage: Option<Arc<sqlx::Error>> = None;
        for op in ops {
            if let Some(err) = &outage {
                answers.push(Err(unavailable(err)));
                continue;
            }
            match self.transaction(conn, std::slice::from_ref(op)).await {
                Ok(mut one) => answers.push(one.pop().unwrap_or_else(|| {
                    Err(StoreError::Internal("a write request got no answer".into()))
                })),
                Err(err) if is_outage(&err) => {
                    warn!(error = %err, "write failed: store unavailable");
                    let err = Arc::new(err);
                    answers.push(Err(unavailable(&err)));
                    outage = Some(err);
                }
                Err(err) => answers.push(Err(op.error(err))),
            }
        }
        answers
    }

    /// One transaction on the writer's connection, acquired if it has none.
    /// `Ok` only once the commit returned.
    async fn transaction(
        &self,
        slot: &mut Option<PoolConnection<DB>>,
        ops: &[WriteOp],
    ) -> Result<Vec<OpResult>, sqlx::Error> {
        let mut fresh = slot.is_none();
        loop {
            let conn = match slot {
                Some(conn) => conn,
                None => slot.insert(self.pool.acquire().await?),
            };
            let mut events = EventSink::new(self.feed.wanted());
            let attempt = match sqlx::Connection::begin_with(&mut **conn, DB::BEGIN).await {
                Err(err) => Attempt::NotBegun(err),
                Ok(mut tx) => match DB::run_ops(&mut tx, ops, &mut events).await {
                    // Dropping `tx` on an error rolls it back.
                    Err(err) => Attempt::Failed(err),
                    Ok(answers) => match tx.commit().await {
                        Ok(()) => Attempt::Committed(answers),
                        Err(err) => Attempt::Failed(err),
                    },
                },
            };
            match attempt {
                Attempt::Committed(answers) => {
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    self.feed.publish(events.events);
                    return Ok(answers);
                }
                // A held connection the server closed while it sat idle (a
                // restart, an idle timeout): nothing ran, so the batch runs
                // again, once, on a fresh one.
                Attempt::NotBegun(err) if !fresh && connection_lost(&err) => {
                    debug!(error = %err, "writer connection was lost while idle; reconnecting");
                    self.discard(slot, &err);
                    fresh = true;
                }
                Attempt::NotBegun(err) | Attempt::Failed(err) => {
                    self.discard(slot, &err);
                    return Err(err);
                }
            }
        }
    }

    /// Gives up the connection after `err` if it may be broken: closed, not
    /// returned to the pool. (A shared in-memory SQLite connection is
    /// returned instead: it holds the data.)
    fn discard(&self, slot: &mut Option<PoolConnection<DB>>, err: &sqlx::Error) {
        if !connection_suspect(err) {
            return;
        }
        match slot.take() {
            Some(mut conn) if self.hold_connection => conn.close_on_drop(),
            // Dropped here: back to the pool.
            _ => {}
        }
    }
}

enum Attempt {
    NotBegun(sqlx::Error),
    Failed(sqlx::Error),
    Committed(Vec<OpResult>),
}

/// One outage, reported to every caller it failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Shared(Arc<sqlx::Error>);

fn unavailable(err: &Arc<sqlx::Error>) -> StoreError {
    StoreError::Unavailable(Box::new(Shared(err.clone())))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use moneyflow_core::run::RunStatus;
    use serde_json::Map;

    use super::*;

    fn accept(key: &str, run_id: &str) -> WriteOp {
        WriteOp::Accept(NewEvent {
            company_id: "acme".to_owned(),
            event_id: key.to_owned(),
            idempotency_key: key.to_owned(),
            webhook_id: None,
            body_sha256: String::new(),
            body: "{}".to_owned(),
            event_type: "product".to_owned(),
            rule_version: 1,
            run_id: run_id.to_owned(),
            received_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_batch_runs_steps_then_accepts_by_key_then_renewals_releases_and_claims() {
        let ops = vec![
            WriteOp::Claim(Claim {
                owner: "w".to_owned(),
                limit: 1,
                now: OffsetDateTime::UNIX_EPOCH,
                until: OffsetDateTime::UNIX_EPOCH,
            }),
            accept("b", "run-1"),
            accept("a", "run-2"),
            accept("b", "run-3"),
            WriteOp::Renew(Renewal {
                owner: "w".to_owned(),
                run_ids: Vec::new(),
                until: OffsetDateTime::UNIX_EPOCH,
            }),
            WriteOp::Commit(StepCommit {
                run_id: "run-0".to_owned(),
                owner: "w".to_owned(),
                status: RunStatus::Running,
                nodes: Map::new(),
                started_at: None,
                finished_at: None,
                documents: Vec::new(),
                next: moneyflow_core::ports::QueueNext::Keep,
                events: Vec::new(),
            }),
            WriteOp::ReleaseAll,
        ];
        let plan = Plan::new(&ops);
        assert_eq!(
            plan.commits.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [5]
        );
        // By key; the two "b"s in arrival order, so the first one wins.
        assert_eq!(
            plan.accepts.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [2, 1, 3]
        );
        assert_eq!(
            plan.renewals.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(plan.claims.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0]);
        assert_eq!(plan.order(), [5, 2, 1, 3, 4, 6, 0]);
    }

    #[test]
    fn an_unanswered_request_is_an_internal_error() {
        let mut answers = Answers::new(2);
        answers.set(1, Ok(Reply::Done));
        answers.set(7, Ok(Reply::Done));
        let answers = answers.finish();
        assert!(matches!(answers[0], Err(StoreError::Internal(_))));
        assert!(matches!(answers[1], Ok(Reply::Done)));
    }

    #[tokio::test]
    async fn writers_stop_when_the_last_handle_is_dropped() {
        // Never connected: the writers only take a connection for a batch.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://127.0.0.1:1/none")
            .expect("a lazy pool");
        // Zeros are clamped, not a panic or a writer that never progresses.
        let config = WriterConfig {
            queue_capacity: 0,
            max_batch: 0,
            writers: 0,
        };
        let (handle, tasks) = writers(&pool, config, 0, false);
        assert_eq!(tasks.len(), 1);
        let joins: Vec<_> = tasks
            .into_iter()
            .map(|task| tokio::spawn(task.run()))
            .collect();
        let clone = handle.clone();
        drop(handle);
        tokio::task::yield_now().await;
        assert!(
            joins.iter().all(|j| !j.is_finished()),
            "a clone still holds the channel"
        );
        drop(clone);
        for join in joins {
            tokio::time::timeout(Duration::from_secs(5), join)
                .await
                .expect("the writer stops once the channel closes")
                .expect("the writer does not panic");
        }
    }
}
