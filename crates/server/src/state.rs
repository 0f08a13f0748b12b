//! The state every handler shares: the store, the admin token's hash, the
//! task registry (whose catalogue validation uses), the orchestrator's waker
//! and the body limit. Cheap to clone (one `Arc`).

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use moneyflow_core::catalogue::Catalogue;
use moneyflow_engine::Registry;
use moneyflow_engine::http::HttpPolicy;
use moneyflow_store::Store;
use tokio::sync::Notify;

use crate::auth::AdminTokenHash;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    admin_token: AdminTokenHash,
    registry: Arc<Registry>,
    waker: Arc<Notify>,
    body_limit: usize,
    /// `GET /tasks`'s body, built once: the registry does not change.
    tasks_body: OnceLock<Bytes>,
}

impl AppState {
    /// State with the built-in tasks and a waker nobody listens to: enough
    /// for handler tests that run no orchestrator.
    pub fn new(store: Store, admin_token: AdminTokenHash, body_limit: usize) -> Self {
        Self::with_engine(
            store,
            admin_token,
            body_limit,
            Arc::new(Registry::builtin(HttpPolicy::default())),
            Arc::new(Notify::new()),
        )
    }

    /// State wired to an orchestrator: `registry` is the one it executes
    /// (rules are validated against its catalogue), `waker` wakes it when
    /// the router queues a run.
    pub fn with_engine(
        store: Store,
        admin_token: AdminTokenHash,
        body_limit: usize,
        registry: Arc<Registry>,
        waker: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                admin_token,
                registry,
                waker,
                body_limit,
                tasks_body: OnceLock::new(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn admin_token(&self) -> &AdminTokenHash {
        &self.inner.admin_token
    }

    /// The catalogue of the tasks the orchestrator can execute.
    pub fn catalogue(&self) -> &Catalogue {
        self.inner.registry.catalogue()
    }

    /// Wakes the orchestrator after a run was queued, so it claims it at
    /// once instead of at its next idle poll.
    pub fn waker(&self) -> &Notify {
        &self.inner.waker
    }

    /// Largest request body, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    pub(crate) fn tasks_body(&self) -> &OnceLock<Bytes> {
        &self.inner.tasks_body
    }
}
