//! The ROI report as pure arithmetic over what Redis holds (read in `roi_data`):
//!
//! - contact rate = tickets created in the range / active customers, for customers
//!   trained (a first completion by the end of the range) and untrained;
//! - implicit deflections = (untrained rate − trained rate) × trained customers;
//! - explicit deflections from the event counters; savings = deflections × cost;
//! - effectiveness: for customers assigned training in the range, tickets in the N days
//!   before their first assignment against the N days after their first completed
//!   assignment, and against customers assigned but not completed (N days after the
//!   assignment); customers whose N days have not passed yet are left out as pending;
//! - the holdout's causal figure beside the correlational ones, where sessions were held
//!   out.
//!
//! Figures come with the counts behind them and notes saying when they mean little.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::events::stats::HoldoutComparison;

/// Tickets and training of the customers over the report's range.
#[derive(Debug, Clone, Default)]
pub struct ContactData {
    /// Customers listed active in a period overlapping the range.
    pub active: HashSet<String>,
    /// Customers whose first completion was at or before the end of the range.
    pub trained: HashSet<String>,
    /// Tickets created in the range, per customer.
    pub tickets: HashMap<String, i64>,
}

/// A customer assigned training in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignedCustomer {
    /// Their first assignment.
    pub assigned_at_ms: i64,
    /// When an assignment of theirs was first completed.
    pub completed_at_ms: Option<i64>,
}

/// Which effectiveness cohort a customer falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cohort {
    Completed,
    NotCompleted,
    /// Their N days after completion (or after assignment, not completed) have not
    /// passed yet.
    Pending,
}

/// The two windows whose tickets are compared, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    pub cohort: Cohort,
    /// `[start, end)`: the N days up to the first assignment.
    pub before: (i64, i64),
    /// `(start, end]`: the N days from the completion (or the assignment).
    pub after: (i64, i64),
}

/// Plans the windows of `customer` at `now_ms` with windows of `window_ms`.
pub fn plan_windows(customer: AssignedCustomer, window_ms: i64, now_ms: i64) -> WindowPlan {
    let assigned = customer.assigned_at_ms;
    // A lesson completed before it was assigned counts from the assignment.
    let (cohort, after_start) = match customer.completed_at_ms {
        Some(completed) => (Cohort::Completed, completed.max(assigned)),
        None => (Cohort::NotCompleted, assigned),
    };
    let after_end = after_start.saturating_add(window_ms);
    WindowPlan {
        cohort: if after_end > now_ms {
            Cohort::Pending
        } else {
            cohort
        },
        before: (assigned.saturating_sub(window_ms), assigned),
        after: (after_start, after_end),
    }
}

/// Tickets in the windows of one planned customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCounts {
    pub cohort: Cohort,
    pub before: i64,
    pub after: i64,
}

