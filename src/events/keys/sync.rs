//! The key names of content sync, under a tenant's base (so under its hash tag), one
//! pair per source (`zendesk`, `freshdesk`, `catalog`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `sync:<source>:cursor` | hash | `cursor` (where the next incremental run starts), `etag` (of the catalog feed), `full_at` (unix seconds of the last full listing); written only after the index commit |
//! | `sync:<source>:lock` | string, TTL | the token of the instance syncing the source now (`sync.lock_seconds`) |

use super::TenantKeys;

/// Key names of one tenant's sync of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncKeys {
    base: String,
}

impl TenantKeys {
    /// The keys of the content sync of `source` (`zendesk`, `freshdesk`, `catalog`).
    pub fn sync(&self, source: &str) -> SyncKeys {
        SyncKeys {
            base: format!("{}sync:{source}:", self.base),
        }
    }
}

impl SyncKeys {
    pub fn cursor(&self) -> String {
        format!("{}cursor", self.base)
    }

    pub fn lock(&self) -> String {
        format!("{}lock", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::super::KeySpace;
    use crate::domain::TenantId;

    #[test]
    fn sync_keys_share_the_tenant_hash_tag_and_name_their_source() {
        // Arrange
        let keys = KeySpace::new("deflect:").unwrap();
        let tenant = TenantId::parse("acme").unwrap();

        // Act
        let sync = keys.tenant(&tenant).sync("zendesk");

        // Assert
        assert_eq!(sync.cursor(), "deflect:{t:acme}:sync:zendesk:cursor");
        assert_eq!(sync.lock(), "deflect:{t:acme}:sync:zendesk:lock");
    }
}
