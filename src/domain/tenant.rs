use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant's id: 1-64 characters of `a-z`, `0-9`, `-` and `_`.
///
/// The id becomes part of index terms and Redis keys, so the alphabet is kept small
/// enough that it can never collide with the separators used there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<TenantId, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
            });
        if valid {
            Ok(TenantId(raw.to_owned()))
        } else {
            Err(format!(
                "tenant id `{raw}` must be 1-64 characters of a-z, 0-9, `-` and `_`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        TenantId::parse(&raw)
    }
}

impl From<TenantId> for String {
    fn from(tenant: TenantId) -> String {
        tenant.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_use_a_small_alphabet() {
        assert!(TenantId::parse("acme-eu_1").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("a\u{1f}b").is_err());
    }
}
