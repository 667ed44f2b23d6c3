//! The content log: the shared source of truth of every instance's index.
//!
//! A content write is appended here first (one script per entry: the tenant's snapshot
//! hash and the stream of changes together), then applied to the local index. Every
//! instance follows the stream ([`follower`]) and applies every entry, its own included,
//! in stream order, recording the position in its index's commit; applying is idempotent
//! (upsert or delete by key), so applying an entry twice changes nothing. A write of many
//! changes is appended as several bounded entries ([`append`]), so no script call or
//! stream entry grows with the size of a bulk upload or a sync run.
//!
//! A position only means something in the log's current life ([`life`]): when Redis
//! loses the log (a restart without persistence, a flush, an older backup restored), an
//! instance whose index holds documents seeds the log from them ([`seed`]) and the others
//! rebuild from the seeded snapshot. An instance without a usable position (a new one, a
//! rebuilt index, or one whose position the trimmed stream no longer reaches) rebuilds
//! from the snapshot: it notes the stream's last id first, reads the hashes, then follows
//! from that id, so nothing written during the read is missed. Keys: `events/keys.rs`,
//! [`ContentLogKeys`].

mod append;
pub mod follower;
pub mod life;
pub mod seed;
mod snapshot;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::configuration::ContentLogSettings;
use crate::content::ContentChange;
use crate::domain::{ContentDocument, ContentId, TenantId};
use crate::events::keys::{ContentLogKeys, KeySpace};
use crate::redis_connection::{AsyncRedis, RedisCallError};
use crate::search::LogPosition;
use crate::telemetry::spawn_blocking_in_span;

/// The most bytes of entries one read of the stream asks for.
const READ_BYTE_BUDGET: usize = 32 * 1024 * 1024;

/// Documents read from the snapshot per call.
const SNAPSHOT_PAGE_DOCUMENTS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ContentLogError {
    #[error("the content log in redis is unavailable")]
    Unavailable(#[from] RedisCallError),
    /// An entry of an append certainly did not run (Redis was not reached, refused the
    /// connection or answered with an error); the entries before it stand.
    #[error("failed to append to the content log: entry {} of {entries} was not written ({appended_entries} before it were)", appended_entries + 1)]
    AppendNotWritten {
        appended_entries: usize,
        entries: usize,
        #[source]
        source: RedisCallError,
    },
    /// An entry of an append was sent but no answer came: it may have run. The entries
    /// before it stand.
    #[error("redis did not answer an append to the content log: entry {} of {entries} may or may not be written ({appended_entries} before it were)", appended_entries + 1)]
    AppendUnanswered {
        appended_entries: usize,
        entries: usize,
        #[source]
        source: RedisCallError,
    },
    #[error("the content log holds an unreadable entry {position}: {reason}")]
    Unreadable { position: String, reason: String },
    #[error("another instance is seeding the content log from its index")]
    SeedInProgress,
    #[error("the seed lock expired or was taken before the seed finished")]
    SeedLockLost,
    #[error("the content log needs redis 7.0 or later (XINFO STREAM reports no entries-added, so trimming cannot be detected)")]
    RedisTooOld,
    #[error("a blocking task decoding the content log failed")]
    Decoding(#[from] tokio::task::JoinError),
}

/// Counters of the content log for `/metrics`.
#[derive(Debug, Default)]
pub struct ContentLogMetrics {
    /// Times this instance found the log lost (flushed, restarted empty, replaced).
    pub lost: AtomicU64,
    /// Seeds of the log this instance wrote from its index.
    pub seeded: AtomicU64,
}

/// One entry of changes of one tenant, as the stream holds it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub position: LogPosition,
    pub tenant: TenantId,
    pub changes: Vec<ContentChange>,
}

/// What one read of the stream returned.
#[derive(Debug, Default)]
pub struct LogRead {
    pub entries: Vec<LogEntry>,
    /// The position of the last entry read, skipped ones included; `None` when the read
    /// found nothing.
    pub last_position: Option<LogPosition>,
    /// Entries the read returned, skipped ones included: a read of
    /// `follow_batch_entries` means more may be waiting.
    pub entries_read: usize,
}

/// A change as it is written to the stream.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum LoggedChange {
    Upsert { document: Box<ContentDocument> },
    Delete { id: String },
}

