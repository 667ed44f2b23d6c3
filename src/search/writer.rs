//! The single owner of the tantivy `IndexWriter`.
//!
//! tantivy allows one writer per index, and every commit costs an fsync and a reader
//! reload, so all writes go through one thread that takes whatever requests are waiting,
//! applies them together and commits once. A request is answered only after the commit
//! and the reader reload: when a write call returns, the change is searchable.
//!
//! A write may carry the content-log position it brings the index to; the writer records
//! the highest one in the payload of its commits (see `log_position.rs`), so an instance
//! restarts following the log from where its index really is. A position counts as
//! applied only once a commit holding its changes succeeded ([`LogPositions`]): after a
//! rollback the next commit records the last committed position again, never one whose
//! changes were thrown away.
//!
//! Offline loads (`deflect index`, benchmarks) queue their batches without waiting for a
//! commit ([`IndexWriterHandle::queue_blocking`]), so analysing the next batch overlaps
//! with indexing the last, and commit once at the end.
//!
//! A bulk load (`deflect index`, a new index generation) ends merged into one segment
//! ([`IndexWriterHandle::compact`]): a search looks every term up and opens its postings
//! once per segment, and tantivy flushes a segment whenever its memory budget fills, so a
//! 100,000-document load left ten segments that made every keystroke about 30% dearer
//! (README, "Speed"). Nothing is merged while such a load runs, since it would be merged
//! again at the end; tantivy's merge policy takes over once it is compacted.

use std::thread::JoinHandle;

use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};

use super::index::ContentIndex;
use super::log_position::{commit_payload, committed_position, LogPosition};

/// Write requests waiting for the writer thread, at most.
const WRITE_QUEUE_REQUESTS: usize = 4;

/// One change to the index.
pub enum WriteOperation {
    /// Replaces the document with this key (or adds it).
    Upsert {
        key: String,
        document: TantivyDocument,
    },
    /// Removes the document with this key, if there is one.
    Delete { key: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("failed to commit to the index: {0}")]
    Commit(String),
    #[error("the index writer has stopped")]
    Stopped,
}

struct WriteRequest {
    operations: Vec<WriteOperation>,
    /// Answered after the commit that makes `operations` searchable; `None` for queued
    /// writes, which ride along with a later commit.
    done: Option<oneshot::Sender<Result<(), WriteError>>>,
    /// The content-log position these operations bring the index to, if they come from
    /// the log.
    log_position: Option<LogPosition>,
    /// Merge the index into one segment after the commit (see [`IndexWriterHandle::compact`]).
    compact: bool,
}

/// How the writer batches; see `[index]` in `config/base.toml`.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub memory_budget_bytes: usize,
    pub threads: usize,
    pub max_operations_per_commit: usize,
    /// The writer fills an index in one go (an offline load, a new generation): nothing
    /// is merged until [`IndexWriterHandle::compact`] merges the load into one segment.
    pub bulk_load: bool,
}

/// A cheap, cloneable handle for sending writes to the writer thread.
#[derive(Clone)]
pub struct IndexWriterHandle {
    sender: mpsc::Sender<WriteRequest>,
}

