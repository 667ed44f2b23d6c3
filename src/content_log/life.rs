//! Whether a position in the content log still means something.
//!
//! A position is a stream id, and stream ids only order entries of one stream. When Redis
//! loses the log (a restart without persistence, `FLUSHALL`, an older backup restored),
//! the stream and snapshot that come back, or the new ones the next write creates, are
//! another log: an index's position says nothing about them, its documents are not in
//! their snapshot, and following it would miss changes silently. So the log records its
//! life in a small hash: `born`, the first entry ever appended (or the seed marker of an
//! instance that seeded it, [`super::seed`]), and `last`, the last one. A position `P` is
//! usable only when `born <= P <= last-generated-id` of the stream and the stream was not
//! trimmed past `P`; otherwise the log was lost or replaced ([`LogLife::judge`]). A write
//! after a loss cannot hide it: the new `born` is newer than every position of the old
//! life.
//!
//! The full check ([`ContentLog::life`]) reads the few fields of `XINFO STREAM` it needs
//! through a script, never the stream's first and last entries that `XINFO` itself
//! answers with (each up to `max_entry_bytes`). The follower runs it at its start, after
//! an error, when it reads a full batch (it is behind, so trimming could reach it), and
//! when the cheap check of every step ([`ContentLog::life_marks`], one `HMGET` of two ids)
//! cannot vouch for its position. The cheap check runs again after a read that returned
//! entries, since a blocking read may have waited while the log was lost and written
//! again (the new life's entries must not be applied as if nothing happened).
//!
//! What this cannot tell: an older copy of the log restored and written again before any
//! instance checked (its new entries follow every old position). Restoring a backup is
//! safe when the instances are stopped or the copy is checked before writes resume.

use super::{ContentLog, ContentLogError};
use crate::search::LogPosition;

/// What the full check of the log's life found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogLife {
    /// The first entry of this life; `None` for a log never written (or lost and not
    /// written since).
    pub born: Option<LogPosition>,
    /// The seed marker, when an instance seeded this life from its index.
    pub seeded: Option<LogPosition>,
    /// An instance is seeding the log right now.
    pub seeding: bool,
    /// `None` when there is no stream.
    pub stream: Option<StreamFacts>,
}

/// The fields of `XINFO STREAM` that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFacts {
    pub last_generated: LogPosition,
    pub entries_added: u64,
    pub length: u64,
    /// The oldest entry left (Redis 7's `recorded-first-entry-id`).
    pub first_entry: Option<LogPosition>,
}

/// Why a position no longer belongs to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// The log holds nothing: it was flushed or Redis restarted without it.
    Emptied,
    /// The log ends before the position: an older copy of it came back.
    EndsBefore,
    /// The log's life began after the position: it was lost and written again since.
    RebornAfter,
}

impl LossReason {
    /// Returns the reason in words, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            LossReason::Emptied => "the content log is empty",
            LossReason::EndsBefore => "the content log ends before this index's position",
            LossReason::RebornAfter => {
                "the content log was started again after this index's position"
            }
        }
    }
}

/// What an index at some position must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionVerdict {
    /// Follow from the position.
    Usable,
    /// The log has never been written (or was lost before this index had a position).
    Empty,
    /// The index has applied no position of a log that has content: rebuild from it.
    NoPosition,
    /// The stream was trimmed past the position: rebuild from the snapshot.
    Trimmed,
    /// The log was lost or replaced since the index reached its position.
    Lost(LossReason),
}

impl StreamFacts {
    /// Returns whether Redis reported `entries-added` (Redis 7.0 and later): a stream
    /// that holds entries has had at least as many added. Without it, trimming cannot
    /// be told, and the content log must not run as if nothing were ever trimmed.
    fn reported_by_redis_7(&self) -> bool {
        self.length == 0 || self.entries_added >= self.length
    }

    /// Returns whether entries after `position` were trimmed away.
    fn has_trimmed_after(&self, position: LogPosition) -> bool {
        // Trimming does not move `max-deleted-entry-id` (only XDEL does), so: entries
        // were removed, and the oldest left is newer than the position. (When the
        // position is exactly the last removed entry this rebuilds without need; a
        // follower that keeps up is never behind the oldest entry.)
        self.entries_added > self.length && self.first_entry.is_some_and(|oldest| oldest > position)
    }
}

