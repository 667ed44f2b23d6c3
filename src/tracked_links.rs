//! Tracked links: the `/r/<token>` addresses deflect posts into tickets, so that a click
//! on a lesson (`lesson_opened`) and "This solved my problem" (`resolved`) are recorded.
//!
//! Lessons an agent assigned to a customer are posted with tracked links too: following
//! one marks the customer's assignment opened.
//!
//! A token is the link's data and an HMAC of it under `webhooks.link_secret`, so nobody
//! can make one for another ticket, tenant, customer or lesson. It never carries a
//! destination:
//! a lesson link redirects to the lesson's URL in the content index, so the route cannot
//! be used to send people anywhere else (no open redirect).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{CustomerId, TenantId};
use crate::helpdesk::comment::Language;
use crate::helpdesk::Helpdesk;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token (128 bits).
const MAC_BYTES: usize = 16;
/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_CHARS: usize = 1024;
/// Separates the MAC's input from anything else signed with the same secret.
const DOMAIN: &[u8] = b"deflect-tracked-link-v1.";
/// The shortest accepted `webhooks.link_secret`.
pub const MIN_SECRET_CHARS: usize = 32;

/// What a tracked link leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkTarget {
    /// A lesson posted into the ticket (by id).
    Lesson(String),
    /// "This solved my problem".
    Solved,
    /// A lesson an agent assigned to the customer from the ticket.
    Assigned {
        lesson_id: String,
        customer_id: CustomerId,
    },
}

impl LinkTarget {
    /// The lesson the link leads to, if it leads to one.
    pub fn lesson_id(&self) -> Option<&str> {
        match self {
            LinkTarget::Lesson(lesson_id) | LinkTarget::Assigned { lesson_id, .. } => {
                Some(lesson_id)
            }
            LinkTarget::Solved => None,
        }
    }
}

/// The data of one tracked link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedLink {
    pub tenant: TenantId,
    pub helpdesk: Helpdesk,
    pub ticket_id: String,
    pub target: LinkTarget,
    pub language: Language,
}

impl TrackedLink {
    /// The session of the ticket's post-submission events.
    pub fn ticket_session(&self) -> String {
        ticket_session(self.helpdesk, &self.ticket_id)
    }
}

/// The session id of a submitted ticket's "while you wait" events.
pub fn ticket_session(helpdesk: Helpdesk, ticket_id: &str) -> String {
    format!("ticket:{}:{ticket_id}", helpdesk.as_str())
}

/// The compact form that is signed: `[tenant, helpdesk, ticket, lesson or "", language]`
/// (an empty lesson is the "solved" link; lesson ids are never empty), and for an
/// assigned lesson the customer after them. The two lengths tell the forms apart, so
/// links posted before assignments existed still verify.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Compact {
    Ticket(String, Helpdesk, String, String, Language),
    Assigned(String, Helpdesk, String, String, Language, CustomerId),
}

