//! Closing the loop: lessons that deflect well rank a little higher, lessons customers
//! keep marking not helpful a little lower.
//!
//! The multipliers are computed from the per-lesson counters of the last
//! `feedback.window_days` and refreshed every `feedback.refresh_seconds`. They are
//! bounded (`max_boost`, `max_penalty`) and need evidence (`min_shown` sessions,
//! `min_votes` votes), so a new lesson is never buried and one bad day moves nothing.
//! They reorder the results search returned; they never add or remove one, and never
//! change whether deflect abstains.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::TenantId;
use crate::suggest::Suggestion;

use super::stats::{DayRange, LessonFigures, StatsReader};

/// `[feedback]` in the settings.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackSettings {
    pub enabled: bool,
    pub refresh_seconds: u64,
    pub window_days: u32,
    /// Sessions a lesson must have been shown in before its deflection rate counts.
    pub min_shown: i64,
    /// Helpful + not-helpful votes a lesson needs before its votes count.
    pub min_votes: i64,
    /// A lesson deflecting at this multiple of the tenant's typical rate gets the
    /// whole boost.
    pub full_boost_relative_rate: f64,
    pub max_boost: f64,
    pub max_penalty: f64,
}

/// Returns the score multiplier a lesson's counters earn: 1 without enough evidence,
/// at most `1 + max_boost`, at least `1 - max_penalty`.
///
/// The boost rewards a deflection rate above the tenant's usual one (`typical_rate`,
/// deflections per session shown over all lessons with evidence): a catalog whose
/// lessons all deflect alike gets no boosts, since a prior that lifts every lesson
/// equally only adds noise to the text match. The rate is smoothed towards the typical
/// one with `min_shown` sessions of weight, so a short lucky run moves little.
pub fn lesson_multiplier(
    figures: &LessonFigures,
    typical_rate: f64,
    settings: &FeedbackSettings,
) -> f64 {
    let mut multiplier = 1.0;
    if figures.shown >= settings.min_shown && figures.shown > 0 && typical_rate > 0.0 {
        let prior_weight = settings.min_shown.max(1) as f64;
        let smoothed_rate = (figures.deflections.max(0) as f64 + typical_rate * prior_weight)
            / (figures.shown as f64 + prior_weight);
        let above_typical = smoothed_rate / typical_rate - 1.0;
        let share_of_full_boost = (above_typical
            / (settings.full_boost_relative_rate - 1.0).max(f64::EPSILON))
        .clamp(0.0, 1.0);
        multiplier += settings.max_boost * share_of_full_boost;
    }
    let votes = figures.helpful + figures.not_helpful;
    if votes >= settings.min_votes && votes > 0 {
        let not_helpful_share = figures.not_helpful as f64 / votes as f64;
        // Only a lesson voted down more often than up is penalized, fully when every
        // vote is "not helpful".
        multiplier -= settings.max_penalty * ((not_helpful_share - 0.5) * 2.0).max(0.0);
    }
    multiplier.clamp(1.0 - settings.max_penalty, 1.0 + settings.max_boost)
}

/// The multipliers of one tenant's lessons that differ from 1.
pub type LessonBoosts = HashMap<String, f64>;

/// Builds the boosts of a tenant from its per-lesson counters.
pub fn boosts_from_figures<'figures>(
    figures: impl IntoIterator<Item = &'figures LessonFigures> + Clone,
    settings: &FeedbackSettings,
) -> LessonBoosts {
    let (deflections, shown) = figures
        .clone()
        .into_iter()
        .filter(|lesson| lesson.shown >= settings.min_shown)
        .fold((0i64, 0i64), |(deflections, shown), lesson| {
            (
                deflections + lesson.deflections.max(0),
                shown + lesson.shown,
            )
        });
    let typical_rate = if shown > 0 {
        deflections as f64 / shown as f64
    } else {
        0.0
    };
    figures
        .into_iter()
        .map(|lesson| {
            let multiplier = lesson_multiplier(lesson, typical_rate, settings);
            (lesson.lesson_id.clone(), multiplier)
        })
        .filter(|(_, multiplier)| (multiplier - 1.0).abs() > 1e-9)
        .collect()
}

/// Multiplies each result's score by its lesson's boost and re-sorts, best first (ties
/// keep search's order).
pub fn rerank(results: &mut [Suggestion], boosts: &LessonBoosts) {
    if boosts.is_empty() {
        return;
    }
    for result in results.iter_mut() {
        if let Some(multiplier) = boosts.get(&result.id) {
            result.score =
                ((f64::from(result.score) * multiplier) * 1000.0).round() as f32 / 1000.0;
        }
    }
    results.sort_by(|left, right| right.score.total_cmp(&left.score));
}

/// The current boosts of every tenant, shared by the suggest service and the refresher.
#[derive(Clone, Default)]
pub struct RankingFeedback {
    boosts_by_tenant: Arc<RwLock<HashMap<TenantId, Arc<LessonBoosts>>>>,
}

