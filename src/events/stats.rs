//! Reads the counters back for ops: the summary, per-lesson figures and content gaps.
//!
//! Reads are async (a lazily connecting, self-healing connection manager) under one
//! deadline, so a slow or stopped Redis answers ops with an error, never a hang.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use time::Date;

use crate::domain::TenantId;
use crate::redis_connection::{AsyncRedis, RedisCallError};

use super::keys::{format_date, GapKind, KeySpace, LessonMetric};

/// Why the counters could not be read.
pub type StatsError = RedisCallError;

/// An inclusive range of UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: Date,
    pub to: Date,
}

impl DayRange {
    pub fn days(&self) -> Vec<Date> {
        let mut days = Vec::new();
        let mut day = self.from;
        while day <= self.to {
            days.push(day);
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
        days
    }
}

/// The counters of a day or of a range, as `GET /v1/stats/summary` answers them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SummaryFigures {
    /// Sessions shown suggestions (holdout sessions excluded).
    pub sessions: i64,
    /// Answers with suggestions.
    pub shown: i64,
    pub opened: i64,
    pub helpful: i64,
    pub not_helpful: i64,
    pub resolved: i64,
    pub abandoned: i64,
    pub submitted: i64,
    /// Explicit deflections, net of the ones a later ticket took back.
    pub deflections: i64,
    /// Deflections taken back because the session submitted a ticket after all.
    pub deflections_reverted: i64,
    /// Answers that suggested nothing.
    pub unanswered: i64,
    /// Deflected sessions / sessions with suggestions.
    pub deflection_rate: f64,
    /// Sessions that opened a suggested lesson / sessions with suggestions.
    pub ctr: f64,
    /// Deflections × the tenant's cost per ticket.
    pub savings: f64,
    /// Submitted tickets that lessons were posted into ("while you wait").
    pub post_submission_tickets: i64,
    /// Clicks on those lessons (a lesson counts once per ticket).
    pub post_submission_opened: i64,
    /// Of those tickets, the ones the customer resolved from the lessons: deflections
    /// after submission, apart from `deflections`.
    pub post_submission_deflections: i64,
    #[serde(skip)]
    opened_sessions: i64,
    #[serde(skip)]
    submitted_sessions: i64,
    #[serde(skip)]
    holdout_sessions: i64,
    #[serde(skip)]
    holdout_submitted_sessions: i64,
}

impl SummaryFigures {
    fn from_hash(hash: &HashMap<String, i64>, cost_per_ticket: f64) -> SummaryFigures {
        let field = |name: &str| hash.get(name).copied().unwrap_or(0);
        let mut figures = SummaryFigures {
            sessions: field("sessions"),
            shown: field("shown"),
            opened: field("opened"),
            helpful: field("helpful"),
            not_helpful: field("not_helpful"),
            resolved: field("resolved"),
            abandoned: field("abandoned"),
            submitted: field("submitted"),
            deflections: field("deflections"),
            deflections_reverted: field("deflections_reverted"),
            unanswered: field("unanswered"),
            post_submission_tickets: field("post_submission_tickets"),
            post_submission_opened: field("post_submission_opened"),
            post_submission_deflections: field("post_submission_deflections"),
            opened_sessions: field("opened_sessions"),
            submitted_sessions: field("submitted_sessions"),
            holdout_sessions: field("holdout_sessions"),
            holdout_submitted_sessions: field("holdout_submitted_sessions"),
            ..SummaryFigures::default()
        };
        figures.derive(cost_per_ticket);
        figures
    }

    fn add(&mut self, other: &SummaryFigures) {
        self.sessions += other.sessions;
        self.shown += other.shown;
        self.opened += other.opened;
        self.helpful += other.helpful;
        self.not_helpful += other.not_helpful;
        self.resolved += other.resolved;
        self.abandoned += other.abandoned;
        self.submitted += other.submitted;
        self.deflections += other.deflections;
        self.deflections_reverted += other.deflections_reverted;
        self.unanswered += other.unanswered;
        self.post_submission_tickets += other.post_submission_tickets;
        self.post_submission_opened += other.post_submission_opened;
        self.post_submission_deflections += other.post_submission_deflections;
        self.opened_sessions += other.opened_sessions;
        self.submitted_sessions += other.submitted_sessions;
        self.holdout_sessions += other.holdout_sessions;
        self.holdout_submitted_sessions += other.holdout_submitted_sessions;
    }

