//! The one egress policy for every outgoing HTTP call a tenant can aim: the
//! `http_request` task and notification deliveries, checked when an endpoint
//! is saved and again at connect time.
//!
//! Refused: every address the IANA special-purpose registries mark as not
//! globally reachable (loopback, private, link-local, shared, documentation,
//! benchmarking, reserved, multicast…), and IPv6 forms that carry such an
//! IPv4 address inside (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`). IPv6 outside global unicast `2000::/3` is refused
//! whole. Names are checked on every address they resolve to, by the
//! resolver the client connects with, so a public name pointing inside the
//! network is refused too; IP literals skip the resolver and are checked on
//! the URL. The clients ignore `HTTP(S)_PROXY`/`ALL_PROXY`: a proxy would
//! resolve the name itself, past the guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why `ip` is not called, naming its range; `None` when it is public.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

/// Whether [`refusal`] refuses `ip`.
pub fn is_refused(ip: IpAddr) -> bool {
    refusal(ip).is_some()
}

/// IPv4 ranges that are not globally reachable (RFC 6890 and the IANA
/// IPv4 Special-Purpose Address Registry), longest first where they nest.
const REFUSED_V4: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "\"this network\" 0.0.0.0/8"),
    (0x0a00_0000, 8, "private-use 10.0.0.0/8"),
    (0x6440_0000, 10, "shared address space 100.64.0.0/10"),
    (0x7f00_0000, 8, "loopback 127.0.0.0/8"),
    (0xa9fe_0000, 16, "link-local 169.254.0.0/16"),
    (0xac10_0000, 12, "private-use 172.16.0.0/12"),
    (0xc000_0000, 24, "IETF protocol assignments 192.0.0.0/24"),
    (0xc000_0200, 24, "documentation 192.0.2.0/24"),
    (0xc058_6300, 24, "6to4 relay anycast 192.88.99.0/24"),
    (0xc0a8_0000, 16, "private-use 192.168.0.0/16"),
    (0xc612_0000, 15, "benchmarking 198.18.0.0/15"),
    (0xc633_6400, 24, "documentation 198.51.100.0/24"),
    (0xcb00_7100, 24, "documentation 203.0.113.0/24"),
    (0xe000_0000, 4, "multicast 224.0.0.0/4"),
    (0xf000_0000, 4, "reserved 240.0.0.0/4"),
];

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    REFUSED_V4
        .iter()
        .find(|(net, len, _)| bits >> (32 - len) == net >> (32 - len))
        .map(|(_, _, why)| *why)
}

/// IPv6 ranges inside global unicast `2000::/3` that are not globally
/// reachable (the IANA IPv6 Special-Purpose Address Registry).
const REFUSED_V6_GLOBAL: &[(u128, u8, &str)] = &[
    (0x2001_0db8 << 96, 32, "documentation 2001:db8::/32"),
    (0x2001 << 112, 23, "IETF protocol assignments 2001::/23"),
    (0x3fff << 112, 20, "documentation 3fff::/20"),
    (0x5f00 << 112, 16, "segment routing 5f00::/16"),
];

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let within = |net: u128, len: u8| bits >> (128 - len) == net >> (128 - len);
    let embedded =
        |v4: u32| refusal_v4(Ipv4Addr::from(v4)).map(|_| "an IPv6 form of a refused IPv4 address");
    // The low 32 bits (truncation intended) are the IPv4 address these forms carry.
    let low_v4 = bits as u32;
    if bits == 0 {
        return Some("unspecified ::");
    }
    if bits == 1 {
        return Some("loopback ::1");
    }
    if within(0xffff << 32, 96) {
        // IPv4-mapped: the socket connects to the IPv4 address.
        return embedded(low_v4);
    }
    if within(0, 96) {
        return Some("IPv4-compatible ::/96 (deprecated)");
    }
    if within(0x0064_ff9b << 96, 96) {
        // NAT64: the translator connects to the IPv4 address.
        return embedded(low_v4);
    }
    if within(0x2002 << 112, 16) {
        // 6to4: the IPv4 address is bits 16 to 48.
        return embedded((bits >> 80) as u32);
    }
    if !within(0x2000 << 112, 3) {
        return Some(match bits >> 120 {
            0xff => "multicast ff00::/8",
            0xfc | 0xfd => "unique local fc00::/7",
            0xfe => "link-local or site-local fe80::/9",
            _ => "outside global unicast 2000::/3",
        });
    }
    REFUSED_V6_GLOBAL
        .iter()
        .find(|(net, len, _)| within(*net, *len))
        .map(|(_, _, why)| *why)
}

