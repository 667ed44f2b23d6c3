//! `deflect eval`: runs a labelled relevance set through the production search path and
//! reports how well it ranks and when it stays silent.
//!
//! Format (see `../shared/relevance/README.md`): a corpus of `{"id", "title", "body"}`
//! lines and queries of `{"id", "text", "relevant": [ids]}`; an empty `relevant` list
//! marks a query whose right answer is no suggestion.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::configuration::Settings;
use crate::content::ContentStore;
use crate::domain::{ContentDocument, DocumentInput, DraftTicket, SuggestRequestBody, TenantId};
use crate::events::feedback::{boosts_from_figures, rerank, LessonBoosts};
use crate::events::stats::LessonFigures;
use crate::search::confidence::ConfidenceInputs;
use crate::search::writer::WriterOptions;
use crate::search::{ContentIndex, ContentSearcher, IndexWriterHandle};
use crate::search_threads::SearchThreads;
use crate::suggest::{SuggestService, Suggestions};

/// Ranks looked at for MRR and nDCG.
const DEPTH: usize = 10;

#[derive(Debug, Deserialize)]
struct LabelledQuery {
    id: String,
    text: String,
    relevant: Vec<String>,
    locale: Option<String>,
}

/// The figures of one evaluation.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RelevanceReport {
    pub documents: usize,
    pub queries: usize,
    pub in_scope_queries: usize,
    pub out_of_scope_queries: usize,
    pub success_at_1: f64,
    pub success_at_3: f64,
    pub success_at_5: f64,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
    /// Share of out-of-scope queries answered with no suggestion (None without any).
    pub abstain_rate_out_of_scope: Option<f64>,
    /// Share of in-scope queries wrongly answered with no suggestion.
    pub silent_rate_in_scope: f64,
}

/// Accumulates per-query outcomes into a [`RelevanceReport`].
#[derive(Debug, Default)]
pub struct RelevanceTally {
    report: RelevanceReport,
    out_of_scope_abstained: usize,
    in_scope_silent: usize,
}

impl RelevanceTally {
    /// Records one query: the ids returned, best first (empty when abstaining).
    pub fn record(&mut self, returned: &[String], relevant: &HashSet<String>) {
        self.report.queries += 1;
        if relevant.is_empty() {
            self.report.out_of_scope_queries += 1;
            if returned.is_empty() {
                self.out_of_scope_abstained += 1;
            }
            return;
        }
        self.report.in_scope_queries += 1;
        if returned.is_empty() {
            self.in_scope_silent += 1;
        }
        let first_hit = returned
            .iter()
            .take(DEPTH)
            .position(|id| relevant.contains(id));
        if let Some(rank) = first_hit {
            self.report.mrr_at_10 += 1.0 / (rank as f64 + 1.0);
            self.report.success_at_1 += f64::from(u8::from(rank < 1));
            self.report.success_at_3 += f64::from(u8::from(rank < 3));
            self.report.success_at_5 += f64::from(u8::from(rank < 5));
        }
        let dcg: f64 = returned
            .iter()
            .take(DEPTH)
            .enumerate()
            .filter(|(_, id)| relevant.contains(*id))
            .map(|(rank, _)| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(DEPTH))
            .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        self.report.ndcg_at_10 += dcg / ideal;
    }

    pub fn finish(mut self, documents: usize) -> RelevanceReport {
        let in_scope = self.report.in_scope_queries.max(1) as f64;
        let report = &mut self.report;
        report.documents = documents;
        for figure in [
            &mut report.success_at_1,
            &mut report.success_at_3,
            &mut report.success_at_5,
            &mut report.mrr_at_10,
            &mut report.ndcg_at_10,
        ] {
            *figure /= in_scope;
        }
        report.silent_rate_in_scope = self.in_scope_silent as f64 / in_scope;
        report.abstain_rate_out_of_scope = (report.out_of_scope_queries > 0)
            .then(|| self.out_of_scope_abstained as f64 / report.out_of_scope_queries as f64);
        self.report
    }
}

