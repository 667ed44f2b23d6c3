//! Black-box tests of the HTTP API: each test starts the real `Application` on port 0
//! with a temporary index and talks to it over HTTP, as a widget, a helpdesk or an admin
//! script would.

mod bad_input;
mod content;
mod events;
mod feedback;
mod health;
mod helpers;
mod outage;
mod stalling_proxy;
mod stats;
mod suggest;
mod tenancy;
mod webdriver;
mod widget;
mod widget_browser;
