//! What one company may take of a server it shares with others:
//! - [`PaymentRates`]: a token bucket per company on `POST /payment` and
//!   redrives (`--payments-per-second`, `--payments-burst`, or what the
//!   admin set for the company with `PUT /companies/{id}/limits`); past it,
//!   429 with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy`
//!   headers. Buckets live in each router process: with several routers a
//!   company may send up to that many times its rate.
//! - [`StreamSlots`]: open event streams per company
//!   (`--max-streams-per-company`), each of which reads the store.
//! - [`CpuPool`]: CPU-heavy requests (validate, save, simulate, backtest)
//!   run on a bounded set of blocking threads with a time budget
//!   (`--cpu-workers`, `--cpu-time-budget`), so they never stall the async
//!   workers that answer everyone else.
//!
//! The HTTP server's own bounds (request and body-read timeouts, the
//! concurrency limit) are layers in [`crate::app`]; [`overloaded`] turns
//! their errors into problems.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use moka::sync::Cache;
use moneyflow_core::ports::{CompanyLimits, CompanyStore};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

/// Payment events per second a company may send when nothing else is set.
pub const DEFAULT_PAYMENTS_PER_SECOND: u32 = 1000;
/// How many above the sustained rate may arrive at once, by default.
pub const DEFAULT_PAYMENTS_BURST: u32 = 2000;
/// Open event streams per company, by default.
pub const DEFAULT_MAX_STREAMS_PER_COMPANY: usize = 16;
/// Notification endpoints per company, by default.
pub const DEFAULT_MAX_NOTIFICATION_ENDPOINTS: usize = 20;
/// Requests the server works on at once, by default; more get 503.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// How long a request may take until its answer starts, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading a request body may take, by default.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one CPU-heavy request may take, by default.
pub const DEFAULT_CPU_TIME_BUDGET: Duration = Duration::from_secs(10);
/// How long a company's limits are trusted without reading the store: a
/// change made through another process applies at most this late.
const LIMITS_TTL: Duration = Duration::from_secs(1);
/// A quiet company's bucket is dropped after this (it would be full again).
const BUCKET_IDLE: Duration = Duration::from_secs(600);
/// Entries each cache holds at most.
const CAPACITY: u64 = 100_000;
/// The name of the policy in the `RateLimit` headers.
const POLICY: &str = "payments";
/// Seconds a client refused a stream slot should wait.
const STREAM_RETRY_AFTER_SECONDS: u64 = 5;

/// Every per-company bound a server keeps, as [`crate::AppState`] holds them.
#[derive(Clone)]
pub struct TenantLimits {
    pub payment_rates: PaymentRates,
    pub streams: StreamSlots,
    pub cpu: CpuPool,
    /// Notification endpoints a company may have (`--max-notification-endpoints`).
    pub max_notification_endpoints: usize,
    pub http: HttpBounds,
}

/// The HTTP server's own bounds, which [`crate::app`] layers on every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpBounds {
    pub max_concurrent_requests: usize,
    pub request_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for HttpBounds {
    fn default() -> Self {
        Self {
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            payment_rates: PaymentRates::default(),
            streams: StreamSlots::default(),
            cpu: CpuPool::default(),
            max_notification_endpoints: DEFAULT_MAX_NOTIFICATION_ENDPOINTS,
            http: HttpBounds::default(),
        }
    }
}

/// A sustained rate and a burst, as a token bucket applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentRate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl PaymentRate {
    /// The rate for a company: what the admin set for it, else the
    /// deployment's default; `None` when neither limits it (a default of 0).
    pub fn for_company(limits: CompanyLimits, default: Option<PaymentRate>) -> Option<Self> {
        let per_second = match limits.payments_per_second {
            Some(n) => NonZeroU32::new(n),
            None => default.map(|rate| rate.per_second),
        }?;
        let burst = limits
            .payments_burst
            .and_then(NonZeroU32::new)
            .or(default.map(|rate| rate.burst))
            .unwrap_or(per_second);
        Some(Self { per_second, burst })
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct Bucket {
    rate: PaymentRate,
    limiter: Limiter,
}

/// What a bucket said about one payment: let through or not, and what the
/// `RateLimit` headers tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub rate: PaymentRate,
    /// Payments that may still be sent at once.
    pub remaining: u32,
    /// Refused: how long until one more is accepted.
    pub retry_after: Option<Duration>,
}

