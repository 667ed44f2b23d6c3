//! Index terms scoped to a tenant.
//!
//! Every text term is stored as `<tenant>\u{1f}<term>`. A query for one tenant therefore
//! touches only that tenant's postings, its statistics (document frequencies) are the
//! tenant's own, and no filter clause is needed to keep tenants apart; that lets tantivy
//! use block-max WAND for the whole query.

use crate::domain::TenantId;

/// Separates the tenant from the term; tenant ids cannot contain it.
pub(crate) const SCOPE_SEPARATOR: char = '\u{1f}';

/// Returns the prefix every term of `tenant` starts with.
pub(crate) fn scope_of(tenant: &TenantId) -> String {
    let mut scope = String::with_capacity(tenant.as_str().len() + 1);
    scope.push_str(tenant.as_str());
    scope.push(SCOPE_SEPARATOR);
    scope
}

/// Returns `term` scoped to the tenant whose scope is `scope`.
pub(crate) fn scoped(scope: &str, term: &str) -> String {
    let mut scoped = String::with_capacity(scope.len() + term.len());
    scoped.push_str(scope);
    scoped.push_str(term);
    scoped
}

/// Returns the document key: unique per tenant and document id.
pub(crate) fn document_key(tenant: &TenantId, id: &str) -> String {
    scoped(&scope_of(tenant), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_terms_of_two_tenants_never_collide() {
        let acme = scope_of(&TenantId::parse("acme").unwrap());
        let acme2 = scope_of(&TenantId::parse("acme2").unwrap());
        assert_ne!(scoped(&acme, "2reset"), scoped(&acme2, "reset"));
    }
}
