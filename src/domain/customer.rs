//! The customer a ticket, an assignment or an LMS event is about.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Customer ids longer than this are refused.
pub const MAX_CUSTOMER_ID_CHARS: usize = 200;

/// A customer's id as the helpdesk, the LMS and the active-user list all name them (an
/// e-mail address or an account id): 1-200 characters without whitespace, control
/// characters or `/` (so it is one URL path segment).
///
/// The same customer must carry the same id everywhere, or their tickets, training and
/// activity are never joined up. It becomes part of Redis key names after the tenant's
/// hash tag, where any printable character is safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(raw: &str) -> Result<CustomerId, String> {
        let trimmed = raw.trim();
        let valid = !trimmed.is_empty()
            && trimmed.chars().count() <= MAX_CUSTOMER_ID_CHARS
            && !trimmed.chars().any(|character| {
                character.is_whitespace() || character.is_control() || character == '/'
            });
        if valid {
            Ok(CustomerId(trimmed.to_owned()))
        } else {
            Err(format!(
                "a customer id is 1-{MAX_CUSTOMER_ID_CHARS} characters without whitespace or `/`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        CustomerId::parse(&raw)
    }
}

impl From<CustomerId> for String {
    fn from(customer: CustomerId) -> String {
        customer.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_and_account_ids_are_customer_ids() {
        assert_eq!(
            CustomerId::parse(" ana@example.com ").unwrap().as_str(),
            "ana@example.com"
        );
        assert!(CustomerId::parse("8447388090494").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("two words").is_err());
        assert!(CustomerId::parse("a/b").is_err());
        assert!(CustomerId::parse(&"x".repeat(201)).is_err());
    }
}
