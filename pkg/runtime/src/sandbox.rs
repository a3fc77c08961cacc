//! Pod sandboxes: the network, IPC and UTS namespaces a pod's containers share, persisted as
//! bind mounts (`RUN/netns/<name>`, `RUN/ipcns/<name>`, `RUN/utsns/<name>`; by default under
//! `/run/cairn/`) so that they outlive any of the containers. Made like `ip netns add`: a
//! short-lived thread unshares its own namespaces, brings up `lo`, sets the hostname and
//! bind-mounts each namespace onto its file.

use std::fs;
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{io, sys};
use crate::{Error, Paths, Result};

/// A kind of namespace a sandbox holds: its directory under the run directory and its name in
/// `/proc/*/ns/` and in an OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The network: interfaces, addresses, ports.
    Network,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// The hostname.
    Uts,
}

impl Kind {
    /// Every kind, network first (its file is the sandbox's: it is what `ls` lists).
    pub const ALL: [Kind; 3] = [Kind::Network, Kind::Ipc, Kind::Uts];

    fn dir(self) -> &'static str {
        match self {
            Kind::Network => "netns",
            Kind::Ipc => "ipcns",
            Kind::Uts => "utsns",
        }
    }

    fn proc_name(self) -> &'static str {
        match self {
            Kind::Network => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
        }
    }

    /// The namespace type in an OCI spec.
    pub fn oci_type(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Kind::Network => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// The file of sandbox `name`'s namespace of `kind`.
pub fn path(paths: &Paths, name: &str, kind: Kind) -> PathBuf {
    paths.run.join(kind.dir()).join(name)
}

/// The namespace files of sandbox `name`, to join; fails if it does not exist.
pub fn namespaces(paths: &Paths, name: &str) -> Result<Vec<(Kind, PathBuf)>> {
    let files: Vec<(Kind, PathBuf)> = Kind::ALL
        .iter()
        .map(|&kind| (kind, path(paths, name, kind)))
        .collect();
    if files
        .iter()
        .any(|(_, file)| !crate::shim::is_mount_point(file))
    {
        return Err(Error::InvalidSetting(format!(
            "no sandbox {name:?} (create it with `cairn ctr sandbox create {name}`)"
        )));
    }
    Ok(files)
}

/// Takes the lock that keeps [`forget_stale`] from taking a namespace file that is being
/// created (it exists a moment before its bind mount does).
fn lock(paths: &Paths) -> Result<nix::fcntl::Flock<fs::File>> {
    crate::files::lock(&paths.run.join("sandboxes.lock"), "the sandboxes")
}

/// Forgets sandboxes whose network namespace mount is gone (it died with it, e.g. the mount
/// was lost in a reboot-like cleanup while the file stayed); returns their names.
pub fn forget_stale(paths: &Paths) -> Result<Vec<String>> {
    if list(paths).is_empty() {
        return Ok(Vec::new());
    }
    let _lock = lock(paths)?;
    let mut forgotten = Vec::new();
    for name in list(paths) {
        if !crate::shim::is_mount_point(&path(paths, &name, Kind::Network)) {
            discard(paths, &name)?;
            forgotten.push(name);
        }
    }
    Ok(forgotten)
}

/// Unmounts and removes every namespace file of `name` there is.
fn discard(paths: &Paths, name: &str) -> Result<()> {
    for kind in Kind::ALL {
        let file = path(paths, name, kind);
        let _ = nix::mount::umount2(&file, MntFlags::MNT_DETACH);
        match fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("removing", &file)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates sandbox `name` with hostname `hostname` (default: the name); returns the path of
/// its network namespace.
pub fn create(paths: &Paths, name: &str, hostname: Option<&str>) -> Result<PathBuf> {
    let valid = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || extra.contains(&b))
    };
    if !valid(name, b"_.") {
        return Err(Error::InvalidSetting(format!("sandbox name {name:?}")));
    }
    let hostname = hostname.unwrap_or(name).to_string();
    if !valid(&hostname, b".") {
        return Err(Error::InvalidSetting(format!("hostname {hostname:?}")));
    }
    let _lock = lock(paths)?;
    if path(paths, name, Kind::Network).exists() {
        return Err(Error::InvalidSetting(format!("sandbox {name:?} exists")));
    }
    let mut files = Vec::new();
    for kind in Kind::ALL {
        let file = path(paths, name, kind);
        let dir = file.parent().expect("a namespace file has a directory");
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        fs::File::create(&file).map_err(io("creating", &file))?;
        files.push((kind, file));
    }
    let made = std::thread::spawn(move || -> Result<()> {
        let flags = Kind::ALL
            .iter()
            .fold(CloneFlags::empty(), |f, k| f | k.flag());
        nix::sched::unshare(flags).map_err(sys("unshare"))?;
        loopback_up()?;
        nix::unistd::sethostname(&hostname).map_err(sys("sethostname"))?;
        for (kind, file) in &files {
            nix::mount::mount(
                Some(format!("/proc/thread-self/ns/{}", kind.proc_name()).as_str()),
                file,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys(format!(
                "bind-mounting the namespace on {}",
                file.display()
            )))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::Shim("the namespace thread panicked".into()))
    .and_then(|made| made);
    if let Err(e) = made {
        let _ = discard(paths, name);
        return Err(e);
    }
    Ok(path(paths, name, Kind::Network))
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

/// Removes sandbox `name` (its namespaces disappear once no process is left in them).
pub fn remove(paths: &Paths, name: &str) -> Result<()> {
    if !path(paths, name, Kind::Network).exists() {
        return Err(Error::InvalidSetting(format!("no sandbox {name:?}")));
    }
    let _lock = lock(paths)?;
    discard(paths, name)
}

/// The names of the sandboxes.
pub fn list(paths: &Paths) -> Vec<String> {
    let dir = paths.run.join(Kind::Network.dir());
    let mut names: Vec<String> = crate::files::entries(&dir)
        .unwrap_or_default()
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
