//! The content store: blobs named by their sha256 under `images/blobs/sha256/<hex>`.
//!
//! A blob is written to `images/ingest/` while it is hashed and renamed into place only once its
//! digest is known (and, when one was expected, matches): a file under `blobs/` is always whole
//! and correct, so an interrupted import leaves nothing that is later trusted.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::error::io;
use crate::{Error, Result};

/// The blob store of one node.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// A blob being written: hashed on the way, in `ingest/` until committed.
pub struct Ingest {
    path: PathBuf,
    file: File,
}

impl ContentStore {
    /// The store under `images_dir` (`DATA/agent/images`).
    pub fn new(images_dir: &Path) -> Self {
        ContentStore {
            root: images_dir.to_path_buf(),
        }
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a whole (small) blob, checking its digest again.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let bytes = fs::read(&path).map_err(io("reading blob", &path))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(io("opening blob", &path))
    }

    /// Starts writing a blob.
    pub fn ingest(&self) -> Result<Ingest> {
        let dir = self.root.join("ingest");
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let path = dir.join(format!("{}-{}", std::process::id(), unique()));
        let file = File::create(&path).map_err(io("creating", &path))?;
        Ok(Ingest { path, file })
    }

    /// A fresh path in the ingest area for a download (the caller removes it).
    pub fn ingest_path(&self) -> Result<PathBuf> {
        let dir = self.root.join("ingest");
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        Ok(dir.join(format!("dl-{}-{}", std::process::id(), unique())))
    }

    /// Streams `reader` into the store; returns its digest, its size and whether the blob is new.
    pub fn write_from(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64, bool)> {
        let mut ingest = self.ingest()?;
        let mut hashing = HashingReader::new(reader);
        std::io::copy(&mut hashing, &mut ingest.file).map_err(io("writing", &ingest.path))?;
        let (digest, size) = hashing.finish().map_err(io("reading", &ingest.path))?;
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(Error::DigestMismatch {
                what: "blob".into(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let new = self.commit(ingest, &digest)?;
        Ok((digest, size, new))
    }

    /// Writes small bytes as a blob; returns the digest and whether it is new.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<(Digest, bool)> {
        let (digest, _, new) = self.write_from(bytes, None)?;
        Ok((digest, new))
    }

    /// Moves a finished ingest into place under `digest` (already verified by the caller).
    /// Returns whether the blob was new.
    pub fn commit(&self, ingest: Ingest, digest: &Digest) -> Result<bool> {
        ingest
            .file
            .sync_all()
            .map_err(io("syncing", &ingest.path))?;
        let target = self.path(digest);
        if target.is_file() {
            let _ = fs::remove_file(&ingest.path);
            return Ok(false);
        }
        fs::create_dir_all(self.blobs()).map_err(io("creating", self.blobs()))?;
        fs::rename(&ingest.path, &target).map_err(io("renaming into", &target))?;
        Ok(true)
    }

    /// Removes a blob (absent is fine).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs();
        Ok(crate::files::entries(&dir)?
            .into_iter()
            .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()))
            .collect())
    }

    /// Removes leftovers of interrupted writes.
    pub fn clean_ingest(&self) {
        let _ = fs::remove_dir_all(self.root.join("ingest"));
    }
}

impl Ingest {
    /// The file being written.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // After a commit the path no longer exists; otherwise this drops a half-written blob.
        let _ = fs::remove_file(&self.path);
    }
}

/// A name unique within this process.
pub(crate) fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_is_only_committed_when_its_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::new(dir.path());
        let wrong = Digest::of(b"other");
        assert!(matches!(
            store.write_from(&b"data"[..], Some(&wrong)),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(store.list().unwrap().is_empty());
        let (d, size, new) = store
            .write_from(&b"data"[..], Some(&Digest::of(b"data")))
            .unwrap();
        assert_eq!((size, new), (4, true));
        assert_eq!(store.read(&d).unwrap(), b"data");
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }
}
