//! The cluster certificate authority and the leaf certificates it signs.
//!
//! Owns key generation (ECDSA P-256 everywhere), the CA's self-signed certificate and issuing
//! leaf certificates from a [`CertRequest`]. It does no IO: persisting the CA is
//! [`crate::store`]'s job, and turning certificates into TLS configurations is [`crate::tls`]'s.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// How long a generated CA certificate is valid: ten years, as k3s does.
pub const CA_VALIDITY: Duration = Duration::days(3650);

/// How long an issued leaf certificate is valid: one year, as k3s does.
pub const LEAF_VALIDITY: Duration = Duration::days(365);

/// How far `notBefore` is set in the past, so that a node whose clock lags the server's a little
/// still accepts a certificate issued a moment ago.
const BACKDATE: Duration = Duration::hours(1);

/// The CN prefix of the cluster's server CA; `@<unix seconds>` is appended, as k3s names its
/// `k3s-server-ca@<unix seconds>`.
pub const SERVER_CA_NAME: &str = "cairn-server-ca";

/// The X.509 attribute type of an organization name (2.5.4.10).
const OID_ORGANIZATION: [u64; 4] = [2, 5, 4, 10];

/// Which half of a CA's PEM input was at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemPart {
    /// The certificate.
    Cert,
    /// The private key.
    Key,
}

/// What an issued certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication only.
    Server,
    /// TLS client authentication only.
    Client,
    /// Both; used by peers that dial and accept mutual-TLS connections (Raft traffic).
    ServerAndClient,
}

/// What to put in a leaf certificate.
///
/// Kubernetes reads the user from the common name and the groups from the organizations, so a
/// node's client certificate is `CN=system:node:<name>, O=system:nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization names (Kubernetes groups). At most two: see [`Ca::issue`].
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Extended key usage.
    pub usage: Usage,
}

impl CertRequest {
    /// A request with only a common name and a usage; add the rest with the builder methods.
    pub fn new(common_name: impl Into<String>, usage: Usage) -> Self {
        Self {
            common_name: common_name.into(),
            organizations: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usage,
        }
    }

    /// Adds a subject organization (Kubernetes group).
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organizations.push(organization.into());
        self
    }

    /// Adds a DNS subject alternative name.
    pub fn dns_name(mut self, name: impl Into<String>) -> Self {
        self.dns_names.push(name.into());
        self
    }

    /// Adds an IP subject alternative name.
    pub fn ip_address(mut self, ip: IpAddr) -> Self {
        self.ip_addresses.push(ip);
        self
    }
}

/// A freshly issued certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PEM PKCS#8 (`PRIVATE KEY`).
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A certificate authority: its certificate and the key that signs with it.
pub struct Ca {
    /// Kept byte for byte as generated or loaded: join tokens pin the SHA-256 of exactly these
    /// bytes, so re-encoding them would break every token.
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// Generates the cluster's server CA: a new P-256 key and a ten-year self-signed certificate
    /// named `cairn-server-ca@<unix seconds>`.
    pub fn generate() -> Result<Self> {
        Self::generate_named(SERVER_CA_NAME)
    }

    /// Generates a CA whose common name is `<prefix>@<unix seconds>`.
    pub fn generate_named(prefix: &str) -> Result<Self> {
        Self::self_signed(new_key("generating CA key")?, prefix)
    }

    /// Makes a ten-year self-signed CA certificate for an existing key.
    pub(crate) fn self_signed(key: KeyPair, prefix: &str) -> Result<Self> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{prefix}@{}", now.unix_timestamp()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(|source| Error::Cert {
            what: "self-signing CA certificate",
            source,
        })?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and PKCS#8 private key, both PEM.
    ///
    /// `cert_pem` may be a bundle; its first certificate must be the one `key_pem` belongs to.
    /// The text is kept verbatim as [`Ca::cert_pem`], so its hash stays what tokens pinned.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        Self::from_pem_parts(cert_pem, key_pem).map_err(|(_, err)| err)
    }

    /// [`Ca::from_pem`], also saying which input was at fault so that [`crate::store`] can name
    /// the file. A key that does not match the certificate is blamed on the key: the
    /// certificate is what tokens pin.
    pub(crate) fn from_pem_parts(cert_pem: &str, key_pem: &str) -> Result<Self, (PemPart, Error)> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| {
            let what = "CA certificate";
            (PemPart::Cert, Error::Pem { what, source })
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| {
            let what = "CA private key";
            (PemPart::Key, Error::Pem { what, source })
        })?;
        let key = KeyPair::from_pem(key_pem).map_err(|source| {
            let what = "parsing CA private key (ECDSA P-256 PKCS#8 expected)";
            (PemPart::Key, Error::Cert { what, source })
        })?;
        check_key_matches(&cert_der, key_der, "CA").map_err(|err| (PemPart::Key, err))?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|source| {
            let what = "parsing CA certificate";
            (PemPart::Cert, Error::Cert { what, source })
        })?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            cert_der,
            issuer,
        })
    }

    /// Makes a CA from an existing key by self-signing a new certificate for it.
    pub(crate) fn from_key_pem(key_pem: &str, prefix: &str) -> Result<Self> {
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| Error::Pem {
            what: "CA private key",
            source,
        })?;
        let key = KeyPair::from_pem(key_pem).map_err(|source| Error::Cert {
            what: "parsing CA private key (ECDSA P-256 PKCS#8 expected)",
            source,
        })?;
        let mut ca = Self::self_signed(key, prefix)?;
        // Keep the key text as it was on disk rather than rcgen's re-encoding.
        key_pem.clone_into(&mut ca.key_pem);
        Ok(ca)
    }

    /// The CA certificate (or bundle) PEM, exactly as generated or loaded. This is what
    /// `/cacerts` serves and what [`crate::ca_hash`] hashes.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a leaf certificate with a new P-256 key, valid for [`LEAF_VALIDITY`].
    ///
    /// At most two organizations are supported: rcgen keeps one value per attribute type, and
    /// the second is written under the same OID as a custom attribute type. Kubernetes reads
    /// both as groups. More give [`Error::InvalidRequest`].
    pub fn issue(&self, request: &CertRequest) -> Result<Issued> {
        let params = leaf_params(request)?;
        let key = new_key("generating leaf key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| Error::Cert {
                what: "signing leaf certificate",
                source,
            })?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Fails with [`Error::KeyMismatch`] unless `key` is the private half of `cert`'s public key.
