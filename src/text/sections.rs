//! Turns an article's HTML into clean text that remembers where each heading starts.
//!
//! Knowledge-base articles are long and answer several questions; a suggestion is more
//! useful when it opens the article at the section that matched. Headings (`h1`-`h4`)
//! become sections: their anchor (the heading's `id`, else a slug of its text), their
//! title and the character offset in the clean text where they start. Suggestions map
//! the matched passage back to its section and deep-link `url#anchor`.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::normalizer::normalize_content_text;

/// One heading of a document's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentSection {
    /// The URL fragment that opens the section (without `#`).
    pub anchor: String,
    pub title: String,
    /// Characters (not bytes) of the clean body before the section's title.
    pub offset: usize,
}

/// Clean text and the sections found in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionedText {
    /// Blocks separated by `\n`, whitespace within a block collapsed, no markup.
    pub text: String,
    /// In order of their offsets.
    pub sections: Vec<ContentSection>,
}

/// Longest anchor kept; longer heading ids are cut (at a character boundary).
const MAX_ANCHOR_BYTES: usize = 100;

static HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<h([1-4])(\s[^>]*)?>(.*?)</h[1-4]\s*>").expect("the heading pattern is valid")
});

static ID_ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?:^|\s)id\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"#)
        .expect("the id attribute pattern is valid")
});

/// Returns the clean text of `html` with its `h1`-`h4` headings as sections. Headings
/// without text are dropped; anchors repeated in one document get `-2`, `-3` ...
pub fn html_to_sectioned_text(html: &str) -> SectionedText {
    let mut sectioned = SectionedText::default();
    let mut text_chars = 0;
    let mut used_anchors = HashSet::new();
    let mut rest_start = 0;
    for heading in HEADING.captures_iter(html) {
        let whole = heading.get(0).expect("a match has a whole");
        push_block(
            &mut sectioned.text,
            &mut text_chars,
            &normalize_content_text(&html[rest_start..whole.start()]),
        );
        rest_start = whole.end();
        let title =
            normalize_content_text(heading.get(3).map_or("", |inner| inner.as_str())).into_owned();
        if title.is_empty() {
            continue;
        }
        let attributes = heading.get(2).map_or("", |attributes| attributes.as_str());
        let anchor = unique_anchor(
            heading_id(attributes).unwrap_or_else(|| slug(&title)),
            &mut used_anchors,
        );
        let offset = text_chars + usize::from(!sectioned.text.is_empty());
        push_block(&mut sectioned.text, &mut text_chars, &title);
        sectioned.sections.push(ContentSection {
            anchor,
            title,
            offset,
        });
    }
    push_block(
        &mut sectioned.text,
        &mut text_chars,
        &normalize_content_text(&html[rest_start..]),
    );
    sectioned
}

/// Returns the section that holds character `offset` of the text: the last one starting
/// at or before it.
pub fn section_at(sections: &[ContentSection], offset: usize) -> Option<&ContentSection> {
    sections
        .iter()
        .take_while(|section| section.offset <= offset)
        .last()
}

/// Returns `anchor` percent-encoded for a URL fragment (letters, digits and `-._~`
/// stay as they are).
pub fn fragment_of(anchor: &str) -> String {
    let mut fragment = String::with_capacity(anchor.len());
    for byte in anchor.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            fragment.push(char::from(byte));
        } else {
            fragment.push_str(&format!("%{byte:02X}"));
        }
    }
    fragment
}

fn push_block(text: &mut String, text_chars: &mut usize, block: &str) {
    if block.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push('\n');
        *text_chars += 1;
    }
    text.push_str(block);
    *text_chars += block.chars().count();
}

fn heading_id(attributes: &str) -> Option<String> {
    let captures = ID_ATTRIBUTE.captures(attributes)?;
    let raw = (1..=3).find_map(|group| captures.get(group))?.as_str();
    let id = html_escape::decode_html_entities(raw.trim()).into_owned();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then_some(id)
}