    fn derive(&mut self, cost_per_ticket: f64) {
        self.deflection_rate = ratio(self.deflections, self.sessions);
        self.ctr = ratio(self.opened_sessions, self.sessions);
        self.savings = round(self.deflections as f64 * cost_per_ticket, 2);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayFigures {
    pub date: String,
    #[serde(flatten)]
    pub figures: SummaryFigures,
}

/// Ticket submission of sessions held out of suggestions against treated ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutComparison {
    pub holdout_sessions: i64,
    pub holdout_submitted: i64,
    pub holdout_submission_rate: f64,
    pub treated_sessions: i64,
    pub treated_submitted: i64,
    pub treated_submission_rate: f64,
    /// Holdout rate minus treated rate: the share of tickets suggestions prevent.
    pub difference: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub cost_per_ticket: f64,
    pub total: SummaryFigures,
    pub days: Vec<DayFigures>,
    pub holdout: HoldoutComparison,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LessonFigures {
    pub lesson_id: String,
    /// Sessions the lesson was shown in.
    pub shown: i64,
    pub opened: i64,
    pub helpful: i64,
    pub not_helpful: i64,
    /// helpful / (helpful + not_helpful); null without votes.
    pub helpful_ratio: Option<f64>,
    /// Explicit deflections credited, net of reverted ones.
    pub deflections: i64,
    pub deflections_reverted: i64,
    /// Sessions that engaged with the lesson and submitted a ticket anyway.
    pub submitted_after_viewing: i64,
    /// Submitted tickets resolved by the customer after opening this lesson, posted
    /// into the ticket ("while you wait").
    pub post_submission_deflections: i64,
    /// Of `shown`: sessions whose first answer showing the lesson showed it first, and
    /// second (the rest: third or lower).
    pub shown_first: i64,
    pub shown_second: i64,
    /// Of `deflections`: those of sessions that had been shown the lesson first, and
    /// second.
    pub deflections_shown_first: i64,
    pub deflections_shown_second: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapEntry {
    pub draft: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaps {
    pub unanswered: Vec<GapEntry>,
    pub submitted_anyway: Vec<GapEntry>,
}

/// Drafts read per day and kind for the gaps report.
const GAP_DRAFTS_READ_PER_DAY: isize = 1_000;

/// Reads the counters of any tenant.
#[derive(Clone)]
pub struct StatsReader {
    redis: AsyncRedis,
    keys: KeySpace,
}

impl StatsReader {
    pub fn new(url: &SecretString, keys: KeySpace, timeout: Duration) -> StatsReader {
        StatsReader {
            redis: AsyncRedis::new(url, timeout, "stats"),
            keys,
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StatsError> {
        self.redis.query(pipeline).await
    }

    /// The tenant's summary over `range`.
    pub async fn summary(
        &self,
        tenant: &TenantId,
        range: DayRange,
        cost_per_ticket: f64,
    ) -> Result<Summary, StatsError> {
        let tenant_keys = self.keys.tenant(tenant);
        let days = range.days();
        let mut pipeline = redis::pipe();
        for day in &days {
            pipeline.hgetall(tenant_keys.day(*day).counters);
        }
        let hashes: Vec<HashMap<String, i64>> = self.query(&pipeline).await?;
        let mut total = SummaryFigures::default();
        let mut day_figures = Vec::with_capacity(days.len());
        for (day, hash) in days.iter().zip(&hashes) {
            let figures = SummaryFigures::from_hash(hash, cost_per_ticket);
            total.add(&figures);
            day_figures.push(DayFigures {
                date: format_date(*day),
                figures,
            });
        }
        total.derive(cost_per_ticket);
        let holdout_rate = ratio(total.holdout_submitted_sessions, total.holdout_sessions);
        let treated_rate = ratio(total.submitted_sessions, total.sessions);
        Ok(Summary {
            from: format_date(range.from),
            to: format_date(range.to),
            cost_per_ticket,
            holdout: HoldoutComparison {
                holdout_sessions: total.holdout_sessions,
                holdout_submitted: total.holdout_submitted_sessions,
                holdout_submission_rate: holdout_rate,
                treated_sessions: total.sessions,
                treated_submitted: total.submitted_sessions,
                treated_submission_rate: treated_rate,
                difference: round(holdout_rate - treated_rate, 4),
            },
            total,
            days: day_figures,
        })
    }

    /// Per-lesson figures over `range`, most deflections first, at most `limit`.
    pub async fn lessons(
        &self,
        tenant: &TenantId,
        range: DayRange,
        limit: usize,
    ) -> Result<Vec<LessonFigures>, StatsError> {
        let by_lesson = self.lesson_totals(tenant, range).await?;
        let mut lessons: Vec<LessonFigures> = by_lesson.into_values().collect();
        lessons.sort_by(|left, right| {
            right
                .deflections
                .cmp(&left.deflections)
                .then(right.shown.cmp(&left.shown))
                .then(left.lesson_id.cmp(&right.lesson_id))
        });
        lessons.truncate(limit);
        Ok(lessons)
    }

    /// Per-lesson figures over `range`, by lesson id.
    pub async fn lesson_totals(
        &self,
        tenant: &TenantId,
        range: DayRange,
    ) -> Result<BTreeMap<String, LessonFigures>, StatsError> {
        let tenant_keys = self.keys.tenant(tenant);
        let days = range.days();
        let mut pipeline = redis::pipe();
        for day in &days {
            let day_keys = tenant_keys.day(*day);
            for metric in LessonMetric::ALL {
                pipeline.hgetall(day_keys.lesson_metric(metric));
            }
        }
        let hashes: Vec<HashMap<String, i64>> = self.query(&pipeline).await?;
        let mut by_lesson: BTreeMap<String, LessonFigures> = BTreeMap::new();
        for day_hashes in hashes.chunks(LessonMetric::ALL.len()) {
            for (metric, hash) in LessonMetric::ALL.iter().zip(day_hashes) {
                for (lesson_id, count) in hash {
                    let figures =
                        by_lesson
                            .entry(lesson_id.clone())
                            .or_insert_with(|| LessonFigures {
                                lesson_id: lesson_id.clone(),
                                ..LessonFigures::default()
                            });
                    let slot = match metric {
                        LessonMetric::Shown => &mut figures.shown,
                        LessonMetric::Opened => &mut figures.opened,
                        LessonMetric::Helpful => &mut figures.helpful,
                        LessonMetric::NotHelpful => &mut figures.not_helpful,
                        LessonMetric::Deflections => &mut figures.deflections,
                        LessonMetric::DeflectionsReverted => &mut figures.deflections_reverted,
                        LessonMetric::SubmittedAfterViewing => &mut figures.submitted_after_viewing,
                        LessonMetric::PostSubmissionDeflections => {
                            &mut figures.post_submission_deflections
                        }
                        LessonMetric::ShownFirst => &mut figures.shown_first,
                        LessonMetric::ShownSecond => &mut figures.shown_second,
                        LessonMetric::DeflectionsShownFirst => &mut figures.deflections_shown_first,
                        LessonMetric::DeflectionsShownSecond => {
                            &mut figures.deflections_shown_second
                        }
                    };
                    *slot += count;
                }
            }
        }
        for figures in by_lesson.values_mut() {
            let votes = figures.helpful + figures.not_helpful;
            figures.helpful_ratio =
                (votes > 0).then(|| round(figures.helpful as f64 / votes as f64, 4));
        }
        Ok(by_lesson)
    }

    /// The most frequent redacted drafts without suggestions or submitted anyway.
    pub async fn gaps(
        &self,
        tenant: &TenantId,
        range: DayRange,
        limit: usize,
    ) -> Result<Gaps, StatsError> {
        let tenant_keys = self.keys.tenant(tenant);
        let days = range.days();
        let kinds = [GapKind::Unanswered, GapKind::SubmittedAnyway];
        let mut pipeline = redis::pipe();
        for day in &days {
            let day_keys = tenant_keys.day(*day);
            for kind in kinds {
                pipeline.zrevrange_withscores(day_keys.gaps(kind), 0, GAP_DRAFTS_READ_PER_DAY - 1);
            }
        }
        let lists: Vec<Vec<(String, f64)>> = self.query(&pipeline).await?;
        let mut totals: [HashMap<String, i64>; 2] = [HashMap::new(), HashMap::new()];
        for day_lists in lists.chunks(kinds.len()) {
            for (kind_totals, list) in totals.iter_mut().zip(day_lists) {
                for (draft, score) in list {
                    *kind_totals.entry(draft.clone()).or_insert(0) += score.round() as i64;
                }
            }
        }
        let [unanswered, submitted_anyway] = totals.map(|kind_totals| top_gaps(kind_totals, limit));
        Ok(Gaps {
            unanswered,
            submitted_anyway,
        })
    }
}

fn top_gaps(totals: HashMap<String, i64>, limit: usize) -> Vec<GapEntry> {
    let mut entries: Vec<GapEntry> = totals
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(draft, count)| GapEntry { draft, count })
        .collect();
    entries.sort_by(|left, right| {
        right
            .count
            .cmp(&left.count)
            .then(left.draft.cmp(&right.draft))
    });
    entries.truncate(limit);
    entries
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    round(part as f64 / whole as f64, 4)
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
