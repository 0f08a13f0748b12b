//! Typed settings: CLI flags, each backed by a `MONEYFLOW_…` environment
//! variable (clap `env`), with defaults that run with nothing configured
//! (`./moneyflow-data` SQLite, `127.0.0.1:8000`, a generated admin token).
//!
//! Secrets (the admin token, a database URL that may carry a password) are
//! [`SecretString`]s, so `Debug` of a [`Config`] can be logged safely.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use moneyflow_core::size::{DEFAULT_NODE_LIMIT_BYTES, DEFAULT_RUN_LIMIT_BYTES, SizeLimits};
use moneyflow_engine::delivery::{RetrySchedule, parse_delays, parse_duration};
use moneyflow_engine::orchestrator::DEFAULT_MAX_STEP_ATTEMPTS;

use crate::secret::SecretString;

/// 1 MiB: the default largest request body.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
pub const DEFAULT_PORT: u16 = 8000;
pub const DEFAULT_DATA_DIR: &str = "./moneyflow-data";
/// Where `make ui` puts the canvas, relative to the repository root.
pub const DEFAULT_UI_DIR: &str = "./ui/dist";
/// Runs one process executes at once by default. Each one's step commit
/// waits in the store's writer queue, and so does every other company's
/// next event: 128 drains a backlog within 3% of 512's rate while another
/// company's event→finished p99 stays near 40 ms (512: 150 ms;
/// `scripts/bench-fairness.sh`, docs/performance.md).
pub const DEFAULT_MAX_IN_FLIGHT_RUNS: usize = 128;
/// Waits between notification delivery attempts (the last repeats).
pub const DEFAULT_NOTIFICATION_RETRY_DELAYS: &str = "5s,5m,30m,2h,5h,10h";
/// How long a notification delivery is retried.
pub const DEFAULT_NOTIFICATION_RETRY_WINDOW: &str = "72h";

/// The waits between notification delivery attempts, e.g. `5s,5m,30m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDelays(pub Vec<Duration>);

fn retry_delays(text: &str) -> Result<RetryDelays, String> {
    parse_delays(text)
        .map(RetryDelays)
        .map_err(|e| e.to_string())
}

