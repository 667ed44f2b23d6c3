//! BM25 statistics of one tenant.
//!
//! Terms are tenant-scoped, so document frequencies are already the tenant's own. The
//! document count and the field lengths BM25 averages over must be the tenant's too, or
//! one tenant's upload would shift another tenant's scores and abstention. They are
//! computed once per tenant and index generation (a pass over the tenant's documents'
//! field norms) and reused until the next commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, Term, TERMINATED};

use super::term_lookups::TermLookups;
use crate::domain::TenantId;

/// Document count and total field lengths of one tenant.
#[derive(Debug)]
pub(crate) struct TenantTotals {
    pub documents: u64,
    tokens: HashMap<Field, u64>,
}

/// Which commit of which index generation totals were computed on: tantivy numbers the
/// searcher generations of each reader from zero, so after a rebuild switched the
/// serving index those numbers repeat, and the index generation tells them apart.
type CommitIdentity = (u64, u64);

/// Tenant totals by tenant, valid for one commit of one index generation.
#[derive(Default)]
pub(crate) struct TenantTotalsCache {
    entries: Mutex<HashMap<TenantId, (CommitIdentity, Arc<TenantTotals>)>>,
}

impl TenantTotalsCache {
    /// Returns the totals of `tenant` in `searcher`'s generation, computing them on the
    /// first query after a commit. `index_generation` is the number of the generation
    /// `searcher` reads.
    pub fn totals(
        &self,
        index_generation: u64,
        searcher: &Searcher,
        tenant_field: Field,
        text_fields: &[Field],
        tenant: &TenantId,
    ) -> tantivy::Result<Arc<TenantTotals>> {
        let generation = (index_generation, searcher.generation().generation_id());
        if let Some((cached_generation, totals)) = self.lock().get(tenant) {
            if *cached_generation == generation {
                return Ok(totals.clone());
            }
        }
        let totals = Arc::new(compute_totals(searcher, tenant_field, text_fields, tenant)?);
        self.lock()
            .insert(tenant.clone(), (generation, totals.clone()));
        Ok(totals)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TenantId, (CommitIdentity, Arc<TenantTotals>)>> {
        // The map holds no invariant a panicking holder could break.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn compute_totals(
    searcher: &Searcher,
    tenant_field: Field,
    text_fields: &[Field],
    tenant: &TenantId,
) -> tantivy::Result<TenantTotals> {
    let tenant_term = Term::from_field_text(tenant_field, tenant.as_str());
    let mut documents = 0u64;
    let mut tokens: HashMap<Field, u64> = text_fields.iter().map(|field| (*field, 0)).collect();
    for segment_reader in searcher.segment_readers() {
        let inverted_index = segment_reader.inverted_index(tenant_field)?;
        let Some(mut postings) =
            inverted_index.read_postings(&tenant_term, IndexRecordOption::Basic)?
        else {
            continue;
        };
        let mut norm_readers = Vec::with_capacity(text_fields.len());
        for field in text_fields {
            norm_readers.push((*field, segment_reader.get_fieldnorms_reader(*field)?));
        }
        // Deleted documents count until a merge drops them, as they do in tantivy's
        // document frequencies (a term's frequency may never exceed the count).
        let mut doc = postings.doc();
        while doc != TERMINATED {
            documents += 1;
            for (field, norms) in &norm_readers {
                *tokens.entry(*field).or_default() += u64::from(norms.fieldnorm(doc));
            }
            doc = postings.advance();
        }
    }
    Ok(TenantTotals { documents, tokens })
}

/// The statistics tantivy's BM25 reads, for one tenant.
pub(crate) struct TenantStatistics<'search> {
    /// Document frequencies come from the search's memo of the term dictionary.
    pub lookups: &'search TermLookups<'search>,
    pub totals: Arc<TenantTotals>,
}

impl Bm25StatisticsProvider for TenantStatistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        match self.totals.tokens.get(&field) {
            Some(tokens) => Ok((*tokens).max(1)),
            None => Bm25StatisticsProvider::total_num_tokens(self.lookups.searcher(), field),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.totals.documents.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.lookups.doc_freq(term)
    }
}
