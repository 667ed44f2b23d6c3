//! Builds deflect documents from source items: the HTML body becomes clean text with
//! its headings as sections, and the whole goes through the same validation as the
//! admin API.

use crate::domain::{ContentDocument, DocumentInput, FieldProblem};
use crate::text::sections::html_to_sectioned_text;

/// Returns the document of `input` whose body is `html_body` (HTML), or what is wrong
/// with it.
pub fn synced_document(
    mut input: DocumentInput,
    html_body: Option<&str>,
) -> Result<ContentDocument, Vec<FieldProblem>> {
    let sectioned = html_to_sectioned_text(html_body.unwrap_or_default());
    input.body = Some(sectioned.text);
    let mut document = ContentDocument::parse(input, None)?;
    document.sections = Some(sectioned.sections);
    Ok(document)
}
