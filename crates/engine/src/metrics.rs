//! Metrics: small lock-light primitives (counters, labelled counters,
//! histograms), the Prometheus text exposition encoder (format 0.0.4), and
//! [`EngineMetrics`], what the orchestrator counts.
//!
//! No global registry: each owner (the engine here, the server's
//! `metrics.rs`) holds its metrics in a value it shares by `Arc`, and renders
//! them into a [`TextEncoder`] at scrape time. So two servers in one test
//! process never count each other's traffic.
//!
//! Why not the `prometheus` crate: it is not among the packages available
//! here, and the subset needed (counters, gauges, histograms, one label per
//! family) is small enough to write and test in full.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use moneyflow_core::run::RunStatus;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters told apart by one label (`reason`, `outcome`, `task`…). Cheap
/// to clone: clones count into the same values.
#[derive(Debug, Clone)]
pub struct CounterVec {
    label: &'static str,
    values: Arc<RwLock<BTreeMap<String, Arc<Counter>>>>,
}

impl CounterVec {
    /// A family whose series for `preset` exist (at 0) before anything is
    /// counted, so a scrape shows them and rates start from 0.
    pub fn new(label: &'static str, preset: &[&str]) -> Self {
        let values = preset
            .iter()
            .map(|value| ((*value).to_owned(), Arc::default()))
            .collect();
        Self {
            label,
            values: Arc::new(RwLock::new(values)),
        }
    }

    /// The counter for `value`, created at 0 if new.
    pub fn with(&self, value: &str) -> Arc<Counter> {
        if let Some(counter) = read(&self.values).get(value) {
            return counter.clone();
        }
        write(&self.values)
            .entry(value.to_owned())
            .or_default()
            .clone()
    }

    pub fn inc(&self, value: &str) {
        self.with(value).inc();
    }

    /// The count for `value` (0 when never counted).
    pub fn get(&self, value: &str) -> u64 {
        read(&self.values).get(value).map_or(0, |c| c.get())
    }

    fn snapshot(&self) -> Vec<(String, u64)> {
        read(&self.values)
            .iter()
            .map(|(value, counter)| (value.clone(), counter.get()))
            .collect()
    }
}

/// Bucket upper bounds, in seconds, for durations from a millisecond-long
/// condition-like task to a slow remote call.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Observations counted into fixed buckets, with their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: Vec<AtomicU64>,
    /// The sum's f64 bits (updated with compare-and-swap).
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last; the sum; the count.
    fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        // The +Inf bucket is the count, by definition: read it from the
        // buckets so the two agree even while observations race the scrape.
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        (buckets, sum, cumulative)
    }
}

/// Histograms told apart by one label. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HistogramVec {
    label: &'static str,
    bounds: &'static [f64],
    values: Arc<RwLock<BTreeMap<String, Arc<Histogram>>>>,
}

impl HistogramVec {
    pub fn new(label: &'static str, bounds: &'static [f64]) -> Self {
        Self {
            label,
            bounds,
            values: Arc::default(),
        }
    }

    pub fn with(&self, value: &str) -> Arc<Histogram> {
        if let Some(histogram) = read(&self.values).get(value) {
            return histogram.clone();
        }
        write(&self.values)
            .entry(value.to_owned())
            .or_insert_with(|| Arc::new(Histogram::new(self.bounds)))
            .clone()
    }

    pub fn observe(&self, value: &str, observation: f64) {
        self.with(value).observe(observation);
    }
}

// A poisoned lock only means a panic elsewhere while it was held; the map
// itself is always consistent (entries are only ever added).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renders metric families in the Prometheus text exposition format:
/// `# HELP`, `# TYPE`, then one `name{label="value"} number` line per series.
#[derive(Debug, Default)]
pub struct TextEncoder {
    out: String,
}

