//! What a verified ticket webhook does, once per delivery: a new ticket is answered with
//! up to three lessons (in the webhook's answer, for helpdesks that show it), its widget
//! session is told the ticket was submitted, and "while you wait" queues a comment with
//! the lessons in the outbox. Everything slow (the helpdesk's API) happens after the
//! answer; what happens before it is a search and two Redis calls.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::{DraftTicket, SuggestRequestBody, TenantId};
use crate::events::answers::now_milliseconds;
use crate::events::{EventSink, WriteOutcome};
use crate::helpdesk::comment::Language;
use crate::outbox::{OutboxAction, OutboxJob, OutboxQueue, PostedLesson};
use crate::redis_connection::RedisCallError;
use crate::suggest::{SuggestError, SuggestService, Suggestions};
use crate::training::TrainingStore;

use super::deliveries::DeliveryLog;
use super::payload::{HelpdeskTicket, TicketEvent};
use super::signature::VerifiedDelivery;
use super::tenants::HelpdeskTenants;
use super::ticket_events::ticket_submitted;
use super::Provider;

/// Lessons posted into a ticket at most.
pub const MAX_POSTED_LESSONS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Redis or the event writer cannot take the delivery now; the sender should retry.
    #[error("the delivery cannot be recorded right now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("suggestions failed")]
    Suggest(#[from] SuggestError),
}

impl From<RedisCallError> for IntakeError {
    fn from(error: RedisCallError) -> IntakeError {
        IntakeError::Unavailable(Box::new(error))
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Processed,
    /// Processed before (a redelivery): nothing was done again.
    Duplicate,
    /// Not a new ticket: acknowledged and left alone.
    Ignored,
}

/// What "while you wait" did with a new ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhileYouWait {
    /// Off for the tenant (or the sender cannot be written back to).
    Off,
    /// Nothing fit well enough to post.
    NothingToPost,
    /// The comment is queued in the outbox.
    Queued,
    /// The ticket's comment was queued by an earlier delivery.
    AlreadyQueued,
}

/// The answer to a webhook.
#[derive(Debug, Serialize)]
pub struct WebhookAnswer {
    pub status: DeliveryStatus,
    pub ticket_id: String,
    pub event: String,
    /// Whether the ticket named a widget session (then told it was submitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_linked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub while_you_wait: Option<WhileYouWait>,
    /// Whether the ticket was counted for its customer (false when it names none, or was
    /// counted before, or is older than `training.retention_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_counted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Suggestions>,
}

impl WebhookAnswer {
    fn unprocessed(status: DeliveryStatus, ticket: &HelpdeskTicket) -> WebhookAnswer {
        WebhookAnswer {
            status,
            ticket_id: ticket.id.clone(),
            event: ticket.event.as_str().to_owned(),
            session_linked: None,
            while_you_wait: None,
            ticket_counted: None,
            suggestions: None,
        }
    }
}

/// The service behind the three webhook routes.
pub struct WebhookIntake {
    pub tenants: Arc<HelpdeskTenants>,
    pub deliveries: DeliveryLog,
    pub suggest: SuggestService,
    pub events: EventSink,
    pub outbox: OutboxQueue,
    /// Where each customer's tickets are counted.
    pub training: TrainingStore,
}

impl WebhookIntake {
    /// Processes a verified delivery of `tenant`, unless it was processed before.
    pub async fn process(
        &self,
        tenant: &TenantId,
        provider: Provider,
        delivery: VerifiedDelivery,
        ticket: HelpdeskTicket,
    ) -> Result<WebhookAnswer, IntakeError> {
        // Freshdesk sends no delivery id: its deliveries are told apart by what they
        // say (ticket, event, update time).
        let delivery_key = delivery.delivery_id.unwrap_or_else(|| {
            format!(
                "{}\u{1f}{}\u{1f}{}",
                ticket.id,
                ticket.event.as_str(),
                ticket.updated_at.as_deref().unwrap_or_default()
            )
        });
        let processed = self
            .deliveries
            .process_once(
                tenant,
                provider,
                &delivery_key,
                self.handle(tenant, provider, &ticket),
            )
            .await?;
        Ok(processed
            .unwrap_or_else(|| WebhookAnswer::unprocessed(DeliveryStatus::Duplicate, &ticket)))
    }

