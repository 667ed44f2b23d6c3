//! Benchmarks the in-process search path (`SuggestService::suggest_blocking`, what
//! `POST /v1/suggest` runs on a blocking thread) on a generated 100,000-document catalog.
//!
//! Prints, besides criterion's estimates: the time to generate and index the catalog,
//! the index size, p50/p99 per draft kind from individually timed calls (the targets are
//! stated as p99, which criterion does not report), and the throughput of two threads.
//! See `benches/BENCHMARKS.md` for how to run it and what it measured.
//!
//! `DEFLECT_BENCH_DOCUMENTS` shrinks the catalog for a quick try;
//! `DEFLECT_BENCH_DUMP_CATALOG=FILE` writes the catalog as NDJSON (to compare with
//! `benches/load/generate_catalog.py`); `DEFLECT_BENCH_INDEX=DIR` keeps the index in DIR and
//! reuses it on the next run instead of indexing again (indexing is then not measured);
//! `DEFLECT_BENCH_ONLY=short,typing_mix,...` runs only the named draft sets (for profiling).

mod catalog;

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use deflect::configuration::{config_directory, load_settings, Settings};
use deflect::content::ContentStore;
use deflect::domain::{ContentDocument, DocumentInput, DraftTicket, SuggestRequestBody, TenantId};
use deflect::search::document::index_document;
use deflect::search::schema::ContentSchema;
use deflect::search::{ContentIndex, ContentSearcher, IndexWriterHandle};
use deflect::search_threads::SearchThreads;
use deflect::suggest::SuggestService;

use catalog::{Catalog, DraftKind, DraftMaker, Vocabulary};

const DEFAULT_DOCUMENTS: usize = 100_000;
/// Documents analysed on their own to tell analysis from tantivy's share of indexing.
const ANALYSIS_SAMPLE: usize = 5_000;
const DRAFTS_PER_KIND: usize = 1_000;
const TIMED_CALLS_PER_KIND: usize = 2_000;
/// Keeps a slow kind from stretching the run: timing stops after this long.
const TIMING_BUDGET: Duration = Duration::from_secs(15);
/// Marks an index directory built by this benchmark, with the catalog size it holds.
const REUSE_MARKER_FILE: &str = "deflect-bench-catalog.json";
const LOAD_MIX_DRAFTS: usize = 4_000;
const THROUGHPUT_THREADS: usize = 2;
const TENANT: &str = "demo";

const KINDS: [DraftKind; 4] = [
    DraftKind::Short,
    DraftKind::Long,
    DraftKind::AsYouType,
    DraftKind::Typo,
];

