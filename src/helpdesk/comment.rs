//! The "while you wait" comment: up to three lessons, each a tracked link, and a "This
//! solved my problem" link, in the ticket's language (English or German); and the
//! comment with the lessons an agent assigned to the customer, with the agent's note.
//!
//! The comment is rendered the same on every attempt of the outbox, so a retry looks
//! for exactly what the first attempt may have posted.

use serde::{Deserialize, Serialize};

/// The language of what deflect writes to customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    En,
    De,
}

impl Language {
    /// German for `de` locales, English for all others.
    pub fn of_locale(locale: Option<&str>) -> Language {
        match locale {
            Some(locale) if locale.to_ascii_lowercase().starts_with("de") => Language::De,
            _ => Language::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Language::En => &ENGLISH,
            Language::De => &GERMAN,
        }
    }
}

/// Everything deflect says to a customer about posted lessons.
pub struct Texts {
    pub intro: &'static str,
    pub solved_link: &'static str,
    pub solved_hint: &'static str,
    pub minutes: &'static str,
    /// The confirmation page of "This solved my problem".
    pub confirm_title: &'static str,
    pub confirm_question: &'static str,
    pub confirm_button: &'static str,
    /// The page after confirming.
    pub thanks_title: &'static str,
    pub thanks_text: &'static str,
    /// The comment of lessons an agent assigned.
    pub assigned_intro: &'static str,
    pub assigned_note: &'static str,
    kinds: [(&'static str, &'static str); 5],
}

impl Texts {
    /// The name of a content kind (`lesson`, `article` ...).
    pub fn kind(&self, kind: &str) -> &str {
        self.kinds
            .iter()
            .find(|(candidate, _)| *candidate == kind)
            .map(|(_, name)| *name)
            .unwrap_or("")
    }
}

static ENGLISH: Texts = Texts {
    intro: "While you wait for our team, one of these may solve it right away:",
    solved_link: "This solved my problem",
    solved_hint: "If one of them did, follow this link and we will close your request.",
    minutes: "min",
    confirm_title: "Did this solve your problem?",
    confirm_question: "Confirm and we will close your request. You can always write to us again.",
    confirm_button: "Yes, close my request",
    thanks_title: "Thank you!",
    thanks_text: "Glad it helped. Your request is closed; reply to it any time if you need us.",
    assigned_intro:
        "We picked these short lessons for you; they show how to do this yourself next time:",
    assigned_note: "A note from our team:",
    kinds: [
        ("lesson", "lesson"),
        ("article", "article"),
        ("course", "course"),
        ("video", "video"),
        ("community", "community"),
    ],
};

static GERMAN: Texts = Texts {
    intro: "Während Sie auf unser Team warten – vielleicht hilft Ihnen eines davon sofort:",
    solved_link: "Das hat mein Problem gelöst",
    solved_hint: "Wenn ja, folgen Sie diesem Link, und wir schließen Ihre Anfrage.",
    minutes: "Min.",
    confirm_title: "Hat das Ihr Problem gelöst?",
    confirm_question: "Bestätigen Sie, und wir schließen Ihre Anfrage. Sie können uns jederzeit wieder schreiben.",
    confirm_button: "Ja, Anfrage schließen",
    thanks_title: "Vielen Dank!",
    thanks_text: "Schön, dass es geholfen hat. Ihre Anfrage ist geschlossen; antworten Sie einfach, wenn Sie uns brauchen.",
    assigned_intro: "Wir haben diese kurzen Lektionen für Sie ausgewählt; sie zeigen, wie Sie das nächste Mal selbst zum Ziel kommen:",
    assigned_note: "Eine Notiz von unserem Team:",
    kinds: [
        ("lesson", "Lektion"),
        ("article", "Artikel"),
        ("course", "Kurs"),
        ("video", "Video"),
        ("community", "Community"),
    ],
};