/// One page of a tenant's snapshot.
pub struct SnapshotPage {
    pub documents: Vec<ContentDocument>,
    /// `None` after the last page.
    pub next_cursor: Option<u64>,
}

/// The scripts of the content log, loaded into Redis on first use.
struct Scripts {
    append: redis::Script,
    life: redis::Script,
    seed_clear: redis::Script,
    seed_page: redis::Script,
    seed_finish: redis::Script,
    seed_release: redis::Script,
}

/// A cheap, cloneable client of the content log.
#[derive(Clone)]
pub struct ContentLog {
    /// Appends and snapshot reads.
    redis: AsyncRedis,
    /// Blocking reads of the follower, on a connection of their own (a blocked read
    /// holds up every other command on its connection).
    follow_redis: AsyncRedis,
    keys: ContentLogKeys,
    scripts: Arc<Scripts>,
    settings: ContentLogSettings,
    metrics: Arc<ContentLogMetrics>,
}

impl ContentLog {
    pub fn new(url: &SecretString, key_space: &KeySpace, settings: &ContentLogSettings) -> Self {
        let timeout = Duration::from_millis(settings.redis_timeout_ms.max(1));
        let follow_timeout = timeout + Duration::from_millis(settings.follow_block_ms);
        ContentLog {
            redis: AsyncRedis::new(url, timeout, "content log"),
            follow_redis: AsyncRedis::new(url, follow_timeout, "content log follower"),
            keys: key_space.content_log(),
            scripts: Arc::new(Scripts {
                append: redis::Script::new(include_str!("append.lua")),
                life: redis::Script::new(include_str!("life.lua")),
                seed_clear: redis::Script::new(include_str!("seed_clear.lua")),
                seed_page: redis::Script::new(include_str!("seed_page.lua")),
                seed_finish: redis::Script::new(include_str!("seed_finish.lua")),
                // Releases the seed lock only for its holder.
                seed_release: redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1",
                ),
            }),
            settings: settings.clone(),
            metrics: Default::default(),
        }
    }

    pub fn settings(&self) -> &ContentLogSettings {
        &self.settings
    }

    pub fn metrics(&self) -> &Arc<ContentLogMetrics> {
        &self.metrics
    }

    /// Returns the position of the stream's last entry (`START` for an empty stream),
    /// from the stream's last generated id (never reading the entry itself).
    pub async fn head(&self) -> Result<LogPosition, ContentLogError> {
        Ok(self.life().await?.head())
    }

    /// Reads up to `follow_batch_entries` entries after `position`, waiting up to
    /// `follow_block_ms` for the first when `wait` is set. An entry this build cannot
    /// read is logged and skipped (a follower stuck on it would stop every instance).
    pub async fn read_after(
        &self,
        position: LogPosition,
        wait: bool,
    ) -> Result<LogRead, ContentLogError> {
        let mut command = redis::cmd("XREAD");
        command.arg("COUNT").arg(self.entries_per_read());
        if wait {
            command
                .arg("BLOCK")
                .arg(self.settings.follow_block_ms.max(1));
        }
        command
            .arg("STREAMS")
            .arg(self.keys.changes())
            .arg(position.to_string());
        let connection = if wait {
            &self.follow_redis
        } else {
            &self.redis
        };
        let reply: Option<redis::streams::StreamReadReply> = connection
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await?;
        // Decoding up to a read's byte budget of JSON is blocking work.
        Ok(spawn_blocking_in_span(move || decode_read(reply)).await?)
    }

    /// Returns how many entries one read asks for: `follow_batch_entries`, fewer when
    /// that many entries of `max_entry_bytes` would exceed [`READ_BYTE_BUDGET`] (a reply
    /// that cannot arrive within the read's timeout would stall the follower for good).
    pub fn entries_per_read(&self) -> usize {
        let fitting = READ_BYTE_BUDGET / self.settings.max_entry_bytes.max(1);
        self.settings.follow_batch_entries.min(fitting).max(1)
    }

    /// Returns the tenants that have content in the snapshot.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, ContentLogError> {
        let (names,): (Vec<String>,) = self
            .redis
            .query(redis::pipe().cmd("SMEMBERS").arg(self.keys.tenants()))
            .await?;
        Ok(names
            .iter()
            .filter_map(|name| TenantId::parse(name).ok())
            .collect())
    }

    /// Reads one page of `tenant`'s snapshot from `cursor` (0 for the first page).
    pub async fn snapshot_page(
        &self,
        tenant: &TenantId,
        cursor: u64,
    ) -> Result<SnapshotPage, ContentLogError> {
        let (next_cursor, fields): (u64, Vec<String>) = self
            .redis
            .run(|mut connection| {
                let mut command = redis::cmd("HSCAN");
                command
                    .arg(self.keys.documents(tenant))
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SNAPSHOT_PAGE_DOCUMENTS);
                async move { command.query_async(&mut connection).await }
            })
            .await?;
        let documents = parse_snapshot_page(tenant, fields, |_| true).await?;
        Ok(SnapshotPage {
            documents,
            next_cursor: (next_cursor != 0).then_some(next_cursor),
        })
    }
}

