//! The devices a container may use, and on cgroup v2 the eBPF program that enforces them.
//!
//! The allow-list is in the spec (`linux.resources.devices`: deny everything, then allow the
//! standard character devices, the terminals, and `mknod` of anything), so v1 hosts enforce it
//! with the devices controller through libcontainer. cgroup v2 has no devices controller: the
//! kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup. libcgroups can
//! build one only with libbpf and a raised `RLIMIT_MEMLOCK` (which needs `CAP_SYS_RESOURCE`,
//! although kernels since 5.11 account BPF memory to the cgroup instead); cairn emits the few
//! instructions itself and loads them with the `bpf` system call (ADR 019).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use libcontainer::oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use serde_json::{Value, json};

use crate::error::io;
use crate::{Error, Result};

/// What every container may use besides denying the rest: (type, major, minor, access),
/// `None` for any number. containerd's and runc's list.
const ALLOWED: &[(&str, Option<i64>, Option<i64>, &str)] = &[
    ("c", None, None, "m"),         // mknod of any character device
    ("b", None, None, "m"),         // and of any block device
    ("c", Some(1), Some(3), "rwm"), // /dev/null
    ("c", Some(1), Some(5), "rwm"), // /dev/zero
    ("c", Some(1), Some(7), "rwm"), // /dev/full
    ("c", Some(1), Some(8), "rwm"), // /dev/random
    ("c", Some(1), Some(9), "rwm"), // /dev/urandom
    ("c", Some(5), Some(0), "rwm"), // /dev/tty
    ("c", Some(5), Some(1), "rwm"), // /dev/console
    ("c", Some(5), Some(2), "rwm"), // /dev/ptmx
    ("c", Some(136), None, "rwm"),  // /dev/pts/*
];

/// The spec's `linux.resources.devices`: deny all, then the allow-list (later rules win).
pub fn cgroup_rules() -> Vec<Value> {
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    for &(kind, major, minor, access) in ALLOWED {
        rules.push(json!({
            "allow": true, "type": kind, "major": major, "minor": minor, "access": access,
        }));
    }
    rules
}

// The kernel's encoding of a device request (`struct bpf_cgroup_dev_ctx`):
// `access_type` = access bits << 16 | device type.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction (`struct bpf_insn`; registers packed dst low, src high, as on the
/// little-endian machines cairn runs on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// The opcodes used: 32-bit loads from the context, 64-bit ALU on immediates and registers,
// jumps on an immediate, exit.
const LDX_W: u8 = 0x61;
const AND_K: u8 = 0x57;
const RSH_K: u8 = 0x77;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// A rule as the program tests it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    kind: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

fn rule(d: &LinuxDeviceCgroup) -> Result<Rule> {
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(DEV_CHAR),
        Some(other) => {
            return Err(Error::InvalidSetting(format!(
                "device rule type {other:?} (use a, b or c)"
            )));
        }
    };
    let number = |n: Option<i64>| -> Result<Option<i32>> {
        match n {
            None | Some(-1) => Ok(None),
            Some(n) => i32::try_from(n)
                .map(Some)
                .map_err(|_| Error::InvalidSetting(format!("device number {n}"))),
        }
    };
    let mut access = 0;
    for c in d.access().as_deref().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(Error::InvalidSetting(format!(
                    "device access {c:?} (use r, w and m)"
                )));
            }
        };
    }
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: number(d.major())?,
        minor: number(d.minor())?,
        access,
    })
}

