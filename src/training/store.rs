//! Training data in Redis: assignments, progress, tickets per customer and active
//! customers (key names in `events::keys::training`).
//!
//! Every write is one small script, so what belongs together changes together (an
//! assignment and the index of assigned customers, a ticket and its day's count), a
//! redelivered ticket or completion changes nothing, and memory stays bounded: every
//! write refreshes the customer's keys' expiry to `training.retention_days`, trims
//! entries older than that from the indexes and the customer's tickets, and gives
//! per-day counts and active periods an expiry at their day's or period's end plus the
//! retention.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use time::{Date, OffsetDateTime, Time};

use crate::domain::{CustomerId, TenantId};
use crate::events::keys::{KeySpace, TrainingKeys};
use crate::redis_connection::{AsyncRedis, RedisCallError};

use super::progress::{progress_field, AssignmentRecord, ItemKind, Progress, Step};

/// Keeps the earliest time of a member of an index, among times within the retention,
/// and trims older members; the index then expires with the retention.
const KEEP_EARLIEST: &str = r"
local function keep_earliest(index, member, at, cutoff, ttl)
  local current = redis.call('ZSCORE', index, member)
  if (not current) or tonumber(current) < cutoff or tonumber(current) > at then
    redis.call('ZADD', index, at, member)
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. cutoff)
  redis.call('EXPIRE', index, ttl)
end
local function refresh_customer(ttl)
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
";

/// Stores assignments unless the customer has one of the lesson already; answers with
/// each lesson's creation flag and stored assignment.
const ASSIGN: &str = r"
-- KEYS[1..3] the customer's assignments, progress and tickets, KEYS[4] the assigned index
-- ARGV[1] customer, ARGV[2] assigned at (ms), ARGV[3] cutoff (ms), ARGV[4] ttl (s),
-- then pairs of lesson id and assignment (JSON)
local answer = {}
for i = 5, #ARGV, 2 do
  answer[#answer + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  answer[#answer + 1] = redis.call('HGET', KEYS[1], ARGV[i])
end
refresh_customer(ARGV[4])
keep_earliest(KEYS[4], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
return answer
";

/// Removes an assignment; the customer's first assignment is recomputed from the rest.
const UNASSIGN: &str = r"
-- KEYS[1..3] the customer's keys, KEYS[4] the assigned index
-- ARGV[1] customer, ARGV[2] lesson id
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then
  return 0
end
local earliest = nil
for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
  local ok, record = pcall(cjson.decode, json)
  if ok and type(record) == 'table' then
    local at = tonumber(record['assigned_at_ms'])
    if at and ((not earliest) or at < earliest) then
      earliest = at
    end
  end
end
if earliest then
  redis.call('ZADD', KEYS[4], earliest, ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
";

/// Records the first time a lesson or course was opened or completed; a completion
/// also marks the customer trained. Returns 1 when the time is new (or earlier).
const PROGRESS: &str = r"
-- KEYS[1..3] the customer's keys, KEYS[4] the trained index
-- ARGV[1] field, ARGV[2] at (ms), ARGV[3] customer, ARGV[4] cutoff (ms), ARGV[5] ttl (s),
-- ARGV[6] '1' for a completion
local current = redis.call('HGET', KEYS[2], ARGV[1])
local first = (not current) or tonumber(current) > tonumber(ARGV[2])
if first then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
refresh_customer(ARGV[5])
if ARGV[6] == '1' then
  keep_earliest(KEYS[4], ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4]), ARGV[5])
end
if first then
  return 1
end
return 0
";

/// Records a ticket once (by its source and id) and counts it on its day.
const TICKET: &str = r"
-- KEYS[1..3] the customer's keys, KEYS[4] the day's ticket counts
-- ARGV[1] ticket member, ARGV[2] created at (ms), ARGV[3] customer, ARGV[4] cutoff (ms),
-- ARGV[5] ttl (s), ARGV[6] when the day's counts expire (unix s)
if redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
refresh_customer(ARGV[5])
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
redis.call('EXPIREAT', KEYS[4], ARGV[6])
return 1
";

/// Adds customers to an active period; answers how many were new and how many it holds.
const ACTIVE: &str = r"
-- KEYS[1] the period's set, KEYS[2] the periods index
-- ARGV[1] period member, ARGV[2] end of the period (ms), ARGV[3] when the set expires
-- (unix s), ARGV[4] cutoff (ms), ARGV[5] the index's ttl (s), ARGV[6..] customers
local added = 0
for first = 6, #ARGV, 1000 do
  local last = math.min(first + 999, #ARGV)
  added = added + redis.call('SADD', KEYS[1], unpack(ARGV, first, last))
end
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {added, redis.call('SCARD', KEYS[1])}
";

/// An assignment as `assign` left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAssignment {
    /// False when the customer already had an assignment of the lesson (kept as it was).
    pub created: bool,
    pub record: AssignmentRecord,
}

/// A customer's assignments (oldest first) and progress.
#[derive(Debug, Clone, Default)]
pub struct CustomerTraining {
    pub assignments: Vec<AssignmentRecord>,
    pub progress: Progress,
}

/// What an active-customer upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveUpload {
    /// Customers not listed for the period before.
    pub added: i64,
    /// Customers the period now lists.
    pub customers: i64,
}

