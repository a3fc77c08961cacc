//! Import of air-gap tarballs: `docker save` (docker-archive) and OCI layouts in a tar
//! (oci-archive), each plain, gzip or zstd.
//!
//! The tarball is read once: every file goes into the content store's ingest area while it is
//! hashed; then the documents are interpreted, every blob checked against the digest it is
//! named or referenced by, committed, its layers unpacked, and the image record written last.
//! On any error the blobs and snapshots the import added are collected again, so nothing
//! half-imported is left or trusted.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::content::{ContentStore, Ingest};
use crate::digest::{Digest, HashingReader};
use crate::error::io;
use crate::image::{
    DOCKER_LIST, Descriptor, ImageConfig, ImageRecord, ImageStore, Index, Manifest, OCI_INDEX,
    OCI_MANIFEST, Platform,
};
use crate::snapshot::{SnapshotStore, chain_ids};
use crate::{Error, Paths, Result};

/// Files held in memory for parsing are at most this big.
const SMALL: u64 = 4 << 20;

/// One file of the tarball, in the ingest area.
struct Member {
    ingest: Option<Ingest>,
    digest: Digest,
    size: u64,
    small: Option<Vec<u8>>,
}

/// The tarball's files by path, plus its links.
struct Members {
    path: PathBuf,
    files: HashMap<String, Member>,
    links: HashMap<String, String>,
}

/// Imports every image in the tarball at `file`; returns their records.
pub fn import(paths: &Paths, file: &Path) -> Result<Vec<ImageRecord>> {
    let images = ImageStore::new(paths);
    let _lock = crate::image::lock(paths)?;
    let result = import_inner(paths, &images, file);
    if result.is_err() {
        // Collect what this import added (the caller holds the images lock).
        let _ = images.collect_garbage(&[]);
    }
    result
}

fn import_inner(paths: &Paths, images: &ImageStore, file: &Path) -> Result<Vec<ImageRecord>> {
    let content = images.content();
    let mut members = read_members(&content, file)?;
    let invalid = |reason: String| Error::InvalidArchive {
        path: file.to_path_buf(),
        reason,
    };
    let plans = if members.files.contains_key("index.json") {
        oci_plans(&mut members)?
    } else if members.files.contains_key("manifest.json") {
        docker_plans(&mut members)?
    } else {
        return Err(invalid(
            "neither index.json (oci-archive) nor manifest.json (docker-archive) found".into(),
        ));
    };
    if plans.is_empty() {
        return Err(invalid("no image in the archive".into()));
    }
    let snapshots = SnapshotStore::new(paths);
    let mut records = Vec::new();
    for plan in plans {
        let config: ImageConfig =
            serde_json::from_slice(&plan.config_bytes).map_err(|source| Error::Json {
                what: format!("image config in {}", file.display()),
                source,
            })?;
        if config.rootfs.diff_ids.len() != plan.layers.len() {
            return Err(invalid(format!(
                "the config lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                plan.layers.len()
            )));
        }
        // Commit the blobs this image needs.
        let (manifest, _) = content.write_bytes(&plan.manifest_bytes)?;
        let (config_digest, _) = content.write_bytes(&plan.config_bytes)?;
        let mut size = plan.config_bytes.len() as u64;
        for layer in &plan.layers {
            if let Some(member) = members.files.get_mut(&layer.member)
                && let Some(ingest) = member.ingest.take()
            {
                content.commit(ingest, &member.digest)?;
            }
            size += layer.size;
        }
        let chain = chain_ids(&config.rootfs.diff_ids);
        for ((layer, diff_id), chain_id) in
            plan.layers.iter().zip(&config.rootfs.diff_ids).zip(&chain)
        {
            let blob = content.open(&layer.digest)?;
            snapshots.unpack(chain_id, diff_id, blob)?;
        }
        let record = ImageRecord {
            name: plan.name,
            manifest,
            config: config_digest,
            layers: plan.layers.iter().map(|l| l.digest.clone()).collect(),
            chain,
            size,
        };
        records.push(record);
    }
    for record in &records {
        images.put(record)?;
    }
    Ok(records)
}

/// What to store for one image of the archive.
struct Plan {
    name: String,
    manifest_bytes: Vec<u8>,
    config_bytes: Vec<u8>,
    layers: Vec<PlannedLayer>,
}

struct PlannedLayer {
    member: String,
    digest: Digest,
    size: u64,
}

