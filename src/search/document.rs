//! Turns a validated content document into the tantivy document that indexes it, and
//! reads back what was stored.

use serde::{Deserialize, Serialize};
use tantivy::schema::Field;
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::TantivyDocument;

use super::schema::ContentFields;
use super::terms::{document_key, scope_of, scoped};
use crate::domain::{ContentDocument, TenantId};
use crate::text::analysis::{fold, for_each_word, Analyzer};
use crate::text::language::{primary_subtag, Language};
use crate::text::normalizer::normalize_content_text;

/// How much of a body is analysed and kept for snippets; the rest of a very long
/// document adds cost without helping anyone find it.
const MAX_INDEXED_BODY_BYTES: usize = 200 * 1024;

/// Shortest and longest prefix indexed for as-you-type matching.
pub const MIN_PREFIX_CHARS: usize = 2;
pub const MAX_PREFIX_CHARS: usize = 15;

/// What the index stores per document: the document as accepted and the plain text of
/// its body, from which snippets are cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDocument {
    pub tenant: String,
    pub document: ContentDocument,
    pub body_text: String,
}

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
    let mut body_text = document
        .body
        .as_deref()
        .map(normalize_content_text)
        .unwrap_or_default();
    truncate_at_char_boundary(&mut body_text, MAX_INDEXED_BODY_BYTES);

    let mut indexed = TantivyDocument::default();
    indexed.add_text(fields.key, document_key(tenant, &document.id));
    indexed.add_text(fields.tenant, tenant.as_str());
    indexed.add_text(fields.kind, document.kind.as_str());
    indexed.add_text(fields.language, primary_subtag(&document.locale));
    for audience in &document.audiences {
        indexed.add_text(fields.audiences, audience);
    }
    for product in &document.products {
        indexed.add_text(fields.products, product);
    }
    indexed.add_text(fields.group, document.group());
    add_analyzed(
        &mut indexed,
        fields.title,
        analyzer,
        &scope,
        &document.title,
    );
    add_analyzed(
        &mut indexed,
        fields.summary,
        analyzer,
        &scope,
        &summary_text,
    );
    add_analyzed(&mut indexed, fields.body, analyzer, &scope, &body_text);
    add_pairs(
        &mut indexed,
        fields.pairs,
        analyzer,
        &scope,
        &[
            document.title.as_str(),
            summary_text.as_str(),
            body_text.as_str(),
        ],
    );
    add_prefixes(
        &mut indexed,
        fields.prefixes,
        &scope,
        &[document.title.as_str(), summary_text.as_str()],
    );
    if let Some(updated_at) = document.updated_at_timestamp() {
        indexed.add_date(
            fields.updated_at,
            tantivy::DateTime::from_timestamp_secs(updated_at.unix_timestamp()),
        );
    }
    let stored = StoredDocument {
        tenant: tenant.to_string(),
        document: document.clone(),
        body_text,
    };
    let source = serde_json::to_vec(&stored).expect("a stored document always serializes");
    indexed.add_bytes(fields.source, &source);
    indexed
}

fn add_analyzed(
    indexed: &mut TantivyDocument,
    field: Field,
    analyzer: &Analyzer,
    scope: &str,
    text: &str,
) {
    let mut tokens = Vec::new();
    analyzer.for_each_term(text, |word, term| {
        tokens.push(Token {
            offset_from: word.offset_from,
            offset_to: word.offset_to,
            position: tokens.len(),
            text: scoped(scope, &term),
            position_length: 1,
        });
    });
    add_tokens(indexed, field, tokens);
}

fn add_pairs(
    indexed: &mut TantivyDocument,
    field: Field,
    analyzer: &Analyzer,
    scope: &str,
    texts: &[&str],
) {
    let mut tokens = Vec::new();
    for text in texts {
        analyzer.for_each_pair(text, |pair| {
            tokens.push(Token {
                offset_from: 0,
                offset_to: 0,
                position: tokens.len(),
                text: scoped(scope, &pair),
                position_length: 1,
            });
        });
    }
    add_tokens(indexed, field, tokens);
}

fn add_prefixes(indexed: &mut TantivyDocument, field: Field, scope: &str, texts: &[&str]) {
    let mut tokens = Vec::new();
    for text in texts {
        for_each_word(text, |word| {
            let folded = fold(word.surface);
            let char_ends: Vec<usize> = folded
                .char_indices()
                .map(|(offset, character)| offset + character.len_utf8())
                .collect();
            for length in MIN_PREFIX_CHARS..=char_ends.len().min(MAX_PREFIX_CHARS) {
                tokens.push(Token {
                    offset_from: word.offset_from,
                    offset_to: word.offset_to,
                    position: tokens.len(),
                    text: scoped(scope, &folded[..char_ends[length - 1]]),
                    position_length: 1,
                });
            }
        });
    }
    add_tokens(indexed, field, tokens);
}

fn truncate_at_char_boundary(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

/// Adds terms deflect analysed itself; the field's tokenizer is bypassed.
fn add_tokens(indexed: &mut TantivyDocument, field: Field, tokens: Vec<Token>) {
    indexed.add_pre_tokenized_text(
        field,
        PreTokenizedString {
            text: String::new(),
            tokens,
        },
    );
}
