//! The outbox in Redis: a sorted set of job ids by the time they are due, and one hash
//! per job (see `events::keys` for the names). Every change is one small script, so two
//! instances never claim the same job and a finished job never comes back.

use std::time::Duration;

use secrecy::SecretString;

use crate::events::keys::{KeySpace, OutboxKeys};
use crate::redis_connection::{AsyncRedis, RedisCallError};

use super::OutboxJob;

/// Adds a job unless one of its id exists (pending, done or failed). Returns 1 if added.
const ENQUEUE: &str = r"
-- KEYS[1] the job's hash, KEYS[2] the due set
-- ARGV[1] the job (JSON), ARGV[2] due (ms), ARGV[3] TTL (s), ARGV[4] the job id
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'attempts', 0, 'state', 'pending')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
return 1
";

/// Claims a due job: pushes its due time to the end of a lease and counts the attempt.
/// Returns the job and its attempt number, or nil when it is not due (another worker
/// claimed it) or no longer pending.
const CLAIM: &str = r"
-- KEYS[1] the due set, KEYS[2] the job's hash
-- ARGV[1] the job id, ARGV[2] now (ms), ARGV[3] end of the lease (ms)
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then
  return false
end
local job = redis.call('HMGET', KEYS[2], 'job', 'state')
if not job[1] or job[2] ~= 'pending' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local attempts = redis.call('HINCRBY', KEYS[2], 'attempts', 1)
return {job[1], attempts}
";

/// Ends a job (`done` or `failed`) or schedules its next attempt (`pending` with a due
/// time), keeping the last error for operators.
const SETTLE: &str = r"
-- KEYS[1] the due set, KEYS[2] the job's hash
-- ARGV[1] the job id, ARGV[2] the state, ARGV[3] the last error, ARGV[4] next due (ms)
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'last_error', ARGV[3])
if ARGV[2] == 'pending' then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
";

/// A claimed job.
#[derive(Debug)]
pub struct ClaimedJob {
    pub id: String,
    pub job: OutboxJob,
    /// 1 for the first attempt.
    pub attempt: u32,
}

#[derive(Clone)]
pub struct OutboxStore {
    redis: AsyncRedis,
    keys: OutboxKeys,
    job_ttl_seconds: u64,
    enqueue: std::sync::Arc<redis::Script>,
    claim: std::sync::Arc<redis::Script>,
    settle: std::sync::Arc<redis::Script>,
}

impl OutboxStore {
    pub fn new(
        url: &SecretString,
        keys: &KeySpace,
        timeout: Duration,
        job_ttl_seconds: u64,
    ) -> OutboxStore {
        OutboxStore {
            redis: AsyncRedis::new(url, timeout, "outbox"),
            keys: keys.outbox(),
            job_ttl_seconds,
            enqueue: std::sync::Arc::new(redis::Script::new(ENQUEUE)),
            claim: std::sync::Arc::new(redis::Script::new(CLAIM)),
            settle: std::sync::Arc::new(redis::Script::new(SETTLE)),
        }
    }

    /// Queues `job`, due now. Returns false when a job of its id exists already.
    pub async fn enqueue(&self, job: &OutboxJob, now_ms: i64) -> Result<bool, RedisCallError> {
        let id = job.id();
        let json = serde_json::to_string(job).expect("jobs always serialize");
        let mut invocation = self.enqueue.prepare_invoke();
        invocation
            .key(self.keys.job(&id))
            .key(self.keys.due())
            .arg(json)
            .arg(now_ms)
            .arg(self.job_ttl_seconds)
            .arg(&id);
        let added: i64 = self.redis.invoke(&invocation).await?;
        Ok(added == 1)
    }

    /// Returns the ids of up to `limit` jobs due at `now_ms`.
    pub async fn due_ids(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, RedisCallError> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("ZRANGEBYSCORE")
            .arg(self.keys.due())
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        let (ids,): (Vec<String>,) = self.redis.query(&pipeline).await?;
        Ok(ids)
    }

    /// Claims job `id` until `lease_until_ms`, if it is due and pending.
    pub async fn claim(
        &self,
        id: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<ClaimedJob>, RedisCallError> {
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(self.keys.due())
            .key(self.keys.job(id))
            .arg(id)
            .arg(now_ms)
            .arg(lease_until_ms);
        let claimed: Option<(String, u32)> = self.redis.invoke(&invocation).await?;
        let Some((json, attempt)) = claimed else {
            return Ok(None);
        };
        match serde_json::from_str(&json) {
            Ok(job) => Ok(Some(ClaimedJob {
                id: id.to_owned(),
                job,
                attempt,
            })),
            Err(error) => {
                tracing::error!(job_id = id, error = %error, "an outbox job cannot be read; dropping it");
                self.settle(id, "failed", "unreadable job", 0).await?;
                Ok(None)
            }
        }
    }

    /// Marks job `id` done.
    pub async fn complete(&self, id: &str) -> Result<(), RedisCallError> {
        self.settle(id, "done", "", 0).await
    }

    /// Schedules the next attempt of job `id` at `due_ms`.
    pub async fn retry_at(&self, id: &str, due_ms: i64, error: &str) -> Result<(), RedisCallError> {
        self.settle(id, "pending", error, due_ms).await
    }

    /// Gives job `id` up.
    pub async fn give_up(&self, id: &str, error: &str) -> Result<(), RedisCallError> {
        self.settle(id, "failed", error, 0).await
    }

    async fn settle(
        &self,
        id: &str,
        state: &str,
        error: &str,
        due_ms: i64,
    ) -> Result<(), RedisCallError> {
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(self.keys.due())
            .key(self.keys.job(id))
            .arg(id)
            .arg(state)
            .arg(error)
            .arg(due_ms);
        let _: i64 = self.redis.invoke(&invocation).await?;
        Ok(())
    }
}
