//! The async Redis connection of request handlers and background tasks: lazily
//! connecting, reconnecting by itself, and every call under one deadline, so a slow or
//! stopped Redis answers with an error, never a hang.
//!
//! (The event writer has a blocking connection of its own on its own thread.)

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum RedisCallError {
    #[error("redis is not configured with a valid url")]
    NotConfigured,
    #[error("redis did not answer in time")]
    Timeout,
    #[error("redis failed")]
    Redis(#[from] redis::RedisError),
}

impl RedisCallError {
    /// Returns whether the call certainly did not run in Redis: it was never sent (no
    /// usable URL, the connection was refused or not allowed) or Redis answered it with
    /// an error. A timeout or a connection lost during the call leaves that unknown: the
    /// command may have run without its answer arriving.
    pub fn certainly_did_not_run(&self) -> bool {
        match self {
            RedisCallError::NotConfigured => true,
            RedisCallError::Timeout => false,
            RedisCallError::Redis(error) => {
                error.is_connection_refusal()
                    || matches!(
                        error.kind(),
                        redis::ErrorKind::Server(_)
                            | redis::ErrorKind::Extension
                            | redis::ErrorKind::AuthenticationFailed
                            | redis::ErrorKind::InvalidClientConfig
                    )
            }
        }
    }

    /// Returns the error code Redis answered with (`SEEDING` for `-SEEDING …`), if it did.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            RedisCallError::Redis(error) => error.code(),
            _ => None,
        }
    }
}

/// A cheap-to-clone handle on one multiplexed connection.
#[derive(Clone)]
pub struct AsyncRedis {
    connection: Option<ConnectionManager>,
    timeout: Duration,
}

impl AsyncRedis {
    /// `purpose` names the user in the warning logged when the URL is unusable.
    pub fn new(url: &SecretString, timeout: Duration, purpose: &str) -> AsyncRedis {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = redis::Client::open(url.expose_secret())
            .and_then(|client| client.get_connection_manager_lazy(config))
            .map_err(|error| tracing::warn!(kind = ?error.kind(), purpose, "cannot use redis"))
            .ok();
        AsyncRedis {
            connection,
            timeout,
        }
    }

    /// Runs `call` on the connection under the deadline.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisCallError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self
            .connection
            .clone()
            .ok_or(RedisCallError::NotConfigured)?;
        match tokio::time::timeout(self.timeout, call(connection)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisCallError::Timeout),
        }
    }

    /// Sends `pipeline` and reads its answers.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, RedisCallError> {
        self.run(|mut connection| async move { pipeline.query_async(&mut connection).await })
            .await
    }

    /// Runs a script (loading it first when Redis does not know it).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisCallError> {
        self.run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
    }
}
