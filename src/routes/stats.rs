//! `/v1/stats/*`: the counters, for ops.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use time::{Date, Duration, OffsetDateTime};

use crate::auth::{Authorized, OpsScopes};
use crate::domain::TenantId;
use crate::error::{ApiError, ErrorCode};
use crate::events::answers::now_milliseconds;
use crate::events::keys::parse_date;
use crate::events::stats::{DayRange, StatsError, Summary};
use crate::startup::AppState;
use crate::training::roi::{roi_report, RoiInputs};

pub(super) fn configure(config: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/v1/stats/summary", web::get().to(get_summary)),
        ("/v1/stats/lessons", web::get().to(get_lessons)),
        ("/v1/stats/gaps", web::get().to(get_gaps)),
        ("/v1/stats/roi", web::get().to(get_roi)),
    ] {
        config.service(
            web::resource(path)
                .route(handler)
                .default_service(web::to(super::method_not_allowed)),
        );
    }
}

/// The longest range one request may ask for.
const MAX_RANGE_DAYS: i64 = 366;
const DEFAULT_RANGE_DAYS: i64 = 7;
const DEFAULT_LESSONS: usize = 50;
const MAX_LESSONS: usize = 1_000;
const DEFAULT_GAPS: usize = 20;
const MAX_GAPS: usize = 200;

#[derive(Debug, Deserialize)]
struct StatsParams {
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// The ROI report's effectiveness window.
    window_days: Option<u32>,
}

/// The longest effectiveness window of the ROI report.
const MAX_WINDOW_DAYS: u32 = 365;

fn parse_range(params: &StatsParams) -> Result<DayRange, ApiError> {
    let parse = |name: &str, raw: &Option<String>| -> Result<Option<Date>, ApiError> {
        raw.as_deref()
            .map(|text| {
                parse_date(text.trim()).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidQueryParameter,
                        format!("{name} must be a date such as 2026-03-14 (UTC)"),
                    )
                })
            })
            .transpose()
    };
    let to = parse("to", &params.to)?.unwrap_or_else(|| OffsetDateTime::now_utc().date());
    let from = parse("from", &params.from)?
        .unwrap_or_else(|| to.saturating_sub(Duration::days(DEFAULT_RANGE_DAYS - 1)));
    if from > to {
        return Err(ApiError::new(
            ErrorCode::InvalidQueryParameter,
            "from must not be after to",
        ));
    }
    if (to - from).whole_days() >= MAX_RANGE_DAYS {
        return Err(ApiError::new(
            ErrorCode::InvalidQueryParameter,
            format!("a range covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(DayRange { from, to })
}

fn parse_limit(raw: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidQueryParameter,
            format!("limit must be between 1 and {max}"),
        )),
    }
}

fn stats_error(error: StatsError) -> ApiError {
    tracing::warn!(error = %error, cause = ?std::error::Error::source(&error).map(ToString::to_string), "stats read failed");
    ApiError::new(
        ErrorCode::StatsUnavailable,
        "the counters cannot be read right now (redis is unreachable); retry later",
    )
}

#[tracing::instrument(name = "stats summary", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn get_summary(
    authorized: Authorized<OpsScopes>,
    state: web::Data<AppState>,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let range = parse_range(&params)?;
    let summary = read_summary(&state, &tenant, range).await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// The tenant's summary over `range`, priced at its cost per ticket.
async fn read_summary(
    state: &AppState,
    tenant: &TenantId,
    range: DayRange,
) -> Result<Summary, ApiError> {
    let cost = *state.cost_per_ticket.get(tenant);
    state
        .stats
        .summary(tenant, range, cost)
        .await
        .map_err(stats_error)
}

#[tracing::instrument(name = "stats lessons", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn get_lessons(
    authorized: Authorized<OpsScopes>,
    state: web::Data<AppState>,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let range = parse_range(&params)?;
    let limit = parse_limit(params.limit, DEFAULT_LESSONS, MAX_LESSONS)?;
    let lessons = state
        .stats
        .lessons(&tenant, range, limit)
        .await
        .map_err(stats_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lessons": lessons })))
}

#[tracing::instrument(name = "stats gaps", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn get_gaps(
    authorized: Authorized<OpsScopes>,
    state: web::Data<AppState>,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let range = parse_range(&params)?;
    let limit = parse_limit(params.limit, DEFAULT_GAPS, MAX_GAPS)?;
    let gaps = state
        .stats
        .gaps(&tenant, range, limit)
        .await
        .map_err(stats_error)?;
    Ok(HttpResponse::Ok().json(gaps))
}

/// The ROI report: contact rates of trained and untrained customers, implicit and
/// explicit deflections, savings, ticket-to-training effectiveness and the holdout's
/// causal figure, each with the counts behind it.
#[tracing::instrument(name = "stats roi", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn get_roi(
    authorized: Authorized<OpsScopes>,
    state: web::Data<AppState>,
    params: web::Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = authorized.caller.tenant;
    let range = parse_range(&params)?;
    let window_days = match params.window_days {
        None => state.training_settings.effectiveness_window_days,
        Some(days) if (1..=MAX_WINDOW_DAYS).contains(&days) => days,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQueryParameter,
                format!("window_days must be between 1 and {MAX_WINDOW_DAYS}"),
            ))
        }
    };
    let summary = read_summary(&state, &tenant, range).await?;
    let data = state
        .training
        .roi_data(&tenant, range, window_days, now_milliseconds())
        .await
        .map_err(stats_error)?;
    let report = roi_report(&RoiInputs {
        from: summary.from,
        to: summary.to,
        cost_per_ticket: summary.cost_per_ticket,
        contact: data.contact,
        windows: data.windows,
        window_days,
        explicit_deflections: summary.total.deflections,
        holdout: Some(summary.holdout),
        min_cohort_customers: state.training_settings.min_cohort_customers,
    });
    Ok(HttpResponse::Ok().json(report))
}
