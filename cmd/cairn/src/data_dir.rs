//! A server's data directory: where each piece of its state lives, and the lock that keeps two
//! processes from using it at once.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The paths under `DATA/server`.
#[derive(Debug, Clone)]
pub struct ServerDir {
    root: PathBuf,
}

impl ServerDir {
    /// The server state under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        ServerDir {
            root: data_dir.join("server"),
        }
    }

    /// The store's database.
    pub fn db(&self) -> PathBuf {
        self.root.join("db").join("state.redb")
    }

    /// Certificates and keys.
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The join token (mode 0600).
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }

    /// Takes the directory's lock for the life of the returned file, or says who holds it.
    pub fn lock(&self) -> Result<File> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("create {}", self.root.display()))?;
        let path = self.root.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        if file.try_lock().is_err() {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "data directory {} is in use by another cairn process (pid {})",
                self.root.display(),
                holder.trim()
            );
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(file)
    }
}
