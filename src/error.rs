//! The one error contract of the HTTP API: `{"message", "code", "type"}` with a stable
//! snake_case `code` and the status taken from one table.
//!
//! Handlers return [`ApiError`]; actix's own JSON, query and path extractor errors are
//! mapped to the same body. 5xx bodies are opaque; the log carries the cause.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// Every error code the API returns. The README lists them; keep both in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingApiKey,
    InvalidApiKey,
    InsufficientScope,
    OriginNotAllowed,
    MalformedJson,
    InvalidContentType,
    PayloadTooLarge,
    InvalidQueryParameter,
    InvalidPathParameter,
    EmptyDraft,
    InvalidSuggestRequest,
    InvalidDocument,
    ContentNotFound,
    RouteNotFound,
    MethodNotAllowed,
    IndexUnavailable,
    ContentLogUnavailable,
    ReindexInProgress,
    InvalidEventBatch,
    EventQueueFull,
    EventSpoolFull,
    StatsUnavailable,
    WebhookUnauthorized,
    InvalidWebhookPayload,
    WebhookUnavailable,
    LinkNotFound,
    LinkUnavailable,
    InvalidAssignment,
    AssignmentNotFound,
    HelpdeskNotConfigured,
    InvalidActiveCustomers,
    TrainingUnavailable,
    SyncSourceNotConfigured,
    SyncInProgress,
    SyncSourceFailed,
    SyncUnavailable,
    Internal,
}

/// The family of an error, for clients that only care whether to fix, re-authenticate
/// or retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequest,
    Auth,
    System,
    Internal,
}

impl ErrorCode {
    /// The table: HTTP status and type of each code.
    pub fn status_and_type(self) -> (StatusCode, ErrorType) {
        use ErrorCode::*;
        match self {
            MissingApiKey | InvalidApiKey | WebhookUnauthorized => {
                (StatusCode::UNAUTHORIZED, ErrorType::Auth)
            }
            InsufficientScope | OriginNotAllowed => (StatusCode::FORBIDDEN, ErrorType::Auth),
            MalformedJson
            | InvalidQueryParameter
            | InvalidPathParameter
            | EmptyDraft
            | InvalidSuggestRequest
            | InvalidDocument
            | InvalidEventBatch
            | InvalidWebhookPayload
            | InvalidAssignment
            | InvalidActiveCustomers => (StatusCode::BAD_REQUEST, ErrorType::InvalidRequest),
            InvalidContentType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorType::InvalidRequest,
            ),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorType::InvalidRequest),
            ContentNotFound
            | RouteNotFound
            | LinkNotFound
            | AssignmentNotFound
            | SyncSourceNotConfigured => (StatusCode::NOT_FOUND, ErrorType::InvalidRequest),
            HelpdeskNotConfigured | SyncInProgress | ReindexInProgress => {
                (StatusCode::CONFLICT, ErrorType::InvalidRequest)
            }
            SyncSourceFailed => (StatusCode::BAD_GATEWAY, ErrorType::System),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorType::InvalidRequest),
            IndexUnavailable
            | ContentLogUnavailable
            | EventQueueFull
            | EventSpoolFull
            | StatsUnavailable
            | WebhookUnavailable
            | LinkUnavailable
            | TrainingUnavailable
            | SyncUnavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorType::System),
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Internal),
        }
    }

    /// Seconds a client should wait before retrying, for the codes that mean "not now".
    pub fn retry_after_seconds(self) -> Option<&'static str> {
        match self {
            ErrorCode::IndexUnavailable | ErrorCode::EventQueueFull => Some("1"),
            ErrorCode::StatsUnavailable
            | ErrorCode::ContentLogUnavailable
            | ErrorCode::LinkUnavailable
            | ErrorCode::TrainingUnavailable
            | ErrorCode::SyncUnavailable => Some("5"),
            ErrorCode::WebhookUnavailable => Some("10"),
            ErrorCode::EventSpoolFull => Some("30"),
            _ => None,
        }
    }
}

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra structured detail (for example per-field problems).
    pub details: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ErrorBody<'error> {
    message: &'error str,
    code: ErrorCode,
    #[serde(rename = "type")]
    error_type: ErrorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'error serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// An internal failure: logged with its whole cause chain, answered opaquely.
    pub fn internal(context: &str, error: &(dyn std::error::Error + 'static)) -> ApiError {
        let chain = error_chain(error);
        tracing::error!(error = %chain, "{context}");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status_and_type().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, error_type) = self.code.status_and_type();
        let mut response = HttpResponse::build(status);
        if let Some(seconds) = self.code.retry_after_seconds() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static(seconds)));
        }
        response.json(ErrorBody {
            message: &self.message,
            code: self.code,
            error_type,
            details: self.details.as_ref(),
        })
    }
}

/// Formats an error with all its causes (`outer: inner: root`), for log lines.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// Maps actix's JSON extractor errors to the contract.
pub fn json_error_handler(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::InvalidContentType,
            "expected a body with Content-Type: application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(deserialize_error) if deserialize_error.is_data() => {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("the JSON body does not have the expected shape: {deserialize_error}"),
            )
        }
        JsonPayloadError::Deserialize(deserialize_error) => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {deserialize_error}"),
        ),
        other => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body could not be read: {other}"),
        ),
    };
    api_error.into()
}

/// Maps actix's query-string extractor errors to the contract.
pub fn query_error_handler(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        ErrorCode::InvalidQueryParameter,
        format!("invalid query string: {error}"),
    )
    .into()
}

/// Maps actix's path extractor errors to the contract.
pub fn path_error_handler(error: PathError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        ErrorCode::InvalidPathParameter,
        format!("invalid path: {error}"),
    )
    .into()
}

/// Answers routes that do not exist with the contract instead of an empty 404.
pub async fn route_not_found(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", request.method(), request.path()),
    )
    .error_response()
}
