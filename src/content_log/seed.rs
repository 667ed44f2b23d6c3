//! Seeding the content log from an instance's index, when the log was lost or never held
//! that index's documents.
//!
//! When Redis loses the log, the documents live on only in the instances' indexes. The
//! first instance to find the log lost (or empty while its index has documents: the log
//! was just turned on) takes a short lock and writes its documents into the snapshot;
//! the others wait and then rebuild from that snapshot, so every instance serves the same
//! content again. Writes made since the loss must win over the older documents of the
//! index, so while the lock is held appends are refused (`SEEDING`, answered as 503
//! `content_log_unavailable`), and the seed, in bounded pages:
//!
//! 1. reads the entries logged after the seeding index's position (the writes since the
//!    loss: everything in a log born after that position);
//! 2. empties the snapshot and writes the index's documents into it;
//! 3. writes those entries' changes over them, in stream order;
//! 4. appends a marker entry and starts the log's new life at it (`born` = `seeded` =
//!    the marker), so every other instance's position is older than the life and makes
//!    it rebuild from the seeded snapshot.
//!
//! The seeding instance then applies the same entries to its own index and follows from
//! the marker. A seed that dies half-way (the lock expires) leaves the life unseeded, and
//! the next instance that finds the log lost seeds it again.

use std::collections::BTreeMap;
use std::time::Duration;

use super::append::{add_change_arguments, encode_changes, split_into_entries};
use super::{ContentLog, ContentLogError, LogEntry};
use crate::content::ContentChange;
use crate::domain::{ContentDocument, TenantId};
use crate::redis_connection::RedisCallError;
use crate::search::LogPosition;
use crate::telemetry::spawn_blocking_in_span;

/// How long the seed lock lives without a page written; every page extends it.
const SEED_LOCK_TIME_TO_LIVE: Duration = Duration::from_secs(30);

/// Extends the seed lock when it is still held with the token (ARGV[1]), by ARGV[2] ms.
const RENEW_SEED_LOCK_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Stops extending the seed lock when dropped.
pub struct SeedLockRenewal(tokio::task::JoinHandle<()>);

impl Drop for SeedLockRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a seed attempt did.
#[derive(Debug)]
pub enum SeedOutcome {
    /// The snapshot holds the index's documents and the changes since `after`; the
    /// seeding index must apply `changes_since` and then stands at `marker`.
    Seeded {
        marker: LogPosition,
        changes_since: Vec<LogEntry>,
    },
    /// Another instance holds the lock, or the log no longer needs a seed.
    NotNeeded,
}

