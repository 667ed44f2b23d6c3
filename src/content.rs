//! The content store: adds, replaces, reads and deletes documents of a tenant on the
//! serving index generation, through its one writer. With the content log on, writes go
//! through the log (`content_log/`) so that every instance applies them in one order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, TantivyDocument, Term};

use crate::content_log::{ContentLog, ContentLogError, LogEntry};
use crate::domain::{ContentDocument, ContentId, TenantId};
use crate::search::document::{index_document, StoredDocument};
use crate::search::terms_key;
use crate::search::writer::WriteOperation;
use crate::search::{
    ContentIndex, IndexError, IndexWriterHandle, LogPosition, ServedGeneration, ServingIndex,
    WriteError,
};
use crate::telemetry::spawn_blocking_in_span;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Log(#[from] ContentLogError),
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error(
        "the change is in the content log at {position} but this instance has not applied it yet"
    )]
    NotYetApplied { position: LogPosition },
}

/// How long a write waits for this instance's follower to apply it.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The content log a store writes through, and what this instance's follower has
/// applied of it.
#[derive(Clone)]
pub struct LoggedWrites {
    pub log: ContentLog,
    /// The position the follower has applied up to.
    pub applied: tokio::sync::watch::Receiver<LogPosition>,
    /// Whether the index serves the log's content: it had applied a log position when the
    /// process started, or the follower has caught up with the log once since.
    pub serves_log_content: Arc<AtomicBool>,
}

/// Whether the index serves what it should, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentReadiness {
    /// No content log: the index is all there is.
    LocalOnly,
    /// The index serves the log's content (possibly a little behind while Redis is away).
    FollowingTheLog,
    /// The index has never applied the log (a new instance) and has not caught up yet.
    WaitingForTheLog,
}

/// Content writes and reads on the serving index generation. With a content log, a
/// write is appended to the log (so every instance gets it) and applied by this
/// instance's follower like everybody else's, in log order; the call returns once that
/// happened, so the change is searchable here when it returns.
#[derive(Clone)]
pub struct ContentStore {
    serving: ServingIndex,
    logged: Option<LoggedWrites>,
    /// Writes hold it shared; a rebuild takes it exclusively while it switches
    /// generations (and, without a content log, while it copies), so no write lands in
    /// a generation that is being replaced.
    write_gate: Arc<tokio::sync::RwLock<()>>,
}

impl ContentStore {
    /// A store of one index and writer, without a content log (offline loads, tests).
    pub fn new(index: ContentIndex, writer: IndexWriterHandle) -> ContentStore {
        ContentStore::serving(
            ServingIndex::new(ServedGeneration {
                number: 0,
                index,
                writer: Some(writer),
                writer_thread: None,
            }),
            None,
        )
    }

    /// A store of whatever generation `serving` serves, writing through `logged` when
    /// given.
    pub fn serving(serving: ServingIndex, logged: Option<LoggedWrites>) -> ContentStore {
        ContentStore {
            serving,
            logged,
            write_gate: Default::default(),
        }
    }

    pub fn serving_index(&self) -> &ServingIndex {
        &self.serving
    }

    pub fn log(&self) -> Option<&ContentLog> {
        self.logged.as_ref().map(|logged| &logged.log)
    }

    /// Returns whether the index serves the content it should.
    pub fn readiness(&self) -> ContentReadiness {
        match &self.logged {
            None => ContentReadiness::LocalOnly,
            Some(logged) if logged.serves_log_content.load(Ordering::Relaxed) => {
                ContentReadiness::FollowingTheLog
            }
            Some(_) => ContentReadiness::WaitingForTheLog,
        }
    }

    /// Returns the serving generation's index.
    pub fn index(&self) -> ContentIndex {
        self.serving.current().index.clone()
    }

    /// Stops content writes until the guard is dropped (rebuilds).
    pub async fn pause_writes(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.write_gate.clone().write_owned().await
    }

    /// Adds or replaces `documents`; returns once they are searchable.
    pub async fn upsert(
        &self,
        tenant: &TenantId,
        documents: Vec<ContentDocument>,
    ) -> Result<(), StoreError> {
        let changes = documents.into_iter().map(ContentChange::Upsert).collect();
        self.apply_changes(tenant, changes).await
    }

