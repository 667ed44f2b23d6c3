//! Request-wide behaviour: the request id header and CORS for browser widgets.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use tracing_actix_web::RequestId;

use crate::auth::KeyRing;
use crate::error::{ApiError, ErrorCode};

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Returns the request id (the one every log line of the request carries) to the client.
pub async fn expose_request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request.extensions().get::<RequestId>().copied();
    let mut response = next.call(request).await?;
    if let Some(request_id) = request_id {
        if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }
    Ok(response)
}

/// CORS for widgets. Preflights (which carry no key) pass for origins any tenant allows;
/// the actual call is then checked against the key's own tenant in `auth`.
pub async fn cors(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .map(|origin| origin.trim_end_matches('/').to_owned());
    let Some(origin) = origin else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let is_known = request
        .app_data::<web::Data<Arc<KeyRing>>>()
        .is_some_and(|keys| keys.is_known_origin(&origin));
    let is_preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if is_preflight {
        let response = if is_known {
            let mut response = HttpResponse::NoContent();
            allow_origin(&mut response, &origin);
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
            response.finish()
        } else {
            ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!("origin {origin} is not allowed"),
            )
            .error_response()
        };
        return Ok(request.into_response(response).map_into_right_body());
    }

    let mut response = next.call(request).await?;
    if is_known {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        // The widget reads `Date` to correct a customer's clock that is far off (deflect
        // refuses events stamped more than 5 minutes ahead).
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, date"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response.map_into_left_body())
}

fn allow_origin(response: &mut actix_web::HttpResponseBuilder, origin: &str) {
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.to_owned()))
        .insert_header((header::VARY, "Origin"));
}
