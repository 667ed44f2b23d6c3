//! The real `deflect` binary, killed (SIGKILL) at random moments while it rebuilds the
//! index (`deflect reindex`) or commits content (`deflect index`): every time, the index
//! must open on its last good generation with every committed document, and whatever
//! the killed process left behind must be cleaned up at the next open. The same with the
//! content log on: `deflect serve` following the log (restarted, or started on an empty
//! index as a new instance would be) and `deflect reindex` rebuilding from the log's
//! snapshot, killed while another writer keeps appending; every killed index must hold
//! what its recorded log position promises, and a last run must catch up with the whole
//! log, also while another instance appends faster than a commit takes. Also `deflect
//! reindex` as the way to rebuild an index of another schema version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deflect::configuration::load_settings;
use deflect::content::ContentChange;
use deflect::content_log::ContentLog;
use deflect::domain::TenantId;
use deflect::events::keys::KeySpace;
use deflect::reindex::read_stored_documents;
use deflect::search::log_position::committed_position;
use deflect::search::{ContentIndex, IndexLayout, LogPosition};
use secrecy::SecretString;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Kills at least this many runs.
const KILLED_RUNS: usize = 24;
/// Documents of the catalog the rebuilds copy: enough that a rebuild takes a moment.
const CATALOG_DOCUMENTS: usize = 3_000;
/// Documents each `deflect index` run adds.
const ADDED_DOCUMENTS: usize = 50;

struct Workspace {
    _directory: tempfile::TempDir,
    index_path: PathBuf,
    files: PathBuf,
    /// The Redis key prefix of the content log, when the binary runs with it on.
    content_log_prefix: Option<String>,
}

impl Workspace {
    fn new() -> Workspace {
        let directory = tempfile::tempdir().unwrap();
        let index_path = directory.path().join("index");
        let files = directory.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        Workspace {
            index_path,
            files,
            _directory: directory,
            content_log_prefix: None,
        }
    }

    /// A workspace whose binary follows the content log under a fresh key prefix of the
    /// Redis at 127.0.0.1:6379.
    fn with_content_log() -> Workspace {
        Workspace {
            content_log_prefix: Some(format!("test:{}:", uuid::Uuid::new_v4().simple())),
            ..Workspace::new()
        }
    }

