//! Assignments and what a customer did with them, as pure values.
//!
//! An assignment is stored once, as the agent made it, and never rewritten: its status
//! is derived when read from the customer's progress (the first time each lesson or
//! course was opened or completed, from tracked links and the LMS). So a completion
//! marks every matching assignment completed at once, whichever arrived first, with no
//! read-modify-write in Redis: a lesson's assignment is completed by the lesson's own
//! completion or by its course's, and a course's by the course's.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the LMS (or a tracked link) reports progress on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Lesson,
    Course,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Lesson => "lesson",
            ItemKind::Course => "course",
        }
    }

    fn parse(raw: &str) -> Option<ItemKind> {
        match raw {
            "lesson" => Some(ItemKind::Lesson),
            "course" => Some(ItemKind::Course),
            _ => None,
        }
    }
}

/// How far a customer got with a lesson or course.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A tracked link followed, or an enrollment in the course.
    Opened,
    Completed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Opened => "opened",
            Step::Completed => "completed",
        }
    }

    fn parse(raw: &str) -> Option<Step> {
        match raw {
            "opened" => Some(Step::Opened),
            "completed" => Some(Step::Completed),
            _ => None,
        }
    }
}

/// The field of a customer's progress hash: `<step>:<kind>:<content id>`.
pub fn progress_field(step: Step, kind: ItemKind, content_id: &str) -> String {
    format!("{}:{}:{content_id}", step.as_str(), kind.as_str())
}

/// A lesson (or course, article ...) an agent assigned to a customer, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// The content id of what was assigned.
    pub lesson_id: String,
    /// Its content kind (`lesson`, `course`, `article` ...).
    pub kind: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// The course of a lesson: completing the course completes the lesson's assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course_id: Option<String>,
    /// The ticket the assignment was made from.
    pub ticket_id: String,
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub assigned_at_ms: i64,
}

/// Where an assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStatus {
    Assigned,
    Opened,
    Completed,
}

/// An assignment's status and the times behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentState {
    pub status: AssignmentStatus,
    pub opened_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
}

/// One completion of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub kind: ItemKind,
    pub content_id: String,
    pub at_ms: i64,
}

/// What one customer opened and completed, first times only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    first_times: HashMap<(Step, ItemKind), HashMap<String, i64>>,
}

impl Progress {
    /// Reads a progress hash; fields of another form are ignored.
    pub fn from_hash(hash: &HashMap<String, i64>) -> Progress {
        let mut progress = Progress::default();
        for (field, at_ms) in hash {
            let mut parts = field.splitn(3, ':');
            let (Some(step), Some(kind), Some(content_id)) = (
                parts.next().and_then(Step::parse),
                parts.next().and_then(ItemKind::parse),
                parts.next(),
            ) else {
                continue;
            };
            progress
                .first_times
                .entry((step, kind))
                .or_default()
                .insert(content_id.to_owned(), *at_ms);
        }
        progress
    }

    fn first(&self, step: Step, kind: ItemKind, content_id: &str) -> Option<i64> {
        self.first_times
            .get(&(step, kind))?
            .get(content_id)
            .copied()
    }

    /// The first time `step` happened to `record`'s lesson: to the lesson itself (as a
    /// lesson or as a course) or to its course.
    fn first_for(&self, step: Step, record: &AssignmentRecord) -> Option<i64> {
        let own = [ItemKind::Lesson, ItemKind::Course]
            .into_iter()
            .filter_map(|kind| self.first(step, kind, &record.lesson_id));
        let of_course = record
            .course_id
            .as_deref()
            .and_then(|course_id| self.first(step, ItemKind::Course, course_id));
        own.chain(of_course).min()
    }

    /// Derives `record`'s status.
    pub fn state_of(&self, record: &AssignmentRecord) -> AssignmentState {
        let opened_at_ms = self.first_for(Step::Opened, record);
        let completed_at_ms = self.first_for(Step::Completed, record);
        let status = match (completed_at_ms, opened_at_ms) {
            (Some(_), _) => AssignmentStatus::Completed,
            (None, Some(_)) => AssignmentStatus::Opened,
            (None, None) => AssignmentStatus::Assigned,
        };
        AssignmentState {
            status,
            opened_at_ms,
            completed_at_ms,
        }
    }

    /// The ids of every lesson and course completed: content never to suggest again.
    pub fn completed_ids(&self) -> BTreeSet<String> {
        self.completions()
            .into_iter()
            .map(|completion| completion.content_id)
            .collect()
    }