impl IndexWriterHandle {
    /// Takes the index's writer lock and starts the writer thread. The thread ends when
    /// every handle has been dropped, after finishing the requests it has.
    pub fn start(
        index: &ContentIndex,
        options: WriterOptions,
    ) -> Result<(IndexWriterHandle, JoinHandle<()>), tantivy::TantivyError> {
        let writer: IndexWriter<TantivyDocument> = index
            .index
            .writer_with_num_threads(options.threads.max(1), options.memory_budget_bytes)?;
        // A short queue: offline loads analyse faster than tantivy indexes, and every
        // waiting request holds a batch of analysed documents in memory.
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE_REQUESTS);
        let index = index.clone();
        let thread = std::thread::Builder::new()
            .name("index-writer".to_owned())
            .spawn(move || run_writer(writer, index, receiver, options))
            .expect("failed to spawn the index writer thread");
        Ok((IndexWriterHandle { sender }, thread))
    }

    /// Applies `operations` in one commit (possibly together with other callers') and
    /// returns once they are searchable.
    pub async fn apply(&self, operations: Vec<WriteOperation>) -> Result<(), WriteError> {
        self.apply_at(operations, None).await
    }

    /// Like [`IndexWriterHandle::apply`]; the commit records `log_position` (when it is
    /// the highest seen) as the content-log position the index has applied.
    pub async fn apply_at(
        &self,
        operations: Vec<WriteOperation>,
        log_position: Option<LogPosition>,
    ) -> Result<(), WriteError> {
        let (done, answer) = oneshot::channel();
        self.sender
            .send(WriteRequest {
                operations,
                done: Some(done),
                log_position,
                compact: false,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Like [`IndexWriterHandle::apply`], for callers outside the async runtime.
    pub fn apply_blocking(&self, operations: Vec<WriteOperation>) -> Result<(), WriteError> {
        self.apply_at_blocking(operations, None)
    }

    /// Like [`IndexWriterHandle::apply_at`], for callers outside the async runtime.
    pub fn apply_at_blocking(
        &self,
        operations: Vec<WriteOperation>,
        log_position: Option<LogPosition>,
    ) -> Result<(), WriteError> {
        let (done, answer) = oneshot::channel();
        self.sender
            .blocking_send(WriteRequest {
                operations,
                done: Some(done),
                log_position,
                compact: false,
            })
            .map_err(|_| WriteError::Stopped)?;
        answer.blocking_recv().map_err(|_| WriteError::Stopped)?
    }

    /// Hands `operations` to the writer without waiting for them to be committed; they
    /// become searchable with the next commit (at the latest the next
    /// [`IndexWriterHandle::apply_blocking`], which also reports any error they met).
    /// Blocks while the writer's queue is full.
    pub fn queue_blocking(&self, operations: Vec<WriteOperation>) -> Result<(), WriteError> {
        self.sender
            .blocking_send(WriteRequest {
                operations,
                done: None,
                log_position: None,
                compact: false,
            })
            .map_err(|_| WriteError::Stopped)
    }

    /// Commits what is waiting (recording `log_position` like
    /// [`IndexWriterHandle::apply_at`]) and, for a bulk-load writer, merges the whole
    /// index into one segment and turns tantivy's merge policy on; returns once the
    /// merged index is searchable. A writer that is not loading in bulk only commits:
    /// its merge policy may be merging some segments already.
    pub async fn compact(&self, log_position: Option<LogPosition>) -> Result<(), WriteError> {
        let (done, answer) = oneshot::channel();
        self.sender
            .send(WriteRequest {
                operations: Vec::new(),
                done: Some(done),
                log_position,
                compact: true,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Like [`IndexWriterHandle::compact`], for callers outside the async runtime.
    pub fn compact_blocking(&self) -> Result<(), WriteError> {
        let (done, answer) = oneshot::channel();
        self.sender
            .blocking_send(WriteRequest {
                operations: Vec::new(),
                done: Some(done),
                log_position: None,
                compact: true,
            })
            .map_err(|_| WriteError::Stopped)?;
        answer.blocking_recv().map_err(|_| WriteError::Stopped)?
    }
}

fn run_writer(
    mut writer: IndexWriter<TantivyDocument>,
    index: ContentIndex,
    mut receiver: mpsc::Receiver<WriteRequest>,
    options: WriterOptions,
) {
    let key_field = index.schema.fields.key;
    let mut log_positions = LogPositions::starting_at(committed_position(&index.index));
    let mut uncommitted_operations: usize = 0;
    // The first error of an add since the last commit, reported to the next waiter.
    let mut add_error: Option<String> = None;
    let mut loading_in_bulk = options.bulk_load;
    if loading_in_bulk {
        writer.set_merge_policy(Box::new(NoMergePolicy));
    }
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        let mut batch_operations = batch[0].operations.len();
        while uncommitted_operations.saturating_add(batch_operations)
            < options.max_operations_per_commit
        {
            match receiver.try_recv() {
                Ok(request) => {
                    batch_operations += request.operations.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }

        let mut answers = Vec::new();
        let mut compact = false;
        for request in batch {
            log_positions.take(request.log_position);
            compact |= request.compact;
            for operation in request.operations {
                match operation {
                    WriteOperation::Upsert { key, document } => {
                        writer.delete_term(Term::from_field_text(key_field, &key));
                        if let Err(error) = writer.add_document(document) {
                            add_error.get_or_insert(error.to_string());
                        }
                    }
                    WriteOperation::Delete { key } => {
                        writer.delete_term(Term::from_field_text(key_field, &key));
                    }
                }
            }
            answers.extend(request.done);
        }
        uncommitted_operations += batch_operations;
        let commit_due =
            !answers.is_empty() || uncommitted_operations >= options.max_operations_per_commit;
        if !commit_due {
            continue;
        }

        let mut result = commit(
            &mut writer,
            &index,
            add_error.take(),
            uncommitted_operations,
            log_positions.pending(),
        );
        log_positions.settle(result.is_ok());
        uncommitted_operations = 0;
        if compact && loading_in_bulk && result.is_ok() {
            result = merge_into_one_segment(&mut writer, &index);
            writer.set_merge_policy(Box::new(LogMergePolicy::default()));
            loading_in_bulk = false;
        }
        for answer in answers {
            // A caller that gave up waiting is no reason to stop.
            let _ = answer.send(result.clone());
        }
    }
    if uncommitted_operations > 0 {
        // Queued writes nobody waited for: commit them rather than lose them.
        let _ = commit(
            &mut writer,
            &index,
            add_error,
            uncommitted_operations,
            log_positions.pending(),
        );
    }
    if let Err(error) = writer.wait_merging_threads() {
        tracing::warn!(%error, "index merges did not finish cleanly");
    }
}

/// The content-log positions of the writer: the one its last successful commit recorded,
/// and the highest one of the requests taken since, which the next commit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogPositions {
    committed: Option<LogPosition>,
    pending: Option<LogPosition>,
}

impl LogPositions {
    fn starting_at(committed: Option<LogPosition>) -> LogPositions {
        LogPositions {
            committed,
            pending: committed,
        }
    }

    /// Notes the position of a request taken into the next commit.
    fn take(&mut self, request_position: Option<LogPosition>) {
        self.pending = self.pending.max(request_position);
    }

    /// Returns the position the next commit records.
    fn pending(&self) -> Option<LogPosition> {
        self.pending
    }

    /// Settles the pending position after a commit: kept when it succeeded, dropped for
    /// the last committed one when it was rolled back (its changes were thrown away).
    fn settle(&mut self, committed: bool) {
        if committed {
            self.committed = self.pending;
        } else {
            self.pending = self.committed;
        }
    }
}

/// Commits what was added since the last commit and reloads the reader, or, when an add
/// failed (`add_error`), rolls everything back; failures are logged. The commit's payload
/// records `log_position`.
fn commit(
    writer: &mut IndexWriter<TantivyDocument>,
    index: &ContentIndex,
    add_error: Option<String>,
    operations: usize,
    log_position: Option<LogPosition>,
) -> Result<(), WriteError> {
    let result = match add_error {
        Some(error) => Err(error),
        None => writer
            .prepare_commit()
            .and_then(|mut prepared| {
                if let Some(position) = log_position {
                    prepared.set_payload(&commit_payload(position));
                }
                prepared.commit()
            })
            .and_then(|_| index.reader.reload())
            .map(|_| ())
            .map_err(|error| error.to_string()),
    };
    match result {
        Ok(()) => {
            tracing::debug!(operations, "index commit done");
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, operations, "index commit failed");
            if let Err(rollback_error) = writer.rollback() {
                tracing::error!(error = %rollback_error, "index rollback failed");
            }
            Err(WriteError::Commit(error))
        }
    }
}

/// Merges every segment of the index into one and reloads the reader. Only safe while no
/// merge policy runs: tantivy does not stop two merges of the same segment.
fn merge_into_one_segment(
    writer: &mut IndexWriter<TantivyDocument>,
    index: &ContentIndex,
) -> Result<(), WriteError> {
    let started = std::time::Instant::now();
    let segment_ids = index
        .index
        .searchable_segment_ids()
        .map_err(|error| WriteError::Commit(error.to_string()))?;
    if segment_ids.len() > 1 {
        // A merge of committed segments is recorded in the index's meta with the last
        // commit's payload (its log position) and removes the merged files.
        writer
            .merge(&segment_ids)
            .wait()
            .and_then(|_| index.reader.reload())
            .map_err(|error| {
                tracing::error!(%error, "merging the index into one segment failed");
                WriteError::Commit(error.to_string())
            })?;
    }
    tracing::info!(
        segments = segment_ids.len(),
        seconds = started.elapsed().as_secs_f32(),
        "index merged into one segment"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(milliseconds: u64) -> Option<LogPosition> {
        Some(LogPosition {
            milliseconds,
            sequence: 0,
        })
    }

    #[test]
    fn a_rolled_back_batch_leaves_the_recorded_position_at_the_last_commit() {
        // Arrange: position 5 committed, then a batch up to 9 taken.
        let mut positions = LogPositions::starting_at(position(5));
        positions.take(position(9));

        // Act: its commit fails and is rolled back; a later batch without a position
        // (a local write) commits.
        positions.settle(false);
        let recorded_by_the_next_commit = positions.pending();

        // Assert
        assert_eq!(recorded_by_the_next_commit, position(5));
    }

    #[test]
    fn a_committed_batch_raises_the_recorded_position_and_lower_ones_do_not_lower_it() {
        // Arrange
        let mut positions = LogPositions::starting_at(None);
        positions.take(position(7));
        positions.settle(true);

        // Act: a batch of an older position commits, then one is rolled back.
        positions.take(position(3));
        positions.settle(true);
        positions.take(position(12));
        positions.settle(false);

        // Assert
        assert_eq!(positions.pending(), position(7));
    }
}
