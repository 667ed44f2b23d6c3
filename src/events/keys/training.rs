//! The key names of ticket-to-training and the ROI report, under a tenant's base (so
//! under its hash tag), all starting `training:`:
//!
//! | key | type | what | kept |
//! |---|---|---|---|
//! | `training:customer:<customer>:assignments` | hash | lesson id → the assignment (JSON) | `training.retention_days` after the customer's last change |
//! | `training:customer:<customer>:progress` | hash | `opened:<lesson\|course>:<id>`, `completed:<lesson\|course>:<id>` → first time (ms) | as above |
//! | `training:customer:<customer>:tickets` | sorted set | `<source>:<ticket id>` by creation time (ms) | as above; older tickets trimmed |
//! | `training:assigned` | sorted set | customer → first assignment (ms) | trimmed to the retention on every write, and expires with it |
//! | `training:trained` | sorted set | customer → first completion (ms) | as above |
//! | `training:tickets:<date>` | hash | customer → tickets created that UTC day | until the day is `training.retention_days` old |
//! | `training:active:<from>:<to>` | set | customers active in that period | until its end is `training.retention_days` old |
//! | `training:active_periods` | sorted set | `<from>:<to>` by the end of the period (ms) | trimmed like `training:assigned` |

use time::Date;

use super::{format_date, TenantKeys};

/// Key names of one tenant's training data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingKeys {
    base: String,
}

impl TenantKeys {
    /// The keys of ticket-to-training and the ROI report.
    pub fn training(&self) -> TrainingKeys {
        TrainingKeys {
            base: format!("{}training:", self.base),
        }
    }
}

impl TrainingKeys {
    pub fn customer_assignments(&self, customer: &str) -> String {
        format!("{}customer:{customer}:assignments", self.base)
    }

    pub fn customer_progress(&self, customer: &str) -> String {
        format!("{}customer:{customer}:progress", self.base)
    }

    pub fn customer_tickets(&self, customer: &str) -> String {
        format!("{}customer:{customer}:tickets", self.base)
    }

    pub fn assigned(&self) -> String {
        format!("{}assigned", self.base)
    }

    pub fn trained(&self) -> String {
        format!("{}trained", self.base)
    }

    pub fn tickets_of_day(&self, date: Date) -> String {
        format!("{}tickets:{}", self.base, format_date(date))
    }

    /// The member of [`TrainingKeys::active_periods`] naming a period.
    pub fn period_member(from: Date, to: Date) -> String {
        format!("{}:{}", format_date(from), format_date(to))
    }

    pub fn active(&self, period_member: &str) -> String {
        format!("{}active:{period_member}", self.base)
    }

    pub fn active_periods(&self) -> String {
        format!("{}active_periods", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::super::KeySpace;
    use crate::domain::TenantId;
    use time::Month;

    #[test]
    fn every_training_key_carries_the_tenant_hash_tag_first_whatever_the_customer_id() {
        let keys = KeySpace::new("deflect:")
            .unwrap()
            .tenant(&TenantId::parse("acme").unwrap())
            .training();
        let day = time::Date::from_calendar_date(2026, Month::March, 4).unwrap();
        let period = super::TrainingKeys::period_member(day, day);
        let customer = "{evil}:x@example.com";
        let all = [
            keys.customer_assignments(customer),
            keys.customer_progress(customer),
            keys.customer_tickets(customer),
            keys.assigned(),
            keys.trained(),
            keys.tickets_of_day(day),
            keys.active(&period),
            keys.active_periods(),
        ];
        for key in all {
            assert!(key.starts_with("deflect:{t:acme}:training:"), "{key}");
        }
        assert_eq!(
            keys.tickets_of_day(day),
            "deflect:{t:acme}:training:tickets:2026-03-04"
        );
        assert_eq!(
            keys.active(&period),
            "deflect:{t:acme}:training:active:2026-03-04:2026-03-04"
        );
    }
}
