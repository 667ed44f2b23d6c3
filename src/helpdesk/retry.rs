//! How long to wait before trying a failed outbound call again: a jittered exponential
//! backoff, or the server's `Retry-After` when that is longer. The outbox (one attempt
//! per due job) and content sync (attempts of one page in a row) share it, so both
//! treat a rate-limited API alike.

use std::time::Duration;

/// The backoff's shape, from `[webhooks.outbox]` or `[sync]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles with each further one.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Returns the wait after failed attempt `attempt` (1-based): the backoff, or the
    /// server's `asked` wait (capped) when longer.
    pub fn wait_after(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let backoff = jittered_backoff(attempt, self.initial_backoff, self.max_backoff);
        asked
            .map(|asked| asked.min(self.max_retry_after))
            .map_or(backoff, |asked| asked.max(backoff))
    }
}

/// The backoff after attempt `attempt` (1-based): `initial` doubled per attempt, capped
/// at `max`, of which a random half is waited on top of the other half ("equal
/// jitter"), so that retries of many jobs spread out but none comes back at once.
pub fn jittered_backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let ceiling = initial
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(max);
    let half = ceiling / 2;
    let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=half_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_the_cap() {
        let initial = Duration::from_millis(1_000);
        let max = Duration::from_secs(60);
        for (attempt, ceiling_ms) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (7, 60_000),
            (40, 60_000),
        ] {
            for _ in 0..200 {
                let wait = jittered_backoff(attempt, initial, max).as_millis();
                assert!(
                    wait >= ceiling_ms / 2 && wait <= ceiling_ms,
                    "attempt {attempt}: {wait}"
                );
            }
        }
    }

    #[test]
    fn a_longer_retry_after_wins_up_to_its_cap() {
        // Arrange
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        };

        // Act
        let asked_two = policy.wait_after(1, Some(Duration::from_secs(2)));
        let asked_an_hour = policy.wait_after(1, Some(Duration::from_secs(3600)));
        let asked_nothing = policy.wait_after(1, None);

        // Assert
        assert_eq!(asked_two, Duration::from_secs(2));
        assert_eq!(asked_an_hour, Duration::from_secs(5));
        assert!(asked_nothing <= Duration::from_millis(10));
    }
}