/// Goals from the issue.
const TARGET_P99: Duration = Duration::from_millis(2);
const TARGET_INDEXING: Duration = Duration::from_secs(20);

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let settings = load_settings(&config_directory(), None)
        .expect("the settings in config/ load (run from the package root, as cargo bench does)");
    let document_count = std::env::var("DEFLECT_BENCH_DOCUMENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_DOCUMENTS);
    let tenant = TenantId::parse(TENANT).expect("a valid tenant id");

    println!("== catalog");
    let vocabulary = Vocabulary::bundled();
    let generation_start = Instant::now();
    let catalog = catalog::generate(document_count, &vocabulary);
    println!(
        "generated {document_count} documents over {} words in {:.2?}",
        vocabulary.word_count(),
        generation_start.elapsed()
    );
    if let Some(path) = std::env::var_os("DEFLECT_BENCH_DUMP_CATALOG") {
        dump_catalog(&catalog, Path::new(&path));
    }
    let documents = content_documents(&catalog);

    println!("== indexing");
    let temporary_directory = tempfile::tempdir().expect("a temporary index directory");
    let kept_directory = std::env::var_os("DEFLECT_BENCH_INDEX").map(PathBuf::from);
    let index_path = kept_directory
        .clone()
        .unwrap_or_else(|| temporary_directory.path().to_owned());
    let indexing = if kept_directory.is_some() && holds_catalog(&index_path, document_count) {
        println!("reusing the index in {}", index_path.display());
        None
    } else {
        if kept_directory.is_some() && index_path.exists() {
            remove_own_index(&index_path);
        }
        let analysis = time_analysis(&tenant, &documents);
        let indexing = index_catalog(&settings, &index_path, &tenant, &documents);
        println!(
            "analysis alone (index_document, one thread): {:.2?} for {} documents, about \
             {:.1?} for all",
            analysis.sample_time,
            analysis.sample_size,
            analysis.extrapolated(document_count)
        );
        std::fs::write(
            index_path.join(REUSE_MARKER_FILE),
            serde_json::json!({ "documents": document_count }).to_string(),
        )
        .expect("the reuse marker is written");
        Some(indexing)
    };
    drop(documents);
    let index_bytes = directory_size(&index_path);
    let segment_count = segment_count(&index_path);
    println!(
        "index size {:.1} MiB in {segment_count} segments",
        index_bytes as f64 / (1024.0 * 1024.0)
    );

    // Reopened as `deflect serve` opens it: the reader sees the merged segments.
    let index = ContentIndex::open_or_create(&index_path).expect("the index reopens");
    // The benchmark calls the blocking path directly, as the search threads do.
    let service = SuggestService::new(
        ContentSearcher::new(index, settings.search.tuning()),
        settings.search.default_locale.clone(),
        SearchThreads::start(1).expect("a search thread starts"),
    );
    let only = std::env::var("DEFLECT_BENCH_ONLY").ok();
    let is_selected = |name: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|selected| selected.trim() == name))
    };
    let mut maker = DraftMaker::new(&catalog, &vocabulary);
    let drafts_by_kind: Vec<(DraftKind, Vec<DraftTicket>)> = KINDS
        .iter()
        .map(|kind| {
            let drafts = (0..DRAFTS_PER_KIND)
                .map(|_| parse_draft(&settings, maker.draft(*kind)))
                .collect();
            (*kind, drafts)
        })
        .filter(|(kind, _)| is_selected(kind.name()))
        .collect();
    let load_mix = catalog::load_mix(&catalog, &vocabulary, LOAD_MIX_DRAFTS);
    // The load mix as the benches/load drafts file has it, and without its long drafts:
    // what a widget sends while a customer types a subject line.
    let mixes: Vec<(&str, Vec<DraftTicket>)> = [("load_mix", true), ("typing_mix", false)]
        .into_iter()
        .filter(|(name, _)| is_selected(name))
        .map(|(name, with_long_drafts)| {
            let drafts = load_mix
                .iter()
                .filter(|(kind, _)| with_long_drafts || *kind != DraftKind::Long)
                .map(|(_, text)| parse_draft(&settings, text.clone()))
                .collect();
            (name, drafts)
        })
        .collect();

    println!("== criterion");
    let mut group = criterion.benchmark_group("suggest");
    // Flat sampling: a long draft can take a few hundred milliseconds, and linear sampling
    // would run it 55 times or more.
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (kind, drafts) in &drafts_by_kind {
        let mut next = 0;
        group.bench_function(kind.name(), |bencher| {
            bencher.iter(|| {
                let draft = &drafts[next % drafts.len()];
                next += 1;
                black_box(suggest(&service, &tenant, draft))
            })
        });
    }
    group.finish();

    println!(
        "== latency per call, one thread: {TIMED_CALLS_PER_KIND} calls per kind or \
         {TIMING_BUDGET:?}, whichever comes first"
    );
    let mut latencies_by_kind = Vec::new();
    for (kind, drafts) in &drafts_by_kind {
        let latencies = time_calls(&service, &tenant, drafts, TIMED_CALLS_PER_KIND);
        latencies.print(kind.name());
        latencies_by_kind.push((*kind, latencies));
    }
    for (name, drafts) in &mixes {
        time_calls(&service, &tenant, drafts, drafts.len()).print(name);
    }

    println!(
        "== throughput, {THROUGHPUT_THREADS} threads, each through the whole mix or \
         {TIMING_BUDGET:?}"
    );
    for (name, drafts) in &mixes {
        let (calls, elapsed) = measure_throughput(&service, &tenant, drafts);
        println!(
            "{name:<12} {:.0} suggestions/s ({calls} calls in {elapsed:.2?})",
            calls as f64 / elapsed.as_secs_f64()
        );
    }

    println!("== against the targets");
    if only.is_some() {
        println!("latency targets: not judged (DEFLECT_BENCH_ONLY left some drafts out)");
    } else {
        let within_target = |include_typos: bool| {
            latencies_by_kind
                .iter()
                .filter(|(kind, _)| include_typos || *kind != DraftKind::Typo)
                .all(|(_, latencies)| latencies.p99 <= TARGET_P99)
        };
        println!(
            "p99 <= {TARGET_P99:?} for short, long and as-you-type drafts: {}",
            verdict(within_target(false))
        );
        println!(
            "p99 <= {TARGET_P99:?} for drafts with a typo too: {}",
            verdict(within_target(true))
        );
    }
    match indexing {
        Some(indexing) => println!(
            "indexing {document_count} documents <= {TARGET_INDEXING:?} (until merged): {} \
             ({:.1?})",
            verdict(indexing.until_merged <= TARGET_INDEXING),
            indexing.until_merged
        ),
        None => println!("indexing: not measured (the index was reused)"),
    }
    criterion.final_summary();
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn parse_draft(settings: &Settings, text: String) -> DraftTicket {
    let body = SuggestRequestBody {
        text: Some(text),
        ..Default::default()
    };
    DraftTicket::parse(
        body,
        settings.search.default_limit,
        settings.search.max_limit,
    )
    .expect("generated drafts are valid")
}

