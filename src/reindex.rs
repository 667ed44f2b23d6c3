//! Opening the serving generation at startup, and rebuilding the index into a new
//! generation beside it (`deflect reindex`, `POST /v1/admin/reindex`, a follower that
//! must start over from the snapshot).
//!
//! A rebuild fills `generations/<n+1>/` from the sources (the content log's snapshot;
//! without a log, the stored documents of the current generation; the demo catalog for
//! the demo tenant when it has nothing else), commits it with the log position it reached,
//! catches it up with the changes logged meanwhile, switches `CURRENT` and the readers
//! to it, and removes the old generation. Suggestions are answered from the old
//! generation all along. A process killed at any point restarts on the generation
//! `CURRENT` names; [`IndexLayout::remove_leftovers`] removes the rest.
//!
//! The stream of changes is trimmed to `content_log.stream_max_len`: when it is trimmed
//! past the position a rebuild noted before reading the snapshot, the changes written
//! during the read are gone, so the rebuild starts over rather than miss them (see
//! [`catch_up_generation`]). The file work (creating, switching, removing generations)
//! runs on blocking threads, never on the async workers that answer requests;
//! [`open_current_generation`] stays synchronous because it runs once at startup,
//! before the server answers anything.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tantivy::TantivyDocument;

use crate::content::{apply_entries_to_generation, upsert_operations, ContentStore, StoreError};
use crate::content_log::life::PositionVerdict;
use crate::content_log::{ContentLog, ContentLogError};
use crate::demo::demo_documents;
use crate::domain::{ContentDocument, TenantId};
use crate::search::document::StoredDocument;
use crate::search::serving::retire;
use crate::search::writer::WriterOptions;
use crate::search::{
    ContentIndex, Generation, IndexError, IndexLayout, IndexWriterHandle, LogPosition,
    ServedGeneration, WriteError,
};
use crate::telemetry::spawn_blocking_in_span;

/// Documents analysed and handed to the new generation's writer at once.
const DOCUMENTS_PER_BATCH: usize = 500;

/// Times one rebuild starts, the first included, before it gives up because the content
/// log keeps being trimmed past the position it started from.
pub const MAX_REBUILD_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("a rebuild of the index is already running")]
    InProgress,
    #[error("failed to prepare the index directory {path}")]
    Directory {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("failed to start the writer of the new generation")]
    Writer(#[source] tantivy::TantivyError),
    #[error("failed to read the documents of the current generation")]
    ReadPrevious(#[source] anyhow::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] ContentLogError),
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error(
        "the content log was trimmed past the rebuild's position (or lost or seeded) during each of {attempts} attempts: more changes arrived during each rebuild than content_log.stream_max_len keeps, or the log is being recovered"
    )]
    OutrunByTrimming { attempts: u32 },
    #[error(
        "the content log is empty but the index has {documents} documents; a rebuild from the log would drop them: start `deflect serve` with the log on (it puts them into the log) and rebuild then"
    )]
    LogEmpty { documents: u64 },
}