fn retry_window(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Where the data lives.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfig {
    /// Database URL (`postgres://…` or `sqlite:…`). When set, `--data-dir` is not used.
    #[arg(long, env = "MONEYFLOW_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// Folder for the SQLite database when no database URL is given.
    #[arg(long, env = "MONEYFLOW_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

/// Everything [`crate::Application::build`] needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MONEYFLOW_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "MONEYFLOW_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    #[command(flatten)]
    pub store: StoreConfig,

    /// Folder of the built canvas (`make ui`), served under `/ui/`.
    #[arg(long, env = "MONEYFLOW_UI_DIR", default_value = DEFAULT_UI_DIR)]
    pub ui_dir: PathBuf,

    /// The admin token. Prefer the environment variable: a flag shows in `ps`.
    /// When unset, one is generated on first start and printed once.
    #[arg(long, env = "MONEYFLOW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,

    /// A token that may read `/metrics` and nothing else (for a Prometheus
    /// scraper); the admin token may read it too. Prefer the environment
    /// variable: a flag shows in `ps`.
    #[arg(long, env = "MONEYFLOW_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "MONEYFLOW_BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT_BYTES)]
    pub body_limit_bytes: usize,

    /// Most problems one answer lists (422 `errors`, validation
    /// `problems`); the rest are counted in `errors_omitted` /
    /// `problems_omitted`.
    #[arg(long, env = "MONEYFLOW_MAX_PROBLEMS", default_value_t = crate::error::DEFAULT_MAX_PROBLEMS, value_parser = at_least_one)]
    pub max_problems: usize,

    /// Create the demo company, key and rule on first start.
    #[arg(long, env = "MONEYFLOW_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo: bool,

    /// Let `payment.tasks.http_request` call loopback, private and
    /// link-local addresses (tests, on-premises endpoints). Off by default:
    /// a rule must not be able to reach inside the network.
    #[arg(long, env = "MONEYFLOW_ALLOW_PRIVATE_ADDRESSES")]
    pub allow_private_addresses: bool,

    /// Largest response body `payment.tasks.http_request` reads, in bytes;
    /// a larger answer fails the node with a permanent error naming this
    /// limit, and is not stored.
    #[arg(long, env = "MONEYFLOW_HTTP_RESPONSE_LIMIT_BYTES", default_value_t = moneyflow_engine::http::DEFAULT_RESPONSE_LIMIT_BYTES)]
    pub http_response_limit_bytes: usize,

    /// Most runs this process executes at once; more wait in the queue.
    #[arg(long, env = "MONEYFLOW_MAX_IN_FLIGHT_RUNS", default_value_t = DEFAULT_MAX_IN_FLIGHT_RUNS, value_parser = at_least_one)]
    pub max_in_flight_runs: usize,

    /// Accept payments and queue their runs, but execute none (a
    /// maintenance window, or measuring a backlog); the queue is durable,
    /// and a start without this flag runs it.
    #[arg(long, env = "MONEYFLOW_HOLD_RUNS")]
    pub hold_runs: bool,

    /// Largest resolved parameters, output or document of one node, in
    /// bytes (compact JSON); a node past it fails, naming the limit.
    #[arg(long, env = "MONEYFLOW_NODE_LIMIT_BYTES", default_value_t = DEFAULT_NODE_LIMIT_BYTES, value_parser = at_least_one)]
    pub node_limit_bytes: usize,

    /// Largest total one run stores (every node's parameters and output,
    /// and the documents), in bytes; the node that would pass it fails.
    #[arg(long, env = "MONEYFLOW_RUN_LIMIT_BYTES", default_value_t = DEFAULT_RUN_LIMIT_BYTES, value_parser = at_least_one)]
    pub run_limit_bytes: usize,

    /// How many times a run's step may start without committing (each one
    /// crashed the process or lost its lease) before the run is
    /// quarantined: failed, with a reason, without being executed again.
    #[arg(long, env = "MONEYFLOW_MAX_STEP_ATTEMPTS", default_value_t = DEFAULT_MAX_STEP_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_step_attempts: u32,

    /// Payment events (and redrives) one company may send per second,
    /// sustained; more get 429 with `Retry-After`. The admin sets a
    /// company's own with `PUT /companies/{id}/limits`. 0: no default limit.
    #[arg(long, env = "MONEYFLOW_PAYMENTS_PER_SECOND", default_value_t = crate::limits::DEFAULT_PAYMENTS_PER_SECOND)]
    pub payments_per_second: u32,

    /// How many payment events one company may send at once above its
    /// sustained rate (the token bucket's size). 0: as many as the rate.
    #[arg(long, env = "MONEYFLOW_PAYMENTS_BURST", default_value_t = crate::limits::DEFAULT_PAYMENTS_BURST)]
    pub payments_burst: u32,

    /// Live event streams one company may have open at once; more get 429.
    #[arg(long, env = "MONEYFLOW_MAX_STREAMS_PER_COMPANY", default_value_t = crate::limits::DEFAULT_MAX_STREAMS_PER_COMPANY, value_parser = at_least_one)]
    pub max_streams_per_company: usize,

    /// Notification endpoints one company may have; creating more gets 422.
    #[arg(long, env = "MONEYFLOW_MAX_NOTIFICATION_ENDPOINTS", default_value_t = crate::limits::DEFAULT_MAX_NOTIFICATION_ENDPOINTS, value_parser = at_least_one)]
    pub max_notification_endpoints: usize,

    /// Requests the server works on at once; more get 503 at once rather
    /// than wait in a queue without bound.
    #[arg(long, env = "MONEYFLOW_MAX_CONCURRENT_REQUESTS", default_value_t = crate::limits::DEFAULT_MAX_CONCURRENT_REQUESTS, value_parser = at_least_one)]
    pub max_concurrent_requests: usize,

    /// How long a request may take until its answer starts (event streams
    /// then run on); past it, 503 (units ms, s, m, h).
    #[arg(long, env = "MONEYFLOW_REQUEST_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub request_timeout: Duration,

    /// How long reading a request body may take; past it, 408.
    #[arg(long, env = "MONEYFLOW_BODY_READ_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub body_read_timeout: Duration,

    /// Threads for CPU-heavy requests (validate, save, simulate, backtest);
    /// by default one per core.
    #[arg(long, env = "MONEYFLOW_CPU_WORKERS", value_parser = at_least_one)]
    pub cpu_workers: Option<usize>,

    /// How long one CPU-heavy request may wait for and use a CPU worker;
    /// past it, 503.
    #[arg(long, env = "MONEYFLOW_CPU_TIME_BUDGET", default_value = "10s", value_parser = positive_duration)]
    pub cpu_time_budget: Duration,

    /// Waits between notification delivery attempts, comma-separated; the
    /// last one repeats (units ms, s, m, h, d).
    #[arg(long, env = "MONEYFLOW_NOTIFICATION_RETRY_DELAYS", default_value = DEFAULT_NOTIFICATION_RETRY_DELAYS, value_parser = retry_delays)]
    pub notification_retry_delays: RetryDelays,

    /// How long after a run finished its notification is still retried;
    /// then the delivery fails.
    #[arg(long, env = "MONEYFLOW_NOTIFICATION_RETRY_WINDOW", default_value = DEFAULT_NOTIFICATION_RETRY_WINDOW, value_parser = retry_window)]
    pub notification_retry_window: Duration,

    /// RabbitMQ for distributed mode (`amqp://user:pass@host:5672/%2f`):
    /// routers publish runs through the outbox, orchestrators consume them.
    /// Unset: the embedded queue (one process, or workers polling the table).
    #[arg(long, env = "MONEYFLOW_BROKER_URL", hide_env_values = true)]
    pub broker: Option<SecretString>,

    /// The run queue's name; its dead-letter exchange and queue are named
    /// `<queue>.dlx` and `<queue>.dead`.
    #[arg(long, env = "MONEYFLOW_BROKER_QUEUE", default_value = "moneyflow.runs")]
    pub broker_queue: String,

    /// Failed deliveries of a run message before it is dead-lettered.
    #[arg(long, env = "MONEYFLOW_BROKER_DELIVERY_LIMIT", default_value_t = 5)]
    pub broker_delivery_limit: u32,

    /// Unacknowledged run messages one orchestrator holds at once.
    #[arg(long, env = "MONEYFLOW_BROKER_PREFETCH", default_value_t = 64)]
    pub broker_prefetch: u16,

    /// Set by `moneyflow serve --role`; `moneyflow up` runs everything.
    #[arg(skip)]
    pub role: Role,
}

/// Which parts of MoneyFlow a `moneyflow serve` process runs (DESIGN §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The Composer API (rules, companies, runs, dead letters): no
    /// `POST /payment`, no workers.
    Composer,
    /// The Composer API, `POST /payment`, the outbox relay and the retry
    /// dispatcher.
    Router,
    /// Workers only (broker consumer, retry dispatcher, notification
    /// deliveries), with `/health`, `/ready` and `/metrics` on its port.
    Orchestrator,
    /// Everything in one process (what `moneyflow up` runs).
    #[default]
    All,
}

