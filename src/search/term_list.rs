//! Hands deflect's own analysis to tantivy as plain text: a list of finished index terms
//! separated by [`TERM_SEPARATOR`], split again by a trivial tokenizer.
//!
//! deflect analyses text itself (per-document language, tenant-scoped terms, word pairs,
//! prefixes). tantivy's way to accept finished terms, `PreTokenizedString`, serializes
//! every token to JSON and back inside the document, which cost a quarter of all
//! indexing time; a separated list costs one string per field and no per-token
//! allocation.

use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};

/// The name text fields name as their tokenizer (see `index_schema/schema.toml`).
pub(crate) const TERM_LIST_TOKENIZER: &str = "deflect_term_list";

/// Separates terms; no term contains it (words are letters and digits, pairs join two
/// words with a space, tenant ids are `[a-z0-9_-]`). ASCII, so it is found byte-wise.
const TERM_SEPARATOR: char = '\u{1e}';

/// Builds the term list of one field.
#[derive(Debug, Default)]
pub(crate) struct TermList {
    text: String,
}

impl TermList {
    /// Appends one term, scoped to a tenant: `scope` followed by `parts` joined by a
    /// space (one part for a word, two for a word pair).
    pub fn push_scoped(&mut self, scope: &str, parts: &[&str]) {
        if !self.text.is_empty() {
            self.text.push(TERM_SEPARATOR);
        }
        self.text.push_str(scope);
        for (position, part) in parts.iter().enumerate() {
            if position > 0 {
                self.text.push(' ');
            }
            self.text.push_str(part);
        }
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// Returns the analyzer that splits a [`TermList`] back into its terms.
pub(crate) fn term_list_analyzer() -> TextAnalyzer {
    TextAnalyzer::from(TermListTokenizer::default())
}

#[derive(Clone, Default)]
struct TermListTokenizer {
    token: Token,
}

impl Tokenizer for TermListTokenizer {
    type TokenStream<'text> = TermListStream<'text>;

    fn token_stream<'text>(&'text mut self, text: &'text str) -> TermListStream<'text> {
        self.token.reset();
        TermListStream {
            remaining: text,
            offset: 0,
            token: &mut self.token,
        }
    }
}

struct TermListStream<'text> {
    remaining: &'text str,
    offset: usize,
    token: &'text mut Token,
}

impl TokenStream for TermListStream<'_> {
    fn advance(&mut self) -> bool {
        if self.remaining.is_empty() {
            return false;
        }
        let separator_at = self
            .remaining
            .bytes()
            .position(|byte| byte == TERM_SEPARATOR as u8);
        let (term, rest, consumed) = match separator_at {
            Some(end) => (
                &self.remaining[..end],
                &self.remaining[end + TERM_SEPARATOR.len_utf8()..],
                end + TERM_SEPARATOR.len_utf8(),
            ),
            None => (self.remaining, "", self.remaining.len()),
        };
        self.token.text.clear();
        self.token.text.push_str(term);
        self.token.offset_from = self.offset;
        self.token.offset_to = self.offset + term.len();
        // Starts at usize::MAX after `reset`, so the first term is at position 0.
        self.token.position = self.token.position.wrapping_add(1);
        self.offset += consumed;
        self.remaining = rest;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_list_splits_back_into_its_scoped_terms() {
        let mut list = TermList::default();
        list.push_scoped("acme\u{1f}", &["reset"]);
        list.push_scoped("acme\u{1f}", &["reset", "password"]);
        let text = list.into_text();
        let mut analyzer = term_list_analyzer();
        let mut stream = analyzer.token_stream(&text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push((stream.token().text.clone(), stream.token().position));
        }
        assert_eq!(
            terms,
            [
                ("acme\u{1f}reset".to_owned(), 0),
                ("acme\u{1f}reset password".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn an_empty_list_has_no_terms() {
        let mut analyzer = term_list_analyzer();
        let mut stream = analyzer.token_stream("");
        assert!(!stream.advance());
    }
}
