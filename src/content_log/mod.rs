//! The content log: the shared source of truth of every instance's index.
//!
//! A content write is appended here first (one script: the tenant's snapshot hash and
//! the stream of changes together), then applied to the local index. Every instance
//! follows the stream ([`follower`]) and applies every batch, its own included, in
//! stream order, recording the position in its index's commit; applying is idempotent
//! (upsert or delete by key), so applying a batch twice changes nothing. An instance
//! without a usable position (a new one, a rebuilt index, or one whose position the
//! trimmed stream no longer reaches) rebuilds from the snapshot: it notes the stream's
//! last id first, reads the hashes, then follows from that id, so nothing written during
//! the read is missed. Keys: `events/keys.rs`, [`ContentLogKeys`].

pub mod follower;
mod snapshot;

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::configuration::ContentLogSettings;
use crate::content::ContentChange;
use crate::domain::{ContentDocument, ContentId, TenantId};
use crate::events::keys::{ContentLogKeys, KeySpace};
use crate::redis_connection::{AsyncRedis, RedisCallError};
use crate::search::LogPosition;

const APPEND_SCRIPT: &str = include_str!("append.lua");

/// Documents read from the snapshot per call.
const SNAPSHOT_PAGE_DOCUMENTS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ContentLogError {
    #[error("the content log in redis is unavailable")]
    Unavailable(#[from] RedisCallError),
    #[error("the content log holds an unreadable entry {position}: {reason}")]
    Unreadable { position: String, reason: String },
}

/// One batch of changes of one tenant, as the stream holds it.
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

/// A cheap, cloneable client of the content log.
#[derive(Clone)]
pub struct ContentLog {
    /// Appends and snapshot reads.
    redis: AsyncRedis,
    /// Blocking reads of the follower, on a connection of their own (a blocked read
    /// holds up every other command on its connection).
    follow_redis: AsyncRedis,
    keys: ContentLogKeys,
    append_script: std::sync::Arc<redis::Script>,
    settings: ContentLogSettings,
}

impl ContentLog {
    pub fn new(url: &SecretString, key_space: &KeySpace, settings: &ContentLogSettings) -> Self {
        let timeout = Duration::from_millis(settings.redis_timeout_ms.max(1));
        let follow_timeout = timeout + Duration::from_millis(settings.follow_block_ms);
        ContentLog {
            redis: AsyncRedis::new(url, timeout, "content log"),
            follow_redis: AsyncRedis::new(url, follow_timeout, "content log follower"),
            keys: key_space.content_log(),
            append_script: std::sync::Arc::new(redis::Script::new(APPEND_SCRIPT)),
            settings: settings.clone(),
        }
    }

    pub fn settings(&self) -> &ContentLogSettings {
        &self.settings
    }

    /// Appends `changes` of `tenant` to the snapshot and the stream atomically and
    /// returns the stream position of the batch.
    #[tracing::instrument(name = "append content changes", skip_all, fields(tenant = %tenant, changes = changes.len()))]
    pub async fn append(
        &self,
        tenant: &TenantId,
        changes: &[ContentChange],
    ) -> Result<LogPosition, ContentLogError> {
        let mut logged = Vec::with_capacity(changes.len());
        let mut invocation = self.append_script.prepare_invoke();
        invocation
            .key(self.keys.changes())
            .key(self.keys.tenants())
            .key(self.keys.documents(tenant))
            .arg(self.settings.stream_max_len)
            .arg(tenant.as_str());
        let mut change_arguments: Vec<(&str, String, String)> = Vec::new();
        for change in changes {
            match change {
                ContentChange::Upsert(document) => {
                    let json = serde_json::to_string(document).expect("a document serializes");
                    change_arguments.push(("upsert", document.id.clone(), json));
                    logged.push(LoggedChange::Upsert {
                        document: Box::new(document.clone()),
                    });
                }
                ContentChange::Delete(id) => {
                    change_arguments.push(("delete", id.as_str().to_owned(), String::new()));
                    logged.push(LoggedChange::Delete {
                        id: id.as_str().to_owned(),
                    });
                }
            }
        }
        invocation.arg(serde_json::to_string(&logged).expect("changes serialize"));
        for (op, id, json) in &change_arguments {
            invocation.arg(*op).arg(id).arg(json);
        }
        let id: String = self.redis.invoke(&invocation).await?;
        LogPosition::parse(&id).ok_or_else(|| ContentLogError::Unreadable {
            position: id,
            reason: "not a stream id".to_owned(),
        })
    }

    /// Returns the position of the stream's last entry (`START` for an empty stream).
    pub async fn head(&self) -> Result<LogPosition, ContentLogError> {
        let newest: redis::streams::StreamRangeReply = self
            .redis
            .query(
                redis::pipe()
                    .cmd("XREVRANGE")
                    .arg(self.keys.changes())
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await
            .map(|(reply,): (redis::streams::StreamRangeReply,)| reply)?;
        Ok(newest
            .ids
            .first()
            .and_then(|entry| LogPosition::parse(&entry.id))
            .unwrap_or(LogPosition::START))
    }

    /// Returns whether the log has ever been written (a stream or a snapshot exists).
    pub async fn is_empty(&self) -> Result<bool, ContentLogError> {
        let (existing,): (u64,) = self
            .redis
            .query(
                redis::pipe()
                    .cmd("EXISTS")
                    .arg(self.keys.changes())
                    .arg(self.keys.tenants()),
            )
            .await?;
        Ok(existing == 0)
    }

    /// Returns whether entries after `position` were trimmed away, so following from
    /// there would miss changes (Redis 7's `XINFO STREAM` fields).
    pub async fn has_trimmed_after(&self, position: LogPosition) -> Result<bool, ContentLogError> {
        let exists: (u64,) = self
            .redis
            .query(redis::pipe().cmd("EXISTS").arg(self.keys.changes()))
            .await?;
        if exists.0 == 0 {
            return Ok(false);
        }
        let info: redis::Value = self
            .redis
            .run(|mut connection| {
                let mut command = redis::cmd("XINFO");
                command.arg("STREAM").arg(self.keys.changes());
                async move { command.query_async(&mut connection).await }
            })
            .await?;
        let fields = info_fields(info);
        // Trimming does not move `max-deleted-entry-id` (only XDEL does), so: entries
        // were removed, and the oldest left is newer than the position. (When the
        // position is exactly the last removed entry this rebuilds without need; a
        // follower that keeps up is never behind the oldest entry.)
        let text = |field: &str| match fields.get(field) {
            Some(redis::Value::BulkString(bytes)) => String::from_utf8(bytes.clone()).ok(),
            Some(redis::Value::SimpleString(text)) => Some(text.clone()),
            Some(redis::Value::Int(number)) => Some(number.to_string()),
            _ => None,
        };
        let number = |field: &str| text(field).and_then(|value| value.parse::<u64>().ok());
        let (Some(added), Some(length)) = (number("entries-added"), number("length")) else {
            return Ok(false);
        };
        let oldest_left = text("recorded-first-entry-id").and_then(|id| LogPosition::parse(&id));
        Ok(added > length && oldest_left.is_some_and(|oldest| oldest > position))
    }

    /// Reads up to `follow_batch_entries` batches after `position`, waiting up to
    /// `follow_block_ms` for the first when `wait` is set. An entry this build cannot
    /// read is logged and skipped (a follower stuck on it would stop every instance).
    pub async fn read_after(
        &self,
        position: LogPosition,
        wait: bool,
    ) -> Result<LogRead, ContentLogError> {
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(self.settings.follow_batch_entries.max(1));
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
        let mut read = LogRead::default();
        for stream in reply.map(|reply| reply.keys).unwrap_or_default() {
            for entry in stream.ids {
                match parse_entry(&entry) {
                    Ok(parsed) => {
                        read.last_position = Some(parsed.position);
                        read.entries.push(parsed);
                    }
                    Err(error) => {
                        tracing::error!(%error, "skipping an unreadable content log entry");
                        read.last_position = LogPosition::parse(&entry.id).or(read.last_position);
                    }
                }
            }
        }
        Ok(read)
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
        let mut documents = Vec::with_capacity(fields.len() / 2);
        for pair in fields.chunks(2) {
            let [id, json] = pair else { continue };
            let document = serde_json::from_str::<ContentDocument>(json).map_err(|error| {
                ContentLogError::Unreadable {
                    position: format!("snapshot of {tenant}, id {id}"),
                    reason: error.to_string(),
                }
            })?;
            documents.push(document);
        }
        Ok(SnapshotPage {
            documents,
            next_cursor: (next_cursor != 0).then_some(next_cursor),
        })
    }
}

/// Returns the fields of an `XINFO STREAM` answer (a map in RESP3, a flat list of
/// names and values in RESP2).
fn info_fields(info: redis::Value) -> HashMap<String, redis::Value> {
    let name_of = |name: redis::Value| match name {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::SimpleString(text) => Some(text),
        _ => None,
    };
    let mut fields = HashMap::new();
    match info {
        redis::Value::Map(pairs) => {
            for (name, value) in pairs {
                if let Some(name) = name_of(name) {
                    fields.insert(name, value);
                }
            }
        }
        redis::Value::Array(items) => {
            let mut items = items.into_iter();
            while let (Some(name), Some(value)) = (items.next(), items.next()) {
                if let Some(name) = name_of(name) {
                    fields.insert(name, value);
                }
            }
        }
        _ => {}
    }
    fields
}

fn parse_entry(entry: &redis::streams::StreamId) -> Result<LogEntry, ContentLogError> {
    let unreadable = |reason: &str| ContentLogError::Unreadable {
        position: entry.id.clone(),
        reason: reason.to_owned(),
    };
    let position = LogPosition::parse(&entry.id).ok_or_else(|| unreadable("not a stream id"))?;
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
    Ok(LogEntry {
        position,
        tenant,
        changes: parsed,
    })
}
