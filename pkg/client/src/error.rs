//! The client's errors: a `Status` the API server answered with, kept apart from the failures
//! to reach it (transport, TLS, configuration) and to understand its answer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `Result` whose error defaults to the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The failure `Status` of an API call (`kind: Status`), reduced to what callers branch on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The HTTP status code, such as 404 or 409.
    pub code: u16,
    /// The machine-readable reason, such as `NotFound`, `AlreadyExists`, `Conflict` or `Expired`.
    pub reason: String,
    /// The human-readable message.
    pub message: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

/// Everything that can go wrong in a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with a failure status.
    #[error("api error {0}")]
    Api(Status),
    /// The request did not complete: connection, TLS handshake or HTTP/2 failure.
    #[error("request to {path} failed")]
    Transport {
        /// The request's path.
        path: String,
        /// The cause.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The response body could not be read to its end.
    #[error("reading the response of {path} failed")]
    Body {
        /// The request's path.
        path: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The request did not finish in time.
    #[error("request to {path} timed out")]
    Timeout {
        /// The request's path.
        path: String,
    },
    /// A response body was not the JSON the call expected.
    #[error("decoding the response of {path}")]
    Decode {
        /// The request's path.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be encoded.
    #[error("encoding a request body")]
    Encode(#[source] serde_json::Error),
    /// A kubeconfig file could not be read.
    #[error("reading kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A kubeconfig file is not valid YAML of the expected shape.
    #[error("parsing kubeconfig {path}")]
    ParseKubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_yaml::Error,
    },
    /// The configuration is incomplete or inconsistent.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The TLS configuration could not be built from the PEM given.
    #[error("building the tls configuration")]
    Tls(#[source] cairn_pki::Error),
}

impl Error {
    /// The API status, when the server answered with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(status) => Some(status),
            _ => None,
        }
    }

    /// The server answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(|s| s.code == 404)
    }

    /// The server answered 409 with reason `Conflict` (a stale resourceVersion or a
    /// precondition that failed).
    pub fn is_conflict(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason != "AlreadyExists")
    }

    /// The server answered 409 with reason `AlreadyExists`.
    pub fn is_already_exists(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason == "AlreadyExists")
    }

    /// The server answered 410 Gone: the resourceVersion asked for has been compacted.
    pub fn is_gone(&self) -> bool {
        self.status().is_some_and(|s| s.code == 410)
    }
}
