//! Opens (or creates) the on-disk index and checks it was built from this build's schema.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy};

use super::schema::ContentSchema;
use super::term_list::{term_list_analyzer, TERM_LIST_TOKENIZER};

/// The file inside an index directory that records which schema version built it.
const SCHEMA_MARKER_FILE: &str = "deflect-schema.json";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "the index at {path} was built with schema version {found}, but this deflect uses \
         version {expected}; stop deflect and run `deflect reindex`, which rebuilds the \
         index into the current schema beside the old one (from the content log, or from \
         the documents stored in the old index)"
    )]
    SchemaMismatch {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("failed to open the index at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: anyhow::Error,
    },
    #[error("index operation failed")]
    Tantivy(#[from] tantivy::TantivyError),
}

#[derive(Debug, Serialize, Deserialize)]
struct SchemaMarker {
    schema_version: u32,
}

/// The content index with its one reader.
#[derive(Clone)]
pub struct ContentIndex {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    pub(crate) schema: ContentSchema,
    path: PathBuf,
}

impl ContentIndex {
    /// Opens the index in `path`, creating it when the directory is missing or empty.
    /// Refuses an index built from another schema version.
    pub fn open_or_create(path: &Path) -> Result<ContentIndex, IndexError> {
        let schema = ContentSchema::bundled();
        let open_error = |source: anyhow::Error| IndexError::Open {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(path).map_err(|error| {
            open_error(anyhow::Error::new(error).context("failed to create the index directory"))
        })?;
        let is_empty = std::fs::read_dir(path)
            .map_err(|error| {
                open_error(anyhow::Error::new(error).context("failed to list the index directory"))
            })?
            .next()
            .is_none();
        let directory =
            MmapDirectory::open(path).map_err(|error| open_error(anyhow::Error::new(error)))?;

        let index = if is_empty {
            let index = Index::create(directory, schema.schema.clone(), index_settings())?;
            let marker = SchemaMarker {
                schema_version: schema.version,
            };
            std::fs::write(
                path.join(SCHEMA_MARKER_FILE),
                serde_json::to_vec_pretty(&marker).expect("the marker serializes"),
            )
            .map_err(|error| {
                open_error(anyhow::Error::new(error).context("failed to write the schema marker"))
            })?;
            index
        } else {
            check_schema_marker(path, schema.version)?;
            let index =
                Index::open(directory).map_err(|error| open_error(anyhow::Error::new(error)))?;
            // A forgotten version bump must not let a build read fields at the wrong
            // places: the fields themselves have to match too.
            if index.schema() != schema.schema {
                return Err(IndexError::SchemaMismatch {
                    path: path.to_owned(),
                    found: format!("{} with other fields", schema.version),
                    expected: schema.version,
                });
            }
            index
        };
        index
            .tokenizers()
            .register(TERM_LIST_TOKENIZER, term_list_analyzer());

        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(ContentIndex {
            index,
            reader,
            schema,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> u32 {
        self.schema.version
    }

    /// Returns how many live documents the index holds, over all tenants.
    pub fn num_documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Returns how many live documents `tenant` has.
    pub fn num_documents_of(&self, tenant: &crate::domain::TenantId) -> Result<u64, IndexError> {
        let term = tantivy::Term::from_field_text(self.schema.fields.tenant, tenant.as_str());
        let searcher = self.reader.searcher();
        let query = tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
        Ok(searcher.search(&query, &tantivy::collector::Count)? as u64)
    }
}

fn check_schema_marker(path: &Path, expected: u32) -> Result<(), IndexError> {
    let found = match std::fs::read(path.join(SCHEMA_MARKER_FILE)) {
        Ok(bytes) => match serde_json::from_slice::<SchemaMarker>(&bytes) {
            Ok(marker) if marker.schema_version == expected => return Ok(()),
            Ok(marker) => marker.schema_version.to_string(),
            Err(_) => "unknown (unreadable marker)".to_owned(),
        },
        Err(_) => "unknown (no deflect schema marker)".to_owned(),
    };
    Err(IndexError::SchemaMismatch {
        path: path.to_owned(),
        found,
        expected,
    })
}

/// Settings of a new index. The stored documents are compressed with zstd: it keeps the
/// document store about a third smaller than tantivy's default lz4 (measured on the
/// benchmark catalog), which is memory the server does not map, and only the few hits a
/// search returns are ever decompressed. Level 1 rather than 3: tantivy compresses each
/// block with a fresh context, and level 3's larger tables made `deflect index` of the
/// benchmark catalog about 6% slower for a store only 3% smaller (124 against 128 MiB);
/// reading is as fast at either level.
///
/// Blocks of 8 KiB instead of tantivy's 16: every hit decompresses the whole block that
/// holds it, and zstd was 14% of a keystroke's CPU. Half the block is about 4% more
/// keystrokes a second at saturation (interleaved pairs in three runs); the store is 4%
/// larger (139 against 134 MB at 100k documents), which the server maps
/// (benches/BENCHMARKS.md, "Eleventh run"). An index keeps the settings it was created
/// with.
fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(1),
        }),
        docstore_blocksize: DOCUMENT_STORE_BLOCK_BYTES,
        ..IndexSettings::default()
    }
}

/// Size of the document store's compressed blocks (see [`index_settings`]).
const DOCUMENT_STORE_BLOCK_BYTES: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_of_another_schema_version_is_refused_with_instructions() {
        let directory = tempfile::tempdir().unwrap();
        ContentIndex::open_or_create(directory.path()).unwrap();
        std::fs::write(
            directory.path().join(SCHEMA_MARKER_FILE),
            r#"{"schema_version": 999}"#,
        )
        .unwrap();
        let error = ContentIndex::open_or_create(directory.path())
            .err()
            .expect("a mismatched index is refused");
        let message = error.to_string();
        assert!(message.contains("version 999"), "{message}");
        assert!(message.contains("deflect reindex"), "{message}");
    }

    #[test]
    fn an_index_with_other_fields_under_the_same_version_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let mut builder = tantivy::schema::Schema::builder();
        builder.add_text_field("key", tantivy::schema::STRING);
        Index::create_in_dir(directory.path(), builder.build()).unwrap();
        let marker = SchemaMarker {
            schema_version: ContentSchema::bundled().version,
        };
        std::fs::write(
            directory.path().join(SCHEMA_MARKER_FILE),
            serde_json::to_vec(&marker).unwrap(),
        )
        .unwrap();
        let error = ContentIndex::open_or_create(directory.path())
            .err()
            .expect("an index with other fields is refused");
        assert!(error.to_string().contains("other fields"), "{error}");
    }

    #[test]
    fn a_directory_that_is_not_an_index_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("notes.txt"), "hello").unwrap();
        assert!(ContentIndex::open_or_create(directory.path()).is_err());
    }
}