impl RateDecision {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers),
    /// and `Retry-After` on a refusal.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let per_second = self.rate.per_second.get();
        let burst = self.rate.burst.get();
        // Seconds until the bucket is full again (or, refused, until the next one).
        let reset = match self.retry_after {
            Some(wait) => whole_seconds(wait),
            None => u64::from(burst - self.remaining.min(burst)).div_ceil(u64::from(per_second)),
        };
        let policy = format!("\"{POLICY}\";q={per_second};w=1");
        let state = format!("\"{POLICY}\";r={};t={reset}", self.remaining);
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if let Some(wait) = self.retry_after {
            headers.insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(whole_seconds(wait)),
            );
        }
    }

    /// The 429 a refused payment gets, with its headers.
    pub fn refusal(&self, company_id: &str) -> Option<Response> {
        let wait = self.retry_after?;
        let mut response = ApiError::TooManyRequests {
            detail: format!(
                "company `{company_id}` may send {} payment events per second (bursts of {}); \
                 this one is over that rate: send it again in {} second(s)",
                self.rate.per_second,
                self.rate.burst,
                whole_seconds(wait)
            ),
            retry_after_seconds: whole_seconds(wait),
        }
        .into_response();
        self.write_headers(response.headers_mut());
        Some(response)
    }
}

/// At least one second: `Retry-After: 0` would invite a busy loop.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The token buckets, one per company that sent payments lately.
#[derive(Clone)]
pub struct PaymentRates {
    default: Option<PaymentRate>,
    /// What the admin set per company, read from the store briefly.
    limits: Cache<String, CompanyLimits>,
    buckets: Cache<String, Arc<Bucket>>,
}

impl Default for PaymentRates {
    fn default() -> Self {
        Self::new(DEFAULT_PAYMENTS_PER_SECOND, DEFAULT_PAYMENTS_BURST)
    }
}

impl PaymentRates {
    /// `per_second` 0: no default limit (companies the admin set one for
    /// still have theirs). `burst` 0: as many as `per_second`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let default = NonZeroU32::new(per_second).map(|per_second| PaymentRate {
            per_second,
            burst: NonZeroU32::new(burst).unwrap_or(per_second),
        });
        Self {
            default,
            limits: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(LIMITS_TTL)
                .build(),
            buckets: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(BUCKET_IDLE)
                .build(),
        }
    }

    /// Takes one token from the company's bucket; `None` when nothing
    /// limits the company.
    pub async fn admit(
        &self,
        state: &AppState,
        company_id: &str,
    ) -> Result<Option<RateDecision>, ApiError> {
        let limits = match self.limits.get(company_id) {
            Some(limits) => limits,
            None => {
                let limits = state
                    .store()
                    .company_limits(company_id)
                    .await?
                    .unwrap_or_default();
                self.limits.insert(company_id.to_owned(), limits);
                limits
            }
        };
        let Some(rate) = PaymentRate::for_company(limits, self.default) else {
            return Ok(None);
        };
        let bucket = match self.buckets.get(company_id) {
            Some(bucket) if bucket.rate == rate => bucket,
            _ => {
                let bucket = Arc::new(Bucket {
                    rate,
                    limiter: RateLimiter::direct(
                        Quota::per_second(rate.per_second).allow_burst(rate.burst),
                    )
                    .with_middleware::<StateInformationMiddleware>(),
                });
                self.buckets.insert(company_id.to_owned(), bucket.clone());
                bucket
            }
        };
        Ok(Some(match bucket.limiter.check() {
            Ok(snapshot) => RateDecision {
                rate,
                remaining: snapshot.remaining_burst_capacity(),
                retry_after: None,
            },
            Err(not_until) => RateDecision {
                rate,
                remaining: 0,
                retry_after: Some(not_until.wait_time_from(DefaultClock::default().now())),
            },
        }))
    }

    /// After the admin changed a company's limits: this process applies
    /// them at once.
    pub fn forget(&self, company_id: &str) {
        self.limits.invalidate(company_id);
    }

    /// The deployment's default rate, if any.
    pub fn default_rate(&self) -> Option<PaymentRate> {
        self.default
    }
}

