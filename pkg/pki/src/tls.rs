//! rustls configurations for cairn's HTTPS, mutual-TLS peer traffic and the join bootstrap.
//!
//! Every configuration is built with the ring provider passed explicitly, never the process
//! default, so no other crate's choice of provider (or lack of one) changes what cairn accepts.
//! This module turns PEM into configurations; it does not open sockets.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Whether a server asks for client certificates, and whether it insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is requested.
    None,
    /// A client certificate is requested and, if sent, must chain to the CA; clients without one
    /// still connect (the API server, which also takes tokens).
    Optional,
    /// A client certificate chaining to the CA is required (Raft peer traffic).
    Required,
}

/// The crypto provider every configuration here is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration presenting `cert_pem` (a chain, leaf first) with `key_pem`.
///
/// With [`ClientAuth::Optional`] or [`ClientAuth::Required`], client certificates are verified
/// against the CA certificates in `ca_pem`; with [`ClientAuth::None`], `ca_pem` is not read.
/// `alpn` lists the protocols offered, most preferred first, such as `&[ALPN_H2,
/// ALPN_HTTP_1_1]`.
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    client_auth: ClientAuth,
    alpn: &[&[u8]],
) -> Result<ServerConfig> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls { source })?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let roots = Arc::new(root_store(ca_pem)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|source| Error::ClientVerifier { source })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(cert_chain(cert_pem)?, private_key(key_pem)?)
        .map_err(|source| Error::Tls { source })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration trusting only the CA certificates in `ca_pem`, presenting
/// `client_cert` (certificate chain PEM, key PEM) when given.
///
/// ALPN is left empty; set `alpn_protocols` on the result when speaking HTTP/2.
pub fn client_config(ca_pem: &str, client_cert: Option<(&str, &str)>) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls { source })?
        .with_root_certificates(root_store(ca_pem)?);
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => builder
            .with_client_auth_cert(cert_chain(cert_pem)?, private_key(key_pem)?)
            .map_err(|source| Error::Tls { source }),
    }
}

/// A client configuration that accepts **any** server certificate. Use it only to fetch
/// `/cacerts` during a join, and never to send a credential.
///
/// # Why this is safe in that flow, and nowhere else
///
/// A joining node does not yet know the cluster CA, so it cannot verify the server. It fetches
/// the CA bundle over this unverified connection, then hashes the bytes it received and checks
/// them against the hash in its join token ([`crate::verify_ca`]). The token came to the node
/// out of band, so an attacker in the middle can hand over a bundle but cannot make it hash to
/// the pinned value. Only after that check does the node trust the bundle, reconnect with
/// [`client_config`] verifying the server against it, and send its token secret.
///
/// So nothing received over this connection is believed until the pin confirms it, and nothing
/// secret is sent over it. Without a pinned hash (a bare-secret token), the bundle is
/// trust-on-first-use and open to a man in the middle, as k3s warns.
///
/// Handshake signatures are still checked, so the peer does hold the key for the certificate
/// it shows; only the certificate's chain, name and validity are not.
pub fn insecure_capture_client_config() -> ClientConfig {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert {
        algorithms: provider.signature_verification_algorithms,
    });
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// Accepts any server certificate; see [`insecure_capture_client_config`].
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn root_store(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in cert_chain_of(ca_pem, "CA bundle")? {
        roots.add(cert).map_err(|source| Error::Tls { source })?;
    }
    Ok(roots)
}

fn cert_chain(cert_pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    cert_chain_of(cert_pem, "certificate")
}

fn cert_chain_of(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Pem { what, source })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            what,
            source: rustls_pki_types::pem::Error::NoItemsFound,
        });
    }
    Ok(certs)
}

