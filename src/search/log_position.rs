//! A position in the content log (a Redis stream id), and how an index generation
//! records the last position it has applied: in the payload of its tantivy commit, so
//! the position and the documents are made durable by the same atomic commit.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stream entry id `<milliseconds>-<sequence>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub milliseconds: u64,
    pub sequence: u64,
}

impl LogPosition {
    /// Before every entry: a follower at this position reads the whole stream.
    pub const START: LogPosition = LogPosition {
        milliseconds: 0,
        sequence: 0,
    };

    pub fn parse(text: &str) -> Option<LogPosition> {
        let (milliseconds, sequence) = text.split_once('-')?;
        Some(LogPosition {
            milliseconds: milliseconds.parse().ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.milliseconds, self.sequence)
    }
}

#[derive(Serialize, Deserialize)]
struct CommitPayload {
    content_log_position: String,
}

/// Returns the payload of a commit that has applied the log up to `position`.
pub fn commit_payload(position: LogPosition) -> String {
    serde_json::to_string(&CommitPayload {
        content_log_position: position.to_string(),
    })
    .expect("the payload serializes")
}

/// Returns the position recorded in `index`'s last commit, if any.
pub fn committed_position(index: &tantivy::Index) -> Option<LogPosition> {
    let payload = index.load_metas().ok()?.payload?;
    let parsed: CommitPayload = serde_json::from_str(&payload).ok()?;
    LogPosition::parse(&parsed.content_log_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_milliseconds_then_sequence_not_as_text() {
        let earlier = LogPosition::parse("999-12").unwrap();
        let later = LogPosition::parse("1000-2").unwrap();
        assert!(earlier < later);
        assert_eq!(later.to_string(), "1000-2");
        assert_eq!(LogPosition::parse("12"), None);
    }
}
