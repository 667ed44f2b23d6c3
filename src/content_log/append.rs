//! Appending a write to the content log in bounded entries.
//!
//! One write (a `PUT`, a bulk upload, a whole sync run) may hold any number of changes.
//! Appending it as one stream entry would make one script call and one entry of that size:
//! Redis runs scripts one at a time, so a call of a few hundred megabytes stalls every
//! other client, and every follower would hold the whole entry in memory to apply it. So a
//! write is split into entries of at most `content_log.max_changes_per_entry` changes and
//! `content_log.max_entry_bytes` bytes (a single larger document gets an entry of its
//! own), appended one after the other, each atomically. Followers apply each entry in one
//! commit, so a large write becomes visible in several steps; when Redis fails between
//! entries, the entries appended stand and the rest is not written (the error says which),
//! and running the write again is idempotent.

use crate::telemetry::spawn_blocking_in_span;
use std::ops::Range;

use super::{ContentLog, ContentLogError, LoggedChange};
use crate::content::ContentChange;
use crate::domain::TenantId;
use crate::redis_connection::RedisCallError;
use crate::search::LogPosition;

/// One change encoded for the scripts and the stream.
pub(super) struct EncodedChange {
    /// `upsert` or `delete`.
    operation: &'static str,
    id: String,
    /// The document's JSON for an upsert, empty for a delete.
    document_json: String,
    /// The change as the stream entry lists it.
    logged_json: String,
}

/// Encodes `changes` for the scripts (operation, id, document) and the stream.
pub(super) fn encode_changes(changes: &[ContentChange]) -> Vec<EncodedChange> {
    let mut encoded = Vec::with_capacity(changes.len());
    for change in changes {
        encoded.push(match change {
            ContentChange::Upsert(document) => {
                let document_json = serde_json::to_string(document).expect("a document serializes");
                EncodedChange {
                    operation: "upsert",
                    id: document.id.clone(),
                    // What `LoggedChange::Upsert` serializes to, without a second pass
                    // over the document.
                    logged_json: format!(r#"{{"op":"upsert","document":{document_json}}}"#),
                    document_json,
                }
            }
            ContentChange::Delete(id) => EncodedChange {
                operation: "delete",
                id: id.as_str().to_owned(),
                document_json: String::new(),
                logged_json: serde_json::to_string(&LoggedChange::Delete {
                    id: id.as_str().to_owned(),
                })
                .expect("a delete serializes"),
            },
        });
    }
    encoded
}

/// Adds the script arguments of `changes` (operation, id, document per change).
pub(super) fn add_change_arguments(
    invocation: &mut redis::ScriptInvocation<'_>,
    changes: &[EncodedChange],
) {
    for change in changes {
        invocation
            .arg(change.operation)
            .arg(&change.id)
            .arg(&change.document_json);
    }
}

/// Splits changes of the given encoded sizes into consecutive ranges, each of at most
/// `max_changes` changes and `max_bytes` bytes; a change larger than `max_bytes` gets a
/// range of its own.
pub(super) fn entry_ranges(
    change_bytes: &[usize],
    max_changes: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let max_changes = max_changes.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes_in_entry = 0;
    for (index, bytes) in change_bytes.iter().enumerate() {
        let changes_in_entry = index - start;
        let is_full = changes_in_entry == max_changes
            || (changes_in_entry > 0 && bytes_in_entry + bytes > max_bytes);
        if is_full {
            ranges.push(start..index);
            start = index;
            bytes_in_entry = 0;
        }
        bytes_in_entry += bytes;
    }
    if start < change_bytes.len() {
        ranges.push(start..change_bytes.len());
    }
    ranges
}

/// Splits `changes` into the entries the settings allow.
pub(super) fn split_into_entries<'changes>(
    log: &ContentLog,
    changes: &'changes [EncodedChange],
) -> Vec<&'changes [EncodedChange]> {
    let sizes: Vec<usize> = changes
        .iter()
        .map(|change| change.logged_json.len() + 1)
        .collect();
    entry_ranges(
        &sizes,
        log.settings.max_changes_per_entry,
        log.settings.max_entry_bytes,
    )
    .into_iter()
    .map(|range| &changes[range])
    .collect()
}

