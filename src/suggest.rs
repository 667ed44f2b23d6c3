//! The suggest service: a validated draft in, ranked lessons and articles out.
//!
//! The HTTP route, the helpdesk webhooks and `deflect eval` all call this one path, so
//! the relevance figures in README are the figures of production.

use crate::domain::{DraftTicket, TenantId};
use crate::events::feedback::{rerank, RankingFeedback};
use crate::search::confidence::ConfidenceInputs;
use crate::search::searcher::SearchOutcome;
use crate::search::{ContentQuery, ContentSearcher, IndexError};
use crate::search_threads::{SearchThreadError, SearchThreads};
use crate::text::sections::fragment_of;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error("search failed")]
    Search(#[from] IndexError),
    #[error("the search did not finish")]
    Thread(#[from] SearchThreadError),
}

/// The answer to a suggest request.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestions {
    /// Identifies this answer; events about what the customer did with it carry it.
    pub suggestion_id: String,
    /// True when nothing fit well enough: `results` is then empty.
    pub abstained: bool,
    /// How well the best match explains the draft, 0 to 1: its score per unit of the
    /// draft's weighted words, relative to a full match; abstention compares it with
    /// `search.ranking.min_confidence`.
    pub confidence: f32,
    /// True when the session is in the holdout (`events.holdout_percent`): it gets no
    /// suggestions, so that its ticket rate can be compared with that of the others.
    pub holdout: bool,
    pub results: Vec<Suggestion>,
}

impl Suggestions {
    /// The answer to a session in the holdout: nothing, on purpose.
    pub fn held_out() -> Suggestions {
        Suggestions {
            suggestion_id: uuid::Uuid::now_v7().to_string(),
            abstained: false,
            confidence: 0.0,
            holdout: true,
            results: Vec::new(),
        }
    }

    /// The answer to a ticket without text to search for: nothing, for lack of a draft.
    pub fn for_empty_draft() -> Suggestions {
        Suggestions {
            abstained: true,
            holdout: false,
            ..Suggestions::held_out()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub id: String,
    pub kind: &'static str,
    pub title: String,
    /// The document's URL; `#<anchor>` of the matched section added when the passage
    /// that matched is in one (see `section`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The section of the document the suggestion opens at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<SectionRef>,
    /// HTML: escaped text with matched words in `<mark>`.
    pub snippet: String,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course: Option<CourseRef>,
    /// Why it matched: the draft's words (analysed forms, stop words left out) that the
    /// document contains, and the word being typed as `prefix*` when it matched.
    pub matched_terms: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionRef {
    pub anchor: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CourseRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Clone)]
pub struct SuggestService {
    searcher: ContentSearcher,
    default_locale: String,
    /// One thread per core runs the searches (see `search_threads.rs`).
    search_threads: SearchThreads,
    /// Per-lesson multipliers from the deflection counters (`[feedback]`), when on.
    feedback: Option<RankingFeedback>,
}

impl SuggestService {
    pub fn new(
        searcher: ContentSearcher,
        default_locale: String,
        search_threads: SearchThreads,
    ) -> SuggestService {
        SuggestService {
            searcher,
            default_locale,
            search_threads,
            feedback: None,
        }
    }

    /// Reorders results by the lessons' deflection record (see `events::feedback`).
    pub fn with_feedback(mut self, feedback: RankingFeedback) -> SuggestService {
        self.feedback = Some(feedback);
        self
    }

    /// Searches for `draft` of `tenant` on one of the search threads (one per core; the
    /// others wait their turn).
    pub async fn suggest(
        &self,
        tenant: TenantId,
        draft: DraftTicket,
    ) -> Result<Suggestions, SuggestError> {
        let service = self.clone();
        let suggestions = self
            .search_threads
            .run(move || service.suggest_blocking(tenant, &draft))
            .await??;
        Ok(suggestions)
    }

    /// Searches for `draft` of `tenant`. CPU-bound: call it from a blocking thread.
    pub fn suggest_blocking(
        &self,
        tenant: TenantId,
        draft: &DraftTicket,
    ) -> Result<Suggestions, IndexError> {
        Ok(self.suggest_and_explain_blocking(tenant, draft)?.0)
    }

    /// Like [`SuggestService::suggest_blocking`], and also returns what the confidence
    /// was computed from (for `deflect eval --dump`).
    pub fn suggest_and_explain_blocking(
        &self,
        tenant: TenantId,
        draft: &DraftTicket,
    ) -> Result<(Suggestions, ConfidenceInputs), IndexError> {
        let boosts = self
            .feedback
            .as_ref()
            .and_then(|feedback| feedback.boosts(&tenant));
        let query =
            ContentQuery::from_draft(tenant, draft, &self.default_locale, self.searcher.tuning());
        let outcome = self.searcher.search(&query)?;
        let confidence_inputs = outcome.confidence_inputs;
        let mut suggestions = into_suggestions(outcome);
        if let Some(boosts) = boosts {
            rerank(&mut suggestions.results, &boosts);
        }
        Ok((suggestions, confidence_inputs))
    }
}

fn into_suggestions(outcome: SearchOutcome) -> Suggestions {
    let results = outcome
        .hits
        .into_iter()
        .map(|hit| {
            let document = hit.stored.document;
            let course = document.course_id.map(|course_id| CourseRef {
                id: course_id,
                title: document.course_title,
            });
            let section = hit.section.filter(|_| {
                document
                    .url
                    .as_deref()
                    .is_some_and(|url| !url.contains('#'))
            });
            let url = match (&section, document.url) {
                (Some(section), Some(url)) => {
                    Some(format!("{url}#{}", fragment_of(&section.anchor)))
                }
                (_, url) => url,
            };
            Suggestion {
                id: document.id,
                kind: document.kind.as_str(),
                title: document.title,
                url,
                section: section.map(|section| SectionRef {
                    anchor: section.anchor,
                    title: section.title,
                }),
                snippet: hit.snippet,
                score: (hit.score * 1000.0).round() / 1000.0,
                duration_seconds: document.duration_seconds,
                course,
                matched_terms: hit.matched_terms,
            }
        })
        .collect();
    Suggestions {
        suggestion_id: uuid::Uuid::now_v7().to_string(),
        abstained: outcome.abstained,
        confidence: (outcome.confidence * 1000.0).round() / 1000.0,
        holdout: false,
        results,
    }
}
