//! What a verified LMS webhook does, once per delivery: a completion or an enrollment
//! is recorded as the customer's progress (the first time of each counts), which
//! completes or opens every matching assignment and marks the customer trained.
//!
//! A delivery is known by its Standard Webhooks `webhook-id`, else by the event's own
//! id (Thinkific's `id`), else by its body; and since only the first time of a step
//! counts, even a replay under a new id changes nothing.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::TenantId;
use crate::events::answers::now_milliseconds;
use crate::redis_connection::RedisCallError;
use crate::training::lms::LmsEvent;
use crate::training::progress::Step;
use crate::training::TrainingStore;

use super::deliveries::DeliveryLog;
use super::intake::DeliveryStatus;
use super::signature::VerifiedDelivery;
use super::tenants::HelpdeskTenants;
use super::Provider;

/// The answer to an LMS webhook.
#[derive(Debug, Serialize)]
pub struct LmsAnswer {
    pub status: DeliveryStatus,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// deflect's content id of the lesson or course (the LMS id behind the tenant's
    /// prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// False when the customer had taken this step before (at that time or earlier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<bool>,
}

impl LmsAnswer {
    fn unprocessed(status: DeliveryStatus, event: &LmsEvent) -> LmsAnswer {
        LmsAnswer {
            status,
            event: event.name.clone(),
            customer_id: None,
            content_id: None,
            step: None,
            first_time: None,
        }
    }
}

/// The service behind `POST /v1/webhooks/lms`.
pub struct LmsIntake {
    pub tenants: Arc<HelpdeskTenants>,
    pub deliveries: DeliveryLog,
    pub training: TrainingStore,
}

impl LmsIntake {
    /// Processes a verified delivery of `tenant` (its raw `body` parsed as `event`),
    /// unless it was processed before.
    pub async fn process(
        &self,
        tenant: &TenantId,
        body: &[u8],
        delivery: VerifiedDelivery,
        event: LmsEvent,
    ) -> Result<LmsAnswer, RedisCallError> {
        let delivery_key = delivery
            .delivery_id
            .or_else(|| event.event_id.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        let processed = self
            .deliveries
            .process_once(
                tenant,
                Provider::Lms,
                &delivery_key,
                self.handle(tenant, &event),
            )
            .await?;
        Ok(processed.unwrap_or_else(|| LmsAnswer::unprocessed(DeliveryStatus::Duplicate, &event)))
    }

    async fn handle(
        &self,
        tenant: &TenantId,
        event: &LmsEvent,
    ) -> Result<LmsAnswer, RedisCallError> {
        let Some(progress) = &event.progress else {
            return Ok(LmsAnswer::unprocessed(DeliveryStatus::Ignored, event));
        };
        let content_id = self
            .tenants
            .lms_content_id(tenant, progress.kind, &progress.lms_id);
        let now_ms = now_milliseconds();
        let first_time = self
            .training
            .record_progress(
                tenant,
                &progress.customer,
                (progress.step, progress.kind, &content_id),
                progress.at_ms.unwrap_or(now_ms),
                now_ms,
            )
            .await?;
        tracing::info!(
            event = %event.name,
            content_id = %content_id,
            first_time,
            "lms webhook processed"
        );
        Ok(LmsAnswer {
            status: DeliveryStatus::Processed,
            event: event.name.clone(),
            customer_id: Some(progress.customer.to_string()),
            content_id: Some(content_id),
            step: Some(progress.step),
            first_time: Some(first_time),
        })
    }
}
