//! The OCI runtime spec of a container: the image config plus the caller's settings, with
//! containerd's defaults for what neither says (capabilities, masked and read-only paths,
//! devices), built as an `oci_spec` value for libcontainer.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cgroup::CgroupMode;
use crate::image::ImageConfig;
use crate::sandbox;
use crate::seccomp;
use crate::{Error, Result};

/// containerd's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// containerd's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// containerd's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The CFS period cairn uses (100 ms, as the kubelet does).
pub const CPU_PERIOD: u64 = 100_000;

/// What the caller asks of a container (everything optional falls back to the image).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Replaces the image's Cmd (the entrypoint stays).
    pub args: Vec<String>,
    /// `K=V`, over the image's environment.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: Option<String>,
    /// `uid[:gid]` or `name[:group]`.
    pub user: Option<String>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in thousandths of a CPU.
    pub milli_cpus: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
    /// The pod sandbox whose network, IPC and UTS namespaces the container joins, instead of
    /// new ones.
    pub sandbox: Option<String>,
    /// Remove the container once it ended (`run --rm`): its attached starter does, and
    /// recovery does for one whose end it records.
    #[serde(default)]
    pub auto_remove: bool,
    /// The seccomp filter (records from before it was a setting get the default).
    #[serde(default)]
    pub seccomp: seccomp::Profile,
}

/// Parses a memory quantity: `64Mi`, `1Gi`, `500M`, `1048576`.
pub fn parse_memory(s: &str) -> Result<u64> {
    let bad = || Error::InvalidSetting(format!("memory {s:?} (use e.g. 64Mi, 1Gi, 500M)"));
    let units: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("K", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (num, mult) = units
        .iter()
        .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)
}

/// Parses a CPU quantity: `0.5`, `2`, `250m` → thousandths of a CPU.
pub fn parse_cpus(s: &str) -> Result<u64> {
    let bad = || Error::InvalidSetting(format!("cpus {s:?} (use e.g. 0.5, 2 or 250m)"));
    let milli = if let Some(m) = s.strip_suffix('m') {
        m.parse::<u64>().map_err(|_| bad())?
    } else {
        let f: f64 = s.parse().map_err(|_| bad())?;
        if !f.is_finite() || f <= 0.0 {
            return Err(bad());
        }
        (f * 1000.0).round() as u64
    };
    if milli == 0 {
        return Err(bad());
    }
    Ok(milli)
}

/// The uid, gid and supplementary gids of `user` in a rootfs's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<(u32, u32, Vec<u32>)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd_entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, name, primary) = match (u.parse::<u32>(), &passwd_entry) {
        (Ok(uid), entry) => (
            uid,
            entry.as_ref().map(|f| f[0].to_string()),
            entry.as_ref().and_then(|f| f[3].parse().ok()),
        ),
        (Err(_), Some(f)) => (
            f[2].parse()
                .map_err(|_| Error::InvalidSetting(format!("bad /etc/passwd entry for {u}")))?,
            Some(f[0].to_string()),
            f[3].parse().ok(),
        ),
        (Err(_), None) => {
            return Err(Error::InvalidSetting(format!(
                "user {u:?} is not in the image's /etc/passwd"
            )));
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::InvalidSetting(format!("group {g:?} is not in the image's /etc/group"))
                })?,
        },
    };
    let mut extra = Vec::new();
    if let Some(name) = name {
        for f in &groups {
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
            {
                extra.push(id);
            }
        }
    }
    Ok((uid, gid, extra))
}

/// Everything the spec is built from.
pub struct SpecInput<'a> {
    /// The container's name (its hostname).
    pub hostname: &'a str,
    /// The mounted rootfs (absolute, not a symlink).
    pub rootfs: &'a Path,
    /// The image config.
    pub image: &'a ImageConfig,
    /// The caller's settings.
    pub settings: &'a Settings,
    /// The absolute cgroup path (`/cairn/<id>`).
    pub cgroups_path: &'a str,
    /// The host's cgroup layout.
    pub cgroup_mode: &'a CgroupMode,
    /// Namespaces to join (a sandbox's) instead of making new ones.
    pub joined: &'a [(sandbox::Kind, PathBuf)],
}