impl ContentLog {
    /// Seeds the log from `documents` (an index's, by tenant) for an index at `after`
    /// (`START` for none), when `still_needed` says the log's life, read again under the
    /// lock, still needs it.
    #[tracing::instrument(name = "seed content log", skip_all)]
    pub async fn seed(
        &self,
        documents: BTreeMap<TenantId, Vec<ContentDocument>>,
        after: LogPosition,
        still_needed: impl Fn(&super::life::LogLife) -> bool,
    ) -> Result<SeedOutcome, ContentLogError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        if !self.take_seed_lock(&token).await? {
            return Ok(SeedOutcome::NotNeeded);
        }
        let renewal = self.keep_seed_lock_alive(&token, SEED_LOCK_TIME_TO_LIVE);
        let seeded = self
            .seed_under_lock(&token, documents, after, still_needed)
            .await;
        drop(renewal);
        if !matches!(seeded, Ok(SeedOutcome::Seeded { .. })) {
            // Best effort: an unreleased lock expires by itself.
            let _ = self.release_seed_lock(&token).await;
        }
        seeded
    }

    async fn seed_under_lock(
        &self,
        token: &str,
        documents: BTreeMap<TenantId, Vec<ContentDocument>>,
        after: LogPosition,
        still_needed: impl Fn(&super::life::LogLife) -> bool,
    ) -> Result<SeedOutcome, ContentLogError> {
        if !still_needed(&self.life().await?) {
            return Ok(SeedOutcome::NotNeeded);
        }
        let changes_since = self.entries_after(after).await?;
        self.clear_snapshot(token).await?;
        for (tenant, tenant_documents) in documents {
            let changes: Vec<ContentChange> = tenant_documents
                .into_iter()
                .map(ContentChange::Upsert)
                .collect();
            self.write_seed_pages(token, &tenant, changes).await?;
        }
        for entry in &changes_since {
            self.write_seed_pages(token, &entry.tenant, entry.changes.clone())
                .await?;
        }
        let mut invocation = self.scripts.seed_finish.prepare_invoke();
        invocation
            .key(self.keys.changes())
            .key(self.keys.life())
            .key(self.keys.seed_lock())
            .arg(token)
            .arg(self.settings.stream_max_len);
        let id: String = self.invoke_seed_script(&invocation).await?;
        let marker = LogPosition::parse(&id).ok_or_else(|| ContentLogError::Unreadable {
            position: id.clone(),
            reason: "not a stream id".to_owned(),
        })?;
        self.metrics
            .seeded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SeedOutcome::Seeded {
            marker,
            changes_since,
        })
    }

    /// Returns every readable entry after `position`.
    async fn entries_after(&self, position: LogPosition) -> Result<Vec<LogEntry>, ContentLogError> {
        let mut entries = Vec::new();
        let mut reached = position;
        loop {
            let read = self.read_after(reached, false).await?;
            let Some(last_position) = read.last_position else {
                return Ok(entries);
            };
            entries.extend(read.entries);
            reached = last_position;
        }
    }

    /// Extends the seed lock held with `token` every third of its time to live until
    /// the returned guard is dropped, so that a seed whose preparation (reading the
    /// entries since the loss, encoding a large tenant) outlasts one time to live does
    /// not lose its lock, fail and start over for ever. A lock taken by another token is
    /// left alone (the seed's scripts then fail with [`ContentLogError::SeedLockLost`]).
    /// (Public, with the time to live as a parameter, for a test that cannot wait 30 s.)
    pub fn keep_seed_lock_alive(&self, token: &str, time_to_live: Duration) -> SeedLockRenewal {
        let log = self.clone();
        let token = token.to_owned();
        SeedLockRenewal(tokio::spawn(async move {
            let renew = redis::Script::new(RENEW_SEED_LOCK_SCRIPT);
            loop {
                tokio::time::sleep(time_to_live / 3).await;
                let mut invocation = renew.prepare_invoke();
                invocation
                    .key(log.keys.seed_lock())
                    .arg(&token)
                    .arg(time_to_live.as_millis() as u64);
                match log.redis.invoke::<i64>(&invocation).await {
                    Ok(1) => {}
                    Ok(_) => return,
                    Err(error) => {
                        tracing::warn!(%error, "failed to extend the seed lock; retrying");
                    }
                }
            }
        }))
    }

    async fn take_seed_lock(&self, token: &str) -> Result<bool, ContentLogError> {
        let (taken,): (Option<String>,) = self
            .redis
            .query(
                redis::pipe()
                    .cmd("SET")
                    .arg(self.keys.seed_lock())
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(SEED_LOCK_TIME_TO_LIVE.as_millis() as u64),
            )
            .await?;
        Ok(taken.is_some())
    }

    async fn release_seed_lock(&self, token: &str) -> Result<(), ContentLogError> {
        let mut invocation = self.scripts.seed_release.prepare_invoke();
        invocation.key(self.keys.seed_lock()).arg(token);
        let _: i64 = self.redis.invoke(&invocation).await?;
        Ok(())
    }

    /// Empties every tenant's snapshot (appends are held off by the lock, so the set of
    /// tenants cannot change meanwhile).
    async fn clear_snapshot(&self, token: &str) -> Result<(), ContentLogError> {
        let mut invocation = self.scripts.seed_clear.prepare_invoke();
        invocation
            .key(self.keys.tenants())
            .key(self.keys.seed_lock())
            .arg(token);
        for tenant in self.tenants().await? {
            invocation.key(self.keys.documents(&tenant));
        }
        let _: i64 = self.invoke_seed_script(&invocation).await?;
        Ok(())
    }

    /// Writes `changes` of `tenant` into the snapshot in pages of the entry bounds.
    async fn write_seed_pages(
        &self,
        token: &str,
        tenant: &TenantId,
        changes: Vec<ContentChange>,
    ) -> Result<(), ContentLogError> {
        // Serializing a tenant's whole catalog is blocking work.
        let encoded = spawn_blocking_in_span(move || encode_changes(&changes)).await?;
        for page in split_into_entries(self, &encoded) {
            let mut invocation = self.scripts.seed_page.prepare_invoke();
            invocation
                .key(self.keys.tenants())
                .key(self.keys.documents(tenant))
                .key(self.keys.seed_lock())
                .arg(token)
                .arg(SEED_LOCK_TIME_TO_LIVE.as_millis() as u64)
                .arg(tenant.as_str());
            add_change_arguments(&mut invocation, page);
            let _: i64 = self.invoke_seed_script(&invocation).await?;
        }
        Ok(())
    }

    /// Runs one of the seed's scripts, which all check the lock's token first.
    async fn invoke_seed_script<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, ContentLogError> {
        self.redis.invoke(invocation).await.map_err(seed_call_error)
    }
}

/// Tells a lost seed lock from other failures.
fn seed_call_error(error: RedisCallError) -> ContentLogError {
    if error.server_code() == Some("SEED_LOCK_LOST") {
        ContentLogError::SeedLockLost
    } else {
        ContentLogError::Unavailable(error)
    }
}
