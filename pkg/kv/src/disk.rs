//! Running short blocking disk work (an fdatasync, a redb commit) from async code.
//!
//! It runs in place, on the calling task's thread. Measured with `cairn-bench kv`, handing each
//! of these to the blocking pool cost a single client's put more than the disk work itself (two
//! thread switches per hand-off, two hand-offs per put); the work is short (tens to a few hundred
//! microseconds) and the runtime's other workers go on meanwhile.

use crate::error::Result;

/// Runs `f` in place.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    f()
}
