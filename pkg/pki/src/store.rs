//! The server's CA on disk, under `DATA/server/tls/`.
//!
//! Owns the layout of that directory (`server-ca.crt`, and `server-ca.key` at mode 0600) and
//! writing files so that a crash never leaves one half-written. It does not decide where the
//! directory is, and it holds no lock: one server process owns a data directory.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::ca::{Ca, PemPart, SERVER_CA_NAME};
use crate::error::{Error, Result};

/// File name of the cluster CA certificate.
pub const CA_CERT_FILE: &str = "server-ca.crt";

/// File name of the cluster CA private key.
pub const CA_KEY_FILE: &str = "server-ca.key";

/// Mode of private key files.
const KEY_MODE: u32 = 0o600;

/// Mode of certificate files.
const CERT_MODE: u32 = 0o644;

/// Mode of the directory when this crate creates it.
const DIR_MODE: u32 = 0o700;

/// The server's PKI directory and the CA loaded from it.
#[derive(Debug)]
pub struct ServerPki {
    dir: PathBuf,
    ca: Ca,
}

impl ServerPki {
    /// Loads the CA from `dir`, creating the directory and a new CA on first use.
    ///
    /// - Both files present: they are loaded; a file that cannot be used gives
    ///   [`Error::CorruptFile`] naming it, and is never overwritten.
    /// - Neither present: a new CA is generated and written, key first, certificate last.
    /// - Key present, certificate absent: an earlier creation stopped between the two writes
    ///   (the certificate is the commit point), so the certificate is made from that key, as
    ///   k3s does. No token can pin a certificate that was never written.
    /// - Certificate present, key absent: [`Error::MissingCaKey`]. The CA is never replaced
    ///   behind the back of nodes that already trust it.
    pub fn load_or_create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| io_error(dir, source))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let ca = match (read_optional(&cert_path)?, read_optional(&key_path)?) {
            (Some(cert), Some(key)) => load_ca(&cert_path, &cert, &key_path, &key)?,
            (Some(_), None) => return Err(Error::MissingCaKey { key_path }),
            (None, Some(key)) => {
                let key = text(&key_path, key)?;
                let ca = Ca::from_key_pem(&key, SERVER_CA_NAME)
                    .map_err(|err| corrupt(&key_path, err))?;
                write_atomic(&cert_path, ca.cert_pem().as_bytes(), CERT_MODE)?;
                ca
            }
            (None, None) => {
                let ca = Ca::generate()?;
                write_atomic(&key_path, ca.key_pem().as_bytes(), KEY_MODE)?;
                write_atomic(&cert_path, ca.cert_pem().as_bytes(), CERT_MODE)?;
                ca
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            ca,
        })
    }

    /// Loads the CA from `dir`, which must already hold both files.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert = fs::read(&cert_path).map_err(|source| io_error(&cert_path, source))?;
        let key = match fs::read(&key_path) {
            Ok(key) => key,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(Error::MissingCaKey { key_path });
            }
            Err(source) => return Err(io_error(&key_path, source)),
        };
        let ca = load_ca(&cert_path, &cert, &key_path, &key)?;
        Ok(Self {
            dir: dir.to_owned(),
            ca,
        })
    }

    /// Reads the files again, for a caller that replaced them (CA rotation).
    pub fn reload(&mut self) -> Result<()> {
        *self = Self::load(&self.dir)?;
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The CA bundle as served at `/cacerts`, byte for byte the certificate file.
    pub fn ca_bundle_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Path of the CA certificate file.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }

    /// Path of the CA key file.
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir.join(CA_KEY_FILE)
    }
}

/// Writes `contents` to `path` so that `path` holds either its old contents or all of the new,
/// never a mix, even across a crash; a new file gets `mode` (before the umask).
///
/// Writes `.<name>.tmp` beside it, syncs it, renames it over `path`, then syncs the directory so
/// the rename itself is durable.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io_error(
            path,
            std::io::Error::new(ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A leftover from a crash is ours to discard; removing it also makes sure `mode` applies.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(source) => return Err(io_error(&tmp, source)),
    }
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp, source));
    }
    fs::rename(&tmp, path).map_err(|source| io_error(path, source))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_error(dir, source))
}

