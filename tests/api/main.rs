//! Black-box tests of the HTTP API: each test starts the real `Application` on port 0
//! with a temporary index and talks to it over HTTP, as a widget, a helpdesk or an admin
//! script would (and, for "while you wait", a local helpdesk answers deflect's calls).

mod bad_input;
mod content;
mod crash_during_reindex;
mod events;
mod fake_helpdesk;
mod fake_sources;
mod feedback;
mod health;
mod helpdesk_helpers;
mod helpers;
mod local_server;
mod outage;
mod reindex;
mod replicas;
mod roi;
mod stalling_proxy;
mod stats;
mod suggest;
mod sync;
mod sync_helpers;
mod tenancy;
mod training;
mod training_helpers;
mod webdriver;
mod webhooks;
mod while_you_wait;
mod widget;
mod widget_browser;
