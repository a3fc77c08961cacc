//! Containers: their records under `containers/<name>/`, and the lifecycle calls a caller (the
//! CLI, later the agent) makes. Creation itself happens in the shim ([`crate::shim`]); these
//! calls only write records, start shims, read what shims record, send signals and clean up.
//!
//! A container directory holds `container.json` (what was asked), `state.json` (written by the
//! shim once the container runs), `status.json` (written by the shim when it ended),
//! `bundle/config.json`, the overlay's `upper/`, `work/` and mount point `rootfs/`,
//! `container.log` (CRI format) and `shim.log`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupMode;
use crate::digest::Digest;
use crate::error::io;
use crate::files::{read_json, write_json};
use crate::image::ImageStore;
use crate::launch::Link;
use crate::log::Stream;
use crate::spec::Settings;
use crate::{Error, Paths, Result};

/// How often a caller looks at what the shim recorded when nothing tells it of a change
/// (files, not a socket: a shim outlives whoever asked, so the record is the interface).
const POLL: Duration = Duration::from_millis(2);

/// How long a caller woken by changes waits for one before looking anyway (a shim that died
/// writes nothing).
const WATCHED_POLL: Duration = Duration::from_millis(100);

/// Wakes a caller that follows a container when a file in its directory changes (the log
/// grows, `status.json` is renamed in): inotify, the link to the shim for its starter, or plain
/// polling where neither is available. The starter's link costs nothing to close, where closing
/// an inotify descriptor waits for an SRCU grace period (10–20 ms here).
enum Changes<'a> {
    Inotify(nix::sys::inotify::Inotify),
    Shim(&'a Link),
    Poll,
}

impl<'a> Changes<'a> {
    fn watch(dir: &Path) -> Self {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok();
        let watching = inotify.filter(|i| {
            i.add_watch(
                dir,
                AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE,
            )
            .is_ok()
        });
        watching.map_or(Changes::Poll, Changes::Inotify)
    }

    fn of(follow: Follow<'a>, dir: &Path) -> Self {
        match follow {
            Follow::No => Changes::Poll,
            Follow::Watch => Changes::watch(dir),
            Follow::Started(started) => Changes::Shim(&started.link),
        }
    }

    /// Returns after a change since the last call (at once if one is pending) or a while.
    fn wait(&self) {
        use std::os::fd::AsFd;
        let fd = match self {
            Changes::Inotify(inotify) => inotify.as_fd(),
            Changes::Shim(link) => link.fd(),
            Changes::Poll => {
                std::thread::sleep(POLL);
                return;
            }
        };
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        let timeout =
            nix::poll::PollTimeout::try_from(WATCHED_POLL).unwrap_or(nix::poll::PollTimeout::MAX);
        let _ = nix::poll::poll(&mut fds, timeout);
        match self {
            Changes::Inotify(inotify) => {
                while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
            }
            Changes::Shim(link) => {
                link.drain();
            }
            Changes::Poll => {}
        }
    }
}

/// How [`copy_logs`] follows a container's log.
#[derive(Clone, Copy)]
pub enum Follow<'a> {
    /// Copies what is there and returns.
    No,
    /// Until the container ended, woken by changes to its directory.
    Watch,
    /// Until the container ended, woken by the shim this caller started.
    Started(&'a Started),
}

/// A container as the caller that started it holds it.
#[derive(Debug)]
pub struct Started {
    /// What the shim recorded.
    pub run: RunState,
    link: Link,
}

/// What was asked for a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The caller's name.
    pub name: String,
    /// The runtime's id (libcontainer's container id, the cgroup's name).
    pub id: String,
    /// The image's normalised name.
    pub image: String,
    /// The image config's digest.
    pub image_id: Digest,
    /// The snapshot chain, bottom first.
    pub chain: Vec<Digest>,
    /// The caller's settings.
    pub settings: Settings,
    /// When it was created (RFC 3339).
    pub created: String,
}

impl ContainerRecord {
    /// The absolute cgroup path.
    pub fn cgroups_path(&self) -> String {
        format!("/cairn/{}", self.id)
    }
}

