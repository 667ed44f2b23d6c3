//! Turns HTML into plain text without a full HTML parser.
//!
//! Article bodies from knowledge bases and drafts pasted into ticket forms carry markup.
//! Search needs the words, not the tags; block-level tags become line breaks so that
//! headings and list items stay separate sentences.

use std::borrow::Cow;

/// Returns `input` with tags removed, `<script>`/`<style>` contents dropped and entities
/// decoded. Text without a `<` or `&` is returned as it is, uncopied (the common case for
/// drafts, and for the body of every hit a plain-text catalog returns).
pub fn strip_html(input: &str) -> Cow<'_, str> {
    if !input.contains('<') {
        return decode_entities_if_any(Cow::Borrowed(input));
    }
    let mut text = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(tag_start) = rest.find('<') {
        text.push_str(&rest[..tag_start]);
        let after_bracket = &rest[tag_start + 1..];
        let Some(tag_end) = after_bracket.find('>') else {
            // A lone `<` (as in "a < b") is text, not markup.
            text.push_str(&rest[tag_start..]);
            rest = "";
            break;
        };
        let tag = &after_bracket[..tag_end];
        let tag_name = tag_name_of(tag);
        rest = &after_bracket[tag_end + 1..];
        if !looks_like_tag(tag) {
            text.push('<');
            text.push_str(tag);
            text.push('>');
            continue;
        }
        if tag_name == "script" || tag_name == "style" {
            let closing = format!("</{tag_name}");
            rest = match find_ascii_case_insensitive(rest, &closing) {
                Some(position) => {
                    let after_closing = &rest[position..];
                    after_closing
                        .find('>')
                        .map_or("", |end| &after_closing[end + 1..])
                }
                None => "",
            };
            continue;
        }
        if is_block_tag(&tag_name) {
            text.push('\n');
        } else {
            text.push(' ');
        }
    }
    text.push_str(rest);
    decode_entities_if_any(Cow::Owned(text))
}

fn decode_entities_if_any(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.contains('&') {
        return text;
    }
    Cow::Owned(html_escape::decode_html_entities(&text).into_owned())
}

fn looks_like_tag(tag: &str) -> bool {
    let first = tag.chars().next();
    matches!(first, Some(c) if c.is_ascii_alphabetic() || c == '/' || c == '!')
}

fn tag_name_of(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn is_block_tag(name: &str) -> bool {
    matches!(
        name,
        "p" | "br"
            | "div"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "tr"
            | "table"
            | "blockquote"
            | "pre"
            | "section"
            | "article"
            | "hr"
    )
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_separators_and_entities_are_decoded() {
        let text = strip_html("<h2>Reset</h2><p>Click <b>Forgot&nbsp;password</b> &amp; wait</p>");
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["Reset", "Click", "Forgot", "password", "&", "wait"]
        );
    }

    #[test]
    fn script_contents_are_dropped() {
        let text = strip_html("a<script>var x = '<p>';</script>b<style>p{}</style>c");
        assert_eq!(text.split_whitespace().collect::<String>(), "abc");
    }

    #[test]
    fn a_lone_angle_bracket_is_kept_as_text() {
        assert_eq!(strip_html("if a < b then"), "if a < b then");
        assert_eq!(strip_html("1 <2 and 3> 0").trim(), "1 <2 and 3> 0");
    }
}
