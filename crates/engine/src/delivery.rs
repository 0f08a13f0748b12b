//! The notification delivery worker: sends each delivery the store's outbox
//! holds (one per endpoint for every finished run) as a Standard Webhooks
//! request, retries it on a schedule of about three days, and records every
//! attempt.
//!
//! Like the orchestrator, it claims due deliveries with a lease (so a
//! worker that dies leaves them to another, and several processes share the
//! work), sends at most [`DeliveryConfig::max_in_flight`] at once, and
//! sleeps until the next one is due or it is woken (the orchestrator wakes
//! it when a run finishes). All its state is in the store: a restart loses
//! nothing, and a delivery sent twice (a lease that ran out mid-request)
//! carries the same `webhook-id`, so receivers can deduplicate.
//!
//! Each request: `POST` of the stored JSON body with `webhook-id` (the
//! delivery id, stable across retries), `webhook-timestamp` (seconds, at
//! send time) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! {id}.{timestamp}.{body}>` under the endpoint's `whsec_…` secret.
//! - 2xx: delivered.
//! - 410 Gone: failed, and the endpoint is disabled (no further deliveries).
//! - 429, 5xx, timeouts, connection errors: retried after the schedule's
//!   next delay (with jitter; at least what `Retry-After` asks), until the
//!   retry window is over, then failed.
//! - other statuses (4xx, redirects, which are not followed): failed.
//! - an address the egress policy refuses ([`crate::egress`]), unless the
//!   operator allows private addresses: failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use moneyflow_core::ports::{
    AttemptRecord, DeliveryAttempt, DeliveryNext, DueDelivery, NotificationStore, StoreResult,
};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::egress;

/// Prefix of an endpoint's signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The delay after the first failed attempt, the second…; the last one
    /// repeats.
    pub delays: Vec<Duration>,
    /// No attempt is made later than this after the delivery was queued:
    /// the delivery fails instead.
    pub window: Duration,
}

impl Default for RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h, for three days: the
    /// last attempt is about 67 h 35 min after the first (12 attempts).
    fn default() -> Self {
        Self {
            delays: [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            window: Duration::from_secs(72 * 3600),
        }
    }
}

/// Why a schedule or duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "`{0}` is not a duration: use a whole number with a unit, e.g. 250ms, 5s, 5m, 2h or 3d"
    )]
    Duration(String),
    #[error("a retry schedule needs at least one delay, e.g. 5s,5m,30m,2h,5h,10h")]
    Empty,
}

/// Parses `250ms`, `5s`, `5m`, `2h` or `3d`.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| ScheduleError::Duration(text.to_owned()))?;
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        "d" => number.checked_mul(86_400_000),
        _ => None,
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| ScheduleError::Duration(text.to_owned()))
}

/// Parses a comma-separated list of delays, e.g. `5s,5m,30m,2h,5h,10h`.
pub fn parse_delays(text: &str) -> Result<Vec<Duration>, ScheduleError> {
    let delays = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err(ScheduleError::Empty);
    }
    Ok(delays)
}