impl Role {
    pub fn routes_payments(self) -> bool {
        matches!(self, Role::Router | Role::All)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Orchestrator | Role::All)
    }

    pub fn serves_api(self) -> bool {
        !matches!(self, Role::Orchestrator)
    }
}

impl Config {
    /// The broker settings when `--broker` is set: the run queue named by
    /// `--broker-queue`, its dead-letter exchange and queue named after it.
    pub fn broker_config(&self) -> Option<moneyflow_broker::BrokerConfig> {
        let url = self.broker.as_ref()?;
        Some(moneyflow_broker::BrokerConfig {
            queue: self.broker_queue.clone(),
            dead_letter_exchange: format!("{}.dlx", self.broker_queue),
            dead_letter_queue: format!("{}.dead", self.broker_queue),
            delivery_limit: self.broker_delivery_limit,
            prefetch: self.broker_prefetch,
            ..moneyflow_broker::BrokerConfig::new(url.expose_secret())
        })
    }

    /// The node and run size limits.
    pub fn size_limits(&self) -> SizeLimits {
        SizeLimits {
            node_bytes: self.node_limit_bytes,
            run_bytes: self.run_limit_bytes,
        }
    }

    /// The per-company limits these settings describe.
    pub fn tenant_limits(&self) -> crate::limits::TenantLimits {
        use crate::limits::{CpuPool, PaymentRates, StreamSlots, default_cpu_workers};
        crate::limits::TenantLimits {
            payment_rates: PaymentRates::new(self.payments_per_second, self.payments_burst),
            streams: StreamSlots::new(self.max_streams_per_company),
            cpu: CpuPool::new(
                self.cpu_workers.unwrap_or_else(default_cpu_workers),
                self.cpu_time_budget,
            ),
            max_notification_endpoints: self.max_notification_endpoints,
            http: crate::limits::HttpBounds {
                max_concurrent_requests: self.max_concurrent_requests,
                request_timeout: self.request_timeout,
                body_read_timeout: self.body_read_timeout,
            },
        }
    }

