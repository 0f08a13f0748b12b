//! The server's integration tests: one binary, one module per area. Each
//! test starts the real server on 127.0.0.1, port 0, with a fresh store, and
//! runs on SQLite and on PostgreSQL (see [`backend_test!`]).

#[macro_use]
mod helpers;

mod auth;
mod bounds;
mod companies;
mod contract;
mod cross_process;
mod distributed;
mod docs;
mod errors;
mod health;
mod limits;
mod metrics;
mod notifications;
mod outage;
mod payment;
mod payment_auth;
mod payment_events;
mod redrive;
mod registry;
mod rules;
mod run_list;
mod runs;
mod simulate;
mod sse;
mod tasks;
mod tenant_limits;