impl From<WriteError> for RebuildError {
    fn from(error: WriteError) -> RebuildError {
        RebuildError::Store(StoreError::Write(error))
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    /// The number of the generation now serving.
    pub generation: u64,
    pub documents: u64,
    /// The content-log position the new generation had reached when it was switched to.
    pub log_position: Option<String>,
    pub seconds: f64,
}

/// Where a rebuild takes the content from.
#[derive(Clone)]
pub struct RebuildSources {
    pub log: Option<ContentLog>,
    /// Gets the demo catalog when the other sources have nothing of it.
    pub demo_tenant: Option<TenantId>,
}

/// The generation open at startup.
pub struct OpenedGeneration {
    pub generation: ServedGeneration,
    /// True when the generation was just created (a new directory, or one that replaced
    /// an unreadable generation) and has to be filled from the sources.
    pub is_new: bool,
}

/// Opens the generation `CURRENT` names, after removing a killed process's leftovers.
/// A new directory gets an empty first generation. An unreadable generation is moved
/// aside (logged as an error) and replaced by an empty one; an index of another schema
/// version is refused (`deflect reindex` rebuilds it).
pub fn open_current_generation(
    layout: &IndexLayout,
    options: WriterOptions,
) -> Result<OpenedGeneration, RebuildError> {
    let directory_error = directory_error(layout.root());
    std::fs::create_dir_all(layout.root()).map_err(directory_error)?;
    for removed in layout.remove_leftovers().map_err(directory_error)? {
        tracing::info!(path = %removed.display(), "removed a leftover of an interrupted index write");
    }
    let (generation, is_new) = match layout.current().map_err(directory_error)? {
        Some(generation) => match ContentIndex::open_or_create(&generation.path) {
            Ok(index) => (open_served(generation.number, index, options)?, false),
            Err(error @ IndexError::SchemaMismatch { .. }) => return Err(error.into()),
            Err(error) => {
                let moved_to = layout.set_aside(&generation).map_err(directory_error)?;
                tracing::error!(
                    path = %generation.path.display(),
                    moved_to = %moved_to.display(),
                    error = format!("{:#}", anyhow::Error::new(error)),
                    "the index is unreadable; moved it aside and rebuilding it from its sources"
                );
                (create_generation(layout, options, true)?, true)
            }
        },
        None => (create_generation(layout, options, true)?, true),
    };
    Ok(OpenedGeneration { generation, is_new })
}

/// Returns a mapper of an I/O error on the index directory `path` to a [`RebuildError`].
fn directory_error(path: &Path) -> impl Fn(std::io::Error) -> RebuildError + Copy + '_ {
    move |source| RebuildError::Directory {
        path: path.to_owned(),
        source,
    }
}

fn open_served(
    number: u64,
    index: ContentIndex,
    options: WriterOptions,
) -> Result<ServedGeneration, RebuildError> {
    let (writer, thread) =
        IndexWriterHandle::start(&index, options).map_err(RebuildError::Writer)?;
    Ok(ServedGeneration {
        number,
        index,
        writer: Some(writer),
        writer_thread: Some(thread),
    })
}

/// Creates an empty generation with a running writer; `make_current` switches to it at
/// once (for a directory that has no usable generation).
fn create_generation(
    layout: &IndexLayout,
    options: WriterOptions,
    make_current: bool,
) -> Result<ServedGeneration, RebuildError> {
    let directory_error = directory_error(layout.root());
    let generation = layout.create_next().map_err(directory_error)?;
    let index = ContentIndex::open_or_create(&generation.path)?;
    if make_current {
        layout.switch_to(&generation).map_err(directory_error)?;
    }
    open_served(generation.number, index, options)
}

/// Rebuilds generations of one index directory; cheap to clone, one rebuild at a time.
#[derive(Clone)]
pub struct Reindexer {
    layout: IndexLayout,
    options: WriterOptions,
    sources: RebuildSources,
    running: Arc<tokio::sync::Mutex<()>>,
}

/// Whether a rebuild asked for while another runs waits for it or is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    Wait,
    Refuse,
}

impl Reindexer {
    pub fn new(layout: IndexLayout, options: WriterOptions, sources: RebuildSources) -> Reindexer {
        Reindexer {
            layout,
            options,
            sources,
            running: Default::default(),
        }
    }

