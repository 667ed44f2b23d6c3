use std::collections::HashMap;
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

/// A setting each tenant may set for itself (`tenants.<id>.<name>`), with one default for
/// the tenants that do not.
#[derive(Debug, Clone)]
pub struct PerTenant<T> {
    default: T,
    own: HashMap<TenantId, T>,
}

impl<T> PerTenant<T> {
    /// Every tenant gets `default` until [`PerTenant::set`] gives it its own value.
    pub fn new(default: T) -> PerTenant<T> {
        PerTenant {
            default,
            own: HashMap::new(),
        }
    }

    pub fn set(&mut self, tenant: TenantId, value: T) {
        self.own.insert(tenant, value);
    }

    /// Returns `tenant`'s own value, or the default.
    pub fn get(&self, tenant: &TenantId) -> &T {
        self.own.get(tenant).unwrap_or(&self.default)
    }

    /// Applies `convert` to the default and to every tenant's own value.
    pub fn map<U>(self, convert: impl Fn(T) -> U) -> PerTenant<U> {
        PerTenant {
            default: convert(self.default),
            own: self
                .own
                .into_iter()
                .map(|(tenant, value)| (tenant, convert(value)))
                .collect(),
        }
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

    #[test]
    fn a_tenant_without_its_own_value_gets_the_default() {
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let mut percentages = PerTenant::new(10.0);
        percentages.set(acme.clone(), 50.0);

        let doubled = percentages.map(|percent| percent * 2.0);

        assert_eq!(*doubled.get(&acme), 100.0);
        assert_eq!(*doubled.get(&globex), 20.0);
    }
}
