//! Startup as a value: [`Application::build`] opens and migrates the store,
//! settles the admin token, seeds the demo on first start, binds the
//! listener and starts the orchestrator and the notification delivery
//! worker; [`Application::run_until_stopped`] serves until SIGTERM or
//! ctrl-c, then stops accepting requests, lets in-flight ones finish, and
//! shuts the orchestrator down (in-flight runs finish or have their leases
//! released, so another start resumes them), then the delivery worker.
//!
//! Tests use [`Application::build_with_store`] with a fresh store and port 0,
//! or [`Application::build_with_store_and_registry`] to add test-only tasks.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use moneyflow_broker::Broker;
use moneyflow_core::ports::{RunStore, SettingStore, StoreError};
use moneyflow_engine::delivery::{DeliveryConfig, DeliveryHandle, DeliveryWorker};
use moneyflow_engine::http::HttpPolicy;
use moneyflow_engine::{Clock, Orchestrator, OrchestratorConfig, OrchestratorHandle, Registry};
use moneyflow_store::{Backend, Store};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::AdminTokenHash;
use crate::config::{Config, Role, StoreConfig};
use crate::demo::{self, DemoSeed};
use crate::distributed::DistributedHandle;
use crate::metrics::Metrics;
use crate::secret::{SecretString, generate_admin_token};
use crate::state::AppState;

/// The settings key holding the generated admin token's SHA-256 hex.
pub const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not open the store")]
    Store(#[from] StoreError),
    #[error("could not listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to the broker")]
    Broker(#[from] moneyflow_broker::BrokerError),
    #[error("{0}")]
    Config(String),
    #[error(
        "the stored admin token hash is not valid hex; delete the `{ADMIN_TOKEN_SETTING}` setting or set MONEYFLOW_ADMIN_TOKEN"
    )]
    CorruptAdminTokenHash,
}

/// Where the admin token came from, for the banner.
#[derive(Debug, Clone)]
pub enum AdminToken {
    /// `MONEYFLOW_ADMIN_TOKEN` / `--admin-token`.
    Configured,
    /// Generated now, on first start: print it once.
    Generated(SecretString),
    /// Generated on an earlier start; only its hash is kept.
    Stored,
}

/// What startup did that the operator should hear about once.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin_token: AdminToken,
    pub demo: Option<DemoSeed>,
}

/// Opens the store named by the configuration: the database URL when given,
/// else SQLite in the data directory. Does not migrate.
pub async fn open_store(config: &StoreConfig) -> Result<Store, StoreError> {
    match &config.database_url {
        Some(url) => Store::connect(url.expose_secret()).await,
        None => Store::open_data_dir(&config.data_dir).await,
    }
}

/// The configured admin token, or the one generated on first start.
async fn settle_admin_token(
    store: &Store,
    configured: Option<&SecretString>,
) -> Result<(AdminTokenHash, AdminToken), StartupError> {
    if let Some(token) = configured {
        return Ok((AdminTokenHash::from_token(token), AdminToken::Configured));
    }
    let token = generate_admin_token();
    let hash = AdminTokenHash::from_token(&token);
    // Set-if-absent makes two processes starting at once agree on one token.
    if store
        .set_setting_if_absent(ADMIN_TOKEN_SETTING, &hash.to_hex())
        .await?
    {
        return Ok((hash, AdminToken::Generated(token)));
    }
    let stored = store
        .get_setting(ADMIN_TOKEN_SETTING)
        .await?
        .ok_or(StartupError::CorruptAdminTokenHash)?;
    let hash = AdminTokenHash::from_hex(&stored).ok_or(StartupError::CorruptAdminTokenHash)?;
    Ok((hash, AdminToken::Stored))
}

/// The task registry the configuration asks for: every built-in task, with
/// `http_request` under the configured address policy.
pub fn builtin_registry(config: &Config) -> Registry {
    Registry::builtin(HttpPolicy {
        allow_private_addresses: config.allow_private_addresses,
        response_limit_bytes: config.http_response_limit_bytes,
        ..HttpPolicy::default()
    })
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    bootstrap: Bootstrap,
    /// The embedded-queue worker (no broker, a role that runs workers).
    orchestrator: Option<OrchestratorHandle>,
    deliveries: Option<DeliveryHandle>,
    /// Relay, dispatcher and consumer (with a broker).
    distributed: Option<DistributedHandle>,
    role: Role,
    /// The built canvas, served under `/ui/`.
    ui_dir: std::path::PathBuf,
}

