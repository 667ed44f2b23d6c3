//! Turns a validated content document into the tantivy document that indexes it, and
//! reads back what was stored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tantivy::schema::{Field, Value};
use tantivy::TantivyDocument;

use super::index::IndexError;
use super::schema::ContentFields;
use super::term_list::TermList;
use super::terms::{document_key, scope_of};
use crate::domain::{ContentDocument, TenantId};
use crate::text::analysis::{fold, for_each_word, Analyzer};
use crate::text::language::{primary_subtag, Language};
use crate::text::normalizer::{head, normalize_content_text};

/// How much of a body is analysed and kept for snippets; the rest of a very long
/// document adds cost without helping anyone find it.
const MAX_INDEXED_BODY_BYTES: usize = 200 * 1024;

/// Shortest and longest prefix indexed for as-you-type matching.
pub const MIN_PREFIX_CHARS: usize = 2;
pub const MAX_PREFIX_CHARS: usize = 15;

/// What the index stores per document: the document as accepted. The plain text that
/// snippets are cut from is derived again when needed ([`StoredDocument::body_text`]),
/// so the body is stored once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDocument {
    pub tenant: String,
    pub document: ContentDocument,
}

impl StoredDocument {
    /// Reads the stored document of an indexed one; `None` when it has no source field.
    pub fn from_indexed(
        indexed: &TantivyDocument,
        source_field: Field,
    ) -> Result<Option<StoredDocument>, IndexError> {
        let Some(value) = indexed.get_first(source_field) else {
            return Ok(None);
        };
        // A string since schema version 4; bytes before, which `deflect reindex` still
        // reads when it rebuilds an older index.
        let Some(json) = value
            .as_str()
            .map(str::as_bytes)
            .or_else(|| value.as_bytes())
        else {
            return Ok(None);
        };
        let stored = serde_json::from_slice(json).map_err(|error| {
            IndexError::Tantivy(tantivy::TantivyError::InternalError(format!(
                "stored document is not valid JSON: {error}"
            )))
        })?;
        Ok(Some(stored))
    }

    /// Returns the body as plain text, exactly as it was indexed: borrowed from the
    /// document when it needs no cleaning (a plain-text body), as it does for each hit.
    pub fn body_text(&self) -> Cow<'_, str> {
        plain_body_text(&self.document)
    }
}

fn plain_body_text(document: &ContentDocument) -> Cow<'_, str> {
    let Some(body) = document.body.as_deref() else {
        return Cow::Borrowed("");
    };
    // A body with sections is clean text already, and their offsets point into it as
    // it is.
    let body_text = if document.sections.is_some() {
        Cow::Borrowed(body)
    } else {
        normalize_content_text(body)
    };
    let kept = head(&body_text, MAX_INDEXED_BODY_BYTES).len();
    match body_text {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..kept]),
        Cow::Owned(mut text) => {
            text.truncate(kept);
            Cow::Owned(text)
        }
    }
}

/// Room a document takes per value beyond its bytes: the length prefix tantivy writes
/// before each text (a variable-length integer of at most five bytes), and a date's eight.
const BYTES_PER_VALUE: usize = 8;

/// Returns the tantivy document for `document` of `tenant`.
pub fn index_document(
    fields: &ContentFields,
    tenant: &TenantId,
    document: &ContentDocument,
) -> TantivyDocument {
    let scope = scope_of(tenant);
    let analyzer = Analyzer::of(Language::from_locale(&document.locale));

    let mut summary_text = document.summary.clone().unwrap_or_default();
    for extra in document.course_title.iter().chain(document.tags.iter()) {
        summary_text.push('\n');
        summary_text.push_str(extra);
    }
    let body_text = plain_body_text(document);

    let mut texts: Vec<(Field, Cow<'_, str>)> = vec![
        (fields.key, Cow::Owned(document_key(tenant, &document.id))),
        (fields.tenant, Cow::Borrowed(tenant.as_str())),
        (fields.kind, Cow::Borrowed(document.kind.as_str())),
        (
            fields.language,
            Cow::Owned(primary_subtag(&document.locale)),
        ),
    ];
    for audience in &document.audiences {
        texts.push((fields.audiences, Cow::Borrowed(audience)));
    }
    for product in &document.products {
        texts.push((fields.products, Cow::Borrowed(product)));
    }
    texts.push((fields.group, Cow::Borrowed(document.group())));

    let mut pairs = TermList::default();
    for (field, text) in [
        (fields.title, document.title.as_str()),
        (fields.summary, summary_text.as_str()),
        (fields.body, body_text.as_ref()),
    ] {
        let mut terms = TermList::default();
        analyzer.for_each_term_and_pair(
            text,
            |_, term| terms.push_scoped(&scope, &[term]),
            |first, second| pairs.push_scoped(&scope, &[first, second]),
        );
        texts.push((field, Cow::Owned(terms.into_text())));
    }
    texts.push((fields.pairs, Cow::Owned(pairs.into_text())));
    let prefixes = prefix_list(
        analyzer,
        &scope,
        &[document.title.as_str(), summary_text.as_str()],
    );
    texts.push((fields.prefixes, Cow::Owned(prefixes.into_text())));
    let stored = StoredDocument {
        tenant: tenant.to_string(),
        document: document.clone(),
    };
    let source = serde_json::to_string(&stored).expect("a stored document always serializes");
    texts.push((fields.source, Cow::Owned(source)));

    // tantivy copies every value into one buffer, which starts at 1 KiB and doubles: a
    // benchmark catalog document's term lists and source (15-20 KB) went through four or
    // five reallocations, and the fresh memory they took was most of the page clearing
    // that analysis paid for in a bulk load (`deflect index` 3% faster sized once).
    let capacity: usize = texts
        .iter()
        .map(|(_, text)| text.len() + BYTES_PER_VALUE)
        .sum::<usize>()
        + BYTES_PER_VALUE;
    let mut indexed = TantivyDocument::with_capacity(capacity);
    for (field, text) in &texts {
        indexed.add_text(*field, text);
    }
    if let Some(updated_at) = document.updated_at_timestamp() {
        indexed.add_date(
            fields.updated_at,
            tantivy::DateTime::from_timestamp_secs(updated_at.unix_timestamp()),
        );
    }
    indexed
}