    /// Rebuilds the generation `store` serves into a new one and switches the store to
    /// it; suggestions keep being answered from the old one meanwhile. A rebuild whose
    /// starting position the content log trimmed away before it was caught up starts
    /// over (at most [`MAX_REBUILD_ATTEMPTS`] times).
    #[tracing::instrument(name = "rebuild index", skip_all)]
    pub async fn rebuild_serving(
        &self,
        store: &ContentStore,
        when_busy: WhenBusy,
    ) -> Result<RebuildReport, RebuildError> {
        let _running = match when_busy {
            WhenBusy::Wait => self.running.lock().await,
            WhenBusy::Refuse => self
                .running
                .try_lock()
                .map_err(|_| RebuildError::InProgress)?,
        };
        let started = Instant::now();
        // Without a log, nothing could tell the new generation what was written during
        // the copy: content writes wait for the whole rebuild (suggestions do not).
        let mut pause_for_copy = match store.log() {
            None => Some(store.pause_writes().await),
            Some(_) => None,
        };
        let previous = self
            .layout
            .generation(store.serving_index().current().number);
        let mut attempts = RebuildAttempts::default();
        let (built, position, paused) = loop {
            attempts.start_one()?;
            let Attempt::Completed((built, position)) =
                build_generation(&self.layout, self.options, &self.sources, Some(&previous))
                    .await?
            else {
                continue;
            };
            let paused = match pause_for_copy.take() {
                Some(paused) => paused,
                None => store.pause_writes().await,
            };
            let (Some(log), Some(from)) = (store.log(), position) else {
                break (built, position, paused);
            };
            match catch_up_generation(log, &built, from).await {
                Ok(CatchUp::Reached(reached)) => break (built, Some(reached), paused),
                Ok(CatchUp::TrimmedPast(trimmed_past)) => {
                    drop(paused);
                    tracing::warn!(
                        attempt = attempts.made,
                        position = %trimmed_past,
                        "the content log was trimmed past the rebuild's position before it caught up; starting over"
                    );
                    discard_generation(&self.layout, built).await;
                }
                Ok(CatchUp::LifeChanged) => {
                    drop(paused);
                    tracing::warn!(
                        attempt = attempts.made,
                        "the content log was lost or seeded before the rebuild caught up; starting over"
                    );
                    discard_generation(&self.layout, built).await;
                }
                Err(error) => {
                    drop(paused);
                    discard_generation(&self.layout, built).await;
                    return Err(error);
                }
            }
        };
        let new_generation = self.layout.generation(built.number);
        let switched_to = new_generation.clone();
        on_index_directory(&self.layout, move |layout| layout.switch_to(&switched_to)).await?;
        let documents = built.index.num_documents();
        let old = store.serving_index().replace(built);
        drop(paused);
        retire(old).await;
        let removed = previous.clone();
        if let Err(error) =
            on_index_directory(&self.layout, move |layout| layout.remove(&removed)).await
        {
            tracing::warn!(error = %crate::error::error_chain(&error), path = %previous.path.display(), "failed to remove the old index generation; it goes at the next start");
        }
        let report = RebuildReport {
            generation: new_generation.number,
            documents,
            log_position: position.map(|position| position.to_string()),
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            generation = report.generation,
            documents = report.documents,
            seconds = report.seconds,
            "index rebuilt and switched"
        );
        Ok(report)
    }
}

