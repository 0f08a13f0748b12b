//! MoneyFlow's orchestrator: takes queued runs, executes their rule graph and
//! checkpoints every node, so a run survives crashes without repeating
//! completed work.
//!
//! # Layout
//! - [`task`]: the task interface (resolved parameters and context in; an
//!   output, or an error marked retryable or permanent, out) and the registry.
//! - [`builtin`]: the built-in catalogue (invoice, shipment, royalty…), each
//!   effect a document stored under the idempotency key `{run_id}:{node_id}`.
//! - [`egress`]: the one address policy of outgoing calls a tenant aims
//!   (`http_request`, notification endpoints) and the client that keeps it.
//! - [`http`]: `payment.tasks.http_request`, its body read streamed and cut.
//! - [`executor`]: one step of one run: evaluate what is ready in memory, run
//!   tasks in parallel, retry with backoff, checkpoint.
//! - [`orchestrator`]: the worker loop: claim due runs, bounded in flight,
//!   lease renewal, wake-ups, graceful shutdown.
//! - [`clock`]: wall time that follows tokio's clock in tests (paused time).
//! - [`simulate`]: a rule version or a draft evaluated against an event
//!   with no effects and nothing stored (the executor's evaluation, in
//!   simulation mode).
//! - [`backtest`]: a draft replayed on a company's last stored events and
//!   compared with what their runs did.
//! - [`delivery`]: the notification delivery worker: signed (Standard
//!   Webhooks) requests for finished runs, retried for about three days.
//! - [`metrics`]: counters, histograms and the Prometheus text encoder;
//!   [`metrics::EngineMetrics`], what the orchestrator counts.
//! - `run_events.rs`: the run events (`run.started`, `node.finished`,
//!   `run.finished`) a step reports with its commits.
//!
//! The engine depends on the store's ports (traits), never on a database.

pub mod backtest;
pub mod builtin;
pub mod clock;
pub mod delivery;
pub mod egress;
pub mod executor;
pub mod http;
pub mod metrics;
pub mod orchestrator;
mod run_events;
pub mod simulate;
pub mod task;

pub use clock::Clock;
pub use metrics::EngineMetrics;
pub use orchestrator::{Orchestrator, OrchestratorConfig, OrchestratorHandle, StepOne};
pub use simulate::{Simulation, SimulationInput, Simulator};
pub use task::{Registry, Task, TaskError, TaskInput, TaskOutput};
