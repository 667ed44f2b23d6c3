//! Decides what one run changes in the index, from what the source said and what
//! deflect holds from it. Pure, so the rules are tested without a server:
//!
//! - a document that differs from the one held (or is new) is upserted; an identical
//!   one is left alone;
//! - an item the source reports as draft, unpublished or deleted is removed, and so are
//!   the lessons of a removed course and the lessons a listed course no longer lists;
//! - a full listing also removes what deflect holds from the source but the source no
//!   longer lists (incremental feeds do not report deletions).
//!
//! Only documents held from this source (by id prefix) are ever removed.

use std::collections::{HashMap, HashSet};

use crate::content::ContentChange;
use crate::domain::{ContentDocument, ContentId, FieldProblem};

use super::state::{SavedCursor, SyncMode};

/// What one run read from a source.
#[derive(Debug, Default)]
pub struct Pulled {
    /// The published items, as documents.
    pub documents: Vec<ContentDocument>,
    /// Ids of items the source reports as draft, unpublished, archived or deleted.
    pub removed_ids: Vec<String>,
    /// Ids of removed courses: their lessons are removed too.
    pub removed_course_ids: Vec<String>,
    /// Ids of courses listed with all their lessons: held lessons of theirs that are not
    /// listed are removed.
    pub complete_course_ids: Vec<String>,
    /// Items read but not taken (invalid, or in a locale not synced).
    pub skipped: usize,
    pub pages: usize,
    /// Where the next incremental run starts (`full_at` is set by the caller).
    pub cursor: SavedCursor,
    /// The source answered that nothing changed (304).
    pub not_modified: bool,
}

impl Pulled {
    /// Takes the document built from source item `id`, or, when the item is not a valid
    /// document, logs why, counts it as skipped and removes any older version of it (an
    /// item that became invalid is not suggested in its old form); returns whether it
    /// was taken.
    pub fn take(
        &mut self,
        source: &str,
        id: &str,
        document: Result<ContentDocument, Vec<FieldProblem>>,
    ) -> bool {
        match document {
            Ok(document) => {
                self.documents.push(document);
                true
            }
            Err(problems) => {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    source,
                    item_id = id,
                    problems = problems.join("; "),
                    "source item skipped: it is not a valid document"
                );
                self.skipped += 1;
                self.removed_ids.push(id.to_owned());
                false
            }
        }
    }
}

/// The changes of one run and what they amount to.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<ContentChange>,
    pub upserted: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// Returns the changes that bring `held` (the documents deflect holds from the source)
