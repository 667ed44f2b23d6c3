//! Tells whether Redis answers, for `/readyz`. Suggestions never need Redis, so this is
//! a report, not a dependency: a failed probe does not make the service unready.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Pings Redis with a fresh connection under one deadline.
#[derive(Clone)]
pub struct RedisProbe {
    client: Option<redis::Client>,
    timeout: Duration,
}

impl RedisProbe {
    pub fn new(url: &SecretString, timeout: Duration) -> RedisProbe {
        let client = match redis::Client::open(url.expose_secret()) {
            Ok(client) => Some(client),
            Err(error) => {
                tracing::warn!(kind = ?error.kind(), "invalid redis url in settings");
                None
            }
        };
        RedisProbe { client, timeout }
    }

    /// Returns whether Redis answered PING within the timeout.
    pub async fn is_reachable(&self) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let ping = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }
}
