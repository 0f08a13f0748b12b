//! The state every handler shares: the store, the admin token's hash, the
//! task registry (whose catalogue validation uses, and which simulations
//! run), the orchestrator's waker, the body limit, the address policy for
//! notification endpoints, the metrics `/metrics` reports (shared with the
//! orchestrator), the size limits, the per-company limits and the shutdown
//! signal live event streams end on. Cheap to clone (one `Arc`).

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::size::SizeLimits;
use moneyflow_engine::Registry;
use moneyflow_engine::http::HttpPolicy;
use moneyflow_store::Store;
use tokio::sync::{Notify, broadcast, watch};

use crate::auth::AdminTokenHash;
use crate::cache::{CurrentVersionCache, PrincipalCache};
use crate::limits::TenantLimits;
use crate::metrics::Metrics;
use crate::remote_events::RemoteNews;

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
    /// Most problems an answer lists (`--max-problems`).
    max_problems: usize,
    /// Whether notification endpoints may be private or loopback addresses
    /// (`--allow-private-addresses`).
    allow_private_addresses: bool,
    /// `GET /tasks`'s body, built once: the registry does not change.
    tasks_body: OnceLock<Bytes>,
    /// What `/metrics` reports; shared with the orchestrator.
    metrics: Metrics,
    /// The hash of `--metrics-token`, which may read `/metrics` (as may the
    /// admin token).
    metrics_token: Option<AdminTokenHash>,
    /// Set once the server is stopping: live event streams end on it.
    shutdown: watch::Sender<bool>,
    /// RabbitMQ in distributed mode: readiness and the dead letters.
    broker: Option<moneyflow_broker::Broker>,
    /// Run events other processes committed (PostgreSQL's `LISTEN`), for
    /// the event streams.
    remote_events: broadcast::Sender<RemoteNews>,
    /// API keys' principals, kept briefly (see [`crate::cache`]).
    principals: PrincipalCache,
    /// Companies' current rule versions, kept briefly (see [`crate::cache`]).
    current_versions: CurrentVersionCache,
    /// Bumped whenever this process revokes an API key: streams opened with
    /// a key check it at once (they also check every few seconds, for keys
    /// revoked by another process).
    key_revocations: watch::Sender<u64>,
    /// The node and run size limits simulations apply and saves check
    /// literal parameters against (the orchestrator has the same).
    size_limits: SizeLimits,
    /// What one company may take: payment rate, streams, CPU, endpoints.
    tenant_limits: TenantLimits,
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
            false,
        )
    }

    /// State wired to an orchestrator: `registry` is the one it executes
    /// (rules are validated against its catalogue), `waker` wakes it when
    /// the router queues a run. `allow_private_addresses` lets notification
    /// endpoints be loopback or private addresses.
    pub fn with_engine(
        store: Store,
        admin_token: AdminTokenHash,
        body_limit: usize,
        registry: Arc<Registry>,
        waker: Arc<Notify>,
        allow_private_addresses: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                admin_token,
                registry,
                waker,
                body_limit,
                max_problems: crate::error::DEFAULT_MAX_PROBLEMS,
                allow_private_addresses,
                tasks_body: OnceLock::new(),
                metrics: Metrics::default(),
                metrics_token: None,
                shutdown: watch::Sender::new(false),
                broker: None,
                remote_events: broadcast::Sender::new(crate::remote_events::CAPACITY),
                principals: PrincipalCache::default(),
                current_versions: CurrentVersionCache::default(),
                key_revocations: watch::Sender::new(0),
                size_limits: SizeLimits::default(),
                tenant_limits: TenantLimits::default(),
            }),
        }
    }

    /// Reports `metrics` (e.g. those the orchestrator counts into) instead
    /// of fresh ones. Call it on the state just built, before it is cloned.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics = metrics,
            None => {
                tracing::error!(
                    "AppState::with_metrics on a shared state: the metrics are not replaced"
                )
            }
        }
        self
    }

    /// Lists at most `max` problems per answer (`--max-problems`); only
    /// before the state is shared.
    pub fn with_max_problems(mut self, max: usize) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.max_problems = max,
            None => tracing::error!("AppState::with_max_problems on a shared state: not set"),
        }
        self
    }

    /// Applies `limits` (`--node-limit-bytes`, `--run-limit-bytes`) instead
    /// of the defaults; only before the state is shared.
    pub fn with_size_limits(mut self, limits: SizeLimits) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.size_limits = limits,
            None => tracing::error!(
                "AppState::with_size_limits on a shared state: the limits are not replaced"
            ),
        }
        self
    }

    /// Applies `limits` (rates, streams, CPU workers, endpoints) instead of
    /// the defaults; only before the state is shared.
    pub fn with_tenant_limits(mut self, limits: TenantLimits) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.tenant_limits = limits,
            None => tracing::error!(
                "AppState::with_tenant_limits on a shared state: the limits are not replaced"
            ),
        }
        self
    }

    /// What one company may take of this server.
    pub fn tenant_limits(&self) -> &TenantLimits {
        &self.inner.tenant_limits
    }

    /// Most problems an answer lists.
    pub fn max_problems(&self) -> usize {
        self.inner.max_problems
    }

    /// Lets `token` read `/metrics`; only before the state is shared.
    pub fn with_metrics_token(mut self, token: Option<AdminTokenHash>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics_token = token,
            None => tracing::error!("AppState::with_metrics_token on a shared state: not set"),
        }
        self
    }

    /// The hash of the metrics token, when one is configured.
    pub fn metrics_token(&self) -> Option<&AdminTokenHash> {
        self.inner.metrics_token.as_ref()
    }

    pub fn size_limits(&self) -> SizeLimits {
        self.inner.size_limits
    }

    /// Adds the broker (distributed mode); only before the state is shared.
    pub fn with_broker(mut self, broker: moneyflow_broker::Broker) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.broker = Some(broker),
            None => tracing::error!("AppState::with_broker on a shared state: no broker set"),
        }
        self
    }

    pub fn broker(&self) -> Option<&moneyflow_broker::Broker> {
        self.inner.broker.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Tells long-lived responses (event streams) that the server is stopping.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Changes to `true` when the server begins to stop.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Tells the streams opened with a key that a key was revoked.
    pub fn key_revoked(&self) {
        self.inner.key_revocations.send_modify(|count| *count += 1);
    }

    /// Changes whenever this process revokes a key.
    pub fn key_revocations(&self) -> watch::Receiver<u64> {
        self.inner.key_revocations.subscribe()
    }

    /// News of run events other processes committed.
    pub fn subscribe_remote_events(&self) -> broadcast::Receiver<RemoteNews> {
        self.inner.remote_events.subscribe()
    }

    /// Where the `LISTEN` task publishes (see [`crate::remote_events`]).
    pub fn remote_events(&self) -> &broadcast::Sender<RemoteNews> {
        &self.inner.remote_events
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

    /// The tasks the orchestrator executes (simulations run them too).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// Whether notification endpoints may be private or loopback addresses.
    pub fn allow_private_addresses(&self) -> bool {
        self.inner.allow_private_addresses
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

    /// API keys' principals (forget them when a key is revoked).
    pub fn principals(&self) -> &PrincipalCache {
        &self.inner.principals
    }

    /// Companies' current rule versions (offer the new one after a save).
    pub fn current_versions(&self) -> &CurrentVersionCache {
        &self.inner.current_versions
    }

    pub(crate) fn tasks_body(&self) -> &OnceLock<Bytes> {
        &self.inner.tasks_body
    }
}
