//! `certs`: a certificate authority, a server certificate and a client certificate for local
//! TLS and mTLS, made without openssl (rcgen). For development and tests, not production PKI.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `ca.pem`: the CA certificate (for `tls.client_ca`, and for clients to trust the server).
    pub ca: PathBuf,
    /// `server.pem` and `server.key` (for `tls.cert` and `tls.key`).
    pub server: (PathBuf, PathBuf),
    /// `client.pem` and `client.key`: a client certificate signed by the CA (mTLS).
    pub client: (PathBuf, PathBuf),
}

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused something.
    #[error("cannot make the certificates: {0}")]
    Make(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, CertsError> {
    std::fs::write(&path, text).map_err(|source| CertsError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Portico development");
    dn
}

/// Writes `ca.pem`, `server.pem`/`server.key` (for `hosts`: DNS names or IP addresses) and
/// `client.pem`/`client.key` (subject `client_name`) into `dir`, creating it.
pub fn generate(dir: &Path, hosts: &[String], client_name: &str) -> Result<Written, CertsError> {
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = named("Portico development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(hosts.to_vec())?;
    server.distinguished_name = named(hosts.first().map_or("localhost", String::as_str));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(vec![client_name.to_owned()])?;
    client.distinguished_name = named(client_name);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer)?;

    Ok(Written {
        ca: write(dir.join("ca.pem"), &issuer.pem())?,
        server: (
            write(dir.join("server.pem"), &server_cert.pem())?,
            write(dir.join("server.key"), &server_key.serialize_pem())?,
        ),
        client: (
            write(dir.join("client.pem"), &client_cert.pem())?,
            write(dir.join("client.key"), &client_key.serialize_pem())?,
        ),
    })
}
