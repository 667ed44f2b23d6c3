//! The outbox worker: one task per instance that claims due jobs from Redis and makes
//! their helpdesk calls, a few at a time.
//!
//! A failed attempt that may pass later is scheduled again after a jittered exponential
//! backoff, or after the helpdesk's `Retry-After` when that is longer; one that cannot
//! (bad credentials, no such ticket, a refused address) or that was the last allowed is
//! given up, counted and logged as an error. A comment is looked for before it is posted
//! again, so an attempt whose outcome was unknown never leads to a second comment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::error::error_chain;
use crate::events::answers::now_milliseconds;
use crate::events::EventSink;
use crate::helpdesk::comment::{assignment_comment, lessons_comment, CommentLesson, Language};
use crate::helpdesk::retry::RetryPolicy;
use crate::helpdesk::{CallError, HelpdeskClient};
use crate::tracked_links::{LinkSigner, LinkTarget, TrackedLink};
use crate::webhooks::settings::OutboxSettings;
use crate::webhooks::tenants::HelpdeskTenants;
use crate::webhooks::ticket_events::lessons_posted;

use super::store::{ClaimedJob, OutboxStore};
use super::{OutboxAction, OutboxJob, OutboxMetrics, PostedLesson};

/// Due jobs looked at per round.
const JOBS_PER_ROUND: usize = 64;

/// The worker's timing, from `[webhooks.outbox]`.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub concurrency: usize,
}

impl WorkerSettings {
    pub fn from_settings(settings: &OutboxSettings) -> WorkerSettings {
        WorkerSettings {
            max_attempts: settings.max_attempts.max(1),
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(settings.initial_backoff_ms),
                max_backoff: Duration::from_millis(settings.max_backoff_ms),
                max_retry_after: Duration::from_secs(settings.max_retry_after_seconds),
            },
            poll_interval: Duration::from_millis(settings.poll_interval_ms.max(10)),
            lease: Duration::from_secs(settings.lease_seconds.max(1)),
            concurrency: settings.concurrency.max(1),
        }
    }
}

/// Why a job's attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("helpdesk call failed")]
    Call(#[from] CallError),
    /// The tenant's helpdesk account or the tracked links are no longer configured.
    #[error("{0}")]
    NotConfigured(&'static str),
}

impl AttemptError {
    fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Call(error) => error.is_retryable(),
            AttemptError::NotConfigured(_) => false,
        }
    }
}

/// The worker and what it needs; `poll_failures` starts at 0.
pub struct OutboxWorker {
    pub store: OutboxStore,
    pub tenants: Arc<HelpdeskTenants>,
    pub links: Option<Arc<LinkSigner>>,
    pub events: EventSink,
    pub metrics: Arc<OutboxMetrics>,
    pub settings: WorkerSettings,
    /// Nudged by [`super::OutboxQueue`] when this instance queues a job.
    pub wake: Arc<Notify>,
    /// Failed polls of Redis in a row (logged at 1, 2, 4 ... so an outage does not
    /// flood the log).
    pub poll_failures: AtomicU64,
}

impl OutboxWorker {
    /// Runs the worker on the current tokio runtime until the process ends.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        loop {
            let claimed_any = self.run_due_jobs().await;
            if !claimed_any {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
    }

    /// Runs the jobs due now; returns whether it claimed any.
    async fn run_due_jobs(&self) -> bool {
        let ids = match self.store.due_ids(now_milliseconds(), JOBS_PER_ROUND).await {
            Ok(ids) => {
                self.poll_failures.store(0, Ordering::Relaxed);
                ids
            }
            Err(error) => {
                let failures = self.poll_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures.is_power_of_two() {
                    tracing::warn!(error = %error_chain(&error), failures, "the outbox cannot read redis");
                }
                return false;
            }
        };
        let claimed = futures_util::stream::iter(ids)
            .map(|id| async move { self.run_job(&id).await })
            .buffer_unordered(self.settings.concurrency)
            .filter(|claimed| std::future::ready(*claimed))
            .count()
            .await;
        claimed > 0
    }

