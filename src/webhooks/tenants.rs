//! Each tenant's helpdesk setup, checked once at startup: the secrets its webhooks are
//! verified with, and the API account "while you wait" writes back with.

use std::collections::{BTreeMap, HashMap};

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::configuration::TenantSettings;
use crate::domain::TenantId;
use crate::helpdesk::address_guard::check_base_url;
use crate::helpdesk::freshdesk::FreshdeskClient;
use crate::helpdesk::zendesk::ZendeskClient;
use crate::helpdesk::{Helpdesk, HelpdeskClient};

use crate::training::lms::LmsShape;
use crate::training::progress::ItemKind;
use crate::training::LmsSettings;

use super::settings::{FreshdeskSettings, OutboxSettings, ZendeskSettings};
use super::signature::{
    verify_freshdesk, verify_standard, verify_thinkific, verify_zendesk, HeaderSource, Rejection,
    SharedSecrets, SigningKeys, VerifiedDelivery, THINKIFIC_SIGNATURE,
};
use super::Provider;

/// What deflect may do in a tenant's helpdesk account.
#[derive(Debug)]
struct HelpdeskAccount {
    client: Option<HelpdeskClient>,
    while_you_wait: bool,
    solve_when_resolved: bool,
}

#[derive(Debug)]
struct ZendeskTenant {
    keys: SigningKeys,
    account: HelpdeskAccount,
}

#[derive(Debug)]
struct FreshdeskTenant {
    secrets: SharedSecrets,
    secret_header: String,
    account: HelpdeskAccount,
}

/// How a tenant's LMS signs its webhooks, and how its ids become content ids.
#[derive(Debug)]
struct LmsTenant {
    /// Deliveries in deflect's generic shape (Standard Webhooks).
    generic: Option<SigningKeys>,
    thinkific: Option<SigningKeys>,
    lesson_id_prefix: String,
    course_id_prefix: String,
}

#[derive(Debug, Default)]
struct TenantHelpdesks {
    zendesk: Option<ZendeskTenant>,
    freshdesk: Option<FreshdeskTenant>,
    generic: Option<SigningKeys>,
    lms: Option<LmsTenant>,
}

/// Every tenant's helpdesk setup.
#[derive(Debug)]
pub struct HelpdeskTenants {
    tenants: HashMap<TenantId, TenantHelpdesks>,
    /// Deliveries for unknown tenants are verified against these random keys, so that
    /// an unknown tenant takes as long to refuse as a wrong signature.
    decoy_keys: SigningKeys,
    decoy_secrets: SharedSecrets,
}

impl HelpdeskTenants {
    /// Checks and builds every tenant's setup; `http` is the outbox's HTTP client.
    pub fn from_settings(
        tenants: &BTreeMap<String, TenantSettings>,
        outbox: &OutboxSettings,
        http: &reqwest::Client,
    ) -> Result<HelpdeskTenants, String> {
        let mut by_tenant = HashMap::new();
        for (name, settings) in tenants {
            let tenant = TenantId::parse(name)?;
            let in_tenant =
                |section: &str, problem: String| format!("tenants.{name}.{section}: {problem}");
            let helpdesks = TenantHelpdesks {
                zendesk: settings
                    .zendesk
                    .as_ref()
                    .map(|zendesk| zendesk_tenant(zendesk, outbox, http))
                    .transpose()
                    .map_err(|problem| in_tenant("zendesk", problem))?,
                freshdesk: settings
                    .freshdesk
                    .as_ref()
                    .map(|freshdesk| freshdesk_tenant(freshdesk, outbox, http))
                    .transpose()
                    .map_err(|problem| in_tenant("freshdesk", problem))?,
                generic: settings
                    .generic
                    .as_ref()
                    .map(|generic| SigningKeys::from_standard_secrets(&generic.webhook_secrets))
                    .transpose()
                    .map_err(|problem| in_tenant("generic", problem))?,
                lms: settings
                    .lms
                    .as_ref()
                    .map(lms_tenant)
                    .transpose()
                    .map_err(|problem| in_tenant("lms", problem))?,
            };
            by_tenant.insert(tenant, helpdesks);
        }
        let decoy = SecretString::from(uuid::Uuid::new_v4().to_string());
        Ok(HelpdeskTenants {
            tenants: by_tenant,
            decoy_keys: SigningKeys::from_secrets(std::slice::from_ref(&decoy))?,
            decoy_secrets: SharedSecrets::new(std::slice::from_ref(&decoy))?,
        })
    }