    /// The notification retry schedule these settings describe.
    pub fn notification_retry(&self) -> RetrySchedule {
        RetrySchedule {
            delays: self.notification_retry_delays.0.clone(),
            window: self.notification_retry_window,
        }
    }
}

impl Default for Config {
    /// The same values as the CLI defaults, without reading the environment.
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            store: StoreConfig::default(),
            ui_dir: PathBuf::from(DEFAULT_UI_DIR),
            admin_token: None,
            metrics_token: None,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            max_problems: crate::error::DEFAULT_MAX_PROBLEMS,
            demo: true,
            allow_private_addresses: false,
            http_response_limit_bytes: moneyflow_engine::http::DEFAULT_RESPONSE_LIMIT_BYTES,
            max_in_flight_runs: DEFAULT_MAX_IN_FLIGHT_RUNS,
            hold_runs: false,
            node_limit_bytes: DEFAULT_NODE_LIMIT_BYTES,
            run_limit_bytes: DEFAULT_RUN_LIMIT_BYTES,
            max_step_attempts: DEFAULT_MAX_STEP_ATTEMPTS,
            payments_per_second: crate::limits::DEFAULT_PAYMENTS_PER_SECOND,
            payments_burst: crate::limits::DEFAULT_PAYMENTS_BURST,
            max_streams_per_company: crate::limits::DEFAULT_MAX_STREAMS_PER_COMPANY,
            max_notification_endpoints: crate::limits::DEFAULT_MAX_NOTIFICATION_ENDPOINTS,
            max_concurrent_requests: crate::limits::DEFAULT_MAX_CONCURRENT_REQUESTS,
            request_timeout: crate::limits::DEFAULT_REQUEST_TIMEOUT,
            body_read_timeout: crate::limits::DEFAULT_BODY_READ_TIMEOUT,
            cpu_workers: None,
            cpu_time_budget: crate::limits::DEFAULT_CPU_TIME_BUDGET,
            notification_retry_delays: RetryDelays(RetrySchedule::default().delays),
            notification_retry_window: RetrySchedule::default().window,
            broker: None,
            broker_queue: "moneyflow.runs".to_owned(),
            broker_delivery_limit: 5,
            broker_prefetch: 64,
            role: Role::All,
        }
    }
}

/// A count of at least 1 (0 in-flight runs would execute nothing, silently).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

/// A duration above zero, e.g. `30s` (0 would refuse every request).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("must be longer than 0".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

