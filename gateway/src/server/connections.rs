//! Connection admission: the limits on open client connections, in all and per client address.
//!
//! Past `limits.max_connections` open connections, or `limits.max_connections_per_ip` from one
//! address, a new connection is accepted and closed at once (no bytes read or written), while
//! the established ones are served as before: a flood of idle connections from one place
//! cannot take the whole listener. IPv6 addresses count per /64 (what one host or one customer
//! of a provider gets), IPv4 per address; IPv4-mapped IPv6 addresses count as IPv4. Addresses
//! are the TCP peer's: behind a load balancer every connection comes from the balancer, so raise
//! or lift the per-address limit there.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use super::Readiness;

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `limits.max_connections` connections are open.
    Full,
    /// `limits.max_connections_per_ip` connections are open from this address.
    PerAddress,
}

/// The open connections, in all and per address. Clones share the counts.
#[derive(Clone, Debug)]
pub(super) struct Admission {
    max: usize,
    per_address: Option<usize>,
    by_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Admission {
    pub(super) fn new(max: usize, per_address: Option<usize>) -> Self {
        Self {
            max,
            per_address,
            by_address: Arc::default(),
        }
    }

    /// Admits a connection from `ip` (counted in `readiness` and per address until the guard
    /// drops), or says why not and counts the refusal.
    pub(super) fn admit(&self, readiness: &Readiness, ip: IpAddr) -> Result<Admitted, Refusal> {
        if usize::try_from(readiness.open_connections()).unwrap_or(0) >= self.max {
            readiness.refused(Refusal::Full);
            return Err(Refusal::Full);
        }
        let address = match self.per_address {
            None => None,
            Some(limit) => {
                let key = address_key(ip);
                let mut by = self
                    .by_address
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let open = by.entry(key).or_insert(0);
                if *open >= limit {
                    drop(by);
                    readiness.refused(Refusal::PerAddress);
                    return Err(Refusal::PerAddress);
                }
                *open += 1;
                Some(AddressSlot {
                    map: self.by_address.clone(),
                    key,
                })
            }
        };
        Ok(Admitted {
            _open: readiness.connection(),
            _address: address,
        })
    }

    /// Addresses with open connections (for tests).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// An admitted connection, counted until dropped.
pub(super) struct Admitted {
    _open: super::OpenConnection,
    _address: Option<AddressSlot>,
}

/// One connection counted against its address.
struct AddressSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut by = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = by.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                by.remove(&self.key);
            }
        }
    }
}

/// What an address counts as: IPv4 itself, IPv6 its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_total_limit_refuses_past_it_and_admits_again_once_one_closes() {
        let readiness = Readiness::new();
        let admission = Admission::new(2, None);
        let a = admission.admit(&readiness, ip("10.0.0.1")).unwrap();
        let _b = admission.admit(&readiness, ip("10.0.0.2")).unwrap();
        assert_eq!(
            admission.admit(&readiness, ip("10.0.0.3")).err(),
            Some(Refusal::Full)
        );
        assert_eq!(readiness.open_connections(), 2);
        drop(a);
        assert!(admission.admit(&readiness, ip("10.0.0.3")).is_ok());
        assert_eq!(readiness.refusals(), (1, 0));
    }

    #[test]
    fn the_per_address_limit_counts_each_address_and_forgets_closed_ones() {
        let readiness = Readiness::new();
        let admission = Admission::new(100, Some(2));
        let a1 = admission.admit(&readiness, ip("10.0.0.1")).unwrap();
        let a2 = admission.admit(&readiness, ip("10.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(&readiness, ip("10.0.0.1")).err(),
            Some(Refusal::PerAddress)
        );
        let _b = admission.admit(&readiness, ip("10.0.0.2")).unwrap();
        drop(a1);
        let a3 = admission.admit(&readiness, ip("10.0.0.1")).unwrap();
        drop((a2, a3));
        assert_eq!(admission.addresses(), 1, "only 10.0.0.2 is left");
        assert_eq!(readiness.refusals(), (0, 1));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let readiness = Readiness::new();
        let admission = Admission::new(100, Some(1));
        let _a = admission.admit(&readiness, ip("2001:db8:1:2::1")).unwrap();
        assert!(
            admission
                .admit(&readiness, ip("2001:db8:1:2:ffff::9"))
                .is_err(),
            "same /64"
        );
        assert!(admission.admit(&readiness, ip("2001:db8:1:3::1")).is_ok());
        let _v4 = admission.admit(&readiness, ip("192.0.2.7")).unwrap();
        assert!(admission.admit(&readiness, ip("::ffff:192.0.2.7")).is_err());
    }
}