/// One lesson of the comment, with its tracked link.
pub struct CommentLesson<'lesson> {
    pub title: &'lesson str,
    pub kind: &'lesson str,
    pub duration_seconds: Option<u32>,
    pub tracked_url: String,
}

/// Renders the comment as HTML (titles escaped).
pub fn lessons_comment(
    lessons: &[CommentLesson<'_>],
    solved_url: &str,
    language: Language,
) -> String {
    let texts = language.texts();
    let mut html = format!("<p>{}</p>\n", texts.intro);
    push_lesson_list(&mut html, lessons, texts);
    html.push_str(&format!(
        "<p>{} <a href=\"{}\">{}</a></p>",
        texts.solved_hint,
        html_escape::encode_double_quoted_attribute(solved_url),
        texts.solved_link
    ));
    html
}

/// Renders the comment of lessons an agent assigned, with the agent's note (escaped).
pub fn assignment_comment(
    lessons: &[CommentLesson<'_>],
    note: Option<&str>,
    language: Language,
) -> String {
    let texts = language.texts();
    let mut html = String::new();
    if let Some(note) = note.filter(|note| !note.trim().is_empty()) {
        html.push_str(&format!(
            "<p>{} {}</p>\n",
            texts.assigned_note,
            html_escape::encode_text(note.trim())
        ));
    }
    html.push_str(&format!("<p>{}</p>\n", texts.assigned_intro));
    push_lesson_list(&mut html, lessons, texts);
    html
}

/// Appends the lessons as a list of links with their kind and length.
fn push_lesson_list(html: &mut String, lessons: &[CommentLesson<'_>], texts: &Texts) {
    html.push_str("<ul>\n");
    for lesson in lessons {
        let mut details = texts.kind(lesson.kind).to_owned();
        if let Some(seconds) = lesson.duration_seconds {
            let minutes = seconds.div_ceil(60).max(1);
            details = format!("{details}, {minutes} {}", texts.minutes);
        }
        html.push_str(&format!(
            "<li><a href=\"{}\">{}</a> ({})</li>\n",
            html_escape::encode_double_quoted_attribute(&lesson.tracked_url),
            html_escape::encode_text(lesson.title),
            html_escape::encode_text(details.trim_start_matches(", ")),
        ));
    }
    html.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_links_every_lesson_and_escapes_titles() {
        let lessons = [CommentLesson {
            title: "Reset <your> password",
            kind: "lesson",
            duration_seconds: Some(150),
            tracked_url: "https://deflect.example/r/abc".to_owned(),
        }];

        let html = lessons_comment(&lessons, "https://deflect.example/r/solved", Language::En);

        assert!(html.contains("<a href=\"https://deflect.example/r/abc\">Reset &lt;your&gt; password</a> (lesson, 3 min)"), "{html}");
        assert!(
            html.contains(
                "<a href=\"https://deflect.example/r/solved\">This solved my problem</a>"
            ),
            "{html}"
        );
    }

    #[test]
    fn an_assignment_comment_carries_the_escaped_note_and_no_solved_link() {
        let lessons = [CommentLesson {
            title: "Turn on two-factor",
            kind: "lesson",
            duration_seconds: None,
            tracked_url: "https://deflect.example/r/xyz".to_owned(),
        }];

        let html = assignment_comment(&lessons, Some("Try <b>this</b> first"), Language::En);

        assert!(html.contains("Try &lt;b&gt;this&lt;/b&gt; first"), "{html}");
        assert!(
            html.contains(
                "<a href=\"https://deflect.example/r/xyz\">Turn on two-factor</a> (lesson)"
            ),
            "{html}"
        );
        assert!(!html.contains("This solved my problem"), "{html}");
    }

    #[test]
    fn german_tickets_get_german_texts() {
        assert_eq!(Language::of_locale(Some("de-AT")), Language::De);
        assert_eq!(Language::of_locale(Some("fr")), Language::En);
        let html = lessons_comment(&[], "https://x/r/s", Language::De);
        assert!(html.contains("Das hat mein Problem gelöst"), "{html}");
    }
}
