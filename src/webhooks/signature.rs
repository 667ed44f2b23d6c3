//! Verifies that a webhook delivery comes from the tenant's helpdesk, before anything in
//! it is parsed: Zendesk's signature, Freshdesk's shared secret, Standard Webhooks.
//!
//! Every function here is pure (headers, body, clock and keys in; a verdict out), so the
//! property tests below run the production verifiers over tens of thousands of forged
//! deliveries without HTTP. Each tenant may hold two secrets per provider (a rotation);
//! a delivery passes when one of them verifies it. MACs and secrets are compared in
//! constant time. The reasons of a rejection are kept for tests and debug logs only:
//! callers answer every one of them with the same 401.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// Zendesk's signature of `timestamp + body`, base64.
pub const ZENDESK_SIGNATURE: &str = "x-zendesk-webhook-signature";
/// When Zendesk signed the delivery (ISO 8601).
pub const ZENDESK_TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";
/// One id per delivery attempt of a Zendesk webhook invocation; the same on retries.
pub const ZENDESK_INVOCATION_ID: &str = "x-zendesk-webhook-invocation-id";
/// Standard Webhooks: the message id (the same on retries), its Unix time and the
/// space-separated `v1,<base64>` signatures.
pub const STANDARD_ID: &str = "webhook-id";
pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE: &str = "webhook-signature";
/// Thinkific's signature: the hex HMAC-SHA256 of the raw body.
pub const THINKIFIC_SIGNATURE: &str = "x-thinkific-hmac-sha256";
/// The prefix of Standard Webhooks secrets; the rest is the base64 key.
const STANDARD_SECRET_PREFIX: &str = "whsec_";
/// Delivery ids longer than this are refused (they become part of a Redis key digest).
const MAX_DELIVERY_ID_BYTES: usize = 256;
/// Shared secrets and signing keys shorter than this are refused at startup.
pub const MIN_SECRET_BYTES: usize = 16;

/// Reads a request header by its lowercase name.
pub trait HeaderSource {
    fn header(&self, name: &str) -> Option<&str>;
}

/// Why a delivery was not accepted. Never shown to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The tenant is unknown or has no secret for this provider.
    UnknownTenant,
    MissingHeader(&'static str),
    MalformedHeader(&'static str),
    /// The timestamp is further than the tolerance from the server's clock.
    StaleTimestamp,
    /// No secret of the tenant produces the signature (or equals the shared secret).
    BadSignature,
}

/// A delivery that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// The sender's id of the delivery, the same on its retries (none for Freshdesk,
    /// whose deliveries are recognised by their ticket, event and update time).
    pub delivery_id: Option<String>,
}

/// HMAC keys of one tenant and provider: one, or two during a rotation.
pub struct SigningKeys {
    keys: Vec<SecretSlice<u8>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SigningKeys({} keys)", self.keys.len())
    }
}

impl SigningKeys {
    /// Keys that are the secrets' own bytes (Zendesk's signing secret).
    pub fn from_secrets(secrets: &[SecretString]) -> Result<SigningKeys, String> {
        let keys = checked_secrets(secrets)?
            .into_iter()
            .map(|bytes| SecretSlice::from(bytes.to_vec()))
            .collect();
        Ok(SigningKeys { keys })
    }

    /// Keys of Standard Webhooks secrets: `whsec_` and the base64 of the key.
    pub fn from_standard_secrets(secrets: &[SecretString]) -> Result<SigningKeys, String> {
        check_secret_count(secrets)?;
        let mut keys = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let encoded = secret
                .expose_secret()
                .strip_prefix(STANDARD_SECRET_PREFIX)
                .ok_or("a Standard Webhooks secret starts with `whsec_`")?;
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| "a Standard Webhooks secret is `whsec_` and base64")?;
            if key.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "a Standard Webhooks key must be at least {MIN_SECRET_BYTES} bytes"
                ));
            }
            keys.push(SecretSlice::from(key));
        }
        Ok(SigningKeys { keys })
    }

    /// Returns whether one of the keys signed `parts` (concatenated) with `signature`.
    fn any_signed(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        let mut verified = false;
        for key in &self.keys {
            let mut mac = HmacSha256::new_from_slice(key.expose_secret())
                .expect("hmac takes keys of any length");
            for part in parts {
                mac.update(part);
            }
            // Every key is tried, so the time taken does not say which one matched.
            verified |= mac.verify_slice(signature).is_ok();
        }
        verified
    }
}