fn suggest(
    service: &SuggestService,
    tenant: &TenantId,
    draft: &DraftTicket,
) -> deflect::suggest::Suggestions {
    service
        .suggest_blocking(tenant.clone(), draft)
        .expect("the search succeeds")
}

fn dump_catalog(catalog: &Catalog, path: &Path) {
    let file = std::fs::File::create(path).expect("the dump file can be created");
    let mut writer = std::io::BufWriter::new(file);
    for document in &catalog.documents {
        serde_json::to_writer(&mut writer, document).expect("the dump is written");
        writer.write_all(b"\n").expect("the dump is written");
    }
    writer.flush().expect("the dump is written");
    println!("wrote the catalog to {}", path.display());
}

/// Validates the generated documents as `deflect index` does with NDJSON lines.
fn content_documents(catalog: &Catalog) -> Vec<ContentDocument> {
    catalog
        .documents
        .iter()
        .map(|value| {
            let input: DocumentInput =
                serde_json::from_value(value.clone()).expect("a generated document deserializes");
            ContentDocument::parse(input, None).expect("a generated document is valid")
        })
        .collect()
}

struct AnalysisTiming {
    sample_size: usize,
    sample_time: Duration,
}

impl AnalysisTiming {
    fn extrapolated(&self, documents: usize) -> Duration {
        self.sample_time
            .mul_f64(documents as f64 / self.sample_size.max(1) as f64)
    }
}

/// Times turning documents into tantivy documents (tokenizing, stemming, prefixes, the
/// stored JSON): the part of indexing that runs on the caller's thread.
fn time_analysis(tenant: &TenantId, documents: &[ContentDocument]) -> AnalysisTiming {
    let fields = ContentSchema::bundled().fields;
    let sample = &documents[..documents.len().min(ANALYSIS_SAMPLE)];
    let start = Instant::now();
    for document in sample {
        black_box(index_document(&fields, tenant, document));
    }
    AnalysisTiming {
        sample_size: sample.len(),
        sample_time: start.elapsed(),
    }
}

struct IndexingTiming {
    until_merged: Duration,
}

/// Indexes `documents` the way `deflect index` does: batches of `bulk_batch_size`
/// queued, one commit at the end that merges the load into one segment.
fn index_catalog(
    settings: &Settings,
    path: &Path,
    tenant: &TenantId,
    documents: &[ContentDocument],
) -> IndexingTiming {
    let index = ContentIndex::open_or_create(path).expect("the index is created");
    let (writer, writer_thread) =
        IndexWriterHandle::start(&index, settings.index.offline_writer_options())
            .expect("the writer starts");
    let store = ContentStore::new(index, writer);
    // Like `deflect index`: batches of `bulk_batch_size` queued, one commit at the end.
    let batch_size = settings.index.bulk_batch_size.max(1);

    let start = Instant::now();
    for batch in documents.chunks(batch_size) {
        store
            .queue_blocking(tenant, batch)
            .expect("the batch is queued");
    }
    store.compact_blocking().expect("the catalog is committed");
    let until_searchable = start.elapsed();
    drop(store);
    writer_thread
        .join()
        .expect("the writer thread ends cleanly");
    let until_merged = start.elapsed();
    println!(
        "indexed {} documents in batches of {batch_size}: searchable after {until_searchable:.2?}, \
         merges done after {until_merged:.2?} ({:.0} documents/s)",
        documents.len(),
        documents.len() as f64 / until_merged.as_secs_f64()
    );
    IndexingTiming { until_merged }
}

fn directory_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .expect("the index directory is readable")
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

/// Returns how many segments tantivy's `meta.json` lists.
fn segment_count(path: &Path) -> usize {
    let meta = std::fs::read(path.join("meta.json")).expect("the index has a meta.json");
    let meta: serde_json::Value = serde_json::from_slice(&meta).expect("meta.json is JSON");
    meta["segments"].as_array().map_or(0, Vec::len)
}

