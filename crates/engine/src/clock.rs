//! Wall-clock time for checkpoints and schedules, behind one type so tests
//! can drive it: a manual clock moves only when the test says so, which makes
//! backoff schedules exact and deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

/// Where "now" comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// A clock that stands still until [`Clock::advance`] moves it.
    Manual(Arc<Mutex<OffsetDateTime>>),
}

impl Clock {
    /// A manual clock set to the current time.
    pub fn manual() -> Self {
        Self::Manual(Arc::new(Mutex::new(truncate(OffsetDateTime::now_utc()))))
    }

    /// Now, truncated to microseconds (what the store keeps).
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Self::System => truncate(OffsetDateTime::now_utc()),
            Self::Manual(now) => *now.lock().expect("manual clock"),
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(now) = self {
            let mut now = now.lock().expect("manual clock");
            *now = truncate(*now + by);
        }
    }

    /// How long until `at`, zero when it has passed.
    pub fn until(&self, at: OffsetDateTime) -> Duration {
        (at - self.now()).try_into().unwrap_or_default()
    }
}

fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.microsecond() * 1_000)
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now() - start, time::Duration::milliseconds(1_500));
        assert_eq!(
            clock.until(start + Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(clock.until(start), Duration::ZERO);
    }

    #[test]
    fn times_are_whole_microseconds() {
        assert_eq!(Clock::System.now().nanosecond() % 1_000, 0);
    }
}
