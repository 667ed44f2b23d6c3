//! The demo helpdesk's "Submit a request" page (`GET /demo`): a ticket form with the
//! widget embedded exactly as a helpdesk embeds it, searching the demo catalog.

const FORM_PAGE: &str = include_str!("page.html");
const SUBMITTED_PAGE: &str = include_str!("submitted.html");

/// The language of the demo pages; the widget takes its own from the page's `lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoLanguage {
    English,
    German,
}

impl DemoLanguage {
    /// Returns German for `de` (and `de-…`), English for anything else.
    pub fn from_tag(tag: Option<&str>) -> DemoLanguage {
        match tag.map(|tag| tag.trim().to_ascii_lowercase()) {
            Some(tag) if tag == "de" || tag.starts_with("de-") => DemoLanguage::German,
            _ => DemoLanguage::English,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            DemoLanguage::English => "en",
            DemoLanguage::German => "de",
        }
    }

    fn other(self) -> DemoLanguage {
        match self {
            DemoLanguage::English => DemoLanguage::German,
            DemoLanguage::German => DemoLanguage::English,
        }
    }

    /// The page's texts, by placeholder name.
    fn texts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            DemoLanguage::English => &[
                ("title", "Submit a request"),
                ("hint", "Describe your problem and we will get back to you. Suggestions from our help center appear as you type."),
                ("email", "Your email address"),
                ("email_placeholder", "you@example.com"),
                ("subject", "Subject"),
                ("description", "Description"),
                ("submit", "Submit"),
                ("language_name", "English"),
                ("footer", "This is deflect's demo: a fictional product's help center searched as you type. Try “I can't log in, the password reset email never arrives” or “How do I export timesheets to Excel?”."),
                ("submitted_title", "Request received"),
                ("submitted_text", "In a real helpdesk your ticket would now reach an agent. The widget told deflect that this draft became a ticket (ticket_submitted)."),
                ("again", "Submit another request"),
                ("session_label", "The ticket names the widget session it was typed in (hidden field deflect_session), which the helpdesk's webhook hands to deflect:"),
            ],
            DemoLanguage::German => &[
                ("title", "Anfrage einreichen"),
                ("hint", "Beschreiben Sie Ihr Problem, wir melden uns bei Ihnen. Während Sie tippen, erscheinen Vorschläge aus unserem Hilfe-Center."),
                ("email", "Ihre E-Mail-Adresse"),
                ("email_placeholder", "sie@beispiel.de"),
                ("subject", "Betreff"),
                ("description", "Beschreibung"),
                ("submit", "Absenden"),
                ("language_name", "Deutsch"),
                ("footer", "Dies ist die Demo von deflect: das Hilfe-Center eines erfundenen Produkts, durchsucht während Sie tippen. Versuchen Sie „Ich kann mich nicht anmelden, die E-Mail zum Zurücksetzen des Passworts kommt nicht an“."),
                ("submitted_title", "Anfrage erhalten"),
                ("submitted_text", "In einem echten Helpdesk ginge Ihr Ticket jetzt an einen Mitarbeiter. Das Widget hat deflect gemeldet, dass aus diesem Entwurf ein Ticket wurde (ticket_submitted)."),
                ("again", "Weitere Anfrage einreichen"),
                ("session_label", "Das Ticket nennt die Widget-Sitzung, in der es getippt wurde (verstecktes Feld deflect_session), und der Webhook des Helpdesks gibt sie an deflect weiter:"),
            ],
        }
    }

    fn text(self, name: &str) -> &'static str {
        self.texts()
            .iter()
            .find(|(placeholder, _)| *placeholder == name)
            .map(|(_, text)| *text)
            .unwrap_or_default()
    }
}

/// The demo pages of one service: they embed the widget with the demo tenant's public key.
#[derive(Debug, Clone)]
pub struct DemoPages {
    suggest_key: String,
}

impl DemoPages {
    /// `suggest_key` is the demo tenant's public (suggest-scope) key, which the page
    /// shows to every visitor, as any page embedding the widget does.
    pub fn new(suggest_key: String) -> DemoPages {
        DemoPages { suggest_key }
    }

    /// Returns the "Submit a request" page.
    pub fn form_page(&self, language: DemoLanguage) -> String {
        let other = language.other();
        let mut page = FORM_PAGE.to_owned();
        for (placeholder, text) in language.texts() {
            page = page.replace(&format!("{{{{{placeholder}}}}}"), text);
        }
        page.replace("{{lang}}", language.tag())
            .replace("{{other_lang}}", other.tag())
            .replace("{{other_language}}", other.text("language_name"))
            .replace(
                "{{other_language_link}}",
                &format!("/demo?lang={}", other.tag()),
            )
            .replace(
                "{{key}}",
                &html_escape::encode_double_quoted_attribute(&self.suggest_key),
            )
    }

    /// Returns the page shown after the form was submitted, naming the widget session
    /// the form carried (as a helpdesk would receive it).
    pub fn submitted_page(&self, language: DemoLanguage, session_id: &str) -> String {
        SUBMITTED_PAGE
            .replace(
                "{{session}}",
                &html_escape::encode_text(session_id).replace("{{", "&#123;&#123;"),
            )
            .replace("{{lang}}", language.tag())
            .replace("{{title}}", language.text("submitted_title"))
            .replace("{{text}}", language.text("submitted_text"))
            .replace("{{again}}", language.text("again"))
            .replace("{{session_label}}", language.text("session_label"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in_both_languages() {
        let pages = DemoPages::new("a-public-key\"<".to_owned());
        for language in [DemoLanguage::English, DemoLanguage::German] {
            for page in [
                pages.form_page(language),
                pages.submitted_page(language, "0f1e"),
            ] {
                assert!(!page.contains("{{"), "{page}");
            }
        }
    }

    #[test]
    fn the_key_is_escaped_in_the_script_tag() {
        let page = DemoPages::new("a-public-key\"<".to_owned()).form_page(DemoLanguage::English);
        assert!(
            page.contains("data-key=\"a-public-key&quot;&lt;\""),
            "{page}"
        );
    }

    #[test]
    fn the_submitted_session_is_escaped_and_fills_no_placeholder() {
        let pages = DemoPages::new("k".repeat(12));
        let page = pages.submitted_page(DemoLanguage::English, "<b>{{title}}</b>");
        assert!(
            page.contains("&lt;b&gt;&#123;&#123;title}}&lt;/b&gt;"),
            "{page}"
        );
    }

    #[test]
    fn the_page_language_follows_the_tag() {
        assert_eq!(DemoLanguage::from_tag(Some("de")), DemoLanguage::German);
        assert_eq!(DemoLanguage::from_tag(Some("de-AT")), DemoLanguage::German);
        assert_eq!(DemoLanguage::from_tag(Some("fr")), DemoLanguage::English);
        assert_eq!(DemoLanguage::from_tag(None), DemoLanguage::English);
        let german = DemoPages::new("k".repeat(12)).form_page(DemoLanguage::German);
        assert!(german.starts_with("<!doctype html>\n<html lang=\"de\">"));
    }
}