    /// Like [`ContentStore::upsert`], for callers outside the async runtime; local only
    /// (offline use, no content log).
    pub fn upsert_blocking(
        &self,
        tenant: &TenantId,
        documents: &[ContentDocument],
    ) -> Result<(), StoreError> {
        let served = self.serving.current();
        let operations = upsert_operations(&served.index, tenant, documents);
        writer_of(&served)?.apply_blocking(operations)?;
        Ok(())
    }

    /// Hands `documents` to the writer without waiting for their commit (offline loads);
    /// [`ContentStore::commit_blocking`] makes them searchable and reports errors.
    pub fn queue_blocking(
        &self,
        tenant: &TenantId,
        documents: &[ContentDocument],
    ) -> Result<(), StoreError> {
        let served = self.serving.current();
        let operations = upsert_operations(&served.index, tenant, documents);
        writer_of(&served)?.queue_blocking(operations)?;
        Ok(())
    }

    /// Commits everything queued; returns once it is searchable. `log_position` is
    /// recorded as the content-log position the index has applied.
    pub fn commit_blocking_at(&self, log_position: Option<LogPosition>) -> Result<(), StoreError> {
        writer_of(&self.serving.current())?.apply_at_blocking(Vec::new(), log_position)?;
        Ok(())
    }

    /// Commits everything queued; returns once it is searchable.
    pub fn commit_blocking(&self) -> Result<(), StoreError> {
        self.commit_blocking_at(None)
    }

    /// Commits everything queued and, when the index was opened for a bulk load, merges
    /// it into one segment (see `IndexWriterHandle::compact`); returns once that is
    /// searchable.
    pub fn compact_blocking(&self) -> Result<(), StoreError> {
        writer_of(&self.serving.current())?.compact_blocking()?;
        Ok(())
    }

    /// Returns the stored document `id` of `tenant`.
    pub async fn get(
        &self,
        tenant: &TenantId,
        id: &ContentId,
    ) -> Result<Option<ContentDocument>, StoreError> {
        let index = self.index();
        let key = terms_key(tenant, id.as_str());
        let stored = spawn_blocking_in_span(move || find_stored(&index, &key)).await??;
        Ok(stored.map(|stored| stored.document))
    }

    /// Applies `changes` to `tenant`'s documents. Without a content log they are applied
    /// in one commit: all of them become searchable together, or (when the commit fails)
    /// none does. With a content log, they are appended to it in bounded entries
    /// (`content_log.max_changes_per_entry`, `max_entry_bytes`; see `content_log/append.rs`)
    /// and every instance applies each entry whole in one commit, so a large write becomes
    /// visible in several steps; when the log fails between entries, the entries appended
    /// stand (the error says so) and running the write again is idempotent. The call
    /// returns once this instance applied the last entry.
    pub async fn apply_changes(
        &self,
        tenant: &TenantId,
        changes: Vec<ContentChange>,
    ) -> Result<(), StoreError> {
        let Some(logged) = &self.logged else {
            let _write = self.write_gate.read().await;
            return apply_to_generation(&self.serving.current(), tenant, changes, None).await;
        };
        let position = logged.log.append(tenant, changes).await?;
        // Applying only through the follower keeps one order on every instance, and
        // applies each change once (a second application would leave a deleted copy
        // that counts in the word statistics until segments merge).
        let mut applied = logged.applied.clone();
        let reached =
            tokio::time::timeout(APPLY_WAIT, applied.wait_for(|applied| *applied >= position))
                .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::NotYetApplied { position }),
        }
    }

    /// Records `position` as applied with a commit of its own (the seed marker, which
    /// changes no document).
    pub async fn mark_applied(&self, position: LogPosition) -> Result<(), StoreError> {
        let _write = self.write_gate.read().await;
        let served = self.serving.current();
        writer_of(&served)?
            .apply_at(Vec::new(), Some(position))
            .await?;
        Ok(())
    }

    /// Applies entries read from the content log, neighbours together in a commit that
    /// records the last one's position (see [`apply_entries_to_generation`]).
    pub async fn apply_logged(&self, entries: Vec<LogEntry>) -> Result<(), StoreError> {
        let _write = self.write_gate.read().await;
        let served = self.serving.current();
        let max_changes_per_commit = self
            .log()
            .map_or(usize::MAX, |log| log.settings().max_changes_per_entry);
        apply_entries_to_generation(&served, entries, max_changes_per_commit).await
    }

    /// Deletes document `id` of `tenant`; returns whether it existed.
    pub async fn delete(&self, tenant: &TenantId, id: &ContentId) -> Result<bool, StoreError> {
        if self.get(tenant, id).await?.is_none() {
            return Ok(false);
        }
        self.apply_changes(tenant, vec![ContentChange::Delete(id.clone())])
            .await?;
        Ok(true)
    }

    /// Returns every document of `tenant` whose id starts with `id_prefix` (content sync
    /// compares what a source has with what deflect holds from it). With a content log
    /// they come from the log's snapshot, which every instance converges to: this
    /// instance's index may not have applied the latest changes yet, and a plan made
    /// against it would skip deletions and upserts the log still needs. Without a log,
    /// the index is the only copy.
    pub async fn documents_with_id_prefix(
        &self,
        tenant: &TenantId,
        id_prefix: &str,
    ) -> Result<Vec<ContentDocument>, StoreError> {
        if let Some(log) = self.log() {
            return Ok(log
                .snapshot_documents_with_id_prefix(tenant, id_prefix)
                .await?);
        }
        let index = self.index();
        let key_prefix = terms_key(tenant, id_prefix);
        let stored =
            spawn_blocking_in_span(move || find_with_key_prefix(&index, &key_prefix)).await??;
        Ok(stored.into_iter().map(|stored| stored.document).collect())
    }

    /// Returns every document of the index, by tenant (seeding the content log).
    pub async fn documents_by_tenant(
        &self,
    ) -> Result<BTreeMap<TenantId, Vec<ContentDocument>>, StoreError> {
        let index = self.index();
        let stored = spawn_blocking_in_span(move || find_with_key_prefix(&index, "")).await??;
        let mut by_tenant: BTreeMap<TenantId, Vec<ContentDocument>> = BTreeMap::new();
        for stored_document in stored {
            let Ok(tenant) = TenantId::parse(&stored_document.tenant) else {
                tracing::warn!(tenant = %stored_document.tenant, "skipping a stored document of an invalid tenant");
                continue;
            };
            by_tenant
                .entry(tenant)
                .or_default()
                .push(stored_document.document);
        }
        Ok(by_tenant)
    }

    /// Returns how many documents `tenant` has.
    pub fn count(&self, tenant: &TenantId) -> Result<u64, IndexError> {
        self.index().num_documents_of(tenant)
    }
}

