//! MoneyFlow's orchestrator: takes queued runs, executes their rule graph and
//! checkpoints every node, so a run survives crashes without repeating
//! completed work.
//!
//! # Layout
//! - [`task`]: the task interface (resolved parameters and context in; an
//!   output, or an error marked retryable or permanent, out) and the registry.
//! - [`builtin`]: the built-in catalogue (invoice, shipment, royalty…), each
//!   effect a document stored under the idempotency key `{run_id}:{node_id}`.
//! - [`http`]: `payment.tasks.http_request`, with the address policy.
//! - [`executor`]: one step of one run: evaluate what is ready in memory, run
//!   tasks in parallel, retry with backoff, checkpoint.
//! - [`orchestrator`]: the worker loop: claim due runs, bounded in flight,
//!   lease renewal, wake-ups, graceful shutdown.
//! - [`clock`]: wall time that follows tokio's clock in tests (paused time).
//!
//! The engine depends on the store's ports (traits), never on a database.

pub mod builtin;
pub mod clock;
pub mod executor;
pub mod http;
pub mod orchestrator;
pub mod task;

pub use clock::Clock;
pub use orchestrator::{Orchestrator, OrchestratorConfig, OrchestratorHandle};
pub use task::{Registry, Task, TaskError, TaskInput, TaskOutput};
