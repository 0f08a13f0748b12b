//! Wall-clock time for checkpoints and schedules. In tests it follows
//! tokio's clock, so `tokio::time::pause()` drives backoff schedules
//! deterministically.

use time::OffsetDateTime;

/// Where "now" comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    System,
    /// `start` plus the time elapsed on tokio's clock since `origin`.
    Tokio {
        start: OffsetDateTime,
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's (pausable) time from now on.
    pub fn tokio() -> Self {
        Self::Tokio {
            start: OffsetDateTime::now_utc(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, truncated to microseconds (what the store keeps).
    pub fn now(&self) -> OffsetDateTime {
        let now = match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Tokio { start, origin } => *start + origin.elapsed(),
        };
        let micros = now.microsecond();
        now.replace_microsecond(micros).unwrap_or(now)
    }

    /// How long until `at`, zero when it has passed.
    pub fn until(&self, at: OffsetDateTime) -> std::time::Duration {
        let delta = at - self.now();
        delta.try_into().unwrap_or_default()
    }
}
