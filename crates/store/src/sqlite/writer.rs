//! SQLite's group-commit writer: one thread owning one rusqlite connection.
//!
//! It takes a request from the channel (`writer.rs`'s), drains whatever
//! else is waiting (up to [`WriterConfig::max_batch`](crate::WriterConfig)),
//! runs them all in ONE `BEGIN IMMEDIATE` transaction in the [`Plan`]'s
//! order (step commits, redrives, accepts, renewals, releases, claims),
//! commits once — one fsync — and only then answers each.
//!
//! - Isolation: each request runs inside a savepoint of its own. A request
//!   that fails (a run id taken, a lost lease) is rolled back to its
//!   savepoint and answered its own error; the rest of the batch commits.
//! - Outages (the write lock not had within the busy timeout, an I/O error,
//!   a full disk) fail the whole batch: every request is answered
//!   [`StoreError::Unavailable`] and the next batch tries again.
//! - Run events: each request appends its run events inside its savepoint;
//!   once the batch has committed, and before anyone is answered, they are
//!   published on the live feed.
//! - Lifetime: the thread stops when the store's last handle is dropped and
//!   the channel closes.
//!
//! What each request writes is in `runs.rs` and `events.rs`; statements are
//! prepared once per connection (`prepare_cached`), and no SQL JSON
//! function runs on this path.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moneyflow_core::ports::{RunEvent, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::connection;
use crate::codec::now;
use crate::error::rusqlite_outage;
use crate::run_events::{EventSink, Feed};
use crate::writer::{Answers, OpResult, Plan, Request, WriteOp};

/// Why one request of a batch failed.
pub(super) enum OpFailure {
    /// Refused before it changed anything that matters (a lost lease, a run
    /// that is not failed): its answer.
    Refused(StoreError),
    /// A statement failed: an outage fails the batch, anything else this
    /// request alone.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for OpFailure {
    fn from(err: rusqlite::Error) -> Self {
        OpFailure::Sqlite(err)
    }
}

/// The run events a request appends, kept for the feed while anyone
/// listens, all stamped with the batch's time.
pub(super) struct OpEvents {
    pub collect: bool,
    pub at: OffsetDateTime,
    pub events: Vec<RunEvent>,
}

/// The writer thread's state.
pub(super) struct Writer {
    conn: Option<Connection>,
    path: PathBuf,
    rx: mpsc::Receiver<Request>,
    batches: Arc<AtomicU64>,
    feed: Feed,
    max_batch: usize,
}

impl Writer {
    /// `conn` is the writer's connection, opened by the caller so that a
    /// database that cannot be opened fails the store's creation.
    pub(super) fn new(
        conn: Connection,
        path: PathBuf,
        rx: mpsc::Receiver<Request>,
        (batches, feed): (Arc<AtomicU64>, Feed),
        max_batch: usize,
    ) -> Self {
        Self {
            conn: Some(conn),
            path,
            rx,
            batches,
            feed,
            max_batch: max_batch.max(1),
        }
    }

    /// Starts the thread.
    pub(super) fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("moneyflow-sqlite-writer".to_owned())
            .spawn(move || self.run())
            .map(drop)
    }

    fn run(mut self) {
        let mut requests = Vec::with_capacity(self.max_batch);
        while let Some(first) = self.rx.blocking_recv() {
            requests.push(first);
            while requests.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(request) => requests.push(request),
                    Err(_) => break,
                }
            }
            let (ops, replies): (Vec<WriteOp>, Vec<_>) =
                requests.drain(..).map(|r| (r.op, r.reply)).unzip();
            let answers = self.execute(&ops);
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that stopped waiting is no error: its write stands.
                let _ = reply.send(answer);
            }
        }
        debug!("SQLite writer stopped: the store was dropped");
    }

    fn execute(&mut self, ops: &[WriteOp]) -> Vec<OpResult> {
        let mut sink = EventSink::new(self.feed.wanted());
        let result = match self.connection() {
            Ok(conn) => batch(conn, ops, &mut sink),
            Err(err) => Err(err),
        };
        match result {
            Ok(answers) => {
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.feed.publish(sink.events);
                answers
            }
            Err(err) => {
                warn!(error = %err, requests = ops.len(), "SQLite write batch failed");
                // A connection left inside a transaction (its rollback
                // failed too) is not reused.
                if self.conn.as_ref().is_some_and(|c| !c.is_autocommit()) {
                    self.conn = None;
                }
                let outage = rusqlite_outage(&err);
                let err = Arc::new(err);
                ops.iter()
                    .map(|_| {
                        let shared = Box::new(Shared(err.clone()));
                        Err(if outage {
                            StoreError::Unavailable(shared)
                        } else {
                            StoreError::Internal(shared)
                        })
                    })
                    .collect()
            }
        }
    }

    fn connection(&mut self) -> rusqlite::Result<&mut Connection> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => connection::open(&self.path)?,
        };
        Ok(self.conn.insert(conn))
    }
}

/// One batch in one transaction; `Err` when the batch as a whole failed
/// (nothing of it is committed).
fn batch(
    conn: &mut Connection,
    ops: &[WriteOp],
    sink: &mut EventSink,
) -> rusqlite::Result<Vec<OpResult>> {
    let plan = Plan::new(ops);
    let mut answers = Answers::new(ops.len());
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let at = now();
    for i in plan.order() {
        let Some(op) = ops.get(i) else { continue };
        let mut events = OpEvents {
            collect: sink.collect,
            at,
            events: Vec::new(),
        };
        let savepoint = tx.savepoint()?;
        match super::runs::run_op(&savepoint, op, &mut events) {
            Ok(reply) => {
                savepoint.commit()?;
                answers.set(i, Ok(reply));
                sink.events.append(&mut events.events);
            }
            Err(OpFailure::Refused(err)) => {
                savepoint.finish()?;
                answers.set(i, Err(err));
            }
            Err(OpFailure::Sqlite(err)) if rusqlite_outage(&err) => return Err(err),
            Err(OpFailure::Sqlite(err)) => {
                savepoint.finish()?;
                answers.set(i, Err(op.rusqlite_error(err)));
            }
        }
    }
    tx.commit()?;
    Ok(answers.finish())
}

/// One batch failure, reported to every caller it failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Shared(Arc<rusqlite::Error>);