fn check_key_matches(
    cert: &CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    what: &'static str,
) -> Result<()> {
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(vec![cert.clone()], key, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(Error::KeyMismatch { what }),
        Err(source) => Err(Error::Tls { source }),
    }
}

fn leaf_params(request: &CertRequest) -> Result<CertificateParams> {
    let invalid = |reason: String| Error::InvalidRequest {
        common_name: request.common_name.clone(),
        reason,
    };
    if request.common_name.is_empty() {
        return Err(invalid("empty common name".into()));
    }
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, request.common_name.as_str());
    match request.organizations.as_slice() {
        [] => {}
        [one] => params
            .distinguished_name
            .push(DnType::OrganizationName, one.as_str()),
        [first, second] => {
            params
                .distinguished_name
                .push(DnType::OrganizationName, first.as_str());
            params.distinguished_name.push(
                DnType::CustomDnType(OID_ORGANIZATION.to_vec()),
                second.as_str(),
            );
        }
        more => {
            return Err(invalid(format!(
                "{} organizations, at most 2 are supported",
                more.len()
            )));
        }
    }
    for name in &request.dns_names {
        let name = name
            .as_str()
            .try_into()
            .map_err(|_| invalid(format!("DNS name {name:?} is not ASCII")))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in &request.ip_addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match request.usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerAndClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params.serial_number = Some(random_serial());
    Ok(params)
}

pub(crate) fn new_key(what: &'static str) -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| Error::Cert { what, source })
}

/// A random positive 128-bit serial number (RFC 5280 allows up to 20 octets).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_round_trips_through_pem() {
        let ca = Ca::generate().unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let loaded = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(loaded.key_pem(), ca.key_pem());
        assert_eq!(loaded.cert_der(), ca.cert_der());
        // The reloaded CA signs certificates that chain to the original certificate.
        let leaf = loaded
            .issue(&CertRequest::new("server", Usage::Server).dns_name("cairn.test"))
            .unwrap();
        let server = crate::tls::server_config(
            ca.cert_pem(),
            &leaf.cert_pem,
            &leaf.key_pem,
            crate::tls::ClientAuth::None,
            &[],
        )
        .unwrap();
        let client = crate::tls::client_config(ca.cert_pem(), None).unwrap();
        crate::tls::tests::handshake(client, server, "cairn.test").unwrap();
    }

    fn der_contains(der: &[u8], needle: &str) -> bool {
        der.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn ca_is_named_like_k3s() {
        let ca = Ca::generate().unwrap();
        assert!(der_contains(ca.cert_der(), "cairn-server-ca@"));
    }

    #[test]
    fn two_organizations_are_written() {
        let ca = Ca::generate().unwrap();
        let request = CertRequest::new("system:node:a", Usage::Client)
            .organization("system:nodes")
            .organization("cairn:agents");
        let issued = ca.issue(&request).unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        for text in ["system:node:a", "system:nodes", "cairn:agents"] {
            assert!(der_contains(&der, text), "{text} missing");
        }
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let a = Ca::generate().unwrap();
        let b = Ca::generate().unwrap();
        let err = Ca::from_pem(a.cert_pem(), b.key_pem()).unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { what: "CA" }), "{err}");
    }

    #[test]
    fn garbage_pem_is_rejected() {
        let a = Ca::generate().unwrap();
        let err = Ca::from_pem("not a certificate", a.key_pem()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    what: "CA certificate",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn too_many_organizations_are_rejected() {
        let ca = Ca::generate().unwrap();
        let request = CertRequest::new("u", Usage::Client)
            .organization("a")
            .organization("b")
            .organization("c");
        let err = ca.issue(&request).unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    }

    #[test]
    fn issued_debug_redacts_key() {
        let ca = Ca::generate().unwrap();
        let issued = ca.issue(&CertRequest::new("u", Usage::Client)).unwrap();
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }
}
