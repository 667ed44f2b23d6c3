//! Builds the tantivy schema from the declarative description in `index_schema/`.
//!
//! The description is compiled into the binary, so a build and the schema it expects can
//! never drift apart; the version recorded in an index tells whether that index was built
//! by a compatible build.

use serde::Deserialize;

use super::term_list::TERM_LIST_TOKENIZER;
use tantivy::schema::{
    DateOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
    STORED, STRING,
};

const SCHEMA_DESCRIPTION: &str = include_str!("../../index_schema/schema.toml");

/// The fields deflect reads and writes, resolved once from the schema.
#[derive(Debug, Clone, Copy)]
pub struct ContentFields {
    pub key: Field,
    pub tenant: Field,
    pub kind: Field,
    pub language: Field,
    pub audiences: Field,
    pub products: Field,
    pub group: Field,
    pub title: Field,
    pub summary: Field,
    pub body: Field,
    pub pairs: Field,
    pub prefixes: Field,
    pub updated_at: Field,
    pub source: Field,
}

/// The schema this build of deflect writes and reads.
#[derive(Debug, Clone)]
pub struct ContentSchema {
    pub version: u32,
    pub schema: Schema,
    pub fields: ContentFields,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaDescription {
    version: u32,
    field: Vec<FieldDescription>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDescription {
    name: String,
    #[serde(rename = "type")]
    field_type: FieldType,
    #[serde(default)]
    indexed: bool,
    #[serde(default)]
    fast: bool,
    #[serde(default)]
    multi: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FieldType {
    Keyword,
    Text,
    Date,
    Stored,
}

impl ContentSchema {
    /// Returns the schema described in `index_schema/schema.toml`.
    pub fn bundled() -> ContentSchema {
        ContentSchema::from_description(SCHEMA_DESCRIPTION)
            .expect("index_schema/schema.toml is valid (checked by a unit test)")
    }

    fn from_description(description: &str) -> Result<ContentSchema, String> {
        let description: SchemaDescription =
            toml::from_str(description).map_err(|error| error.to_string())?;
        let mut builder = Schema::builder();
        for field in &description.field {
            // `multi` documents intent; tantivy fields accept several values either way.
            let _ = field.multi;
            match field.field_type {
                FieldType::Keyword => {
                    let mut options = if field.indexed {
                        STRING
                    } else {
                        TextOptions::default()
                    };
                    if field.fast {
                        options = options | FAST;
                    }
                    builder.add_text_field(&field.name, options);
                }
                FieldType::Text => {
                    // Terms are produced by deflect's own analysis and handed over as a
                    // term list (src/search/term_list.rs). Positions are not needed:
                    // deflect builds no phrase queries.
                    let indexing = TextFieldIndexing::default()
                        .set_tokenizer(TERM_LIST_TOKENIZER)
                        .set_index_option(IndexRecordOption::WithFreqs);
                    builder.add_text_field(
                        &field.name,
                        TextOptions::default().set_indexing_options(indexing),
                    );
                }
                FieldType::Date => {
                    let mut options = DateOptions::default();
                    if field.fast {
                        options = options | FAST;
                    }
                    if field.indexed {
                        options = options | INDEXED;
                    }
                    builder.add_date_field(&field.name, options);
                }
                FieldType::Stored => {
                    // A string, not bytes: tantivy reads a stored bytes value back one
                    // byte at a time, a string in one piece.
                    builder.add_text_field(&field.name, STORED);
                }
            }
        }
        let schema = builder.build();
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| format!("index_schema/schema.toml lacks the field `{name}`"))
        };
        let fields = ContentFields {
            key: field("key")?,
            tenant: field("tenant")?,
            kind: field("kind")?,
            language: field("language")?,
            audiences: field("audiences")?,
            products: field("products")?,
            group: field("group")?,
            title: field("title")?,
            summary: field("summary")?,
            body: field("body")?,
            pairs: field("pairs")?,
            prefixes: field("prefixes")?,
            updated_at: field("updated_at")?,
            source: field("source")?,
        };
        Ok(ContentSchema {
            version: description.version,
            schema,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_description_is_complete() {
        let schema = ContentSchema::from_description(SCHEMA_DESCRIPTION).unwrap();
        assert!(schema.version >= 1);
    }

    #[test]
    fn a_missing_field_is_reported_by_name() {
        let error = ContentSchema::from_description(
            "version = 1\n[[field]]\nname = \"key\"\ntype = \"keyword\"\nindexed = true\n",
        )
        .unwrap_err();
        assert!(error.contains("tenant"), "{error}");
    }
}