fn read_members(content: &ContentStore, file: &Path) -> Result<Members> {
    let invalid = |reason: String| Error::InvalidArchive {
        path: file.to_path_buf(),
        reason,
    };
    let f = File::open(file).map_err(io("opening", file))?;
    let plain = crate::layer::decompress(f).map_err(|e| invalid(format!("decompressing: {e}")))?;
    let mut archive = tar::Archive::new(plain);
    let mut members = Members {
        path: file.to_path_buf(),
        files: HashMap::new(),
        links: HashMap::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("reading: {e}")))?;
    let mut count = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("reading: {e}")))?;
        count += 1;
        let raw = entry
            .path()
            .map_err(|e| invalid(format!("entry path: {e}")))?
            .into_owned();
        let Some(name) = clean(&raw) else {
            return Err(invalid(format!(
                "entry {} leaves the archive",
                raw.display()
            )));
        };
        if name.is_empty() {
            continue; // the archive's root directory
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| invalid(format!("link {name}: {e}")))?
                .unwrap_or_default()
                .into_owned();
            let resolved = if kind.is_symlink() {
                Path::new(&name)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(target)
            } else {
                target
            };
            if let Some(resolved) = clean(&resolved) {
                members.links.insert(name, resolved);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        let mut ingest = content.ingest()?;
        let mut hashing = HashingReader::new(&mut entry);
        let mut small = None;
        if size <= SMALL {
            let mut buf = Vec::with_capacity(size as usize);
            hashing
                .read_to_end(&mut buf)
                .map_err(|e| invalid(format!("reading {name}: {e}")))?;
            std::io::Write::write_all(&mut ingest, &buf).map_err(io("writing", file))?;
            small = Some(buf);
        } else {
            std::io::copy(&mut hashing, ingest.file())
                .map_err(|e| invalid(format!("reading {name}: {e}")))?;
        }
        let (digest, read) = hashing
            .finish()
            .map_err(|e| invalid(format!("reading {name}: {e}")))?;
        if read != size {
            return Err(invalid(format!(
                "{name} is truncated ({read} of {size} bytes)"
            )));
        }
        members.files.insert(
            name,
            Member {
                ingest: Some(ingest),
                digest,
                size,
                small,
            },
        );
    }
    if count == 0 {
        return Err(invalid("empty or not a tar archive".into()));
    }
    Ok(members)
}

impl Members {
    fn invalid(&self, reason: String) -> Error {
        Error::InvalidArchive {
            path: self.path.clone(),
            reason,
        }
    }

    /// The member at `name`, following links.
    fn resolve(&self, name: &str) -> Result<&str> {
        let mut name = name.to_string();
        for _ in 0..16 {
            if let Some((key, _)) = self.files.get_key_value(&name) {
                return Ok(key.as_str());
            }
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(self.invalid(format!("{name} is missing")))
    }

    fn member(&self, name: &str) -> Result<(&str, &Member)> {
        let key = self.resolve(name)?;
        Ok((key, &self.files[key]))
    }

    fn small(&self, name: &str) -> Result<Vec<u8>> {
        let (_, m) = self.member(name)?;
        m.small
            .clone()
            .ok_or_else(|| self.invalid(format!("{name} is too large for a document")))
    }

    /// An OCI layout blob, checked against its descriptor.
    fn blob(&self, d: &Descriptor) -> Result<(String, &Member)> {
        let name = format!("blobs/sha256/{}", d.digest.hex());
        let (key, m) = self.member(&name)?;
        if m.digest != d.digest {
            return Err(Error::DigestMismatch {
                what: format!("{name} in {}", self.path.display()),
                expected: d.digest.to_string(),
                actual: m.digest.to_string(),
            });
        }
        if d.size != 0 && d.size != m.size {
            return Err(self.invalid(format!(
                "{name} has {} bytes, its descriptor says {}",
                m.size, d.size
            )));
        }
        Ok((key.to_string(), m))
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: format!("{what} in {}", self.path.display()),
            source,
        })
    }
}

