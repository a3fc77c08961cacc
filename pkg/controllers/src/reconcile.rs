//! The one shape every controller here has: a [`Reconcile`] implementation that drives one
//! object (named by its key) toward its spec from the informers' caches, level-triggered, and
//! [`run_workers`], which feeds it keys from its [`Queue`] and requeues on failure or when the
//! controller asks to look again later.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::queue::Queue;

/// A controller's reconcile step.
pub trait Reconcile: Send + Sync + 'static {
    /// What names one unit of work, usually an [`cairn_client::ObjectKey`].
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// The controller's name, for logs.
    const NAME: &'static str;

    /// Brings the object `key` names toward its spec. `Ok(Some(d))` asks to look again after
    /// `d` (time-driven work such as deadlines); an error retries with back-off.
    fn reconcile(
        &self,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Option<Duration>, Error>> + Send;
}

/// Runs `workers` workers of `controller` on `queue` until `shutdown`.
pub async fn run_workers<R: Reconcile>(
    controller: Arc<R>,
    queue: Queue<R::Key>,
    workers: usize,
    shutdown: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let controller = controller.clone();
        let queue = queue.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.next().await {
                match controller.reconcile(&key).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(delay) = again {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(error) if error.is_conflict() => {
                        tracing::debug!(controller = R::NAME, ?key, %error, "conflict, retrying");
                        queue.retry(key.clone());
                    }
                    Err(error) => {
                        tracing::warn!(controller = R::NAME, ?key, error = %error.chain(), "reconcile failed");
                        queue.retry(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    shutdown.cancelled().await;
    queue.shut_down();
    tasks.shutdown().await;
}