/// Rebuilds the index in `root`, which no running process may be using (`deflect
/// reindex`): also the way to rebuild an index of an older schema version.
pub async fn rebuild_offline(
    root: &Path,
    options: WriterOptions,
    sources: &RebuildSources,
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let layout = IndexLayout::new(root);
    let previous = on_index_directory(&layout, |layout| {
        std::fs::create_dir_all(layout.root())?;
        layout.remove_leftovers()?;
        layout.current()
    })
    .await?;
    // Holding the old generation's writer lock keeps a running service from using it
    // (and this rebuild from running beside one).
    let _lock = match previous.clone() {
        Some(generation) => spawn_blocking_in_span(move || lock_generation(&generation)).await??,
        None => None,
    };
    let mut attempts = RebuildAttempts::default();
    let (built, position) = loop {
        attempts.start_one()?;
        if let Attempt::Completed(completed) =
            build_generation(&layout, options, sources, previous.as_ref()).await?
        {
            break completed;
        }
    };
    let new_generation = layout.generation(built.number);
    let documents = built.index.num_documents();
    retire(Arc::new(built)).await;
    let switched_to = new_generation.clone();
    on_index_directory(&layout, move |layout| {
        layout.switch_to(&switched_to)?;
        match &previous {
            Some(previous) => layout.remove(previous),
            None => Ok(()),
        }
    })
    .await?;
    Ok(RebuildReport {
        generation: new_generation.number,
        documents,
        log_position: position.map(|position| position.to_string()),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Takes the writer lock of `generation` when it is a readable index.
fn lock_generation(
    generation: &Generation,
) -> Result<Option<tantivy::IndexWriter<TantivyDocument>>, RebuildError> {
    let Ok(index) = tantivy::Index::open_in_dir(&generation.path) else {
        return Ok(None);
    };
    match index.writer_with_num_threads(1, 15_000_000) {
        Ok(writer) => Ok(Some(writer)),
        Err(tantivy::TantivyError::LockFailure(..)) => {
            Err(RebuildError::ReadPrevious(anyhow::anyhow!(
                "the index at {} is in use (is `deflect serve` running on it?)",
                generation.path.display()
            )))
        }
        Err(_) => Ok(None),
    }
}

/// Runs `operation` on the index directory on a blocking thread (directory walks,
/// renames, fsyncs and removals take milliseconds to seconds), mapping its I/O error to
/// a [`RebuildError`] naming the directory.
async fn on_index_directory<T, F>(layout: &IndexLayout, operation: F) -> Result<T, RebuildError>
where
    F: FnOnce(&IndexLayout) -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let layout = layout.clone();
    spawn_blocking_in_span(move || {
        operation(&layout).map_err(|source| RebuildError::Directory {
            path: layout.root().to_owned(),
            source,
        })
    })
    .await?
}

/// How many times one rebuild started (each start-over after the content log was
/// trimmed past its position is one more).
#[derive(Debug, Default)]
struct RebuildAttempts {
    made: u32,
}

impl RebuildAttempts {
    /// Counts one more attempt; fails when [`MAX_REBUILD_ATTEMPTS`] were made already.
    fn start_one(&mut self) -> Result<(), RebuildError> {
        if self.made >= MAX_REBUILD_ATTEMPTS {
            return Err(RebuildError::OutrunByTrimming {
                attempts: self.made,
            });
        }
        self.made += 1;
        Ok(())
    }
}

/// How one attempt at building a generation ended.
enum Attempt<T> {
    Completed(T),
    /// The content log was trimmed past the position the attempt started from: what
    /// was written meanwhile can no longer be read, so the build was discarded.
    TrimmedPast(LogPosition),
    /// The content log was lost, emptied or seeded while the snapshot was read: the
    /// read may mix two lives of the log, so the build was discarded.
    LifeChanged,
}

/// Creates the next generation and fills it from `sources` (or, without a log, from
/// `previous`); returns it committed, with its writer running, and the log position it
/// reached. A failed or outrun build is removed.
async fn build_generation(
    layout: &IndexLayout,
    options: WriterOptions,
    sources: &RebuildSources,
    previous: Option<&Generation>,
) -> Result<Attempt<(ServedGeneration, Option<LogPosition>)>, RebuildError> {
    let creating_in = layout.clone();
    let loading = WriterOptions {
        bulk_load: true,
        ..options
    };
    let built =
        spawn_blocking_in_span(move || create_generation(&creating_in, loading, false)).await??;
    match fill_generation(&built, sources, previous).await {
        Ok(Attempt::Completed(position)) => Ok(Attempt::Completed((built, position))),
        Ok(Attempt::TrimmedPast(position)) => {
            tracing::warn!(
                %position,
                "the content log was trimmed past the rebuild's position while it read the snapshot; starting over"
            );
            discard_generation(layout, built).await;
            Ok(Attempt::TrimmedPast(position))
        }
        Ok(Attempt::LifeChanged) => {
            tracing::warn!("the content log was lost or seeded while the rebuild read the snapshot; starting over");
            discard_generation(layout, built).await;
            Ok(Attempt::LifeChanged)
        }
        Err(error) => {
            discard_generation(layout, built).await;
            Err(error)
        }
    }
}

/// Stops the writer of a generation that will not be served and removes its directory
/// (what cannot be removed now goes at the next start).
async fn discard_generation(layout: &IndexLayout, generation: ServedGeneration) {
    let path = layout.generation(generation.number).path;
    retire(Arc::new(generation)).await;
    let removed_path = path.clone();
    let removed = spawn_blocking_in_span(move || std::fs::remove_dir_all(&removed_path))
        .await
        .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)));
    if let Err(error) = removed {
        tracing::warn!(%error, path = %path.display(), "failed to remove an index build that was given up; it goes at the next start");
    }
}