/// Makes and checks tracked links.
pub struct LinkSigner {
    key: SecretSlice<u8>,
    /// deflect's public address, without a trailing slash.
    public_url: String,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LinkSigner")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl LinkSigner {
    pub fn new(secret: &SecretString, public_url: &str) -> Result<LinkSigner, String> {
        if secret.expose_secret().chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "webhooks.link_secret must be at least {MIN_SECRET_CHARS} characters"
            ));
        }
        let public_url = public_url.trim().trim_end_matches('/');
        let is_web_url = public_url.starts_with("https://") || public_url.starts_with("http://");
        if !is_web_url || public_url.contains(char::is_whitespace) {
            return Err(format!(
                "webhooks.public_url `{public_url}` must be an http(s) address"
            ));
        }
        Ok(LinkSigner {
            key: SecretSlice::from(secret.expose_secret().as_bytes().to_vec()),
            public_url: public_url.to_owned(),
        })
    }

    /// Returns the full address of `link`: `<public_url>/r/<token>`.
    pub fn url(&self, link: &TrackedLink) -> String {
        format!("{}/r/{}", self.public_url, self.token(link))
    }

    /// Returns the token of `link`: base64url of its compact form, `.`, base64url of the
    /// first 16 bytes of its HMAC-SHA256.
    pub fn token(&self, link: &TrackedLink) -> String {
        let tenant = link.tenant.as_str().to_owned();
        let ticket_id = link.ticket_id.clone();
        let compact = match &link.target {
            LinkTarget::Lesson(lesson) => Compact::Ticket(
                tenant,
                link.helpdesk,
                ticket_id,
                lesson.clone(),
                link.language,
            ),
            LinkTarget::Solved => Compact::Ticket(
                tenant,
                link.helpdesk,
                ticket_id,
                String::new(),
                link.language,
            ),
            LinkTarget::Assigned {
                lesson_id,
                customer_id,
            } => Compact::Assigned(
                tenant,
                link.helpdesk,
                ticket_id,
                lesson_id.clone(),
                link.language,
                customer_id.clone(),
            ),
        };
        let json = serde_json::to_vec(&compact).expect("a link always serializes");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = self.mac(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&mac[..MAC_BYTES]))
    }

    /// Returns the link of `token` when this deflect signed it; `None` for anything
    /// forged, altered or malformed.
    pub fn verify(&self, token: &str) -> Option<TrackedLink> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let (payload, encoded_mac) = token.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(encoded_mac).ok()?;
        if mac.len() != MAC_BYTES {
            return None;
        }
        let expected = self.mac(payload.as_bytes());
        if !bool::from(expected[..MAC_BYTES].ct_eq(&mac)) {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let (tenant, helpdesk, ticket_id, language, target) = match serde_json::from_slice(&json)
            .ok()?
        {
            Compact::Ticket(tenant, helpdesk, ticket_id, lesson, language) => {
                let target = if lesson.is_empty() {
                    LinkTarget::Solved
                } else {
                    LinkTarget::Lesson(lesson)
                };
                (tenant, helpdesk, ticket_id, language, target)
            }
            Compact::Assigned(tenant, helpdesk, ticket_id, lesson_id, language, customer_id) => {
                let target = LinkTarget::Assigned {
                    lesson_id,
                    customer_id,
                };
                (tenant, helpdesk, ticket_id, language, target)
            }
        };
        Some(TrackedLink {
            tenant: TenantId::parse(&tenant).ok()?,
            helpdesk,
            ticket_id,
            target,
            language,
        })
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret())
            .expect("hmac takes keys of any length");
        mac.update(DOMAIN);
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(
            &SecretString::from("a-test-link-secret-of-32-characters!".to_owned()),
            "https://deflect.example/",
        )
        .unwrap()
    }

    fn lesson_link() -> TrackedLink {
        TrackedLink {
            tenant: TenantId::parse("acme").unwrap(),
            helpdesk: Helpdesk::Zendesk,
            ticket_id: "35436".to_owned(),
            target: LinkTarget::Lesson("lesson-reset-password".to_owned()),
            language: Language::En,
        }
    }

    #[test]
    fn a_signed_link_verifies_back_to_its_data() {
        let signer = signer();
        let solved = TrackedLink {
            target: LinkTarget::Solved,
            ..lesson_link()
        };
        let assigned = TrackedLink {
            target: LinkTarget::Assigned {
                lesson_id: "lesson-reset-password".to_owned(),
                customer_id: CustomerId::parse("ana@example.com").unwrap(),
            },
            ..lesson_link()
        };
        for link in [lesson_link(), solved, assigned] {
            let url = signer.url(&link);
            let token = url.strip_prefix("https://deflect.example/r/").unwrap();
            assert_eq!(signer.verify(token), Some(link));
        }
    }

    #[test]
    fn a_link_of_another_secret_does_not_verify() {
        let other = LinkSigner::new(
            &SecretString::from("another-link-secret-of-32-characters".to_owned()),
            "https://deflect.example",
        )
        .unwrap();
        assert_eq!(signer().verify(&other.token(&lesson_link())), None);
    }

    #[test]
    fn short_secrets_and_non_web_addresses_are_refused() {
        let short = SecretString::from("short".to_owned());
        assert!(LinkSigner::new(&short, "https://deflect.example").is_err());
        let long = SecretString::from("x".repeat(40));
        assert!(LinkSigner::new(&long, "javascript:alert(1)").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2_000,
            ..crate::proptest_settings::regressions_kept_in_tests()
        })]

        #[test]
        fn no_altered_token_verifies(position in any::<usize>(), replacement in "[A-Za-z0-9_.-]") {
            let signer = signer();
            let token = signer.token(&lesson_link());
            let position = position % token.len();
            let mut altered: Vec<char> = token.chars().collect();
            prop_assume!(altered[position].to_string() != replacement);
            altered[position] = replacement.chars().next().unwrap();
            let altered: String = altered.into_iter().collect();

            prop_assert_eq!(signer.verify(&altered), None);
        }

        #[test]
        fn no_made_up_token_verifies(payload in "[A-Za-z0-9_-]{0,80}", mac in "[A-Za-z0-9_-]{0,30}") {
            prop_assert_eq!(signer().verify(&format!("{payload}.{mac}")), None);
        }
    }
}
