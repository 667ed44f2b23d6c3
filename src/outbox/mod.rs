//! The outbox: helpdesk API calls kept in Redis until they are done, so that they are
//! made after the webhook was answered, survive a restart, are retried with jittered
//! backoff (honouring `Retry-After`), and are never made twice by two instances.
//!
//! A job's id says what it does to which ticket (`<tenant>:<helpdesk>:<ticket>:lessons`),
//! so a ticket redelivered by its helpdesk cannot queue a second comment; and before
//! a comment is posted again after an attempt whose outcome is unknown (a timeout, a
//! 5xx after the helpdesk may have stored it), the ticket is searched for the comment's
//! own "solved" link: a retried call never posts twice. A job that exhausts its attempts
//! or fails for good is counted in `deflect_outbox_failed_total` and logged as an error.

pub mod store;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::domain::{CustomerId, TenantId};
use crate::events::answers::now_milliseconds;
use crate::helpdesk::comment::Language;
use crate::helpdesk::Helpdesk;
use crate::redis_connection::RedisCallError;

pub use store::OutboxStore;
pub use worker::{OutboxWorker, WorkerSettings};

/// One call to make, or one series of calls (a comment and the look for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxJob {
    pub tenant: TenantId,
    pub helpdesk: Helpdesk,
    /// Digits only (checked at the webhook), so it is safe in API paths and key names.
    pub ticket_id: String,
    pub action: OutboxAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxAction {
    /// Post the "while you wait" comment with these lessons.
    PostLessons {
        lessons: Vec<PostedLesson>,
        language: Language,
    },
    /// Solve (Zendesk) or resolve (Freshdesk) the ticket.
    Solve,
    /// Post the lessons an agent assigned to the ticket's customer, with the agent's note.
    PostAssignment {
        customer_id: CustomerId,
        lessons: Vec<PostedLesson>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        language: Language,
    },
}

/// A lesson as the comment shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedLesson {
    pub id: String,
    pub title: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

impl OutboxJob {
    /// The job's id: what it does to which ticket of which tenant. The same lessons
    /// assigned to the same customer from the same ticket are posted once.
    pub fn id(&self) -> String {
        let action = match &self.action {
            OutboxAction::PostLessons { .. } => "lessons".to_owned(),
            OutboxAction::Solve => "solve".to_owned(),
            OutboxAction::PostAssignment {
                customer_id,
                lessons,
                ..
            } => {
                let mut lesson_ids: Vec<&str> =
                    lessons.iter().map(|lesson| lesson.id.as_str()).collect();
                lesson_ids.sort_unstable();
                let mut digest = Sha256::new();
                digest.update(customer_id.as_str().as_bytes());
                for lesson_id in lesson_ids {
                    digest.update([0x1f]);
                    digest.update(lesson_id.as_bytes());
                }
                let hex: String = digest.finalize()[..8]
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                format!("assignment:{hex}")
            }
        };
        format!(
            "{}:{}:{}:{action}",
            self.tenant,
            self.helpdesk.as_str(),
            self.ticket_id
        )
    }
}

/// Counters of the outbox, read by `GET /metrics`.
#[derive(Debug, Default)]
pub struct OutboxMetrics {
    /// Jobs queued (first time; a redelivered ticket's job is not queued again).
    pub queued: AtomicU64,
    /// Jobs done.
    pub done: AtomicU64,
    /// Attempts that failed and were scheduled again.
    pub retried: AtomicU64,
    /// Jobs given up: retries exhausted, or a failure no retry can fix.
    pub failed: AtomicU64,
    /// Comments found already posted when a retry looked (not posted again).
    pub found_posted: AtomicU64,
}

/// Where request handlers put jobs: the store, and a nudge for this instance's worker so
/// the job starts at once rather than at the next poll.
#[derive(Clone)]
pub struct OutboxQueue {
    store: OutboxStore,
    wake: Arc<Notify>,
    metrics: Arc<OutboxMetrics>,
}

impl OutboxQueue {
    pub fn new(store: OutboxStore, wake: Arc<Notify>, metrics: Arc<OutboxMetrics>) -> OutboxQueue {
        OutboxQueue {
            store,
            wake,
            metrics,
        }
    }

    /// Queues `job`, due now. Returns false when a job of its id exists already (queued,
    /// done or failed), which then stays as it is.
    pub async fn enqueue(&self, job: &OutboxJob) -> Result<bool, RedisCallError> {
        let queued = self.store.enqueue(job, now_milliseconds()).await?;
        if queued {
            self.metrics.queued.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
        Ok(queued)
    }
}