/// Builds the spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let settings = input.settings;
    let run = input.image.config.clone().unwrap_or_default();
    let mut args: Vec<String> = run.entrypoint.clone().unwrap_or_default();
    if settings.args.is_empty() {
        args.extend(run.cmd.clone().unwrap_or_default());
    } else {
        args.extend(settings.args.iter().cloned());
    }
    if args.is_empty() {
        return Err(Error::InvalidSetting(
            "no command: the image has none and none was given".into(),
        ));
    }
    let mut env: Vec<String> = run.env.clone().unwrap_or_default();
    for kv in &settings.env {
        let Some((k, _)) = kv.split_once('=') else {
            return Err(Error::InvalidSetting(format!("env {kv:?} is not K=V")));
        };
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(kv.clone());
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let joined = |kind: sandbox::Kind| input.joined.iter().find(|(k, _)| *k == kind);
    // In a sandbox the hostname is the sandbox's.
    let own_hostname = joined(sandbox::Kind::Uts)
        .is_none()
        .then_some(input.hostname);
    if let Some(hostname) = own_hostname
        && !env.iter().any(|e| e.starts_with("HOSTNAME="))
    {
        env.push(format!("HOSTNAME={hostname}"));
    }
    let cwd = settings
        .cwd
        .clone()
        .or(run.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::InvalidSetting(format!(
            "cwd {cwd:?} is not absolute"
        )));
    }
    let user = settings
        .user
        .clone()
        .or(run.user.clone().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "0".into());
    let read = |p: &str| std::fs::read_to_string(input.rootfs.join(p)).unwrap_or_default();
    let (uid, gid, extra_gids) = resolve_user(&user, &read("etc/passwd"), &read("etc/group"))?;

    let caps: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    mounts.extend(crate::cgroup::container_mounts(
        input.cgroup_mode,
        input.cgroups_path,
    ));

    let mut resources = json!({"devices": crate::devices::cgroup_rules()});
    if let Some(limit) = settings.memory {
        let mut memory = json!({"limit": limit});
        if input.cgroup_mode.has_swap_accounting() {
            memory["swap"] = json!(limit);
        }
        resources["memory"] = memory;
    }
    if let Some(milli) = settings.milli_cpus {
        resources["cpu"] = json!({
            "shares": (milli * 1024 / 1000).max(2),
            "quota": (milli * CPU_PERIOD / 1000) as i64,
            "period": CPU_PERIOD,
        });
    }
    if let Some(pids) = settings.pids {
        resources["pids"] = json!({"limit": pids});
    }
    let namespace = |kind: sandbox::Kind| match joined(kind) {
        Some((_, path)) => json!({"type": kind.oci_type(), "path": path}),
        None => json!({"type": kind.oci_type()}),
    };
    let mut namespaces = vec![
        json!({"type": "pid"}),
        namespace(sandbox::Kind::Ipc),
        namespace(sandbox::Kind::Uts),
        json!({"type": "mount"}),
        namespace(sandbox::Kind::Network),
    ];
    if matches!(input.cgroup_mode, CgroupMode::V2) {
        // As containerd on v2: the container sees its own cgroup as the root.
        namespaces.push(json!({"type": "cgroup"}));
    }
    let value = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid, "additionalGids": extra_gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true,
        },
        "root": {"path": input.rootfs, "readonly": false},
        "hostname": own_hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": input.cgroups_path,
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp::linux_seccomp(settings.seccomp, &caps),
        },
    });
    serde_json::from_value(value).map_err(|source| Error::Json {
        what: "generated OCI spec".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nvideo:x:44:app,root\n";

    #[test]
    fn resolves_names_numbers_and_groups() {
        assert_eq!(
            resolve_user("app", PASSWD, GROUP).unwrap(),
            (1000, 1000, vec![44])
        );
        assert_eq!(
            resolve_user("1000:44", PASSWD, GROUP).unwrap(),
            (1000, 44, vec![])
        );
        assert_eq!(
            resolve_user("4242", PASSWD, GROUP).unwrap(),
            (4242, 0, vec![])
        );
        assert_eq!(
            resolve_user("app:video", PASSWD, GROUP).unwrap(),
            (1000, 44, vec![])
        );
        assert!(resolve_user("nobody", PASSWD, GROUP).is_err());
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_memory("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_memory("500M").unwrap(), 500_000_000);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert!(parse_memory("64MB").is_err());
        assert!(parse_memory("0").is_err());
        assert_eq!(parse_cpus("0.5").unwrap(), 500);
        assert_eq!(parse_cpus("250m").unwrap(), 250);
        assert!(parse_cpus("-1").is_err());
    }
}
