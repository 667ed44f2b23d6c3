//! The HTTP plumbing the helpdesk clients share: one reqwest client with the outbox's
//! timeouts and the address guard, authenticated JSON calls, and what a failed call
//! means for a retry (`Retry-After` included).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use super::address_guard::{check_literal_host, ForbiddenAddress, PublicOnlyResolver};
use crate::webhooks::settings::OutboxSettings;

/// Why a helpdesk call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the helpdesk answered {status}")]
    Status {
        status: StatusCode,
        /// From `Retry-After`, when the answer had one.
        retry_after: Option<Duration>,
    },
    #[error("the helpdesk could not be reached")]
    Transport(#[source] reqwest::Error),
    #[error("the call was refused")]
    Forbidden(#[source] ForbiddenAddress),
    #[error("the helpdesk's answer could not be read")]
    UnreadableAnswer(#[source] reqwest::Error),
}

impl CallError {
    /// Returns whether the same call may succeed later: the helpdesk was unreachable,
    /// timed out, rate-limited us, had a conflict or a server error. A refused address
    /// or any other client error (bad credentials, no such ticket) will not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Status { status, .. } => {
                status.is_server_error()
                    || matches!(
                        *status,
                        StatusCode::TOO_MANY_REQUESTS
                            | StatusCode::REQUEST_TIMEOUT
                            | StatusCode::CONFLICT
                    )
            }
            CallError::Transport(error) => forbidden_cause(error).is_none(),
            CallError::Forbidden(_) => false,
            CallError::UnreadableAnswer(_) => true,
        }
    }

    /// The wait the helpdesk asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Finds the address guard's refusal among the causes of a transport error.
fn forbidden_cause(error: &reqwest::Error) -> Option<&ForbiddenAddress> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(forbidden) = cause.downcast_ref::<ForbiddenAddress>() {
            return Some(forbidden);
        }
        source = cause.source();
    }
    None
}

/// Builds the HTTP client of all helpdesk calls: the outbox's connect and total
/// timeouts, no redirects (an API answer that redirects is a misconfiguration, and
/// following it could leave the guarded host), no proxy from the environment (the guard
/// must see the addresses connected to) and, unless private addresses are allowed, the
/// resolver that refuses them.
pub fn http_client(settings: &OutboxSettings) -> reqwest::Result<reqwest::Client> {
    guarded_http_client(
        Duration::from_millis(settings.connect_timeout_ms),
        Duration::from_millis(settings.request_timeout_ms),
        settings.allow_private_addresses,
    )
}

/// Builds an HTTP client as [`http_client`] does, with these timeouts (content sync has
/// its own).
pub fn guarded_http_client(
    connect_timeout: Duration,
    request_timeout: Duration,
    allow_private_addresses: bool,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("deflect/", env!("CARGO_PKG_VERSION")));
    if !allow_private_addresses {
        builder = builder.dns_resolver(PublicOnlyResolver);
    }
    builder.build()
}

/// One helpdesk account's API: its base URL and the `Authorization` header value.
#[derive(Clone)]
pub struct ApiAccount {
    http: reqwest::Client,
    base: Url,
    /// `None` for APIs read without credentials (a public catalog feed).
    authorization: Option<SecretString>,
    allow_private_addresses: bool,
}

impl std::fmt::Debug for ApiAccount {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ApiAccount")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl ApiAccount {
    /// `base` has been checked by `address_guard::check_base_url`.
    pub fn new(
        http: reqwest::Client,
        base: Url,
        authorization: SecretString,
        allow_private_addresses: bool,
    ) -> ApiAccount {
        ApiAccount {
            http,
            base,
            authorization: Some(authorization),
            allow_private_addresses,
        }
    }

    /// An account whose calls carry no `Authorization` header.
    pub fn anonymous(
        http: reqwest::Client,
        base: Url,
        allow_private_addresses: bool,
    ) -> ApiAccount {
        ApiAccount {
            http,
            base,
            authorization: None,
            allow_private_addresses,
        }
    }

    /// Returns `reference` (a path, or an absolute URL such as an API's `next_page`)
    /// resolved against the base URL, or `None` when it leaves the base's origin (the
    /// account's credentials are never sent elsewhere).
    pub fn same_origin_url(&self, reference: &str) -> Option<Url> {
        let url = self.base.join(reference).ok()?;
        let same_origin = url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        same_origin.then_some(url)
    }

    /// Sends `GET url` (of this account's origin, see [`ApiAccount::same_origin_url`])
    /// with `headers` and returns the answer when its status is a success or 304 Not
    /// Modified; any other status is an error.
    pub async fn get(&self, url: Url, headers: HeaderMap) -> Result<reqwest::Response, CallError> {
        let request = self.http.get(url.clone()).headers(headers);
        self.send(url, request, |status| status == StatusCode::NOT_MODIFIED)
            .await
    }

    /// Sends a JSON call to `path` (from the base URL's root) and returns the answer
    /// when its status is a success; any other status is an error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, CallError> {
        let url = self
            .base
            .join(path)
            .expect("api paths are built from validated ids");
        let mut request = self.http.request(method, url.clone());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.send(url, request, |_| false).await
    }

    /// Sends `request` (to `url`) with the account's credentials; a status that is no
    /// success and not `also_accepted` is an error carrying any `Retry-After`.
    async fn send(
        &self,
        url: Url,
        mut request: reqwest::RequestBuilder,
        also_accepted: impl Fn(StatusCode) -> bool,
    ) -> Result<reqwest::Response, CallError> {
        if !self.allow_private_addresses {
            check_literal_host(&url).map_err(CallError::Forbidden)?;
        }
        if let Some(authorization) = &self.authorization {
            let mut value = HeaderValue::from_str(authorization.expose_secret())
                .expect("authorization values are built from checked credentials");
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| match forbidden_cause(&error) {
                Some(forbidden) => CallError::Forbidden(forbidden.clone()),
                None => CallError::Transport(error.without_url()),
            })?;
        let status = response.status();
        if status.is_success() || also_accepted(status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        Err(CallError::Status {
            status,
            retry_after,
        })
    }

    /// Sends a call and reads its JSON answer.
    pub async fn call_for_json(
        &self,
        method: Method,
        path: &str,
    ) -> Result<serde_json::Value, CallError> {
        let response = self.call(method, path, None).await?;
        response
            .json()
            .await
            .map_err(|error| CallError::UnreadableAnswer(error.without_url()))
    }
}

/// Returns the HTTP Basic `Authorization` value of `user` and `password`.
pub fn basic_authorization(user: &str, password: &str) -> SecretString {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    SecretString::from(format!("Basic {encoded}"))
}

/// Parses `Retry-After`: a number of seconds or an HTTP date (a date in the past is no
/// wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let in_ninety = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&in_ninety, now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_failures_that_can_pass_later_are_retried() {
        let status = |code: u16| CallError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        for retryable in [429, 500, 502, 503, 408, 409] {
            assert!(status(retryable).is_retryable(), "{retryable}");
        }
        for permanent in [400, 401, 403, 404, 422] {
            assert!(!status(permanent).is_retryable(), "{permanent}");
        }
    }
}