impl Application {
    /// Opens and migrates the store from the configuration, then
    /// [`Self::build_with_store`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = open_store(&config.store).await?;
        store.migrate().await?;
        if store.backend() == Backend::Sqlite {
            // SQLite is the one-process deployment: no other worker can hold
            // a lease, so leases left by a crash are released now rather
            // than waiting for them to expire.
            let released = store.release_all_leases().await?;
            if released > 0 {
                tracing::info!(
                    released,
                    "released the leases of runs left by the last stop"
                );
            }
        }
        Self::build_with_store(config, store).await
    }

    /// Builds on an already migrated store (`config.store` is not used),
    /// with the built-in tasks.
    pub async fn build_with_store(config: Config, store: Store) -> Result<Self, StartupError> {
        let registry = builtin_registry(&config);
        Self::build_with_store_and_registry(config, store, registry).await
    }

    /// Builds on an already migrated store with `registry`'s tasks (tests add
    /// test-only tasks to [`builtin_registry`]); rules are validated against
    /// its catalogue.
    pub async fn build_with_store_and_registry(
        config: Config,
        store: Store,
        registry: Registry,
    ) -> Result<Self, StartupError> {
        let registry = Arc::new(registry);
        let (admin_token_hash, admin_token) =
            settle_admin_token(&store, config.admin_token.as_ref()).await?;
        let demo = if config.demo {
            demo::seed(&store, registry.catalogue()).await?
        } else {
            None
        };
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        tracing::info!(%addr, backend = ?store.backend(), "listening");
        // Started only once the port is bound, so a failed start leaves no
        // worker behind.
        // Shared by the orchestrator (and the delivery worker's
        // `notification_deliveries`) and `/metrics`.
        let metrics = Metrics::default();
        let role = config.role;
        let deliveries = role.runs_workers().then(|| {
            DeliveryWorker::new(
                store.clone(),
                DeliveryConfig {
                    retry: config.notification_retry(),
                    allow_private_addresses: config.allow_private_addresses,
                    ..DeliveryConfig::default()
                },
                Clock::System,
            )
            .with_metrics(metrics.engine.clone())
            .spawn()
        });
        let orchestrator_config = OrchestratorConfig {
            max_in_flight: config.max_in_flight_runs.max(1),
            // A finished run's deliveries are committed with its last step.
            on_run_finished: deliveries.as_ref().map(DeliveryHandle::waker),
            limits: config.size_limits(),
            max_step_attempts: config.max_step_attempts,
            ..OrchestratorConfig::default()
        };
        if config.broker.is_some() && config.max_step_attempts >= config.broker_delivery_limit {
            // Each failed step is a failed delivery: the broker gives up first.
            tracing::warn!(
                max_step_attempts = config.max_step_attempts,
                broker_delivery_limit = config.broker_delivery_limit,
                "poison runs are dead-lettered by the broker before they are quarantined: set --max-step-attempts below --broker-delivery-limit"
            );
        }
        let broker = match config.broker_config() {
            Some(broker_config) => Some(Broker::connect(broker_config).await?),
            None => None,
        };
        if config.hold_runs && role.runs_workers() {
            tracing::warn!("--hold-runs: payments are accepted and queued, no run is executed");
        }
        let mut orchestrator = None;
        let mut distributed = None;
        let waker = match (&broker, &store) {
            (Some(broker), Store::Postgres(pg)) => {
                pg.enable_distributed_mode().await?;
                let mut tasks = DistributedHandle::new();
                let relay = role
                    .routes_payments()
                    .then(|| tasks.spawn_relay(pg.clone(), broker.clone()));
                if role != Role::Composer {
                    tasks.spawn_dispatcher(pg.clone(), relay.clone());
                }
                if role.runs_workers() && !config.hold_runs {
                    let worker = Orchestrator::new(
                        store.clone(),
                        registry.clone(),
                        orchestrator_config,
                        Clock::System,
                    )
                    .with_metrics(metrics.engine.clone())
                    .propagating_panics();
                    tasks.spawn_consumer(Arc::new(worker), broker.clone());
                }
                distributed = Some(tasks);
                relay.unwrap_or_default()
            }
            (Some(_), Store::Sqlite(_)) => {
                return Err(StartupError::Config(
                    "distributed mode (--broker) needs PostgreSQL (--database-url postgres://…)"
                        .to_owned(),
                ));
            }
            (None, _) if role.runs_workers() && !config.hold_runs => {
                let handle = Orchestrator::new(
                    store.clone(),
                    registry.clone(),
                    orchestrator_config,
                    Clock::System,
                )
                .with_metrics(metrics.engine.clone())
                .spawn();
                let waker = handle.waker();
                orchestrator = Some(handle);
                waker
            }
            // Routers without workers (or held): another process polls
            // the table, or a later start does.
            (None, _) => Arc::new(Notify::new()),
        };
        let mut state = AppState::with_engine(
            store,
            admin_token_hash,
            config.body_limit_bytes,
            registry,
            waker,
            config.allow_private_addresses,
        )
        .with_metrics(metrics)
        .with_max_problems(config.max_problems)
        .with_metrics_token(
            config
                .metrics_token
                .as_ref()
                .map(AdminTokenHash::from_token),
        )
        .with_size_limits(config.size_limits())
        .with_tenant_limits(config.tenant_limits());
        if let Some(broker) = broker {
            state = state.with_broker(broker);
        }
        if let Store::Postgres(pg) = state.store()
            && role.serves_api()
        {
            // Event streams hear of other processes' run events; the task
            // ends with the server (the shutdown signal).
            pg.spawn_run_events_listener(state.remote_events().clone(), state.shutdown_signal());
        }
        Ok(Self {
            listener,
            addr,
            state,
            bootstrap: Bootstrap { admin_token, demo },
            orchestrator,
            deliveries,
            distributed,
            role,
            ui_dir: config.ui_dir,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Serves until SIGTERM or ctrl-c.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes, then stops accepting connections,
    /// waits for in-flight requests to finish, and shuts the orchestrator
    /// down: runs in flight finish within its grace period or have their
    /// leases released for the next start.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = if self.role.serves_api() {
            crate::app(self.state.clone()).merge(crate::ui::router(&self.ui_dir))
        } else {
            // An orchestrator answers probes and metrics only.
            axum::Router::new()
                .route("/health", axum::routing::get(crate::routes::health::health))
                .route("/ready", axum::routing::get(crate::routes::health::ready))
                .route("/metrics", axum::routing::get(crate::metrics::metrics))
                .with_state(self.state.clone())
        };
        let app = if self.role == Role::Composer {
            app.layer(axum::middleware::from_fn(no_payments))
        } else {
            app
        };
        let state = self.state;
        let signal = async move {
            signal.await;
            // Live streams never end by themselves: end them, or the
            // graceful shutdown would wait for their clients forever.
            state.begin_shutdown();
        };
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(signal)
            .await;
        // Even when serving failed, queued work must not be left leased.
        tracing::info!("HTTP stopped; stopping the orchestrator");
        if let Some(orchestrator) = self.orchestrator {
            orchestrator.shutdown().await;
        }
        if let Some(distributed) = self.distributed {
            distributed.shutdown().await;
        }
        // After the workers: the runs they finished while stopping have
        // their deliveries queued, which the next start sends.
        if let Some(deliveries) = self.deliveries {
            deliveries.shutdown().await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The composer role takes no payments: `POST /payment` is another
/// process's (the router's) route.
async fn no_payments(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path() == "/payment" {
        use axum::response::IntoResponse;
        return crate::extract::not_found(request.uri().clone())
            .await
            .into_response();
    }
    next.run(request).await
}

/// Completes on ctrl-c or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_admin_token_is_kept_as_a_hash_and_reused() {
        let store = moneyflow_store::testing::fresh_sqlite().await;
        let (hash, token) = settle_admin_token(&store, None).await.expect("first start");
        let AdminToken::Generated(token) = token else {
            panic!("first start generates a token")
        };
        assert!(token.expose_secret().starts_with("mfa_"));
        assert!(hash.matches(token.expose_secret()));
        let stored = store
            .get_setting(ADMIN_TOKEN_SETTING)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(stored, token.expose_secret(), "only the hash is stored");

        let (again, source) = settle_admin_token(&store, None)
            .await
            .expect("second start");
        assert!(matches!(source, AdminToken::Stored));
        assert!(again.matches(token.expose_secret()));

        let configured = SecretString::new("mine");
        let (configured_hash, source) =
            settle_admin_token(&store, Some(&configured)).await.unwrap();
        assert!(matches!(source, AdminToken::Configured));
        assert!(configured_hash.matches("mine"));
    }

    #[tokio::test]
    async fn graceful_shutdown_ends_the_server() {
        let store = moneyflow_store::testing::fresh_sqlite().await;
        let config = Config {
            port: 0,
            demo: false,
            admin_token: Some(SecretString::new("t")),
            ..Config::default()
        };
        let app = Application::build_with_store(config, (*store).clone())
            .await
            .expect("builds");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        stop.send(()).expect("server is waiting");
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("stops in time")
            .expect("task did not panic")
            .expect("served without error");
    }
}
