//! The default seccomp profile (ADR 019): every system call is allowed except those that reach
//! past the container's namespaces into the host (kernel modules, reboot, the clock, keyrings,
//! new namespaces, mounts, eBPF, io_uring …), each refused with `EPERM` unless the container holds
//! the capability that would let it use the call anyway. `clone3` answers `ENOSYS` (its flags are
//! in memory, out of a filter's reach) so that libcs fall back to `clone`, whose flags are checked.

use libcontainer::oci_spec::runtime::{LinuxSeccomp, LinuxSyscall};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// cairn's default profile.
    #[default]
    RuntimeDefault,
    /// No filter.
    Unconfined,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" | "runtime/default" | "RuntimeDefault" => Ok(Self::RuntimeDefault),
            "unconfined" | "Unconfined" => Ok(Self::Unconfined),
            _ => Err(format!("seccomp profile {s:?} (use default or unconfined)")),
        }
    }
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Calls refused unless the container holds the capability (`None`: refused to everyone, as
/// no capability makes them safe inside a container).
const REFUSED: &[(Option<&str>, &[&str])] = &[
    (
        Some("CAP_SYS_MODULE"),
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
    ),
    (
        Some("CAP_SYS_BOOT"),
        &["reboot", "kexec_load", "kexec_file_load"],
    ),
    (
        Some("CAP_SYS_TIME"),
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    (
        Some("CAP_SYS_ADMIN"),
        &[
            "mount",
            "umount",
            "umount2",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "pivot_root",
            "setns",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "bpf",
            "perf_event_open",
            "fanotify_init",
            "open_by_handle_at",
            "name_to_handle_at",
        ],
    ),
    (
        Some("CAP_SYS_PTRACE"),
        &[
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "userfaultfd",
        ],
    ),
    (Some("CAP_SYS_RAWIO"), &["iopl", "ioperm"]),
    (Some("CAP_SYS_PACCT"), &["acct"]),
    (
        Some("CAP_SYS_NICE"),
        &[
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "move_pages",
            "migrate_pages",
        ],
    ),
    (
        None,
        &[
            "add_key",
            "request_key",
            "keyctl",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "nfsservctl",
            "vm86",
            "vm86old",
        ],
    ),
];

/// The `CLONE_NEW*` flags: `clone` and `unshare` with any of them make a namespace.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// `CLONE_NEWTIME`: a namespace flag for `unshare` only (in `clone` the bit is the exit signal).
const CLONE_NEWTIME: u64 = 0x80;

/// The architectures a filter covers: the native one and those its CPU also runs.
fn architectures() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else if cfg!(target_arch = "arm") {
        &["SCMP_ARCH_ARM"]
    } else {
        &[]
    }
}

/// The OCI `linux.seccomp` object of `profile` for a container holding `capabilities`, or
/// `None` for no filter.
pub fn linux_seccomp(profile: Profile, capabilities: &[&str]) -> Option<Value> {
    if profile == Profile::Unconfined {
        return None;
    }
    let held = |cap: &str| capabilities.contains(&cap);
    let mut rules = Vec::new();
    let refused: Vec<&str> = REFUSED
        .iter()
        .filter(|(cap, _)| !cap.is_some_and(held))
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    rules.push(json!({"names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}));
    if !held("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
        // One rule per flag: the rules of a call are alternatives, a rule's conditions all hold.
        let flag_rule = |call: &str, flag: u64| {
            json!({
                "names": [call],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            })
        };
        for &flag in NAMESPACE_FLAGS {
            rules.push(flag_rule("clone", flag));
            rules.push(flag_rule("unshare", flag));
        }
        rules.push(flag_rule("unshare", CLONE_NEWTIME));
    }
    Some(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures(),
        "syscalls": rules,
    }))
}

/// The filter an exec shim installs on itself so that the process it starts in a container
/// inherits the container's: libcontainer 0.7 does not apply `linux.seccomp` to an exec'd
/// process, and it joins the container's namespaces with `setns` after forking, so that call
/// stays allowed (joining a namespace needs `CAP_SYS_ADMIN`, which the container's processes
/// lack unless they were given it).
pub fn for_exec(container: &LinuxSeccomp) -> LinuxSeccomp {
    let mut filter = container.clone();
    if let Some(rules) = container.syscalls() {
        let kept: Vec<LinuxSyscall> = rules
            .iter()
            .filter_map(|rule| {
                let names: Vec<String> = rule
                    .names()
                    .iter()
                    .filter(|n| *n != "setns")
                    .cloned()
                    .collect();
                let mut rule = rule.clone();
                rule.set_names(names);
                (!rule.names().is_empty()).then_some(rule)
            })
            .collect();
        filter.set_syscalls(Some(kept));
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(profile: &Value) -> Vec<String> {
        profile["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn capabilities_lift_their_calls() {
        let plain = linux_seccomp(Profile::RuntimeDefault, &["CAP_CHOWN"]).unwrap();
        assert!(refused(&plain).contains(&"mount".to_string()));
        assert!(refused(&plain).contains(&"keyctl".to_string()));
        assert!(
            plain["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["names"][0] == "clone3")
        );

        let admin = linux_seccomp(Profile::RuntimeDefault, &["CAP_SYS_ADMIN"]).unwrap();
        assert!(!refused(&admin).contains(&"mount".to_string()));
        assert!(refused(&admin).contains(&"reboot".to_string()));
        assert!(refused(&admin).contains(&"keyctl".to_string()));
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_exec_filter_allows_setns_only() {
        let value = linux_seccomp(Profile::RuntimeDefault, &[]).unwrap();
        let container: LinuxSeccomp = serde_json::from_value(value).unwrap();
        let exec = for_exec(&container);
        let names = |f: &LinuxSeccomp| -> Vec<String> {
            f.syscalls()
                .iter()
                .flatten()
                .flat_map(|r| r.names().clone())
                .collect()
        };
        assert!(names(&container).contains(&"setns".to_string()));
        assert!(!names(&exec).contains(&"setns".to_string()));
        let mut expected = names(&container);
        expected.retain(|n| n != "setns");
        assert_eq!(names(&exec), expected);
    }

    #[test]
    fn unconfined_has_no_filter() {
        assert!(linux_seccomp(Profile::Unconfined, &[]).is_none());
        assert_eq!("unconfined".parse::<Profile>(), Ok(Profile::Unconfined));
        assert!("strict".parse::<Profile>().is_err());
    }

    #[test]
    fn the_profile_is_a_valid_oci_object() {
        let value = linux_seccomp(Profile::RuntimeDefault, &[]).unwrap();
        let parsed: LinuxSeccomp = serde_json::from_value(value).unwrap();
        assert!(parsed.syscalls().as_ref().unwrap().len() > 10);
    }
}