/// Returns the leading `MIN_PREFIX_CHARS..=MAX_PREFIX_CHARS` characters of every word of
/// `texts` but its stop words, folded but not stemmed (a customer types the word, not its
/// stem).
///
/// A stop word being typed is no prefix in a query (`query.rs`), so its prefixes would
/// only make "th" or "yo" match nearly every title through "the" and "your", instead of
/// the titles with "theme" or "youtube". They were 15% of the benchmark catalog's prefixes.
fn prefix_list(analyzer: &Analyzer, scope: &str, texts: &[&str]) -> TermList {
    let mut prefixes = TermList::default();
    for text in texts {
        for_each_word(text, |word| {
            if analyzer.is_stop_word(word.surface) {
                return;
            }
            let folded = fold(word.surface);
            let char_ends = folded
                .char_indices()
                .map(|(offset, character)| offset + character.len_utf8());
            for (length, end) in (1..).zip(char_ends) {
                if length > MAX_PREFIX_CHARS {
                    break;
                }
                if length >= MIN_PREFIX_CHARS {
                    prefixes.push_scoped(scope, &[&folded[..end]]);
                }
            }
        });
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DocumentInput;
    use crate::search::schema::ContentSchema;

    fn reset_password_article() -> ContentDocument {
        let input = DocumentInput {
            id: Some(serde_json::json!("reset-password")),
            title: Some("Reset your password".to_owned()),
            body: Some("Open the settings.".to_owned()),
            ..DocumentInput::default()
        };
        ContentDocument::parse(input, None).unwrap()
    }

    #[test]
    fn the_stored_document_is_read_back_from_the_string_it_is_stored_as() {
        let fields = ContentSchema::bundled().fields;
        let tenant = TenantId::parse("acme").unwrap();
        let document = reset_password_article();

        let indexed = index_document(&fields, &tenant, &document);

        let stored = StoredDocument::from_indexed(&indexed, fields.source)
            .unwrap()
            .unwrap();
        assert_eq!(stored.tenant, "acme");
        assert_eq!(stored.document.id, document.id);
        assert_eq!(stored.body_text(), "Open the settings.");
    }

    #[test]
    fn the_prefixes_are_those_of_title_and_summary_words_but_not_of_stop_words() {
        let fields = ContentSchema::bundled().fields;
        let tenant = TenantId::parse("acme").unwrap();
        let scope = scope_of(&tenant);

        let indexed = index_document(&fields, &tenant, &reset_password_article());

        let prefix_list = indexed
            .get_first(fields.prefixes)
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap();
        let prefixes: Vec<&str> = prefix_list
            .split('\u{1e}')
            .map(|term| term.strip_prefix(scope.as_str()).unwrap())
            .collect();
        assert!(prefixes.contains(&"re") && prefixes.contains(&"reset"));
        assert!(prefixes.contains(&"pa") && prefixes.contains(&"password"));
        assert!(
            !prefixes.iter().any(|prefix| prefix.starts_with("yo")),
            "no prefix of the stop word \"your\": {prefixes:?}"
        );
        assert!(
            !prefixes.contains(&"op"),
            "body words have no prefixes: {prefixes:?}"
        );
    }

    #[test]
    fn a_document_stored_as_bytes_by_schema_version_3_is_still_read_for_reindexing() {
        let fields = ContentSchema::bundled().fields;
        let stored_by_version_3 = StoredDocument {
            tenant: "acme".to_owned(),
            document: reset_password_article(),
        };
        let mut older = TantivyDocument::default();
        older.add_bytes(
            fields.source,
            &serde_json::to_vec(&stored_by_version_3).unwrap(),
        );

        let stored = StoredDocument::from_indexed(&older, fields.source)
            .unwrap()
            .unwrap();

        assert_eq!(stored.tenant, "acme");
        assert_eq!(stored.document.title, "Reset your password");
        assert_eq!(stored.body_text(), "Open the settings.");
    }
}
