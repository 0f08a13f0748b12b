//! What the bench reads from the server itself: its `/metrics` gauges
//! (process CPU time, resident memory, store size, queue depth), the wait
//! until the queue is empty, and the runs' own timestamps from `GET /runs`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::load::Client;

/// The gauges of one `/metrics` scrape that the bench uses.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gauges {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub store_bytes: Option<f64>,
    pub queue_depth: Option<f64>,
}

/// The value of an unlabelled sample `name value` in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        })
}

pub(super) async fn scrape(client: &Client, admin: &str) -> anyhow::Result<Gauges> {
    let (status, text) = client.get_text("/metrics", admin).await?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    Ok(Gauges {
        cpu_seconds: sample(&text, "process_cpu_seconds_total"),
        resident_bytes: sample(&text, "process_resident_memory_bytes"),
        store_bytes: sample(&text, "moneyflow_store_bytes"),
        queue_depth: sample(&text, "moneyflow_queue_depth"),
    })
}

/// Waits until the server's run queue is empty (every run finished),
/// showing the runs finished so far out of `accepted`; returns the scrape
/// that saw it empty. The server should run nothing but the bench.
pub(super) async fn wait_until_drained(
    client: &Client,
    admin: &str,
    accepted: usize,
    timeout: Duration,
    progress: &ProgressBar,
) -> anyhow::Result<Gauges> {
    let deadline = Instant::now() + timeout;
    loop {
        let gauges = scrape(client, admin).await?;
        let Some(depth) = gauges.queue_depth else {
            bail!("the server's /metrics has no moneyflow_queue_depth (is the store up?)");
        };
        // The depth is a count of rows: exact in an f64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let unfinished = depth.max(0.0) as usize;
        progress.set_position(accepted.saturating_sub(unfinished) as u64);
        if unfinished == 0 {
            return Ok(gauges);
        }
        if Instant::now() > deadline {
            bail!("{unfinished} runs still unfinished after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A finished run's timestamps and outcome.
#[derive(Debug, Clone)]
pub(super) struct FinishedRun {
    pub created_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub status: String,
}

/// Every run of `company_id`, newest first, page by page.
pub(super) async fn finished_runs(
    client: &Client,
    key: &str,
    company_id: &str,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<FinishedRun>> {
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/runs?company_id={company_id}&limit=500");
        if let Some(cursor) = &cursor {
            path.push_str("&cursor=");
            path.push_str(cursor);
        }
        let (status, page) = client.get(&path, key).await?;
        if status != 200 {
            bail!("GET /runs answered {status}: {page}");
        }
        let items = page["items"]
            .as_array()
            .context("GET /runs without items")?;
        for run in items {
            let at = |field: &str| {
                run[field]
                    .as_str()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            };
            if let (Some(created_at), Some(finished_at)) = (at("created_at"), at("finished_at")) {
                runs.push(FinishedRun {
                    created_at,
                    finished_at,
                    status: run["status"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        progress.inc(items.len() as u64);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_by_exact_name() {
        let text = "# HELP process_cpu_seconds_total CPU\n# TYPE process_cpu_seconds_total counter\n\
                    process_cpu_seconds_total 12.5\nmoneyflow_queue_depth 0\nmoneyflow_queue_depth_other 3\n";
        assert_eq!(sample(text, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(sample(text, "moneyflow_queue_depth"), Some(0.0));
        assert_eq!(sample(text, "moneyflow_store_bytes"), None);
    }
}
