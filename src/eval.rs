//! `deflect eval`: runs a labelled relevance set through the production search path and
//! reports how well it ranks and when it stays silent.
//!
//! Format (see `../shared/relevance/README.md`): a corpus of `{"id", "title", "body"}`
//! lines and queries of `{"id", "text", "relevant": [ids]}`; an empty `relevant` list
//! marks a query whose right answer is no suggestion.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::configuration::Settings;
use crate::content::ContentStore;
use crate::domain::{ContentDocument, DocumentInput, DraftTicket, SuggestRequestBody, TenantId};
use crate::search::confidence::ConfidenceInputs;
use crate::search::{ContentIndex, ContentSearcher, IndexWriterHandle};
use crate::suggest::SuggestService;

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
/// With `dump`, writes one JSON line per query (its best scores, confidence and what it
/// was computed from, and the rank of the first relevant result) for tuning abstention.
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
    let directory = tempfile::tempdir().context("failed to create a temporary index directory")?;
    let index = ContentIndex::open_or_create(directory.path())?;
    let (writer, writer_thread) =
        IndexWriterHandle::start(&index, settings.index.offline_writer_options())?;
    let store = ContentStore::new(index.clone(), writer);
    let tenant = TenantId::parse("eval").expect("a valid tenant id");

    let documents = read_corpus(corpus)?;
    let document_count = documents.len();
    store.upsert_blocking(&tenant, &documents)?;
    drop(store);
    writer_thread.join().ok();

    let service = SuggestService::new(
        ContentSearcher::new(index, settings.search.tuning()),
        settings.search.default_locale.clone(),
    );
    let mut tally = RelevanceTally::default();
    let file = std::fs::File::open(queries)
        .with_context(|| format!("failed to open {}", queries.display()))?;
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
        let body = SuggestRequestBody {
            text: Some(query.text),
            locale: query.locale,
            limit: Some(DEPTH as u32),
            ..Default::default()
        };
        let (suggestions, confidence_inputs) = match DraftTicket::parse(body, DEPTH, DEPTH) {
            Ok(draft) => {
                let (found, inputs) =
                    service.suggest_and_explain_blocking(tenant.clone(), &draft)?;
                (Some(found), inputs)
            }
            Err(_) => (None, ConfidenceInputs::default()),
        };
        let relevant: HashSet<String> = query.relevant.into_iter().collect();
        if let Some(dump_file) = dump_file.as_mut() {
            let results = suggestions
                .as_ref()
                .map(|found| found.results.as_slice())
                .unwrap_or_default();
            let line = serde_json::json!({
                "id": query.id,
                "in_scope": !relevant.is_empty(),
                "confidence": suggestions.as_ref().map_or(0.0, |found| found.confidence),
                "scores": results.iter().map(|result| result.score).collect::<Vec<_>>(),
                "relevant_rank": results.iter().position(|result| relevant.contains(&result.id)),
                "best_score": confidence_inputs.best_score,
                "draft_weight": confidence_inputs.draft_weight,
                "draft_words": confidence_inputs.draft_words,
                "coverage": confidence_inputs.coverage,
            });
            writeln!(dump_file, "{line}").context("failed to write the dump")?;
        }
        let returned: Vec<String> = suggestions
            .map(|found| found.results.into_iter().map(|result| result.id).collect())
            .unwrap_or_default();
        tracing::debug!(query = %query.id, returned = ?returned, "evaluated");
        tally.record(&returned, &relevant);
    }
    Ok(tally.finish(document_count))
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
