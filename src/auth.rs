//! API keys: which tenant a request acts for and what it may do.
//!
//! The tenant always comes from the key, never from the request body. Keys are looked
//! up by their SHA-256 digest, so neither the lookup's timing nor a memory dump reveals
//! a key, and keys are never logged.
//!
//! Keys arrive as `Authorization: Bearer <key>`, except on the beacon route: a browser's
//! `navigator.sendBeacon` cannot set headers, so the widget puts its public key in the
//! body there, and [`KeyRing::authenticate_beacon`] accepts only public (`suggest`) keys,
//! only from the tenant's browser origins.
//!
//! Operator keys (`[[operator.api_keys]]`) belong to no tenant: they are for calls that
//! act on the whole instance, every tenant's content at once (a reindex), which no
//! tenant's key, not even an admin one, may make.

use std::collections::{HashMap, HashSet};
use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::configuration::{OperatorKeySettings, TenantSettings};
use crate::domain::TenantId;
use crate::error::{ApiError, ErrorCode};

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Public key of browser widgets: suggestions and events, from allowed origins only.
    Suggest,
    /// Support agents: recommendations and training assignments.
    Agent,
    /// Content administration.
    Admin,
    /// Operations: counters and reports.
    Ops,
}

impl Scope {
    pub fn parse(raw: &str) -> Option<Scope> {
        match raw {
            "suggest" => Some(Scope::Suggest),
            "agent" => Some(Scope::Agent),
            "admin" => Some(Scope::Admin),
            "ops" => Some(Scope::Ops),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Suggest => "suggest",
            Scope::Agent => "agent",
            Scope::Admin => "admin",
            Scope::Ops => "ops",
        }
    }
}

#[derive(Debug, Clone)]
struct KeyGrant {
    tenant: TenantId,
    name: String,
    scopes: HashSet<Scope>,
}

/// All configured keys and origins.
#[derive(Debug, Default)]
pub struct KeyRing {
    grants_by_digest: HashMap<[u8; 32], KeyGrant>,
    origins_by_tenant: HashMap<TenantId, HashSet<String>>,
    all_origins: HashSet<String>,
    /// The tenant whose public key also works from pages deflect serves itself (the demo
    /// page), whatever host and port deflect is reached at.
    own_origin_tenant: Option<TenantId>,
    /// Operator keys' names by their digest.
    operator_names_by_digest: HashMap<[u8; 32], String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("invalid tenant in settings: {0}")]
    InvalidTenant(String),
    #[error("api key `{key_name}` of tenant `{tenant}` has an unknown scope `{scope}`")]
    UnknownScope {
        tenant: String,
        key_name: String,
        scope: String,
    },
    #[error("api key `{key_name}` of tenant `{tenant}` is shorter than 12 characters")]
    KeyTooShort { tenant: String, key_name: String },
    #[error("api key `{key_name}` of tenant `{tenant}` is configured twice")]
    DuplicateKey { tenant: String, key_name: String },
    #[error("operator key `{key_name}` is shorter than {MIN_OPERATOR_KEY_CHARS} characters")]
    OperatorKeyTooShort { key_name: String },
    #[error("operator key `{key_name}` is configured twice, or is also a tenant's key")]
    DuplicateOperatorKey { key_name: String },
}

/// The least length of an operator key: it rebuilds every tenant's index.
const MIN_OPERATOR_KEY_CHARS: usize = 16;