impl RetrySchedule {
    /// The wait before the next attempt after `attempts` failed ones, for a
    /// delivery queued `age` ago; `None` when the window is over. `jitter`
    /// in `[0, 1)` spreads retries over ±10% of the delay, so deliveries
    /// that failed together do not all come back at once.
    pub fn next_delay(
        &self,
        attempts: u32,
        age: Duration,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        let base = *self.delays.get(index).or(self.delays.last())?;
        // A fraction of a delay: f64 is right here.
        let delay = base.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0));
        let delay = retry_after.map_or(delay, |asked| delay.max(asked));
        (age + delay <= self.window).then_some(delay)
    }
}

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// This worker's name on its leases; unique per process.
    pub owner: String,
    /// Most requests in flight at once.
    pub max_in_flight: usize,
    /// How long a claimed delivery stays leased: longer than a request may
    /// take, so there is no renewal to do.
    pub lease: Duration,
    /// Longest sleep when idle.
    pub idle_poll: Duration,
    /// After a wake-up, how long to wait before looking: wake-ups come with
    /// every finished run, and one look serves them all.
    pub wake_delay: Duration,
    /// The longest a request may take.
    pub request_timeout: Duration,
    pub retry: RetrySchedule,
    /// Allow loopback, private and link-local addresses (tests, on-premises).
    pub allow_private_addresses: bool,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            owner: format!("delivery-{}", uuid::Uuid::new_v4().simple()),
            max_in_flight: 64,
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_secs(1),
            wake_delay: Duration::from_millis(20),
            request_timeout: Duration::from_secs(15),
            retry: RetrySchedule::default(),
            allow_private_addresses: false,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>` under a `whsec_…`
/// secret; `None` when the secret is not one.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = BASE64
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|k| !k.is_empty())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No answer worth retrying for (a refused address, a bad URL or secret).
    Refused(String),
    /// No answer, but another attempt may get one (timeout, connection).
    Unreachable(String),
}

/// A running delivery worker.
pub struct DeliveryHandle {
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl DeliveryHandle {
    /// A waker to call when deliveries may have been queued (a run finished).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops claiming, waits for requests in flight (up to the grace
    /// period); what is left is retried after its lease runs out.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.join.await;
    }
}

/// The delivery worker over a store.
pub struct DeliveryWorker<S> {
    store: S,
    client: reqwest::Client,
    config: DeliveryConfig,
    clock: Clock,
    metrics: Option<Arc<crate::metrics::EngineMetrics>>,
}

impl<S> DeliveryWorker<S>
where
    S: NotificationStore + Clone + 'static,
{
    pub fn new(store: S, config: DeliveryConfig, clock: Clock) -> Self {
        let builder = egress::client_builder(config.allow_private_addresses)
            .user_agent(concat!("MoneyFlow-Webhooks/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout);
        Self {
            store,
            client: builder
                .build()
                .expect("the HTTP client's settings are valid"),
            config,
            clock,
            metrics: None,
        }
    }

    /// Counts each attempt in `moneyflow_notification_deliveries_total` by outcome.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::EngineMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Starts the worker loop in the background.
    pub fn spawn(self) -> DeliveryHandle {
        let wake = Arc::new(Notify::new());
        let (shutdown, stop) = watch::channel(false);
        let join = tokio::spawn(Arc::new(self).run_loop(wake.clone(), stop));
        DeliveryHandle {
            wake,
            shutdown,
            join,
        }
    }

    /// Claims every delivery due now and sends them, waiting for all;
    /// returns how many were attempted. The loop's unit of work, public so
    /// tests can drive a worker step by step with a manual clock.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let claimed = self
            .store
            .claim_deliveries(
                &self.config.owner,
                self.config.max_in_flight.max(1),
                self.config.lease,
                self.clock.now(),
            )
            .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|due| self.deliver(due))).await;
        Ok(count)
    }

    async fn run_loop(self: Arc<Self>, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
        let mut sending = JoinSet::new();
        tracing::info!(owner = %self.config.owner, "delivery worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            while sending.try_join_next().is_some() {}
            let available = permits.available_permits();
            if available == 0 {
                tokio::select! {
                    _ = sending.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            // A read first: claiming is a write, and most looks find nothing.
            let now = self.clock.now();
            let nap = match self.store.next_delivery_due().await {
                Ok(Some(at)) if at <= now => None,
                Ok(Some(at)) => Some(self.clock.until(at)),
                Ok(None) => Some(self.config.idle_poll),
                Err(error) => {
                    tracing::warn!(error = %error, "reading the delivery queue failed; retrying");
                    Some(Duration::from_secs(1))
                }
            };
            if let Some(nap) = nap {
                let nap = nap.clamp(Duration::from_millis(5), self.config.idle_poll);
                self.idle(&wake, &mut stop, nap).await;
                continue;
            }
            let claimed = self
                .store
                .claim_deliveries(&self.config.owner, available, self.config.lease, now)
                .await;
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = %error, "claiming deliveries failed; retrying");
                    self.idle(&wake, &mut stop, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                // Due, but leased by another worker: look again shortly.
                self.idle(&wake, &mut stop, Duration::from_millis(50)).await;
                continue;
            }
            for due in claimed {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // Cannot happen (claimed at most `available`); its lease
                    // runs out and it is claimed again.
                    break;
                };
                let this = self.clone();
                sending.spawn(async move {
                    this.deliver(due).await;
                    drop(permit);
                });
            }
        }
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = sending.join_next() => if next.is_none() { break },
                () = &mut grace => break,
            }
        }
        // Deliveries cut off here are sent again once their leases run out.
        sending.abort_all();
        tracing::info!(owner = %self.config.owner, "delivery worker stopped");
    }

    async fn idle(&self, wake: &Notify, stop: &mut watch::Receiver<bool>, nap: Duration) {
        tokio::select! {
            () = wake.notified() => {
                // Let the other runs finishing now queue theirs too.
                tokio::select! {
                    () = tokio::time::sleep(self.config.wake_delay) => {}
                    _ = stop.changed() => {}
                }
            }
            () = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }

    /// One attempt at one delivery, recorded.
    #[tracing::instrument(skip_all, fields(delivery_id = %due.delivery.id, run_id = %due.delivery.run_id, company_id = %due.delivery.company_id))]
    async fn deliver(&self, due: DueDelivery) {
        let delivery = &due.delivery;
        let attempt = delivery.attempts + 1;
        let at = self.clock.now();
        let started = Instant::now();
        let answer = if due.endpoint_enabled {
            self.send(&due).await
        } else {
            Answer::Refused("the endpoint is disabled".to_owned())
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now();
        let age: Duration = (now - delivery.created_at).try_into().unwrap_or_default();
        let retry = |retry_after: Option<Duration>| {
            let jitter: f64 = rand::thread_rng().r#gen();
            self.config
                .retry
                .next_delay(attempt, age, jitter, retry_after)
                .map_or(DeliveryNext::Failed, |delay| {
                    DeliveryNext::RetryAt(now + delay)
                })
        };
        let (status_code, error, next) = match &answer {
            Answer::Status { code, .. } if (200..300).contains(code) => {
                (Some(*code), None, DeliveryNext::Delivered)
            }
            Answer::Status { code: 410, .. } => (
                Some(410),
                Some("410 Gone: the endpoint is disabled".to_owned()),
                DeliveryNext::EndpointGone,
            ),
            Answer::Status { code, retry_after } if *code == 429 || *code >= 500 => (
                Some(*code),
                Some(format!("the endpoint answered {code}")),
                retry(*retry_after),
            ),
            Answer::Status { code, .. } => (
                Some(*code),
                Some(format!(
                    "the endpoint answered {code}, which is not retried"
                )),
                DeliveryNext::Failed,
            ),
            Answer::Refused(message) => (None, Some(message.clone()), DeliveryNext::Failed),
            Answer::Unreachable(message) => (None, Some(message.clone()), retry(None)),
        };
        if let Some(metrics) = &self.metrics {
            let outcome = match &next {
                DeliveryNext::Delivered => "delivered",
                DeliveryNext::RetryAt(_) => "retry",
                DeliveryNext::Failed => "failed",
                DeliveryNext::EndpointGone => "endpoint_gone",
            };
            metrics.notification_deliveries.inc(outcome);
        }
        match &next {
            DeliveryNext::Delivered => tracing::debug!(attempt, "delivered"),
            DeliveryNext::RetryAt(at) => {
                tracing::info!(attempt, error = ?error, retry_at = %at, "delivery failed; will retry")
            }
            DeliveryNext::Failed | DeliveryNext::EndpointGone => {
                tracing::warn!(attempt, error = ?error, "delivery failed for good")
            }
        }
        let record = AttemptRecord {
            delivery_id: delivery.id.clone(),
            owner: self.config.owner.clone(),
            attempt: DeliveryAttempt {
                attempt,
                at,
                status_code,
                error: error.clone(),
                duration_ms,
            },
            next,
            last_error: error,
            now,
        };
        if let Err(error) = self.store.record_delivery_attempt(record).await {
            // The lease runs out and the delivery is sent again, with the
            // same webhook-id.
            tracing::warn!(error = %error, "recording a delivery attempt failed");
        }
    }

    async fn send(&self, due: &DueDelivery) -> Answer {
        let url = match reqwest::Url::parse(&due.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return Answer::Refused(format!("`{}` is not an http(s) URL", due.url)),
        };
        if !self.config.allow_private_addresses {
            // IP literals skip the resolver, so they are checked here.
            if let Err(refused) = egress::check_url(&url) {
                return Answer::Refused(refused.to_string());
            }
        }
        let timestamp = self.clock.now().unix_timestamp();
        let body = due.delivery.payload.as_bytes();
        let Some(signature) = signature(&due.secret, &due.delivery.id, timestamp, body) else {
            // A bug: secrets are generated as `whsec_…`. Never log the secret.
            return Answer::Refused("the endpoint's signing secret is malformed".to_owned());
        };
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &due.delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.delivery.payload.clone())
            .send()
            .await;
        match response {
            Ok(response) => Answer::Status {
                code: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            Err(error) => classify(&error),
        }
    }
}

fn classify(error: &reqwest::Error) -> Answer {
    if let Some(refused) = egress::refused_in(error) {
        return Answer::Refused(refused.to_string());
    }
    if error.is_timeout() {
        Answer::Unreachable("the request timed out".to_owned())
    } else if error.is_connect() {
        Answer::Unreachable("could not connect to the endpoint".to_owned())
    } else {
        Answer::Unreachable(format!("the request failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days() {
        let schedule = RetrySchedule::default();
        let mut age = Duration::ZERO;
        let mut attempts = 1;
        while let Some(delay) = schedule.next_delay(attempts, age, 0.5, None) {
            age += delay;
            attempts += 1;
        }
        assert_eq!(attempts, 12);
        assert!(age > Duration::from_secs(66 * 3600), "{age:?}");
        assert!(age <= Duration::from_secs(72 * 3600), "{age:?}");
        assert_eq!(
            schedule.next_delay(1, Duration::ZERO, 0.5, None),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_retry_after_is_honoured() {
        let schedule = RetrySchedule {
            delays: vec![Duration::from_secs(100)],
            window: Duration::from_secs(10_000),
        };
        assert_eq!(
            schedule.next_delay(1, Duration::ZERO, 0.0, None),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            schedule.next_delay(7, Duration::ZERO, 1.0, None),
            Some(Duration::from_secs(110))
        );
        assert_eq!(
            schedule.next_delay(1, Duration::ZERO, 0.5, Some(Duration::from_secs(500))),
            Some(Duration::from_secs(500))
        );
        assert_eq!(
            schedule.next_delay(1, Duration::from_secs(9_950), 0.5, None),
            None
        );
    }

    #[test]
    fn schedules_parse() {
        assert_eq!(
            parse_delays("5s, 5m,30m,2h,250ms,1d").unwrap(),
            [
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                Duration::from_secs(7200),
                Duration::from_millis(250),
                Duration::from_secs(86_400)
            ]
        );
        assert_eq!(parse_delays(""), Err(ScheduleError::Empty));
        assert!(parse_delays("5x").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        assert_eq!(
            signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            )
            .as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("sk_nope", "id", 1, b"{}"), None);
    }
}
