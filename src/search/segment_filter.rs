//! deflect's optional filters (language, kind, audience, product) resolved to one
//! segment's fast-field ordinals, checked per candidate document.
//!
//! Checking them per candidate, instead of as `Must` clauses, keeps the filters out of
//! the scoring loop: only documents that would enter the top-k are looked at.

use tantivy::columnar::StrColumn;
use tantivy::{DocId, SegmentReader};

use super::query::ContentFilters;

/// The filters of one query resolved to one segment's term ordinals.
pub(crate) struct SegmentFilter {
    language: Option<(StrColumn, u64)>,
    kinds: Option<(StrColumn, Vec<u64>)>,
    /// Documents without audiences are for everyone; `None` as ordinal means the
    /// requested audience does not occur in this segment.
    audience: Option<(StrColumn, Option<u64>)>,
    product: Option<(StrColumn, u64)>,
}

impl SegmentFilter {
    /// Returns `None` when no document of the segment can pass.
    pub fn new(
        reader: &SegmentReader,
        filters: &ContentFilters,
    ) -> tantivy::Result<Option<SegmentFilter>> {
        let fast_fields = reader.fast_fields();
        let column = |name: &str| -> tantivy::Result<Option<StrColumn>> { fast_fields.str(name) };
        let ordinal = |column: &StrColumn, value: &str| -> tantivy::Result<Option<u64>> {
            Ok(column.dictionary().term_ord(value.as_bytes())?)
        };

        let language = match &filters.language {
            None => None,
            Some(language) => {
                let Some(column) = column("language")? else {
                    return Ok(None);
                };
                let Some(ord) = ordinal(&column, language)? else {
                    return Ok(None);
                };
                Some((column, ord))
            }
        };
        let kinds = if filters.kinds.is_empty() {
            None
        } else {
            let Some(column) = column("kind")? else {
                return Ok(None);
            };
            let mut ords = Vec::new();
            for kind in &filters.kinds {
                if let Some(ord) = ordinal(&column, kind.as_str())? {
                    ords.push(ord);
                }
            }
            if ords.is_empty() {
                return Ok(None);
            }
            Some((column, ords))
        };
        let audience = match &filters.audience {
            None => None,
            Some(audience) => match column("audiences")? {
                // No document of the segment names an audience: all are for everyone.
                None => None,
                Some(column) => {
                    let ord = ordinal(&column, audience)?;
                    Some((column, ord))
                }
            },
        };
        let product = match &filters.product {
            None => None,
            Some(product) => {
                let Some(column) = column("products")? else {
                    return Ok(None);
                };
                let Some(ord) = ordinal(&column, product)? else {
                    return Ok(None);
                };
                Some((column, ord))
            }
        };
        Ok(Some(SegmentFilter {
            language,
            kinds,
            audience,
            product,
        }))
    }

    pub fn accepts(&self, doc: DocId) -> bool {
        if let Some((column, wanted)) = &self.language {
            if column.ords().first(doc) != Some(*wanted) {
                return false;
            }
        }
        if let Some((column, wanted)) = &self.kinds {
            match column.ords().first(doc) {
                Some(kind) if wanted.contains(&kind) => {}
                _ => return false,
            }
        }
        if let Some((column, wanted)) = &self.audience {
            let mut audiences = column.term_ords(doc).peekable();
            let for_everyone = audiences.peek().is_none();
            if !for_everyone && !audiences.any(|audience| Some(audience) == *wanted) {
                return false;
            }
        }
        if let Some((column, wanted)) = &self.product {
            if !column.term_ords(doc).any(|product| product == *wanted) {
                return false;
            }
        }
        true
    }
}