    async fn handle(
        &self,
        tenant: &TenantId,
        provider: Provider,
        ticket: &HelpdeskTicket,
    ) -> Result<WebhookAnswer, IntakeError> {
        if ticket.event != TicketEvent::Created {
            return Ok(WebhookAnswer::unprocessed(DeliveryStatus::Ignored, ticket));
        }
        let suggestions = self.suggestions_for(tenant, ticket).await?;
        if let Some(session_id) = &ticket.session_id {
            self.record_submission(tenant, provider, ticket, session_id)
                .await?;
        }
        let ticket_counted = self.count_ticket(tenant, provider, ticket).await?;
        let while_you_wait = self
            .queue_while_you_wait(tenant, provider, ticket, &suggestions)
            .await?;
        tracing::info!(
            ticket_id = %ticket.id,
            results = suggestions.results.len(),
            session_linked = ticket.session_id.is_some(),
            ?while_you_wait,
            "ticket webhook processed"
        );
        Ok(WebhookAnswer {
            status: DeliveryStatus::Processed,
            ticket_id: ticket.id.clone(),
            event: ticket.event.as_str().to_owned(),
            session_linked: Some(ticket.session_id.is_some()),
            while_you_wait: Some(while_you_wait),
            ticket_counted: Some(ticket_counted),
            suggestions: Some(suggestions),
        })
    }

    async fn suggestions_for(
        &self,
        tenant: &TenantId,
        ticket: &HelpdeskTicket,
    ) -> Result<Suggestions, IntakeError> {
        let body = SuggestRequestBody {
            subject: Some(ticket.subject.clone()),
            description: Some(ticket.description.clone()),
            locale: ticket.locale.clone(),
            limit: Some(MAX_POSTED_LESSONS as u32),
            ..SuggestRequestBody::default()
        };
        match DraftTicket::parse(body, MAX_POSTED_LESSONS, MAX_POSTED_LESSONS) {
            Ok(draft) => Ok(self.suggest.suggest(tenant.clone(), draft).await?),
            Err(_) => Ok(Suggestions::for_empty_draft()),
        }
    }

    /// Counts the ticket for its customer on the day it was created (now, when the body
    /// does not say or says a time ahead of now), once per ticket.
    async fn count_ticket(
        &self,
        tenant: &TenantId,
        provider: Provider,
        ticket: &HelpdeskTicket,
    ) -> Result<bool, IntakeError> {
        let Some(customer) = &ticket.customer_id else {
            return Ok(false);
        };
        let now_ms = now_milliseconds();
        let created_at_ms = ticket.created_at_ms.unwrap_or(now_ms).min(now_ms);
        let ticket_key = format!("{}:{}", provider.as_str(), ticket.id);
        Ok(self
            .training
            .record_ticket(tenant, customer, &ticket_key, created_at_ms, now_ms)
            .await?)
    }

    /// Records `ticket_submitted` for the widget session, and waits until it is stored
    /// (or spooled): a delivery is only marked processed with its event kept.
    async fn record_submission(
        &self,
        tenant: &TenantId,
        provider: Provider,
        ticket: &HelpdeskTicket,
        session_id: &str,
    ) -> Result<(), IntakeError> {
        let event = ticket_submitted(tenant, provider, &ticket.id, session_id);
        let outcome = self
            .events
            .submit(vec![event])
            .await
            .map_err(|error| IntakeError::Unavailable(Box::new(error)))?;
        match outcome {
            WriteOutcome::Stored(_) | WriteOutcome::Spooled => Ok(()),
            WriteOutcome::SpoolFull | WriteOutcome::Failed => Err(IntakeError::Unavailable(
                "the event of the submission could not be stored".into(),
            )),
        }
    }

    async fn queue_while_you_wait(
        &self,
        tenant: &TenantId,
        provider: Provider,
        ticket: &HelpdeskTicket,
        suggestions: &Suggestions,
    ) -> Result<WhileYouWait, IntakeError> {
        let Some(helpdesk) = provider.helpdesk() else {
            return Ok(WhileYouWait::Off);
        };
        if !self.tenants.while_you_wait(tenant, helpdesk) {
            return Ok(WhileYouWait::Off);
        }
        if !ticket.has_numeric_id() {
            tracing::warn!(ticket_id = %ticket.id, "a ticket id that is not a number cannot be written back to");
            return Ok(WhileYouWait::Off);
        }
        let lessons: Vec<PostedLesson> = suggestions
            .results
            .iter()
            .filter(|result| result.url.is_some())
            .take(MAX_POSTED_LESSONS)
            .map(|result| PostedLesson {
                id: result.id.clone(),
                title: result.title.clone(),
                kind: result.kind.to_owned(),
                duration_seconds: result.duration_seconds,
            })
            .collect();
        if suggestions.abstained || lessons.is_empty() {
            return Ok(WhileYouWait::NothingToPost);
        }
        let job = OutboxJob {
            tenant: tenant.clone(),
            helpdesk,
            ticket_id: ticket.id.clone(),
            action: OutboxAction::PostLessons {
                lessons,
                language: Language::of_locale(ticket.locale.as_deref()),
            },
        };
        if !self.outbox.enqueue(&job).await? {
            return Ok(WhileYouWait::AlreadyQueued);
        }
        Ok(WhileYouWait::Queued)
    }
}
