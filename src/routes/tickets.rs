//! `/v1/tickets/{ticket_id}/…`: what an agent does with a ticket (scope agent): ask for
//! the lessons and courses that fit it, and assign some to its customer, optionally
//! posted into the ticket through the outbox.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::auth::{AgentScopes, Authorized};
use crate::domain::{ContentKind, CustomerId, DraftTicket, SuggestRequestBody, TenantId};
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::now_milliseconds;
use crate::helpdesk::Helpdesk;
use crate::outbox::{OutboxAction, OutboxJob, PostedLesson};
use crate::startup::AppState;
use crate::suggest::Suggestions;
use crate::training::progress::{AssignmentRecord, AssignmentView};
use crate::training::requests::{AssignmentBody, NewAssignment};
use crate::webhooks::payload::is_ticket_id;

use super::suggest::{draft_error, leave_out_completed};
use super::{json_config, BodyLimits};

/// Recommendations returned when a request names no limit.
const DEFAULT_RECOMMENDATIONS: u32 = 5;

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    config
        .service(
            web::resource("/v1/tickets/{ticket_id}/recommendations")
                .app_data(json_config(limits.suggest_json_bytes))
                .route(web::post().to(recommend_training))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/v1/tickets/{ticket_id}/assignments")
                .app_data(json_config(limits.json_bytes))
                .route(web::post().to(assign_training))
                .default_service(web::to(super::method_not_allowed)),
        );
}

/// Returns the ticket id of the path: 1-64 characters of `A-Z a-z 0-9 _ - .`.
fn parse_ticket_id(raw: &str) -> Result<String, ApiError> {
    if is_ticket_id(raw) && !raw.is_empty() {
        return Ok(raw.to_owned());
    }
    Err(ApiError::new(
        ErrorCode::InvalidPathParameter,
        "ticket id: 1-64 characters of letters, digits, `_`, `-` and `.`",
    ))
}

/// The error of training data that cannot be read or written right now.
pub(super) fn training_unavailable(error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %error, "training data unavailable");
    ApiError::new(
        ErrorCode::TrainingUnavailable,
        "training data cannot be read or written right now (redis is unreachable); retry later",
    )
}

#[derive(Serialize)]
struct Recommendations {
    ticket_id: String,
    customer_id: Option<CustomerId>,
    /// False when the customer's completed lessons could not be read in time (they may
    /// then be among the results).
    completed_left_out: bool,
    #[serde(flatten)]
    suggestions: Suggestions,
}

/// The best lessons and courses for a ticket, leaving out those its customer completed,
/// each with the words it matched.
#[tracing::instrument(name = "recommend training", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn recommend_training(
    authorized: Authorized<AgentScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SuggestRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let ticket_id = parse_ticket_id(&path)?;
    let mut body = body.into_inner();
    body.session_id = None;
    body.limit = body.limit.or(Some(DEFAULT_RECOMMENDATIONS));
    let mut draft =
        DraftTicket::parse(body, state.default_limit, state.max_limit).map_err(draft_error)?;
    if draft.kinds.is_empty() {
        draft.kinds = vec![ContentKind::Lesson, ContentKind::Course];
    }
    let completed_left_out = leave_out_completed(&state, &tenant, &mut draft).await;
    let customer_id = draft.customer_id.clone();
    let suggestions = state
        .suggest
        .suggest(tenant, draft)
        .await
        .map_err(|error| ApiError::internal("recommendations failed", &error))?;
    Ok(HttpResponse::Ok().json(Recommendations {
        ticket_id,
        customer_id,
        completed_left_out,
        suggestions,
    }))
}

/// What became of the request to post the assignment into the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Notification {
    /// Not asked for.
    Off,
    Queued,
    /// The same lessons were posted for this customer and ticket before.
    AlreadyQueued,
}

#[derive(Serialize)]
struct AssignedLesson {
    /// False when the customer already had this lesson assigned (it is kept as it was).
    created: bool,
    #[serde(flatten)]
    assignment: AssignmentView,
}

#[derive(Serialize)]
struct Assignments {
    ticket_id: String,
    customer_id: CustomerId,
    assignments: Vec<AssignedLesson>,
    notification: Notification,
    #[serde(skip_serializing_if = "Option::is_none")]
    helpdesk: Option<Helpdesk>,
}