/// Digests of a tenant's shared secrets (Freshdesk), compared in constant time.
pub struct SharedSecrets {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SharedSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SharedSecrets({} secrets)", self.digests.len())
    }
}

impl SharedSecrets {
    pub fn new(secrets: &[SecretString]) -> Result<SharedSecrets, String> {
        let digests = checked_secrets(secrets)?
            .into_iter()
            .map(|bytes| Sha256::digest(bytes).into())
            .collect();
        Ok(SharedSecrets { digests })
    }

    /// Compares digests rather than the secrets, so neither a secret's length nor the
    /// position of the first wrong byte shows in the time taken.
    fn contains(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for digest in &self.digests {
            found |= digest.ct_eq(&candidate);
        }
        found.into()
    }
}

fn check_secret_count(secrets: &[SecretString]) -> Result<(), String> {
    if secrets.is_empty() || secrets.len() > 2 {
        return Err("webhook_secrets holds one secret, or two during a rotation".to_owned());
    }
    Ok(())
}

/// Returns the bytes of one or two secrets of at least [`MIN_SECRET_BYTES`].
fn checked_secrets(secrets: &[SecretString]) -> Result<Vec<&[u8]>, String> {
    check_secret_count(secrets)?;
    let mut checked = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a webhook secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        checked.push(bytes);
    }
    Ok(checked)
}

/// Verifies a Zendesk delivery: `X-Zendesk-Webhook-Signature` is
/// base64(HMAC-SHA256(secret, timestamp + body)) with the timestamp of
/// `X-Zendesk-Webhook-Signature-Timestamp` within `tolerance_seconds` of `now`.
pub fn verify_zendesk(
    keys: &SigningKeys,
    headers: &(impl HeaderSource + ?Sized),
    body: &[u8],
    now: OffsetDateTime,
    tolerance_seconds: i64,
) -> Result<VerifiedDelivery, Rejection> {
    let signature = required(headers, ZENDESK_SIGNATURE)?;
    let timestamp = required(headers, ZENDESK_TIMESTAMP)?;
    let invocation_id = delivery_id(headers, ZENDESK_INVOCATION_ID)?;
    let signed_at = OffsetDateTime::parse(timestamp.trim(), &Rfc3339)
        .map_err(|_| Rejection::MalformedHeader(ZENDESK_TIMESTAMP))?;
    check_freshness(signed_at.unix_timestamp(), now, tolerance_seconds)?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| Rejection::MalformedHeader(ZENDESK_SIGNATURE))?;
    if !keys.any_signed(&[timestamp.as_bytes(), body], &signature) {
        return Err(Rejection::BadSignature);
    }
    Ok(VerifiedDelivery {
        delivery_id: Some(invocation_id),
    })
}

/// Verifies a Freshdesk delivery: automation webhooks are not signed, so the rule sends
/// one of the tenant's shared secrets, in `secret_header` or as HTTP Basic credentials
/// (Freshdesk's "requires authentication": the secret as password, or as the API key,
/// which Freshdesk sends as the user name).
pub fn verify_freshdesk(
    secrets: &SharedSecrets,
    secret_header: &str,
    headers: &(impl HeaderSource + ?Sized),
) -> Result<VerifiedDelivery, Rejection> {
    if let Some(value) = headers.header(secret_header) {
        return match secrets.contains(value.trim()) {
            true => Ok(VerifiedDelivery { delivery_id: None }),
            false => Err(Rejection::BadSignature),
        };
    }
    let authorization = headers
        .header("authorization")
        .ok_or(Rejection::MissingHeader("authorization"))?;
    let (user, password) =
        basic_credentials(authorization).ok_or(Rejection::MalformedHeader("authorization"))?;
    // Both are compared whatever the first gives, to take the same time either way.
    let password_matches = secrets.contains(&password);
    let user_matches = secrets.contains(&user);
    if password_matches || user_matches {
        Ok(VerifiedDelivery { delivery_id: None })
    } else {
        Err(Rejection::BadSignature)
    }
}