/// How a catch-up of a new generation with the content log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Every change the log held after the starting position is applied, up to this one.
    Reached(LogPosition),
    /// Changes after this position were trimmed from the stream before they were read:
    /// the generation misses them and must be rebuilt.
    TrimmedPast(LogPosition),
    /// The log was lost, emptied or seeded during the catch-up: the generation holds
    /// content of another life of the log and must be rebuilt.
    LifeChanged,
}

/// Applies to `generation` every change the content log holds after `from` up to its
/// head when the catch-up starts, in order, neighbouring entries committed together (see
/// [`crate::content::apply_entries_to_generation`]). The head is a fixed goal: other
/// instances may append for as long as the catch-up runs, and a catch-up that chased the
/// moving end of the log would never finish while they append faster than this instance
/// commits. What comes after the goal is the follower's. After every read it checks that
/// the stream was not trimmed past the position it read from: trimming only moves
/// forward, so when nothing after that position is trimmed after the read, the read
/// started right after it and skipped nothing. Otherwise the catch-up stops with
/// [`CatchUp::TrimmedPast`] instead of silently skipping the changes that are gone.
pub async fn catch_up_generation(
    log: &ContentLog,
    generation: &ServedGeneration,
    from: LogPosition,
) -> Result<CatchUp, RebuildError> {
    let goal = log.life().await?.head();
    let mut reached = from;
    loop {
        if reached >= goal {
            return Ok(CatchUp::Reached(reached));
        }
        let read = log.read_after(reached, false).await?;
        let Some(last_position) = read.last_position else {
            return Ok(CatchUp::Reached(reached));
        };
        match log.life().await?.judge(Some(reached)) {
            PositionVerdict::Usable => {}
            PositionVerdict::Trimmed => return Ok(CatchUp::TrimmedPast(reached)),
            // Lost, seeded or emptied meanwhile: what the read returned does not
            // continue the snapshot the generation was filled from.
            _ => return Ok(CatchUp::LifeChanged),
        }
        let max_changes_per_commit = log.settings().max_changes_per_entry;
        apply_entries_to_generation(generation, read.entries, max_changes_per_commit).await?;
        reached = last_position;
    }
}

/// Fills `built` from the sources and commits it with the log position it reached;
/// gives up with [`Attempt::TrimmedPast`] when the stream was trimmed past the position
/// noted before the snapshot was read (the changes written during the read are gone).
async fn fill_generation(
    built: &ServedGeneration,
    sources: &RebuildSources,
    previous: Option<&Generation>,
) -> Result<Attempt<Option<LogPosition>>, RebuildError> {
    let mut tenants_filled = std::collections::HashSet::new();
    let position = match &sources.log {
        Some(log) => {
            // The position first: whatever is written while the snapshot is read is in
            // the stream after it, and applied again (idempotently) afterwards, as long
            // as the stream still holds it.
            let life_before = log.life().await?;
            if life_before.seeding {
                return Err(ContentLogError::SeedInProgress.into());
            }
            if life_before.born.is_none() {
                refuse_to_empty(previous).await?;
            }
            let position = life_before.head();
            for tenant in log.tenants().await? {
                let mut cursor = 0;
                loop {
                    let page = log.snapshot_page(&tenant, cursor).await?;
                    if !page.documents.is_empty() {
                        tenants_filled.insert(tenant.clone());
                    }
                    queue_documents(built, &tenant, page.documents).await?;
                    match page.next_cursor {
                        Some(next) => cursor = next,
                        None => break,
                    }
                }
            }
            let life_after = log.life().await?;
            if life_after.has_trimmed_after(position) {
                return Ok(Attempt::TrimmedPast(position));
            }
            let same_life = life_after.born == life_before.born
                && life_after.seeded == life_before.seeded
                && !life_after.seeding;
            if !same_life {
                // Lost or seeded during the read: the snapshot read may mix two lives.
                return Ok(Attempt::LifeChanged);
            }
            Some(position)
        }
        None => {
            if let Some(previous) = previous {
                let path = previous.path.clone();
                let by_tenant = spawn_blocking_in_span(move || {
                    if !path.join("meta.json").exists() {
                        return Ok(Default::default());
                    }
                    read_stored_documents(&path)
                })
                .await?
                .map_err(RebuildError::ReadPrevious)?;
                for (tenant, documents) in by_tenant {
                    tenants_filled.insert(tenant.clone());
                    for batch in documents.chunks(DOCUMENTS_PER_BATCH) {
                        queue_documents(built, &tenant, batch.to_vec()).await?;
                    }
                }
            }
            None
        }
    };
    if let Some(demo_tenant) = &sources.demo_tenant {
        if !tenants_filled.contains(demo_tenant) {
            // Parsing the catalog validates and cleans every document: blocking work.
            let documents = spawn_blocking_in_span(demo_documents).await?;
            queue_documents(built, demo_tenant, documents).await?;
        }
    }
    let writer = built.writer.as_ref().ok_or(WriteError::Stopped)?;
    writer.compact(position).await?;
    Ok(Attempt::Completed(position))
}

