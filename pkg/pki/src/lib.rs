//! `cairn-pki`: the cluster CA, the certificates it issues, join tokens that pin it, and the
//! rustls configurations built from them.
//!
//! A server calls [`ServerPki::load_or_create`] on `DATA/server/tls/`, issues serving and peer
//! certificates with [`Ca::issue`], and hands out [`Token::generate_server`]. A joining node
//! fetches `/cacerts` with [`insecure_capture_client_config`], checks the bytes with
//! [`verify_ca`], and from then on uses [`client_config`] trusting only that CA.
//!
//! This crate does no network IO and uses no async runtime; the only file IO is in [`store`].
//! It does not decide who may join or what a certificate's holder may do: that is the API
//! server's authorization.

pub mod ca;
pub mod error;
pub mod secret;
pub mod store;
pub mod tls;
pub mod token;

pub use ca::{CA_VALIDITY, Ca, CertRequest, Issued, LEAF_VALIDITY, SERVER_CA_NAME, Usage};
pub use error::{Error, Result};
pub use secret::{check_secret, secret_hash};
pub use store::{CA_CERT_FILE, CA_KEY_FILE, ServerPki, write_atomic};
pub use tls::{
    ALPN_H2, ALPN_HTTP_1_1, ClientAuth, client_config, insecure_capture_client_config, provider,
    server_config,
};
pub use token::{NODE_USER, SERVER_USER, TOKEN_PREFIX, Token, ca_hash, verify_ca};