/// Written by the shim once the container process runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The shim's pid.
    pub shim_pid: i32,
    /// The container's init pid.
    pub pid: i32,
    /// When it started (RFC 3339).
    pub started: String,
    /// The kernel's boot id when the shim started: a pid from another boot is not this shim.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The shim's start time (clock ticks after boot, `/proc/PID/stat`): a reused pid differs.
    #[serde(default)]
    pub shim_start_time: Option<u64>,
}

/// Written by the shim when the container's init exited.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code (128 + signal when killed by one).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Whether the kernel OOM-killed a process of the container.
    pub oom_killed: bool,
    /// When it ended (RFC 3339).
    pub finished: String,
    /// Set when the runtime recorded the end on a dead shim's behalf: the exit code is then
    /// not the process's own (255, as containerd records an unknown exit) and this says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_exit: Option<String>,
}

/// A container's state as `ps` shows it.
#[derive(Debug, Clone)]
pub enum State {
    /// Created, no shim yet.
    Created,
    /// Running under its shim.
    Running(RunState),
    /// Ended.
    Exited(ExitStatus),
    /// The shim is gone without recording an exit (killed, or the host rebooted); opening the
    /// runtime ([`crate::recovery::reconcile`]) turns this into [`State::Exited`].
    Unknown(RunState),
}

/// A container with its state.
#[derive(Debug, Clone)]
pub struct Info {
    /// The record.
    pub record: ContainerRecord,
    /// The state.
    pub state: State,
}

/// The container directory of `name`.
pub fn dir(paths: &Paths, name: &str) -> PathBuf {
    paths.containers().join(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// Writes the record of a new container of `image` (a name or id).
pub fn create(
    paths: &Paths,
    name: &str,
    image: &str,
    settings: Settings,
) -> Result<ContainerRecord> {
    if !valid_name(name) {
        return Err(Error::InvalidSetting(format!(
            "container name {name:?} (letters, digits, '_', '.', '-'; at most 63)"
        )));
    }
    let image = ImageStore::new(paths).find(image)?;
    let dir = dir(paths, name);
    fs::create_dir_all(paths.containers()).map_err(io("creating", paths.containers()))?;
    match fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::ContainerExists(name.to_string()));
        }
        r => r.map_err(io("creating", &dir))?,
    }
    let now = jiff::Timestamp::now();
    let id = Digest::of(format!("{name} {now} {}", std::process::id()).as_bytes())
        .short()
        .to_string();
    let record = ContainerRecord {
        name: name.to_string(),
        id,
        image: image.name.clone(),
        image_id: image.config.clone(),
        chain: image.chain.clone(),
        settings,
        created: now.to_string(),
    };
    write_json(&dir.join("container.json"), &record)?;
    Ok(record)
}

/// The record and state of `name`.
pub fn info(paths: &Paths, name: &str) -> Result<Info> {
    let dir = dir(paths, name);
    let record: ContainerRecord = read_json(&dir.join("container.json"))?
        .ok_or_else(|| Error::ContainerNotFound(name.to_string()))?;
    // `state.json` is volatile (files::write_json_volatile): one a crash left unreadable
    // counts as none.
    let state = if let Some(status) = read_json::<ExitStatus>(&dir.join("status.json"))? {
        State::Exited(status)
    } else if let Ok(Some(run)) = read_json::<RunState>(&dir.join("state.json")) {
        if shim_alive(&run) {
            State::Running(run)
        } else if let Some(status) = read_json::<ExitStatus>(&dir.join("status.json"))? {
            // The shim records the exit before it ends: it may have done so since the first look.
            State::Exited(status)
        } else {
            State::Unknown(run)
        }
    } else {
        State::Created
    };
    Ok(Info { record, state })
}