impl KeyRing {
    pub fn from_settings<'settings>(
        tenants: impl IntoIterator<Item = (&'settings String, &'settings TenantSettings)>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut ring = KeyRing::default();
        for (tenant_name, tenant_settings) in tenants {
            let tenant = TenantId::parse(tenant_name).map_err(KeyRingError::InvalidTenant)?;
            let origins: HashSet<String> = tenant_settings
                .allowed_origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_owned())
                .collect();
            ring.all_origins.extend(origins.iter().cloned());
            ring.origins_by_tenant.insert(tenant.clone(), origins);
            for key_settings in &tenant_settings.api_keys {
                let key = key_settings.key.expose_secret();
                if key.len() < 12 {
                    return Err(KeyRingError::KeyTooShort {
                        tenant: tenant_name.clone(),
                        key_name: key_settings.name.clone(),
                    });
                }
                let mut scopes = HashSet::new();
                for raw_scope in &key_settings.scopes {
                    let scope =
                        Scope::parse(raw_scope).ok_or_else(|| KeyRingError::UnknownScope {
                            tenant: tenant_name.clone(),
                            key_name: key_settings.name.clone(),
                            scope: raw_scope.clone(),
                        })?;
                    scopes.insert(scope);
                }
                let grant = KeyGrant {
                    tenant: tenant.clone(),
                    name: key_settings.name.clone(),
                    scopes,
                };
                if ring.grants_by_digest.insert(digest(key), grant).is_some() {
                    return Err(KeyRingError::DuplicateKey {
                        tenant: tenant_name.clone(),
                        key_name: key_settings.name.clone(),
                    });
                }
            }
        }
        Ok(ring)
    }

    /// Adds the operator keys `[[operator.api_keys]]`, which act on the whole instance;
    /// call it after [`KeyRing::from_settings`], so that a key that is also a tenant's is
    /// refused.
    pub fn add_operator_keys(&mut self, keys: &[OperatorKeySettings]) -> Result<(), KeyRingError> {
        for key_settings in keys {
            let key = key_settings.key.expose_secret();
            if key.chars().count() < MIN_OPERATOR_KEY_CHARS {
                return Err(KeyRingError::OperatorKeyTooShort {
                    key_name: key_settings.name.clone(),
                });
            }
            let key_digest = digest(key);
            let is_taken = self.grants_by_digest.contains_key(&key_digest)
                || self.operator_names_by_digest.contains_key(&key_digest);
            if is_taken {
                return Err(KeyRingError::DuplicateOperatorKey {
                    key_name: key_settings.name.clone(),
                });
            }
            self.operator_names_by_digest
                .insert(key_digest, key_settings.name.clone());
        }
        Ok(())
    }

    /// Lets the public key of `tenant` be used from deflect's own origin (the demo page
    /// at `/demo`), on whatever host and port the service is reached. deflect serves no
    /// other pages, so a same-origin call can only come from one of its own.
    pub fn allow_own_origin_for(&mut self, tenant: TenantId) {
        self.own_origin_tenant = Some(tenant);
    }

    /// Returns every configured tenant.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.origins_by_tenant.keys().cloned().collect()
    }

    /// Returns whether any tenant allows browser calls from `origin` (for preflights,
    /// which carry no key).
    pub fn is_known_origin(&self, origin: &str) -> bool {
        self.all_origins.contains(origin)
    }

    fn is_allowed_origin(&self, tenant: &TenantId, origin: &str) -> bool {
        self.origins_by_tenant
            .get(tenant)
            .is_some_and(|origins| origins.contains(origin))
    }

    /// Returns whether a browser call of `tenant` from `origin` is allowed: the origin is
    /// one of the tenant's, or deflect's own when the tenant is the demo tenant.
    fn is_allowed_browser_call(&self, tenant: &TenantId, origin: &BrowserOrigin) -> bool {
        self.is_allowed_origin(tenant, &origin.origin)
            || (origin.is_same_origin && self.own_origin_tenant.as_ref() == Some(tenant))
    }

    /// Authenticates a beacon of `POST /v1/events/beacon`, whose key is in its body: only
    /// a key with the public `suggest` scope, only from a browser page (an `Origin`
    /// header) on one of the tenant's origins.
    pub fn authenticate_beacon(
        &self,
        key: &str,
        request: &HttpRequest,
    ) -> Result<Caller, ApiError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(ApiError::new(
                ErrorCode::MissingApiKey,
                "a beacon carries the widget's public key as `key` in its body",
            ));
        }
        let caller = self.caller_for_key(key, request)?;
        if !caller.scopes.contains(&Scope::Suggest) {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                "beacons take only a public key (scope suggest)",
            ));
        }
        let Some(origin) = &caller.origin else {
            return Err(ApiError::new(
                ErrorCode::OriginNotAllowed,
                "beacons are accepted only from browser pages (the request has no Origin)",
            ));
        };
        if !self.is_allowed_browser_call(&caller.tenant, origin) {
            return Err(ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!("origin {} is not allowed for this key", origin.origin),
            ));
        }
        Ok(caller)
    }

    fn authenticate(&self, request: &HttpRequest) -> Result<Caller, ApiError> {
        let key = bearer_key(request)?;
        self.caller_for_key(key, request)
    }

    /// Authenticates an operator: the request's key must be an operator key. A tenant's
    /// key, whatever its scopes, is refused with 403.
    fn authenticate_operator(&self, request: &HttpRequest) -> Result<Operator, ApiError> {
        let key_digest = digest(bearer_key(request)?);
        if let Some(name) = self.operator_names_by_digest.get(&key_digest) {
            return Ok(Operator {
                key_name: name.clone(),
            });
        }
        if self.grants_by_digest.contains_key(&key_digest) {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                "this call acts on the whole instance, every tenant's content: it takes an operator key ([[operator.api_keys]] in the settings), not a tenant's key",
            ));
        }
        Err(ApiError::new(
            ErrorCode::InvalidApiKey,
            "the API key is not valid",
        ))
    }

    fn caller_for_key(&self, key: &str, request: &HttpRequest) -> Result<Caller, ApiError> {
        let grant = self
            .grants_by_digest
            .get(&digest(key))
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid"))?;
        Ok(Caller {
            tenant: grant.tenant.clone(),
            key_name: grant.name.clone(),
            scopes: grant.scopes.clone(),
            origin: BrowserOrigin::of(request),
        })
    }
}