fn writer_of(served: &ServedGeneration) -> Result<&IndexWriterHandle, WriteError> {
    served.writer.as_ref().ok_or(WriteError::Stopped)
}

/// Applies `changes` of `tenant` to `generation` in one commit that records
/// `log_position`; returns once they are searchable there.
pub(crate) async fn apply_to_generation(
    generation: &ServedGeneration,
    tenant: &TenantId,
    changes: Vec<ContentChange>,
    log_position: Option<LogPosition>,
) -> Result<(), StoreError> {
    apply_batches_to_generation(generation, vec![(tenant.clone(), changes)], log_position).await
}

/// Applies `entries` read from the content log to `generation`, in their order; returns
/// once they are searchable there. Neighbouring entries share a commit, which records the
/// last one's position, up to `max_changes_per_commit` changes together; an entry is never
/// split. Not one commit per entry: a commit (a new segment, its files synced) can take
/// longer than other instances take to append an entry of a few changes, and an instance
/// committing entry by entry would then fall further behind the log the longer it
/// follows it. The bound keeps the documents analysed at once to what one full entry
/// holds (`content_log.max_changes_per_entry`), as when each entry had its own commit.
pub(crate) async fn apply_entries_to_generation(
    generation: &ServedGeneration,
    entries: Vec<LogEntry>,
    max_changes_per_commit: usize,
) -> Result<(), StoreError> {
    for group in commit_groups(entries, max_changes_per_commit) {
        // Entries come in stream order, and no group is empty.
        let last_position = group.last().map(|entry| entry.position);
        let batches = group
            .into_iter()
            .map(|entry| (entry.tenant, entry.changes))
            .collect();
        apply_batches_to_generation(generation, batches, last_position).await?;
    }
    Ok(())
}

/// Splits `entries` into runs of neighbours with at most `max_changes` changes together;
/// an entry with more is a run of its own.
fn commit_groups(entries: Vec<LogEntry>, max_changes: usize) -> Vec<Vec<LogEntry>> {
    let mut groups: Vec<Vec<LogEntry>> = Vec::new();
    let mut changes_in_last_group = 0;
    for entry in entries {
        let changes = entry.changes.len();
        let fits = changes_in_last_group + changes <= max_changes;
        match groups.last_mut() {
            Some(group) if fits => {
                group.push(entry);
                changes_in_last_group += changes;
            }
            _ => {
                groups.push(vec![entry]);
                changes_in_last_group = changes;
            }
        }
    }
    groups
}

