//! Unpacking a layer tarball into an empty snapshot directory, in overlayfs's form.
//!
//! Layer whiteouts become overlayfs ones: `.wh.NAME` → a 0:0 character device `NAME`,
//! `.wh..wh..opq` in a directory → `trusted.overlay.opaque=y` on it. Hard links, symlinks,
//! device nodes and fifos, ownership, modes, mtimes and xattrs are kept. Compression (gzip or
//! zstd) is recognised by its magic bytes.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{Gid, Uid, fchownat};

use crate::digest::{Digest, HashingReader};
use crate::error::{io, sys};
use crate::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A reader that undoes gzip or zstd compression when the stream starts with their magic.
pub fn decompress<'a>(reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

/// Unpacks the (possibly compressed) layer `reader` into `dst` (an empty directory) and
/// returns the digest of the uncompressed tar stream (its diff id).
pub fn unpack(reader: impl Read, dst: &Path) -> Result<Digest> {
    let what = || format!("layer into {}", dst.display());
    let plain = decompress(reader).map_err(io("decompressing layer", dst))?;
    let mut hashing = HashingReader::new(plain);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(true);
        archive.set_overwrite(true);
        let entries = archive.entries().map_err(io("reading", dst))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::InvalidArchive {
                path: dst.to_path_buf(),
                reason: format!("reading {}: {e}", what()),
            })?;
            apply_entry(&mut entry, dst)?;
        }
    }
    let (digest, _) = hashing.finish().map_err(io("reading", dst))?;
    Ok(digest)
}

fn apply_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dst: &Path) -> Result<()> {
    let raw = entry
        .path()
        .map_err(io("reading entry path in", dst))?
        .into_owned();
    let rel = clean(&raw).ok_or_else(|| Error::InvalidArchive {
        path: dst.to_path_buf(),
        reason: format!("entry {} leaves the layer", raw.display()),
    })?;
    let Some(file_name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(()); // the root itself
    };
    let parent = dst.join(rel.parent().unwrap_or(Path::new("")));
    if file_name == OPAQUE {
        fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        xattr_set(&parent, "trusted.overlay.opaque", b"y")?;
        return Ok(());
    }
    if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
        fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        let target = parent.join(hidden);
        remove_any(&target);
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(sys(format!("making whiteout {}", target.display())))?;
        return Ok(());
    }
    let kind = entry.header().entry_type();
    if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        let target = dst.join(&rel);
        fs::create_dir_all(&parent).map_err(io("creating", &parent))?;
        remove_any(&target);
        let header = entry.header();
        let mode = header.mode().map_err(io("reading mode in", dst))?;
        let (flag, dev) = if kind.is_fifo() {
            (SFlag::S_IFIFO, 0)
        } else {
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let flag = if kind.is_character_special() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            (flag, makedev(major.into(), minor.into()))
        };
        mknod(&target, flag, Mode::from_bits_truncate(mode & 0o7777), dev)
            .map_err(sys(format!("making device {}", target.display())))?;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        fchownat(
            None,
            &target,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys(format!("chown {}", target.display())))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io("chmod", &target))?;
        return Ok(());
    }
    entry.unpack_in(dst).map_err(|e| Error::InvalidArchive {
        path: dst.to_path_buf(),
        reason: format!("unpacking {}: {e}", raw.display()),
    })?;
    Ok(())
}

/// `path` without `.`, a leading `/`, and refusing `..`.
pub(crate) fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidArchive {
        path: path.to_path_buf(),
        reason: "path with NUL".into(),
    })?;
    let n = CString::new(name).expect("static name");
    // lsetxattr through libc: nix has no xattr wrapper.
    #[allow(unsafe_code)]
    // SAFETY: both strings are NUL-terminated and live through the call; value is a valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io("setting xattr on", path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_refuses_parent_components() {
        assert_eq!(clean(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean(Path::new("/a")).unwrap(), PathBuf::from("a"));
        assert!(clean(Path::new("a/../../b")).is_none());
    }
}