struct Scripts {
    assign: redis::Script,
    unassign: redis::Script,
    progress: redis::Script,
    ticket: redis::Script,
    active: redis::Script,
}

/// Reads and writes training data of any tenant.
#[derive(Clone)]
pub struct TrainingStore {
    pub(super) redis: AsyncRedis,
    /// For the suggest path, which waits a few milliseconds at most.
    quick_redis: AsyncRedis,
    pub(super) keys: KeySpace,
    retention_seconds: i64,
    scripts: Arc<Scripts>,
}

impl TrainingStore {
    pub fn new(
        url: &SecretString,
        keys: KeySpace,
        timeout: Duration,
        quick_timeout: Duration,
        retention_seconds: i64,
    ) -> TrainingStore {
        let script = |body: &str| redis::Script::new(&format!("{KEEP_EARLIEST}{body}"));
        TrainingStore {
            redis: AsyncRedis::new(url, timeout, "training"),
            quick_redis: AsyncRedis::new(url, quick_timeout, "completed lessons"),
            keys,
            retention_seconds,
            scripts: Arc::new(Scripts {
                assign: script(ASSIGN),
                unassign: script(UNASSIGN),
                progress: script(PROGRESS),
                ticket: script(TICKET),
                active: script(ACTIVE),
            }),
        }
    }

    pub(super) fn training_keys(&self, tenant: &TenantId) -> TrainingKeys {
        self.keys.tenant(tenant).training()
    }