/// Applies each batch of changes to its tenant's documents, batch after batch, in one
/// commit that records `log_position`.
async fn apply_batches_to_generation(
    generation: &ServedGeneration,
    batches: Vec<(TenantId, Vec<ContentChange>)>,
    log_position: Option<LogPosition>,
) -> Result<(), StoreError> {
    let index = generation.index.clone();
    let operations = spawn_blocking_in_span(move || {
        let mut operations = Vec::new();
        for (tenant, changes) in batches {
            operations.extend(change_operations(&index, &tenant, changes));
        }
        operations
    })
    .await?;
    writer_of(generation)?
        .apply_at(operations, log_position)
        .await?;
    Ok(())
}

/// One change to a tenant's content, as [`ContentStore::apply_changes`] takes it.
// Most changes of a batch are upserts; boxing every document to shrink the rare delete
// would add an allocation per document.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ContentChange {
    /// Adds the document or replaces the one with its id.
    Upsert(ContentDocument),
    /// Removes the document with this id, if there is one.
    Delete(ContentId),
}

/// Turns `changes` into write operations. When one id changes more than once, its last
/// change wins; the upserts are analysed together.
fn change_operations(
    index: &ContentIndex,
    tenant: &TenantId,
    changes: Vec<ContentChange>,
) -> Vec<WriteOperation> {
    let mut last_change_by_key: std::collections::HashMap<String, ContentChange> =
        std::collections::HashMap::new();
    for change in changes {
        let id = match &change {
            ContentChange::Upsert(document) => document.id.as_str(),
            ContentChange::Delete(id) => id.as_str(),
        };
        last_change_by_key.insert(terms_key(tenant, id), change);
    }
    let mut operations = Vec::new();
    let mut upserted = Vec::new();
    for (key, change) in last_change_by_key {
        match change {
            ContentChange::Upsert(document) => upserted.push(document),
            ContentChange::Delete(_) => operations.push(WriteOperation::Delete { key }),
        }
    }
    operations.extend(upsert_operations(index, tenant, &upserted));
    operations
}

/// Batches smaller than this are analysed on the calling thread; spreading them over
/// threads would cost more than it saves.
const MIN_DOCUMENTS_PER_ANALYSIS_THREAD: usize = 64;

/// Analyses `documents` into write operations, on as many threads as there are cores
/// for large batches: analysis (stemming every word) is most of the cost of indexing.
pub(crate) fn upsert_operations(
    index: &ContentIndex,
    tenant: &TenantId,
    documents: &[ContentDocument],
) -> Vec<WriteOperation> {
    let fields = index.schema.fields;
    let analyse = |chunk: &[ContentDocument]| -> Vec<WriteOperation> {
        chunk
            .iter()
            .map(|document| WriteOperation::Upsert {
                key: terms_key(tenant, &document.id),
                document: index_document(&fields, tenant, document),
            })
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(documents.len() / MIN_DOCUMENTS_PER_ANALYSIS_THREAD);
    if threads <= 1 {
        return analyse(documents);
    }
    let chunk_size = documents.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = documents
            .chunks(chunk_size)
            .map(|chunk| scope.spawn(|| analyse(chunk)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("document analysis does not panic"))
            .collect()
    })
}

fn find_stored(index: &ContentIndex, key: &str) -> Result<Option<StoredDocument>, IndexError> {
    let fields = index.schema.fields;
    let searcher = index.reader.searcher();
    let query = TermQuery::new(
        Term::from_field_text(fields.key, key),
        IndexRecordOption::Basic,
    );
    let Some((_, address)) = searcher
        .search(&query, &TopDocs::with_limit(1).order_by_score())?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let indexed: TantivyDocument = searcher.doc(address)?;
    StoredDocument::from_indexed(&indexed, fields.source)
}