/// Parses a stream entry; `None` for a seed marker, which changes nothing.
/// Decodes the entries of one read; an entry this build cannot read is logged and
/// skipped (a follower stuck on it would stop every instance).
fn decode_read(reply: Option<redis::streams::StreamReadReply>) -> LogRead {
    let mut read = LogRead::default();
    for stream in reply.map(|reply| reply.keys).unwrap_or_default() {
        for entry in stream.ids {
            read.entries_read += 1;
            match parse_entry(&entry) {
                Ok(Some(parsed)) => {
                    read.last_position = Some(parsed.position);
                    read.entries.push(parsed);
                }
                Ok(None) => {
                    read.last_position = LogPosition::parse(&entry.id).or(read.last_position);
                }
                Err(error) => {
                    tracing::error!(%error, "skipping an unreadable content log entry");
                    read.last_position = LogPosition::parse(&entry.id).or(read.last_position);
                }
            }
        }
    }
    read
}

/// Parses one page of a tenant's snapshot hash (id, JSON, id, JSON ...) on a blocking
/// thread, keeping the documents whose id `keep` accepts. A document this build cannot
/// read is logged and skipped, as an unreadable stream entry is: failing the page would
/// stop every rebuild and every sync of the tenant.
pub(crate) async fn parse_snapshot_page(
    tenant: &TenantId,
    fields: Vec<String>,
    keep: impl Fn(&str) -> bool + Send + 'static,
) -> Result<Vec<ContentDocument>, ContentLogError> {
    let tenant = tenant.clone();
    let documents = spawn_blocking_in_span(move || {
        let mut documents = Vec::with_capacity(fields.len() / 2);
        for pair in fields.chunks(2) {
            let [id, json] = pair else { continue };
            if !keep(id) {
                continue;
            }
            match serde_json::from_str::<ContentDocument>(json) {
                Ok(document) => documents.push(document),
                Err(error) => {
                    tracing::error!(%tenant, id, %error, "skipping an unreadable document of the content log's snapshot");
                }
            }
        }
        documents
    })
    .await?;
    Ok(documents)
}

fn parse_entry(entry: &redis::streams::StreamId) -> Result<Option<LogEntry>, ContentLogError> {
    let unreadable = |reason: &str| ContentLogError::Unreadable {
        position: entry.id.clone(),
        reason: reason.to_owned(),
    };
    let position = LogPosition::parse(&entry.id).ok_or_else(|| unreadable("not a stream id"))?;
    if entry.contains_key("seeded") {
        return Ok(None);
    }
    let tenant: String = entry.get("tenant").ok_or_else(|| unreadable("no tenant"))?;
    let tenant = TenantId::parse(&tenant).map_err(|reason| unreadable(&reason))?;
    let changes: String = entry
        .get("changes")
        .ok_or_else(|| unreadable("no changes"))?;
    let logged: Vec<LoggedChange> =
        serde_json::from_str(&changes).map_err(|error| unreadable(&error.to_string()))?;
    let mut parsed = Vec::with_capacity(logged.len());
    for change in logged {
        parsed.push(match change {
            LoggedChange::Upsert { document } => ContentChange::Upsert(*document),
            LoggedChange::Delete { id } => {
                ContentChange::Delete(ContentId::parse(&id).map_err(|reason| unreadable(&reason))?)
            }
        });
    }
    Ok(Some(LogEntry {
        position,
        tenant,
        changes: parsed,
    }))
}