/// Indexes `corpus` into a fresh temporary index and runs every query of `queries`
/// through [`SuggestService`], with the search settings of `settings`.
///
/// With `dump`, writes one JSON line per query (the ids and scores of its results,
/// confidence and what it was computed from, and the rank of the first relevant result)
/// for tuning abstention and comparing rankings.
pub fn evaluate(
    settings: &Settings,
    corpus: &Path,
    queries: &Path,
    dump: Option<&Path>,
) -> anyhow::Result<RelevanceReport> {
    let mut dump_file = match dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("failed to create {}", path.display()))?,
        )),
        None => None,
    };
    let set = EvalSet::load(settings, corpus)?;
    let labelled_queries = read_queries(queries)?;
    let mut tally = RelevanceTally::default();
    for query in &labelled_queries {
        let (suggestions, confidence_inputs) = set.answer(query, None)?;
        let relevant: HashSet<String> = query.relevant.iter().cloned().collect();
        if let Some(dump_file) = dump_file.as_mut() {
            let results = suggestions
                .as_ref()
                .map(|found| found.results.as_slice())
                .unwrap_or_default();
            let line = serde_json::json!({
                "id": query.id,
                "in_scope": !relevant.is_empty(),
                "confidence": suggestions.as_ref().map_or(0.0, |found| found.confidence),
                "results": results.iter().map(|result| result.id.as_str()).collect::<Vec<_>>(),
                "scores": results.iter().map(|result| result.score).collect::<Vec<_>>(),
                "relevant_rank": results.iter().position(|result| relevant.contains(&result.id)),
                "best_score": confidence_inputs.best_score,
                "draft_weight": confidence_inputs.draft_weight,
                "draft_words": confidence_inputs.draft_words,
                "coverage": confidence_inputs.coverage,
            });
            writeln!(dump_file, "{line}").context("failed to write the dump")?;
        }
        let returned = returned_ids(suggestions);
        tracing::debug!(query = %query.id, returned = ?returned, "evaluated");
        tally.record(&returned, &relevant);
    }
    Ok(tally.finish(set.documents))
}

/// What `deflect eval --feedback-simulation` reports.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackSimulationReport {
    /// The counters of each half of the queries (every other query).
    pub halves: Vec<SimulatedHalf>,
    /// Every query without feedback (the figures of `deflect eval`) ...
    pub baseline: RelevanceReport,
    /// ... with the multipliers the simulated counters of the other half earn ...
    pub with_feedback: RelevanceReport,
    /// ... and with those multipliers inverted (feedback that contradicts relevance: what
    /// the bounds let it cost at worst).
    pub inverted_feedback: RelevanceReport,
}

/// The feedback one half of the queries' simulated customers left.
#[derive(Debug, Clone, Serialize)]
pub struct SimulatedHalf {
    pub sessions: usize,
    pub boosted_lessons: usize,
    pub penalized_lessons: usize,
}

/// Simulates the ranking feedback on a labelled set, in two halves (every other query):
/// the customers of one half see the top 3 suggestions, open and are deflected by the
/// first relevant one, or mark the top one not helpful when none is relevant. The
/// counters they leave become multipliers (the production rule, `[feedback]` settings),
/// and the queries of the other half are evaluated without them, with them and with them
/// inverted. Then the halves swap, so every query is evaluated once, with feedback it
/// did not produce (a query's own customers would make the feedback look better than it
/// is), and no result hangs on which half happened to be held out.
pub fn simulate_feedback(
    settings: &Settings,
    corpus: &Path,
    queries: &Path,
) -> anyhow::Result<FeedbackSimulationReport> {
    let set = EvalSet::load(settings, corpus)?;
    let labelled_queries = read_queries(queries)?;
    let (even, odd): (Vec<_>, Vec<_>) = labelled_queries
        .iter()
        .enumerate()
        .partition(|(position, _)| position % 2 == 0);
    let halves: [Vec<&LabelledQuery>; 2] =
        [even, odd].map(|half| half.into_iter().map(|(_, query)| query).collect::<Vec<_>>());
    let mut tallies: [RelevanceTally; 3] = Default::default();
    let mut simulated_halves = Vec::new();
    for (training, evaluated) in [(&halves[0], &halves[1]), (&halves[1], &halves[0])] {
        let boosts = simulated_boosts(&set, training, settings)?;
        simulated_halves.push(SimulatedHalf {
            sessions: training.len(),
            boosted_lessons: boosts
                .values()
                .filter(|multiplier| **multiplier > 1.0)
                .count(),
            penalized_lessons: boosts
                .values()
                .filter(|multiplier| **multiplier < 1.0)
                .count(),
        });
        let inverted: LessonBoosts = boosts
            .iter()
            .map(|(id, multiplier)| (id.clone(), 2.0 - multiplier))
            .collect();
        for query in evaluated {
            let relevant: HashSet<String> = query.relevant.iter().cloned().collect();
            for (tally, query_boosts) in
                tallies
                    .iter_mut()
                    .zip([None, Some(&boosts), Some(&inverted)])
            {
                tally.record(&returned_ids(set.answer(query, query_boosts)?.0), &relevant);
            }
        }
    }
    let [baseline, with_feedback, inverted_feedback] =
        tallies.map(|tally| tally.finish(set.documents));
    Ok(FeedbackSimulationReport {
        halves: simulated_halves,
        baseline,
        with_feedback,
        inverted_feedback,
    })
}

