//! Keeps helpdesk API calls away from deflect's own network: a base URL that names, or
//! resolves to, a loopback, private, link-local (cloud metadata) or otherwise
//! non-public address is refused, unless `webhooks.outbox.allow_private_addresses` (for
//! the outbox) or `sync.allow_private_addresses` (for content sync).
//!
//! Names are checked by the resolver the HTTP client connects with, at every call, so a
//! name that resolved to a public address at startup and to a private one later (DNS
//! rebinding) is still refused; addresses written in the URL never reach a resolver
//! and are checked before the call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// A name or address refused because it is not a public internet address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to a loopback or private address ({address}); set allow_private_addresses ([webhooks.outbox] or [sync]) to allow it")]
pub struct ForbiddenAddress {
    pub host: String,
    pub address: IpAddr,
}

/// Returns whether `address` is on the public internet: not loopback, private,
/// link-local, shared (carrier-grade NAT), unspecified, multicast, broadcast,
/// documentation or reserved, in IPv4 or IPv6 (IPv4-mapped ones by their IPv4).
pub fn is_public_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [first, second, third, _] = address.octets();
    let carrier_grade_nat = first == 100 && (64..128).contains(&second);
    let ietf_protocol = first == 192 && second == 0 && third == 0;
    let benchmarking = first == 198 && (second == 18 || second == 19);
    let reserved = first >= 240;
    let this_network = first == 0;
    !(address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_documentation()
        || carrier_grade_nat
        || ietf_protocol
        || benchmarking
        || reserved
        || this_network)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first_segment = address.segments()[0];
    let documentation = first_segment == 0x2001 && address.segments()[1] == 0x0db8;
    let translated_or_discard = matches!(first_segment, 0x0064 | 0x0100);
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_unique_local()
        || address.is_unicast_link_local()
        || documentation
        || translated_or_discard)
}

/// Checks a helpdesk base URL where it is configured: https (http only with the
/// allowance), a host, and no private address written in it.
pub fn check_base_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|error| format!("`{raw}` is not a URL: {error}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Err(format!(
                "`{raw}` must use https (not {other}) unless allow_private_addresses ([webhooks.outbox] or [sync]) is set"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(format!(
            "`{raw}` must be only scheme, host and port (credentials have settings of their own)"
        ));
    }
    if !allow_private {
        check_literal_host(&url).map_err(|error| error.to_string())?;
    }
    Ok(url)
}

/// Refuses a URL whose host is a non-public IP address written out (such hosts are
/// connected to without asking a resolver).
pub fn check_literal_host(url: &Url) -> Result<(), ForbiddenAddress> {
    let host = url.host_str().unwrap_or_default();
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(address) = unbracketed.parse::<IpAddr>() else {
        return Ok(());
    };
    if is_public_address(address) {
        Ok(())
    } else {
        Err(ForbiddenAddress {
            host: address.to_string(),
            address,
        })
    }
}

/// The resolver of the helpdesk HTTP client: the system's, refusing any name that has a
/// non-public address among its answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(forbidden) = addresses
                .iter()
                .find(|address| !is_public_address(address.ip()))
            {
                return Err(Box::new(ForbiddenAddress {
                    host,
                    address: forbidden.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn public(text: &str) -> bool {
        is_public_address(text.parse().unwrap())
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(address), "{address}");
        }
        for address in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(public(address), "{address}");
        }
    }

    #[test]
    fn base_urls_need_https_a_host_and_no_private_literal_without_the_allowance() {
        assert!(check_base_url("https://acme.zendesk.com", false).is_ok());
        assert!(check_base_url("http://acme.zendesk.com", false).is_err());
        assert!(check_base_url("https://127.0.0.1:8443", false).is_err());
        assert!(check_base_url("https://[::1]", false).is_err());
        assert!(check_base_url("https://user:pw@acme.zendesk.com", false).is_err());
        assert!(check_base_url("http://127.0.0.1:9000", true).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_loopback_addresses() {
        let resolved = PublicOnlyResolver
            .resolve("localhost".parse().unwrap())
            .await;
        let error = resolved.err().expect("localhost must be refused");
        assert!(
            error.downcast_ref::<ForbiddenAddress>().is_some(),
            "{error}"
        );
    }

    proptest! {
        #![proptest_config(crate::proptest_settings::regressions_kept_in_tests())]

        #[test]
        fn no_address_of_a_private_ipv4_range_is_public(host in any::<u32>(), range in 0usize..6) {
            let (network, prefix): (u32, u32) = [
                (0x7f00_0000, 8), (0x0a00_0000, 8), (0xac10_0000, 12),
                (0xc0a8_0000, 16), (0xa9fe_0000, 16), (0x6440_0000, 10),
            ][range];
            let address = Ipv4Addr::from(network | (host >> prefix));
            prop_assert!(!is_public_address(IpAddr::V4(address)), "{}", address);
            let mapped = IpAddr::V6(address.to_ipv6_mapped());
            prop_assert!(!is_public_address(mapped), "{}", mapped);
        }
    }
}
