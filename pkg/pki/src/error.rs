//! The crate's error type.
//!
//! One enum for the whole crate: the crate is small and its callers (the server's join handler, the
//! agent's bootstrap) react to only a few variants, [`Error::CaHashMismatch`] and
//! [`Error::TokenNotPinned`] above all. Messages are lower case without a trailing period, and a
//! wrapped cause is a `#[source]`, not repeated in the message.

use std::path::PathBuf;

/// Everything that can go wrong in `cairn-pki`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or syncing a file or directory failed.
    #[error("i/o on {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file on disk exists but cannot be used; it is left untouched.
    #[error("file {path} is corrupt; it was left untouched, repair or remove it")]
    CorruptFile {
        /// The offending file.
        path: PathBuf,
        /// Why it could not be used.
        #[source]
        source: Box<Error>,
    },

    /// The CA certificate exists on disk but its private key does not.
    ///
    /// The CA is never regenerated in that case: tokens and nodes already pin the certificate.
    #[error("CA certificate exists but its key {key_path} is missing")]
    MissingCaKey {
        /// Where the key was expected.
        key_path: PathBuf,
    },

    /// PEM text did not hold what was expected.
    #[error("invalid PEM for {what}")]
    Pem {
        /// What was being parsed, such as "CA certificate".
        what: &'static str,
        /// The underlying parse error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },

    /// Generating, parsing or signing a certificate or key failed.
    #[error("{what}")]
    Cert {
        /// What was being done, such as "signing leaf certificate".
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },

    /// A private key does not belong to the certificate it was paired with.
    #[error("{what}: private key does not match the certificate")]
    KeyMismatch {
        /// Which pair, such as "CA".
        what: &'static str,
    },

    /// A certificate request asks for something X.509 generation here cannot do.
    #[error("invalid certificate request for {common_name:?}: {reason}")]
    InvalidRequest {
        /// The request's common name.
        common_name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Building a rustls configuration failed.
    #[error("building TLS configuration")]
    Tls {
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },

    /// Building the client-certificate verifier failed (for example, no usable CA certificate).
    #[error("building client certificate verifier")]
    ClientVerifier {
        /// The underlying error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A join token could not be parsed.
    #[error("invalid join token: {reason}")]
    InvalidToken {
        /// What is wrong with it. Never contains the secret.
        reason: &'static str,
    },

    /// The CA bundle fetched from a server does not hash to the value pinned in the token.
    ///
    /// Either the token belongs to another cluster or someone is in the middle: do not send
    /// credentials to that server.
    #[error("token CA hash {expected} does not match the cluster CA certificate hash {actual}")]
    CaHashMismatch {
        /// The hash carried by the token.
        expected: String,
        /// The hash of the bundle actually received.
        actual: String,
    },

    /// The token is a bare secret and carries no CA hash, so the CA cannot be verified with it.
    #[error("join token carries no CA hash to verify the cluster CA against")]
    TokenNotPinned,

    /// A stored secret hash is not in the format [`crate::secret_hash`] produces.
    #[error("stored secret hash is malformed")]
    InvalidSecretHash,
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