impl LogLife {
    /// Returns the position of the stream's last entry (`START` for no stream).
    pub fn head(&self) -> LogPosition {
        self.stream
            .map(|stream| stream.last_generated)
            .unwrap_or(LogPosition::START)
    }

    pub fn is_seeded(&self) -> bool {
        self.seeded.is_some()
    }

    /// Returns whether the log was seeded after `position` (`None`: the index has none),
    /// so the seed holds content newer than the index's.
    pub fn was_seeded_after(&self, position: Option<LogPosition>) -> bool {
        self.seeded
            .is_some_and(|seeded| position.is_none_or(|position| seeded > position))
    }

    /// Returns whether entries after `position` were trimmed away.
    pub fn has_trimmed_after(&self, position: LogPosition) -> bool {
        self.stream
            .is_some_and(|stream| stream.has_trimmed_after(position))
    }

    /// Judges the position an index has applied (`None`: none) against this life.
    pub fn judge(&self, position: Option<LogPosition>) -> PositionVerdict {
        let Some(born) = self.born else {
            return match position {
                Some(position) if position != LogPosition::START => {
                    PositionVerdict::Lost(LossReason::Emptied)
                }
                _ => PositionVerdict::Empty,
            };
        };
        let Some(position) = position else {
            return PositionVerdict::NoPosition;
        };
        let last_generated = self.stream.map(|stream| stream.last_generated);
        if last_generated.is_none_or(|last| position > last) {
            return PositionVerdict::Lost(LossReason::EndsBefore);
        }
        if self.has_trimmed_after(position) {
            return PositionVerdict::Trimmed;
        }
        if position == LogPosition::START {
            // START is before every entry: following from it reads the whole life,
            // unless the life began with a seed, whose documents are only in the
            // snapshot (the stream has just its marker).
            return match self.seeded {
                Some(_) => PositionVerdict::NoPosition,
                None => PositionVerdict::Usable,
            };
        }
        if position < born {
            return PositionVerdict::Lost(LossReason::RebornAfter);
        }
        PositionVerdict::Usable
    }
}

/// The two ids of the log's life that the append script keeps up to date: enough to
/// vouch for a position cheaply on every step of a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifeMarks {
    pub born: Option<LogPosition>,
    pub last: Option<LogPosition>,
}

impl LifeMarks {
    /// Returns whether `position` is within the log's life, so the follower may read
    /// after it without the full check first. The marks cannot see trimming or a seed,
    /// so whatever such a read returns is judged in full before it is applied
    /// ([`super::follower`]).
    pub fn vouch_for(&self, position: LogPosition) -> bool {
        let (Some(born), Some(last)) = (self.born, self.last) else {
            return false;
        };
        (position == LogPosition::START || born <= position) && position <= last
    }
}

/// Parses an id the scripts answered with; "" (nothing) is `None`.
fn optional_position(text: &str) -> Option<LogPosition> {
    LogPosition::parse(text)
}

impl ContentLog {
    /// Reads the log's life (the full check: one script with a small answer).
    pub async fn life(&self) -> Result<LogLife, ContentLogError> {
        let mut invocation = self.scripts.life.prepare_invoke();
        invocation
            .key(self.keys.changes())
            .key(self.keys.life())
            .key(self.keys.seed_lock());
        let (born, seeded, seeding, last_generated, entries_added, length, first_entry): (
            String,
            String,
            u8,
            String,
            u64,
            u64,
            String,
        ) = self.redis.invoke(&invocation).await?;
        let stream = optional_position(&last_generated).map(|last_generated| StreamFacts {
            last_generated,
            entries_added,
            length,
            first_entry: optional_position(&first_entry),
        });
        if stream.is_some_and(|stream| !stream.reported_by_redis_7()) {
            return Err(ContentLogError::RedisTooOld);
        }
        Ok(LogLife {
            born: optional_position(&born),
            seeded: optional_position(&seeded),
            seeding: seeding == 1,
            stream,
        })
    }