/// Refuses a rebuild from an empty content log when the `previous` generation has
/// documents: the log was lost or never filled, and the rebuild would replace the only
/// copy of that content with nothing (the follower seeds the log from it instead).
async fn refuse_to_empty(previous: Option<&Generation>) -> Result<(), RebuildError> {
    let Some(previous) = previous else {
        return Ok(());
    };
    let path = previous.path.clone();
    let documents = spawn_blocking_in_span(move || {
        tantivy::Index::open_in_dir(&path)
            .and_then(|index| index.reader())
            .map(|reader| reader.searcher().num_docs())
            .unwrap_or(0)
    })
    .await?;
    if documents > 0 {
        return Err(RebuildError::LogEmpty { documents });
    }
    Ok(())
}

/// Analyses `documents` off the async threads and queues them on `built`'s writer.
async fn queue_documents(
    built: &ServedGeneration,
    tenant: &TenantId,
    documents: Vec<ContentDocument>,
) -> Result<(), RebuildError> {
    if documents.is_empty() {
        return Ok(());
    }
    let index = built.index.clone();
    let writer = built.writer.clone().ok_or(WriteError::Stopped)?;
    let tenant = tenant.clone();
    tokio::task::spawn_blocking(move || {
        let operations = upsert_operations(&index, &tenant, &documents);
        writer.queue_blocking(operations)
    })
    .await??;
    Ok(())
}

/// Reads every stored document of the index at `path`, by tenant. It reads the index
/// with the schema it was built with, so an index of an older schema version can be
/// rebuilt into the current one. (Public for the crash tests, which compare an index
/// with what was written.)
pub fn read_stored_documents(
    path: &Path,
) -> anyhow::Result<std::collections::BTreeMap<TenantId, Vec<ContentDocument>>> {
    use anyhow::Context;

    let index = tantivy::Index::open_in_dir(path).context("failed to open the index")?;
    let source_field = index
        .schema()
        .get_field("source")
        .context("the index has no source field")?;
    let reader = index.reader().context("failed to open a reader")?;
    let searcher = reader.searcher();
    let mut by_tenant: std::collections::BTreeMap<TenantId, Vec<ContentDocument>> =
        Default::default();
    for segment in searcher.segment_readers() {
        let store = segment
            .get_store_reader(64)
            .context("failed to open a document store")?;
        let alive = segment.alive_bitset();
        for document_id in 0..segment.max_doc() {
            if alive.is_some_and(|alive| !alive.is_alive(document_id)) {
                continue;
            }
            let indexed: TantivyDocument = store
                .get(document_id)
                .context("failed to read a document")?;
            let Some(stored) = StoredDocument::from_indexed(&indexed, source_field)
                .context("failed to parse a stored document")?
            else {
                continue;
            };
            let tenant = TenantId::parse(&stored.tenant).map_err(anyhow::Error::msg)?;
            by_tenant.entry(tenant).or_default().push(stored.document);
        }
    }
    Ok(by_tenant)
}