fn private_key(key_pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| Error::Pem {
        what: "private key",
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use rustls::{ClientConnection, ServerConnection};

    use super::*;
    use crate::ca::{Ca, CertRequest, Issued, Usage};

    /// Runs a TLS handshake in memory, then sends one message each way. Returns the server side
    /// for inspection, or the first error either side hit.
    pub(crate) fn handshake(
        client: ClientConfig,
        server: ServerConfig,
        server_name: &str,
    ) -> Result<ServerConnection, rustls::Error> {
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let mut client = ClientConnection::new(Arc::new(client), name)?;
        let mut server = ServerConnection::new(Arc::new(server))?;
        std::io::Write::write_all(&mut client.writer(), b"ping").unwrap();
        std::io::Write::write_all(&mut server.writer(), b"pong").unwrap();
        let mut got_ping = Vec::new();
        let mut got_pong = Vec::new();
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            if !wire.is_empty() {
                server.read_tls(&mut wire.as_slice()).unwrap();
                server.process_new_packets()?;
            }
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            if !wire.is_empty() {
                client.read_tls(&mut wire.as_slice()).unwrap();
                client.process_new_packets()?;
            }
            read_available(&mut server.reader(), &mut got_ping);
            read_available(&mut client.reader(), &mut got_pong);
            if got_ping == b"ping" && got_pong == b"pong" {
                return Ok(server);
            }
        }
        panic!("handshake did not finish");
    }

    fn read_available(reader: &mut impl std::io::Read, into: &mut Vec<u8>) {
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            into.extend_from_slice(&buf[..n]);
        }
    }

    struct Cluster {
        ca: Ca,
        server: Issued,
        client: Issued,
    }

    fn cluster() -> Cluster {
        let ca = Ca::generate().unwrap();
        let server = ca
            .issue(
                &CertRequest::new("cairn", Usage::Server)
                    .dns_name("cairn.test")
                    .ip_address(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            )
            .unwrap();
        let client = ca
            .issue(&CertRequest::new("system:node:a", Usage::Client).organization("system:nodes"))
            .unwrap();
        Cluster { ca, server, client }
    }

    fn server(c: &Cluster, auth: ClientAuth) -> ServerConfig {
        server_config(
            c.ca.cert_pem(),
            &c.server.cert_pem,
            &c.server.key_pem,
            auth,
            &[ALPN_H2, ALPN_HTTP_1_1],
        )
        .unwrap()
    }

    fn with_cert(issued: &Issued) -> Option<(&str, &str)> {
        Some((&issued.cert_pem, &issued.key_pem))
    }

    #[test]
    fn server_verified_by_name_and_ip() {
        let c = cluster();
        for name in ["cairn.test", "127.0.0.1"] {
            let client = client_config(c.ca.cert_pem(), None).unwrap();
            handshake(client, server(&c, ClientAuth::None), name).unwrap();
        }
    }

    #[test]
    fn wrong_server_name_is_rejected() {
        let c = cluster();
        let client = client_config(c.ca.cert_pem(), None).unwrap();
        let err = handshake(client, server(&c, ClientAuth::None), "other.test").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn server_from_another_ca_is_rejected() {
        let c = cluster();
        let other = Ca::generate().unwrap();
        let client = client_config(other.cert_pem(), None).unwrap();
        let err = handshake(client, server(&c, ClientAuth::None), "cairn.test").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn client_only_cert_cannot_serve() {
        let c = cluster();
        let config = server_config(
            c.ca.cert_pem(),
            &c.client.cert_pem,
            &c.client.key_pem,
            ClientAuth::None,
            &[],
        )
        .unwrap();
        let client = client_config(c.ca.cert_pem(), None).unwrap();
        let err = handshake(client, config, "cairn.test").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn required_client_auth_accepts_cluster_cert() {
        let c = cluster();
        let client = client_config(c.ca.cert_pem(), with_cert(&c.client)).unwrap();
        let conn = handshake(client, server(&c, ClientAuth::Required), "cairn.test").unwrap();
        let peer = conn.peer_certificates().expect("client certificate");
        let client_der = CertificateDer::from_pem_slice(c.client.cert_pem.as_bytes()).unwrap();
        assert_eq!(peer[0], client_der);
    }

    #[test]
    fn required_client_auth_rejects_missing_cert() {
        let c = cluster();
        let client = client_config(c.ca.cert_pem(), None).unwrap();
        let err = handshake(client, server(&c, ClientAuth::Required), "cairn.test").unwrap_err();
        assert!(
            matches!(err, rustls::Error::NoCertificatesPresented),
            "{err:?}"
        );
    }

    #[test]
    fn required_client_auth_rejects_foreign_cert() {
        let c = cluster();
        let other = Ca::generate().unwrap();
        let stranger = other
            .issue(&CertRequest::new("stranger", Usage::Client))
            .unwrap();
        let client = client_config(c.ca.cert_pem(), with_cert(&stranger)).unwrap();
        let err = handshake(client, server(&c, ClientAuth::Required), "cairn.test").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn optional_client_auth_accepts_both() {
        let c = cluster();
        let anonymous = client_config(c.ca.cert_pem(), None).unwrap();
        let conn = handshake(anonymous, server(&c, ClientAuth::Optional), "cairn.test").unwrap();
        assert!(conn.peer_certificates().is_none());
        let node = client_config(c.ca.cert_pem(), with_cert(&c.client)).unwrap();
        let conn = handshake(node, server(&c, ClientAuth::Optional), "cairn.test").unwrap();
        assert!(conn.peer_certificates().is_some());
    }

    #[test]
    fn peer_cert_serves_and_dials() {
        let c = cluster();
        let peer =
            c.ca.issue(&CertRequest::new("server-1", Usage::ServerAndClient).dns_name("server-1"))
                .unwrap();
        let server = server_config(
            c.ca.cert_pem(),
            &peer.cert_pem,
            &peer.key_pem,
            ClientAuth::Required,
            &[ALPN_H2],
        )
        .unwrap();
        let client = client_config(c.ca.cert_pem(), with_cert(&peer)).unwrap();
        handshake(client, server, "server-1").unwrap();
    }

    #[test]
    fn alpn_is_negotiated() {
        let c = cluster();
        let mut client = client_config(c.ca.cert_pem(), None).unwrap();
        client.alpn_protocols = vec![ALPN_H2.to_vec()];
        let conn = handshake(client, server(&c, ClientAuth::None), "cairn.test").unwrap();
        assert_eq!(conn.alpn_protocol(), Some(ALPN_H2));
    }

    #[test]
    fn insecure_capture_accepts_any_server() {
        let c = cluster();
        let client = insecure_capture_client_config();
        handshake(client, server(&c, ClientAuth::None), "anything.invalid").unwrap();
    }

    #[test]
    fn mismatched_server_key_is_rejected() {
        let c = cluster();
        let err = server_config(
            c.ca.cert_pem(),
            &c.server.cert_pem,
            &c.client.key_pem,
            ClientAuth::None,
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err}");
    }

    #[test]
    fn empty_ca_bundle_is_rejected() {
        let err = client_config("", None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    what: "CA bundle",
                    ..
                }
            ),
            "{err}"
        );
    }
}