/// Assigns lessons to the ticket's customer (idempotent per customer and lesson) and,
/// with `notify`, queues a comment with them, tracked links included, into the ticket.
#[tracing::instrument(name = "assign training", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn assign_training(
    authorized: Authorized<AgentScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AssignmentBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let ticket_id = parse_ticket_id(&path)?;
    let now_ms = now_milliseconds();
    let request = NewAssignment::parse(
        body.into_inner(),
        state.training_settings.max_lessons_per_assignment,
        now_ms,
        state.training.cutoff_ms(now_ms),
    )
    .map_err(invalid_assignment)?;
    let records = assignment_records(&state, &tenant, &ticket_id, &request).await?;
    let helpdesk = match request.notify {
        true => Some(notify_helpdesk(
            &state,
            &tenant,
            &ticket_id,
            request.helpdesk,
        )?),
        false => None,
    };

    let stored = state
        .training
        .assign(
            &tenant,
            &request.customer,
            &records,
            request.assigned_at_ms,
            now_ms,
        )
        .await
        .map_err(training_unavailable)?;
    let notification = match helpdesk {
        Some(helpdesk) => notify(&state, &tenant, &ticket_id, helpdesk, &request, &records).await?,
        None => Notification::Off,
    };
    let progress = state
        .training
        .customer(&tenant, &request.customer)
        .await
        .map_err(training_unavailable)?
        .progress;
    tracing::info!(
        ticket_id = %ticket_id,
        lessons = stored.len(),
        created = stored.iter().filter(|assigned| assigned.created).count(),
        ?notification,
        "training assigned"
    );
    Ok(HttpResponse::Ok().json(Assignments {
        ticket_id,
        customer_id: request.customer,
        assignments: stored
            .iter()
            .map(|assigned| AssignedLesson {
                created: assigned.created,
                assignment: AssignmentView::of(&assigned.record, &progress),
            })
            .collect(),
        notification,
        helpdesk,
    }))
}

fn invalid_assignment(problems: Vec<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidAssignment, problems.join("; "))
        .with_details(serde_json::json!({ "problems": problems }))
}

/// Looks every lesson up in the content index; refuses the request when one is unknown.
async fn assignment_records(
    state: &AppState,
    tenant: &TenantId,
    ticket_id: &str,
    request: &NewAssignment,
) -> Result<Vec<AssignmentRecord>, ApiError> {
    let mut records = Vec::with_capacity(request.lesson_ids.len());
    let mut unknown: Vec<&str> = Vec::new();
    for lesson_id in &request.lesson_ids {
        let document = state
            .store
            .get(tenant, lesson_id)
            .await
            .map_err(|error| ApiError::internal("failed to read an assigned lesson", &error))?;
        let Some(document) = document else {
            unknown.push(lesson_id.as_str());
            continue;
        };
        records.push(AssignmentRecord {
            lesson_id: document.id,
            kind: document.kind.as_str().to_owned(),
            title: document.title,
            url: document.url,
            duration_seconds: document.duration_seconds,
            course_id: document.course_id,
            ticket_id: ticket_id.to_owned(),
            agent_id: request.agent_id.clone(),
            note: request.note.clone(),
            assigned_at_ms: request.assigned_at_ms,
        });
    }
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidAssignment,
            format!("lesson_ids: no such content: {}", unknown.join(", ")),
        )
        .with_details(serde_json::json!({ "unknown_lesson_ids": unknown })));
    }
    Ok(records)
}

/// The helpdesk to post into: the one asked for, or the tenant's only one with an API
/// account; refused when there is none (or several and none was named), when tracked
/// links are not configured, or when the ticket id cannot be a helpdesk's.
fn notify_helpdesk(
    state: &AppState,
    tenant: &TenantId,
    ticket_id: &str,
    asked: Option<Helpdesk>,
) -> Result<Helpdesk, ApiError> {
    let configured = state.webhooks.intake.tenants.write_back_helpdesks(tenant);
    let helpdesk = match (asked, configured.as_slice()) {
        (Some(asked), _) if configured.contains(&asked) => asked,
        (None, [only]) => *only,
        (None, [_, _, ..]) => return Err(ApiError::new(
            ErrorCode::InvalidAssignment,
            "helpdesk: this tenant has several helpdesks; name the ticket's (zendesk or freshdesk)",
        )),
        _ => {
            return Err(ApiError::new(
                ErrorCode::HelpdeskNotConfigured,
                "notify needs the helpdesk's base_url and API credentials in the tenant's settings",
            ))
        }
    };
    if state.links.is_none() {
        return Err(ApiError::new(
            ErrorCode::HelpdeskNotConfigured,
            "notify needs tracked links: set webhooks.public_url and webhooks.link_secret",
        ));
    }
    if !ticket_id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::new(
            ErrorCode::InvalidAssignment,
            "notify needs the helpdesk's ticket id (digits only)",
        ));
    }
    Ok(helpdesk)
}

/// Queues the comment with the assigned lessons.
async fn notify(
    state: &AppState,
    tenant: &TenantId,
    ticket_id: &str,
    helpdesk: Helpdesk,
    request: &NewAssignment,
    records: &[AssignmentRecord],
) -> Result<Notification, ApiError> {
    let lessons = records
        .iter()
        .map(|record| PostedLesson {
            id: record.lesson_id.clone(),
            title: record.title.clone(),
            kind: record.kind.clone(),
            duration_seconds: record.duration_seconds,
        })
        .collect();
    let job = OutboxJob {
        tenant: tenant.clone(),
        helpdesk,
        ticket_id: ticket_id.to_owned(),
        action: OutboxAction::PostAssignment {
            customer_id: request.customer.clone(),
            lessons,
            note: request.note.clone(),
            language: request.language,
        },
    };
    let queued = state
        .webhooks
        .outbox
        .enqueue(&job)
        .await
        .map_err(training_unavailable)?;
    Ok(match queued {
        true => Notification::Queued,
        false => Notification::AlreadyQueued,
    })
}
