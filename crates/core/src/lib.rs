//! MoneyFlow's pure core: everything about payment rules that needs no I/O.
//!
//! # Layout
//! - [`model`]: the rule set as stored and served (the original JSON format plus
//!   optional extensions), with its serialisation.
//! - [`validation`]: turns untrusted JSON into a [`model::RuleSet`], or lists
//!   every problem with the JSON path at fault and what is allowed.
//! - [`event`]: payment events (DESIGN §5): untrusted JSON in, the fields the
//!   router needs or every problem with its path out.
//! - [`catalogue`]: the built-in task catalogue: names, parameter specs and the
//!   JSON Schema the canvas reads.
//! - [`path`]: `$context.…` paths, parsed once and resolved against a context.
//! - [`eval`]: condition operators and their evaluation (decimal-aware, never panics).
//! - [`money`]: decimal parsing of JSON numbers and numeric strings, rounding.
//! - [`run`]: the run state machine: readiness, skips, outcomes, backoff.
//! - [`ports`]: the records and traits that storage implements
//!   (`ports/monitoring.rs`: run events, run listings, queue gauges, redrive).
//! - [`size`]: JSON sizes measured without serialising, the node and run
//!   size limits, previews of large values.
//! - [`redrive`]: which checkpoints of a failed run a redrive resets.
//! - [`signature`]: the shape of the Standard Webhooks headers on a signed payment.
//! - [`suggest`]: "did you mean" hints, with the work of one validation bounded.
//!
//! The compiler enforces the boundary: this crate depends on no database,
//! HTTP or async runtime crate.

pub mod catalogue;
pub mod eval;
pub mod event;
pub mod model;
pub mod money;
pub mod path;
pub mod ports;
pub mod redrive;
pub mod run;
pub mod signature;
pub mod size;
pub mod suggest;
pub mod validation;