/// How logs are written (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn debug_of_config_redacts_secrets() {
        let config = Config {
            admin_token: Some(SecretString::new("mfa_topsecret")),
            store: StoreConfig {
                database_url: Some(SecretString::new("postgres://user:hunter2@db/moneyflow")),
                ..StoreConfig::default()
            },
            ..Config::default()
        };
        let debug = format!("{config:?}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn flags_parse_into_typed_settings() {
        let parsed = Wrapper::try_parse_from([
            "moneyflow",
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--data-dir",
            "/tmp/x",
            "--body-limit-bytes",
            "42",
            "--demo",
            "false",
            "--allow-private-addresses",
            "--max-in-flight-runs",
            "64",
            "--max-problems",
            "7",
        ])
        .expect("parses");
        let config = parsed.config;
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.port, 9000);
        assert_eq!(config.store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.body_limit_bytes, 42);
        assert!(!config.demo);
        assert!(config.allow_private_addresses);
        assert_eq!(config.max_in_flight_runs, 64);
        assert_eq!(config.max_problems, 7);
    }

    #[test]
    fn engine_settings_default_to_safe_values() {
        let config = Wrapper::try_parse_from(["moneyflow"])
            .expect("parses")
            .config;
        assert!(!config.allow_private_addresses);
        assert_eq!(config.max_in_flight_runs, DEFAULT_MAX_IN_FLIGHT_RUNS);
        assert_eq!(config.size_limits(), SizeLimits::default());
        assert_eq!(Config::default().size_limits(), SizeLimits::default());
    }

    #[test]
    fn size_limits_parse_and_refuse_zero() {
        let config = Wrapper::try_parse_from([
            "moneyflow",
            "--node-limit-bytes",
            "1000",
            "--run-limit-bytes",
            "5000",
        ])
        .expect("parses")
        .config;
        assert_eq!(
            config.size_limits(),
            SizeLimits {
                node_bytes: 1000,
                run_bytes: 5000
            }
        );
        assert!(Wrapper::try_parse_from(["moneyflow", "--node-limit-bytes", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["moneyflow", "--max-step-attempts", "0"]).is_err());
        let config = Wrapper::try_parse_from(["moneyflow", "--max-step-attempts", "5"])
            .expect("parses")
            .config;
        assert_eq!(config.max_step_attempts, 5);
        assert_eq!(
            Config::default().max_step_attempts,
            DEFAULT_MAX_STEP_ATTEMPTS
        );
    }

    #[test]
    fn notification_retries_default_to_three_days_and_parse() {
        let config = Wrapper::try_parse_from(["moneyflow"])
            .expect("parses")
            .config;
        assert_eq!(config.notification_retry(), RetrySchedule::default());
        assert_eq!(
            Config::default().notification_retry(),
            RetrySchedule::default()
        );
        let config = Wrapper::try_parse_from([
            "moneyflow",
            "--notification-retry-delays",
            "10ms,20ms",
            "--notification-retry-window",
            "1m",
        ])
        .expect("parses")
        .config;
        assert_eq!(
            config.notification_retry().delays,
            [Duration::from_millis(10), Duration::from_millis(20)]
        );
        assert_eq!(config.notification_retry_window, Duration::from_secs(60));
        assert!(Wrapper::try_parse_from(["moneyflow", "--notification-retry-delays", ""]).is_err());
    }

    #[test]
    fn tenant_and_server_bounds_parse_and_default() {
        let config = Wrapper::try_parse_from(["moneyflow"])
            .expect("parses")
            .config;
        assert_eq!(
            config.request_timeout,
            crate::limits::DEFAULT_REQUEST_TIMEOUT
        );
        assert_eq!(
            config.payments_per_second,
            crate::limits::DEFAULT_PAYMENTS_PER_SECOND
        );
        assert_eq!(config.cpu_workers, None);
        let config = Wrapper::try_parse_from([
            "moneyflow",
            "--payments-per-second",
            "0",
            "--request-timeout",
            "2s",
            "--body-read-timeout",
            "500ms",
            "--cpu-workers",
            "3",
            "--max-streams-per-company",
            "4",
        ])
        .expect("parses")
        .config;
        assert_eq!(config.request_timeout, Duration::from_secs(2));
        assert_eq!(config.body_read_timeout, Duration::from_millis(500));
        assert_eq!(config.cpu_workers, Some(3));
        assert_eq!(config.tenant_limits().payment_rates.default_rate(), None);
        assert!(Wrapper::try_parse_from(["moneyflow", "--request-timeout", "0s"]).is_err());
        assert!(Wrapper::try_parse_from(["moneyflow", "--cpu-workers", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["moneyflow", "--max-streams-per-company", "0"]).is_err());
    }

    #[test]
    fn a_bad_port_is_rejected_by_the_parser() {
        assert!(Wrapper::try_parse_from(["moneyflow", "--port", "99999"]).is_err());
        assert!(Wrapper::try_parse_from(["moneyflow", "--max-in-flight-runs", "0"]).is_err());
    }
}