/// The program: the last rule that covers a request decides it (as in the v1 controller's
/// list, later rules win); none does → denied. A rule covers a request when type and numbers
/// match and, for an allow rule, every access asked for is among the rule's; for a deny rule,
/// any of them. (Two allow rules that each give part of what a request asks do not add up:
/// it is denied, where the v1 controller would merge them.)
fn program(rules: &[Rule]) -> Vec<Insn> {
    // r2 = access asked, r3 = device type, r4 = major, r5 = minor.
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 3, 2, 0, 0),
        insn(AND_K, 3, 0, 0, 0xffff),
        insn(RSH_K, 2, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let tests: Vec<(u8, i32)> = [(3, rule.kind), (4, rule.major), (5, rule.minor)]
            .into_iter()
            .filter_map(|(reg, value)| value.map(|v| (reg, v)))
            .collect();
        // Each jump skips the rest of this block, to the next rule.
        let len = tests.len() + 5;
        let skip = |at: usize| (len - at - 1) as i16;
        let mut block: Vec<Insn> = tests
            .iter()
            .enumerate()
            .map(|(at, &(reg, value))| insn(JNE_K, reg, 0, skip(at), value))
            .collect();
        let at = block.len() + 2;
        block.push(insn(MOV_X, 6, 2, 0, 0));
        if rule.allow {
            // r6 = what is asked beyond the rule's access: any → not covered.
            block.push(insn(AND_K, 6, 0, 0, !rule.access & 0xffff));
            block.push(insn(JNE_K, 6, 0, skip(at), 0));
        } else {
            // r6 = what is asked of the denied access: none → not covered.
            block.push(insn(AND_K, 6, 0, 0, rule.access));
            block.push(insn(JEQ_K, 6, 0, skip(at), 0));
        }
        block.push(insn(MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        debug_assert_eq!(block.len(), len);
        prog.extend(block);
    }
    prog.push(insn(MOV_K, 0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

// `bpf(2)` commands and constants.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The leading fields of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The fields of `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i32> {
    #[allow(unsafe_code)]
    // SAFETY: `attr` is a `repr(C)` prefix of `union bpf_attr` for `cmd`, valid for the
    // call; the kernel reads (and for a log, writes) only within the size passed and the
    // buffers its pointers name, which the caller keeps alive across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc as i32)
    }
}

/// Loads the program of `devices` and attaches it to the cgroup v2 directory `cgroup` (it
/// stays attached until the cgroup is removed).
pub fn attach(cgroup: &Path, devices: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules: Vec<Rule> = devices.iter().map(rule).collect::<Result<_>>()?;
    let prog = program(&rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoad::default()
    };
    let prog_fd = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        let verifier = text.trim_end_matches('\0').trim();
        Error::Shim(format!(
            "loading the device filter: {e}{}{verifier}",
            if verifier.is_empty() { "" } else { ": " }
        ))
    })?;
    #[allow(unsafe_code)]
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(prog_fd) };
    let dir = std::fs::File::open(cgroup).map_err(io("opening", cgroup))?;
    let mut attach = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| {
        Error::Shim(format!(
            "attaching the device filter to {}: {e}",
            cgroup.display()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would, for the opcodes it uses.
    fn run(prog: &[Insn], access: i32, kind: i32, major: i32, minor: i32) -> u64 {
        let ctx = [((access << 16) | kind) as u32, major as u32, minor as u32];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i.imm as i64 as u64,
                AND_K => r[dst] &= i.imm as i64 as u64,
                RSH_K => r[dst] >>= i.imm,
                JNE_K | JEQ_K => {
                    if (r[dst] == i.imm as i64 as u64) == (i.code == JEQ_K) {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                EXIT => return r[0],
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    /// The spec's rules as the program sees them.
    fn default_rules() -> Vec<Rule> {
        let rules: Vec<LinuxDeviceCgroup> =
            serde_json::from_value(Value::Array(cgroup_rules())).unwrap();
        rules.iter().map(|d| rule(d).unwrap()).collect()
    }

    #[test]
    fn the_default_list_allows_the_standard_devices_only() {
        let prog = program(&default_rules());
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, rw, DEV_CHAR, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, ACC_READ, DEV_CHAR, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&prog, rw, DEV_CHAR, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&prog, ACC_MKNOD, DEV_BLOCK, 8, 0), 1, "mknod");
        assert_eq!(run(&prog, ACC_READ, DEV_BLOCK, 8, 0), 0, "/dev/sda");
        assert_eq!(run(&prog, ACC_READ | ACC_MKNOD, DEV_BLOCK, 8, 0), 0);
        assert_eq!(run(&prog, ACC_READ, DEV_CHAR, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&prog, rw, DEV_CHAR, 10, 200), 0, "/dev/net/tun");
    }

    #[test]
    fn later_rules_win() {
        let deny_null = Rule {
            allow: false,
            kind: Some(DEV_CHAR),
            major: Some(1),
            minor: Some(3),
            access: ACC_WRITE,
        };
        let mut rules = default_rules();
        rules.push(deny_null);
        let prog = program(&rules);
        assert_eq!(run(&prog, ACC_READ, DEV_CHAR, 1, 3), 1);
        assert_eq!(run(&prog, ACC_WRITE, DEV_CHAR, 1, 3), 0);
        assert_eq!(
            run(&prog, ACC_READ | ACC_WRITE, DEV_CHAR, 1, 3),
            0,
            "asks for w"
        );
        assert_eq!(
            run(&prog, ACC_READ, DEV_CHAR, 1, 5),
            1,
            "other devices keep theirs"
        );
    }
}