fn load_ca(cert_path: &Path, cert: &[u8], key_path: &Path, key: &[u8]) -> Result<Ca> {
    let cert = text(cert_path, cert.to_vec())?;
    let key = text(key_path, key.to_vec())?;
    Ca::from_pem_parts(&cert, &key).map_err(|(part, err)| match part {
        PemPart::Cert => corrupt(cert_path, err),
        PemPart::Key => corrupt(key_path, err),
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, source)),
    }
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        let source = std::io::Error::new(ErrorKind::InvalidData, err);
        corrupt(path, io_error(path, source))
    })
}

fn corrupt(path: &Path, source: Error) -> Error {
    Error::CorruptFile {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{Token, verify_ca};

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reloads_the_same_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("server/tls");
        let first = ServerPki::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(CA_CERT_FILE)), 0o644);
        assert_eq!(
            fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap(),
            first.ca_bundle_pem()
        );
        let token = Token::generate_server(first.ca_bundle_pem().as_bytes());

        let second = ServerPki::load_or_create(&dir).unwrap();
        assert_eq!(second.ca().cert_pem(), first.ca().cert_pem());
        assert_eq!(second.ca().key_pem(), first.ca().key_pem());
        verify_ca(&token, second.ca_bundle_pem().as_bytes()).unwrap();

        let mut third = ServerPki::load(&dir).unwrap();
        third.reload().unwrap();
        assert_eq!(third.ca().cert_pem(), first.ca().cert_pem());

        // No temporary files are left behind.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [CA_CERT_FILE, CA_KEY_FILE]);
    }

    #[test]
    fn corrupt_certificate_is_named_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        ServerPki::load_or_create(tmp.path()).unwrap();
        let cert_path = tmp.path().join(CA_CERT_FILE);
        fs::write(&cert_path, "-----BEGIN CERTIFICATE-----\ntrunc").unwrap();
        let err = ServerPki::load_or_create(tmp.path()).unwrap_err();
        match &err {
            Error::CorruptFile { path, .. } => assert_eq!(path, &cert_path),
            other => panic!("expected corrupt file, got {other:?}"),
        }
        assert!(err.to_string().contains(CA_CERT_FILE), "{err}");
        assert_eq!(
            fs::read_to_string(&cert_path).unwrap(),
            "-----BEGIN CERTIFICATE-----\ntrunc"
        );
    }

    #[test]
    fn corrupt_or_foreign_key_is_named_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        ServerPki::load_or_create(tmp.path()).unwrap();
        let key_path = tmp.path().join(CA_KEY_FILE);
        let other = Ca::generate().unwrap();
        for bad in [
            &b"\xff\xfe not utf-8"[..],
            b"garbage",
            other.key_pem().as_bytes(),
        ] {
            fs::write(&key_path, bad).unwrap();
            match ServerPki::load_or_create(tmp.path()).unwrap_err() {
                Error::CorruptFile { path, .. } => assert_eq!(path, key_path),
                other => panic!("expected corrupt file, got {other:?}"),
            }
            assert_eq!(fs::read(&key_path).unwrap(), bad);
        }
    }

    #[test]
    fn missing_key_is_an_error_not_a_new_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ServerPki::load_or_create(tmp.path()).unwrap();
        fs::remove_file(pki.ca_key_path()).unwrap();
        let err = ServerPki::load_or_create(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::MissingCaKey { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(pki.ca_cert_path()).unwrap(),
            pki.ca_bundle_pem()
        );
        assert!(matches!(
            ServerPki::load(tmp.path()).unwrap_err(),
            Error::MissingCaKey { .. }
        ));
    }

    #[test]
    fn interrupted_creation_is_completed_with_the_existing_key() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ServerPki::load_or_create(tmp.path()).unwrap();
        let key = pki.ca().key_pem().to_owned();
        // A crash after the key was written but before the certificate was.
        fs::remove_file(pki.ca_cert_path()).unwrap();
        fs::write(tmp.path().join(".server-ca.crt.tmp"), "half").unwrap();
        let again = ServerPki::load_or_create(tmp.path()).unwrap();
        assert_eq!(again.ca().key_pem(), key);
        assert_eq!(fs::read_to_string(again.ca_key_path()).unwrap(), key);
        assert!(!tmp.path().join(".server-ca.crt.tmp").exists());
        ServerPki::load(tmp.path()).unwrap();
    }

    #[test]
    fn write_atomic_replaces_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two, longer", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two, longer");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn load_of_empty_dir_names_the_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        match ServerPki::load(tmp.path()).unwrap_err() {
            Error::Io { path, source } => {
                assert_eq!(path, tmp.path().join(CA_CERT_FILE));
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected i/o error, got {other:?}"),
        }
    }
}
