//! The embeddable browser widget: one dependency-free script (`widget.js`) that helpdesk
//! ticket forms load from deflect (`GET /widget.js`). It is compiled into the binary, so
//! the widget a service serves always matches that service's API.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// The widget's source, served as is (readable, unminified).
pub const WIDGET_JS: &str = include_str!("widget.js");

/// The widget's version; the script carries it in its header and as `Deflect.version`.
pub const WIDGET_VERSION: &str = "1.0.0";

/// Strong entity tag of the served script: its version and the start of its SHA-256, so
/// any change of the file (even without a version bump) invalidates browser caches.
static WIDGET_ETAG: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(WIDGET_JS.as_bytes());
    let hex: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{WIDGET_VERSION}-{hex}\"")
});

/// Returns the entity tag of the served script, quotes included.
pub fn widget_etag() -> &'static str {
    WIDGET_ETAG.as_str()
}

/// Returns whether an `If-None-Match` header value names the current script (weak
/// comparison, as RFC 9110 asks for `If-None-Match`; `*` matches too).
pub fn etag_matches(if_none_match: &str) -> bool {
    let current = widget_etag();
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_carries_the_version_it_is_served_as() {
        assert!(WIDGET_JS.contains(&format!("deflect widget {WIDGET_VERSION} ")));
        assert!(WIDGET_JS.contains(&format!("var VERSION = '{WIDGET_VERSION}';")));
    }

    #[test]
    fn the_script_stays_under_20_kb_unminified() {
        assert!(WIDGET_JS.len() < 20_000, "{} bytes", WIDGET_JS.len());
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let current = widget_etag();
        assert!(etag_matches(current));
        assert!(etag_matches(&format!("W/{current}")));
        assert!(etag_matches(&format!("\"other\", {current}")));
        assert!(etag_matches("*"));
        assert!(!etag_matches("\"0.9.0-0000000000000000\""));
        assert!(!etag_matches(""));
    }
}
