//! Air-gap tarballs dropped into `DATA/agent/images/` (as with k3s's `agent/images/`): every
//! `*.tar`, `*.tar.gz`/`*.tgz` and `*.tar.zst`/`*.tar.zstd` there is imported once. What was
//! imported, or refused, is remembered by file name, size and modification time in
//! `DATA/agent/images/airgap.json`, so a file is tried again only when it changes (a refused
//! one is not retried on every open, a replaced one is imported anew).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::files::{read_json, write_json};
use crate::{Paths, Result};

/// What is remembered of a tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    size: u64,
    modified_ns: i128,
    /// The images it held, or why it was refused.
    outcome: std::result::Result<Vec<String>, String>,
}

/// One tarball's import, as [`import_new`] reports it.
#[derive(Debug)]
pub struct Imported {
    /// The file's name in the directory.
    pub file: String,
    /// The images imported from it, or why it was refused.
    pub outcome: std::result::Result<Vec<String>, String>,
}

fn is_tarball(name: &str) -> bool {
    [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"]
        .iter()
        .any(|ext| name.ends_with(ext))
        && !name.starts_with('.')
}

fn stamp(path: &Path) -> Option<(u64, i128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?;
    let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Some((meta.len(), ns))
}

/// Imports the tarballs in `DATA/agent/images/` that are new or changed since they were last
/// looked at; returns what it did (nothing when no file is new).
pub fn import_new(paths: &Paths) -> Result<Vec<Imported>> {
    let dir = paths.images();
    let mut names: Vec<String> = crate::files::entries(&dir)?
        .iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_tarball(n))
        .collect();
    let record = dir.join("airgap.json");
    if names.is_empty() {
        // Every tarball is gone: so is what was remembered of them.
        let _ = std::fs::remove_file(&record);
        return Ok(Vec::new());
    }
    names.sort();
    // Two commands opening at once import a new file once.
    let _lock = crate::files::lock(&dir.join("airgap.lock"), "the air-gap images")?;
    let mut seen: BTreeMap<String, Seen> = read_json(&record)?.unwrap_or_default();
    let mut done = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let Some((size, modified_ns)) = stamp(&path) else {
            continue;
        };
        if seen
            .get(name)
            .is_some_and(|s| s.size == size && s.modified_ns == modified_ns)
        {
            continue;
        }
        let outcome = crate::archive::import(paths, &path)
            .map(|records| records.into_iter().map(|r| r.name).collect())
            .map_err(|e| crate::shim::chain(&e));
        seen.insert(
            name.clone(),
            Seen {
                size,
                modified_ns,
                outcome: outcome.clone(),
            },
        );
        done.push(Imported {
            file: name.clone(),
            outcome,
        });
    }
    // Forget files that are gone, so that one put back is imported again.
    let known = seen.len();
    seen.retain(|name, _| names.contains(name));
    if !done.is_empty() || seen.len() != known {
        write_json(&record, &seen)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarballs_by_name() {
        for yes in ["a.tar", "b.tar.gz", "c.tgz", "d.tar.zst", "e.tar.zstd"] {
            assert!(is_tarball(yes), "{yes}");
        }
        for no in ["airgap.json", ".tmp-1.tar", "notes.txt", "x.tar.bz2"] {
            assert!(!is_tarball(no), "{no}");
        }
    }
}
