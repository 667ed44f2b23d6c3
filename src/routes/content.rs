//! `/v1/content`: the admin API that feeds the index.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;

use crate::auth::{AdminScopes, Authorized};
use crate::content::StoreError;
use crate::content_log::ContentLogError;
use crate::domain::{ContentDocument, ContentId, DocumentInput, TenantId};
use crate::error::{ApiError, ErrorCode};
use crate::ndjson::{parse_line, LineError, LineSplitter, SplitLine};
use crate::search::WriteError;
use crate::startup::AppState;
use crate::telemetry::spawn_blocking_in_span;

use super::{json_config, BodyLimits};

/// At most this many line errors are listed in a bulk answer (all are counted).
const MAX_LISTED_LINE_ERRORS: usize = 1_000;

pub(super) fn configure(config: &mut web::ServiceConfig, limits: &BodyLimits) {
    let bulk_limit = limits.bulk_bytes;
    config
        .service(
            web::resource("/v1/content/bulk")
                .app_data(web::Data::new(BulkLimit(bulk_limit)))
                .route(web::post().to(upload_bulk_content))
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/v1/content/{id}")
                .app_data(json_config(limits.json_bytes))
                .route(web::put().to(put_content))
                .route(web::get().to(get_content))
                .route(web::delete().to(delete_content))
                .default_service(web::to(super::method_not_allowed)),
        );
}

struct BulkLimit(usize);

fn parse_path_id(raw: &str) -> Result<ContentId, ApiError> {
    ContentId::parse(raw).map_err(|message| {
        ApiError::new(
            ErrorCode::InvalidPathParameter,
            format!("content id: {message}"),
        )
    })
}

pub(super) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Log(error) => {
            tracing::warn!(
                ?error,
                "content write failed: the content log is unavailable"
            );
            ApiError::new(
                ErrorCode::ContentLogUnavailable,
                content_log_message(&error),
            )
        }
        StoreError::NotYetApplied { position } => {
            tracing::warn!(%position, "a logged content change was not applied in time");
            ApiError::new(
                ErrorCode::IndexUnavailable,
                "the change is saved and every instance will apply it, but it is not searchable here yet; check again shortly",
            )
        }
        StoreError::Write(WriteError::Stopped) => ApiError::new(
            ErrorCode::IndexUnavailable,
            "the index writer is not running; retry shortly",
        ),
        other => ApiError::internal("content store failed", &other),
    }
}

/// Says what a failed content-log write left behind: nothing, the first parts of it, or
/// an unknown outcome (Redis got it but did not answer).
fn content_log_message(error: &ContentLogError) -> String {
    match error {
        ContentLogError::AppendNotWritten {
            appended_entries: 0,
            source,
            ..
        } if source.server_code() == Some("SEEDING") => {
            "content changes are shared through redis, where an instance is restoring the content log; nothing was changed, retry shortly".to_owned()
        }
        ContentLogError::AppendNotWritten {
            appended_entries: 0,
            ..
        } => "content changes are shared through redis, which does not answer; nothing was changed, retry shortly".to_owned(),
        ContentLogError::AppendNotWritten {
            appended_entries,
            entries,
            ..
        } => format!(
            "content changes are shared through redis, which stopped answering during the write: the first {appended_entries} of its {entries} parts were saved and reach every instance, the rest was not; retrying the whole write is safe"
        ),
        ContentLogError::AppendUnanswered {
            appended_entries,
            entries,
            ..
        } => format!(
            "content changes are shared through redis, which did not answer in time: part {} of the write's {entries} may or may not have been saved ({appended_entries} before it were; what was saved reaches every instance); retrying the whole write is safe",
            appended_entries + 1
        ),
        _ => "content changes are shared through redis, which does not answer; nothing was changed, retry shortly".to_owned(),
    }
}

#[tracing::instrument(name = "put content", skip_all, fields(tenant = %authorized.caller.tenant, id = %path))]
async fn put_content(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DocumentInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    let id = parse_path_id(&path)?;
    let document = ContentDocument::parse(body.into_inner(), Some(&id)).map_err(|problems| {
        ApiError::new(
            ErrorCode::InvalidDocument,
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
        .with_details(serde_json::json!({ "problems": problems }))
    })?;
    state
        .store
        .upsert(&caller.tenant, vec![document.clone()])
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(document))
}

#[tracing::instrument(name = "get content", skip_all, fields(tenant = %authorized.caller.tenant, id = %path))]
async fn get_content(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    let id = parse_path_id(&path)?;
    match state
        .store
        .get(&caller.tenant, &id)
        .await
        .map_err(store_error)?
    {
        Some(document) => Ok(HttpResponse::Ok().json(document)),
        None => Err(not_found(&id)),
    }
}

