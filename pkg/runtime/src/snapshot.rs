//! Snapshots: each layer unpacked once into `snapshots/<chain id hex>/fs`, shared by every image
//! that has the same layers below it, and mounted as overlayfs lower directories.
//!
//! A layer is unpacked into a temporary directory and renamed into place only after its diff
//! id checked out, so a snapshot directory that exists is complete.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::io;
use crate::{Error, Paths, Result};

/// The chain ids of a layer stack: ChainID(L0) = DiffID(L0),
/// ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let hex = hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()));
                Digest::from_hex(&hex).expect("sha256 hex")
            }
        };
        out.push(next);
    }
    out
}

/// The snapshots of one node.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

impl SnapshotStore {
    /// The store under `paths`.
    pub fn new(paths: &Paths) -> Self {
        SnapshotStore {
            root: paths.snapshots(),
        }
    }

    /// The unpacked tree of snapshot `chain`.
    pub fn fs(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex()).join("fs")
    }

    /// Whether snapshot `chain` exists.
    pub fn has(&self, chain: &Digest) -> bool {
        self.fs(chain).is_dir()
    }

    /// Unpacks `layer` (compressed or not) as snapshot `chain` unless it exists; checks that
    /// the uncompressed stream hashes to `diff_id`.
    pub fn unpack(&self, chain: &Digest, diff_id: &Digest, layer: impl Read) -> Result<bool> {
        if self.has(chain) {
            return Ok(false);
        }
        fs::create_dir_all(&self.root).map_err(io("creating", &self.root))?;
        let tmp = self.root.join(format!(".tmp-{}", crate::content::unique()));
        let fs_dir = tmp.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io("creating", &fs_dir))?;
        let result = crate::layer::unpack(layer, &fs_dir).and_then(|actual| {
            if &actual != diff_id {
                return Err(Error::DigestMismatch {
                    what: "layer (diff id)".into(),
                    expected: diff_id.to_string(),
                    actual: actual.to_string(),
                });
            }
            let target = self.root.join(chain.hex());
            fs::rename(&tmp, &target).map_err(io("renaming into", &target))
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|()| true)
    }

    /// Removes every snapshot not in `keep`, and leftovers of interrupted unpacks.
    pub fn retain(&self, keep: &HashSet<Digest>) -> Result<()> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("listing", &self.root)(e)),
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep_it = Digest::from_hex(&name).is_some_and(|d| keep.contains(&d));
            if !keep_it {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io("removing", &path))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