    /// The binary with settings for this workspace: no content log unless the workspace
    /// has one (then no Redis is needed), no demo catalog, quiet logs.
    fn deflect(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deflect"));
        command
            .args(arguments)
            .env(
                "DEFLECT_CONFIG_DIR",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            )
            .env("DEFLECT_INDEX__PATH", &self.index_path)
            .env("DEFLECT_INDEX__WRITER_THREADS", "1")
            .env("DEFLECT_INDEX__WRITER_MEMORY_MB", "30")
            .env("DEFLECT_DEMO__LOAD_WHEN_EMPTY", "false")
            .env("DEFLECT_LOG__FILTER", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.content_log_prefix {
            None => command.env("DEFLECT_CONTENT_LOG__ENABLED", "false"),
            Some(prefix) => command
                .env("DEFLECT_CONTENT_LOG__ENABLED", "true")
                .env("DEFLECT_REDIS__URL", REDIS_URL)
                .env("DEFLECT_EVENTS__KEY_PREFIX", prefix)
                .env(
                    "DEFLECT_EVENTS__SPOOL_PATH",
                    self.files.join("events.spool"),
                )
                .env("DEFLECT_SERVER__PORT", "0"),
        };
        command
    }

    /// Writes `count` documents numbered from `first` to an NDJSON file; returns its path.
    fn catalog_file(&self, name: &str, first: usize, count: usize) -> PathBuf {
        let mut lines = String::new();
        for number in first..first + count {
            lines.push_str(&document_line(number));
            lines.push('\n');
        }
        let path = self.files.join(name);
        std::fs::write(&path, lines).unwrap();
        path
    }

    /// Runs `arguments` to completion; fails the test unless it succeeds.
    fn run(&self, arguments: &[&str]) -> Duration {
        let started = Instant::now();
        let status = self.deflect(arguments).status().unwrap();
        assert!(status.success(), "deflect {arguments:?} failed: {status}");
        started.elapsed()
    }

    /// Opens the index as a starting service would (after its cleanup); returns the
    /// documents of the current generation and what the cleanup removed.
    fn open_like_a_restart(&self) -> (u64, Vec<PathBuf>) {
        let (index, removed) = self.open_index_like_a_restart();
        (index.num_documents(), removed)
    }

    /// Like [`Workspace::open_like_a_restart`], returning the opened index.
    fn open_index_like_a_restart(&self) -> (ContentIndex, Vec<PathBuf>) {
        let layout = IndexLayout::new(&self.index_path);
        let removed = layout.remove_leftovers().unwrap();
        let current = layout
            .current()
            .unwrap()
            .expect("a current generation after every kill");
        let index = ContentIndex::open_or_create(&current.path).unwrap_or_else(|error| {
            panic!("generation {} does not open: {error:#}", current.number)
        });
        let generations: Vec<_> = std::fs::read_dir(self.index_path.join("generations"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            generations,
            vec![current.number.to_string()],
            "only the current generation is left"
        );
        assert!(!self.index_path.join("CURRENT.tmp").exists());
        (index, removed)
    }
}

/// The NDJSON line of test document `number` (id `doc-<number>`).
fn document_line(number: usize) -> String {
    serde_json::json!({
        "id": format!("doc-{number}"),
        "kind": "article",
        "title": format!("How to export report {number} as a spreadsheet"),
        "summary": "Exports, reports and spreadsheets for administrators.",
        "body": format!("Open the reports page, pick report {number}, choose export and download the spreadsheet. {}", "Filters and columns carry over to the export. ".repeat(8)),
    })
    .to_string()
}

/// A small deterministic generator (xorshift), so a failing run can be repeated.
struct Random(u64);

impl Random {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn a_process_killed_at_random_points_of_rebuilds_and_commits_restarts_on_the_last_good_generation()
{
    // Arrange: a catalog in the index, and how long a whole rebuild takes.
    let workspace = Workspace::new();
    let catalog = workspace.catalog_file("catalog.ndjson", 0, CATALOG_DOCUMENTS);
    workspace.run(&["index", "--tenant", "acme", catalog.to_str().unwrap()]);
    let rebuild_time = workspace.run(&["reindex"]);
    let (mut committed, _) = workspace.open_like_a_restart();
    assert_eq!(committed, CATALOG_DOCUMENTS as u64);
    let seed = 0x5eed_d3f1_ec70_u64;
    let mut random = Random(seed);
    let mut cleanups = 0;
    let mut next_document = CATALOG_DOCUMENTS;

    for run in 0..KILLED_RUNS {
        // Act: every third run commits new documents, the others rebuild; the kill
        // lands anywhere from the start to a little after a whole run would take.
        let is_commit = run % 3 == 2;
        let added = workspace.catalog_file("added.ndjson", next_document, ADDED_DOCUMENTS);
        let arguments: Vec<&str> = if is_commit {
            vec!["index", "--tenant", "acme", added.to_str().unwrap()]
        } else {
            vec!["reindex"]
        };
        let kill_after =
            Duration::from_millis(random.next_below(rebuild_time.as_millis() as u64 * 11 / 10));
        let mut child = workspace.deflect(&arguments).spawn().unwrap();
        std::thread::sleep(kill_after);
        let finished_before_kill = child
            .try_wait()
            .unwrap()
            .is_some_and(|status| status.success());
        child.kill().ok();
        child.wait().unwrap();

        // Assert
        let (documents, removed) = workspace.open_like_a_restart();
        if !removed.is_empty() {
            cleanups += 1;
        }
        let expected = if is_commit && finished_before_kill {
            vec![committed + ADDED_DOCUMENTS as u64]
        } else if is_commit {
            vec![committed, committed + ADDED_DOCUMENTS as u64]
        } else {
            vec![committed]
        };
        assert!(
            expected.contains(&documents),
            "run {run} (seed {seed:#x}, {arguments:?} killed after {kill_after:?}): {documents} documents, expected one of {expected:?}"
        );
        if documents > committed {
            next_document += ADDED_DOCUMENTS;
        }
        committed = documents;
    }

    // The kills hit rebuilds in the middle, not only before or after them.
    eprintln!(
        "{KILLED_RUNS} runs killed; a whole rebuild took {rebuild_time:?}; {cleanups} kills left something to clean up"
    );
    assert!(
        cleanups >= 3,
        "only {cleanups} kills left something to clean up"
    );
}

/// Kills of the runs that follow the content log.
const KILLED_FOLLOWING_RUNS: usize = 24;
/// Documents each append of the writer beside the killed processes adds.
const DOCUMENTS_PER_APPEND: usize = 20;
/// How long a `serve` may take to apply the log up to a position: a guard against a
/// hang, not a speed goal (a debug build on a 2-core machine kept busy by eight other
/// processes needs under 10 s). Catch-ups that chased the moving end of the log, one
/// commit per entry, once hit it on slow machines.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// One append of the content log's writer: where it landed and what it added.
struct AppendedBatch {
    position: LogPosition,
    ids: Vec<String>,
}

/// What the writer of the content log has done so far. `attempted` gets a batch's ids
/// before it is sent (a killed process may have applied a batch whose append has not
/// returned yet); `appended` once Redis has answered.
#[derive(Default)]
struct AppendRecord {
    attempted: BTreeSet<String>,
    appended: Vec<AppendedBatch>,
}

impl AppendRecord {
    /// The ids of every batch at or before `position`: what an index that recorded
    /// `position` must hold.
    fn promised_at(&self, position: Option<LogPosition>) -> BTreeSet<String> {
        let Some(position) = position else {
            return BTreeSet::new();
        };
        self.appended
            .iter()
            .filter(|batch| batch.position <= position)
            .flat_map(|batch| batch.ids.iter().cloned())
            .collect()
    }
}

/// Writes test documents to the content log of `prefix` the way every instance does
/// (`ContentLog::append`), as another instance beside the killed ones would.
struct LogWriter {
    log: ContentLog,
    tenant: TenantId,
    runtime: tokio::runtime::Runtime,
    record: Arc<Mutex<AppendRecord>>,
    prefix: String,
}

impl LogWriter {
    fn new(prefix: &str) -> LogWriter {
        let config_directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let settings = load_settings(&config_directory, None).unwrap();
        let key_space = KeySpace::new(prefix).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The client's connections belong to the runtime they are made in.
        let log = {
            let _entered = runtime.enter();
            ContentLog::new(
                &SecretString::from(REDIS_URL.to_owned()),
                &key_space,
                &settings.content_log,
            )
        };
        LogWriter {
            log,
            tenant: TenantId::parse("acme").unwrap(),
            runtime,
            record: Default::default(),
            prefix: prefix.to_owned(),
        }
    }

    /// Appends documents `first..first + count` as one batch.
    fn append(&self, first: usize, count: usize) {
        let documents: Vec<_> = (first..first + count)
            .map(|number| {
                deflect::ndjson::parse_line(document_line(number).as_bytes(), 1)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let ids: Vec<String> = documents
            .iter()
            .map(|document| document.id.clone())
            .collect();
        self.record
            .lock()
            .unwrap()
            .attempted
            .extend(ids.iter().cloned());
        let changes: Vec<_> = documents.into_iter().map(ContentChange::Upsert).collect();
        let position = self
            .runtime
            .block_on(self.log.append(&self.tenant, changes))
            .expect("the content log takes the append (is redis up on 127.0.0.1:6379?)");
        self.record
            .lock()
            .unwrap()
            .appended
            .push(AppendedBatch { position, ids });
    }
}

/// Removes the test's keys from the shared Redis.
impl Drop for LogWriter {
    fn drop(&mut self) {
        crate::helpers::remove_redis_keys_under(&self.prefix);
    }
}

/// A [`LogWriter`] appending on a thread of its own until stopped, as another instance
/// beside the processes under test would.
struct AppendingWriter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<LogWriter>,
}

impl AppendingWriter {
    /// Appends documents from `first_document` on, `documents_per_append` at a time, with
    /// `pause` after each append. With `rewritten_documents`, the numbering starts over at
    /// `first_document` after that many: the changes keep coming, the catalog (and so a
    /// rebuild's snapshot) stays that size.
    fn start(
        writer: LogWriter,
        first_document: usize,
        documents_per_append: usize,
        pause: Duration,
        rewritten_documents: Option<usize>,
    ) -> AppendingWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next_document = first_document;
            while !stopped.load(Ordering::Relaxed) {
                writer.append(next_document, documents_per_append);
                next_document += documents_per_append;
                if rewritten_documents.is_some_and(|count| next_document >= first_document + count)
                {
                    next_document = first_document;
                }
                std::thread::sleep(pause);
            }
            writer
        });
        AppendingWriter { stop, thread }
    }

    /// Stops the appends and returns the writer (whose drop removes the test's keys).
    fn stop(self) -> LogWriter {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Returns the ids of the live documents of `index`.
fn document_ids(index: &ContentIndex) -> BTreeSet<String> {
    read_stored_documents(index.path())
        .unwrap()
        .into_values()
        .flatten()
        .map(|document| document.id)
        .collect()
}

/// Returns the log position `index` recorded with its last commit.
fn position_of(index: &ContentIndex) -> Option<LogPosition> {
    committed_position(&tantivy::Index::open_in_dir(index.path()).unwrap())
}

/// Returns the log position the current generation of `index_path` has committed, or
/// `None` while it cannot be read (a generation being switched or removed).
fn committed_position_of(index_path: &Path) -> Option<LogPosition> {
    let current = IndexLayout::new(index_path).current().ok()??;
    let index = tantivy::Index::open_in_dir(&current.path).ok()?;
    committed_position(&index)
}

/// Runs `deflect serve` until its index has committed `position` or a later one, then
/// kills it; returns how long that took. The server logs at info level to a file whose
/// tail the failure shows (a catch-up that never ends says why in that log).
fn serve_until_it_applied(workspace: &Workspace, position: LogPosition) -> Duration {
    let log_path = workspace.files.join("serve.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = workspace
        .deflect(&["serve"])
        .env("DEFLECT_LOG__FILTER", "info")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while committed_position_of(&workspace.index_path).is_none_or(|applied| applied < position) {
        if started.elapsed() > CATCH_UP_LIMIT {
            child.kill().ok();
            child.wait().ok();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            panic!(
                "deflect serve did not apply the log up to {position} in {CATCH_UP_LIMIT:?} (it reached {:?}); the end of its log:\n{}",
                committed_position_of(&workspace.index_path),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    child.kill().ok();
    child.wait().unwrap();
    took
}

/// What a killed process left, opened as a restart would: the documents, the log position
/// recorded with them, and whether the cleanup removed anything. A `serve` killed before
/// it created its first generation leaves none: an empty index without a position.
fn left_after_a_kill(workspace: &Workspace) -> (BTreeSet<String>, Option<LogPosition>, bool) {
    let layout = IndexLayout::new(&workspace.index_path);
    if layout.current().unwrap().is_none() {
        let removed = layout.remove_leftovers().unwrap();
        return (BTreeSet::new(), None, !removed.is_empty());
    }
    let (index, removed) = workspace.open_index_like_a_restart();
    (
        document_ids(&index),
        position_of(&index),
        !removed.is_empty(),
    )
}

#[test]
fn processes_following_the_content_log_killed_at_random_points_keep_what_their_log_position_promises_and_catch_up(
) {
    // Arrange: a catalog in the content log, and how long a rebuild from it takes.
    let workspace = Workspace::with_content_log();
    let writer = LogWriter::new(workspace.content_log_prefix.as_deref().unwrap());
    for first in (0..CATALOG_DOCUMENTS).step_by(500) {
        writer.append(first, 500);
    }
    let rebuild_time = workspace.run(&["reindex"]);
    let (held, _, _) = left_after_a_kill(&workspace);
    assert_eq!(
        held,
        writer.record.lock().unwrap().attempted,
        "a rebuild from the log holds the whole log"
    );
    let record = writer.record.clone();
    let catalog_position = record.lock().unwrap().appended.last().unwrap().position;
    // Another instance keeps writing while the processes are killed.
    let background_writer = AppendingWriter::start(
        writer,
        CATALOG_DOCUMENTS,
        DOCUMENTS_PER_APPEND,
        Duration::from_millis(100),
        None,
    );
    // How long a new instance (`serve` on an empty index) takes to have the whole log.
    std::thread::sleep(Duration::from_millis(300));
    let written_meanwhile = record.lock().unwrap().appended.last().unwrap().position;
    std::fs::remove_dir_all(&workspace.index_path).unwrap();
    let new_instance_time = serve_until_it_applied(&workspace, written_meanwhile);
    let seed = 0xc0de_106f_0110_u64;
    let mut random = Random(seed);
    let mut cleanups = 0;
    let mut kills_after_following = 0;

    for run in 0..KILLED_FOLLOWING_RUNS {
        // Act: a restarted `serve` catching up from its position, a `serve` on an empty
        // index (a new instance rebuilding from the snapshot), or an offline `reindex`,
        // killed anywhere from the start to a little after a whole run would take.
        let arguments: &[&str] = match run % 3 {
            0 => {
                // A restart of an instance that has followed the log (the runs before
                // may have left an index that never got that far).
                if left_after_a_kill(&workspace).1.is_none() {
                    let latest = record.lock().unwrap().appended.last().unwrap().position;
                    serve_until_it_applied(&workspace, latest);
                }
                &["serve"]
            }
            1 => {
                std::fs::remove_dir_all(&workspace.index_path).unwrap();
                &["serve"]
            }
            _ => &["reindex"],
        };
        let whole_run = match arguments {
            ["serve"] => new_instance_time,
            _ => rebuild_time,
        };
        let kill_after =
            Duration::from_millis(random.next_below(whole_run.as_millis() as u64 * 13 / 10));
        let mut child = workspace.deflect(arguments).spawn().unwrap();
        std::thread::sleep(kill_after);
        child.kill().ok();
        child.wait().unwrap();

        // Assert: the index holds every batch up to the position it recorded, and
        // nothing that was not written.
        let (held, position, cleaned_up) = left_after_a_kill(&workspace);
        if cleaned_up {
            cleanups += 1;
        }
        let record = record.lock().unwrap();
        let promised = record.promised_at(position);
        let context = format!(
            "run {run} (seed {seed:#x}, {arguments:?} killed after {kill_after:?}, position {position:?})"
        );
        let missing: Vec<_> = promised.difference(&held).take(5).collect();
        assert!(
            missing.is_empty(),
            "{context}: the index lacks documents at or before its position, e.g. {missing:?}"
        );
        let unknown: Vec<_> = held.difference(&record.attempted).take(5).collect();
        assert!(
            unknown.is_empty(),
            "{context}: the index holds documents nobody wrote: {unknown:?}"
        );
        if position.is_some_and(|position| position > catalog_position) {
            kills_after_following += 1;
        }
    }

    // Assert: a last `serve` catches up with the whole log once the writing stops.
    let writer = background_writer.stop();
    let last_position = record.lock().unwrap().appended.last().unwrap().position;
    serve_until_it_applied(&workspace, last_position);
    let (held, _, _) = left_after_a_kill(&workspace);
    assert_eq!(
        held,
        record.lock().unwrap().attempted,
        "after catching up the index holds exactly what the log holds"
    );
    drop(writer);
    eprintln!(
        "{KILLED_FOLLOWING_RUNS} runs following the log killed; a rebuild took {rebuild_time:?}, a new instance had the whole log in {new_instance_time:?}; {cleanups} kills left something to clean up, {kills_after_following} had applied batches written during the runs"
    );
    assert!(
        cleanups >= 2,
        "only {cleanups} kills left something to clean up"
    );
    assert!(
        kills_after_following >= 2,
        "only {kills_after_following} kills hit a process that had followed the log"
    );
}

#[test]
fn a_new_instance_catches_up_and_serves_while_another_instance_appends_faster_than_it_commits() {
    // Arrange: a catalog in the content log, and another instance appending one document
    // at a time without a pause: far more entries a second than a commit takes. It
    // rewrites the same 500 documents: with new ones at that pace, the snapshot grew by
    // thousands of documents a second, and on a busy CI machine every rebuild from it took
    // longer than the log took to be trimmed past it (seen once: three attempts in 120 s).
    let workspace = Workspace::with_content_log();
    let writer = LogWriter::new(workspace.content_log_prefix.as_deref().unwrap());
    writer.append(0, 500);
    let record = writer.record.clone();
    let background_writer = AppendingWriter::start(writer, 500, 1, Duration::ZERO, Some(500));
    std::thread::sleep(Duration::from_millis(300));
    let written_before_the_start = record.lock().unwrap().appended.last().unwrap().position;

    // Act: a new instance (`serve` on an empty index) rebuilds from the snapshot and
    // catches up while the appends go on.
    serve_until_it_applied(&workspace, written_before_the_start);
    let writer = background_writer.stop();

    // Assert: it holds everything up to the position it recorded.
    let (held, position, _) = left_after_a_kill(&workspace);
    let record = record.lock().unwrap();
    let missing: Vec<_> = record
        .promised_at(position)
        .difference(&held)
        .take(5)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "the index lacks {missing:?}");
    assert!(position.is_some_and(|position| position >= written_before_the_start));
    drop(writer);
}

#[test]
fn deflect_reindex_refuses_to_replace_an_index_with_documents_by_an_empty_content_log() {
    // Arrange: documents indexed while the content log was off; the log is empty (never
    // used, or lost).
    let workspace = Workspace::with_content_log();
    let _cleanup = LogWriter::new(workspace.content_log_prefix.as_deref().unwrap());
    let catalog = workspace.catalog_file("catalog.ndjson", 0, 20);
    let indexed = workspace
        .deflect(&["index", "--tenant", "acme", catalog.to_str().unwrap()])
        .env("DEFLECT_CONTENT_LOG__ENABLED", "false")
        .status()
        .unwrap();
    assert!(indexed.success());

    // Act
    let output = workspace
        .deflect(&["reindex"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();

    // Assert
    assert!(!output.status.success(), "the rebuild was refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("content log is empty"), "{stderr}");
    let (documents, _) = workspace.open_like_a_restart();
    assert_eq!(documents, 20, "the index keeps its documents");
}

#[test]
fn deflect_reindex_rebuilds_an_index_of_another_schema_version_that_serve_refuses() {
    // Arrange: an index whose schema marker names another version.
    let workspace = Workspace::new();
    let catalog = workspace.catalog_file("catalog.ndjson", 0, 20);
    workspace.run(&["index", "--tenant", "acme", catalog.to_str().unwrap()]);
    let layout = IndexLayout::new(&workspace.index_path);
    let old = layout.current().unwrap().unwrap();
    std::fs::write(
        old.path.join("deflect-schema.json"),
        r#"{"schema_version": 999}"#,
    )
    .unwrap();
    let refused = ContentIndex::open_or_create(&old.path)
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("deflect reindex"), "{refused}");

    // Act
    workspace.run(&["reindex"]);

    // Assert
    let (documents, _) = workspace.open_like_a_restart();
    assert_eq!(documents, 20);
    assert!(!old.path.exists(), "the old generation is removed");
}

#[test]
fn an_index_of_the_layout_before_generations_is_served_and_moved_into_one_by_a_reindex() {
    // Arrange: an index written straight into the index directory, as older builds did.
    let workspace = Workspace::new();
    {
        let index = ContentIndex::open_or_create(&workspace.index_path).unwrap();
        let (writer, writer_thread) = deflect::search::IndexWriterHandle::start(
            &index,
            deflect::search::writer::WriterOptions {
                memory_budget_bytes: 20 * 1024 * 1024,
                threads: 1,
                max_operations_per_commit: usize::MAX,
                bulk_load: false,
            },
        )
        .unwrap();
        let store = deflect::content::ContentStore::new(index, writer);
        let catalog = std::fs::read_to_string(workspace.catalog_file("old.ndjson", 0, 12)).unwrap();
        let documents: Vec<_> = catalog
            .lines()
            .enumerate()
            .map(|(number, line)| {
                deflect::ndjson::parse_line(line.as_bytes(), number + 1)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let acme = deflect::domain::TenantId::parse("acme").unwrap();
        store.upsert_blocking(&acme, &documents).unwrap();
        drop(store);
        writer_thread.join().unwrap();
    }
    let layout = IndexLayout::new(&workspace.index_path);
    assert_eq!(layout.current().unwrap().unwrap().number, 0);

    // Act
    workspace.run(&["reindex"]);

    // Assert
    let (documents, _) = workspace.open_like_a_restart();
    assert_eq!(documents, 12);
    assert_eq!(layout.current().unwrap().unwrap().number, 1);
    assert!(
        !workspace.index_path.join("meta.json").exists(),
        "the old layout's files are gone"
    );
}