/// Open event streams per company.
#[derive(Clone)]
pub struct StreamSlots {
    max_per_company: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for StreamSlots {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STREAMS_PER_COMPANY)
    }
}

/// One open stream; dropping it (the stream ended) frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    company_id: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.company_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.company_id);
            }
        }
    }
}

impl StreamSlots {
    pub fn new(max_per_company: usize) -> Self {
        Self {
            max_per_company,
            open: Arc::default(),
        }
    }

    /// A slot for one more stream of `company_id`, or 429 when it has the
    /// most it may.
    pub fn open(&self, company_id: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(company_id.to_owned()).or_default();
        if *count >= self.max_per_company {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "company `{company_id}` has {count} event streams open, the most this server allows \
                     (--max-streams-per-company {}); close one, or resume one with `Last-Event-ID`",
                    self.max_per_company
                ),
                retry_after_seconds: STREAM_RETRY_AFTER_SECONDS,
            });
        }
        *count += 1;
        Ok(StreamSlot {
            company_id: company_id.to_owned(),
            open: self.open.clone(),
        })
    }

    /// Streams open for `company_id` now.
    pub fn open_count(&self, company_id: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(company_id).copied().unwrap_or(0)
    }
}

/// A bounded set of blocking threads for CPU-heavy requests, each with a
/// time budget.
#[derive(Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    workers: usize,
    budget: Duration,
}

impl Default for CpuPool {
    fn default() -> Self {
        Self::new(default_cpu_workers(), DEFAULT_CPU_TIME_BUDGET)
    }
}

/// As many workers as the machine has cores.
pub fn default_cpu_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl CpuPool {
    pub fn new(workers: usize, budget: Duration) -> Self {
        let workers = workers.max(1);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            budget,
        }
    }

    /// Runs `work` on a blocking thread once one of the workers is free.
    /// Waiting and working share the budget; past it the answer is 503
    /// (work already started finishes on its thread, still holding its
    /// worker, so the bound holds).
    pub async fn run<T, W>(&self, work: W) -> Result<T, ApiError>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.budget;
        let permit = self.permit(deadline).await?;
        // The request's span goes along, so the work logs as part of it.
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(join)) => Err(ApiError::internal(join)),
            Err(_) => Err(self.over_budget()),
        }
    }

    /// Runs `work` (a future that mostly computes, with a few store reads)
    /// to completion on a blocking thread, within the budget: it is
    /// dropped at its first await past the budget.
    pub async fn run_async<F>(&self, work: F) -> Result<F::Output, ApiError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.budget;
        let permit = self.permit(deadline).await?;
        let runtime = tokio::runtime::Handle::current();
        let work = work.instrument(tracing::Span::current());
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            runtime.block_on(tokio::time::timeout_at(deadline, work))
        });
        match task.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_elapsed)) => Err(self.over_budget()),
            Err(join) => Err(ApiError::internal(join)),
        }
    }

    async fn permit(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(closed)) => Err(ApiError::internal(closed)),
            Err(_) => Err(ApiError::Overloaded {
                detail: format!(
                    "all {} CPU workers (--cpu-workers) stayed busy for the {} s budget (--cpu-time-budget); retry shortly",
                    self.workers,
                    self.budget.as_secs_f64()
                ),
            }),
        }
    }

    fn over_budget(&self) -> ApiError {
        ApiError::Overloaded {
            detail: format!(
                "the request did not finish within its {} s CPU budget (--cpu-time-budget); \
                 send less work at once (fewer rules, a smaller backtest `limit`) or retry when the server is quieter",
                self.budget.as_secs_f64()
            ),
        }
    }
}

