//! The terminal of `cairn ctr exec --tty`: libcontainer makes the pseudo-terminal inside the
//! container (so that its slave is the container's `/dev/pts/N` and the process's controlling
//! terminal) and passes the master over a console socket; the exec shim then relays between
//! its own stdio and the master, with its own terminal, if it has one, in raw mode.

use std::fs;
use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::error::{io, sys};
use crate::{Error, Result};

/// The end-of-file character a terminal in canonical mode turns into end of input.
const VEOF_CHAR: u8 = 0x04;

/// A unix socket libcontainer connects to to hand over a terminal's master; removed on drop.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listens on `path`.
    pub fn bind(path: PathBuf) -> Result<Self> {
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("listening on", &path))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts libcontainer's connection and takes the master it sends.
    pub fn receive(&self) -> Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(io("accepting on", &self.path))?;
        let mut name = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(sys("receiving the terminal"))?;
        for cmsg in msg.cmsgs().map_err(sys("reading the terminal message"))? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg
                && let Some(&fd) = fds.first()
            {
                #[allow(unsafe_code)]
                // SAFETY: SCM_RIGHTS just installed `fd` in this process; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        Err(Error::Shim("the console socket sent no terminal".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes the `process` of the container's OCI spec with `args` and a terminal to `out` (what
/// libcontainer's tenant builder runs).
pub fn terminal_process(spec: &Spec, args: &[String], out: &Path) -> Result<()> {
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.to_vec()));
    process.set_terminal(Some(true));
    crate::files::write_json_volatile(out, &process)
}

/// Puts a terminal in raw mode; restores it on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Option<Self> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}

/// Gives `master` the window size of the terminal `from` (nothing if `from` is none).
fn copy_window_size(from: BorrowedFd<'_>, master: BorrowedFd<'_>) {
    #[allow(unsafe_code)]
    // SAFETY: both ioctls read or write one `winsize`, a plain struct that outlives the calls.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Relays this process's stdin to `master` and `master` to its stdout until every holder of
/// the terminal's slave closed it (the process and whatever it left running ended). The end of
/// stdin becomes an end-of-file character, as typing Ctrl-D would. When our terminal's window
/// changes size (SIGWINCH), the container's terminal gets the new size, which sends the
/// process its own SIGWINCH.
pub fn relay(master: OwnedFd) -> Result<()> {
    let stdin = std::io::stdin();
    let _raw = RawMode::enter(stdin.as_fd());
    // None without a signal descriptor: the size is then copied once.
    let mut resized = crate::signals::descriptor(Signal::SIGWINCH);
    copy_window_size(stdin.as_fd(), master.as_fd());
    let mut stdout = std::io::stdout();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if let Some(signals) = &resized {
            fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys("polling the terminal")(e)),
        }
        let ready = |fd: &PollFd| {
            fd.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let master_ready = ready(&fds[0]);
        let resize_ready = resized.is_some() && ready(&fds[1]);
        let stdin_ready = stdin_open && fds.last().is_some_and(ready);
        drop(fds);
        if resize_ready && let Some(signals) = &mut resized {
            crate::signals::drain(signals);
            copy_window_size(stdin.as_fd(), master.as_fd());
        }
        if master_ready {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                // EIO: the last slave was closed.
                Ok(0) | Err(Errno::EIO) => return Ok(()),
                Ok(n) => {
                    let _ = stdout.write_all(&buf[..n]).and_then(|_| stdout.flush());
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(sys("reading the terminal")(e)),
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Err(Errno::EINTR) => {}
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = nix::unistd::write(&master, &[VEOF_CHAR]);
                }
                Ok(n) => write_all(&master, &buf[..n])?,
            }
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(sys("writing to the terminal")(e)),
        }
    }
    Ok(())
}