fn oci_plans(members: &mut Members) -> Result<Vec<Plan>> {
    let index: Index = members.json(&members.small("index.json")?, "index.json")?;
    let host = Platform::host();
    let mut plans = Vec::new();
    for entry in &index.manifests {
        let raw_name = entry
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| entry.annotations.get("org.opencontainers.image.ref.name"))
            .ok_or_else(|| {
                members.invalid("an index.json entry has no image name annotation".into())
            })?;
        let name = crate::reference::normalize(raw_name).map_err(|_| {
            members.invalid(format!("image name {raw_name:?} is not a valid reference"))
        })?;
        let mut desc = entry.clone();
        let (_, member) = members.blob(&desc)?;
        let mut bytes = member.small.clone().unwrap_or_default();
        let is_index = |d: &Descriptor, bytes: &[u8]| {
            d.media_type == OCI_INDEX
                || d.media_type == DOCKER_LIST
                || serde_json::from_slice::<Index>(bytes)
                    .is_ok_and(|_| !bytes.windows(8).any(|w| w == b"\"config\""))
        };
        if is_index(&desc, &bytes) {
            let nested: Index = members.json(&bytes, "image index")?;
            desc = nested
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().is_some_and(|p| host.accepts(p)))
                .cloned()
                .ok_or_else(|| Error::NoPlatform {
                    platform: host.to_string(),
                    what: format!("{name} in {}", members.path.display()),
                })?;
            let (_, member) = members.blob(&desc)?;
            bytes = member.small.clone().unwrap_or_default();
        }
        let manifest: Manifest = members.json(&bytes, "image manifest")?;
        if desc.media_type.is_empty()
            && manifest
                .media_type
                .as_deref()
                .is_some_and(|m| m != OCI_MANIFEST && m != crate::image::DOCKER_MANIFEST)
        {
            return Err(members.invalid(format!(
                "unsupported manifest type {:?}",
                manifest.media_type
            )));
        }
        let (_, config_member) = members.blob(&manifest.config)?;
        let config_bytes = config_member
            .small
            .clone()
            .ok_or_else(|| members.invalid("image config too large".into()))?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let (key, m) = members.blob(l)?;
            layers.push(PlannedLayer {
                member: key,
                digest: m.digest.clone(),
                size: m.size,
            });
        }
        plans.push(Plan {
            name,
            manifest_bytes: bytes,
            config_bytes,
            layers,
        });
    }
    Ok(plans)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_plans(members: &mut Members) -> Result<Vec<Plan>> {
    let entries: Vec<DockerEntry> =
        members.json(&members.small("manifest.json")?, "manifest.json")?;
    let mut plans = Vec::new();
    for entry in entries {
        let (_, config_member) = members.member(&entry.config)?;
        let config_bytes = config_member
            .small
            .clone()
            .ok_or_else(|| members.invalid("image config too large".into()))?;
        // docker-archive names the config by its digest: check it when it does.
        let stem = Path::new(&entry.config)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(named) = Digest::from_hex(&stem).or_else(|| {
            Path::new(&entry.config)
                .file_name()
                .and_then(|n| Digest::from_hex(&n.to_string_lossy()))
        }) && named != config_member.digest
        {
            return Err(Error::DigestMismatch {
                what: format!("{} in {}", entry.config, members.path.display()),
                expected: named.to_string(),
                actual: config_member.digest.to_string(),
            });
        }
        let config_digest = config_member.digest.clone();
        let mut layers = Vec::new();
        let mut descs = Vec::new();
        for l in &entry.layers {
            let (key, m) = members.member(l)?;
            descs.push(Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                digest: m.digest.clone(),
                size: m.size,
                platform: None,
                annotations: Default::default(),
            });
            layers.push(PlannedLayer {
                member: key.to_string(),
                digest: m.digest.clone(),
                size: m.size,
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".into(),
                digest: config_digest,
                size: config_bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
            },
            layers: descs,
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let tags = entry.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            return Err(members.invalid(format!("image {} has no RepoTags", entry.config)));
        }
        for tag in tags {
            let name = crate::reference::normalize(&tag).map_err(|_| {
                members.invalid(format!("image name {tag:?} is not a valid reference"))
            })?;
            plans.push(Plan {
                name,
                manifest_bytes: manifest_bytes.clone(),
                config_bytes: config_bytes.clone(),
                layers: layers
                    .iter()
                    .map(|l| PlannedLayer {
                        member: l.member.clone(),
                        digest: l.digest.clone(),
                        size: l.size,
                    })
                    .collect(),
            });
        }
    }
    Ok(plans)
}

/// `path` without `.`, a leading `/` and refusing `..`, as a string (archive member names).
fn clean(path: &Path) -> Option<String> {
    crate::layer::clean(path).map(|p| p.to_string_lossy().into_owned())
}
