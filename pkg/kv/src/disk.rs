//! Running short blocking disk work (an fdatasync, a redb commit) from async code, on the
//! blocking pool so the async workers never stall on the disk.

use crate::error::{Error, Result};

/// Runs `f` on the blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
}
