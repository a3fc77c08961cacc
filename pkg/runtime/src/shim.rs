//! The shim: `cairn shim start NAME` and `cairn shim exec NAME -- CMD…`, re-executed from the
//! cairn binary so that libcontainer clones from a single-threaded process.
//!
//! A start shim leaves its starter's session, becomes a child subreaper, mounts the
//! container's overlayfs root, writes the OCI spec, creates and starts the container with
//! libcontainer with pipes as its stdout and stderr, reports `ok` (or `error: …`) on its own
//! stdout, then copies the pipes into the CRI log, reaps, and when init exits records the exit
//! code, time and OOM kill, deletes the container (cgroups, libcontainer state) and unmounts
//! the root. It outlives whoever started it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::mount::{MntFlags, MsFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cgroup::CgroupMode;
use crate::container::{self, ContainerRecord, ExitStatus, RunState, State};
use crate::error::{io, sys};
use crate::files::write_json;
use crate::image::{ImageConfig, ImageStore};
use crate::log::{LineBuffer, Stream};
use crate::snapshot::SnapshotStore;
use crate::{Error, Paths, Result};

/// Runs a start shim for container `name`; returns the shim's exit code.
pub fn run_start(paths: &Paths, name: &str) -> i32 {
    let _ = nix::unistd::setsid();
    let prepared = prepare(paths, name);
    let (record, mode, mut c, out_r, err_r) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            Starter::new().report(&format!("error: {}", chain(&e)));
            return 1;
        }
    };
    let dir = container::dir(paths, name);
    let pid = c.pid().map(|p| p.as_raw()).unwrap_or(0);
    let shim_pid = std::process::id() as i32;
    let state = RunState {
        shim_pid,
        pid,
        started: jiff::Timestamp::now().to_string(),
        boot_id: container::boot_id(),
        shim_start_time: container::proc_stat(shim_pid).map(|(_, t)| t),
    };
    if let Err(e) = crate::files::write_json_volatile(&dir.join("state.json"), &state) {
        Starter::new().report(&format!("error: {}", chain(&e)));
        let _ = c.delete(true);
        return 1;
    }
    // The starter may be gone already (SIGPIPE is ignored again: `prepare`).
    let mut starter = Starter::new();
    starter.report("ok");

    let log_path = dir.join("container.log");
    let log = OpenOptions::new().create(true).append(true).open(&log_path);
    let mut log = match log {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("opening {}: {e}", log_path.display());
            return 1;
        }
    };
    let (code, signal) = supervise(Pid::from_raw(pid), out_r, err_r, &mut log, &mut starter);
    let oom_killed = mode.oom_kills(&record.cgroups_path()) > 0;
    let status = ExitStatus {
        exit_code: code,
        signal,
        oom_killed,
        finished: jiff::Timestamp::now().to_string(),
        unknown_exit: None,
    };
    let _ = log.sync_all();
    // Not libcontainer's delete: with no hooks it only removes the cgroups and its state, and
    // it loads the container and a cgroup manager first (about 800 system calls, most of a
    // shim's teardown).
    drop(c);
    if let Err(e) = container::clean_up(paths, &record) {
        tracing::warn!("removing the container: {e}");
    }
    if let Err(e) = write_json(&dir.join("status.json"), &status) {
        tracing::error!("recording the exit status: {e}");
        return 1;
    }
    0
}

type Prepared = (
    ContainerRecord,
    CgroupMode,
    libcontainer::container::Container,
    OwnedFd,
    OwnedFd,
);