    /// Verifies a delivery of `provider` for the tenant named in the request. Unknown
    /// tenants, tenants without this provider and bad deliveries are all rejected.
    pub fn verify(
        &self,
        provider: Provider,
        tenant_name: Option<&str>,
        headers: &(impl HeaderSource + ?Sized),
        body: &[u8],
        now: OffsetDateTime,
        tolerance_seconds: i64,
    ) -> Result<(TenantId, VerifiedDelivery), Rejection> {
        let tenant = tenant_name.and_then(|name| TenantId::parse(name).ok());
        let helpdesks = tenant.as_ref().and_then(|tenant| self.tenants.get(tenant));
        // Deliveries for tenants without this provider are checked against the decoys,
        // and refused after that.
        let (verdict, configured) = match provider {
            Provider::Zendesk => {
                let keys = helpdesks.and_then(|helpdesks| Some(&helpdesks.zendesk.as_ref()?.keys));
                let keys_or_decoy = keys.unwrap_or(&self.decoy_keys);
                let verdict = verify_zendesk(keys_or_decoy, headers, body, now, tolerance_seconds);
                (verdict, keys.is_some())
            }
            Provider::Freshdesk => {
                let freshdesk = helpdesks.and_then(|helpdesks| helpdesks.freshdesk.as_ref());
                let (secrets, header) = match freshdesk {
                    Some(freshdesk) => (&freshdesk.secrets, freshdesk.secret_header.as_str()),
                    None => (&self.decoy_secrets, "x-deflect-webhook-secret"),
                };
                (
                    verify_freshdesk(secrets, header, headers),
                    freshdesk.is_some(),
                )
            }
            Provider::Generic => {
                let keys = helpdesks.and_then(|helpdesks| helpdesks.generic.as_ref());
                let keys_or_decoy = keys.unwrap_or(&self.decoy_keys);
                let verdict = verify_standard(keys_or_decoy, headers, body, now, tolerance_seconds);
                (verdict, keys.is_some())
            }
            Provider::Lms => {
                let lms = helpdesks.and_then(|helpdesks| helpdesks.lms.as_ref());
                match lms_shape(headers) {
                    LmsShape::Thinkific => {
                        let keys = lms.and_then(|lms| lms.thinkific.as_ref());
                        let keys_or_decoy = keys.unwrap_or(&self.decoy_keys);
                        (
                            verify_thinkific(keys_or_decoy, headers, body),
                            keys.is_some(),
                        )
                    }
                    LmsShape::Generic => {
                        let keys = lms.and_then(|lms| lms.generic.as_ref());
                        let keys_or_decoy = keys.unwrap_or(&self.decoy_keys);
                        let verdict =
                            verify_standard(keys_or_decoy, headers, body, now, tolerance_seconds);
                        (verdict, keys.is_some())
                    }
                }
            }
        };
        let verified = verdict?;
        match tenant {
            Some(tenant) if configured => Ok((tenant, verified)),
            _ => Err(Rejection::UnknownTenant),
        }
    }

    fn account(&self, tenant: &TenantId, helpdesk: Helpdesk) -> Option<&HelpdeskAccount> {
        let helpdesks = self.tenants.get(tenant)?;
        match helpdesk {
            Helpdesk::Zendesk => helpdesks.zendesk.as_ref().map(|zendesk| &zendesk.account),
            Helpdesk::Freshdesk => helpdesks
                .freshdesk
                .as_ref()
                .map(|freshdesk| &freshdesk.account),
        }
    }

    /// The API client of the tenant's helpdesk account, when one is configured.
    pub fn client(&self, tenant: &TenantId, helpdesk: Helpdesk) -> Option<&HelpdeskClient> {
        self.account(tenant, helpdesk)?.client.as_ref()
    }

    /// Returns whether lessons are posted into the tenant's new tickets.
    pub fn while_you_wait(&self, tenant: &TenantId, helpdesk: Helpdesk) -> bool {
        self.account(tenant, helpdesk)
            .is_some_and(|account| account.while_you_wait)
    }

    /// Returns whether "This solved my problem" also closes the ticket.
    pub fn solves_when_resolved(&self, tenant: &TenantId, helpdesk: Helpdesk) -> bool {
        self.account(tenant, helpdesk)
            .is_some_and(|account| account.solve_when_resolved)
    }

    /// The helpdesks whose API the tenant gave deflect an account for.
    pub fn write_back_helpdesks(&self, tenant: &TenantId) -> Vec<Helpdesk> {
        [Helpdesk::Zendesk, Helpdesk::Freshdesk]
            .into_iter()
            .filter(|helpdesk| self.client(tenant, *helpdesk).is_some())
            .collect()
    }

    /// Returns whether any tenant gave deflect a helpdesk account (then the outbox
    /// worker runs: agents' assignments may be posted into tickets).
    pub fn any_write_back(&self) -> bool {
        self.tenants
            .keys()
            .any(|tenant| !self.write_back_helpdesks(tenant).is_empty())
    }

    /// The content id of an LMS lesson or course of `tenant`: its LMS id behind the
    /// tenant's prefix for that kind.
    pub fn lms_content_id(&self, tenant: &TenantId, kind: ItemKind, lms_id: &str) -> String {
        let lms = self
            .tenants
            .get(tenant)
            .and_then(|helpdesks| helpdesks.lms.as_ref());
        let prefix = match (lms, kind) {
            (Some(lms), ItemKind::Lesson) => lms.lesson_id_prefix.as_str(),
            (Some(lms), ItemKind::Course) => lms.course_id_prefix.as_str(),
            (None, _) => "",
        };
        format!("{prefix}{lms_id}")
    }

