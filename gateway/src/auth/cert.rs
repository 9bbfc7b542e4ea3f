//! The identity of a client certificate the listener verified (against `tls.client_ca`): the
//! subject's common name, else the first URI name (a SPIFFE id), else the first DNS name.

use x509_parser::extensions::GeneralName;

use crate::request::{Identity, IdentityKind, PeerCertificates};

/// The caller a verified certificate chain names, if its leaf names one.
pub fn identity(chain: &PeerCertificates) -> Option<Identity> {
    let leaf = chain.0.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let san = || {
        let names = cert.subject_alternative_name().ok().flatten()?;
        let all = &names.value.general_names;
        all.iter()
            .find_map(|n| match n {
                GeneralName::URI(u) => Some(u.to_string()),
                _ => None,
            })
            .or_else(|| {
                all.iter().find_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
            })
    };
    let subject = cn.or_else(san)?;
    Some(Identity {
        subject,
        kind: IdentityKind::ClientCertificate,
        scopes: Vec::new(),
        claims: serde_json::Map::new(),
        plan: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    use super::*;

    fn chain(cn: Option<&str>, sans: Vec<SanType>) -> PeerCertificates {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        PeerCertificates(Arc::new(vec![cert.der().clone()]))
    }

    #[test]
    fn the_common_name_then_a_uri_then_a_dns_name() {
        let dns = SanType::DnsName("svc.internal".try_into().unwrap());
        let uri = SanType::URI("spiffe://corp/billing".try_into().unwrap());
        let id = identity(&chain(Some("billing-batch"), vec![dns.clone()])).unwrap();
        assert_eq!(id.subject, "billing-batch");
        assert_eq!(id.kind, IdentityKind::ClientCertificate);
        let id = identity(&chain(None, vec![dns.clone(), uri])).unwrap();
        assert_eq!(id.subject, "spiffe://corp/billing");
        assert_eq!(
            identity(&chain(None, vec![dns])).unwrap().subject,
            "svc.internal"
        );
        assert!(identity(&chain(None, vec![])).is_none());
        assert!(identity(&PeerCertificates(Arc::new(vec![]))).is_none());
    }
}
