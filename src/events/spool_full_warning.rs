//! The warning that the spool is full, at most once per interval.
//!
//! While Redis is down and the spool is full, no event is kept: a suggestion's event is
//! dropped (and counted in `deflect_events_dropped_total`), a `POST /v1/events` answers
//! 503. A warning per request flooded the log with thousands of identical lines a second
//! under load; one line per interval, with the count since the last one, says the same.

use std::time::{Duration, Instant};

/// The warning is logged at most once a minute.
pub const SPOOL_FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Counts the events not kept because the spool is full and decides when to say so.
#[derive(Debug)]
pub struct SpoolFullWarning {
    interval: Duration,
    last_warned_at: Option<Instant>,
    not_kept_since_warning: u64,
}

impl SpoolFullWarning {
    pub fn new(interval: Duration) -> SpoolFullWarning {
        SpoolFullWarning {
            interval,
            last_warned_at: None,
            not_kept_since_warning: 0,
        }
    }

    /// Notes `events` not kept at `now`. Returns how many were not kept since the last
    /// warning (these included) when a warning is due: the first time, and then once
    /// `interval` has passed since the last one.
    pub fn not_kept(&mut self, events: u64, now: Instant) -> Option<u64> {
        self.not_kept_since_warning += events;
        let due = self
            .last_warned_at
            .is_none_or(|warned_at| now.duration_since(warned_at) >= self.interval);
        if !due {
            return None;
        }
        self.last_warned_at = Some(now);
        Some(std::mem::take(&mut self.not_kept_since_warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_events_not_kept_are_reported_at_once() {
        let mut warning = SpoolFullWarning::new(Duration::from_secs(60));

        assert_eq!(warning.not_kept(3, Instant::now()), Some(3));
    }

    #[test]
    fn events_within_the_interval_are_counted_into_the_next_warning() {
        let start = Instant::now();
        let mut warning = SpoolFullWarning::new(Duration::from_secs(60));
        warning.not_kept(1, start);

        let within =
            [10, 20, 59].map(|seconds| warning.not_kept(2, start + Duration::from_secs(seconds)));
        let after = warning.not_kept(1, start + Duration::from_secs(60));

        assert_eq!(within, [None, None, None]);
        assert_eq!(after, Some(7));
    }

    #[test]
    fn the_interval_counts_from_the_last_warning() {
        let start = Instant::now();
        let mut warning = SpoolFullWarning::new(Duration::from_secs(60));
        warning.not_kept(1, start);
        warning.not_kept(1, start + Duration::from_secs(61));

        let before_next_interval = warning.not_kept(1, start + Duration::from_secs(100));
        let after_next_interval = warning.not_kept(1, start + Duration::from_secs(121));

        assert_eq!(before_next_interval, None);
        assert_eq!(after_next_interval, Some(2));
    }
}
