//! cairn-runtime: the container runtime of a cairn node.
//!
//! It owns images (content-addressed blobs and image records, imported from air-gap tarballs),
//! snapshots (each layer unpacked once, shared by images, an overlayfs root per container) and
//! containers (an OCI runtime spec from the image config and the caller's settings, created by
//! youki's libcontainer inside a single-threaded shim process per container that owns the
//! container's stdio, writes its CRI-format log, reaps it and records how it ended). Opening
//! the runtime reconciles those records with what the host still has ([`recovery`]): after a
//! restart of the caller, a dead shim or a reboot.
//!
//! It knows nothing about Kubernetes objects: the agent maps Pods onto these calls.
//!
//! On-disk layout under the node's data directory (`DATA/agent`):
//! `images/blobs/sha256/<hex>`, `images/refs/<hex of name>.json`, `snapshots/<chain id hex>/fs`,
//! `containers/<name>/…`; volatile state (libcontainer's) under the run directory (`/run/cairn`).

pub mod airgap;
pub mod archive;
pub mod cgroup;
pub mod container;
pub mod content;
pub mod devices;
pub mod digest;
pub mod error;
pub(crate) mod files;
pub mod image;
pub mod launch;
pub mod layer;
pub mod log;
pub mod pull;
pub mod recovery;
pub mod reference;
pub mod registries;
pub mod sandbox;
pub mod seccomp;
pub mod shim;
pub(crate) mod signals;
pub mod snapshot;
pub mod spec;
pub mod tty;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};

/// Where the runtime keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `DATA/agent`: images, snapshots, containers (kept across reboots).
    pub agent: PathBuf,
    /// The run directory (`/run/cairn`): libcontainer's state (gone after a reboot).
    pub run: PathBuf,
}

impl Paths {
    /// The layout for a data directory (`--data-dir`) and a run directory.
    pub fn new(data_dir: &Path, run_dir: &Path) -> Self {
        Paths {
            agent: data_dir.join("agent"),
            run: run_dir.to_path_buf(),
        }
    }

    /// `DATA/agent/images`: blobs, image records and the air-gap tarballs users drop in.
    pub fn images(&self) -> PathBuf {
        self.agent.join("images")
    }

    /// `DATA/agent/snapshots`: unpacked layers keyed by chain id.
    pub fn snapshots(&self) -> PathBuf {
        self.agent.join("snapshots")
    }

    /// `DATA/agent/containers`: one directory per container.
    pub fn containers(&self) -> PathBuf {
        self.agent.join("containers")
    }

    /// libcontainer's state root.
    pub fn libcontainer_root(&self) -> PathBuf {
        self.run.join("containers")
    }

    /// The file lock that serialises changes to images and snapshots.
    pub fn lock_file(&self) -> PathBuf {
        self.images().join(".lock")
    }
}
