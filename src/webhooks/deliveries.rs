//! Which webhook deliveries were processed: a marker per delivery in Redis, set when
//! processing starts (`SET NX`, so of concurrent redeliveries exactly one proceeds) and
//! removed again if processing fails, so the sender's retry is processed then.

use std::time::Duration;

use secrecy::SecretString;

use crate::domain::TenantId;
use crate::events::keys::KeySpace;
use crate::redis_connection::{AsyncRedis, RedisCallError};

use super::Provider;

#[derive(Clone)]
pub struct DeliveryLog {
    redis: AsyncRedis,
    keys: KeySpace,
    ttl_seconds: u64,
}

impl DeliveryLog {
    pub fn new(
        url: &SecretString,
        keys: KeySpace,
        timeout: Duration,
        ttl_seconds: u64,
    ) -> DeliveryLog {
        DeliveryLog {
            redis: AsyncRedis::new(url, timeout, "webhook deliveries"),
            keys,
            ttl_seconds,
        }
    }

    /// Marks a delivery as being processed. Returns false when it already was.
    pub async fn claim(
        &self,
        tenant: &TenantId,
        provider: Provider,
        delivery_key: &str,
    ) -> Result<bool, RedisCallError> {
        let key = self
            .keys
            .tenant(tenant)
            .webhook_delivery(provider.as_str(), delivery_key);
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl_seconds);
        let (outcome,): (Option<String>,) = self.redis.query(&pipeline).await?;
        Ok(outcome.is_some())
    }

    /// Runs `work` for a delivery not processed before: the delivery is claimed first
    /// (so of concurrent redeliveries exactly one runs it) and forgotten again when
    /// `work` fails, so that the sender's retry runs it. Returns `None` for a duplicate.
    pub async fn process_once<T, E, F>(
        &self,
        tenant: &TenantId,
        provider: Provider,
        delivery_key: &str,
        work: F,
    ) -> Result<Option<T>, E>
    where
        E: From<RedisCallError>,
        F: std::future::Future<Output = Result<T, E>>,
    {
        if !self.claim(tenant, provider, delivery_key).await? {
            return Ok(None);
        }
        let processed = work.await;
        if processed.is_err() {
            if let Err(error) = self.release(tenant, provider, delivery_key).await {
                tracing::warn!(error = %error, "failed to forget a delivery whose processing failed; its retry will be taken for a duplicate");
            }
        }
        processed.map(Some)
    }

    /// Forgets a delivery whose processing failed, so that its retry is processed.
    pub async fn release(
        &self,
        tenant: &TenantId,
        provider: Provider,
        delivery_key: &str,
    ) -> Result<(), RedisCallError> {
        let key = self
            .keys
            .tenant(tenant)
            .webhook_delivery(provider.as_str(), delivery_key);
        let mut pipeline = redis::pipe();
        pipeline.del(key).ignore();
        let () = self.redis.query(&pipeline).await?;
        Ok(())
    }
}