/// A call refused by the policy: the host as written, the address and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} is (or resolves to) {ip}, a private or loopback address ({why}), which this server does not call (the operator can allow private addresses)"
)]
pub struct AddressRefused {
    pub host: String,
    pub ip: IpAddr,
    pub why: &'static str,
}

impl AddressRefused {
    fn check(host: &str, ip: IpAddr) -> Result<(), Self> {
        match refusal(ip) {
            Some(why) => Err(Self {
                host: host.to_owned(),
                ip,
                why,
            }),
            None => Ok(()),
        }
    }
}

/// The IP literal a URL names as its host, if it names one.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    // The URL parser has already normalised IPv4 spellings (`2130706433`,
    // `0x7f.1`) to dotted quads, and writes IPv6 literals in brackets.
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Refuses a URL whose host is a refused IP literal (names are checked by
/// the resolver at connect time).
pub fn check_url(url: &reqwest::Url) -> Result<(), AddressRefused> {
    match literal_ip(url) {
        Some(ip) => AddressRefused::check(&ip.to_string(), ip),
        None => Ok(()),
    }
}

/// Refuses `host` when it is a refused literal, or when it resolves (within
/// `timeout`) to any refused address. A name that does not resolve now is
/// let through: the connect-time check runs on every call.
pub async fn check_host(host: &str, port: u16, timeout: Duration) -> Result<(), AddressRefused> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return AddressRefused::check(host, ip);
    }
    if let Ok(Ok(addrs)) =
        tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await
    {
        for addr in addrs {
            AddressRefused::check(host, addr.ip())?;
        }
    }
    Ok(())
}

/// Resolves names and fails the call when any address is refused.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                AddressRefused::check(&host, addr.ip()).map_err(|refused| {
                    Box::new(refused) as Box<dyn std::error::Error + Send + Sync>
                })?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A client builder for tenant-aimed calls: no proxy from the environment,
/// no redirects, and (unless `allow_private`) the guarded resolver.
pub fn client_builder(allow_private: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver))
    }
}

/// The [`AddressRefused`] somewhere in a request error's source chain.
pub fn refused_in(error: &reqwest::Error) -> Option<&AddressRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<AddressRefused>() {
            return Some(refused);
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_refused_including_ipv6_forms_of_them() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.5",
            "192.88.99.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:0001::1",
            "2002:c0a8:0101::",
            "2001:db8::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
            "5f00::1",
            "100::1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
        ] {
            assert!(is_refused(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(refusal(ip.parse().unwrap()), None, "{ip} is public");
        }
    }

    #[test]
    fn a_refused_literal_in_a_url_is_named_with_its_range() {
        for url in [
            "http://[::127.0.0.1]/hook",
            "http://[::ffff:7f00:1]/",
            "https://[64:ff9b::7f00:1]:8443/",
            "http://[2002:7f00:1::]/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            let refused = check_url(&parsed).expect_err(url);
            assert!(refused.to_string().contains("does not call"), "{refused}");
        }
        let refused = check_url(&reqwest::Url::parse("http://198.18.0.1/").unwrap()).unwrap_err();
        assert_eq!(refused.why, "benchmarking 198.18.0.0/15");
        assert!(check_url(&reqwest::Url::parse("https://example.com/").unwrap()).is_ok());
        assert!(check_url(&reqwest::Url::parse("https://8.8.8.8/").unwrap()).is_ok());
    }

    #[tokio::test]
    async fn a_host_is_checked_as_a_literal_and_on_what_it_resolves_to() {
        for host in [
            "127.0.0.1",
            "[::127.0.0.1]",
            "::127.0.0.1",
            "198.18.0.1",
            "localhost",
        ] {
            assert!(
                check_host(host, 80, Duration::from_secs(5)).await.is_err(),
                "{host}"
            );
        }
        assert!(
            check_host("8.8.8.8", 80, Duration::from_secs(5))
                .await
                .is_ok()
        );
    }
}