fn prepare(paths: &Paths, name: &str) -> Result<Prepared> {
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("becoming a subreaper"))?;
    let info = container::info(paths, name)?;
    if !matches!(info.state, State::Created) {
        return Err(Error::Shim(format!(
            "container {name:?} was started before"
        )));
    }
    let record = info.record;
    let dir = container::dir(paths, name);
    let rootfs = dir.join("rootfs");
    mount_rootfs(paths, &record, &dir)?;
    let result = (|| {
        let images = ImageStore::new(paths);
        let config_bytes = images.content().read(&record.image_id)?;
        let image: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
                what: "image config".into(),
                source,
            })?;
        let mode = CgroupMode::detect();
        let cgroups_path = record.cgroups_path();
        let joined = match &record.settings.sandbox {
            Some(name) => crate::sandbox::namespaces(paths, name)?,
            None => Vec::new(),
        };
        let spec = crate::spec::build(&crate::spec::SpecInput {
            hostname: &record.name,
            rootfs: &rootfs,
            image: &image,
            settings: &record.settings,
            cgroups_path: &cgroups_path,
            cgroup_mode: &mode,
            joined: &joined,
        })?;
        let bundle = dir.join("bundle");
        fs::create_dir_all(&bundle).map_err(io("creating", &bundle))?;
        spec.save(bundle.join("config.json")).map_err(Error::Spec)?;
        let (out_r, out_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
        let devnull = File::open("/dev/null").map_err(io("opening", "/dev/null"))?;
        let root = paths.libcontainer_root();
        fs::create_dir_all(&root).map_err(io("creating", &root))?;
        let lc = |op| move |source| Error::Libcontainer { op, source };
        crate::signals::restore_defaults();
        let mut c = ContainerBuilder::new(record.id.clone(), SyscallType::default())
            .with_root_path(&root)
            .map_err(lc("state root"))?
            .with_stdin(OwnedFd::from(devnull))
            .with_stdout(out_w)
            .with_stderr(err_w)
            .validate_id()
            .map_err(lc("container id"))?
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(lc("create"))?;
        if matches!(mode, CgroupMode::V2) {
            // No devices controller on v2: the allow-list is an eBPF filter on the cgroup,
            // attached before the container's process runs anything of its own.
            let devices = spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.devices().clone())
                .unwrap_or_default();
            let cgroup = mode.dirs(&cgroups_path).remove(0);
            if let Err(e) = crate::devices::attach(&cgroup, &devices) {
                let _ = c.delete(true);
                return Err(e);
            }
        }
        let started = c.start();
        // The container's processes are forked: this shim ignores SIGPIPE again, as every
        // Rust program does, so that a starter gone away is a write error, not its end.
        crate::signals::ignore_sigpipe();
        if let Err(source) = started {
            let _ = c.delete(true);
            return Err(Error::Libcontainer {
                op: "start",
                source,
            });
        }
        Ok((record.clone(), mode, c, out_r, err_r))
    })();
    if result.is_err() {
        CgroupMode::detect().remove(&record.cgroups_path());
        unmount_rootfs(&rootfs);
    }
    result
}

fn mount_rootfs(paths: &Paths, record: &ContainerRecord, dir: &Path) -> Result<()> {
    let snapshots = SnapshotStore::new(paths);
    let mut lower = Vec::new();
    for chain in record.chain.iter().rev() {
        if !snapshots.has(chain) {
            return Err(Error::Shim(format!(
                "snapshot {chain} of image {} is missing",
                record.image
            )));
        }
        lower.push(snapshots.fs(chain).display().to_string());
    }
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(sys(format!("mounting overlay at {}", rootfs.display())))
}

/// Unmounts a container root if it is mounted (where nothing is, the call fails with EINVAL:
/// cheaper than reading the mount table to find out first).
pub fn unmount_rootfs(rootfs: &Path) {
    let _ = nix::mount::umount2(rootfs, MntFlags::MNT_DETACH);
}

/// Whether something is mounted at `path` (in this process's mount namespace).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let target = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

/// The shim's stdout, a pipe to whoever started it (`crate::launch`): one report line, then a
/// byte whenever the log grew; the pipe's end, when this process is gone, tells that the exit
/// is recorded. Nothing here blocks or fails the shim: a starter that went away (a detached
/// `ctr run`) or does not read is only not told.
struct Starter {
    live: bool,
}

impl Starter {
    fn new() -> Self {
        let stdout = std::io::stdout();
        let is_pipe = nix::sys::stat::fstat(stdout.as_raw_fd()).is_ok_and(|s| {
            nix::sys::stat::SFlag::from_bits_truncate(s.st_mode)
                .contains(nix::sys::stat::SFlag::S_IFIFO)
        });
        let live = is_pipe
            && nix::fcntl::fcntl(
                stdout.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .is_ok();
        Starter { live }
    }

    /// Writes the report line.
    fn report(&mut self, line: &str) {
        let mut stdout = std::io::stdout();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.live = false;
        }
    }

    /// Tells the starter that the log grew.
    fn log_grew(&mut self) {
        if !self.live {
            return;
        }
        match nix::unistd::write(std::io::stdout(), b".") {
            // A byte not yet read wakes the starter as well as a second one would.
            Ok(_) | Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(_) => self.live = false,
        }
    }
}