/// Whether the shim that wrote `run` still runs: same boot, a live (not zombie) process with
/// that pid, started when the shim did.
fn shim_alive(run: &RunState) -> bool {
    if let (Some(then), Some(now)) = (&run.boot_id, boot_id())
        && *then != now
    {
        return false;
    }
    match proc_stat(run.shim_pid) {
        // A zombie shim (ended, not yet reaped by its starter) counts as gone.
        Some(('Z', _)) => false,
        Some((_, started)) => run.shim_start_time.is_none_or(|t| t == started),
        None => false,
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub(crate) fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The state letter and start time (field 22) of process `pid`.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/PID/stat`: the fields after the command (which may hold spaces and parens).
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); the start time is field 22.
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
}

/// Every container, by name.
pub fn list(paths: &Paths) -> Result<Vec<Info>> {
    let dir = paths.containers();
    let mut out = Vec::new();
    for entry in crate::files::entries(&dir)? {
        if let Ok(info) = info(paths, &entry.file_name().to_string_lossy()) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
    Ok(out)
}

/// Starts `name`'s shim (forked from this process, or the binary `shim_exe` re-executed as
/// `cairn shim start`: [`crate::launch`]) and waits until it reports the container running or
/// failing.
pub fn start(paths: &Paths, name: &str, shim_exe: &Path) -> Result<Started> {
    let info = info(paths, name)?;
    if !matches!(info.state, State::Created) {
        return Err(Error::Shim(format!(
            "container {name:?} was started before"
        )));
    }
    let dir = dir(paths, name);
    let shim_log = dir.join("shim.log");
    let log = fs::File::create(&shim_log).map_err(io("creating", &shim_log))?;
    let (link, line) = crate::launch::start_shim(paths, name, shim_exe, log)?;
    if line.trim() != "ok" {
        let msg = match line.trim().strip_prefix("error: ").unwrap_or(line.trim()) {
            "" => fs::read_to_string(&shim_log)
                .unwrap_or_default()
                .trim()
                .to_string(),
            msg => msg.to_string(),
        };
        return Err(Error::Shim(msg));
    }
    let run = match info_state(paths, name)? {
        State::Running(run) => run,
        State::Exited(_) => read_json(&dir.join("state.json"))?
            .ok_or_else(|| Error::Shim("no state recorded".into()))?,
        _ => {
            return Err(Error::Shim(
                "the shim reported success but recorded no state".into(),
            ));
        }
    };
    Ok(Started { run, link })
}

fn info_state(paths: &Paths, name: &str) -> Result<State> {
    Ok(info(paths, name)?.state)
}

/// Waits until `name` has ended (or `timeout` passed); returns its exit status.
pub fn wait(paths: &Paths, name: &str, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let changes = Changes::watch(&dir(paths, name));
    loop {
        match info_state(paths, name)? {
            State::Exited(s) => return Ok(Some(s)),
            State::Created => return Err(Error::NotRunning(name.to_string())),
            State::Unknown(_) => return Err(Error::Shim(format!("the shim of {name:?} is gone"))),
            State::Running(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        changes.wait();
    }
}

/// Sends `signal` to the container's init (`all`: to every process in it).
pub fn kill(paths: &Paths, name: &str, signal: Signal, all: bool) -> Result<()> {
    let info = info(paths, name)?;
    if !matches!(info.state, State::Running(_)) {
        return Err(Error::NotRunning(name.to_string()));
    }
    let root = paths.libcontainer_root().join(&info.record.id);
    let mut c = match libcontainer::container::Container::load(root.clone()) {
        Ok(c) => c,
        // The shim removes libcontainer's state right after the container ended.
        Err(_) => return Err(Error::NotRunning(name.to_string())),
    };
    match c.kill(signal, all) {
        Ok(()) => Ok(()),
        // It ended meanwhile: libcontainer, after signalling, rereads its state, which the
        // shim may have removed already (before it records the exit).
        Err(_)
            if !root.join("state.json").exists()
                || !matches!(info_state(paths, name)?, State::Running(_)) =>
        {
            Err(Error::NotRunning(name.to_string()))
        }
        Err(source) => Err(Error::Libcontainer { op: "kill", source }),
    }
}

/// SIGTERM, then SIGKILL to every process after `grace`; returns the exit status.
pub fn stop(paths: &Paths, name: &str, grace: Duration) -> Result<ExitStatus> {
    match info_state(paths, name)? {
        State::Exited(s) => return Ok(s),
        State::Running(_) => {}
        _ => return Err(Error::NotRunning(name.to_string())),
    }
    match kill(paths, name, Signal::SIGTERM, false) {
        Ok(()) | Err(Error::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    if let Some(s) = wait(paths, name, Some(grace))? {
        return Ok(s);
    }
    match kill(paths, name, Signal::SIGKILL, true) {
        Ok(()) | Err(Error::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    wait(paths, name, Some(Duration::from_secs(30)))?
        .ok_or_else(|| Error::Shim(format!("{name:?} did not end after SIGKILL")))
}

/// Removes a container that is not running (`force`: kills it first).
pub fn remove(paths: &Paths, name: &str, force: bool) -> Result<()> {
    let info = info(paths, name)?;
    if let State::Running(_) = info.state {
        if !force {
            return Err(Error::Running(name.to_string()));
        }
        stop(paths, name, Duration::ZERO)?;
    }
    let dir = dir(paths, name);
    // What a shim that died would have cleaned up.
    clean_up(paths, &info.record)?;
    fs::remove_dir_all(&dir).map_err(io("removing", &dir))
}

/// Removes what a container's shim owns while it runs (its processes, libcontainer state,
/// cgroups and root mount) for a container whose shim is gone or never ran. Every step is
/// idempotent; what a reboot already removed is skipped.
pub(crate) fn clean_up(paths: &Paths, record: &ContainerRecord) -> Result<()> {
    let mode = CgroupMode::detect();
    mode.kill_all(&record.cgroups_path())?;
    let lc = paths.libcontainer_root().join(&record.id);
    match fs::remove_dir_all(&lc) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing", &lc)(e));
        }
        _ => {}
    }
    mode.remove(&record.cgroups_path());
    crate::shim::unmount_rootfs(&dir(paths, &record.name).join("rootfs"));
    Ok(())
}

/// Runs `args` in the running container `name` through an exec shim (forked, or the binary
/// `shim_exe` re-executed as `cairn shim exec`) with this process's stdio; returns its exit
/// code.
pub fn exec(paths: &Paths, name: &str, shim_exe: &Path, args: &[String], tty: bool) -> Result<i32> {
    let info = info(paths, name)?;
    if !matches!(info.state, State::Running(_)) {
        return Err(Error::NotRunning(name.to_string()));
    }
    crate::launch::exec_shim(paths, name, shim_exe, args, tty)
}

/// Copies the container's log to `stdout`/`stderr` (decoded); when following, until it ended.
pub fn copy_logs(
    paths: &Paths,
    name: &str,
    follow: Follow<'_>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Option<ExitStatus>> {
    info(paths, name)?;
    let changes = Changes::of(follow, &dir(paths, name));
    let follow = !matches!(follow, Follow::No);
    let path = dir(paths, name).join("container.log");
    let mut file = loop {
        match fs::File::open(&path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {
                if let State::Exited(_) | State::Unknown(_) = info_state(paths, name)? {
                    return Ok(None);
                }
                changes.wait();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("opening", &path)(e)),
        }
    };
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let ended = match info_state(paths, name)? {
            State::Exited(s) => Some(Some(s)),
            State::Unknown(_) | State::Created => Some(None),
            State::Running(_) => None,
        };
        // Read everything written so far (after `ended` was seen, this is all there is).
        loop {
            let n = file.read(&mut chunk).map_err(io("reading", &path))?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                if let Some(r) = crate::log::parse(&line[..line.len() - 1]) {
                    let out: &mut dyn Write = match r.stream {
                        Stream::Stdout => stdout,
                        Stream::Stderr => stderr,
                    };
                    let _ = out.write_all(r.content);
                    if r.full {
                        let _ = out.write_all(b"\n");
                    }
                    let _ = out.flush();
                }
            }
        }
        match ended {
            Some(status) => return Ok(status),
            None if !follow => return Ok(None),
            // A read at the end of a file returns what was appended since.
            None => changes.wait(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces_and_parens() {
        let stat = "4242 (cairn (shim) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("1 (init) Z 0"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id() as i32;
        let (_, started) = proc_stat(me).expect("own stat");
        let run = |boot_id: Option<String>, start: u64| RunState {
            shim_pid: me,
            pid: me,
            started: String::new(),
            boot_id,
            shim_start_time: Some(start),
        };
        assert!(shim_alive(&run(boot_id(), started)));
        assert!(!shim_alive(&run(boot_id(), started + 1)), "reused pid");
        assert!(!shim_alive(&run(Some("another boot".into()), started)));
    }
}