    /// Reads the log's `born` and `last` marks (one `HMGET`).
    pub async fn life_marks(&self) -> Result<LifeMarks, ContentLogError> {
        let (marks,): ((Option<String>, Option<String>),) = self
            .redis
            .query(
                redis::pipe()
                    .cmd("HMGET")
                    .arg(self.keys.life())
                    .arg("born")
                    .arg("last"),
            )
            .await?;
        let (born, last) = marks;
        Ok(LifeMarks {
            born: born.as_deref().and_then(optional_position),
            last: last.as_deref().and_then(optional_position),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(milliseconds: u64) -> LogPosition {
        LogPosition {
            milliseconds,
            sequence: 0,
        }
    }

    /// A life born at 100 whose stream ends at 200, nothing trimmed.
    fn life_from_100_to_200() -> LogLife {
        LogLife {
            born: Some(at(100)),
            seeded: None,
            seeding: false,
            stream: Some(StreamFacts {
                last_generated: at(200),
                entries_added: 10,
                length: 10,
                first_entry: Some(at(100)),
            }),
        }
    }

    #[test]
    fn a_position_within_the_life_is_usable() {
        let life = life_from_100_to_200();

        assert_eq!(life.judge(Some(at(150))), PositionVerdict::Usable);
        assert_eq!(life.judge(Some(at(200))), PositionVerdict::Usable);
        assert_eq!(
            life.judge(Some(LogPosition::START)),
            PositionVerdict::Usable
        );
    }

    #[test]
    fn the_start_of_a_seeded_life_is_no_position_since_the_seeded_documents_are_only_in_the_snapshot(
    ) {
        let life = LogLife {
            seeded: Some(at(100)),
            ..life_from_100_to_200()
        };

        assert_eq!(
            life.judge(Some(LogPosition::START)),
            PositionVerdict::NoPosition
        );
        assert_eq!(life.judge(Some(at(150))), PositionVerdict::Usable);
    }

    #[test]
    fn a_stream_with_entries_but_none_added_was_reported_by_a_redis_older_than_7() {
        let redis_6 = StreamFacts {
            last_generated: at(200),
            entries_added: 0,
            length: 10,
            first_entry: None,
        };

        assert!(!redis_6.reported_by_redis_7());
        assert!(life_from_100_to_200().stream.unwrap().reported_by_redis_7());
    }

    #[test]
    fn a_position_beyond_the_end_of_the_stream_means_an_older_copy_came_back() {
        let life = life_from_100_to_200();

        assert_eq!(
            life.judge(Some(at(250))),
            PositionVerdict::Lost(LossReason::EndsBefore)
        );
    }

    #[test]
    fn a_position_before_the_life_began_means_the_log_was_lost_and_written_again() {
        let life = life_from_100_to_200();

        assert_eq!(
            life.judge(Some(at(50))),
            PositionVerdict::Lost(LossReason::RebornAfter)
        );
    }

    #[test]
    fn an_emptied_log_loses_every_position_but_the_start() {
        let life = LogLife::default();

        assert_eq!(
            life.judge(Some(at(50))),
            PositionVerdict::Lost(LossReason::Emptied)
        );
        assert_eq!(life.judge(Some(LogPosition::START)), PositionVerdict::Empty);
        assert_eq!(life.judge(None), PositionVerdict::Empty);
    }

    #[test]
    fn a_trimmed_position_rebuilds_rather_than_counting_as_lost() {
        let mut life = life_from_100_to_200();
        life.stream = Some(StreamFacts {
            last_generated: at(200),
            entries_added: 50,
            length: 10,
            first_entry: Some(at(180)),
        });

        assert_eq!(life.judge(Some(at(50))), PositionVerdict::Trimmed);
        assert_eq!(life.judge(Some(at(170))), PositionVerdict::Trimmed);
        assert_eq!(life.judge(Some(at(190))), PositionVerdict::Usable);
    }

    #[test]
    fn no_position_on_a_log_with_content_rebuilds() {
        assert_eq!(
            life_from_100_to_200().judge(None),
            PositionVerdict::NoPosition
        );
    }

    #[test]
    fn the_marks_vouch_only_for_positions_between_born_and_last() {
        let marks = LifeMarks {
            born: Some(at(100)),
            last: Some(at(200)),
        };

        assert!(marks.vouch_for(at(150)));
        assert!(marks.vouch_for(LogPosition::START));
        assert!(!marks.vouch_for(at(50)));
        assert!(!marks.vouch_for(at(250)));
        assert!(!LifeMarks::default().vouch_for(LogPosition::START));
    }
}