/// Verifies a Standard Webhooks delivery: one of the `v1,<base64>` signatures of
/// `webhook-signature` is HMAC-SHA256(key, `id.timestamp.body`), the timestamp (Unix
/// seconds) within `tolerance_seconds` of `now`.
pub fn verify_standard(
    keys: &SigningKeys,
    headers: &(impl HeaderSource + ?Sized),
    body: &[u8],
    now: OffsetDateTime,
    tolerance_seconds: i64,
) -> Result<VerifiedDelivery, Rejection> {
    let message_id = delivery_id(headers, STANDARD_ID)?;
    let timestamp = required(headers, STANDARD_TIMESTAMP)?;
    let signatures = required(headers, STANDARD_SIGNATURE)?;
    let is_decimal = !timestamp.is_empty() && timestamp.bytes().all(|byte| byte.is_ascii_digit());
    let seconds: i64 = is_decimal
        .then(|| timestamp.parse().ok())
        .flatten()
        .ok_or(Rejection::MalformedHeader(STANDARD_TIMESTAMP))?;
    check_freshness(seconds, now, tolerance_seconds)?;
    let signed_parts: [&[u8]; 5] = [
        message_id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        body,
    ];
    let mut verified = false;
    for entry in signatures.split_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            continue;
        };
        verified |= keys.any_signed(&signed_parts, &signature);
    }
    if !verified {
        return Err(Rejection::BadSignature);
    }
    Ok(VerifiedDelivery {
        delivery_id: Some(message_id),
    })
}

/// Verifies a Thinkific delivery: `X-Thinkific-Hmac-Sha256` is the hex
/// HMAC-SHA256 of the raw body under the site's API key (or the app's client secret).
///
/// Thinkific signs no timestamp, so a replayed delivery verifies; replays are caught by
/// the event id instead (and recording a completion twice changes nothing).
pub fn verify_thinkific(
    keys: &SigningKeys,
    headers: &(impl HeaderSource + ?Sized),
    body: &[u8],
) -> Result<VerifiedDelivery, Rejection> {
    let signature = required(headers, THINKIFIC_SIGNATURE)?;
    let signature =
        decode_hex(signature.trim()).ok_or(Rejection::MalformedHeader(THINKIFIC_SIGNATURE))?;
    if !keys.any_signed(&[body], &signature) {
        return Err(Rejection::BadSignature);
    }
    Ok(VerifiedDelivery { delivery_id: None })
}

/// Decodes the 64 hex digits of a SHA-256 MAC (either case).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|start| u8::from_str_radix(&text[start..start + 2], 16).ok())
        .collect()
}

fn required<'headers>(
    headers: &'headers (impl HeaderSource + ?Sized),
    name: &'static str,
) -> Result<&'headers str, Rejection> {
    match headers.header(name) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(Rejection::MissingHeader(name)),
    }
}

/// A delivery id header: printable, without whitespace, of bounded length.
fn delivery_id(
    headers: &(impl HeaderSource + ?Sized),
    name: &'static str,
) -> Result<String, Rejection> {
    let value = required(headers, name)?.trim();
    let printable = value.bytes().all(|byte| byte.is_ascii_graphic());
    if value.len() > MAX_DELIVERY_ID_BYTES || !printable {
        return Err(Rejection::MalformedHeader(name));
    }
    Ok(value.to_owned())
}

fn check_freshness(
    signed_at_seconds: i64,
    now: OffsetDateTime,
    tolerance_seconds: i64,
) -> Result<(), Rejection> {
    let skew = signed_at_seconds.saturating_sub(now.unix_timestamp());
    if skew.saturating_abs() > tolerance_seconds {
        return Err(Rejection::StaleTimestamp);
    }
    Ok(())
}

