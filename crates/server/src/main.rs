//! The `moneyflow` command:
//! - `moneyflow up`: one process serving the API and running the orchestrator,
//!   on SQLite in `./moneyflow-data` (or `--database-url`), with a generated
//!   admin token and a demo company on first start.
//! - `moneyflow serve --role composer|router|orchestrator|all`: one role of
//!   distributed mode, with `--database-url postgres://…` and `--broker amqp://…`.
//! - `moneyflow dead-letters list|replay`: the runs RabbitMQ gave up on.
//! - `moneyflow migrate`: applies the store's migrations and exits.
//! - `moneyflow validate <file.json>`: validates a rule set file, exit 1 if invalid.
//! - `moneyflow simulate --rules rules.json --event event.json`: what the rule
//!   set would do with the event (no server, no effects), exit 1 if invalid.
//! - `moneyflow bench`: loads a running server over HTTP and reports throughput and latency.
//!
//! The one place `anyhow` is used: errors here end the process with their
//! whole cause chain.

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::run::CompiledRules;
use moneyflow_core::validation::validate_rule_set;
use moneyflow_engine::http::HttpPolicy;
use moneyflow_engine::{Clock, Registry, SimulationInput, Simulator};
use moneyflow_server::config::{Config, LogFormat, Role, StoreConfig};
use moneyflow_server::extract::json_error_parts;
use moneyflow_server::startup::{AdminToken, Application, Bootstrap, open_store};
use tracing_subscriber::EnvFilter;

