//! The holdout: a fixed share of sessions gets no suggestions, so that their ticket
//! submission rate shows what suggestions actually change.
//!
//! A session's membership is a hash of tenant and session id: stable per session across
//! requests, instances and restarts, with no state to keep.
//!
//! Each tenant may set its own share (`tenants.<id>.holdout_percent`, else
//! `events.holdout_percent`): a tenant with much traffic can measure with a small share,
//! while one with little needs a larger share to learn anything in weeks, and one that
//! cannot afford to withhold help from anyone sets 0.

use sha2::{Digest, Sha256};

use crate::domain::TenantId;

/// Picks the sessions held out.
#[derive(Debug, Clone, Copy)]
pub struct Holdout {
    /// Held-out sessions per 10,000.
    per_ten_thousand: u64,
}

impl Holdout {
    /// `percent` is clamped to 0-100.
    pub fn new(percent: f64) -> Holdout {
        let clamped = if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        Holdout {
            per_ten_thousand: (clamped * 100.0).round() as u64,
        }
    }

    /// Returns whether `session_id` of `tenant` gets no suggestions.
    pub fn is_held_out(&self, tenant: &TenantId, session_id: &str) -> bool {
        if self.per_ten_thousand == 0 {
            return false;
        }
        let digest = Sha256::new()
            .chain_update(tenant.as_str().as_bytes())
            .chain_update([0x1f])
            .chain_update(session_id.as_bytes())
            .finalize();
        let bucket = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % 10_000;
        bucket < self.per_ten_thousand
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_stable_and_near_the_configured_share() {
        let tenant = TenantId::parse("acme").unwrap();
        let holdout = Holdout::new(10.0);
        let held_out = (0..10_000)
            .filter(|number| holdout.is_held_out(&tenant, &format!("session-{number}")))
            .count();
        assert!((800..1200).contains(&held_out), "{held_out}");
        assert_eq!(
            holdout.is_held_out(&tenant, "session-7"),
            holdout.is_held_out(&tenant, "session-7")
        );
        assert!(!Holdout::new(0.0).is_held_out(&tenant, "session-7"));
        assert!(Holdout::new(100.0).is_held_out(&tenant, "session-7"));
    }
}
