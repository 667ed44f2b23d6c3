//! Where each source's sync stands, kept in Redis so that every instance (and the CLI)
//! continues from the same place: the cursor the next incremental run starts from, and
//! a lock so that only one instance syncs a tenant's source at a time.
//!
//! The cursor is written only after the index commit of the run that read up to it: a
//! run that fails anywhere leaves the next one to start from the old cursor.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::TenantId;
use crate::events::keys::{KeySpace, SyncKeys};
use crate::redis_connection::{AsyncRedis, RedisCallError};

/// Deletes the lock only when it still holds this run's token (an expired lock taken
/// over by another instance is not released by the first).
static RELEASE_LOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// What the last successful run of a source left for the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedCursor {
    /// Where the next incremental run starts (a unix time for Zendesk, an RFC 3339 time
    /// for the catalog feed); `None` before the first run.
    pub cursor: Option<String>,
    /// The catalog feed's `ETag` of the last first page read.
    pub etag: Option<String>,
    /// Unix seconds of the last full listing.
    pub full_at: Option<i64>,
}

/// Whether a run lists everything the source has or only what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Everything the source has: what it no longer has is removed.
    Full,
    /// What changed since the cursor.
    Incremental,
}

impl SavedCursor {
    /// Returns the mode of the next run: full when asked for, before the first full run
    /// and when the last one is `full_interval_seconds` old; incremental otherwise.
    pub fn next_mode(&self, now: i64, full_interval_seconds: u64, force_full: bool) -> SyncMode {
        let full_is_due = match self.full_at {
            None => true,
            Some(full_at) => {
                now.saturating_sub(full_at)
                    >= i64::try_from(full_interval_seconds).unwrap_or(i64::MAX)
            }
        };
        if force_full || full_is_due || self.cursor.is_none() {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        }
    }

    fn from_fields(mut fields: HashMap<String, String>) -> SavedCursor {
        SavedCursor {
            cursor: fields.remove("cursor"),
            etag: fields.remove("etag"),
            full_at: fields.remove("full_at").and_then(|raw| raw.parse().ok()),
        }
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(cursor) = &self.cursor {
            fields.push(("cursor", cursor.clone()));
        }
        if let Some(etag) = &self.etag {
            fields.push(("etag", etag.clone()));
        }
        if let Some(full_at) = self.full_at {
            fields.push(("full_at", full_at.to_string()));
        }
        fields
    }
}

/// A held lock. [`SyncLock::release`] gives it back; a lock dropped without that (a
/// run cancelled or panicking midway) is given back by a task spawned on drop, so a
/// failed run does not keep every instance from syncing the source for the whole lease.
pub struct SyncLock {
    key: String,
    token: String,
    redis: AsyncRedis,
    released: bool,
}

impl SyncLock {
    /// Gives the lock back (a failure only logs: the lease ends it anyway).
    pub async fn release(mut self) {
        release_lock(&self.redis, &self.key, &self.token).await;
        // Only now: a release cut off midway is retried on drop.
        self.released = true;
    }
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (redis, key, token) = (self.redis.clone(), self.key.clone(), self.token.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::warn!("a sync run ended without releasing its lock; releasing it now");
                runtime.spawn(async move { release_lock(&redis, &key, &token).await });
            }
            Err(_) => tracing::warn!(
                "a sync lock was dropped outside the async runtime; it ends with its lease"
            ),
        }
    }
}

/// Deletes the lock `key` when it still holds `token`.
async fn release_lock(redis: &AsyncRedis, key: &str, token: &str) {
    let mut invocation = RELEASE_LOCK.key(key);
    invocation.arg(token);
    if let Err(error) = redis.invoke::<i64>(&invocation).await {
        tracing::warn!(error = %crate::error::error_chain(&error), "failed to release a sync lock; it ends with its lease");
    }
}

/// The Redis side of sync.
#[derive(Clone)]
pub struct SyncState {
    redis: AsyncRedis,
    keys: Arc<KeySpace>,
    lock_lease: Duration,
}

impl SyncState {
    pub fn new(
        url: &SecretString,
        keys: KeySpace,
        timeout: Duration,
        lock_lease: Duration,
    ) -> SyncState {
        SyncState {
            redis: AsyncRedis::new(url, timeout, "content sync"),
            keys: Arc::new(keys),
            lock_lease,
        }
    }

    fn keys(&self, tenant: &TenantId, source: &str) -> SyncKeys {
        self.keys.tenant(tenant).sync(source)
    }

    pub async fn read_cursor(
        &self,
        tenant: &TenantId,
        source: &str,
    ) -> Result<SavedCursor, RedisCallError> {
        let key = self.keys(tenant, source).cursor();
        let fields: HashMap<String, String> = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(SavedCursor::from_fields(fields))
    }

    /// Replaces the saved cursor with `cursor`, atomically.
    pub async fn write_cursor(
        &self,
        tenant: &TenantId,
        source: &str,
        cursor: &SavedCursor,
    ) -> Result<(), RedisCallError> {
        let key = self.keys(tenant, source).cursor();
        let mut pipeline = redis::pipe();
        pipeline.atomic().del(&key).ignore();
        let fields = cursor.to_fields();
        if !fields.is_empty() {
            pipeline.hset_multiple(&key, &fields).ignore();
        }
        self.redis.query::<()>(&pipeline).await
    }

    /// Takes the lock of `source` of `tenant` for the lease; `None` when another run
    /// holds it.
    pub async fn try_lock(
        &self,
        tenant: &TenantId,
        source: &str,
    ) -> Result<Option<SyncLock>, RedisCallError> {
        let key = self.keys(tenant, source).lock();
        let token = uuid::Uuid::new_v4().to_string();
        let lease_ms = u64::try_from(self.lock_lease.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (lock_key, lock_token) = (key.clone(), token.clone());
        let taken: Option<String> = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(&lock_key)
                    .arg(&lock_token)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease_ms)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(taken.map(|_| SyncLock {
            key,
            token,
            redis: self.redis.clone(),
            released: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(cursor: Option<&str>, full_at: Option<i64>) -> SavedCursor {
        SavedCursor {
            cursor: cursor.map(str::to_owned),
            etag: None,
            full_at,
        }
    }

    #[test]
    fn the_first_run_and_a_run_after_the_full_interval_list_everything() {
        assert_eq!(
            saved(None, None).next_mode(1_000, 3_600, false),
            SyncMode::Full
        );
        assert_eq!(
            saved(Some("900"), Some(1_000)).next_mode(4_600, 3_600, false),
            SyncMode::Full
        );
        assert_eq!(
            saved(Some("900"), None).next_mode(1_000, 3_600, false),
            SyncMode::Full
        );
    }

    #[test]
    fn a_run_within_the_full_interval_continues_from_the_cursor_unless_forced() {
        let recent = saved(Some("900"), Some(1_000));
        assert_eq!(recent.next_mode(4_599, 3_600, false), SyncMode::Incremental);
        assert_eq!(recent.next_mode(4_599, 3_600, true), SyncMode::Full);
    }

    #[test]
    fn a_cursor_survives_its_round_trip_through_hash_fields() {
        // Arrange
        let cursor = SavedCursor {
            cursor: Some("1700000000".to_owned()),
            etag: Some("\"v7\"".to_owned()),
            full_at: Some(1_700_000_100),
        };

        // Act
        let fields: HashMap<String, String> = cursor
            .to_fields()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();

        // Assert
        assert_eq!(SavedCursor::from_fields(fields), cursor);
    }
}
