//! The periodic in-service sync: one task per enabled source of each tenant, each
//! running a sync every `sync.interval_seconds`, jittered so that instances and sources
//! do not all call out at the same moment. When another instance holds a source's lock
//! the run is skipped: that instance is syncing it.

use std::time::Duration;

use crate::domain::TenantId;
use crate::error::error_chain;

use super::service::{SourceKind, SyncError, SyncService};

/// Starts one task per configured source on the current runtime.
pub fn spawn_periodic_sync(service: SyncService, interval: Duration) {
    for (tenant, source) in service.configured_sources() {
        let service = service.clone();
        tokio::spawn(async move { run_periodically(service, tenant, source, interval).await });
    }
}

async fn run_periodically(
    service: SyncService,
    tenant: TenantId,
    source: SourceKind,
    interval: Duration,
) {
    // The first run comes soon after startup, spread over a quarter of the interval.
    let mut wait = interval.mul_f64(fastrand::f64() / 4.0);
    loop {
        tokio::time::sleep(wait).await;
        match service.sync(&tenant, source, false).await {
            Ok(_) => {}
            Err(SyncError::InProgress(_)) => {
                tracing::debug!(tenant = %tenant, source = source.as_str(), "another instance is syncing this source");
            }
            // `sync` logged the failure with its cause.
            Err(error) => tracing::debug!(error = %error_chain(&error), "periodic sync failed"),
        }
        wait = jittered_interval(interval);
    }
}

/// Returns `interval` give or take a tenth, at random.
pub fn jittered_interval(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jittered_interval_stays_within_a_tenth_of_the_interval() {
        for _ in 0..1_000 {
            let wait = jittered_interval(Duration::from_secs(100));
            assert!(
                wait >= Duration::from_secs(90) && wait <= Duration::from_secs(110),
                "{wait:?}"
            );
        }
    }
}
