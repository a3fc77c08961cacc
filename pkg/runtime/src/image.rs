//! Image documents (OCI and Docker manifests, indexes, image configs) and the image records
//! that name them (`images/refs/<sha256 of name>.json`), plus removal and garbage collection.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::io;
use crate::snapshot::SnapshotStore;
use crate::{Error, Paths, Result};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type.
    #[serde(default)]
    pub media_type: String,
    /// The digest.
    pub digest: Digest,
    /// The size in bytes.
    #[serde(default)]
    pub size: u64,
    /// The platform (entries of an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (e.g. the ref name in an OCI layout's index).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An os/architecture/variant triple.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// e.g. `v7`, `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform, in OCI's names.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Whether an index entry for `other` runs here: same os and architecture, and the variant
    /// equal or unstated (arm64's variant is `v8` when unstated).
    pub fn accepts(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (other.variant.is_none() || norm(self) == norm(other))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker v2; same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The media type, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An image index or manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The media type, when stated.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The entries.
    pub manifests: Vec<Descriptor>,
}

/// The parts of an image config the runtime uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// How to run it.
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// The layers' uncompressed digests.
    pub rootfs: RootFs,
}

/// The image's default process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `uid[:gid]` or `name[:group]`.
    #[serde(default)]
    pub user: Option<String>,
    /// `K=V` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// The entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The uncompressed digest of each layer, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// A named image on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalised name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The config's digest (the image id).
    pub config: Digest,
    /// The layer blobs, bottom first.
    pub layers: Vec<Digest>,
    /// The snapshot chain ids, bottom first.
    pub chain: Vec<Digest>,
    /// The compressed size of the layers plus config.
    pub size: u64,
}

/// The image records of one node.
#[derive(Debug, Clone)]
pub struct ImageStore {
    paths: Paths,
}

impl ImageStore {
    /// The store under `paths`.
    pub fn new(paths: &Paths) -> Self {
        ImageStore {
            paths: paths.clone(),
        }
    }

    /// The content store beside the records.
    pub fn content(&self) -> ContentStore {
        ContentStore::new(&self.paths.images())
    }

    fn refs(&self) -> PathBuf {
        self.paths.images().join("refs")
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.refs()
            .join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
    }

    /// Writes (or replaces) a record atomically.
    pub fn put(&self, record: &ImageRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        crate::files::write_atomic(&self.record_path(&record.name), &bytes)
    }

    /// The record of `name` (normalised by the caller).
    pub fn get(&self, name: &str) -> Result<ImageRecord> {
        let path = self.record_path(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: format!("image record {}", path.display()),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::ImageNotFound(name.to_string()))
            }
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Finds an image by name (any spelling) or by (a prefix of at least 12 characters of) its id.
    pub fn find(&self, name_or_id: &str) -> Result<ImageRecord> {
        if let Ok(name) = crate::reference::normalize(name_or_id)
            && let Ok(record) = self.get(&name)
        {
            return Ok(record);
        }
        let id = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if id.len() >= 12 {
            let found: Vec<_> = self
                .list()?
                .into_iter()
                .filter(|r| r.config.hex().starts_with(id))
                .collect();
            if let Some(first) = found.into_iter().next() {
                return Ok(first);
            }
        }
        Err(Error::ImageNotFound(name_or_id.to_string()))
    }

    /// Every record, by name.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.refs();
        let mut out = Vec::new();
        for entry in crate::files::entries(&dir)? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = fs::read(&path)
                && let Ok(record) = serde_json::from_slice::<ImageRecord>(&bytes)
            {
                out.push(record);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the record of `name`, then collects garbage. `in_use` names images containers use.
    pub fn remove(&self, name: &str, in_use: &[(String, String)]) -> Result<ImageRecord> {
        let _lock = lock(&self.paths)?;
        let record = self.find(name)?;
        if let Some((container, _)) = in_use.iter().find(|(_, image)| *image == record.name) {
            return Err(Error::ImageInUse {
                image: record.name,
                container: container.clone(),
            });
        }
        let path = self.record_path(&record.name);
        fs::remove_file(&path).map_err(io("removing", &path))?;
        self.collect_garbage(&[])?;
        Ok(record)
    }

    /// Removes blobs and snapshots no image record references (nor `keep`).
    pub fn collect_garbage(&self, keep: &[Digest]) -> Result<()> {
        let records = self.list()?;
        let mut blobs: HashSet<Digest> = keep.iter().cloned().collect();
        let mut chains: HashSet<Digest> = HashSet::new();
        for r in &records {
            blobs.insert(r.manifest.clone());
            blobs.insert(r.config.clone());
            blobs.extend(r.layers.iter().cloned());
            chains.extend(r.chain.iter().cloned());
        }
        let content = self.content();
        for d in content.list()? {
            if !blobs.contains(&d) {
                content.remove(&d)?;
            }
        }
        SnapshotStore::new(&self.paths).retain(&chains)
    }
}

/// Takes the lock that serialises imports, removals and garbage collection on this node.
pub fn lock(paths: &Paths) -> Result<nix::fcntl::Flock<fs::File>> {
    crate::files::lock(&paths.lock_file(), "the image store")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn platform_matching_honours_arm_variants() {
        assert!(p("arm64", Some("v8")).accepts(&p("arm64", None)));
        assert!(p("arm64", None).accepts(&p("arm64", Some("v8"))));
        assert!(p("arm", Some("v7")).accepts(&p("arm", Some("v7"))));
        assert!(!p("arm", Some("v7")).accepts(&p("arm", Some("v6"))));
        assert!(!p("amd64", None).accepts(&p("arm64", Some("v8"))));
        assert!(p("amd64", None).accepts(&p("amd64", None)));
    }
}