/// The content type of [`TextEncoder`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl TextEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A counter measured in a unit with fractions (seconds of CPU time).
    pub fn counter_f64(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{name} {}", number(value));
    }

    pub fn counter_vec(&mut self, name: &str, help: &str, family: &CounterVec) {
        self.header(name, help, "counter");
        for (value, count) in family.snapshot() {
            let _ = writeln!(
                self.out,
                "{name}{{{}=\"{}\"}} {count}",
                family.label,
                escape_label(&value)
            );
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {}", number(value));
    }

    pub fn histogram_vec(&mut self, name: &str, help: &str, family: &HistogramVec) {
        self.header(name, help, "histogram");
        let series: Vec<(String, Arc<Histogram>)> = read(&family.values)
            .iter()
            .map(|(value, histogram)| (value.clone(), histogram.clone()))
            .collect();
        for (value, histogram) in series {
            let label = format!("{}=\"{}\"", family.label, escape_label(&value));
            let (buckets, sum, count) = histogram.snapshot();
            for (bound, cumulative) in buckets {
                let _ = writeln!(
                    self.out,
                    "{name}_bucket{{{label},le=\"{}\"}} {cumulative}",
                    number(bound)
                );
            }
            let _ = writeln!(self.out, "{name}_sum{{{label}}} {}", number(sum));
            let _ = writeln!(self.out, "{name}_count{{{label}}} {count}");
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A sample value as Prometheus writes it (`+Inf`, `NaN`, plain decimals).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's `Display` for f64 is the shortest exact decimal, never in
        // exponent form: valid for the text format.
        format!("{value}")
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// What the engine counts: runs finished by outcome, each task execution's
/// duration by task name, retries scheduled by task name, steps committed
/// and steps discarded because the lease was lost, and notification
/// deliveries by outcome (counted by the delivery worker).
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    pub runs_finished: CounterVec,
    pub task_duration: HistogramVec,
    pub task_retries: CounterVec,
    pub steps: Arc<Counter>,
    pub steps_lease_lost: Arc<Counter>,
    /// Runs failed by quarantine (their step never committed).
    pub runs_quarantined: Arc<Counter>,
    /// Notification delivery attempts by `outcome` (e.g. `delivered`,
    /// `retrying`, `failed`): the delivery worker's to count.
    pub notification_deliveries: CounterVec,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            runs_finished: CounterVec::new("outcome", &["succeeded", "failed", "aborted"]),
            task_duration: HistogramVec::new("task", DURATION_BUCKETS),
            task_retries: CounterVec::new("task", &[]),
            steps: Arc::default(),
            steps_lease_lost: Arc::default(),
            runs_quarantined: Arc::default(),
            notification_deliveries: CounterVec::new("outcome", &[]),
        }
    }
}

impl EngineMetrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn run_finished(&self, status: RunStatus) {
        if status.is_terminal() {
            self.runs_finished.inc(status.as_str());
        }
    }

    /// Renders every engine metric.
    pub fn encode(&self, encoder: &mut TextEncoder) {
        encoder.counter_vec(
            "moneyflow_runs_finished_total",
            "Runs that ended, by outcome (succeeded, failed, aborted).",
            &self.runs_finished,
        );
        encoder.histogram_vec(
            "moneyflow_task_duration_seconds",
            "How long each task execution (attempt) took, by task name.",
            &self.task_duration,
        );
        encoder.counter_vec(
            "moneyflow_task_retries_total",
            "Task retries scheduled after a retryable failure, by task name.",
            &self.task_retries,
        );
        encoder.counter(
            "moneyflow_steps_total",
            "Run steps committed by this process's orchestrator.",
            self.steps.get(),
        );
        encoder.counter(
            "moneyflow_steps_lease_lost_total",
            "Run steps discarded because the worker had lost the run's lease.",
            self.steps_lease_lost.get(),
        );
        encoder.counter(
            "moneyflow_runs_quarantined_total",
            "Runs failed by quarantine: their step started too many times without committing.",
            self.runs_quarantined.get(),
        );
        encoder.counter_vec(
            "moneyflow_notification_deliveries_total",
            "Notification delivery attempts, by outcome.",
            &self.notification_deliveries,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_families_render_with_help_type_and_escaped_labels() {
        let family = CounterVec::new("reason", &["auth"]);
        family.inc("validation");
        family.inc("validation");
        family.inc("we\"ird\\\nlabel");
        let mut encoder = TextEncoder::new();
        encoder.counter("a_total", "Help with \\ and\nnewline.", 3);
        encoder.counter_vec("b_total", "B.", &family);
        encoder.gauge("c", "C.", 0.25);
        let text = encoder.finish();
        assert_eq!(
            text,
            "# HELP a_total Help with \\\\ and\\nnewline.\n# TYPE a_total counter\na_total 3\n\
             # HELP b_total B.\n# TYPE b_total counter\nb_total{reason=\"auth\"} 0\n\
             b_total{reason=\"validation\"} 2\nb_total{reason=\"we\\\"ird\\\\\\nlabel\"} 1\n\
             # HELP c C.\n# TYPE c gauge\nc 0.25\n"
        );
        assert_eq!(family.get("validation"), 2);
        assert_eq!(family.get("never"), 0);
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let family = HistogramVec::new("task", &[0.1, 1.0]);
        family.observe("t", 0.05);
        family.observe("t", 0.1);
        family.observe("t", 0.5);
        family.observe("t", 7.0);
        let mut encoder = TextEncoder::new();
        encoder.histogram_vec("d_seconds", "D.", &family);
        let text = encoder.finish();
        assert_eq!(
            text,
            "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{task=\"t\",le=\"0.1\"} 2\n\
             d_seconds_bucket{task=\"t\",le=\"1\"} 3\n\
             d_seconds_bucket{task=\"t\",le=\"+Inf\"} 4\n\
             d_seconds_sum{task=\"t\"} 7.65\n\
             d_seconds_count{task=\"t\"} 4\n"
        );
    }

    #[test]
    fn clones_share_their_counts() {
        let metrics = EngineMetrics::default();
        let clone = metrics.clone();
        clone.run_finished(RunStatus::Failed);
        clone.run_finished(RunStatus::Running);
        assert_eq!(metrics.runs_finished.get("failed"), 1);
        assert_eq!(metrics.runs_finished.get("running"), 0);
    }
}