impl RankingFeedback {
    /// Returns the boosts of `tenant` (empty until the first refresh).
    pub fn boosts(&self, tenant: &TenantId) -> Option<Arc<LessonBoosts>> {
        self.boosts_by_tenant
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(tenant)
            .cloned()
    }

    pub fn replace(&self, tenant: TenantId, boosts: LessonBoosts) {
        self.boosts_by_tenant
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(tenant, Arc::new(boosts));
    }

    /// Refreshes every tenant's boosts from the counters now and then every
    /// `refresh_seconds`, on the async runtime (reads only; a failed read keeps the
    /// previous boosts).
    pub fn spawn_refresher(
        &self,
        stats: StatsReader,
        tenants: Vec<TenantId>,
        settings: FeedbackSettings,
    ) -> tokio::task::JoinHandle<()> {
        let feedback = self.clone();
        tokio::spawn(async move {
            let mut interval =
                tokio::time::interval(Duration::from_secs(settings.refresh_seconds.max(1)));
            loop {
                interval.tick().await;
                let today = OffsetDateTime::now_utc().date();
                let range = DayRange {
                    from: today.saturating_sub(time::Duration::days(
                        i64::from(settings.window_days.max(1)) - 1,
                    )),
                    to: today,
                };
                for tenant in &tenants {
                    match stats.lesson_totals(tenant, range).await {
                        Ok(figures) => {
                            let boosts = boosts_from_figures(figures.values(), &settings);
                            tracing::debug!(tenant = %tenant, lessons = boosts.len(), "ranking feedback refreshed");
                            feedback.replace(tenant.clone(), boosts);
                        }
                        Err(error) => {
                            tracing::warn!(tenant = %tenant, error = %error, "ranking feedback not refreshed");
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FeedbackSettings {
        FeedbackSettings {
            enabled: true,
            refresh_seconds: 300,
            window_days: 28,
            min_shown: 20,
            min_votes: 5,
            full_boost_relative_rate: 2.0,
            max_boost: 0.1,
            max_penalty: 0.1,
        }
    }

    fn lesson(shown: i64, deflections: i64, helpful: i64, not_helpful: i64) -> LessonFigures {
        LessonFigures {
            lesson_id: "l".to_owned(),
            shown,
            deflections,
            helpful,
            not_helpful,
            ..LessonFigures::default()
        }
    }

    #[test]
    fn a_new_lesson_without_evidence_is_left_alone() {
        assert_eq!(
            lesson_multiplier(&lesson(19, 19, 4, 0), 0.1, &settings()),
            1.0
        );
        assert_eq!(
            lesson_multiplier(&lesson(0, 0, 0, 4), 0.1, &settings()),
            1.0
        );
    }

    #[test]
    fn lessons_deflecting_above_the_typical_rate_are_boosted_up_to_the_bound() {
        let typical = lesson_multiplier(&lesson(100, 10, 0, 0), 0.1, &settings());
        let better = lesson_multiplier(&lesson(100, 16, 0, 0), 0.1, &settings());
        let far_better = lesson_multiplier(&lesson(1_000, 900, 0, 0), 0.1, &settings());
        assert_eq!(typical, 1.0);
        assert!((better - 1.05).abs() < 1e-9, "{better}");
        assert!((far_better - 1.1).abs() < 1e-9, "{far_better}");
    }

    #[test]
    fn lessons_voted_down_are_penalized_within_the_bound() {
        let mostly_down = lesson_multiplier(&lesson(0, 0, 1, 9), 0.1, &settings());
        let all_down = lesson_multiplier(&lesson(0, 0, 0, 50), 0.1, &settings());
        let mostly_up = lesson_multiplier(&lesson(0, 0, 9, 1), 0.1, &settings());
        assert!((mostly_down - 0.92).abs() < 1e-9, "{mostly_down}");
        assert!((all_down - 0.9).abs() < 1e-9, "{all_down}");
        assert_eq!(mostly_up, 1.0);
    }

    #[test]
    fn a_catalog_whose_lessons_deflect_alike_gets_no_boosts() {
        let lessons: Vec<LessonFigures> = ["a", "b", "c"]
            .iter()
            .map(|id| LessonFigures {
                lesson_id: (*id).to_owned(),
                ..lesson(50, 10, 0, 0)
            })
            .collect();
        assert!(boosts_from_figures(&lessons, &settings()).is_empty());
    }

    #[test]
    fn reranking_moves_a_boosted_lesson_past_a_slightly_better_score() {
        let result = |id: &str, score: f32| Suggestion {
            id: id.to_owned(),
            kind: "lesson",
            title: id.to_owned(),
            url: None,
            snippet: String::new(),
            score,
            duration_seconds: None,
            course: None,
            matched_terms: Vec::new(),
        };
        let mut results = vec![result("a", 10.0), result("b", 9.5), result("c", 5.0)];
        let boosts = LessonBoosts::from([("b".to_owned(), 1.1), ("a".to_owned(), 0.95)]);

        rerank(&mut results, &boosts);

        let order: Vec<&str> = results.iter().map(|result| result.id.as_str()).collect();
        assert_eq!(order, vec!["b", "a", "c"]);
    }
}
