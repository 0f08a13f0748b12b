//! The bench's result: figures computed from what was sent and what the
//! server reports, printed as text or as one JSON object (`--json`).

use std::time::Duration;

use serde::Serialize;

use super::load::Sent;
use super::server::{FinishedRun, Gauges};

/// Everything one bench measured. Latencies in milliseconds, CPU in
/// microseconds, sizes in bytes; `None` where the server did not say.
#[derive(Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub events: usize,
    /// Connections of a closed-loop run; `None` in open loop.
    pub concurrency: Option<usize>,
    /// Events per second of an open-loop run.
    pub rate: Option<f64>,
    pub accepted: usize,
    pub rejected: usize,
    pub send_seconds: f64,
    pub accepted_per_second: f64,
    pub accept_p50_ms: f64,
    pub accept_p99_ms: f64,
    /// `None` with `--send-only`.
    pub finished: Option<usize>,
    pub succeeded: Option<usize>,
    /// Finished runs over the span from the first accept to the last finish.
    pub finished_per_second: Option<f64>,
    pub event_to_finished_p50_ms: Option<f64>,
    pub event_to_finished_p99_ms: Option<f64>,
    /// Server CPU (user + system) over the bench, per run.
    pub server_cpu_us_per_run: Option<f64>,
    /// Growth of the store over the bench, per run.
    pub store_bytes_per_run: Option<f64>,
    pub store_bytes: Option<f64>,
    pub server_resident_bytes: Option<f64>,
}

/// Nearest-rank percentile over a sorted sample.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// What the run settings were.
pub(super) struct Setup<'a> {
    pub url: &'a str,
    pub events: usize,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
}

// Counts far below 2^53: exact in an f64.
#[allow(clippy::cast_precision_loss)]
pub(super) fn build(
    setup: &Setup<'_>,
    sent: &Sent,
    before: &Gauges,
    after: &Gauges,
    finished: Option<&[FinishedRun]>,
) -> Report {
    let accepted = sent.accept_latencies.len();
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let runs = finished.map_or(accepted, <[FinishedRun]>::len).max(1) as f64;
    let mut report = Report {
        url: setup.url.to_owned(),
        events: setup.events,
        concurrency: setup.concurrency,
        rate: setup.rate,
        accepted,
        rejected: sent.rejected,
        send_seconds: sent.elapsed.as_secs_f64(),
        accepted_per_second: accepted as f64 / sent.elapsed.as_secs_f64().max(f64::EPSILON),
        accept_p50_ms: ms(percentile(&sent.accept_latencies, 50.0)),
        accept_p99_ms: ms(percentile(&sent.accept_latencies, 99.0)),
        finished: None,
        succeeded: None,
        finished_per_second: None,
        event_to_finished_p50_ms: None,
        event_to_finished_p99_ms: None,
        server_cpu_us_per_run: delta(before.cpu_seconds, after.cpu_seconds)
            .map(|seconds| seconds * 1e6 / runs),
        store_bytes_per_run: delta(before.store_bytes, after.store_bytes).map(|b| b / runs),
        store_bytes: after.store_bytes,
        server_resident_bytes: after.resident_bytes,
    };
    if let Some(finished) = finished {
        let mut end_to_end: Vec<Duration> = finished
            .iter()
            .map(|run| {
                (run.finished_at - run.created_at)
                    .try_into()
                    .unwrap_or_default()
            })
            .collect();
        end_to_end.sort_unstable();
        let first = finished.iter().map(|run| run.created_at).min();
        let last = finished.iter().map(|run| run.finished_at).max();
        let span: Duration = match (first, last) {
            (Some(a), Some(b)) => (b - a).try_into().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        report.finished = Some(finished.len());
        report.succeeded = Some(finished.iter().filter(|r| r.status == "succeeded").count());
        report.finished_per_second =
            Some(finished.len() as f64 / span.as_secs_f64().max(f64::EPSILON));
        report.event_to_finished_p50_ms = Some(ms(percentile(&end_to_end, 50.0)));
        report.event_to_finished_p99_ms = Some(ms(percentile(&end_to_end, 99.0)));
    }
    report
}

impl Report {
    /// The human-readable form.
    pub fn print(&self) {
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        println!();
        println!("  events sent            {}", self.events);
        println!(
            "  accepted (202)         {}   rejected {}",
            self.accepted, self.rejected
        );
        println!(
            "  accepted events/s      {:.0}   (over {:.2} s)",
            self.accepted_per_second, self.send_seconds
        );
        println!(
            "  accept latency         p50 {:.2} ms   p99 {:.2} ms",
            self.accept_p50_ms, self.accept_p99_ms
        );
        if let (Some(finished), Some(succeeded), Some(per_second)) =
            (self.finished, self.succeeded, self.finished_per_second)
        {
            println!("  finished runs          {finished}   ({succeeded} succeeded)");
            println!("  finished runs/s        {per_second:.0}");
            println!(
                "  event→finished         p50 {:.2} ms   p99 {:.2} ms",
                self.event_to_finished_p50_ms.unwrap_or_default(),
                self.event_to_finished_p99_ms.unwrap_or_default()
            );
        }
        println!(
            "  server CPU per run     {}",
            or_dash(self.server_cpu_us_per_run.map(|us| format!("{us:.0} µs")))
        );
        println!(
            "  store bytes per run    {}   (store {})",
            or_dash(
                self.store_bytes_per_run
                    .map(|b| format!("{:.2} KiB", b / 1024.0))
            ),
            or_dash(
                self.store_bytes
                    .map(|b| format!("{:.1} MiB", b / 1_048_576.0))
            )
        );
        println!(
            "  server resident memory {}",
            or_dash(
                self.server_resident_bytes
                    .map(|b| format!("{:.1} MiB", b / 1_048_576.0))
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sample, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sample, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn cpu_and_bytes_are_divided_by_the_runs() {
        let sent = Sent {
            accept_latencies: vec![Duration::from_millis(1); 4],
            rejected: 0,
            elapsed: Duration::from_secs(1),
        };
        let before = Gauges {
            cpu_seconds: Some(1.0),
            store_bytes: Some(1000.0),
            ..Gauges::default()
        };
        let after = Gauges {
            cpu_seconds: Some(1.002),
            store_bytes: Some(5096.0),
            ..Gauges::default()
        };
        let setup = Setup {
            url: "http://x",
            events: 4,
            concurrency: Some(1),
            rate: None,
        };
        let report = build(&setup, &sent, &before, &after, None);
        assert!((report.server_cpu_us_per_run.unwrap() - 500.0).abs() < 1e-6);
        assert!((report.store_bytes_per_run.unwrap() - 1024.0).abs() < 1e-9);
        assert_eq!(report.finished, None);
    }
}
