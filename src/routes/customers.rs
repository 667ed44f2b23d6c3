//! `/v1/customers/…`: a customer's assignments (scope agent), and the active customers
//! the ROI report's contact rates are computed over (scope admin or ops).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use time::OffsetDateTime;

use crate::auth::{AdminOrOpsScopes, AgentScopes, Authorized};
use crate::domain::{ContentId, CustomerId};
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::now_milliseconds;
use crate::events::keys::format_date;
use crate::startup::AppState;
use crate::training::progress::{format_ms, AssignmentView, ItemKind};
use crate::training::requests::{ActiveBody, ActiveUploadRequest};
use crate::training::store::date_time_of_ms;

use super::tickets::training_unavailable;
use super::{json_config, BodyLimits};

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    config
        .service(
            web::resource("/v1/customers/active")
                .app_data(json_config(limits.json_bytes))
                .route(web::post().to(add_active_customers))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/v1/customers/{customer_id}/assignments")
                .route(web::get().to(get_assignments))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/v1/customers/{customer_id}/assignments/{lesson_id}")
                .route(web::delete().to(delete_assignment))
                .default_service(web::to(super::method_not_allowed)),
        );
}

fn parse_customer(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|problem| {
        ApiError::new(
            ErrorCode::InvalidPathParameter,
            format!("customer id: {problem}"),
        )
    })
}

#[derive(Serialize)]
struct CompletionView {
    kind: ItemKind,
    content_id: String,
    completed_at: String,
}

#[derive(Serialize)]
struct CustomerAssignments {
    customer_id: CustomerId,
    /// The customer's first completion of any lesson or course, as the LMS reported it.
    trained_at: Option<String>,
    /// Oldest first.
    assignments: Vec<AssignmentView>,
    /// Every lesson and course the LMS reported completed, oldest first.
    completed: Vec<CompletionView>,
}

/// The customer's assignments with their status (assigned, opened, completed) and times.
#[tracing::instrument(name = "get assignments", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn get_assignments(
    authorized: Authorized<AgentScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let customer = parse_customer(&path)?;
    let training = state
        .training
        .customer(&tenant, &customer)
        .await
        .map_err(training_unavailable)?;
    let completions = training.progress.completions();
    Ok(HttpResponse::Ok().json(CustomerAssignments {
        trained_at: completions
            .first()
            .map(|completion| format_ms(completion.at_ms)),
        assignments: training
            .assignments
            .iter()
            .map(|record| AssignmentView::of(record, &training.progress))
            .collect(),
        completed: completions
            .into_iter()
            .map(|completion| CompletionView {
                kind: completion.kind,
                content_id: completion.content_id,
                completed_at: format_ms(completion.at_ms),
            })
            .collect(),
        customer_id: customer,
    }))
}

/// Deletes one assignment: 204, or 404 when the customer has none of that lesson.
#[tracing::instrument(name = "delete assignment", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn delete_assignment(
    authorized: Authorized<AgentScopes>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let (raw_customer, raw_lesson) = path.into_inner();
    let customer = parse_customer(&raw_customer)?;
    let lesson_id = ContentId::parse(&raw_lesson).map_err(|problem| {
        ApiError::new(
            ErrorCode::InvalidPathParameter,
            format!("lesson id: {problem}"),
        )
    })?;
    let removed = state
        .training
        .unassign(&tenant, &customer, lesson_id.as_str())
        .await
        .map_err(training_unavailable)?;
    if !removed {
        return Err(ApiError::new(
            ErrorCode::AssignmentNotFound,
            format!("customer {customer} has no assignment of {lesson_id}"),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct ActiveAnswer {
    from: String,
    to: String,
    /// Ids in the request, repeats included.
    received: usize,
    /// Customers not listed for this period before.
    added: i64,
    /// Customers the period lists now.
    active_customers: i64,
}

/// Adds customers to those active in a period (uploads add up; a customer listed twice
/// counts once).
#[tracing::instrument(name = "add active customers", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn add_active_customers(
    authorized: Authorized<AdminOrOpsScopes>,
    state: web::Data<AppState>,
    body: web::Json<ActiveBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let now_ms = now_milliseconds();
    let today = OffsetDateTime::now_utc().date();
    let oldest = date_time_of_ms(state.training.cutoff_ms(now_ms))
        .map(|oldest| oldest.date())
        .unwrap_or(today);
    let request = ActiveUploadRequest::parse(
        body.into_inner(),
        state.training_settings.max_active_customers_per_request,
        today,
        oldest,
    )
    .map_err(|problems| {
        ApiError::new(ErrorCode::InvalidActiveCustomers, problems.join("; "))
            .with_details(serde_json::json!({ "problems": problems }))
    })?;
    let upload = state
        .training
        .add_active(
            &tenant,
            (request.from, request.to),
            &request.customers,
            now_ms,
        )
        .await
        .map_err(training_unavailable)?;
    Ok(HttpResponse::Ok().json(ActiveAnswer {
        from: format_date(request.from),
        to: format_date(request.to),
        received: request.received,
        added: upload.added,
        active_customers: upload.customers,
    }))
}
