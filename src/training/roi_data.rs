//! Reads what the ROI report is computed from, in three round trips: the indexes and
//! the range's daily ticket counts; the active customers and the assigned customers'
//! assignments and progress; then their tickets in the windows the report compares.

use std::collections::{HashMap, HashSet};

use crate::domain::TenantId;
use crate::events::keys::TrainingKeys;
use crate::events::stats::DayRange;
use crate::redis_connection::RedisCallError;

use super::progress::Progress;
use super::roi::{plan_windows, AssignedCustomer, ContactData, WindowCounts};
use super::store::{end_of_day_seconds, readable_assignments, value_of, TrainingStore};

/// The customers, tickets and windows of a report.
#[derive(Debug, Clone, Default)]
pub struct RoiData {
    pub contact: ContactData,
    pub windows: Vec<WindowCounts>,
}

impl TrainingStore {
    /// Reads the data of a report over `range` with windows of `window_days`, at `now_ms`.
    pub async fn roi_data(
        &self,
        tenant: &TenantId,
        range: DayRange,
        window_days: u32,
        now_ms: i64,
    ) -> Result<RoiData, RedisCallError> {
        let keys = self.training_keys(tenant);
        let from_ms = (end_of_day_seconds(range.from) - 24 * 3600) * 1000;
        let to_end_ms = end_of_day_seconds(range.to) * 1000 - 1;
        let days = range.days();

        let mut pipeline = redis::pipe();
        pipeline
            // A period's score is the first millisecond after it: those ending before
            // `from` score `from_ms` at most.
            .zrangebyscore(keys.active_periods(), format!("({from_ms}"), "+inf")
            .zrangebyscore(keys.trained(), "-inf", to_end_ms)
            .zrangebyscore(keys.assigned(), from_ms, to_end_ms);
        for day in &days {
            pipeline.hgetall(keys.tickets_of_day(*day));
        }
        let answers: Vec<redis::Value> = self.redis.query(&pipeline).await?;
        let mut answers = answers.into_iter();
        let periods: Vec<String> = next_value(&mut answers)?;
        let trained: Vec<String> = next_value(&mut answers)?;
        let assigned: Vec<String> = next_value(&mut answers)?;
        let mut tickets: HashMap<String, i64> = HashMap::new();
        for _ in &days {
            let day_tickets: HashMap<String, i64> = next_value(&mut answers)?;
            for (customer, count) in day_tickets {
                *tickets.entry(customer).or_insert(0) += count;
            }
        }

        let to_text = crate::events::keys::format_date(range.to);
        let active_keys: Vec<String> = periods
            .iter()
            // Periods ending on or after `from` (the index's score) and starting by `to`.
            .filter(|member| {
                member
                    .split(':')
                    .next()
                    .is_some_and(|start| start <= to_text.as_str())
            })
            .map(|member| keys.active(member))
            .collect();
        let (active, assigned_customers) = self
            .active_and_assigned(&keys, &active_keys, &assigned)
            .await?;
        let windows = self
            .window_counts(&keys, &assigned_customers, window_days, now_ms)
            .await?;
        Ok(RoiData {
            contact: ContactData {
                active,
                trained: trained.into_iter().collect(),
                tickets,
            },
            windows,
        })
    }

    /// The union of the active periods, and each assigned customer's first assignment
    /// and first completion.
    async fn active_and_assigned(
        &self,
        keys: &TrainingKeys,
        active_keys: &[String],
        assigned: &[String],
    ) -> Result<(HashSet<String>, Vec<(String, AssignedCustomer)>), RedisCallError> {
        let mut pipeline = redis::pipe();
        if !active_keys.is_empty() {
            pipeline.sunion(active_keys);
        }
        for customer in assigned {
            pipeline
                .hgetall(keys.customer_assignments(customer))
                .hgetall(keys.customer_progress(customer));
        }
        if active_keys.is_empty() && assigned.is_empty() {
            return Ok((HashSet::new(), Vec::new()));
        }
        let answers: Vec<redis::Value> = self.redis.query(&pipeline).await?;
        let mut answers = answers.into_iter();
        let active: HashSet<String> = if active_keys.is_empty() {
            HashSet::new()
        } else {
            next_value(&mut answers)?
        };
        let mut customers = Vec::with_capacity(assigned.len());
        for customer in assigned {
            let stored: HashMap<String, String> = next_value(&mut answers)?;
            let progress: HashMap<String, i64> = next_value(&mut answers)?;
            let progress = Progress::from_hash(&progress);
            let records = readable_assignments(stored.values());
            let Some(assigned_at_ms) = records.iter().map(|record| record.assigned_at_ms).min()
            else {
                continue;
            };
            let completed_at_ms = records
                .iter()
                .filter_map(|record| progress.state_of(record).completed_at_ms)
                .min();
            customers.push((
                customer.clone(),
                AssignedCustomer {
                    assigned_at_ms,
                    completed_at_ms,
                },
            ));
        }
        Ok((active, customers))
    }

    /// Counts each assigned customer's tickets in the windows the report compares.
    async fn window_counts(
        &self,
        keys: &TrainingKeys,
        customers: &[(String, AssignedCustomer)],
        window_days: u32,
        now_ms: i64,
    ) -> Result<Vec<WindowCounts>, RedisCallError> {
        if customers.is_empty() {
            return Ok(Vec::new());
        }
        let window_ms = i64::from(window_days) * 24 * 3600 * 1000;
        let plans: Vec<_> = customers
            .iter()
            .map(|(customer, assigned)| (customer, plan_windows(*assigned, window_ms, now_ms)))
            .collect();
        let mut pipeline = redis::pipe();
        for (customer, plan) in &plans {
            let tickets = keys.customer_tickets(customer);
            let (before_start, before_end) = plan.before;
            let (after_start, after_end) = plan.after;
            pipeline
                .zcount(&tickets, before_start, format!("({before_end}"))
                .zcount(&tickets, format!("({after_start}"), after_end);
        }
        let counts: Vec<i64> = self.redis.query(&pipeline).await?;
        Ok(plans
            .iter()
            .zip(counts.chunks(2))
            .map(|((_, plan), pair)| WindowCounts {
                cohort: plan.cohort,
                before: pair[0],
                after: pair[1],
            })
            .collect())
    }
}

fn next_value<T: redis::FromRedisValue>(
    answers: &mut impl Iterator<Item = redis::Value>,
) -> Result<T, RedisCallError> {
    value_of(answers.next().unwrap_or(redis::Value::Nil))
}
