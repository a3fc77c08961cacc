//! Node lifecycle, as upstream's node lifecycle controller and taint manager do it: a node is
//! alive while its Lease in `kube-node-lease` (or its Ready condition's heartbeat) keeps
//! changing. One that has not changed for 40 s (the grace period), as measured on this
//! process's clock from when it last saw a change, gets its conditions set to Unknown
//! ("Kubelet stopped posting node status."), its pods marked not Ready, and the
//! `node.kubernetes.io/unreachable` taints (NoSchedule, so nothing new lands there, and
//! NoExecute); a node reporting Ready=False gets the `not-ready` taints; the taints go once
//! the node is Ready again. Pods on a node with NoExecute taints are evicted (deleted) once
//! their matching tolerations' `tolerationSeconds` have passed since the taint was added (at
//! once when nothing tolerates it; never when a toleration has no limit); every pod has
//! 300 s for these two taints by default (the API server adds them). Their controllers
//! replace them elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, Store};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use serde_json::json;
use tokio::time::Instant;

use crate::error::Result;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, nodes, pods};

/// How long a node may go without a heartbeat before it is Unknown.
pub const GRACE: Duration = Duration::from_secs(40);
/// The namespace of the nodes' Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The taint of a node that stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node that reports not Ready.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// The node lifecycle controller.
pub struct NodeLifecycle {
    client: Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// Per node: the last heartbeat seen and when this process saw it change.
    seen: Mutex<HashMap<String, (String, Instant)>>,
}

impl NodeLifecycle {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let key = |name: &str| ObjectKey {
            namespace: None,
            name: name.to_string(),
        };
        let q = queue.clone();
        informers
            .nodes
            .on_change(move |change| q.add(key(meta::name(&change.object().metadata))));
        let q = queue.clone();
        informers
            .leases
            .on_change(move |change: Change<'_, Lease>| {
                let m = &change.object().metadata;
                if meta::namespace(m) == LEASE_NAMESPACE {
                    q.add(key(meta::name(m)));
                }
            });
        // A pod arriving on a tainted node may have to be evicted.
        let q = queue.clone();
        let node_store = informers.nodes.store().clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            if let Change::Added(pod) | Change::Updated { new: pod, .. } = change
                && let Some(n) = pods::node_name(pod)
                && node_store.get(None, n).is_some_and(|node| {
                    nodes::taints(&node).iter().any(|t| t.effect == "NoExecute")
                })
            {
                q.add(key(n));
            }
        });
        Arc::new(NodeLifecycle {
            client,
            nodes: informers.nodes.store().clone(),
            leases: informers.leases.store().clone(),
            pods: informers.pods.store().clone(),
            seen: Mutex::default(),
        })
    }

    /// Since when the node's heartbeat has not changed, on this process's clock.
    fn silent_since(&self, node: &Node) -> Instant {
        let name = meta::name(&node.metadata).to_string();
        let lease = self.leases.get(Some(LEASE_NAMESPACE), &name).and_then(|l| {
            l.spec
                .as_ref()?
                .renew_time
                .as_ref()
                .map(|t| t.0.to_string())
        });
        let condition = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string()));
        let beat = format!(
            "{}|{}",
            lease.unwrap_or_default(),
            condition.unwrap_or_default()
        );
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = seen
            .entry(name)
            .or_insert_with(|| (beat.clone(), Instant::now()));
        if entry.0 != beat {
            *entry = (beat, Instant::now());
        }
        entry.1
    }
}

fn taint(key: &str, effect: &str, now: jiff::Timestamp) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        value: None,
        time_added: (effect == "NoExecute").then(|| meta::time(now)),
    }
}