/// Returns the stream entry's list of changes.
fn logged_changes_json(changes: &[EncodedChange]) -> String {
    let mut json = String::from("[");
    for (index, change) in changes.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        json.push_str(&change.logged_json);
    }
    json.push(']');
    json
}

impl ContentLog {
    /// Appends `changes` of `tenant` to the snapshot and the stream, in entries of the
    /// configured bounds (each atomic), and returns the position of the last entry.
    /// When an entry fails, the entries before it stand ([`ContentLogError`] says how
    /// many, and whether the failed one certainly did not run).
    #[tracing::instrument(name = "append content changes", skip_all, fields(tenant = %tenant, changes = changes.len()))]
    pub async fn append(
        &self,
        tenant: &TenantId,
        changes: Vec<ContentChange>,
    ) -> Result<LogPosition, ContentLogError> {
        // Serializing a bulk upload or a sync run is blocking work.
        let encoded = spawn_blocking_in_span(move || encode_changes(&changes)).await?;
        let entries = split_into_entries(self, &encoded);
        let mut last_position = None;
        for (appended_entries, entry_changes) in entries.iter().enumerate() {
            let appended = self.append_entry(tenant, entry_changes).await;
            let id = match appended {
                Ok(id) => id,
                Err(source) => {
                    return Err(append_error(source, appended_entries, entries.len()));
                }
            };
            last_position =
                Some(
                    LogPosition::parse(&id).ok_or_else(|| ContentLogError::Unreadable {
                        position: id.clone(),
                        reason: "not a stream id".to_owned(),
                    })?,
                );
        }
        match last_position {
            Some(position) => Ok(position),
            // Nothing to append: the log's head is where this write is.
            None => self.head().await,
        }
    }

    /// Appends one entry; returns its stream id.
    async fn append_entry(
        &self,
        tenant: &TenantId,
        changes: &[EncodedChange],
    ) -> Result<String, RedisCallError> {
        let mut invocation = self.scripts.append.prepare_invoke();
        invocation
            .key(self.keys.changes())
            .key(self.keys.tenants())
            .key(self.keys.documents(tenant))
            .key(self.keys.life())
            .key(self.keys.seed_lock())
            .arg(self.settings.stream_max_len)
            .arg(tenant.as_str())
            .arg(logged_changes_json(changes));
        add_change_arguments(&mut invocation, changes);
        self.redis.invoke(&invocation).await
    }
}

/// Tells an entry that certainly did not run from one that may have.
fn append_error(
    source: RedisCallError,
    appended_entries: usize,
    entries: usize,
) -> ContentLogError {
    if source.certainly_did_not_run() {
        ContentLogError::AppendNotWritten {
            appended_entries,
            entries,
            source,
        }
    } else {
        ContentLogError::AppendUnanswered {
            appended_entries,
            entries,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_split_at_the_maximum_count_of_an_entry() {
        let ranges = entry_ranges(&[10; 7], 3, 1_000);

        assert_eq!(ranges, vec![0..3, 3..6, 6..7]);
    }

    #[test]
    fn changes_are_split_before_an_entry_would_exceed_the_maximum_bytes() {
        let ranges = entry_ranges(&[40, 40, 30, 10, 70], 100, 100);

        assert_eq!(ranges, vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn a_change_larger_than_the_maximum_bytes_gets_an_entry_of_its_own() {
        let ranges = entry_ranges(&[10, 500, 10], 100, 100);

        assert_eq!(ranges, vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn no_changes_make_no_entries() {
        assert!(entry_ranges(&[], 10, 10).is_empty());
    }

    #[test]
    fn the_entry_json_reads_back_as_the_changes() {
        // Arrange
        let document = crate::ndjson::parse_line(
            br#"{"id": "doc-1", "title": "Export invoices", "body": "As PDF."}"#,
            1,
        )
        .unwrap()
        .unwrap();
        let changes = [
            ContentChange::Upsert(document),
            ContentChange::Delete(crate::domain::ContentId::parse("doc-2").unwrap()),
        ];

        // Act
        let json = logged_changes_json(&encode_changes(&changes));

        // Assert
        let logged: Vec<LoggedChange> = serde_json::from_str(&json).unwrap();
        assert!(matches!(&logged[0], LoggedChange::Upsert { document } if document.id == "doc-1"));
        assert!(matches!(&logged[1], LoggedChange::Delete { id } if id == "doc-2"));
    }
}
