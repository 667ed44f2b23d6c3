//! The settings of ticket-to-training: `[training]` (retention, the ROI report's windows
//! and cohorts, limits) and each tenant's `[tenants.<id>.lms]` (see config/base.toml).

use secrecy::SecretString;
use serde::Deserialize;

/// `[training]`.
#[derive(Debug, Clone, Deserialize)]
pub struct TrainingSettings {
    /// Days per-customer data (assignments, LMS progress, ticket times) is kept after the
    /// customer's last change, and per-day ticket counts and active-customer periods
    /// after their day or period ended.
    pub retention_days: u32,
    /// Days before an assignment and after a completion the ROI report's effectiveness
    /// figures compare, unless a request names its own `window_days`.
    pub effectiveness_window_days: u32,
    /// Cohorts with fewer customers get a note that their figures mean little.
    pub min_cohort_customers: u32,
    /// Customer ids one `POST /v1/customers/active` may carry.
    pub max_active_customers_per_request: usize,
    /// Lessons one assignment call may carry.
    pub max_lessons_per_assignment: usize,
    /// How long `/v1/suggest` waits for a customer's completed lessons before it
    /// suggests without leaving them out.
    pub completed_lookup_timeout_ms: u64,
}

impl TrainingSettings {
    pub fn retention_seconds(&self) -> i64 {
        i64::from(self.retention_days.max(1)) * 24 * 3600
    }
}

/// `[tenants.<id>.lms]`: how the tenant's LMS reports completions and enrollments.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LmsSettings {
    /// `whsec_…` secrets of deliveries in deflect's generic shape, signed with Standard
    /// Webhooks; two during a rotation.
    #[serde(default)]
    pub webhook_secrets: Vec<SecretString>,
    /// Thinkific's signing keys (the site's API key, or the app's client secret); two
    /// during a rotation.
    #[serde(default)]
    pub thinkific_secrets: Vec<SecretString>,
    /// Put before an LMS lesson id to make deflect's content id (`thinkific-lesson-`
    /// when the catalog was loaded with such ids); empty by default.
    #[serde(default)]
    pub lesson_id_prefix: String,
    /// Put before an LMS course id to make deflect's content id.
    #[serde(default)]
    pub course_id_prefix: String,
}
