//! The real `deflect` binary, killed (SIGKILL) at random moments while it rebuilds the
//! index (`deflect reindex`) or commits content (`deflect index`): every time, the index
//! must open on its last good generation with every committed document, and whatever
//! the killed process left behind must be cleaned up at the next open. Also
//! `deflect reindex` as the way to rebuild an index of another schema version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deflect::search::{ContentIndex, IndexLayout};

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
        }
    }

    /// The binary with settings for this workspace: no content log (no Redis needed),
    /// no demo catalog, quiet logs.
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
            .env("DEFLECT_CONTENT_LOG__ENABLED", "false")
            .env("DEFLECT_DEMO__LOAD_WHEN_EMPTY", "false")
            .env("DEFLECT_LOG__FILTER", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Writes `count` documents numbered from `first` to an NDJSON file; returns its path.
    fn catalog_file(&self, name: &str, first: usize, count: usize) -> PathBuf {
        let mut lines = String::new();
        for number in first..first + count {
            lines.push_str(&serde_json::json!({
                "id": format!("doc-{number}"),
                "kind": "article",
                "title": format!("How to export report {number} as a spreadsheet"),
                "summary": "Exports, reports and spreadsheets for administrators.",
                "body": format!("Open the reports page, pick report {number}, choose export and download the spreadsheet. {}", "Filters and columns carry over to the export. ".repeat(8)),
            }).to_string());
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
        (index.num_documents(), removed)
    }
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