// The hot path allocates many small, short-lived JSON values; mimalloc
// serves them with less CPU than the system allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "moneyflow",
    version,
    about = "MoneyFlow: compose and run payment rules"
)]
struct Cli {
    /// Log format (logs go to stderr; filter with RUST_LOG).
    #[arg(long, global = true, env = "MONEYFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and run payments (one process, SQLite by default).
    Up(Config),
    /// Serve one role of distributed mode (PostgreSQL + RabbitMQ), or all.
    Serve {
        /// What this process runs.
        #[arg(long, env = "MONEYFLOW_ROLE", value_enum, default_value_t = Role::All)]
        role: Role,
        #[command(flatten)]
        config: Config,
    },
    /// Apply the store's migrations and exit.
    Migrate(StoreConfig),
    /// List or replay the runs RabbitMQ dead-lettered.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
        /// RabbitMQ, as for `serve --broker`.
        #[arg(
            long,
            env = "MONEYFLOW_BROKER_URL",
            hide_env_values = true,
            global = true
        )]
        broker: Option<String>,
        /// The run queue's name, as for `serve --broker-queue`.
        #[arg(
            long,
            env = "MONEYFLOW_BROKER_QUEUE",
            default_value = "moneyflow.runs",
            global = true
        )]
        broker_queue: String,
    },
    /// Validate a rule set file (`-` for stdin); exits 1 when it is invalid.
    Validate {
        /// The rule set: `{"company_id": …, "rules": [...]}`.
        file: PathBuf,
    },
    /// Simulate a rule set file on an event file: every node's state and the
    /// outcome, with no effects (no server needed); exits 1 when either is invalid.
    Simulate {
        /// The rule set: `{"company_id": …, "rules": [...]}`.
        #[arg(long)]
        rules: PathBuf,
        /// The payment event, as `POST /payment` takes it.
        #[arg(long)]
        event: PathBuf,
    },
    /// Load a running server over HTTP and report throughput and latency.
    Bench(moneyflow_server::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// Print the dead letters (oldest first), one JSON object a line.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Move dead letters back to the run queue: one run's, or all.
    Replay {
        /// The run whose messages to replay; omit with --all.
        run_id: Option<String>,
        #[arg(long, conflicts_with = "run_id")]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Simulate { rules, event } => {
            runtime().and_then(|rt| rt.block_on(simulate(&rules, &event)))
        }
        Command::Up(config) => runtime().and_then(|rt| rt.block_on(up(config))),
        Command::Serve { role, mut config } => {
            config.role = role;
            runtime().and_then(|rt| rt.block_on(up(config)))
        }
        Command::DeadLetters {
            action,
            broker,
            broker_queue,
        } => runtime().and_then(|rt| rt.block_on(dead_letters(action, broker, broker_queue))),
        Command::Migrate(store) => runtime().and_then(|rt| rt.block_on(migrate(store))),
        Command::Bench(args) => runtime().and_then(|rt| {
            rt.block_on(moneyflow_server::bench::run(args))
                .map(|_report| ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "moneyflow failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn up(config: Config) -> anyhow::Result<ExitCode> {
    tracing::debug!(?config, "starting");
    let host = config.host;
    let application = Application::build(config)
        .await
        .context("could not start the server")?;
    print_banner(host, application.port(), application.bootstrap());
    application
        .run_until_stopped()
        .await
        .context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}

async fn dead_letters(
    action: DeadLetterAction,
    broker: Option<String>,
    queue: String,
) -> anyhow::Result<ExitCode> {
    let config = Config {
        broker: Some(moneyflow_server::secret::SecretString::new(
            broker.context("--broker (or MONEYFLOW_BROKER_URL) is required")?,
        )),
        broker_queue: queue,
        ..Config::default()
    };
    let broker_config = config.broker_config().context("no broker configured")?;
    let broker = moneyflow_broker::Broker::connect(broker_config)
        .await
        .context("could not connect to the broker")?;
    let letters = broker.dead_letters();
    match action {
        DeadLetterAction::List { limit } => {
            for letter in letters.list(limit).await.context("listing dead letters")? {
                println!(
                    "{}",
                    serde_json::json!({
                        "run_id": letter.run_id(),
                        "reason": letter.reason,
                        "source_queue": letter.source_queue,
                        "deaths": letter.deaths,
                    })
                );
            }
        }
        DeadLetterAction::Replay { run_id, all } => {
            let moved = match (run_id, all) {
                (Some(run_id), _) => letters.replay(&run_id).await,
                (None, true) => letters.replay_all().await,
                (None, false) => anyhow::bail!("name a run id, or pass --all"),
            }
            .context("replaying dead letters")?;
            println!("replayed {moved} message(s)");
        }
    }
    broker.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(config: StoreConfig) -> anyhow::Result<ExitCode> {
    let store = open_store(&config)
        .await
        .context("could not open the store")?;
    store
        .migrate()
        .await
        .context("could not migrate the store")?;
    println!("migrations applied ({:?})", store.backend());
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &PathBuf) -> anyhow::Result<ExitCode> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("could not read stdin")?;
        text
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("could not read {}", file.display()))?
    };
    let input: serde_json::Value = match serde_json::from_str(&text) {
        Ok(input) => input,
        Err(error) => {
            let (line, column, message) = json_error_parts(&error);
            println!(
                "{}: malformed JSON at line {line}, column {column}: {message}",
                file.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    match validate_rule_set(&input, Catalogue::builtin()) {
        Ok(rule_set) => {
            println!(
                "{}: valid ({} node{}, company {})",
                file.display(),
                rule_set.rules.len(),
                if rule_set.rules.len() == 1 { "" } else { "s" },
                rule_set.company_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            let count = report.problems.len();
            println!(
                "{}: {count} problem{}",
                file.display(),
                if count == 1 { "" } else { "s" }
            );
            for problem in report.problems {
                let path = if problem.path.is_empty() {
                    "(body)"
                } else {
                    &problem.path
                };
                println!("  {path}: {}", problem.message);
                if let Some(hint) = problem.hint {
                    println!("      hint: {hint}");
                }
                // The core's message often lists them already.
                if !problem.allowed.is_empty() && !problem.message.contains("allowed") {
                    println!("      allowed: {}", problem.allowed.join(", "));
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads and parses a JSON file, naming the file and the position on error.
fn read_json(file: &PathBuf) -> anyhow::Result<Result<serde_json::Value, String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("could not read {}", file.display()))?;
    Ok(serde_json::from_str(&text).map_err(|error| {
        let (line, column, message) = json_error_parts(&error);
        format!(
            "{}: malformed JSON at line {line}, column {column}: {message}",
            file.display()
        )
    }))
}

/// `moneyflow simulate`: validates both files (every problem is printed),
/// then prints the simulation as JSON.
async fn simulate(rules_file: &PathBuf, event_file: &PathBuf) -> anyhow::Result<ExitCode> {
    let (rules, event) = match (read_json(rules_file)?, read_json(event_file)?) {
        (Ok(rules), Ok(event)) => (rules, event),
        (rules, event) => {
            for message in [rules.err(), event.err()].into_iter().flatten() {
                println!("{message}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let registry = Arc::new(Registry::builtin(HttpPolicy::default()));
    let mut problems: Vec<String> = Vec::new();
    let rule_set = match validate_rule_set(&rules, registry.catalogue()) {
        Ok(rule_set) => Some(rule_set),
        Err(report) => {
            problems.extend(report.problems.into_iter().map(|p| {
                let path = if p.path.is_empty() { "(body)" } else { &p.path };
                format!("{}: {path}: {}", rules_file.display(), p.message)
            }));
            None
        }
    };
    match moneyflow_core::event::validate_event(&event) {
        Ok(valid) => {
            let other = rule_set
                .as_ref()
                .filter(|rule_set| rule_set.company_id != valid.company_id);
            if let Some(rule_set) = other {
                problems.push(format!(
                    "{}: company_id: the event is for `{}`, the rule set for `{}`",
                    event_file.display(),
                    valid.company_id,
                    rule_set.company_id
                ));
            }
        }
        Err(event_problems) => problems.extend(event_problems.into_iter().map(|p| {
            let path = if p.path.is_empty() { "(body)" } else { &p.path };
            format!("{}: {path}: {}", event_file.display(), p.message)
        })),
    }
    let (Some(rule_set), true) = (rule_set, problems.is_empty()) else {
        for problem in problems {
            println!("{problem}");
        }
        return Ok(ExitCode::FAILURE);
    };
    let compiled = CompiledRules::compile(&rule_set).context("could not compile the rule set")?;
    let company = serde_json::json!({"id": rule_set.company_id});
    let simulation = Simulator::new(registry, Clock::System)
        .simulate(
            &compiled,
            SimulationInput {
                company_id: &rule_set.company_id,
                event: &event,
                company: &company,
                rule_version: None,
            },
        )
        .await;
    println!(
        "{}",
        serde_json::to_string_pretty(&simulation).context("could not print the simulation")?
    );
    Ok(ExitCode::SUCCESS)
}

/// What a person needs to start: where it is, and the credentials shown once.
fn print_banner(host: IpAddr, port: u16, bootstrap: &Bootstrap) {
    // 0.0.0.0 is where it listens, not an address to browse to.
    let shown_host = if host.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        host.to_string()
    };
    let shown_host = if shown_host.contains(':') {
        format!("[{shown_host}]")
    } else {
        shown_host
    };
    let url = format!("http://{shown_host}:{port}");
    println!();
    println!("  MoneyFlow is listening on {url}");
    println!("  API docs:      {url}/docs");
    let admin_token = match &bootstrap.admin_token {
        AdminToken::Generated(token) => {
            println!("  Admin token:   {}", token.expose_secret());
            println!("                 (shown once: only its hash is stored; keep it safe)");
            Some(token.expose_secret().to_owned())
        }
        AdminToken::Stored => {
            println!("  Admin token:   printed on first start (only its hash is stored);");
            println!(
                "                 set MONEYFLOW_ADMIN_TOKEN to use a token of your choice instead"
            );
            None
        }
        AdminToken::Configured => {
            println!("  Admin token:   from MONEYFLOW_ADMIN_TOKEN");
            None
        }
    };
    match &bootstrap.demo {
        Some(demo) => {
            println!("  Demo company:  {}", demo.company_id);
            println!(
                "  Demo API key:  {}  (shown once)",
                demo.api_key.expose_secret()
            );
            println!();
            println!("  Try:");
            println!(
                "    curl -H 'Authorization: Bearer {}' {url}/payment-rules/{}",
                demo.api_key.expose_secret(),
                demo.company_id
            );
            println!();
            println!("  Send a payment (a book) to the demo rule:");
            println!(
                "    curl -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n      -d '{}' {url}/payment",
                demo.api_key.expose_secret(),
                demo_payment(&demo.company_id)
            );
            println!("  and follow its run (the run_id is in the answer):");
            println!(
                "    curl -H 'Authorization: Bearer {}' {url}/runs/<run_id>",
                demo.api_key.expose_secret()
            );
        }
        None => {
            let token = admin_token.unwrap_or_else(|| "$MONEYFLOW_ADMIN_TOKEN".to_owned());
            println!();
            println!("  Try:");
            println!("    curl -H \"Authorization: Bearer {token}\" {url}/tasks");
        }
    }
    println!();
}

/// The demo payment the banner suggests: a book, so every node of the demo
/// rule runs.
fn demo_payment(company_id: &str) -> String {
    serde_json::json!({
        "company_id": company_id,
        "type": "product",
        "total": "120.00",
        "currency": "BRL",
        "product": {"id": "book-1", "type": "book"},
        "agent_id": "agent-7",
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_demo_payment_is_a_valid_book_event() {
        let body: serde_json::Value = serde_json::from_str(&demo_payment("demo")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"company_id": "demo", "type": "product", "total": "120.00", "currency": "BRL",
                "product": {"id": "book-1", "type": "book"}, "agent_id": "agent-7"})
        );
        assert!(moneyflow_core::event::validate_event(&body).is_ok());
        assert!(
            !demo_payment("demo").contains('\''),
            "fits in single quotes"
        );
    }

    #[test]
    fn simulate_takes_a_rules_file_and_an_event_file() {
        let cli = Cli::try_parse_from([
            "moneyflow",
            "simulate",
            "--rules",
            "rules.json",
            "--event",
            "event.json",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Command::Simulate { rules, event }
                if rules.as_os_str() == "rules.json" && event.as_os_str() == "event.json"
        ));
    }

    #[test]
    fn validate_takes_a_file() {
        let cli = Cli::try_parse_from(["moneyflow", "validate", "rules.json"]).expect("parses");
        assert!(
            matches!(cli.command, Command::Validate { file } if file.as_os_str() == "rules.json")
        );
    }
}
