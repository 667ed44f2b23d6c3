//! Reads the pages of a source's API: one authenticated GET per page, retried with
//! backoff when the API is unreachable, rate-limits (honouring `Retry-After`) or fails
//! on its side, paced so that one run stays under the API's rate limit, and parsed into
//! the page's typed shape. A page that does not parse, or whose body is larger than
//! `sync.max_page_bytes` (read incrementally, never whole), fails the run: a sync never
//! applies half of what a source has.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, LINK};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::error_chain;
use crate::helpdesk::api::{ApiAccount, CallError};
use crate::helpdesk::retry::RetryPolicy;

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the call to {path} failed after {attempts} attempts")]
    Call {
        path: String,
        attempts: u32,
        #[source]
        source: CallError,
    },
    #[error("the page {path} is not in the documented format: {reason}")]
    Malformed { path: String, reason: String },
    #[error(
        "the next page `{0}` is not on the source's own host; refusing to send credentials there"
    )]
    ForeignUrl(String),
    #[error("the source has more than {0} pages (sync.max_pages)")]
    TooManyPages(usize),
    #[error("the page {path} is larger than {limit_bytes} bytes (sync.max_page_bytes)")]
    TooLarge { path: String, limit_bytes: usize },
}

/// One page as read.
#[derive(Debug)]
pub enum Page<T> {
    Read {
        body: T,
        /// The answer's `ETag`, if any.
        etag: Option<String>,
        /// The `rel="next"` target of the answer's `Link` header, if any.
        link_next: Option<String>,
    },
    /// 304: nothing changed since the `If-None-Match` sent.
    NotModified,
}

/// How pages are fetched, from `[sync]`.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    pub min_request_interval: Duration,
    pub max_pages: usize,
    /// The largest page body read; a larger one fails the run.
    pub max_page_bytes: usize,
}

/// Fetches the pages of one source's API for one run.
pub struct PageFetcher {
    account: ApiAccount,
    options: FetchOptions,
    last_request: Mutex<Option<Instant>>,
    pages_read: std::sync::atomic::AtomicUsize,
}

impl PageFetcher {
    pub fn new(account: ApiAccount, options: FetchOptions) -> PageFetcher {
        PageFetcher {
            account,
            options,
            last_request: Mutex::new(None),
            pages_read: Default::default(),
        }
    }

    /// Pages read so far.
    pub fn pages_read(&self) -> usize {
        self.pages_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads `reference` (a path, or an absolute URL of the source's own origin) with
    /// `headers` and parses it as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        reference: &str,
        headers: HeaderMap,
    ) -> Result<Page<T>, PageError> {
        let url = self
            .account
            .same_origin_url(reference)
            .ok_or_else(|| PageError::ForeignUrl(reference.to_owned()))?;
        let path = url.path().to_owned();
        let pages_read = self
            .pages_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if pages_read >= self.options.max_pages {
            return Err(PageError::TooManyPages(self.options.max_pages));
        }
        let mut attempt = 1;
        loop {
            self.pace().await;
            let outcome = match self.account.get(url.clone(), headers.clone()).await {
                Ok(response) => read_page(response, &path, self.options.max_page_bytes).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(page) => return page,
                Err(error) if error.is_retryable() && attempt < self.options.max_attempts => {
                    let wait = self.options.retry.wait_after(attempt, error.retry_after());
                    tracing::warn!(
                        path,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %error_chain(&error),
                        "source page failed; will retry"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(PageError::Call {
                        path,
                        attempts: attempt,
                        source,
                    })
                }
            }
        }
    }

    /// Waits until `min_request_interval` has passed since the last request.
    async fn pace(&self) {
        let mut last_request = self.last_request.lock().await;
        if let Some(last) = *last_request {
            tokio::time::sleep_until(last + self.options.min_request_interval).await;
        }
        *last_request = Some(Instant::now());
    }
}

/// Reads an answer's body, at most `max_page_bytes` of it; a body that breaks off is a
/// retryable call error, one that is too large or does not parse fails the run (as the
/// inner `Result`).
async fn read_page<T: DeserializeOwned>(
    mut response: reqwest::Response,
    path: &str,
    max_page_bytes: usize,
) -> Result<Result<Page<T>, PageError>, CallError> {
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Ok(Page::NotModified));
    }
    let too_large = || PageError::TooLarge {
        path: path.to_owned(),
        limit_bytes: max_page_bytes,
    };
    let declared_too_large = response
        .content_length()
        .is_some_and(|length| length > max_page_bytes as u64);
    if declared_too_large {
        return Ok(Err(too_large()));
    }
    let headers = response.headers().clone();
    // Read piece by piece, so that a body without a length (chunked) or longer than it
    // said stops at the limit instead of filling memory.
    let mut bytes = Vec::new();
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|error| CallError::UnreadableAnswer(error.without_url()))?
    {
        if bytes.len() + piece.len() > max_page_bytes {
            return Ok(Err(too_large()));
        }
        bytes.extend_from_slice(&piece);
    }
    let body = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(error) => {
            return Ok(Err(PageError::Malformed {
                path: path.to_owned(),
                reason: error.to_string(),
            }))
        }
    };
    let header_text = |value: &HeaderValue| value.to_str().ok().map(str::to_owned);
    Ok(Ok(Page::Read {
        body,
        etag: headers.get(reqwest::header::ETAG).and_then(header_text),
        link_next: headers
            .get_all(LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(next_link),
    }))
}

/// Returns the `rel="next"` target of a `Link` header value
/// (`<https://…?page=2>; rel="next"`).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, parameters) = link.split_once(';')?;
        let is_next = parameters.split(';').any(|parameter| {
            let parameter = parameter.trim().replace(' ', "");
            parameter.eq_ignore_ascii_case("rel=\"next\"")
                || parameter.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_other_relations() {
        assert_eq!(
            next_link(
                r#"<https://a.example/x?page=1>; rel="prev", <https://a.example/x?page=3>; rel="next""#
            ),
            Some("https://a.example/x?page=3".to_owned())
        );
        assert_eq!(
            next_link(r#"<https://a.example/x?page=2>; rel="prev""#),
            None
        );
        assert_eq!(next_link("garbage"), None);
    }
}
