//! Pod garbage collection, as upstream's PodGC: pods bound to nodes that no longer exist and
//! pods being deleted that were never scheduled are deleted at once (grace period 0, since no
//! node will stop them), and finished pods beyond a threshold (upstream's 12,500) are
//! deleted oldest first. It runs every 20 s and when a node is deleted.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, Store};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::error::Result;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, pods};

/// How many finished pods may stay.
pub const TERMINATED_THRESHOLD: usize = 12_500;
/// How often it runs.
const PERIOD: Duration = Duration::from_secs(20);

/// The pod garbage collector; its one key is `()`.
pub struct PodGc {
    client: Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    threshold: usize,
}

impl PodGc {
    /// The collector, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<()>) -> Arc<Self> {
        let q = queue.clone();
        informers.nodes.on_change(move |change: Change<'_, Node>| {
            if let Change::Deleted(_) = change {
                q.add(());
            }
        });
        queue.add(());
        Arc::new(PodGc {
            client,
            pods: informers.pods.store().clone(),
            nodes: informers.nodes.store().clone(),
            threshold: TERMINATED_THRESHOLD,
        })
    }

    async fn force_delete(&self, pod: &Pod) -> Result<()> {
        let api = Api::<Pod>::namespaced(self.client.clone(), meta::namespace(&pod.metadata));
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        match api.delete(meta::name(&pod.metadata), &params).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Reconcile for PodGc {
    type Key = ();
    const NAME: &'static str = "pod-gc";

    async fn reconcile(&self, _: &()) -> Result<Option<Duration>> {
        let all = self.pods.list();
        let node_api = Api::<Node>::cluster(self.client.clone());
        let mut terminated: Vec<&Arc<Pod>> = Vec::new();
        for pod in &all {
            if pods::is_terminal(pod) {
                terminated.push(pod);
            }
            match pods::node_name(pod) {
                // Confirmed by a read: the cache may not have seen a new node yet.
                Some(node)
                    if self.nodes.get(None, node).is_none()
                        && node_api.get_opt(node).await?.is_none() =>
                {
                    tracing::info!(
                        node,
                        pod = meta::name(&pod.metadata),
                        "deleting a pod of a node that is gone"
                    );
                    self.force_delete(pod).await?;
                }
                None if meta::is_deleting(&pod.metadata) => self.force_delete(pod).await?,
                _ => {}
            }
        }
        if terminated.len() > self.threshold {
            terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let surplus = terminated.len() - self.threshold;
            for pod in &terminated[..surplus] {
                self.force_delete(pod).await?;
            }
        }
        Ok(Some(PERIOD))
    }
}
