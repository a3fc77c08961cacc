//! The runtime's state is plain files (ADR 012); these are the few operations it is built from:
//! files replaced whole (a reader sees the old or the new one, never a part), JSON records read
//! and written that way, directory listings where a missing directory means none, and the
//! exclusive file locks that serialise changes.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io, sys};

/// Writes a file by writing a temporary beside it, syncing it and renaming it over.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, true)
}

/// Writes a file that states a fact of this boot only (a process id, a socket): renamed over
/// like [`write_atomic`], but not synced, since after a crash it means nothing (and every sync
/// is a write an SD card pays for). A reader treats such a file it cannot parse as absent.
pub(crate) fn write_json_volatile<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    replace(
        path,
        &serde_json::to_vec_pretty(value).expect("serialises"),
        false,
    )
}

fn replace(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let tmp = dir.join(format!(".tmp-{}", crate::content::unique()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("writing", path)(e)
    })
}

/// Writes `value` as a JSON file, atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value).expect("serialises"))
}

/// Reads a JSON file; `None` when there is none.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Json {
                what: path.display().to_string(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", path)(e)),
    }
}

/// The entries of `dir`; none when it does not exist.
pub(crate) fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("listing", dir)(e)),
    }
}

/// Takes an exclusive lock on the file at `path` (created if missing), held until the returned
/// guard drops; `what` names what it guards, for the error.
pub(crate) fn lock(path: &Path, what: &str) -> Result<nix::fcntl::Flock<fs::File>> {
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("opening", path))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| sys(format!("locking {what}"))(e))
}
