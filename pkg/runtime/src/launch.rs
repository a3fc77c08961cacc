//! How a caller starts a shim: forked from the caller itself when the caller is
//! single-threaded (a command line tool such as `cairn ctr`: no second start of the binary,
//! no loading and relocating it again), else re-executed from the cairn binary as `cairn shim
//! start|exec …` (a caller with threads, such as the agent: libcontainer must clone from a
//! single-threaded process, and a forked copy of a threaded process may only exec). Both run
//! the same code ([`crate::shim`]) with the same stdio, so a shim cannot tell how it began.
//! `CAIRN_SHIM=exec` in the caller's environment forces the re-executed shim (tests use it to
//! run that path from a command line tool).
//!
//! A start shim's stdout is a pipe to its starter: the shim writes `ok` or `error: …` on it,
//! then a byte whenever the container's log grew, and the pipe ends when the shim has recorded
//! the exit and is gone ([`Link`]).

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::error::{io, sys};
use crate::{Paths, Result};

/// The environment variable that forces re-executed shims.
pub const SHIM_ENV: &str = "CAIRN_SHIM";

/// The starter's end of a start shim's stdout: readable when the container's log grew,
/// at its end once the shim is gone.
#[derive(Debug)]
pub struct Link(OwnedFd);

impl Link {
    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Reads what is pending without blocking; false once the shim is gone.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), &mut buf) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(nix::Error::EINTR) => {}
                Err(_) => return true,
            }
        }
    }

    /// The shim's first line (`ok` or `error: …`), read byte by byte so that nothing after
    /// it is consumed; empty if the shim ended without one.
    fn first_line(&self) -> String {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), &mut byte) {
                Ok(1) if byte[0] != b'\n' => line.push(byte[0]),
                Err(nix::Error::EINTR) => {}
                _ => break,
            }
        }
        String::from_utf8_lossy(&line).into_owned()
    }
}

/// Whether shims are forked from this process: it has a single thread and `CAIRN_SHIM` does
/// not ask otherwise.
fn forks() -> bool {
    if std::env::var_os(SHIM_ENV).is_some_and(|v| v == "exec") {
        return false;
    }
    fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Starts the start shim of container `name` with its stderr in `log`; returns its link and
/// its first line.
pub(crate) fn start_shim(
    paths: &Paths,
    name: &str,
    shim_exe: &Path,
    log: File,
) -> Result<(Link, String)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let null = File::open("/dev/null").map_err(io("opening", "/dev/null"))?;
    if forks() {
        let (paths, name) = (paths.clone(), name.to_string());
        let stdio = [null.as_fd(), write.as_fd(), log.as_fd()];
        fork(Some(stdio), move || crate::shim::run_start(&paths, &name))?;
        drop(write);
    } else {
        Command::new(shim_exe)
            .args(shim_args(paths, "start"))
            .arg(name)
            .stdin(Stdio::from(null))
            .stdout(Stdio::from(write))
            .stderr(log)
            .spawn()
            .map_err(io("starting shim", shim_exe))?;
    }
    // The shim lives on in its own session; its starter does not wait for it. Only the shim
    // holds the write end now (the forked one's copy, or the child's).
    let link = Link(read);
    let line = link.first_line();
    fcntl(link.0.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(sys("fcntl"))?;
    Ok((link, line))
}

/// Runs the exec shim of container `name` (`args`, on a new terminal with `tty`) with this
/// process's stdio; returns its exit code.
pub(crate) fn exec_shim(
    paths: &Paths,
    name: &str,
    shim_exe: &Path,
    args: &[String],
    tty: bool,
) -> Result<i32> {
    if forks() {
        let (p, n, a) = (paths.clone(), name.to_string(), args.to_vec());
        let pid = fork(None, move || crate::shim::run_exec(&p, &n, &a, tty))?;
        return loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => break Ok(128 + sig as i32),
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => break Err(sys("waiting for the exec shim")(e)),
            }
        };
    }
    let status = Command::new(shim_exe)
        .args(shim_args(paths, "exec"))
        .args(tty.then_some("--tty"))
        .arg(name)
        .arg("--")
        .args(args)
        .status()
        .map_err(io("starting exec shim", shim_exe))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// `shim --data-dir DATA --run-dir RUN COMMAND`.
fn shim_args(paths: &Paths, command: &str) -> Vec<std::ffi::OsString> {
    vec![
        "shim".into(),
        "--data-dir".into(),
        paths.agent.parent().unwrap_or(Path::new("/")).into(),
        "--run-dir".into(),
        paths.run.clone().into(),
        command.into(),
    ]
}

/// Closes every descriptor above stdio. A forked shim outlives its starter: what it inherited
/// (a lock's file, a pipe to someone) would stay open as long as the container runs, where
/// exec would have closed it.
fn close_inherited() {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // The directory's own descriptor is among them, already closed: EBADF.
        let _ = nix::unistd::close(fd);
    }
}

/// Forks this single-threaded process; the child puts `stdio` on its descriptors 0–2 (or
/// keeps this process's), runs `body` and exits with its code.
fn fork(stdio: Option<[BorrowedFd<'_>; 3]>, body: impl FnOnce() -> i32) -> Result<Pid> {
    // Buffered output would be written twice, once by each process.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[allow(unsafe_code)]
    // SAFETY: `forks()` saw a single thread, so no lock or allocator state can be held by a
    // thread that the child lacks; the child may run any code.
    let forked = unsafe { nix::unistd::fork() }.map_err(sys("fork"))?;
    match forked {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            if let Some(fds) = stdio {
                for (target, fd) in fds.iter().enumerate() {
                    if nix::unistd::dup2(fd.as_raw_fd(), target as i32).is_err() {
                        std::process::exit(127);
                    }
                }
            }
            close_inherited();
            // A panic must not unwind into the caller's code in the child.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            std::process::exit(code)
        }
    }
}