/// in step with `pulled`.
pub fn plan_changes(pulled: &Pulled, held: &[ContentDocument], mode: SyncMode) -> Plan {
    let held_by_id: HashMap<&str, &ContentDocument> = held
        .iter()
        .map(|document| (document.id.as_str(), document))
        .collect();
    let mut plan = Plan::default();
    let mut listed: HashSet<&str> = HashSet::new();
    for document in &pulled.documents {
        listed.insert(document.id.as_str());
        if held_by_id.get(document.id.as_str()) == Some(&document) {
            plan.unchanged += 1;
            continue;
        }
        plan.upserted += 1;
        plan.changes.push(ContentChange::Upsert(document.clone()));
    }

    let removed: HashSet<&str> = pulled.removed_ids.iter().map(String::as_str).collect();
    let removed_courses: HashSet<&str> = pulled
        .removed_course_ids
        .iter()
        .map(String::as_str)
        .collect();
    let complete_courses: HashSet<&str> = pulled
        .complete_course_ids
        .iter()
        .map(String::as_str)
        .collect();
    for document in held {
        let id = document.id.as_str();
        let reported_removed = removed.contains(id) && !listed.contains(id);
        let course = document.course_id.as_deref();
        let course_removed = course.is_some_and(|course| removed_courses.contains(course));
        let left_its_course =
            course.is_some_and(|course| complete_courses.contains(course)) && !listed.contains(id);
        let no_longer_listed = mode == SyncMode::Full && !listed.contains(id);
        if !(reported_removed || course_removed || left_its_course || no_longer_listed) {
            continue;
        }
        let Ok(content_id) = ContentId::parse(id) else {
            continue;
        };
        plan.deleted += 1;
        plan.changes.push(ContentChange::Delete(content_id));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DocumentInput;

    fn document(id: &str, title: &str, course_id: Option<&str>) -> ContentDocument {
        let input = DocumentInput {
            id: Some(serde_json::json!(id)),
            title: Some(title.to_owned()),
            course_id: course_id.map(str::to_owned),
            ..DocumentInput::default()
        };
        ContentDocument::parse(input, None).unwrap()
    }

    fn change_ids(plan: &Plan) -> Vec<String> {
        let mut ids: Vec<String> = plan
            .changes
            .iter()
            .map(|change| match change {
                ContentChange::Upsert(document) => format!("+{}", document.id),
                ContentChange::Delete(id) => format!("-{id}"),
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn new_and_changed_documents_are_upserted_and_identical_ones_left_alone() {
        // Arrange
        let held = [
            document("zd-1", "Old title", None),
            document("zd-2", "Same", None),
        ];
        let pulled = Pulled {
            documents: vec![
                document("zd-1", "New title", None),
                document("zd-2", "Same", None),
                document("zd-3", "Brand new", None),
            ],
            ..Pulled::default()
        };

        // Act
        let plan = plan_changes(&pulled, &held, SyncMode::Incremental);

        // Assert
        assert_eq!(change_ids(&plan), ["+zd-1", "+zd-3"]);
        assert_eq!((plan.upserted, plan.unchanged, plan.deleted), (2, 1, 0));
    }

    #[test]
    fn an_incremental_run_removes_only_what_the_source_reported_removed() {
        // Arrange
        let held = [
            document("zd-1", "Drafted", None),
            document("zd-2", "Untouched", None),
        ];
        let pulled = Pulled {
            removed_ids: vec!["zd-1".to_owned(), "zd-never-held".to_owned()],
            ..Pulled::default()
        };

        // Act
        let plan = plan_changes(&pulled, &held, SyncMode::Incremental);

        // Assert
        assert_eq!(change_ids(&plan), ["-zd-1"]);
        assert_eq!(plan.deleted, 1);
    }

    #[test]
    fn a_full_run_removes_what_the_source_no_longer_lists() {
        // Arrange
        let held = [
            document("fd-1", "Kept", None),
            document("fd-2", "Gone", None),
        ];
        let pulled = Pulled {
            documents: vec![document("fd-1", "Kept", None)],
            ..Pulled::default()
        };

        // Act
        let plan = plan_changes(&pulled, &held, SyncMode::Full);

        // Assert
        assert_eq!(change_ids(&plan), ["-fd-2"]);
    }

    #[test]
    fn a_lesson_a_listed_course_no_longer_lists_is_removed_even_incrementally() {
        // Arrange
        let held = [
            document("lms-lesson-1", "Kept", Some("lms-course-7")),
            document("lms-lesson-2", "Dropped", Some("lms-course-7")),
            document("lms-lesson-3", "Other course", Some("lms-course-8")),
        ];
        let pulled = Pulled {
            documents: vec![document("lms-lesson-1", "Kept", Some("lms-course-7"))],
            complete_course_ids: vec!["lms-course-7".to_owned()],
            ..Pulled::default()
        };

        // Act
        let plan = plan_changes(&pulled, &held, SyncMode::Incremental);

        // Assert
        assert_eq!(change_ids(&plan), ["-lms-lesson-2"]);
    }

    #[test]
    fn removing_a_course_removes_its_lessons() {
        // Arrange
        let held = [
            document("catalog-course-7", "Course", None),
            document("catalog-lesson-1", "Lesson", Some("catalog-course-7")),
            document("catalog-lesson-2", "Other", Some("catalog-course-8")),
        ];
        let pulled = Pulled {
            removed_ids: vec!["catalog-course-7".to_owned()],
            removed_course_ids: vec!["catalog-course-7".to_owned()],
            ..Pulled::default()
        };

        // Act
        let plan = plan_changes(&pulled, &held, SyncMode::Incremental);

        // Assert
        assert_eq!(
            change_ids(&plan),
            ["-catalog-course-7", "-catalog-lesson-1"]
        );
    }
}
