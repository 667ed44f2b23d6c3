//! Logging: a tracing subscriber writing JSON (production) or readable lines (local).
//! Every request runs in a span carrying its `request_id` (see `startup.rs`), so every
//! line logged while serving it carries the id too.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::configuration::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `filter`. Calling it
/// again (as tests do) keeps the first subscriber.
pub fn init_telemetry(format: LogFormat, filter: &str) {
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let registry = tracing_subscriber::registry().with(env_filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
}

/// Runs CPU-bound `work` on tokio's blocking pool inside the caller's span, so its log
/// lines keep the request id.
pub async fn spawn_blocking_in_span<T, F>(work: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work)).await
}

/// Runs `work` as a task of its own inside the caller's span and waits for it. A request
/// handler uses it for work that must not stop halfway when the client goes away: the
/// handler's future is dropped on a disconnect, the task runs on to its end.
pub async fn spawn_in_span<T, F>(work: F) -> Result<T, tokio::task::JoinError>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    use tracing::Instrument;

    tokio::spawn(work.instrument(tracing::Span::current())).await
}