/// Reads the live documents whose key starts with `key_prefix` (every one for ""),
/// walking the key terms of each segment from the prefix on (deleted documents are
/// skipped).
fn find_with_key_prefix(
    index: &ContentIndex,
    key_prefix: &str,
) -> Result<Vec<StoredDocument>, IndexError> {
    let fields = index.schema.fields;
    let searcher = index.reader.searcher();
    let mut documents = Vec::new();
    for (segment_ordinal, segment) in searcher.segment_readers().iter().enumerate() {
        let keys = segment.inverted_index(fields.key)?;
        let mut terms = keys
            .terms()
            .range()
            .ge(key_prefix.as_bytes())
            .into_stream()
            .map_err(tantivy::TantivyError::from)?;
        while terms.advance() {
            if !terms.key().starts_with(key_prefix.as_bytes()) {
                break;
            }
            let mut postings = keys
                .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                .map_err(tantivy::TantivyError::from)?;
            let mut doc_id = postings.doc();
            while doc_id != tantivy::TERMINATED {
                let is_alive = segment
                    .alive_bitset()
                    .is_none_or(|alive| alive.is_alive(doc_id));
                if is_alive {
                    let address = tantivy::DocAddress::new(segment_ordinal as u32, doc_id);
                    let indexed: TantivyDocument = searcher.doc(address)?;
                    if let Some(stored) = StoredDocument::from_indexed(&indexed, fields.source)? {
                        documents.push(stored);
                    }
                }
                doc_id = postings.advance();
            }
        }
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::writer::WriterOptions;

    fn documents(count: usize) -> Vec<ContentDocument> {
        (0..count)
            .map(|number| {
                let line = format!(
                    r#"{{"id": "doc-{number}", "kind": "article", "title": "Export invoice {number}", "body": "How to export an invoice as PDF."}}"#
                );
                crate::ndjson::parse_line(line.as_bytes(), number + 1)
                    .expect("the line is valid")
                    .expect("the line holds a document")
            })
            .collect()
    }

    /// A store on a fresh index (gone with the returned directory).
    fn store_in_a_temporary_directory() -> (tempfile::TempDir, ContentStore) {
        let directory = tempfile::tempdir().unwrap();
        let index = ContentIndex::open_or_create(directory.path()).unwrap();
        let options = WriterOptions {
            memory_budget_bytes: 50 * 1024 * 1024,
            threads: 1,
            max_operations_per_commit: usize::MAX,
            bulk_load: false,
        };
        let (writer, _writer_thread) = IndexWriterHandle::start(&index, options).unwrap();
        (directory, ContentStore::new(index, writer))
    }

    fn entry_of(changes: usize) -> LogEntry {
        LogEntry {
            position: LogPosition::START,
            tenant: TenantId::parse("acme").unwrap(),
            changes: documents(changes)
                .into_iter()
                .map(ContentChange::Upsert)
                .collect(),
        }
    }

    #[test]
    fn neighbouring_entries_share_a_commit_up_to_the_bound_and_a_larger_one_stands_alone() {
        let entries = [1, 2, 2, 7, 1, 4].map(entry_of).into_iter().collect();

        let groups = commit_groups(entries, 5);

        let sizes: Vec<Vec<usize>> = groups
            .iter()
            .map(|group| group.iter().map(|entry| entry.changes.len()).collect())
            .collect();
        assert_eq!(sizes, [vec![1, 2, 2], vec![7], vec![1, 4]]);
    }

    #[test]
    fn queued_documents_become_searchable_with_the_commit_in_parallel_batches() {
        // Arrange: enough documents to be analysed on several threads.
        let directory = tempfile::tempdir().unwrap();
        let index = ContentIndex::open_or_create(directory.path()).unwrap();
        let (writer, writer_thread) = IndexWriterHandle::start(
            &index,
            WriterOptions {
                memory_budget_bytes: 50 * 1024 * 1024,
                threads: 1,
                max_operations_per_commit: usize::MAX,
                bulk_load: false,
            },
        )
        .unwrap();
        let store = ContentStore::new(index.clone(), writer);
        let tenant = TenantId::parse("acme").unwrap();
        let batch = documents(3 * MIN_DOCUMENTS_PER_ANALYSIS_THREAD);

        // Act
        store.queue_blocking(&tenant, &batch[..100]).unwrap();
        store.queue_blocking(&tenant, &batch[100..]).unwrap();
        let before_commit = store.count(&tenant).unwrap();
        store.commit_blocking().unwrap();

        // Assert
        assert_eq!(before_commit, 0);
        assert_eq!(store.count(&tenant).unwrap(), batch.len() as u64);
        drop(store);
        writer_thread.join().unwrap();
    }

    #[test]
    fn a_bulk_load_ends_as_one_segment_holding_every_document() {
        // Arrange: a bulk-load writer whose batches are committed one by one, each into
        // a segment of its own.
        let directory = tempfile::tempdir().unwrap();
        let index = ContentIndex::open_or_create(directory.path()).unwrap();
        let (writer, writer_thread) = IndexWriterHandle::start(
            &index,
            WriterOptions {
                memory_budget_bytes: 50 * 1024 * 1024,
                threads: 1,
                max_operations_per_commit: usize::MAX,
                bulk_load: true,
            },
        )
        .unwrap();
        let store = ContentStore::new(index.clone(), writer);
        let tenant = TenantId::parse("acme").unwrap();
        let batch = documents(40);
        for chunk in batch.chunks(10) {
            store.queue_blocking(&tenant, chunk).unwrap();
            store.commit_blocking().unwrap();
        }
        let segments_before = index.reader.searcher().segment_readers().len();

        // Act
        store.compact_blocking().unwrap();

        // Assert
        assert_eq!(segments_before, 4, "nothing merged while loading");
        assert_eq!(index.reader.searcher().segment_readers().len(), 1);
        assert_eq!(store.count(&tenant).unwrap(), 40);
        drop(store);
        writer_thread.join().unwrap();
        let files = std::fs::read_dir(directory.path()).unwrap().count();
        let reopened = ContentIndex::open_or_create(directory.path()).unwrap();
        assert_eq!(reopened.reader.searcher().segment_readers().len(), 1);
        assert!(
            files < 12,
            "the merged segments' files are removed: {files} files"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn changes_apply_in_one_commit_and_the_last_change_of_an_id_wins() {
        // Arrange
        let (_directory, store) = store_in_a_temporary_directory();
        let tenant = TenantId::parse("acme").unwrap();
        let batch = documents(3);
        store.upsert(&tenant, batch.clone()).await.unwrap();
        let id_of = |number: usize| ContentId::parse(&batch[number].id).unwrap();

        // Act: doc-0 deleted then re-added, doc-1 re-added then deleted, doc-2 deleted.
        store
            .apply_changes(
                &tenant,
                vec![
                    ContentChange::Delete(id_of(0)),
                    ContentChange::Upsert(batch[0].clone()),
                    ContentChange::Upsert(batch[1].clone()),
                    ContentChange::Delete(id_of(1)),
                    ContentChange::Delete(id_of(2)),
                ],
            )
            .await
            .unwrap();

        // Assert
        assert!(store.get(&tenant, &id_of(0)).await.unwrap().is_some());
        assert!(store.get(&tenant, &id_of(1)).await.unwrap().is_none());
        assert!(store.get(&tenant, &id_of(2)).await.unwrap().is_none());
        assert_eq!(store.count(&tenant).unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn documents_with_an_id_prefix_are_found_live_and_only_of_their_tenant() {
        // Arrange
        let (_directory, store) = store_in_a_temporary_directory();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let mut batch = documents(4);
        batch[0].id = "zd-1-en".to_owned();
        batch[1].id = "zd-2-en".to_owned();
        batch[2].id = "zd-3-en".to_owned();
        store.upsert(&acme, batch.clone()).await.unwrap();
        store.upsert(&globex, batch[..1].to_vec()).await.unwrap();
        store
            .delete(&acme, &ContentId::parse("zd-2-en").unwrap())
            .await
            .unwrap();

        // Act
        let found = store.documents_with_id_prefix(&acme, "zd-").await.unwrap();

        // Assert
        let mut ids: Vec<&str> = found.iter().map(|document| document.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["zd-1-en", "zd-3-en"]);
    }

    #[test]
    fn queued_documents_nobody_committed_are_committed_when_the_writer_stops() {
        // Arrange
        let directory = tempfile::tempdir().unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let options = WriterOptions {
            memory_budget_bytes: 50 * 1024 * 1024,
            threads: 1,
            max_operations_per_commit: usize::MAX,
            bulk_load: false,
        };
        {
            let index = ContentIndex::open_or_create(directory.path()).unwrap();
            let (writer, writer_thread) = IndexWriterHandle::start(&index, options).unwrap();
            let store = ContentStore::new(index, writer);

            // Act
            store.queue_blocking(&tenant, &documents(5)).unwrap();
            drop(store);
            writer_thread.join().unwrap();
        }

        // Assert
        let reopened = ContentIndex::open_or_create(directory.path()).unwrap();
        assert_eq!(reopened.num_documents_of(&tenant).unwrap(), 5);
    }
}
