//! The client's address: the TCP peer, unless the peer is a trusted proxy, in which case the
//! forwarding headers say who is behind it.
//!
//! `X-Forwarded-For` (every value, in order) or else `Forwarded` (`for=`, RFC 7239) is read
//! right to left, as each proxy appends the address it received from: trusted proxies are
//! skipped, and the first address that is not one is the client. Headers from a peer that is
//! not a trusted proxy are ignored (anyone can send them), as is everything left of an entry
//! that does not parse (it cannot be vouched for). When every entry is a trusted proxy, the
//! leftmost one is the client.

use std::net::IpAddr;

use http::HeaderMap;

use crate::config::{Cidr, any_contains, canonical};

/// The client address of a request from `peer` with `headers`, given the `trusted` proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !any_contains(trusted, peer) {
        return peer;
    }
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let hops: Vec<&str> = if xff.is_empty() {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect()
    } else {
        xff
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Cannot vouch for what a trusted proxy did not write sanely: stop here.
            return client;
        };
        client = canonical(ip);
        if !any_contains(trusted, client) {
            return client;
        }
    }
    client
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// One hop: `192.0.2.60`, `2001:db8::1`, `"[2001:db8::1]:4711"`, `192.0.2.60:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let h = hop.trim().trim_matches('"');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = h.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_str(k).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn trusted() -> Vec<Cidr> {
        vec![Cidr::from_str("10.0.0.0/8").unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            resolve(ip("203.0.113.9"), &h, &trusted()),
            ip("203.0.113.9")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        // The client spoofs 6.6.6.6; the edge proxy appended what it saw (198.51.100.7),
        // an inner proxy 10.1.1.1 appended the edge proxy's address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted()), ip("198.51.100.7"));
        // Several header lines count as one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted()), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.2.2.2",
        )]);
        assert_eq!(
            resolve(ip("10.0.0.2"), &h, &trusted()),
            ip("2001:db8:cafe::17")
        );
    }

    #[test]
    fn garbage_stops_the_walk_and_all_trusted_gives_the_leftmost() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4, nonsense, 10.3.3.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted()), ip("10.3.3.3"));
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.3.3.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted()), ip("10.9.9.9"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted()), ip("198.51.100.7"));
        assert_eq!(
            resolve(ip("10.0.0.2"), &HeaderMap::new(), &trusted()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        assert_eq!(
            resolve(ip("::ffff:10.0.0.2"), &HeaderMap::new(), &[]),
            ip("10.0.0.2")
        );
    }
}
