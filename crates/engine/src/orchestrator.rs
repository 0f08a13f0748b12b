//! The worker loop: claims due runs from the queue in batches, executes up to
//! `max_in_flight` at once, renews their leases while they run, and sleeps
//! until the next due run or a wake-up (the router wakes it as soon as it
//! queues work, so there is no polling delay on the hot path). On shutdown
//! it stops claiming, lets in-flight runs finish for a grace period, and
//! releases the leases of those that did not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moneyflow_core::model::RuleSet;
use moneyflow_core::ports::{
    CompanyStore, NewRunEvent, QueueNext, RuleStore, RunClaim, RunStore, RunWork, StepCommit,
    StoreError,
};
use moneyflow_core::run::{CompiledRules, RunStatus};
use moneyflow_core::size::SizeLimits;
use moneyflow_core::validation::validate_rule_set;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::executor::Executor;
use crate::metrics::EngineMetrics;
use crate::task::Registry;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// This worker's name on its leases; unique per process.
    pub owner: String,
    /// Most runs executing at once.
    pub max_in_flight: usize,
    /// Most runs claimed in one go.
    pub claim_batch: usize,
    /// How long a claimed run stays leased without renewal.
    pub lease: Duration,
    /// Longest sleep when idle: expired leases of other workers are noticed this often.
    pub idle_poll: Duration,
    /// How long shutdown waits for in-flight runs.
    pub shutdown_grace: Duration,
    /// Notified when a step finishes a run (the notification delivery
    /// worker's waker: the run's deliveries were committed with that step).
    pub on_run_finished: Option<Arc<Notify>>,
    /// How large a node's data and a run's may grow.
    pub limits: SizeLimits,
    /// How many times a run's step may start without committing (each
    /// time crashing the process or losing its lease) before the run is
    /// quarantined: failed without being executed again.
    pub max_step_attempts: u32,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            max_in_flight: 128,
            claim_batch: 256,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(10),
            on_run_finished: None,
            limits: SizeLimits::default(),
            max_step_attempts: DEFAULT_MAX_STEP_ATTEMPTS,
        }
    }
}

/// Step starts without a commit before a run is quarantined, by default.
pub const DEFAULT_MAX_STEP_ATTEMPTS: u32 = 3;

/// Rule versions compiled once, by (company, version): versions are immutable.
#[derive(Default)]
struct RuleCache {
    compiled: Mutex<HashMap<(String, i64), Arc<CompiledRules>>>,
    companies: Mutex<HashMap<String, Arc<Value>>>,
}

const RULE_CACHE_LIMIT: usize = 4_096;

/// Why a run's rules could not be prepared.
#[derive(Debug, thiserror::Error)]
enum PrepareError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rule version {version} of company {company_id} is missing")]
    MissingVersion { company_id: String, version: i64 },
    #[error("rule version {version} of company {company_id} no longer validates: {detail}")]
    Invalid {
        company_id: String,
        version: i64,
        detail: String,
    },
}

/// What [`Orchestrator::step_one`] did with a broker message's run.
#[derive(Debug)]
pub enum StepOne {
    /// A step was committed; the run is now in this status.
    Committed(RunStatus),
    /// Nothing to do here: finished, leased to another worker, waiting for
    /// a retry's time, or the lease was lost meanwhile.
    Duplicate,
    /// No such run: the message can never be processed.
    Unknown,
    /// The store failed; the lease is released: deliver the message again.
    Retry(StoreError),
}

/// A running orchestrator.
pub struct OrchestratorHandle {
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl OrchestratorHandle {
    /// A waker the router calls after queueing work.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops claiming, waits for in-flight runs (up to the grace period) and
    /// releases what is left.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.join.await;
    }
}

/// The orchestrator: a worker pool over a store.
pub struct Orchestrator<S> {
    store: S,
    executor: Arc<Executor<S>>,
    registry: Arc<Registry>,
    config: OrchestratorConfig,
    clock: Clock,
    cache: Arc<RuleCache>,
    metrics: Arc<EngineMetrics>,
}

