//! Reading the part of a tenant's snapshot that one content source owns.
//!
//! Content sync decides what to upsert and delete by comparing what a source lists with
//! what deflect holds from it (by id prefix). With the content log on, the log's snapshot
//! is what every instance converges to; this instance's index may lag behind it (the
//! follower has not applied the latest batches yet) or hold documents the log never had
//! (an index loaded before the log was turned on). Planning against the snapshot keeps a
//! sync from skipping a deletion or an upsert the log still needs.

use super::{parse_snapshot_page, ContentLog, ContentLogError, SNAPSHOT_PAGE_DOCUMENTS};
use crate::domain::{ContentDocument, TenantId};

impl ContentLog {
    /// Returns every document of `tenant`'s snapshot whose id starts with `id_prefix`,
    /// read in pages (`HSCAN … MATCH <prefix>*`, the prefix's glob characters escaped).
    #[tracing::instrument(name = "read snapshot by id prefix", skip_all, fields(tenant = %tenant, id_prefix = id_prefix))]
    pub async fn snapshot_documents_with_id_prefix(
        &self,
        tenant: &TenantId,
        id_prefix: &str,
    ) -> Result<Vec<ContentDocument>, ContentLogError> {
        let pattern = glob_pattern_matching_prefix(id_prefix);
        let key = self.keys.documents(tenant);
        let mut documents = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next_cursor, fields): (u64, Vec<String>) = self
                .redis
                .run(|mut connection| {
                    let mut command = redis::cmd("HSCAN");
                    command
                        .arg(&key)
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SNAPSHOT_PAGE_DOCUMENTS);
                    async move { command.query_async(&mut connection).await }
                })
                .await?;
            // MATCH already filters; the check keeps a pattern mistake from ever handing
            // a sync documents of another source to delete.
            let id_prefix_owned = id_prefix.to_owned();
            let page =
                parse_snapshot_page(tenant, fields, move |id| id.starts_with(&id_prefix_owned))
                    .await?;
            documents.extend(page);
            if next_cursor == 0 {
                return Ok(documents);
            }
            cursor = next_cursor;
        }
    }
}

/// Returns the Redis glob pattern that matches exactly the strings starting with
/// `prefix`: its glob characters (`*`, `?`, `[`, `]`, `\`) escaped, then `*`.
fn glob_pattern_matching_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for character in prefix.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('*');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_prefix_becomes_itself_followed_by_a_star() {
        assert_eq!(glob_pattern_matching_prefix("zd-"), "zd-*");
        assert_eq!(glob_pattern_matching_prefix(""), "*");
    }

    #[test]
    fn the_glob_characters_of_a_prefix_are_escaped() {
        assert_eq!(
            glob_pattern_matching_prefix(r"lms*[x]?\-"),
            r"lms\*\[x\]\?\\-*"
        );
    }
}