/// Returns the key of the request's `Authorization: Bearer <key>` header.
fn bearer_key(request: &HttpRequest) -> Result<&str, ApiError> {
    let Some(authorization) = request.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorCode::MissingApiKey,
            "send an API key as `Authorization: Bearer <key>`",
        ));
    };
    authorization
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingApiKey,
                "the Authorization header must be `Bearer <key>`",
            )
        })
}

/// The page a browser call comes from (its `Origin` header).
#[derive(Debug, Clone)]
struct BrowserOrigin {
    /// Without a trailing slash.
    origin: String,
    /// The page was served by this very service: the origin's host and port are the
    /// ones the request was sent to.
    is_same_origin: bool,
}

impl BrowserOrigin {
    fn of(request: &HttpRequest) -> Option<BrowserOrigin> {
        let origin = request
            .headers()
            .get(header::ORIGIN)?
            .to_str()
            .ok()?
            .trim_end_matches('/')
            .to_owned();
        // A proxy in front may terminate TLS, so the scheme is not compared; host and
        // port are (through X-Forwarded-Host or Forwarded when a proxy sets them).
        let is_same_origin = origin.split_once("://").is_some_and(|(_, authority)| {
            authority.eq_ignore_ascii_case(request.connection_info().host())
        });
        Some(BrowserOrigin {
            origin,
            is_same_origin,
        })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub key_name: String,
    scopes: HashSet<Scope>,
    origin: Option<BrowserOrigin>,
}

impl Caller {
    /// Succeeds when the key has at least one of `accepted` scopes. A browser call
    /// (one with an `Origin`) made with a public `suggest` key must come from one of the
    /// tenant's allowed origins.
    pub fn require_any(&self, accepted: &[Scope], keys: &KeyRing) -> Result<(), ApiError> {
        let granted: Vec<Scope> = accepted
            .iter()
            .copied()
            .filter(|scope| self.scopes.contains(scope))
            .collect();
        if granted.is_empty() {
            let needed: Vec<&str> = accepted.iter().map(|scope| scope.as_str()).collect();
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!(
                    "this API key lacks the scope for this call (one of: {})",
                    needed.join(", ")
                ),
            ));
        }
        let only_public = granted == [Scope::Suggest];
        if only_public {
            if let Some(origin) = &self.origin {
                if !keys.is_allowed_browser_call(&self.tenant, origin) {
                    return Err(ApiError::new(
                        ErrorCode::OriginNotAllowed,
                        format!("origin {} is not allowed for this key", origin.origin),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The scopes a route accepts, as a type, so that the check runs in an extractor: a key
/// without the scope is refused before the request body is read.
pub trait RouteScopes {
    const ACCEPTED: &'static [Scope];
}

/// Suggestions and events: widgets' public keys and agents.
pub struct SuggestScopes;

impl RouteScopes for SuggestScopes {
    const ACCEPTED: &'static [Scope] = &[Scope::Suggest, Scope::Agent];
}

/// Support agents: recommendations and training assignments.
pub struct AgentScopes;

impl RouteScopes for AgentScopes {
    const ACCEPTED: &'static [Scope] = &[Scope::Agent];
}

/// Data feeds for reports (active customers): content administrators and operations.
pub struct AdminOrOpsScopes;

impl RouteScopes for AdminOrOpsScopes {
    const ACCEPTED: &'static [Scope] = &[Scope::Admin, Scope::Ops];
}

/// Content administration.
pub struct AdminScopes;

impl RouteScopes for AdminScopes {
    const ACCEPTED: &'static [Scope] = &[Scope::Admin];
}

/// Counters and reports.
pub struct OpsScopes;

impl RouteScopes for OpsScopes {
    const ACCEPTED: &'static [Scope] = &[Scope::Ops];
}

/// A caller whose key has one of the scopes `S` accepts (and, for a public key used from
/// a browser, an allowed origin).
pub struct Authorized<S> {
    pub caller: Caller,
    scopes: PhantomData<S>,
}

impl<S: RouteScopes> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Ready<Result<Authorized<S>, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let result = key_ring_of(request).and_then(|keys| {
            let caller = keys.authenticate(request)?;
            caller.require_any(S::ACCEPTED, keys)?;
            Ok(Authorized {
                caller,
                scopes: PhantomData,
            })
        });
        ready(result)
    }
}

/// A caller with an operator key (`[[operator.api_keys]]`), for calls on the whole
/// instance; tenants' keys are refused before the handler runs.
pub struct Operator {
    /// The key's name from the settings (never the key).
    pub key_name: String,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Ready<Result<Operator, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(key_ring_of(request).and_then(|keys| keys.authenticate_operator(request)))
    }
}

/// Returns the key ring the application registered.
fn key_ring_of(request: &HttpRequest) -> Result<&KeyRing, ApiError> {
    request
        .app_data::<web::Data<Arc<KeyRing>>>()
        .map(|keys| keys.get_ref().as_ref())
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no key ring configured"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::ApiKeySettings;
    use secrecy::SecretString;

    fn operator_key(name: &str, key: &str) -> OperatorKeySettings {
        OperatorKeySettings {
            name: name.to_owned(),
            key: SecretString::from(key.to_owned()),
        }
    }

    fn ring_with_tenant_key(key: &str) -> KeyRing {
        let tenant = TenantSettings {
            api_keys: vec![ApiKeySettings {
                name: "acme admin".to_owned(),
                key: SecretString::from(key.to_owned()),
                scopes: vec!["admin".to_owned()],
            }],
            ..TenantSettings::default()
        };
        KeyRing::from_settings([(&"acme".to_owned(), &tenant)]).unwrap()
    }

    #[test]
    fn an_operator_key_that_is_short_or_also_a_tenant_key_is_refused() {
        // Arrange
        let tenant_key = "acme-admin-key-long-enough";

        // Act
        let short =
            ring_with_tenant_key(tenant_key).add_operator_keys(&[operator_key("ops", "short-key")]);
        let shared =
            ring_with_tenant_key(tenant_key).add_operator_keys(&[operator_key("ops", tenant_key)]);
        let twice = ring_with_tenant_key(tenant_key).add_operator_keys(&[
            operator_key("first", "operator-key-0123456789"),
            operator_key("second", "operator-key-0123456789"),
        ]);

        // Assert
        assert!(matches!(
            short,
            Err(KeyRingError::OperatorKeyTooShort { .. })
        ));
        assert!(matches!(
            shared,
            Err(KeyRingError::DuplicateOperatorKey { .. })
        ));
        assert!(matches!(
            twice,
            Err(KeyRingError::DuplicateOperatorKey { .. })
        ));
    }
}
