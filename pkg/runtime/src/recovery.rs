//! Reconciling recorded state with what the host still has, each time the runtime is opened.
//!
//! A container's record outlives its shim and everything under the run directory. A shim that
//! still runs is left alone (its container is reported running, and a restarted starter goes on
//! talking to it through the files). A container whose shim is gone without recording an exit
//! (the shim was killed, or the node rebooted and `/run` was emptied) is ended here: whatever
//! is left of it (processes in its cgroup, libcontainer state, cgroups, the root mount) is
//! removed, and its end recorded with exit code 255 and why the real one is unknown, so that
//! `rm` and a new `run` of the name work; one started with `--rm` is removed. Sandboxes whose
//! bind mount is gone are forgotten.

use std::fs;

use crate::cgroup::CgroupMode;
use crate::container::{self, ExitStatus, RunState, State};
use crate::error::{io, sys};
use crate::{Error, Paths, Result};

/// The exit code recorded for a container whose real one was lost (containerd's choice).
pub const UNKNOWN_EXIT_CODE: i32 = 255;

/// What [`reconcile`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Containers whose end was recorded on their dead shim's behalf.
    pub exited: Vec<String>,
    /// Of those, the ones removed because they were started with `--rm`.
    pub removed: Vec<String>,
    /// Sandboxes forgotten because their network namespace's bind mount was gone.
    pub forgotten_sandboxes: Vec<String>,
    /// What could not be recovered (tried again on the next open), with why.
    pub failed: Vec<(String, Error)>,
}

/// Brings the records in line with the host: see the module documentation.
pub fn reconcile(paths: &Paths) -> Recovery {
    let mut out = Recovery::default();
    let names: Vec<String> = fs::read_dir(paths.containers())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for name in names {
        // Cheap look first; the lock is taken only for a container that needs work.
        if !matches!(container::info(paths, &name), Ok(i) if matches!(i.state, State::Unknown(_))) {
            continue;
        }
        match recover(paths, &name) {
            Ok(None) => {}
            Ok(Some(removed)) => {
                if removed {
                    out.removed.push(name.clone());
                }
                out.exited.push(name);
            }
            // Removed by someone else meanwhile.
            Err(Error::ContainerNotFound(_)) => {}
            Err(e) => out.failed.push((name, e)),
        }
    }
    match crate::sandbox::forget_stale(paths) {
        Ok(names) => out.forgotten_sandboxes = names,
        Err(e) => out.failed.push(("sandboxes".into(), e)),
    }
    out
}

/// Ends container `name` if its shim is gone; returns whether it was also removed, or `None`
/// when there was nothing to do (another process recovered it, or its shim runs).
fn recover(paths: &Paths, name: &str) -> Result<Option<bool>> {
    let dir = container::dir(paths, name);
    let handle = match fs::File::open(&dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ContainerNotFound(name.to_string()));
        }
        Err(e) => return Err(io("opening", &dir)(e)),
    };
    // One recoverer per container at a time; the next one finds the end recorded.
    let _lock = nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| sys(format!("locking {}", dir.display()))(e))?;
    let info = container::info(paths, name)?;
    let State::Unknown(run) = info.state else {
        return Ok(None);
    };
    let record = info.record;
    let why = reason(paths, &record.id, &run);
    let oom_killed = CgroupMode::detect().oom_kills(&record.cgroups_path()) > 0;
    container::clean_up(paths, &record)?;
    let status = ExitStatus {
        exit_code: UNKNOWN_EXIT_CODE,
        signal: None,
        oom_killed,
        finished: jiff::Timestamp::now().to_string(),
        unknown_exit: Some(why),
    };
    crate::files::write_json(&dir.join("status.json"), &status)?;
    tracing::info!(
        container = name,
        "recorded the end of a container whose shim is gone"
    );
    if record.settings.auto_remove {
        fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        return Ok(Some(true));
    }
    Ok(Some(false))
}

/// Why the exit of a container with a dead shim is unknown, as far as the host tells.
fn reason(paths: &Paths, id: &str, run: &RunState) -> String {
    if run
        .boot_id
        .as_ref()
        .is_some_and(|b| Some(b) != container::boot_id().as_ref())
    {
        "the node restarted".into()
    } else if !paths.libcontainer_root().join(id).exists() {
        "the run directory was cleared".into()
    } else {
        "the shim died".into()
    }
}