    /// Claims job `id` and makes its attempt; returns whether it was claimed.
    async fn run_job(&self, id: &str) -> bool {
        let now = now_milliseconds();
        let lease_until = now.saturating_add(duration_ms(self.settings.lease));
        let claimed = match self.store.claim(id, now, lease_until).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(job_id = id, error = %error_chain(&error), "failed to claim an outbox job");
                return false;
            }
        };
        let outcome = self.attempt(&claimed).await;
        self.settle(&claimed, outcome).await;
        true
    }

    async fn attempt(&self, claimed: &ClaimedJob) -> Result<(), AttemptError> {
        let job = &claimed.job;
        let client =
            self.tenants
                .client(&job.tenant, job.helpdesk)
                .ok_or(AttemptError::NotConfigured(
                    "the tenant's helpdesk API is no longer configured",
                ))?;
        match &job.action {
            OutboxAction::PostLessons { lessons, language } => {
                let links = self.links()?;
                let solved_link = link(job, LinkTarget::Solved, *language);
                let comment_lessons = comment_lessons(links, lessons, |lesson_id| {
                    link(job, LinkTarget::Lesson(lesson_id), *language)
                });
                let html = lessons_comment(&comment_lessons, &links.url(&solved_link), *language);
                // The "solved" link is this ticket's own: finding it in the ticket means
                // an earlier attempt posted the comment.
                self.post_once(client, claimed, &links.token(&solved_link), &html)
                    .await?;
                let lesson_ids = lessons.iter().map(|lesson| lesson.id.clone()).collect();
                self.events.record(lessons_posted(
                    &job.tenant,
                    job.helpdesk,
                    &job.ticket_id,
                    lesson_ids,
                ));
                Ok(())
            }
            OutboxAction::PostAssignment {
                customer_id,
                lessons,
                note,
                language,
            } => {
                let links = self.links()?;
                let assigned_link = |lesson_id: String| {
                    let target = LinkTarget::Assigned {
                        lesson_id,
                        customer_id: customer_id.clone(),
                    };
                    link(job, target, *language)
                };
                let Some(first_lesson) = lessons.first() else {
                    return Ok(());
                };
                // The first lesson's link is this customer's, ticket's and lesson's own:
                // finding it in the ticket means an earlier attempt posted the comment.
                let marker = links.token(&assigned_link(first_lesson.id.clone()));
                let comment_lessons = comment_lessons(links, lessons, assigned_link);
                let html = assignment_comment(&comment_lessons, note.as_deref(), *language);
                self.post_once(client, claimed, &marker, &html).await
            }
            OutboxAction::Solve => Ok(client.close_as_solved(&job.ticket_id).await?),
        }
    }

    fn links(&self) -> Result<&LinkSigner, AttemptError> {
        self.links.as_deref().ok_or(AttemptError::NotConfigured(
            "tracked links are not configured",
        ))
    }

    /// Posts `html` to the ticket, unless this is a retry and the ticket already holds
    /// `marker` (an earlier attempt whose answer was lost posted it).
    async fn post_once(
        &self,
        client: &HelpdeskClient,
        claimed: &ClaimedJob,
        marker: &str,
        html: &str,
    ) -> Result<(), AttemptError> {
        let ticket_id = &claimed.job.ticket_id;
        let is_retry = claimed.attempt > 1;
        if is_retry && client.has_reply_containing(ticket_id, marker).await? {
            self.metrics.found_posted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(job_id = %claimed.id, "the comment of an earlier attempt is on the ticket; not posting it again");
            return Ok(());
        }
        client.post_public_reply(ticket_id, html).await?;
        Ok(())
    }

    async fn settle(&self, claimed: &ClaimedJob, outcome: Result<(), AttemptError>) {
        let job_id = claimed.id.as_str();
        let attempt = claimed.attempt;
        let settled = match outcome {
            Ok(()) => {
                self.metrics.done.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job_id, attempt, "helpdesk call done");
                self.store.complete(job_id).await
            }
            Err(error) if error.is_retryable() && attempt < self.settings.max_attempts => {
                let wait = self.next_wait(attempt, &error);
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                let cause = error_chain(&error);
                tracing::warn!(job_id, attempt, wait_ms = duration_ms(wait), error = %cause, "helpdesk call failed; will retry");
                let due = now_milliseconds().saturating_add(duration_ms(wait));
                self.store.retry_at(job_id, due, &cause).await
            }
            Err(error) => {
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                let cause = error_chain(&error);
                tracing::error!(job_id, attempt, error = %cause, "helpdesk call given up");
                self.store.give_up(job_id, &cause).await
            }
        };
        if let Err(error) = settled {
            tracing::warn!(job_id, error = %error_chain(&error), "failed to record an outbox attempt; the job runs again when its lease ends");
        }
    }

    /// The wait before the next attempt: the backoff, or the helpdesk's `Retry-After`
    /// (capped) when longer.
    fn next_wait(&self, attempt: u32, error: &AttemptError) -> Duration {
        let asked = match error {
            AttemptError::Call(call) => call.retry_after(),
            AttemptError::NotConfigured(_) => None,
        };
        self.settings.retry.wait_after(attempt, asked)
    }
}

/// The lessons of a comment, each with the tracked link `link_of` makes for its id.
fn comment_lessons<'lessons>(
    links: &LinkSigner,
    lessons: &'lessons [PostedLesson],
    link_of: impl Fn(String) -> TrackedLink,
) -> Vec<CommentLesson<'lessons>> {
    lessons
        .iter()
        .map(|lesson| CommentLesson {
            title: &lesson.title,
            kind: &lesson.kind,
            duration_seconds: lesson.duration_seconds,
            tracked_url: links.url(&link_of(lesson.id.clone())),
        })
        .collect()
}

fn link(job: &OutboxJob, target: LinkTarget, language: Language) -> TrackedLink {
    TrackedLink {
        tenant: job.tenant.clone(),
        helpdesk: job.helpdesk,
        ticket_id: job.ticket_id.clone(),
        target,
        language,
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