/// Returns a lowercase slug of `title`: letters and digits kept, everything else one
/// `-`; `section` when nothing is left.
fn slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for character in title.chars().flat_map(char::to_lowercase) {
        if character.is_alphanumeric() {
            slug.push(character);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_end_matches('-');
    if trimmed.is_empty() {
        "section".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn unique_anchor(anchor: String, used: &mut HashSet<String>) -> String {
    let mut anchor = anchor;
    if anchor.len() > MAX_ANCHOR_BYTES {
        let mut end = MAX_ANCHOR_BYTES;
        while !anchor.is_char_boundary(end) {
            end -= 1;
        }
        anchor.truncate(end);
    }
    let mut candidate = anchor.clone();
    let mut number = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{anchor}-{number}");
        number += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headings_become_sections_at_their_offsets_in_the_clean_text() {
        // Arrange
        let html =
            "<p>Intro&nbsp;text.</p><h2 id=\"reset\">Reset   it</h2><p>Open <b>settings</b>.</p>\
                    <h3>Two-factor &amp; you</h3><p>Use an app.</p>";

        // Act
        let sectioned = html_to_sectioned_text(html);

        // Assert
        assert_eq!(
            sectioned.text,
            "Intro text.\nReset it\nOpen settings .\nTwo-factor & you\nUse an app."
        );
        let anchors: Vec<_> = sectioned
            .sections
            .iter()
            .map(|s| s.anchor.as_str())
            .collect();
        assert_eq!(anchors, ["reset", "two-factor-you"]);
        for section in &sectioned.sections {
            let at_offset: String = sectioned.text.chars().skip(section.offset).collect();
            assert!(at_offset.starts_with(&section.title), "{section:?}");
        }
    }

    #[test]
    fn repeated_and_empty_headings_get_unique_anchors_or_none() {
        // Arrange
        let html = "<h2>Setup</h2>a<h2>Setup</h2>b<h4> </h4>c<h5>not a section</h5>";

        // Act
        let sectioned = html_to_sectioned_text(html);

        // Assert
        let anchors: Vec<_> = sectioned
            .sections
            .iter()
            .map(|s| s.anchor.as_str())
            .collect();
        assert_eq!(anchors, ["setup", "setup-2"]);
        assert!(sectioned.text.ends_with("not a section"));
    }

    #[test]
    fn the_section_of_an_offset_is_the_last_one_starting_before_it() {
        // Arrange
        let sectioned =
            html_to_sectioned_text("<p>intro</p><h2>One</h2><p>x</p><h2>Two</h2><p>y</p>");

        // Act
        let before_any = section_at(&sectioned.sections, 0);
        let in_second = section_at(&sectioned.sections, sectioned.text.chars().count() - 1);

        // Assert
        assert!(before_any.is_none());
        assert_eq!(
            in_second.map(|section| section.anchor.as_str()),
            Some("two")
        );
    }

    #[test]
    fn fragments_keep_unreserved_characters_and_encode_the_rest() {
        assert_eq!(fragment_of("été-2_x"), "%C3%A9t%C3%A9-2_x");
        assert_eq!(fragment_of("a#b"), "a%23b");
    }

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn every_section_offset_points_at_its_title_in_the_text(
            blocks in proptest::collection::vec(
                (0u8..6, "[a-zA-Z0-9 &<>;#é]{0,20}"),
                0..12,
            )
        ) {
            let html: String = blocks
                .iter()
                .map(|(level, text)| match level {
                    1..=4 => format!("<h{level}>{text}</h{level}>"),
                    5 => format!("<h2 id='x'>{text}</h2>"),
                    _ => format!("<p>{text}</p>"),
                })
                .collect();
            let sectioned = html_to_sectioned_text(&html);
            let characters: Vec<char> = sectioned.text.chars().collect();
            let mut previous_offset = None;
            for section in &sectioned.sections {
                prop_assert!(previous_offset.is_none_or(|previous| previous < section.offset));
                previous_offset = Some(section.offset);
                let at_offset: String = characters[section.offset..].iter().collect();
                prop_assert!(at_offset.starts_with(&section.title), "{:?} in {:?}", section, sectioned.text);
                prop_assert!(!section.anchor.is_empty());
            }
            let anchors: HashSet<_> = sectioned.sections.iter().map(|s| &s.anchor).collect();
            prop_assert_eq!(anchors.len(), sectioned.sections.len());
        }
    }
}