/// The multipliers the simulated customers of `queries` earn their lessons: each sees
/// the top 3 of its answer (without feedback), opens and is deflected by the first
/// relevant one, or votes the top one not helpful when none is relevant.
fn simulated_boosts(
    set: &EvalSet,
    queries: &[&LabelledQuery],
    settings: &Settings,
) -> anyhow::Result<LessonBoosts> {
    const SHOWN: usize = 3;
    let mut figures: HashMap<String, LessonFigures> = HashMap::new();
    for query in queries {
        let returned = returned_ids(set.answer(query, None)?.0);
        let shown = &returned[..returned.len().min(SHOWN)];
        for (position, id) in shown.iter().enumerate() {
            let lesson = lesson_figures(&mut figures, id);
            lesson.shown += 1;
            match position {
                0 => lesson.shown_first += 1,
                1 => lesson.shown_second += 1,
                _ => {}
            }
        }
        match shown.iter().position(|id| query.relevant.contains(id)) {
            Some(position) => {
                let hit_figures = lesson_figures(&mut figures, &shown[position]);
                hit_figures.opened += 1;
                hit_figures.helpful += 1;
                hit_figures.deflections += 1;
                match position {
                    0 => hit_figures.deflections_shown_first += 1,
                    1 => hit_figures.deflections_shown_second += 1,
                    _ => {}
                }
            }
            None => {
                if let Some(top) = shown.first() {
                    lesson_figures(&mut figures, top).not_helpful += 1;
                }
            }
        }
    }
    Ok(boosts_from_figures(figures.values(), &settings.feedback))
}

/// Writer settings of an evaluation: one indexing thread, so the documents land in one
/// segment in corpus order and results of equal score come in the same order every run
/// (with two threads, clinc150's success@5 came out 0.9507 or 0.9510 from run to run).
fn eval_writer_options(settings: &Settings) -> WriterOptions {
    WriterOptions {
        threads: 1,
        ..settings.index.offline_writer_options()
    }
}

/// A labelled corpus indexed into a temporary index, with the production suggest path.
struct EvalSet {
    service: SuggestService,
    tenant: TenantId,
    documents: usize,
    _directory: tempfile::TempDir,
}

impl EvalSet {
    fn load(settings: &Settings, corpus: &Path) -> anyhow::Result<EvalSet> {
        let directory =
            tempfile::tempdir().context("failed to create a temporary index directory")?;
        let index = ContentIndex::open_or_create(directory.path())?;
        let (writer, writer_thread) =
            IndexWriterHandle::start(&index, eval_writer_options(settings))?;
        let store = ContentStore::new(index.clone(), writer);
        let tenant = TenantId::parse("eval").expect("a valid tenant id");
        let documents = read_corpus(corpus)?;
        store.upsert_blocking(&tenant, &documents)?;
        drop(store);
        writer_thread.join().ok();
        Ok(EvalSet {
            // Evaluation calls the blocking path directly; one idle search thread.
            service: SuggestService::new(
                ContentSearcher::new(index, settings.search.tuning()),
                settings.search.default_locale.clone(),
                SearchThreads::start(1).context("failed to start a search thread")?,
            ),
            tenant,
            documents: documents.len(),
            _directory: directory,
        })
    }

    /// Answers `query` as `/v1/suggest` would (no answer for a draft it refuses), its
    /// results reordered by `boosts` when given.
    fn answer(
        &self,
        query: &LabelledQuery,
        boosts: Option<&LessonBoosts>,
    ) -> anyhow::Result<(Option<Suggestions>, ConfidenceInputs)> {
        let body = SuggestRequestBody {
            text: Some(query.text.clone()),
            locale: query.locale.clone(),
            limit: Some(DEPTH as u32),
            ..Default::default()
        };
        let Ok(draft) = DraftTicket::parse(body, DEPTH, DEPTH) else {
            return Ok((None, ConfidenceInputs::default()));
        };
        let (mut found, inputs) = self
            .service
            .suggest_and_explain_blocking(self.tenant.clone(), &draft)?;
        if let Some(boosts) = boosts {
            rerank(&mut found.results, boosts);
        }
        Ok((Some(found), inputs))
    }
}