    /// Every completion, oldest first.
    pub fn completions(&self) -> Vec<Completion> {
        let mut completions: Vec<Completion> = Vec::new();
        for kind in [ItemKind::Lesson, ItemKind::Course] {
            let Some(times) = self.first_times.get(&(Step::Completed, kind)) else {
                continue;
            };
            for (content_id, at_ms) in times {
                completions.push(Completion {
                    kind,
                    content_id: content_id.clone(),
                    at_ms: *at_ms,
                });
            }
        }
        completions.sort_by(|left, right| {
            (left.at_ms, &left.content_id).cmp(&(right.at_ms, &right.content_id))
        });
        completions
    }
}

/// An assignment as the API shows it: as stored, with its derived status and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignmentView {
    pub lesson_id: String,
    pub kind: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_id: Option<String>,
    pub ticket_id: String,
    pub agent_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: AssignmentStatus,
    pub assigned_at: String,
    pub opened_at: Option<String>,
    pub completed_at: Option<String>,
}

impl AssignmentView {
    pub fn of(record: &AssignmentRecord, progress: &Progress) -> AssignmentView {
        let state = progress.state_of(record);
        AssignmentView {
            lesson_id: record.lesson_id.clone(),
            kind: record.kind.clone(),
            title: record.title.clone(),
            url: record.url.clone(),
            duration_seconds: record.duration_seconds,
            course_id: record.course_id.clone(),
            ticket_id: record.ticket_id.clone(),
            agent_id: record.agent_id.clone(),
            note: record.note.clone(),
            status: state.status,
            assigned_at: format_ms(record.assigned_at_ms),
            opened_at: state.opened_at_ms.map(format_ms),
            completed_at: state.completed_at_ms.map(format_ms),
        }
    }
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC).
pub fn format_ms(at_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lesson_id: &str, course_id: Option<&str>) -> AssignmentRecord {
        AssignmentRecord {
            lesson_id: lesson_id.to_owned(),
            kind: "lesson".to_owned(),
            title: "A lesson".to_owned(),
            url: None,
            duration_seconds: None,
            course_id: course_id.map(str::to_owned),
            ticket_id: "1".to_owned(),
            agent_id: "agent".to_owned(),
            note: None,
            assigned_at_ms: 1_000,
        }
    }

    fn progress(entries: &[(Step, ItemKind, &str, i64)]) -> Progress {
        let hash: HashMap<String, i64> = entries
            .iter()
            .map(|(step, kind, id, at)| (progress_field(*step, *kind, id), *at))
            .collect();
        Progress::from_hash(&hash)
    }

    #[test]
    fn an_assignment_is_completed_by_its_lesson_or_its_course_whichever_came_first() {
        let lesson = record("reset", Some("accounts"));
        let none = progress(&[]);
        let by_lesson = progress(&[(Step::Completed, ItemKind::Lesson, "reset", 5_000)]);
        let by_course = progress(&[
            (Step::Completed, ItemKind::Lesson, "reset", 5_000),
            (Step::Completed, ItemKind::Course, "accounts", 4_000),
        ]);

        assert_eq!(none.state_of(&lesson).status, AssignmentStatus::Assigned);
        assert_eq!(by_lesson.state_of(&lesson).completed_at_ms, Some(5_000));
        assert_eq!(by_course.state_of(&lesson).completed_at_ms, Some(4_000));
        assert_eq!(
            by_course.state_of(&lesson).status,
            AssignmentStatus::Completed
        );
    }

    #[test]
    fn an_enrollment_in_the_course_or_a_followed_link_opens_an_assignment() {
        let lesson = record("reset", Some("accounts"));
        let enrolled = progress(&[(Step::Opened, ItemKind::Course, "accounts", 2_000)]);
        let other_course = progress(&[(Step::Opened, ItemKind::Course, "billing", 2_000)]);

        let state = enrolled.state_of(&lesson);

        assert_eq!(state.status, AssignmentStatus::Opened);
        assert_eq!(state.opened_at_ms, Some(2_000));
        assert_eq!(
            other_course.state_of(&lesson).status,
            AssignmentStatus::Assigned
        );
    }

    #[test]
    fn completed_ids_hold_lessons_and_courses_and_odd_fields_are_ignored() {
        let mut hash = HashMap::new();
        hash.insert(progress_field(Step::Completed, ItemKind::Lesson, "a:b"), 3);
        hash.insert(progress_field(Step::Completed, ItemKind::Course, "c"), 1);
        hash.insert(progress_field(Step::Opened, ItemKind::Lesson, "d"), 2);
        hash.insert("something:else".to_owned(), 9);

        let progress = Progress::from_hash(&hash);

        assert_eq!(
            progress.completed_ids().into_iter().collect::<Vec<_>>(),
            ["a:b", "c"]
        );
        assert_eq!(progress.completions()[0].content_id, "c");
    }

    #[test]
    fn times_are_formatted_as_rfc_3339() {
        assert_eq!(format_ms(1_773_482_400_000), "2026-03-14T10:00:00Z");
    }
}
