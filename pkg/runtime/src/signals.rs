//! Signal handling of the shims: a signal turned into a file descriptor that a poll loop can
//! wait on with its other descriptors, and the default actions restored before libcontainer
//! forks a container's process.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// `signal` as a file descriptor: blocked for this (single-threaded) process and read from the
/// descriptor instead. None if it cannot be had. Block only after the container's processes
/// were forked: they inherit the mask.
pub(crate) fn descriptor(signal: Signal) -> Option<SignalFd> {
    let mut set = SigSet::empty();
    set.add(signal);
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok()
}

/// Takes every pending signal off `fd` (what arrived is all the caller needs to know).
pub(crate) fn drain(fd: &mut SignalFd) {
    while let Ok(Some(_)) = fd.read_signal() {}
}

/// Gives every signal this process ignores its default action back, and unblocks all, before
/// libcontainer forks a container's process from it: ignored signals and the mask survive
/// exec, and libcontainer passes them on as they are. Rust ignores SIGPIPE in every program it
/// starts, so without this a container's `yes | head -1` would see EPIPE instead of dying of
/// SIGPIPE as it does under runc. The raw system call also reaches the two real-time signals
/// glibc keeps for itself (its `sigaction` refuses them).
pub(crate) fn restore_defaults() {
    let _ = SigSet::empty().thread_set_mask();
    let max = libc::SIGRTMAX();
    for signal in 1..=max {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // The kernel's `struct sigaction` begins with the handler on every architecture; the
        // buffers are larger than it, and all zero means SIG_DFL with no flags and no mask.
        let mut old = [0 as libc::c_ulong; 8];
        let new = [0 as libc::c_ulong; 8];
        let mask_size = std::mem::size_of::<u64>();
        #[allow(unsafe_code)]
        // SAFETY: rt_sigaction reads `new` and writes `old`, both live buffers larger than the
        // kernel's struct; no handler of this process is installed or run by it.
        unsafe {
            if libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                std::ptr::null::<libc::c_ulong>(),
                old.as_mut_ptr(),
                mask_size,
            ) == 0
                && old[0] == libc::SIG_IGN as libc::c_ulong
            {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    new.as_ptr(),
                    std::ptr::null_mut::<libc::c_ulong>(),
                    mask_size,
                );
            }
        }
    }
}

/// Ignores SIGPIPE again (after [`restore_defaults`] and the forks it was for), as Rust sets up
/// every program: a write to a pipe whose reader is gone then fails instead of killing.
pub(crate) fn ignore_sigpipe() {
    #[allow(unsafe_code)]
    // SAFETY: installs no handler, only the kernel's ignore disposition, in a process whose
    // other code never changes SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}