    /// Returns whether any tenant posts lessons (then tracked links must be configured).
    pub fn any_while_you_wait(&self) -> bool {
        self.tenants.values().any(|helpdesks| {
            let zendesk = helpdesks
                .zendesk
                .as_ref()
                .is_some_and(|zendesk| zendesk.account.while_you_wait);
            let freshdesk = helpdesks
                .freshdesk
                .as_ref()
                .is_some_and(|freshdesk| freshdesk.account.while_you_wait);
            zendesk || freshdesk
        })
    }
}

/// The shape of an LMS delivery, told by its signature header: Thinkific's, or
/// Standard Webhooks for deflect's generic shape.
pub fn lms_shape(headers: &(impl HeaderSource + ?Sized)) -> LmsShape {
    if headers.header(THINKIFIC_SIGNATURE).is_some() {
        LmsShape::Thinkific
    } else {
        LmsShape::Generic
    }
}

fn lms_tenant(settings: &LmsSettings) -> Result<LmsTenant, String> {
    let keys = |secrets: &[SecretString],
                make: fn(&[SecretString]) -> Result<SigningKeys, String>| {
        (!secrets.is_empty()).then(|| make(secrets)).transpose()
    };
    let generic = keys(
        &settings.webhook_secrets,
        SigningKeys::from_standard_secrets,
    )?;
    let thinkific = keys(&settings.thinkific_secrets, SigningKeys::from_secrets)?;
    if generic.is_none() && thinkific.is_none() {
        return Err("set webhook_secrets (whsec_...) or thinkific_secrets".to_owned());
    }
    let prefixes = [&settings.lesson_id_prefix, &settings.course_id_prefix];
    if prefixes.iter().any(|prefix| {
        prefix.contains(|character: char| character.is_whitespace() || character == '/')
    }) {
        return Err("id prefixes may not contain whitespace or `/`".to_owned());
    }
    Ok(LmsTenant {
        generic,
        thinkific,
        lesson_id_prefix: settings.lesson_id_prefix.clone(),
        course_id_prefix: settings.course_id_prefix.clone(),
    })
}

fn zendesk_tenant(
    settings: &ZendeskSettings,
    outbox: &OutboxSettings,
    http: &reqwest::Client,
) -> Result<ZendeskTenant, String> {
    let keys = SigningKeys::from_secrets(&settings.webhook_secrets)?;
    let client = match (&settings.base_url, &settings.api_email, &settings.api_token) {
        (Some(base_url), Some(email), Some(token)) => {
            let base = check_base_url(base_url, outbox.allow_private_addresses)?;
            Some(HelpdeskClient::Zendesk(ZendeskClient::new(
                http.clone(),
                base,
                email.trim(),
                token,
                outbox.allow_private_addresses,
            )))
        }
        (None, None, None) => None,
        _ => return Err("base_url, api_email and api_token go together".to_owned()),
    };
    Ok(ZendeskTenant {
        keys,
        account: account(
            client,
            settings.while_you_wait,
            settings.solve_when_resolved,
        )?,
    })
}

fn freshdesk_tenant(
    settings: &FreshdeskSettings,
    outbox: &OutboxSettings,
    http: &reqwest::Client,
) -> Result<FreshdeskTenant, String> {
    let secrets = SharedSecrets::new(&settings.webhook_secrets)?;
    let secret_header = settings.secret_header.trim().to_ascii_lowercase();
    let is_token = !secret_header.is_empty()
        && secret_header
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !is_token || secret_header == "authorization" {
        return Err(format!(
            "secret_header `{secret_header}` must be a header name other than authorization"
        ));
    }
    let client = match (&settings.base_url, &settings.api_key) {
        (Some(base_url), Some(api_key)) => {
            let base = check_base_url(base_url, outbox.allow_private_addresses)?;
            Some(HelpdeskClient::Freshdesk(FreshdeskClient::new(
                http.clone(),
                base,
                api_key,
                outbox.allow_private_addresses,
            )))
        }
        (None, None) => None,
        _ => return Err("base_url and api_key go together".to_owned()),
    };
    Ok(FreshdeskTenant {
        secrets,
        secret_header,
        account: account(
            client,
            settings.while_you_wait,
            settings.solve_when_resolved,
        )?,
    })
}

fn account(
    client: Option<HelpdeskClient>,
    while_you_wait: bool,
    solve_when_resolved: bool,
) -> Result<HelpdeskAccount, String> {
    if while_you_wait && client.is_none() {
        return Err("while_you_wait needs the helpdesk's base_url and API credentials".to_owned());
    }
    if solve_when_resolved && !while_you_wait {
        return Err(
            "solve_when_resolved needs while_you_wait (its link is in that comment)".to_owned(),
        );
    }
    Ok(HelpdeskAccount {
        client,
        while_you_wait,
        solve_when_resolved,
    })
}