/// The concurrency limit's and the request timeout's errors, as problems.
pub async fn overloaded(error: tower::BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Overloaded {
            detail: "the request did not finish within the server's request timeout (--request-timeout); \
                     retry it (payments are idempotent by `Idempotency-Key` or `event_id`)"
                .to_owned(),
        }
        .into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded {
            detail: "the server is working on as many requests as it allows (--max-concurrent-requests); retry shortly"
                .to_owned(),
        }
        .into_response()
    } else {
        ApiError::internal(error).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> PaymentRate {
        PaymentRate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn a_company_setting_wins_over_the_default() {
        let default = Some(rate(100, 200));
        assert_eq!(
            PaymentRate::for_company(CompanyLimits::default(), default),
            default
        );
        let own = CompanyLimits {
            payments_per_second: Some(5),
            payments_burst: Some(9),
        };
        assert_eq!(PaymentRate::for_company(own, default), Some(rate(5, 9)));
        let rate_only = CompanyLimits {
            payments_per_second: Some(5),
            payments_burst: None,
        };
        assert_eq!(
            PaymentRate::for_company(rate_only, default),
            Some(rate(5, 200))
        );
        assert_eq!(
            PaymentRate::for_company(rate_only, None),
            Some(rate(5, 5)),
            "without a default burst, the burst is the rate"
        );
        assert_eq!(
            PaymentRate::for_company(CompanyLimits::default(), None),
            None
        );
    }

    #[test]
    fn headers_say_the_policy_what_is_left_and_when_to_retry() {
        let mut headers = HeaderMap::new();
        RateDecision {
            rate: rate(10, 20),
            remaining: 15,
            retry_after: None,
        }
        .write_headers(&mut headers);
        assert_eq!(headers["ratelimit-policy"], "\"payments\";q=10;w=1");
        assert_eq!(headers["ratelimit"], "\"payments\";r=15;t=1");
        assert!(!headers.contains_key("retry-after"));

        let mut headers = HeaderMap::new();
        RateDecision {
            rate: rate(10, 20),
            remaining: 0,
            retry_after: Some(Duration::from_millis(1500)),
        }
        .write_headers(&mut headers);
        assert_eq!(headers["ratelimit"], "\"payments\";r=0;t=2");
        assert_eq!(headers["retry-after"], "2");
    }

    #[test]
    fn stream_slots_are_counted_per_company_and_freed_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.open("a").unwrap();
        let _a2 = slots.open("a").unwrap();
        let refused = slots.open("a").unwrap_err();
        assert!(
            matches!(refused, ApiError::TooManyRequests { .. }),
            "{refused:?}"
        );
        let _b = slots.open("b").expect("another company has its own slots");
        drop(a1);
        assert_eq!(slots.open_count("a"), 1);
        let _a3 = slots.open("a").expect("a freed slot is usable again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cpu_pool_refuses_work_past_its_budget() {
        let pool = CpuPool::new(1, Duration::from_secs(1));
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        let slow = pool.run(|| std::thread::sleep(Duration::from_secs(3)));
        assert!(matches!(slow.await, Err(ApiError::Overloaded { .. })));
        // The one worker is still busy with the slow work: no second one runs.
        let queued = pool.run(|| ());
        assert!(matches!(queued.await, Err(ApiError::Overloaded { .. })));
        let never_ends = pool.run_async(async {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(matches!(never_ends.await, Err(ApiError::Overloaded { .. })));
        assert_eq!(pool.run_async(async { 7 }).await.unwrap(), 7);
    }
}