impl Reconcile for NodeLifecycle {
    type Key = ObjectKey;
    const NAME: &'static str = "node-lifecycle";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(node) = self.nodes.get(None, &key.name) else {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key.name);
            return Ok(None);
        };
        let api = Api::<Node>::cluster(self.client.clone());
        let now = meta::now();
        let silent = self.silent_since(&node).elapsed();
        let mut ready = nodes::ready_status(&node).map(str::to_string);
        let mut again = None;
        if silent >= GRACE && ready.as_deref() != Some("Unknown") {
            tracing::info!(node = key.name, "node stopped posting its status");
            let mut conditions: Vec<NodeCondition> = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    if c.status != "Unknown" {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(meta::time(now));
                    }
                    c
                })
                .collect();
            if ready.is_none() {
                conditions.push(NodeCondition {
                    type_: "Ready".into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_transition_time: Some(meta::time(now)),
                    last_heartbeat_time: None,
                });
            }
            api.patch_status(
                &key.name,
                &Patch::Merge(json!({"status": {"conditions": conditions}})),
            )
            .await?;
            self.mark_pods_not_ready(&key.name).await?;
            ready = Some("Unknown".into());
        } else if silent < GRACE {
            again = Some(GRACE - silent + Duration::from_secs(1));
        }

        // The taints the Ready condition calls for.
        // A node that has not reported yet is left alone until its grace period is over.
        let wanted: &[&str] = match ready.as_deref() {
            None | Some("True") => &[],
            Some("False") => &[NOT_READY],
            Some(_) => &[UNREACHABLE],
        };
        let current = nodes::taints(&node).to_vec();
        let mut taints: Vec<Taint> = current
            .iter()
            .filter(|t| {
                !((t.key == UNREACHABLE || t.key == NOT_READY)
                    && (t.effect == "NoExecute" || t.effect == "NoSchedule")
                    && !wanted.contains(&t.key.as_str()))
            })
            .cloned()
            .collect();
        for key in wanted {
            for effect in ["NoSchedule", "NoExecute"] {
                if !taints.iter().any(|t| t.key == *key && t.effect == effect) {
                    taints.push(taint(key, effect, now));
                }
            }
        }
        if taints != current {
            tracing::info!(node = key.name, ?wanted, "updating the node's taints");
            let patch = Patch::Merge(json!({"spec": {"taints": taints}}));
            api.patch(&key.name, &patch).await?;
        }
        let evict_again = self.evict(&key.name, &taints, now).await?;
        Ok(match (again, evict_again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}

impl NodeLifecycle {
    /// Upstream's `MarkPodsNotReady`.
    async fn mark_pods_not_ready(&self, node: &str) -> Result<()> {
        let now = meta::now();
        for pod in self.pods.list() {
            if pods::node_name(&pod) != Some(node) || !pods::is_ready(&pod) {
                continue;
            }
            let conditions: Vec<PodCondition> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    if c.type_ == "Ready" {
                        c.status = "False".into();
                        c.last_transition_time = Some(meta::time(now));
                    }
                    c
                })
                .collect();
            let api = Api::<Pod>::namespaced(self.client.clone(), meta::namespace(&pod.metadata));
            match api
                .patch_status(
                    meta::name(&pod.metadata),
                    &Patch::Merge(json!({"status": {"conditions": conditions}})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Evicts the pods on `node` whose toleration of its NoExecute taints ran out; when the
    /// next one runs out.
    async fn evict(
        &self,
        node: &str,
        taints: &[Taint],
        now: jiff::Timestamp,
    ) -> Result<Option<Duration>> {
        let no_execute: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
        if no_execute.is_empty() {
            return Ok(None);
        }
        let mut next: Option<i64> = None;
        for pod in self.pods.list() {
            if pods::node_name(&pod) != Some(node)
                || meta::is_deleting(&pod.metadata)
                || pods::is_terminal(&pod)
            {
                continue;
            }
            let tolerations = pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            // The earliest time any taint's toleration runs out; None: tolerated for ever.
            let mut deadline: Option<i64> = None;
            let mut untolerated = false;
            for t in &no_execute {
                let matching: Vec<_> = tolerations
                    .iter()
                    .filter(|x| nodes::tolerates(x, t))
                    .collect();
                if matching.is_empty() {
                    untolerated = true;
                    break;
                }
                let seconds = matching.iter().filter_map(|x| x.toleration_seconds).min();
                if matching.iter().any(|x| x.toleration_seconds.is_none()) && seconds.is_none() {
                    continue;
                }
                if let Some(s) = seconds {
                    let added = t
                        .time_added
                        .as_ref()
                        .map(|a| a.0.as_second())
                        .unwrap_or(now.as_second());
                    let at = added + s.max(0);
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
            }
            let due = untolerated || deadline.is_some_and(|d| d <= now.as_second());
            if due {
                tracing::info!(
                    node,
                    namespace = meta::namespace(&pod.metadata),
                    pod = meta::name(&pod.metadata),
                    "evicting a pod from a tainted node"
                );
                let api =
                    Api::<Pod>::namespaced(self.client.clone(), meta::namespace(&pod.metadata));
                match api
                    .delete(meta::name(&pod.metadata), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            } else if let Some(d) = deadline {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next.map(|n| Duration::from_secs((n - now.as_second()).max(1) as u64)))
    }
}
