//! The runtime's error type.

use std::path::PathBuf;

/// What can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}")]
    Sys {
        /// What was being done.
        op: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Content did not hash to the digest it was named or referenced by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which content.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A tarball or an image document is malformed or incomplete.
    #[error("invalid image archive {path}: {reason}")]
    InvalidArchive {
        /// The tarball.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON document did not parse.
    #[error("invalid {what}")]
    Json {
        /// Which document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// An image reference or digest is malformed.
    #[error("invalid reference {0:?}")]
    InvalidReference(String),
    /// No image by that name.
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    /// No container by that name.
    #[error("container {0:?} not found")]
    ContainerNotFound(String),
    /// A container by that name exists already.
    #[error("container {0:?} already exists")]
    ContainerExists(String),
    /// The operation needs a running container.
    #[error("container {0:?} is not running")]
    NotRunning(String),
    /// The operation needs a stopped container.
    #[error("container {0:?} is running (stop it first)")]
    Running(String),
    /// The image is still used by a container.
    #[error("image {image:?} is used by container {container:?}")]
    ImageInUse {
        /// The image.
        image: String,
        /// A container using it.
        container: String,
    },
    /// A caller's setting is invalid.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// No manifest for this machine's platform.
    #[error("no image for platform {platform} in {what}")]
    NoPlatform {
        /// The platform wanted.
        platform: String,
        /// Where it was looked for.
        what: String,
    },
    /// libcontainer refused or failed.
    #[error("libcontainer: {op}")]
    Libcontainer {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: libcontainer::error::LibcontainerError,
    },
    /// The OCI spec could not be built.
    #[error("building the OCI spec")]
    Spec(#[from] libcontainer::oci_spec::OciSpecError),
    /// A registry refused or failed a request.
    #[error("registry {registry}: {message}")]
    Registry {
        /// The registry (endpoint host).
        registry: String,
        /// What it said.
        message: String,
    },
    /// The shim failed to start the container.
    #[error("shim: {0}")]
    Shim(String),
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error::Io`] for `path`.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// Builds an [`Error::Sys`].
pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let op = op.into();
    move |source| Error::Sys { op, source }
}