#[tracing::instrument(name = "delete content", skip_all, fields(tenant = %authorized.caller.tenant, id = %path))]
async fn delete_content(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    let id = parse_path_id(&path)?;
    if state
        .store
        .delete(&caller.tenant, &id)
        .await
        .map_err(store_error)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(&id))
    }
}

fn not_found(id: &ContentId) -> ApiError {
    ApiError::new(
        ErrorCode::ContentNotFound,
        format!("no content with id `{id}`"),
    )
}

/// What a bulk upload did.
#[derive(Debug, Serialize)]
struct BulkReport {
    /// Documents added or replaced.
    applied: usize,
    /// Lines that were not applied.
    failed: usize,
    /// The failed lines (the first 1000), by line number.
    errors: Vec<LineError>,
}

/// Streams an NDJSON body into the index in batches: memory stays bounded by one batch,
/// valid lines are applied, invalid ones reported by line number.
#[tracing::instrument(name = "bulk content", skip_all, fields(tenant = %authorized.caller.tenant))]
async fn upload_bulk_content(
    authorized: Authorized<AdminScopes>,
    state: web::Data<AppState>,
    limit: web::Data<BulkLimit>,
    request: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authorized.caller;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(
        essence,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    ) {
        return Err(ApiError::new(
            ErrorCode::InvalidContentType,
            "expected a body with Content-Type: application/x-ndjson (one JSON document per line)",
        ));
    }
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limit.0) {
        return Err(too_large(limit.0, 0));
    }

    let mut upload = BulkUpload::new(caller.tenant.clone(), state.bulk_batch_size);
    let mut splitter = LineSplitter::default();
    let mut received_bytes = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(super::unreadable_body)?;
        received_bytes += chunk.len();
        if received_bytes > limit.0 {
            upload.flush(&state).await?;
            return Err(too_large(limit.0, upload.report.applied));
        }
        splitter.push(&chunk, |line| upload.take(line));
        if upload.pending_lines.len() >= state.bulk_batch_size {
            upload.flush(&state).await?;
        }
    }
    splitter.finish(|line| upload.take(line));
    upload.flush(&state).await?;
    tracing::info!(
        applied = upload.report.applied,
        failed = upload.report.failed,
        "bulk upload done"
    );
    Ok(HttpResponse::Ok().json(upload.report))
}

fn too_large(limit: usize, applied: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than the limit of {limit} bytes"),
    )
    .with_details(serde_json::json!({ "applied_before_limit": applied }))
}

struct BulkUpload {
    tenant: TenantId,
    pending_lines: Vec<(usize, Vec<u8>)>,
    report: BulkReport,
}

impl BulkUpload {
    fn new(tenant: TenantId, batch_size: usize) -> BulkUpload {
        BulkUpload {
            tenant,
            pending_lines: Vec::with_capacity(batch_size),
            report: BulkReport {
                applied: 0,
                failed: 0,
                errors: Vec::new(),
            },
        }
    }

    fn take(&mut self, line: SplitLine<'_>) {
        match line {
            SplitLine::Complete { number, bytes } => {
                self.pending_lines.push((number, bytes.to_vec()))
            }
            SplitLine::TooLong { number } => self.record_error(LineError {
                line: number,
                id: None,
                message: format!(
                    "the line is longer than {} bytes",
                    crate::ndjson::MAX_LINE_BYTES
                ),
                problems: Vec::new(),
            }),
        }
    }

    fn record_error(&mut self, error: LineError) {
        self.report.failed += 1;
        if self.report.errors.len() < MAX_LISTED_LINE_ERRORS {
            self.report.errors.push(error);
        }
    }

    /// Parses the pending lines off the async threads and applies the valid ones.
    async fn flush(&mut self, state: &AppState) -> Result<(), ApiError> {
        if self.pending_lines.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let parsed = spawn_blocking_in_span(move || {
            let mut documents = Vec::with_capacity(lines.len());
            let mut errors = Vec::new();
            for (number, bytes) in lines {
                match parse_line(&bytes, number) {
                    Ok(Some(document)) => documents.push(document),
                    Ok(None) => {}
                    Err(error) => errors.push(error),
                }
            }
            (documents, errors)
        })
        .await
        .map_err(|error| ApiError::internal("bulk parse task failed", &error))?;
        let (documents, errors) = parsed;
        for error in errors {
            self.record_error(error);
        }
        let applied = documents.len();
        state
            .store
            .upsert(&self.tenant, documents)
            .await
            .map_err(store_error)?;
        self.report.applied += applied;
        Ok(())
    }
}