fn lesson_figures<'figures>(
    figures: &'figures mut HashMap<String, LessonFigures>,
    id: &str,
) -> &'figures mut LessonFigures {
    figures
        .entry(id.to_owned())
        .or_insert_with(|| LessonFigures {
            lesson_id: id.to_owned(),
            ..LessonFigures::default()
        })
}

fn returned_ids(suggestions: Option<Suggestions>) -> Vec<String> {
    suggestions
        .map(|found| found.results.into_iter().map(|result| result.id).collect())
        .unwrap_or_default()
}

fn read_queries(queries: &Path) -> anyhow::Result<Vec<LabelledQuery>> {
    let file = std::fs::File::open(queries)
        .with_context(|| format!("failed to open {}", queries.display()))?;
    let mut labelled_queries = Vec::new();
    for (line_index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read {}", queries.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let query: LabelledQuery = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a labelled query",
                queries.display(),
                line_index + 1
            )
        })?;
        labelled_queries.push(query);
    }
    Ok(labelled_queries)
}

fn read_corpus(corpus: &Path) -> anyhow::Result<Vec<ContentDocument>> {
    let file = std::fs::File::open(corpus)
        .with_context(|| format!("failed to open {}", corpus.display()))?;
    let mut documents = Vec::new();
    for (line_index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read {}", corpus.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let input: DocumentInput = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a document",
                corpus.display(),
                line_index + 1
            )
        })?;
        let document = ContentDocument::parse(input, None).map_err(|problems| {
            anyhow::anyhow!(
                "{} line {}: {}",
                corpus.display(),
                line_index + 1,
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        documents.push(document);
    }
    Ok(documents)
}

/// Formats a feedback simulation for people.
pub fn format_feedback_simulation(report: &FeedbackSimulationReport) -> String {
    let mut text = String::new();
    for (number, half) in report.halves.iter().enumerate() {
        text.push_str(&format!(
            "feedback of half {} ({} simulated sessions): {} lessons boosted, {} penalized\n",
            number + 1,
            half.sessions,
            half.boosted_lessons,
            half.penalized_lessons
        ));
    }
    for (name, figures) in [
        ("without feedback", &report.baseline),
        ("with the other half's feedback", &report.with_feedback),
        (
            "with the other half's feedback inverted (worst case)",
            &report.inverted_feedback,
        ),
    ] {
        text.push_str(&format!("\n{name}\n"));
        text.push_str(&format_report(figures));
    }
    text
}

/// Formats a report as a table for people.
pub fn format_report(report: &RelevanceReport) -> String {
    let mut text = format!(
        "documents {}  queries {} ({} in scope, {} out of scope)\n",
        report.documents, report.queries, report.in_scope_queries, report.out_of_scope_queries
    );
    text.push_str(&format!("success@1        {:.3}\n", report.success_at_1));
    text.push_str(&format!("success@3        {:.3}\n", report.success_at_3));
    text.push_str(&format!("success@5        {:.3}\n", report.success_at_5));
    text.push_str(&format!("MRR@10           {:.3}\n", report.mrr_at_10));
    text.push_str(&format!("nDCG@10          {:.3}\n", report.ndcg_at_10));
    match report.abstain_rate_out_of_scope {
        Some(rate) => text.push_str(&format!("abstain (OOS)    {rate:.3}\n")),
        None => text.push_str("abstain (OOS)    n/a (no out-of-scope queries)\n"),
    }
    text.push_str(&format!(
        "silent (in scope) {:.3}\n",
        report.silent_rate_in_scope
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn metrics_follow_their_definitions() {
        let mut tally = RelevanceTally::default();
        let relevant: HashSet<String> = ["a".to_owned()].into();
        tally.record(&ids(&["a", "b"]), &relevant);
        tally.record(&ids(&["b", "c", "a"]), &relevant);
        tally.record(&ids(&[]), &relevant);
        tally.record(&ids(&[]), &HashSet::new());
        tally.record(&ids(&["x"]), &HashSet::new());
        let report = tally.finish(3);
        assert!((report.success_at_1 - 1.0 / 3.0).abs() < 1e-9);
        assert!((report.success_at_3 - 2.0 / 3.0).abs() < 1e-9);
        assert!((report.mrr_at_10 - (1.0 + 1.0 / 3.0) / 3.0).abs() < 1e-9);
        assert!((report.ndcg_at_10 - (1.0 + 0.5) / 3.0).abs() < 1e-9);
        assert_eq!(report.abstain_rate_out_of_scope, Some(0.5));
        assert!((report.silent_rate_in_scope - 1.0 / 3.0).abs() < 1e-9);
    }
}
