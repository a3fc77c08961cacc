//! Pod sandbox network namespaces, persisted as bind mounts under `RUN/netns/<name>` (by
//! default `/run/cairn/netns/`) so that a pod's containers can join one namespace and it
//! outlives any of them. Made like `ip netns add`: a short-lived thread unshares its network
//! namespace (only that thread's) and bind-mounts it onto the file.

use std::fs;
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{io, sys};
use crate::{Error, Paths, Result};

/// The file of sandbox namespace `name`.
pub fn path(paths: &Paths, name: &str) -> PathBuf {
    paths.run.join("netns").join(name)
}

/// Takes the lock that keeps [`forget_stale`] from taking a namespace file that is being
/// created (it exists a moment before its bind mount does).
fn lock(paths: &Paths) -> Result<nix::fcntl::Flock<fs::File>> {
    crate::files::lock(&paths.run.join("netns.lock"), "the network namespaces")
}

/// Forgets sandboxes whose bind mount is gone (the namespace died with it, e.g. the mount was
/// lost in a reboot-like cleanup while the file stayed); returns their names.
pub fn forget_stale(paths: &Paths) -> Result<Vec<String>> {
    let names = list(paths);
    if names.is_empty() {
        return Ok(names);
    }
    let _lock = lock(paths)?;
    let mut forgotten = Vec::new();
    for name in list(paths) {
        let file = path(paths, &name);
        if !crate::shim::is_mount_point(&file) {
            fs::remove_file(&file).map_err(io("removing", &file))?;
            forgotten.push(name);
        }
    }
    Ok(forgotten)
}

/// Creates the network namespace `name`; returns its path.
pub fn create(paths: &Paths, name: &str) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(Error::InvalidSetting(format!(
            "network namespace name {name:?}"
        )));
    }
    let _lock = lock(paths)?;
    let dir = paths.run.join("netns");
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let file = dir.join(name);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::InvalidSetting(format!("network namespace {name:?} exists"))
            }
            _ => io("creating", &file)(e),
        })?;
    let target = file.clone();
    let made = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare(CLONE_NEWNET)"))?;
        loopback_up()?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!(
            "bind-mounting the namespace on {}",
            target.display()
        )))
    })
    .join()
    .map_err(|_| Error::Shim("the namespace thread panicked".into()))?;
    if let Err(e) = made {
        let _ = fs::remove_file(&file);
        return Err(e);
    }
    Ok(file)
}

/// Brings up `lo` in this thread's network namespace, as CNI's loopback plugin would.
fn loopback_up() -> Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket for ioctl"))?;
    #[allow(unsafe_code)]
    // SAFETY: `ifreq` is plain old data (all-zero is valid); the name is NUL-terminated within
    // IFNAMSIZ; both ioctls read/write only that struct, which outlives the calls.
    let rc = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req);
        }
        rc
    };
    if rc != 0 {
        return Err(Error::Sys {
            op: "bringing up lo".into(),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Removes the network namespace `name` (its processes must be gone for it to disappear).
pub fn remove(paths: &Paths, name: &str) -> Result<()> {
    let file = path(paths, name);
    if !file.exists() {
        return Err(Error::InvalidSetting(format!(
            "no network namespace {name:?}"
        )));
    }
    let _ = nix::mount::umount2(&file, MntFlags::MNT_DETACH);
    fs::remove_file(&file).map_err(io("removing", &file))
}

/// The names of the sandbox namespaces.
pub fn list(paths: &Paths) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(paths.run.join("netns"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
