//! The `access` section and `trusted_proxies`: which network addresses may call (IP allow
//! and deny lists, for the whole listener, per gRPC method, per REST route and per named
//! operation), and
//! which peers are proxies whose `X-Forwarded-For` / `Forwarded` is believed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// An address block in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or one address
/// (`192.0.2.7`, `::1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`: a dual-stack listener reports IPv4 peers that way.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.contains('/') {
            let net = IpNet::from_str(s).map_err(|_| {
                format!(
                    "{s:?} is not an address block: write e.g. \"10.0.0.0/8\" or \"2001:db8::/32\""
                )
            })?;
            if net.trunc() != net {
                return Err(format!(
                    "{s:?} has bits set past its prefix length: did you mean \"{}\"?",
                    net.trunc()
                ));
            }
            Ok(Cidr(net))
        } else {
            let ip = IpAddr::from_str(s).map_err(|_| {
                format!("{s:?} is not an address: write e.g. \"192.0.2.7\", \"::1\" or a block \"10.0.0.0/8\"")
            })?;
            Ok(Cidr(IpNet::from(ip)))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::from_str(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Whether `ip` is in any of `blocks`.
pub fn any_contains(blocks: &[Cidr], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    blocks.iter().any(|b| b.0.contains(&ip))
}

/// One allow and deny list. An address in `deny` is refused; when `allow` is not empty, an
/// address outside it is refused too.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessList {
    /// The only addresses let in (empty: every address not denied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Cidr>,
    /// Addresses refused, whatever `allow` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Cidr>,
}

impl AccessList {
    /// Whether `ip` may come in.
    pub fn admits(&self, ip: IpAddr) -> bool {
        !any_contains(&self.deny, ip) && (self.allow.is_empty() || any_contains(&self.allow, ip))
    }

    /// Whether the list lets everyone in.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// The `access` section: IP allow and deny lists for the whole listener, and more of them per
/// gRPC method (whichever door reaches it) and per named GraphQL operation. A request must
/// pass the listener's list and the list of everything it reaches.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// The listener's list: addresses let in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Cidr>,
    /// The listener's list: addresses refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Cidr>,
    /// Lists per gRPC method (`package.Service.Method`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub methods: BTreeMap<String, AccessList>,
    /// Lists per REST route, by method and template as the `google.api.http` rule writes it
    /// (`"GET /v1/users/{id}"`): that route only, not the method's other doors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, AccessList>,
    /// Lists per named GraphQL operation (on the GraphQL endpoint and operation endpoints).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations: BTreeMap<String, AccessList>,
}

impl AccessConfig {
    /// The listener's own list.
    pub fn listener(&self) -> AccessList {
        AccessList {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_and_single_addresses_parse() {
        assert!(
            Cidr::from_str("10.0.0.0/8")
                .unwrap()
                .contains(ip("10.2.3.4"))
        );
        assert!(
            !Cidr::from_str("10.0.0.0/8")
                .unwrap()
                .contains(ip("11.0.0.1"))
        );
        assert!(Cidr::from_str("::1").unwrap().contains(ip("::1")));
        assert!(
            Cidr::from_str("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8::7"))
        );
        assert!(
            Cidr::from_str("192.0.2.7")
                .unwrap()
                .contains(ip("192.0.2.7"))
        );
        assert!(
            !Cidr::from_str("192.0.2.7")
                .unwrap()
                .contains(ip("192.0.2.8"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = Cidr::from_str("10.0.0.1/8").unwrap_err();
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert!(
            Cidr::from_str("10.0.0.0/33")
                .unwrap_err()
                .contains("not an address block")
        );
        assert!(
            Cidr::from_str("localhost")
                .unwrap_err()
                .contains("not an address")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_blocks() {
        let b = Cidr::from_str("127.0.0.0/8").unwrap();
        assert!(b.contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn deny_wins_and_allow_closes() {
        let l = AccessList {
            allow: vec![Cidr::from_str("10.0.0.0/8").unwrap()],
            deny: vec![Cidr::from_str("10.9.0.0/16").unwrap()],
        };
        assert!(l.admits(ip("10.1.1.1")));
        assert!(!l.admits(ip("10.9.1.1")));
        assert!(!l.admits(ip("192.0.2.1")));
        assert!(AccessList::default().admits(ip("192.0.2.1")));
    }
}
