//! The command line: `serve`, `index`, `reindex`, `sync` and `eval`.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::configuration::{config_directory, load_settings, Settings};
use crate::content::ContentStore;
use crate::content_log::ContentLog;
use crate::domain::TenantId;
use crate::eval::{evaluate, format_feedback_simulation, format_report, simulate_feedback};
use crate::events::keys::KeySpace;
use crate::ndjson::{LineSplitter, SplitLine};
use crate::reindex::{open_current_generation, rebuild_offline, RebuildSources};
use crate::search::{IndexLayout, ServingIndex};
use crate::startup::{start_content, sync_service, Application};
use crate::sync::SourceKind;
use crate::telemetry::init_telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "deflect",
    version,
    about = "Suggests micro-lessons and articles while customers type support tickets"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the HTTP service.
    Serve {
        /// A settings file layered over config/ (for API keys and secrets).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Loads an NDJSON file (one document per line, `-` for stdin) into the index,
    /// offline (the service must not be running on the same index).
    Index {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        config: Option<PathBuf>,
        file: PathBuf,
    },
    /// Rebuilds the index into a new generation from its sources (the content log in
    /// Redis; without it, the current generation's stored documents) and switches to
    /// it, offline (the service must not be running on the same index). Also rebuilds an
    /// index of an older schema version into the current one.
    Reindex {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs the content sync of the configured sources once, offline (the service must
    /// not be running on the same index; a running service syncs by itself and on
    /// `POST /v1/sync`), and prints what each run did.
    Sync {
        /// Only this tenant's sources (default: every tenant's).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this source: zendesk, freshdesk or catalog.
        #[arg(long)]
        source: Option<String>,
        /// List everything the sources have, removing what they deleted.
        #[arg(long)]
        full: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs a labelled relevance set through the production search path.
    Eval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        queries: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Write per-query scores and confidence to this file (JSON lines), for tuning.
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Simulate the ranking feedback: counters from the simulated customers of every
        /// other query, then the other queries without, with and with inverted feedback;
        /// then the two halves swap, so every query is evaluated once.
        #[arg(long)]
        feedback_simulation: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Index {
            tenant,
            config,
            file,
        } => index_file(config.as_deref(), &tenant, &file),
        Command::Reindex { config } => reindex(config.as_deref()),
        Command::Sync {
            tenant,
            source,
            full,
            config,
        } => run_sync(
            config.as_deref(),
            tenant.as_deref(),
            source.as_deref(),
            full,
        ),
        Command::Eval {
            corpus,
            queries,
            json,
            dump,
            feedback_simulation,
            config,
        } => {
            if feedback_simulation {
                run_feedback_simulation(config.as_deref(), &corpus, &queries, json)
            } else {
                run_eval(config.as_deref(), &corpus, &queries, json, dump.as_deref())
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "deflect failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings_with_telemetry(extra_file: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = load_settings(&config_directory(), extra_file)?;
    init_telemetry(settings.log.format, &settings.log.filter);
    Ok(settings)
}

fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn serve(extra_file: Option<&Path>) -> anyhow::Result<()> {
    crate::allocator::use_small_pages();
    let settings = settings_with_telemetry(extra_file)?;
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        let application = Application::build(settings).await?;
        application.run_until_stopped().await?;
        Ok(())
    })
}

fn reindex(extra_file: Option<&Path>) -> anyhow::Result<()> {
    let settings = settings_with_telemetry(extra_file)?;
    let runtime = async_runtime()?;
    // The content log's Redis client starts its connection task on the runtime.
    let _entered = runtime.enter();
    let sources = RebuildSources {
        log: content_log(&settings)?,
        demo_tenant: if settings.demo.load_when_empty {
            Some(TenantId::parse(&settings.demo.tenant).map_err(anyhow::Error::msg)?)
        } else {
            None
        },
    };
    let report = runtime.block_on(rebuild_offline(
        &settings.index.path,
        settings.index.offline_writer_options(),
        &sources,
    ))?;
    println!(
        "rebuilt the index into generation {} with {} documents in {:.1} s",
        report.generation, report.documents, report.seconds
    );
    Ok(())
}

/// The content log, when `content_log.enabled`.
fn content_log(settings: &Settings) -> anyhow::Result<Option<ContentLog>> {
    if !settings.content_log.enabled {
        return Ok(None);
    }
    let key_space = KeySpace::new(&settings.events.key_prefix).map_err(anyhow::Error::msg)?;
    Ok(Some(ContentLog::new(
        &settings.redis.url,
        &key_space,
        &settings.content_log,
    )))
}

fn index_file(extra_file: Option<&Path>, tenant: &str, file: &Path) -> anyhow::Result<()> {
    let settings = settings_with_telemetry(extra_file)?;
    let tenant = TenantId::parse(tenant).map_err(anyhow::Error::msg)?;
    let opened = open_current_generation(
        &IndexLayout::new(&settings.index.path),
        settings.index.offline_writer_options(),
    )
    .context("failed to open the index for writing (is `deflect serve` using it?)")?;
    let store = ContentStore::serving(ServingIndex::new(opened.generation), None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    // With the content log on, every batch goes to the log too, so running instances
    // (and instances started later) get the documents. The log's Redis client starts its
    // connection task on the runtime.
    let log = {
        let _entered = runtime.enter();
        content_log(&settings)?
    };
    let append_to_log = |documents: &[crate::domain::ContentDocument]| -> anyhow::Result<()> {
        let Some(log) = &log else { return Ok(()) };
        let changes: Vec<_> = documents
            .iter()
            .cloned()
            .map(crate::content::ContentChange::Upsert)
            .collect();
        runtime
            .block_on(log.append(&tenant, changes))
            .context("failed to append the documents to the content log (is redis up?)")?;
        Ok(())
    };

    let mut reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let opened = std::fs::File::open(file)
            .with_context(|| format!("failed to open {}", file.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, opened))
    };
    let batch_size = settings.index.bulk_batch_size.max(1);
    let mut splitter = LineSplitter::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut applied = 0usize;
    let mut failed = 0usize;
    let mut buffer = vec![0u8; 1 << 20];
    let mut on_line = |line: SplitLine<'_>, batch: &mut Vec<_>| match line {
        SplitLine::Complete { number, bytes } => match crate::ndjson::parse_line(bytes, number) {
            Ok(Some(document)) => batch.push(document),
            Ok(None) => {}
            Err(error) => {
                failed += 1;
                eprintln!("line {}: {}", error.line, error.message);
            }
        },
        SplitLine::TooLong { number } => {
            failed += 1;
            eprintln!("line {number}: the line is too long");
        }
    };
    loop {
        let read = reader
            .read(&mut buffer)
            .context("failed to read the input")?;
        if read == 0 {
            break;
        }
        splitter.push(&buffer[..read], |line| on_line(line, &mut batch));
        if batch.len() >= batch_size {
            applied += batch.len();
            let full_batch = std::mem::take(&mut batch);
            append_to_log(&full_batch)?;
            store.queue_blocking(&tenant, &full_batch)?;
        }
    }
    splitter.finish(|line| on_line(line, &mut batch));
    applied += batch.len();
    if !batch.is_empty() {
        append_to_log(&batch)?;
    }
    store.queue_blocking(&tenant, &batch)?;
    store
        .compact_blocking()
        .context("failed to commit the loaded documents")?;
    drop(store);
    println!("indexed {applied} documents for tenant {tenant}; {failed} lines failed");
    if failed > 0 && applied == 0 {
        anyhow::bail!("no line could be indexed");
    }
    Ok(())
}

fn run_sync(
    extra_file: Option<&Path>,
    tenant: Option<&str>,
    source: Option<&str>,
    full: bool,
) -> anyhow::Result<()> {
    let settings = settings_with_telemetry(extra_file)?;
    let tenant = tenant
        .map(TenantId::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let source = source
        .map(|raw| {
            SourceKind::parse(raw)
                .ok_or_else(|| anyhow::anyhow!("--source must be zendesk, freshdesk or catalog"))
        })
        .transpose()?;
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        // The content as `serve` opens it: with the content log on, the sync's changes go
        // through the log, so running instances apply them too.
        let (store, _reindexer) = start_content(&settings)
            .await
            .context("failed to open the index for writing (is `deflect serve` using it?)")?;
        let key_space = KeySpace::new(&settings.events.key_prefix).map_err(anyhow::Error::msg)?;
        let sync = sync_service(&settings, &key_space, store)?;
        let mut runs = Vec::new();
        for (source_tenant, kind) in sync.configured_sources() {
            let tenant_matches = tenant.as_ref().is_none_or(|wanted| *wanted == source_tenant);
            if tenant_matches && source.is_none_or(|wanted| wanted == kind) {
                runs.push((source_tenant, kind));
            }
        }
        if runs.is_empty() {
            anyhow::bail!("no enabled source matches (see [tenants.<id>.sources] in the settings)");
        }
        let mut failures = 0;
        for (run_tenant, kind) in runs {
            match sync.sync(&run_tenant, kind, full).await {
                Ok(summary) => println!(
                    "{} {}: {:?} sync, {} upserted, {} deleted, {} unchanged, {} skipped, {} pages{}",
                    summary.tenant,
                    kind.as_str(),
                    summary.mode,
                    summary.upserted,
                    summary.deleted,
                    summary.unchanged,
                    summary.skipped,
                    summary.pages,
                    if summary.not_modified { " (not modified)" } else { "" },
                ),
                Err(error) => {
                    failures += 1;
                    eprintln!("{run_tenant} {}: failed: {}", kind.as_str(), crate::error::error_chain(&error));
                }
            }
        }
        if failures > 0 {
            anyhow::bail!("{failures} source(s) failed; their index content and cursors are unchanged");
        }
        Ok(())
    })
}

fn run_eval(
    extra_file: Option<&Path>,
    corpus: &Path,
    queries: &Path,
    json: bool,
    dump: Option<&Path>,
) -> anyhow::Result<()> {
    let settings = settings_with_telemetry(extra_file)?;
    let report = evaluate(&settings, corpus, queries, dump)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", format_report(&report));
    }
    Ok(())
}

fn run_feedback_simulation(
    extra_file: Option<&Path>,
    corpus: &Path,
    queries: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let settings = settings_with_telemetry(extra_file)?;
    let report = simulate_feedback(&settings, corpus, queries)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", format_feedback_simulation(&report));
    }
    Ok(())
}