/// Returns the user name and password of `Basic <base64(user:password)>`.
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;

    /// Signs like Zendesk does: base64(HMAC-SHA256(secret, timestamp + body)).
    fn zendesk_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Signs like Standard Webhooks: `v1,` and base64(HMAC-SHA256(key, `id.timestamp.body`))
    /// with the key of a `whsec_` secret.
    fn standard_signature(secret: &str, message_id: &str, timestamp: &str, body: &[u8]) -> String {
        let key = secret
            .strip_prefix(STANDARD_SECRET_PREFIX)
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .unwrap_or_default();
        let mut mac = HmacSha256::new_from_slice(&key).expect("hmac takes keys of any length");
        for part in [
            message_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body,
        ] {
            mac.update(part);
        }
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    const ZENDESK_SECRET: &str = "dGhpcyBpcyBhIHplbmRlc2sgc2VjcmV0";
    const OLD_ZENDESK_SECRET: &str = "the-previous-zendesk-signing-secret";
    const FRESHDESK_SECRET: &str = "a-long-freshdesk-shared-secret";
    const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const TOLERANCE: i64 = 300;
    const NOW_SECONDS: i64 = 1_790_000_000;

    impl HeaderSource for [(&str, String)] {
        fn header(&self, name: &str) -> Option<&str> {
            self.iter()
                .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW_SECONDS).unwrap()
    }

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values
            .iter()
            .map(|value| SecretString::from((*value).to_owned()))
            .collect()
    }

    fn zendesk_keys() -> SigningKeys {
        SigningKeys::from_secrets(&secrets(&[ZENDESK_SECRET, OLD_ZENDESK_SECRET])).unwrap()
    }

    fn standard_keys() -> SigningKeys {
        SigningKeys::from_standard_secrets(&secrets(&[STANDARD_SECRET])).unwrap()
    }

    fn freshdesk_secrets() -> SharedSecrets {
        SharedSecrets::new(&secrets(&[FRESHDESK_SECRET])).unwrap()
    }

    fn iso(seconds: i64) -> String {
        OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap()
            .format(&Rfc3339)
            .unwrap()
    }

    fn zendesk_headers(secret: &str, seconds: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        let timestamp = iso(seconds);
        vec![
            (
                ZENDESK_SIGNATURE,
                zendesk_signature(secret, &timestamp, body),
            ),
            (ZENDESK_TIMESTAMP, timestamp),
            (ZENDESK_INVOCATION_ID, "inv-1".to_owned()),
        ]
    }

    fn standard_headers(secret: &str, seconds: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        let timestamp = seconds.to_string();
        vec![
            (STANDARD_ID, "msg_1".to_owned()),
            (
                STANDARD_SIGNATURE,
                standard_signature(secret, "msg_1", &timestamp, body),
            ),
            (STANDARD_TIMESTAMP, timestamp),
        ]
    }

    const THINKIFIC_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

    fn thinkific_keys() -> SigningKeys {
        SigningKeys::from_secrets(&secrets(&[THINKIFIC_SECRET])).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Signs like Thinkific: hex(HMAC-SHA256(key, body)).
    fn thinkific_signature(secret: &str, body: &[u8]) -> String {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// Thinkific's headers; it signs no time, so `_signed_at` changes nothing.
    fn thinkific_headers(secret: &str, _signed_at: i64, body: &[u8]) -> Headers {
        vec![(THINKIFIC_SIGNATURE, thinkific_signature(secret, body))]
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn a_zendesk_delivery_signed_with_either_rotated_secret_is_accepted() {
        let body = br#"{"type":"zen:event-type:ticket.created"}"#;
        for secret in [ZENDESK_SECRET, OLD_ZENDESK_SECRET] {
            let headers = zendesk_headers(secret, NOW_SECONDS - 10, body);
            let verified = verify_zendesk(&zendesk_keys(), &headers[..], body, now(), TOLERANCE);
            assert_eq!(verified.unwrap().delivery_id.as_deref(), Some("inv-1"));
        }
    }

    #[test]
    fn zendesk_signs_the_timestamp_text_as_sent() {
        // The example of Zendesk's documentation: the MAC covers the header's text.
        let body = b"{}";
        let signature = zendesk_signature("secret", "2024-04-17T17:18:10Z", body);
        let mut mac = HmacSha256::new_from_slice(b"secret").unwrap();
        mac.update(b"2024-04-17T17:18:10Z{}");
        assert_eq!(signature, STANDARD.encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn a_standard_webhooks_delivery_is_accepted_with_one_of_several_signatures() {
        let body = br#"{"type":"ticket.created"}"#;
        let mut headers = standard_headers(STANDARD_SECRET, NOW_SECONDS, body);
        headers[1].1 = format!("v1,Zm9vYmFy v1a,bm90LWEtc2ln {}", headers[1].1);
        let verified = verify_standard(&standard_keys(), &headers[..], body, now(), TOLERANCE);
        assert_eq!(verified.unwrap().delivery_id.as_deref(), Some("msg_1"));
    }

    #[test]
    fn a_freshdesk_secret_is_accepted_in_its_header_or_as_basic_credentials() {
        let secrets = freshdesk_secrets();
        let header = "x-deflect-webhook-secret";
        let in_header = vec![(header, FRESHDESK_SECRET.to_owned())];
        let as_password = vec![("authorization", basic("freshdesk", FRESHDESK_SECRET))];
        let as_api_key = vec![("authorization", basic(FRESHDESK_SECRET, "X"))];
        for headers in [in_header, as_password, as_api_key] {
            assert!(verify_freshdesk(&secrets, header, &headers[..]).is_ok());
        }
        let wrong = [(header, "a-long-freshdesk-shared-secreT".to_owned())];
        assert_eq!(
            verify_freshdesk(&secrets, header, &wrong[..]),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn a_thinkific_delivery_is_accepted_with_its_hex_signature_in_either_case() {
        let body = br#"{"resource":"lesson","action":"completed"}"#;
        let signature = thinkific_signature(THINKIFIC_SECRET, body);
        for value in [signature.clone(), signature.to_uppercase()] {
            let headers = [(THINKIFIC_SIGNATURE, value)];
            assert!(verify_thinkific(&thinkific_keys(), &headers[..], body).is_ok());
        }
        let missing: [(&str, String); 0] = [];
        assert_eq!(
            verify_thinkific(&thinkific_keys(), &missing[..], body),
            Err(Rejection::MissingHeader(THINKIFIC_SIGNATURE))
        );
    }

    #[test]
    fn secrets_that_are_short_or_too_many_are_refused_at_startup() {
        assert!(SigningKeys::from_secrets(&secrets(&["short"])).is_err());
        assert!(SigningKeys::from_secrets(&secrets(&[])).is_err());
        assert!(SigningKeys::from_secrets(&secrets(&[ZENDESK_SECRET; 3])).is_err());
        assert!(SigningKeys::from_standard_secrets(&secrets(&[ZENDESK_SECRET])).is_err());
        assert!(SharedSecrets::new(&secrets(&["short"])).is_err());
    }

    type Headers = Vec<(&'static str, String)>;
    /// Signs a body at a Unix time with a secret, as one provider does.
    type Signer = fn(&str, i64, &[u8]) -> Headers;
    /// A production verifier, at the tests' clock and tolerance.
    type Verifier =
        fn(&SigningKeys, &[(&str, String)], &[u8]) -> Result<VerifiedDelivery, Rejection>;

    /// What is done to a genuine delivery to forge one.
    #[derive(Debug, Clone)]
    enum Forgery {
        /// One byte of the body changed.
        FlipBodyByte { position: usize, mask: u8 },
        /// Bytes added to the body.
        AppendToBody(Vec<u8>),
        /// The body cut short.
        TruncateBody(usize),
        /// Signed correctly, but too long ago or too far ahead.
        Stale { seconds_off: i64 },
        /// Another timestamp put in the header without signing it again.
        ReplacedTimestamp { seconds_off: i64 },
        /// Signed with a secret the tenant does not hold.
        WrongSecret(String),
        /// One of the required headers left out (by index).
        MissingHeader(usize),
        /// One byte of the signature changed.
        FlipSignatureByte { position: usize, mask: u8 },
        /// For Standard Webhooks: another message id, the signature kept.
        ReplacedId(String),
    }

    fn forgery() -> impl Strategy<Value = Forgery> {
        let off = prop_oneof![
            (TOLERANCE + 1)..(TOLERANCE + 10_000_000),
            -(TOLERANCE + 10_000_000)..-TOLERANCE
        ];
        prop_oneof![
            (any::<usize>(), 1..=255u8)
                .prop_map(|(position, mask)| Forgery::FlipBodyByte { position, mask }),
            proptest::collection::vec(any::<u8>(), 1..16).prop_map(Forgery::AppendToBody),
            any::<usize>().prop_map(Forgery::TruncateBody),
            off.clone()
                .prop_map(|seconds_off| Forgery::Stale { seconds_off }),
            (1i64..100_000).prop_map(|seconds_off| Forgery::ReplacedTimestamp { seconds_off }),
            "[a-zA-Z0-9_-]{16,40}".prop_map(Forgery::WrongSecret),
            (0usize..3).prop_map(Forgery::MissingHeader),
            (any::<usize>(), 1..=255u8)
                .prop_map(|(position, mask)| Forgery::FlipSignatureByte { position, mask }),
            "[a-z0-9_]{1,24}".prop_map(Forgery::ReplacedId),
        ]
    }

    /// A signed delivery: body and the headers a provider sends, with `forgery` done to it.
    fn forge(
        forgery: &Forgery,
        body: &[u8],
        genuine_secret: &str,
        sign: Signer,
        signature_header: &str,
        timestamp_header: &str,
        id_header: &str,
    ) -> (Vec<u8>, Headers) {
        let mut body = body.to_vec();
        let mut headers = sign(genuine_secret, NOW_SECONDS, &body);
        match forgery {
            Forgery::FlipBodyByte { position, mask } => {
                if body.is_empty() {
                    body.push(*mask);
                } else {
                    let position = position % body.len();
                    body[position] ^= mask;
                }
            }
            Forgery::AppendToBody(extra) => body.extend_from_slice(extra),
            Forgery::TruncateBody(cut) => {
                if body.is_empty() {
                    body.push(b'x');
                } else {
                    body.truncate(cut % body.len());
                }
            }
            Forgery::Stale { seconds_off } => {
                headers = sign(genuine_secret, NOW_SECONDS + seconds_off, &body);
            }
            Forgery::ReplacedTimestamp { seconds_off } => {
                let resigned_later = sign(genuine_secret, NOW_SECONDS + seconds_off, &body);
                let timestamp = header_of(&resigned_later, timestamp_header);
                set_header(&mut headers, timestamp_header, timestamp);
            }
            Forgery::WrongSecret(secret) => {
                let wrong = if signature_header == STANDARD_SIGNATURE {
                    format!("whsec_{}", STANDARD.encode(secret))
                } else {
                    secret.clone()
                };
                headers = sign(&wrong, NOW_SECONDS, &body);
            }
            Forgery::MissingHeader(index) => {
                let names = [signature_header, timestamp_header, id_header];
                let name = names[index % names.len()];
                headers.retain(|(candidate, _)| *candidate != name);
            }
            Forgery::FlipSignatureByte { position, mask } => {
                let signature = header_of(&headers, signature_header);
                let flip = |raw: &mut Vec<u8>| {
                    let position = position % raw.len();
                    raw[position] ^= mask;
                };
                let flipped = if signature_header == THINKIFIC_SIGNATURE {
                    let mut raw = decode_hex(&signature).unwrap();
                    flip(&mut raw);
                    hex(&raw)
                } else {
                    let (prefix, encoded) = match signature.strip_prefix("v1,") {
                        Some(encoded) => ("v1,", encoded.to_owned()),
                        None => ("", signature.clone()),
                    };
                    let mut raw = STANDARD.decode(encoded).unwrap();
                    flip(&mut raw);
                    format!("{prefix}{}", STANDARD.encode(raw))
                };
                set_header(&mut headers, signature_header, flipped);
            }
            Forgery::ReplacedId(id) => {
                if id_header == STANDARD_ID {
                    let genuine = header_of(&headers, STANDARD_ID);
                    let replaced = if *id == genuine {
                        format!("{id}x")
                    } else {
                        id.clone()
                    };
                    set_header(&mut headers, STANDARD_ID, replaced);
                } else {
                    // Zendesk does not sign its invocation id: a new one is a stale
                    // replay instead, which must fail on its timestamp.
                    headers = sign(genuine_secret, NOW_SECONDS - TOLERANCE - 1, &body);
                    set_header(&mut headers, id_header, id.clone());
                }
            }
        }
        (body, headers)
    }

    fn header_of(headers: &[(&'static str, String)], name: &str) -> String {
        headers
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| value.clone())
            .unwrap()
    }

    fn set_header(headers: &mut [(&'static str, String)], name: &str, value: String) {
        for (candidate, current) in headers.iter_mut() {
            if *candidate == name {
                *current = value.clone();
            }
        }
    }

    /// A signature scheme as the property tests drive it.
    struct Scheme {
        secret: &'static str,
        keys: fn() -> SigningKeys,
        sign: Signer,
        verify: Verifier,
        /// The signature, timestamp and delivery id headers.
        headers: [&'static str; 3],
    }

    const ZENDESK_SCHEME: Scheme = Scheme {
        secret: ZENDESK_SECRET,
        keys: zendesk_keys,
        sign: zendesk_headers,
        verify: |keys, headers, body| verify_zendesk(keys, headers, body, now(), TOLERANCE),
        headers: [ZENDESK_SIGNATURE, ZENDESK_TIMESTAMP, ZENDESK_INVOCATION_ID],
    };

    const STANDARD_SCHEME: Scheme = Scheme {
        secret: STANDARD_SECRET,
        keys: standard_keys,
        sign: standard_headers,
        verify: |keys, headers, body| verify_standard(keys, headers, body, now(), TOLERANCE),
        headers: [STANDARD_SIGNATURE, STANDARD_TIMESTAMP, STANDARD_ID],
    };

    /// Thinkific has one header, the signature, so every header the forgeries remove is
    /// it; it signs neither a time nor an id, so only forgeries of body, secret and
    /// signature apply (replays are caught by the event id, not the signature).
    const THINKIFIC_SCHEME: Scheme = Scheme {
        secret: THINKIFIC_SECRET,
        keys: thinkific_keys,
        sign: thinkific_headers,
        verify: |keys, headers, body| verify_thinkific(keys, headers, body),
        headers: [THINKIFIC_SIGNATURE; 3],
    };

    fn thinkific_forgery() -> impl Strategy<Value = Forgery> {
        forgery().prop_filter("thinkific signs no time or id", |forgery| {
            !matches!(
                forgery,
                Forgery::Stale { .. } | Forgery::ReplacedTimestamp { .. } | Forgery::ReplacedId(_)
            )
        })
    }

    /// Checks that the genuine delivery of `body` passes the production verifier and its
    /// forgery does not.
    fn check_forgery_is_refused(
        scheme: &Scheme,
        body: &[u8],
        forgery: &Forgery,
    ) -> Result<(), TestCaseError> {
        let keys = (scheme.keys)();
        let genuine = (scheme.sign)(scheme.secret, NOW_SECONDS, body);
        prop_assert!((scheme.verify)(&keys, &genuine, body).is_ok());
        let [signature, timestamp, id] = scheme.headers;

        let (body, headers) = forge(
            forgery,
            body,
            scheme.secret,
            scheme.sign,
            signature,
            timestamp,
            id,
        );

        let verdict = (scheme.verify)(&keys, &headers, &body);
        prop_assert!(verdict.is_err(), "{:?} was accepted", forgery);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 10_000,
            ..crate::proptest_settings::regressions_kept_in_tests()
        })]

        #[test]
        fn no_forged_zendesk_delivery_is_accepted(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            forgery in forgery(),
        ) {
            check_forgery_is_refused(&ZENDESK_SCHEME, &body, &forgery)?;
        }

        #[test]
        fn no_forged_standard_webhooks_delivery_is_accepted(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            forgery in forgery(),
        ) {
            check_forgery_is_refused(&STANDARD_SCHEME, &body, &forgery)?;
        }

        #[test]
        fn no_forged_thinkific_delivery_is_accepted(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            forgery in thinkific_forgery(),
        ) {
            check_forgery_is_refused(&THINKIFIC_SCHEME, &body, &forgery)?;
        }

        #[test]
        fn no_freshdesk_delivery_without_the_shared_secret_is_accepted(
            candidate in prop_oneof![
                "[ -~]{0,64}",
                (0..FRESHDESK_SECRET.len(), proptest::char::range(' ', '~')).prop_map(
                    |(position, replacement)| {
                        let mut tampered: Vec<char> = FRESHDESK_SECRET.chars().collect();
                        tampered[position] = replacement;
                        tampered.into_iter().collect::<String>()
                    }
                ),
            ],
            use_basic_auth in any::<bool>(),
            as_user in any::<bool>(),
            left_out in any::<bool>(),
        ) {
            prop_assume!(candidate.trim() != FRESHDESK_SECRET);
            let secrets = freshdesk_secrets();
            let header = "x-deflect-webhook-secret";
            let headers: Vec<(&str, String)> = match (left_out, use_basic_auth, as_user) {
                (true, _, _) => vec![("x-other-header", FRESHDESK_SECRET.to_owned())],
                (false, false, _) => vec![(header, candidate.clone())],
                (false, true, true) => vec![("authorization", basic(&candidate, "X"))],
                (false, true, false) => vec![("authorization", basic("freshdesk", &candidate))],
            };

            let verdict = verify_freshdesk(&secrets, header, &headers[..]);

            prop_assert!(verdict.is_err(), "{:?} was accepted", headers);
        }
    }
}