/// Everything the report is computed from.
#[derive(Debug, Clone, Default)]
pub struct RoiInputs {
    pub from: String,
    pub to: String,
    pub cost_per_ticket: f64,
    pub contact: ContactData,
    pub windows: Vec<WindowCounts>,
    pub window_days: u32,
    /// Net explicit deflections of the range (event counters).
    pub explicit_deflections: i64,
    pub holdout: Option<HoldoutComparison>,
    pub min_cohort_customers: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiReport {
    pub from: String,
    pub to: String,
    pub cost_per_ticket: f64,
    /// Customers listed active in a period overlapping the range.
    pub active_customers: i64,
    pub contact_rate: ContactRates,
    /// Tickets in the range of customers not listed active: in neither rate.
    pub tickets_of_unlisted_customers: i64,
    /// (untrained rate − trained rate) × trained customers.
    pub implicit_deflections: f64,
    /// Sessions deflected by suggested lessons (event counters, net).
    pub explicit_deflections: i64,
    pub savings: Savings,
    pub effectiveness: Effectiveness,
    /// The holdout's causal figure, where sessions were held out in the range.
    pub holdout: Option<CausalFigure>,
    /// False when a note says a cohort is too small or data is missing.
    pub reliable: bool,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRate {
    pub customers: i64,
    pub tickets: i64,
    /// Tickets per customer.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRates {
    pub trained: CohortRate,
    pub untrained: CohortRate,
    /// Untrained rate − trained rate.
    pub difference: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    pub implicit: f64,
    pub explicit: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowCohort {
    pub customers: i64,
    pub tickets_before: i64,
    pub tickets_after: i64,
    pub before_per_customer: f64,
    pub after_per_customer: f64,
    /// After − before, per customer.
    pub change_per_customer: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effectiveness {
    pub window_days: u32,
    pub completed: WindowCohort,
    pub not_completed: WindowCohort,
    /// The completed cohort's change per customer minus the not completed one's: what
    /// completing the training changed beyond what time alone did.
    pub difference_per_customer: f64,
    /// Customers assigned in the range whose windows have not ended yet.
    pub pending_customers: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CausalFigure {
    #[serde(flatten)]
    pub comparison: HoldoutComparison,
    /// Holdout submission rate − treated rate, times treated sessions: tickets the
    /// suggestions prevented, measured against sessions that got none (causal).
    pub causal_deflections: f64,
    /// The attributed deflections of the same range, beside it (correlational).
    pub explicit_deflections: i64,
    pub causal_savings: f64,
}

/// Computes the report.
pub fn roi_report(inputs: &RoiInputs) -> RoiReport {
    let min_cohort = i64::from(inputs.min_cohort_customers);
    let cost = inputs.cost_per_ticket;
    let mut notes: Vec<String> = Vec::new();
    let mut reliable = true;

    let contact = &inputs.contact;
    let mut trained = CohortTally::default();
    let mut untrained = CohortTally::default();
    for customer in &contact.active {
        let tickets = contact.tickets.get(customer).copied().unwrap_or(0);
        if contact.trained.contains(customer) {
            trained.add(tickets);
        } else {
            untrained.add(tickets);
        }
    }
    let unlisted_tickets: i64 = contact
        .tickets
        .iter()
        .filter(|(customer, _)| !contact.active.contains(*customer))
        .map(|(_, tickets)| *tickets)
        .sum();
    let difference = untrained.rate() - trained.rate();
    let implicit = difference * trained.customers as f64;
    if contact.active.is_empty() {
        reliable = false;
        notes.push(
            "no active customers are listed for this range (POST /v1/customers/active), so \
             there are no contact rates and no implicit deflections"
                .to_owned(),
        );
    } else if trained.customers < min_cohort || untrained.customers < min_cohort {
        reliable = false;
        notes.push(format!(
            "the trained ({}) or untrained ({}) cohort has fewer than {min_cohort} customers: \
             the contact rates and implicit deflections are too small a sample to mean much",
            trained.customers, untrained.customers
        ));
    }
    if implicit < 0.0 {
        notes.push(
            "trained customers filed more tickets per customer than untrained ones: the \
             implicit deflections are negative"
                .to_owned(),
        );
    }

    let effectiveness = effectiveness(&inputs.windows, inputs.window_days);
    let cohort_sizes = [
        effectiveness.completed.customers,
        effectiveness.not_completed.customers,
    ];
    if cohort_sizes.iter().any(|customers| *customers < min_cohort) {
        reliable = false;
        notes.push(format!(
            "the effectiveness cohorts (completed {}, not completed {}) are below \
             {min_cohort} customers: their ticket changes are too small a sample to mean much",
            cohort_sizes[0], cohort_sizes[1]
        ));
    }
    if effectiveness.pending_customers > 0 {
        notes.push(format!(
            "customers assigned in this range whose {} days after completion (or after \
             assignment) have not passed yet are left out of the effectiveness figures: {}",
            inputs.window_days, effectiveness.pending_customers
        ));
    }

    let holdout = match &inputs.holdout {
        Some(comparison) if comparison.holdout_sessions > 0 => {
            let causal = comparison.difference * comparison.treated_sessions as f64;
            Some(CausalFigure {
                comparison: comparison.clone(),
                causal_deflections: round(causal, 2),
                explicit_deflections: inputs.explicit_deflections,
                causal_savings: round(causal * cost, 2),
            })
        }
        _ => {
            notes.push(
                "no sessions were held out in this range (events.holdout_percent is 0, or \
                 none came): there is no causal figure beside the correlational ones"
                    .to_owned(),
            );
            None
        }
    };

    let implicit_savings = implicit * cost;
    let explicit_savings = inputs.explicit_deflections as f64 * cost;
    RoiReport {
        from: inputs.from.clone(),
        to: inputs.to.clone(),
        cost_per_ticket: cost,
        active_customers: contact.active.len() as i64,
        contact_rate: ContactRates {
            trained: trained.into_rate(),
            untrained: untrained.into_rate(),
            difference: round(difference, 4),
        },
        tickets_of_unlisted_customers: unlisted_tickets,
        implicit_deflections: round(implicit, 2),
        explicit_deflections: inputs.explicit_deflections,
        savings: Savings {
            implicit: round(implicit_savings, 2),
            explicit: round(explicit_savings, 2),
            total: round(implicit_savings + explicit_savings, 2),
        },
        effectiveness,
        holdout,
        reliable,
        notes,
    }
}

fn effectiveness(windows: &[WindowCounts], window_days: u32) -> Effectiveness {
    let mut completed = WindowTally::default();
    let mut not_completed = WindowTally::default();
    let mut pending = 0;
    for counts in windows {
        match counts.cohort {
            Cohort::Completed => completed.add(counts),
            Cohort::NotCompleted => not_completed.add(counts),
            Cohort::Pending => pending += 1,
        }
    }
    Effectiveness {
        window_days,
        difference_per_customer: round(completed.change() - not_completed.change(), 4),
        completed: completed.into_cohort(),
        not_completed: not_completed.into_cohort(),
        pending_customers: pending,
    }
}

#[derive(Default)]
struct CohortTally {
    customers: i64,
    tickets: i64,
}

impl CohortTally {
    fn add(&mut self, tickets: i64) {
        self.customers += 1;
        self.tickets += tickets;
    }

    fn rate(&self) -> f64 {
        per_customer(self.tickets, self.customers)
    }

    fn into_rate(self) -> CohortRate {
        CohortRate {
            rate: round(self.rate(), 4),
            customers: self.customers,
            tickets: self.tickets,
        }
    }
}

#[derive(Default)]
struct WindowTally {
    customers: i64,
    before: i64,
    after: i64,
}

impl WindowTally {
    fn add(&mut self, counts: &WindowCounts) {
        self.customers += 1;
        self.before += counts.before;
        self.after += counts.after;
    }

    fn change(&self) -> f64 {
        per_customer(self.after, self.customers) - per_customer(self.before, self.customers)
    }

    fn into_cohort(self) -> WindowCohort {
        WindowCohort {
            customers: self.customers,
            tickets_before: self.before,
            tickets_after: self.after,
            before_per_customer: round(per_customer(self.before, self.customers), 4),
            after_per_customer: round(per_customer(self.after, self.customers), 4),
            change_per_customer: round(self.change(), 4),
        }
    }
}

fn per_customer(tickets: i64, customers: i64) -> f64 {
    if customers <= 0 {
        return 0.0;
    }
    tickets as f64 / customers as f64
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY_MS: i64 = 24 * 3600 * 1000;

    fn set(customers: &[&str]) -> HashSet<String> {
        customers
            .iter()
            .map(|customer| (*customer).to_owned())
            .collect()
    }

    fn contact() -> ContactData {
        ContactData {
            active: set(&["a", "b", "c", "d"]),
            trained: set(&["a", "b", "z"]),
            tickets: [("a", 1), ("b", 0), ("c", 3), ("d", 1), ("x", 5)]
                .into_iter()
                .map(|(customer, tickets)| (customer.to_owned(), tickets))
                .collect(),
        }
    }

    #[test]
    fn implicit_deflections_are_the_rate_difference_times_trained_customers() {
        let inputs = RoiInputs {
            contact: contact(),
            cost_per_ticket: 10.0,
            explicit_deflections: 3,
            min_cohort_customers: 1,
            ..RoiInputs::default()
        };

        let report = roi_report(&inputs);

        // trained a, b: 1 ticket / 2 = 0.5; untrained c, d: 4 / 2 = 2.0
        assert_eq!(report.contact_rate.trained.rate, 0.5);
        assert_eq!(report.contact_rate.untrained.rate, 2.0);
        assert_eq!(report.contact_rate.difference, 1.5);
        assert_eq!(report.implicit_deflections, 3.0);
        assert_eq!(report.tickets_of_unlisted_customers, 5);
        assert_eq!(report.savings.implicit, 30.0);
        assert_eq!(report.savings.explicit, 30.0);
        assert_eq!(report.savings.total, 60.0);
    }

    #[test]
    fn small_cohorts_and_a_missing_holdout_are_said_in_notes() {
        let inputs = RoiInputs {
            contact: contact(),
            min_cohort_customers: 30,
            ..RoiInputs::default()
        };

        let report = roi_report(&inputs);

        assert!(!report.reliable);
        assert!(report
            .notes
            .iter()
            .any(|note| note.contains("fewer than 30")));
        assert!(report
            .notes
            .iter()
            .any(|note| note.contains("no causal figure")));
        assert_eq!(report.holdout, None);
    }

    #[test]
    fn windows_start_at_the_completion_or_the_assignment_and_wait_for_their_end() {
        let now = 100 * DAY_MS;
        let completed = AssignedCustomer {
            assigned_at_ms: 50 * DAY_MS,
            completed_at_ms: Some(60 * DAY_MS),
        };
        let early = AssignedCustomer {
            assigned_at_ms: 50 * DAY_MS,
            completed_at_ms: Some(40 * DAY_MS),
        };
        let recent = AssignedCustomer {
            assigned_at_ms: 95 * DAY_MS,
            completed_at_ms: None,
        };

        let plan = plan_windows(completed, 7 * DAY_MS, now);

        assert_eq!(plan.cohort, Cohort::Completed);
        assert_eq!(plan.before, (43 * DAY_MS, 50 * DAY_MS));
        assert_eq!(plan.after, (60 * DAY_MS, 67 * DAY_MS));
        assert_eq!(plan_windows(early, 7 * DAY_MS, now).after.0, 50 * DAY_MS);
        assert_eq!(
            plan_windows(recent, 7 * DAY_MS, now).cohort,
            Cohort::Pending
        );
    }

    #[test]
    fn the_holdout_gives_the_causal_figure_beside_the_explicit_one() {
        let comparison = HoldoutComparison {
            holdout_sessions: 2,
            holdout_submitted: 2,
            holdout_submission_rate: 1.0,
            treated_sessions: 4,
            treated_submitted: 1,
            treated_submission_rate: 0.25,
            difference: 0.75,
        };
        let inputs = RoiInputs {
            holdout: Some(comparison),
            explicit_deflections: 2,
            cost_per_ticket: 25.0,
            ..RoiInputs::default()
        };

        let figure = roi_report(&inputs).holdout.unwrap();

        assert_eq!(figure.causal_deflections, 3.0);
        assert_eq!(figure.causal_savings, 75.0);
        assert_eq!(figure.explicit_deflections, 2);
    }

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn every_active_customer_is_in_exactly_one_cohort_and_unlisted_tickets_in_neither(
            customers in proptest::collection::vec(("[a-f]{1,2}", any::<bool>(), any::<bool>(), 0i64..5), 0..40),
        ) {
            let mut data = ContactData::default();
            for (customer, active, trained, tickets) in &customers {
                if *active { data.active.insert(customer.clone()); }
                if *trained { data.trained.insert(customer.clone()); }
                data.tickets.insert(customer.clone(), *tickets);
            }
            let inputs = RoiInputs { contact: data.clone(), ..RoiInputs::default() };

            let report = roi_report(&inputs);

            let rates = &report.contact_rate;
            prop_assert_eq!(rates.trained.customers + rates.untrained.customers, data.active.len() as i64);
            let all_tickets: i64 = data.tickets.values().sum();
            prop_assert_eq!(
                rates.trained.tickets + rates.untrained.tickets + report.tickets_of_unlisted_customers,
                all_tickets
            );
        }
    }
}
