//! Ticket-to-training: agents turn a ticket into lessons assigned to its customer, the
//! LMS reports what the customer opened and completed, helpdesk webhooks count each
//! customer's tickets per day, and an active-customer list gives the contact rates a
//! denominator; the ROI report compares trained and untrained customers from all that.
//!
//! `progress` holds the pure model (assignments, progress, derived status), `requests`
//! the parsing of the routes' bodies, `store` and `roi_data` the Redis side, `lms` the
//! LMS webhook bodies, `roi` the report's arithmetic and `settings` the `[training]` and
//! `[tenants.<id>.lms]` settings.

pub mod lms;
pub mod progress;
pub mod requests;
pub mod roi;
pub mod roi_data;
pub mod settings;
pub mod store;

pub use settings::{LmsSettings, TrainingSettings};
pub use store::TrainingStore;