/// Removes an index this benchmark built earlier (for another catalog size); refuses to
/// touch a non-empty directory it did not create.
fn remove_own_index(path: &Path) {
    let is_empty = std::fs::read_dir(path)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if is_empty {
        return;
    }
    assert!(
        path.join(REUSE_MARKER_FILE).exists(),
        "DEFLECT_BENCH_INDEX={} is a non-empty directory this benchmark did not create",
        path.display()
    );
    std::fs::remove_dir_all(path).expect("the old benchmark index is removed");
}

/// Returns whether `path` holds an index this benchmark built for `documents` documents.
fn holds_catalog(path: &Path, documents: usize) -> bool {
    let Ok(marker) = std::fs::read(path.join(REUSE_MARKER_FILE)) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&marker)
        .is_ok_and(|marker| marker["documents"].as_u64() == Some(documents as u64))
}

struct Latencies {
    /// The same calls' CPU time on the calling thread: unlike wall time, it hardly
    /// changes when other processes compete for the cores, so it compares two builds
    /// measured on a busy machine.
    cpu_p50: Duration,
    cpu_p99: Duration,
    calls: usize,
    /// Share of calls answered with at least one suggestion.
    answered: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

impl Latencies {
    fn from_samples(
        mut samples: Vec<Duration>,
        mut cpu_samples: Vec<Duration>,
        answered_calls: usize,
    ) -> Latencies {
        samples.sort_unstable();
        cpu_samples.sort_unstable();
        let percentile = |samples: &[Duration], share: f64| {
            let rank = (share * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Latencies {
            cpu_p50: percentile(&cpu_samples, 0.50),
            cpu_p99: percentile(&cpu_samples, 0.99),
            calls: samples.len(),
            answered: answered_calls as f64 / samples.len() as f64,
            p50: percentile(&samples, 0.50),
            p90: percentile(&samples, 0.90),
            p99: percentile(&samples, 0.99),
            p999: percentile(&samples, 0.999),
            max: *samples.last().expect("at least one call was timed"),
        }
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<12} p50 {:>9.3?}  p90 {:>9.3?}  p99 {:>9.3?}  p99.9 {:>9.3?}  max {:>9.3?}  \
             ({} calls, {:.0}% answered; thread CPU p50 {:.3?} p99 {:.3?})",
            self.p50,
            self.p90,
            self.p99,
            self.p999,
            self.max,
            self.calls,
            100.0 * self.answered,
            self.cpu_p50,
            self.cpu_p99
        );
    }
}

/// Times up to `calls` calls one by one, cycling through `drafts`, within the budget.
fn time_calls(
    service: &SuggestService,
    tenant: &TenantId,
    drafts: &[DraftTicket],
    calls: usize,
) -> Latencies {
    let mut samples = Vec::with_capacity(calls);
    let mut cpu_samples = Vec::with_capacity(calls);
    let mut answered_calls = 0;
    let budget_start = Instant::now();
    for draft in drafts.iter().cycle().take(calls) {
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        let suggestions = black_box(suggest(service, tenant, draft));
        samples.push(start.elapsed());
        cpu_samples.push(thread_cpu_time().saturating_sub(cpu_start));
        answered_calls += usize::from(!suggestions.abstained);
        if budget_start.elapsed() > TIMING_BUDGET {
            break;
        }
    }
    Latencies::from_samples(samples, cpu_samples, answered_calls)
}

/// Returns the CPU time the calling thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread CPU clock is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Returns suggestions per second with every thread running through the mix, each from
/// its own starting point, until it has run the whole mix or the budget is spent.
fn measure_throughput(
    service: &SuggestService,
    tenant: &TenantId,
    drafts: &[DraftTicket],
) -> (usize, Duration) {
    let start = Instant::now();
    let calls: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THROUGHPUT_THREADS)
            .map(|thread_number| {
                scope.spawn(move || {
                    let offset = thread_number * drafts.len() / THROUGHPUT_THREADS;
                    let mut calls = 0;
                    for draft in drafts.iter().cycle().skip(offset).take(drafts.len()) {
                        black_box(suggest(service, tenant, draft));
                        calls += 1;
                        if start.elapsed() > TIMING_BUDGET {
                            break;
                        }
                    }
                    calls
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a throughput thread ends cleanly"))
            .sum()
    });
    (calls, start.elapsed())
}
