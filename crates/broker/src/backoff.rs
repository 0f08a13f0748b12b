//! Exponential backoff with jitter between reconnection attempts.

use std::time::Duration;

use rand::Rng;

/// Waits that double from `initial` up to `max`; each is drawn from its
/// upper half ("equal jitter"), so processes that lost RabbitMQ together do
/// not come back in lockstep, and no wait is shorter than half the nominal one.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    nominal: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            nominal: initial,
        }
    }

    /// The next wait; the one after it is twice as long, up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal;
        self.nominal = (nominal * 2).min(self.max);
        let half = nominal / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::thread_rng().gen_range(0..=jitter_nanos))
    }

    /// Back to `initial`, after a connection that stayed up.
    pub(crate) fn reset(&mut self) {
        self.nominal = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(700));
        for nominal in [100, 200, 400, 700, 700] {
            let delay = backoff.next_delay();
            assert!(
                delay >= ms(nominal) / 2 && delay <= ms(nominal),
                "{delay:?} for {nominal}ms"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= ms(100));
    }
}
