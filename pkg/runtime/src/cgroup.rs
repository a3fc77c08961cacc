//! The host's cgroup layout as the runtime needs it: which hierarchies exist, the container's
//! own cgroup mounted read-only inside it, OOM-kill counts, and removal.
//!
//! libcontainer 0.7 bind-mounts a container's v1 hierarchies read-write whatever the spec says,
//! which lets a root container raise its own memory limit. On v1 hosts the spec therefore has
//! no `cgroup` mount: a small tmpfs at `/sys/fs/cgroup` and a read-only bind of the container's
//! own directory per hierarchy instead. On v2 libcontainer honours `ro` on the cgroup mount.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Where cgroup file systems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers libcontainer's manager joins (when the host has them).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// The host's cgroup layout.
#[derive(Debug, Clone)]
pub enum CgroupMode {
    /// cgroup v1 (also hybrid hosts, which libcontainer treats as v1): the hierarchies a
    /// container joins.
    V1 {
        /// Controller names with their own directory under `/sys/fs/cgroup`.
        controllers: Vec<String>,
    },
    /// The unified hierarchy.
    V2,
}

impl CgroupMode {
    /// Looks at `/sys/fs/cgroup` and `/proc/self/cgroup`.
    pub fn detect() -> Self {
        let is_v2 = nix::sys::statfs::statfs(CGROUP_ROOT)
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        if is_v2 {
            return CgroupMode::V2;
        }
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let joined: Vec<&str> = own
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .flat_map(|c| c.split(','))
            .collect();
        let controllers = V1_CONTROLLERS
            .iter()
            .filter(|c| joined.contains(c))
            .filter(|c| {
                fs::symlink_metadata(Path::new(CGROUP_ROOT).join(c)).is_ok_and(|m| m.is_dir())
            })
            .map(|c| c.to_string())
            .collect();
        CgroupMode::V1 { controllers }
    }

    /// Whether memory+swap can be limited (so a memory limit OOM-kills instead of swapping).
    pub fn has_swap_accounting(&self) -> bool {
        match self {
            CgroupMode::V2 => Path::new(CGROUP_ROOT).join("cgroup.controllers").exists(),
            CgroupMode::V1 { .. } => Path::new(CGROUP_ROOT)
                .join("memory/memory.memsw.limit_in_bytes")
                .exists(),
        }
    }

    /// Every directory of the cgroup `path` (absolute, e.g. `/cairn/<id>`).
    pub fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        match self {
            CgroupMode::V2 => vec![Path::new(CGROUP_ROOT).join(rel)],
            CgroupMode::V1 { controllers } => controllers
                .iter()
                .map(|c| Path::new(CGROUP_ROOT).join(c).join(rel))
                .collect(),
        }
    }

    /// How many times the kernel OOM-killed a process in cgroup `path`.
    pub fn oom_kills(&self, path: &str) -> u64 {
        let rel = path.trim_start_matches('/');
        let file = match self {
            CgroupMode::V2 => Path::new(CGROUP_ROOT).join(rel).join("memory.events"),
            CgroupMode::V1 { .. } => Path::new(CGROUP_ROOT)
                .join("memory")
                .join(rel)
                .join("memory.oom_control"),
        };
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The pids in cgroup `path` (in any hierarchy).
    pub fn procs(&self, path: &str) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs(path)
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process in cgroup `path` until none is left (a fork racing the kill is
    /// caught on the next round); fails if some survive ten seconds of this.
    pub fn kill_all(&self, path: &str) -> crate::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let pids = self.procs(path);
            if pids.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(crate::Error::Shim(format!(
                    "processes {pids:?} of cgroup {path} survive SIGKILL"
                )));
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Removes the cgroup `path` everywhere, and its parent when that is left empty.
    pub fn remove(&self, path: &str) {
        for dir in self.dirs(path) {
            let _ = fs::remove_dir(&dir);
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// The `/sys/fs/cgroup` mounts of a container in cgroup `path`, read-only.
pub fn container_mounts(mode: &CgroupMode, path: &str) -> Vec<Value> {
    let opts = ["nosuid", "noexec", "nodev", "relatime", "ro"];
    match mode {
        CgroupMode::V2 => vec![json!({
            "destination": CGROUP_ROOT, "type": "cgroup", "source": "cgroup", "options": opts,
        })],
        CgroupMode::V1 { controllers } => {
            let mut mounts = vec![json!({
                "destination": CGROUP_ROOT, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
            })];
            let rel = path.trim_start_matches('/');
            for c in controllers {
                mounts.push(json!({
                    "destination": format!("{CGROUP_ROOT}/{c}"),
                    "type": "bind",
                    "source": Path::new(CGROUP_ROOT).join(c).join(rel),
                    "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
                }));
            }
            mounts
        }
    }
}