    /// The oldest time still kept at `now_ms`.
    pub fn cutoff_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.retention_seconds.saturating_mul(1000))
    }

    /// Starts an invocation of `script` on the customer's three keys and `index`.
    fn on_customer<'script>(
        &self,
        script: &'script redis::Script,
        keys: &TrainingKeys,
        customer: &CustomerId,
        index: String,
    ) -> redis::ScriptInvocation<'script> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.customer_assignments(customer.as_str()))
            .key(keys.customer_progress(customer.as_str()))
            .key(keys.customer_tickets(customer.as_str()))
            .key(index);
        invocation
    }

    /// Stores `records` for `customer` at `assigned_at_ms`, except lessons the customer
    /// has an assignment of already (those are answered as stored).
    pub async fn assign(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        records: &[AssignmentRecord],
        assigned_at_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<StoredAssignment>, RedisCallError> {
        let keys = self.training_keys(tenant);
        let mut invocation =
            self.on_customer(&self.scripts.assign, &keys, customer, keys.assigned());
        invocation
            .arg(customer.as_str())
            .arg(assigned_at_ms)
            .arg(self.cutoff_ms(now_ms))
            .arg(self.retention_seconds);
        for record in records {
            let json = serde_json::to_string(record).expect("assignments always serialize");
            invocation.arg(&record.lesson_id).arg(json);
        }
        let answer: Vec<redis::Value> = self.redis.invoke(&invocation).await?;
        let mut stored = Vec::with_capacity(records.len());
        for (pair, asked) in answer.chunks(2).zip(records) {
            let created: i64 = value_of(pair[0].clone())?;
            let json: String = value_of(pair[1].clone())?;
            // An assignment stored by another version and no longer readable is
            // answered as asked rather than failing the call.
            let record = serde_json::from_str(&json).unwrap_or_else(|_| asked.clone());
            stored.push(StoredAssignment {
                created: created == 1,
                record,
            });
        }
        Ok(stored)
    }

    /// Deletes `customer`'s assignment of `lesson_id`; returns whether there was one.
    pub async fn unassign(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        lesson_id: &str,
    ) -> Result<bool, RedisCallError> {
        let keys = self.training_keys(tenant);
        let mut invocation =
            self.on_customer(&self.scripts.unassign, &keys, customer, keys.assigned());
        invocation.arg(customer.as_str()).arg(lesson_id);
        let removed: i64 = self.redis.invoke(&invocation).await?;
        Ok(removed == 1)
    }

    /// Records that `customer` took `step` on a lesson or course at `at_ms` (a time
    /// ahead of `now_ms` counts as now); only the first time counts. Returns whether
    /// this was the first time. A completion older than the retention is kept for the
    /// lesson but leaves the customer untrained, as if forgotten.
    pub async fn record_progress(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        (step, kind, content_id): (Step, ItemKind, &str),
        at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, RedisCallError> {
        let keys = self.training_keys(tenant);
        let mut invocation =
            self.on_customer(&self.scripts.progress, &keys, customer, keys.trained());
        let is_completion = if step == Step::Completed { "1" } else { "0" };
        invocation
            .arg(progress_field(step, kind, content_id))
            .arg(at_ms.min(now_ms))
            .arg(customer.as_str())
            .arg(self.cutoff_ms(now_ms))
            .arg(self.retention_seconds)
            .arg(is_completion);
        let first: i64 = self.redis.invoke(&invocation).await?;
        Ok(first == 1)
    }

    /// Records a ticket of `customer` created at `created_at_ms`, once per `ticket_key`
    /// (source and ticket id). Returns false for a ticket counted before, or one older
    /// than the retention (which would not be kept).
    pub async fn record_ticket(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        ticket_key: &str,
        created_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, RedisCallError> {
        let cutoff_ms = self.cutoff_ms(now_ms);
        if created_at_ms < cutoff_ms {
            return Ok(false);
        }
        let Some(created_at) = date_time_of_ms(created_at_ms) else {
            return Ok(false);
        };
        let keys = self.training_keys(tenant);
        let day = created_at.date();
        let mut invocation = self.on_customer(
            &self.scripts.ticket,
            &keys,
            customer,
            keys.tickets_of_day(day),
        );
        invocation
            .arg(ticket_key)
            .arg(created_at_ms)
            .arg(customer.as_str())
            .arg(cutoff_ms)
            .arg(self.retention_seconds)
            .arg(end_of_day_seconds(day).saturating_add(self.retention_seconds));
        let counted: i64 = self.redis.invoke(&invocation).await?;
        Ok(counted == 1)
    }

    /// Adds `customers` to those active from `from` to `to` (inclusive UTC days).
    pub async fn add_active(
        &self,
        tenant: &TenantId,
        (from, to): (Date, Date),
        customers: &[CustomerId],
        now_ms: i64,
    ) -> Result<ActiveUpload, RedisCallError> {
        let keys = self.training_keys(tenant);
        let member = TrainingKeys::period_member(from, to);
        let expires_at = end_of_day_seconds(to).saturating_add(self.retention_seconds);
        let index_ttl = expires_at
            .saturating_sub(now_ms / 1000)
            .max(self.retention_seconds);
        let mut invocation = self.scripts.active.prepare_invoke();
        invocation
            .key(keys.active(&member))
            .key(keys.active_periods())
            .arg(&member)
            .arg(end_of_day_seconds(to).saturating_mul(1000))
            .arg(expires_at)
            .arg(self.cutoff_ms(now_ms))
            .arg(index_ttl);
        for customer in customers {
            invocation.arg(customer.as_str());
        }
        let (added, total): (i64, i64) = self.redis.invoke(&invocation).await?;
        Ok(ActiveUpload {
            added,
            customers: total,
        })
    }

    /// `customer`'s assignments (oldest first) and progress.
    pub async fn customer(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<CustomerTraining, RedisCallError> {
        let keys = self.training_keys(tenant);
        let mut pipeline = redis::pipe();
        pipeline
            .hgetall(keys.customer_assignments(customer.as_str()))
            .hgetall(keys.customer_progress(customer.as_str()));
        let (assignments, progress): (HashMap<String, String>, HashMap<String, i64>) =
            self.redis.query(&pipeline).await?;
        Ok(CustomerTraining {
            assignments: readable_assignments(assignments.values()),
            progress: Progress::from_hash(&progress),
        })
    }

    /// The progress of `customer`, read under the short deadline of the suggest path.
    pub async fn quick_progress(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Progress, RedisCallError> {
        let keys = self.training_keys(tenant);
        let mut pipeline = redis::pipe();
        pipeline.hgetall(keys.customer_progress(customer.as_str()));
        let (progress,): (HashMap<String, i64>,) = self.quick_redis.query(&pipeline).await?;
        Ok(Progress::from_hash(&progress))
    }
}

/// Converts one answer of a pipeline or script.
pub(super) fn value_of<T: redis::FromRedisValue>(value: redis::Value) -> Result<T, RedisCallError> {
    redis::from_redis_value(value).map_err(|error| RedisCallError::Redis(error.into()))
}

/// Parses stored assignments, oldest first; unreadable ones are skipped with a warning.
pub(super) fn readable_assignments<'json>(
    stored: impl Iterator<Item = &'json String>,
) -> Vec<AssignmentRecord> {
    let mut assignments: Vec<AssignmentRecord> = Vec::new();
    for json in stored {
        match serde_json::from_str(json) {
            Ok(record) => assignments.push(record),
            Err(error) => tracing::warn!(error = %error, "an assignment in redis cannot be read"),
        }
    }
    assignments.sort_by(|left, right| {
        (left.assigned_at_ms, &left.lesson_id).cmp(&(right.assigned_at_ms, &right.lesson_id))
    });
    assignments
}

/// The time of `at_ms` (UTC), if representable.
pub fn date_time_of_ms(at_ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).ok()
}

/// The first second after `day` (UTC), as Unix seconds.
pub fn end_of_day_seconds(day: Date) -> i64 {
    day.with_time(Time::MIDNIGHT)
        .assume_utc()
        .unix_timestamp()
        .saturating_add(24 * 3600)
}