impl<S> Orchestrator<S>
where
    S: RunStore + RuleStore + CompanyStore + Clone + 'static,
{
    pub fn new(
        store: S,
        registry: Arc<Registry>,
        config: OrchestratorConfig,
        clock: Clock,
    ) -> Self {
        Self {
            executor: Arc::new(
                Executor::new(store.clone(), registry.clone(), clock.clone())
                    .with_limits(config.limits),
            ),
            store,
            registry,
            config,
            clock,
            cache: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts into `metrics` (runs finished, task durations, retries,
    /// steps), e.g. the server's, which `/metrics` renders.
    pub fn with_metrics(mut self, metrics: Arc<EngineMetrics>) -> Self {
        // Not shared before `spawn`: the executor is this orchestrator's alone.
        if let Some(executor) = Arc::get_mut(&mut self.executor) {
            executor.set_metrics(metrics.clone());
        }
        self.metrics = metrics;
        self
    }

    /// Starts the worker loop in the background.
    pub fn spawn(self) -> OrchestratorHandle {
        let wake = Arc::new(Notify::new());
        let (shutdown, stop) = watch::channel(false);
        let this = Arc::new(self);
        let join = tokio::spawn(this.run_loop(wake.clone(), stop));
        OrchestratorHandle {
            wake,
            shutdown,
            join,
        }
    }

    async fn run_loop(self: Arc<Self>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut runs = JoinSet::new();
        let renewer = tokio::spawn(self.clone().renew_loop(in_flight.clone(), stop.clone()));
        tracing::info!(owner = %self.config.owner, max_in_flight = self.config.max_in_flight, "orchestrator started");
        loop {
            if *stop.borrow() {
                break;
            }
            while runs.try_join_next().is_some() {}
            let available = permits.available_permits().min(self.config.claim_batch);
            if available == 0 {
                tokio::select! {
                    _ = runs.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let claimed = self
                .store
                .claim_runs(
                    &self.config.owner,
                    available,
                    self.config.lease,
                    self.clock.now(),
                )
                .await;
            let ids = match claimed {
                Ok(ids) => ids,
                Err(error) => {
                    tracing::warn!(error = %error, "claiming runs failed; retrying");
                    self.idle(&wake, &mut stop, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if ids.is_empty() {
                let due = match self.store.next_due_at().await {
                    Ok(Some(at)) => self.clock.until(at),
                    _ => self.config.idle_poll,
                };
                // Sleep at least a little: a due run whose lease is still live
                // would otherwise make this spin.
                let nap = due.clamp(Duration::from_millis(5), self.config.idle_poll);
                self.idle(&wake, &mut stop, nap).await;
                continue;
            }
            let works = match self.store.load_runs(&ids).await {
                Ok(works) => works,
                Err(error) => {
                    tracing::warn!(error = %error, "loading claimed runs failed; their leases will expire");
                    continue;
                }
            };
            for work in works {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                in_flight
                    .lock()
                    .expect("in-flight set")
                    .insert(work.run.run_id.clone());
                let this = self.clone();
                let in_flight = in_flight.clone();
                runs.spawn(async move {
                    let run_id = work.run.run_id.clone();
                    let _ = this.process(work).await;
                    in_flight.lock().expect("in-flight set").remove(&run_id);
                    drop(permit);
                });
            }
        }
        // Shutdown: let in-flight runs finish, then release the rest.
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = runs.join_next() => if next.is_none() { break },
                () = &mut grace => break,
            }
        }
        runs.abort_all();
        let left: Vec<String> = in_flight.lock().expect("in-flight set").drain().collect();
        if !left.is_empty() {
            tracing::info!(
                count = left.len(),
                "releasing the leases of unfinished runs"
            );
            if let Err(error) = self
                .store
                .renew_leases(&self.config.owner, &left, self.clock.now())
                .await
            {
                tracing::warn!(error = %error, "releasing leases failed; they will expire");
            }
        }
        renewer.abort();
        tracing::info!(owner = %self.config.owner, "orchestrator stopped");
    }

    async fn idle(&self, wake: &Notify, stop: &mut watch::Receiver<bool>, nap: Duration) {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }

    async fn renew_loop(
        self: Arc<Self>,
        in_flight: Arc<Mutex<HashSet<String>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let period = self.config.lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                _ = stop.changed() => return,
            }
            let ids: Vec<String> = in_flight
                .lock()
                .expect("in-flight set")
                .iter()
                .cloned()
                .collect();
            if ids.is_empty() {
                continue;
            }
            let until = self.clock.now() + self.config.lease;
            if let Err(error) = self
                .store
                .renew_leases(&self.config.owner, &ids, until)
                .await
            {
                tracing::warn!(error = %error, "renewing leases failed");
            }
        }
    }

    /// One step of one claimed run.
    #[tracing::instrument(skip_all, fields(run_id = %work.run.run_id, company_id = %work.run.company_id))]
    async fn process(&self, work: RunWork) -> Result<RunStatus, StoreError> {
        let run_id = work.run.run_id.clone();
        let prepared = self.prepare(&work).await;
        let result = match prepared {
            // A poison run: its earlier claims all ended without a commit.
            Ok((rules, _)) if work.claims > self.config.max_step_attempts => {
                self.executor
                    .quarantine(
                        &work,
                        &rules,
                        &self.config.owner,
                        self.config.max_step_attempts,
                    )
                    .await
            }
            Ok((rules, company)) => {
                self.executor
                    .step(&work, &rules, &company, &self.config.owner)
                    .await
            }
            Err(PrepareError::Store(error)) => Err(error),
            Err(error) => {
                // Not retryable: fail the run visibly rather than loop on it.
                tracing::error!(run_id = %run_id, error = %error, "run cannot execute");
                let mut nodes = serde_json::Map::new();
                nodes.insert(
                    "_run".into(),
                    json!({"state": "failure", "error": {"message": error.to_string()}}),
                );
                let mut events = Vec::new();
                if work.run.status == RunStatus::Queued {
                    events.push(NewRunEvent::started());
                }
                let mut finished = NewRunEvent::finished(RunStatus::Failed);
                finished.data["error"] = json!(error.to_string());
                events.push(finished);
                self.store
                    .commit_step(StepCommit {
                        run_id: run_id.clone(),
                        owner: self.config.owner.clone(),
                        status: RunStatus::Failed,
                        nodes,
                        started_at: Some(self.clock.now()),
                        finished_at: Some(self.clock.now()),
                        documents: Vec::new(),
                        next: QueueNext::Done,
                        events,
                    })
                    .await
                    .map(|()| {
                        self.metrics.run_finished(RunStatus::Failed);
                        RunStatus::Failed
                    })
            }
        };
        match &result {
            Ok(status) => {
                self.metrics.steps.inc();
                tracing::debug!(run_id = %run_id, status = status.as_str(), "step committed");
                let finished = status.is_terminal();
                if let Some(waker) = self.config.on_run_finished.as_ref().filter(|_| finished) {
                    waker.notify_one();
                }
            }
            Err(StoreError::Conflict(reason)) => {
                self.metrics.steps_lease_lost.inc();
                tracing::warn!(run_id = %run_id, reason = %reason, "step discarded: the lease was lost");
            }
            Err(error) => {
                tracing::warn!(run_id = %run_id, error = %error, "step failed; the run will be retried")
            }
        }
        result
    }

    /// Distributed mode: the task panics of this orchestrator's steps unwind
    /// to the caller (see [`Orchestrator::step_one`]).
    pub fn propagating_panics(mut self) -> Self {
        if let Some(executor) = Arc::get_mut(&mut self.executor) {
            executor.set_propagate_panics(true);
        }
        self
    }

    /// Distributed mode: one step of the run a broker message names, under
    /// a lease taken now. The caller settles the message from the outcome
    /// (ack once this returned: the step is committed). A task panic
    /// unwinds out of here with the lease still held: the caller releases
    /// it ([`RunStore::release_lease`]) and hands the message back.
    pub async fn step_one(&self, run_id: &str) -> StepOne {
        let claim = self
            .store
            .claim_run(
                run_id,
                &self.config.owner,
                self.config.lease,
                self.clock.now(),
            )
            .await;
        match claim {
            Ok(RunClaim::Claimed) => {}
            Ok(RunClaim::Busy) => return StepOne::Duplicate,
            Ok(RunClaim::Finished) => return StepOne::Duplicate,
            Ok(RunClaim::Unknown) => return StepOne::Unknown,
            Err(error) => return StepOne::Retry(error),
        }
        let work = match self.store.load_runs(&[run_id.to_owned()]).await {
            Ok(mut works) => match works.pop() {
                Some(work) => work,
                None => return StepOne::Unknown,
            },
            Err(error) => {
                self.release(run_id).await;
                return StepOne::Retry(error);
            }
        };
        match self.process(work).await {
            Ok(status) => StepOne::Committed(status),
            // Someone else's lease now: their step moves the run on.
            Err(StoreError::Conflict(_)) => StepOne::Duplicate,
            Err(error) => {
                self.release(run_id).await;
                StepOne::Retry(error)
            }
        }
    }

    /// Gives up this worker's lease on `run_id` (best effort: it expires).
    pub async fn release(&self, run_id: &str) {
        if let Err(error) = self.store.release_lease(run_id, &self.config.owner).await {
            tracing::warn!(run_id, error = %error, "releasing a lease failed; it will expire");
        }
    }

    async fn prepare(
        &self,
        work: &RunWork,
    ) -> Result<(Arc<CompiledRules>, Arc<Value>), PrepareError> {
        let run = &work.run;
        let key = (run.company_id.clone(), run.rule_version);
        let cached = self
            .cache
            .compiled
            .lock()
            .expect("rule cache")
            .get(&key)
            .cloned();
        let rules = match cached {
            Some(rules) => rules,
            None => {
                let version = self
                    .store
                    .get_rule_version(&run.company_id, run.rule_version)
                    .await?
                    .ok_or_else(|| PrepareError::MissingVersion {
                        company_id: run.company_id.clone(),
                        version: run.rule_version,
                    })?;
                let invalid = |detail: String| PrepareError::Invalid {
                    company_id: run.company_id.clone(),
                    version: run.rule_version,
                    detail,
                };
                let rule_set: RuleSet =
                    validate_rule_set(&version.rules, self.registry.catalogue()).map_err(
                        |report| invalid(format!("{} problem(s)", report.problems.len())),
                    )?;
                let compiled = Arc::new(
                    CompiledRules::compile(&rule_set).map_err(|e| invalid(e.to_string()))?,
                );
                let mut cache = self.cache.compiled.lock().expect("rule cache");
                if cache.len() >= RULE_CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(key, compiled.clone());
                compiled
            }
        };
        let cached = self
            .cache
            .companies
            .lock()
            .expect("company cache")
            .get(&run.company_id)
            .cloned();
        let company = match cached {
            Some(company) => company,
            None => {
                let company = self.store.get_company(&run.company_id).await?;
                let value = Arc::new(match company {
                    Some(c) => json!({"id": c.id, "name": c.name}),
                    None => json!({"id": run.company_id}),
                });
                let mut cache = self.cache.companies.lock().expect("company cache");
                if cache.len() >= RULE_CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(run.company_id.clone(), value.clone());
                value
            }
        };
        Ok((rules, company))
    }
}