/// Copies the pipes into the log and reaps until `init` exited and the pipes closed; returns
/// the exit code and the killing signal.
fn supervise(
    init: Pid,
    out_r: OwnedFd,
    err_r: OwnedFd,
    log: &mut File,
    starter: &mut Starter,
) -> (i32, Option<i32>) {
    let mut streams: Vec<(OwnedFd, LineBuffer)> = vec![
        (out_r, LineBuffer::new(Stream::Stdout)),
        (err_r, LineBuffer::new(Stream::Stderr)),
    ];
    // SIGCHLD as a descriptor, so that one poll wakes on output and on exits alike.
    let mut exits = crate::signals::descriptor(Signal::SIGCHLD);
    let mut exit: Option<(i32, Option<i32>)> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if streams.is_empty() && exit.is_some() {
            break;
        }
        // Without the signal descriptor, exits are looked for every 100 ms.
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = streams
                .iter()
                .map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .chain(
                    exits
                        .iter()
                        .map(|e| PollFd::new(e.as_fd(), PollFlags::POLLIN)),
                )
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        if let Some(e) = &mut exits {
            crate::signals::drain(e);
        }
        let mut closed = Vec::new();
        for (i, is_ready) in ready.into_iter().take(streams.len()).enumerate() {
            if !is_ready {
                continue;
            }
            let (fd, line) = &mut streams[i];
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd), &mut buf) {
                Ok(0) | Err(_) => {
                    let _ = line.finish(log);
                    closed.push(i);
                }
                Ok(n) => {
                    let _ = line.push(&buf[..n], log);
                    starter.log_grew();
                }
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
        // Reap init and any orphan that re-parented to this subreaper.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == init => exit = Some((code, None)),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                    exit = Some((128 + sig as i32, Some(sig as i32)))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if exit.is_some() {
            let at = *exited_at.get_or_insert_with(Instant::now);
            // Init's exit ends its pid namespace; pipes still held open after that belong to
            // nobody we wait for.
            if at.elapsed() > Duration::from_secs(2) {
                for (_, line) in &mut streams {
                    let _ = line.finish(log);
                }
                break;
            }
        }
    }
    exit.unwrap_or((255, None))
}

/// Runs an exec shim: `args` in the running container `name`, with this process's stdio (on
/// a new terminal with `tty`); returns the process's exit code.
pub fn run_exec(paths: &Paths, name: &str, args: &[String], tty: bool) -> i32 {
    match exec(paths, name, args, tty) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cairn: {}", chain(&e));
            126
        }
    }
}

fn exec(paths: &Paths, name: &str, args: &[String], tty: bool) -> Result<i32> {
    if args.is_empty() {
        return Err(Error::InvalidSetting("exec needs a command".into()));
    }
    let info = container::info(paths, name)?;
    if !matches!(info.state, State::Running(_)) {
        return Err(Error::NotRunning(name.to_string()));
    }
    let lc = |op| move |source| Error::Libcontainer { op, source };
    crate::signals::restore_defaults();
    let bundle_config = container::dir(paths, name).join("bundle/config.json");
    let spec = libcontainer::oci_spec::runtime::Spec::load(&bundle_config).map_err(Error::Spec)?;
    if let Some(filter) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        // Inherited by the process (see seccomp::for_exec); this shim only relays and waits.
        libcontainer::seccomp::initialize_seccomp(&crate::seccomp::for_exec(filter))
            .map_err(|e| Error::Shim(format!("installing the container's seccomp filter: {e}")))?;
    }
    let builder = ContainerBuilder::new(info.record.id.clone(), SyscallType::default())
        .with_root_path(paths.libcontainer_root())
        .map_err(lc("state root"))?;
    let pid = if tty {
        // The process (with `terminal`) goes in a file, the terminal comes back on a socket;
        // libcontainer hands a terminal over only to a detached process (still our child).
        let own = std::process::id();
        let console = crate::tty::ConsoleSocket::bind(paths.run.join(format!("exec-{own}.sock")))?;
        let process = paths.run.join(format!("exec-{own}.json"));
        crate::tty::terminal_process(&spec, args, &process)?;
        let built = builder
            .with_console_socket(Some(console.path()))
            .as_tenant()
            .with_process(Some(&process))
            .with_detach(true)
            .build();
        let _ = fs::remove_file(&process);
        let pid = built.map_err(lc("exec"))?;
        crate::tty::relay(console.receive()?)?;
        pid
    } else {
        builder
            .as_tenant()
            .with_container_args(args.to_vec())
            .with_detach(false)
            .build()
            .map_err(lc("exec"))?
    };
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(sys("waiting for the exec process")(e)),
        }
    }
}

/// An error with its causes, `: `-joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
