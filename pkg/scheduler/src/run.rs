//! The scheduling loop around the pure core: it follows nodes and pods through the API (one
//! reflector each), keeps the [`Snapshot`] current, queues the pods that are ours to place
//! (`spec.schedulerName` is `default-scheduler`, no node yet, not being deleted), places them
//! one at a time, assumes each decision at once so the next one sees it, and binds through
//! `pods/binding` in the background. A pod that fits nowhere gets `PodScheduled=False`, a
//! `FailedScheduling` event, and a back-off (1 s doubling to 10 s); it is tried again once the
//! back-off is over and the cluster has changed (a node added or changed, a pod deleted), or
//! after a minute regardless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, Event, Patch, WatchParams, watch_list};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Event as CoreEvent, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::queue::{Queue, RETRY_UNCHANGED};
use crate::snapshot::pod_key;
use crate::{Snapshot, Unschedulable, schedule};

/// The scheduler name this scheduler answers to.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Pods placed in one go before watch events are taken again.
const PLACE_BATCH: usize = 256;
/// Bindings in flight at once.
const CONCURRENT_BINDS: usize = 64;

fn bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Whether the pod waits for this scheduler.
fn ours_to_place(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(SCHEDULER_NAME);
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    name == SCHEDULER_NAME && !bound(pod) && pod.metadata.deletion_timestamp.is_none() && !terminal
}

/// What a background binding reports: nothing when it went through, else the pod and why.
struct BindFailed {
    pod: Pod,
    error: cairn_client::Error,
}

/// The scheduler's state, owned by its one task.
struct Scheduler {
    client: Client,
    snapshot: Snapshot,
    nodes: HashMap<String, Node>,
    queue: Queue,
    binds: Arc<Semaphore>,
    bind_failed: mpsc::Sender<BindFailed>,
}

/// Runs the scheduler until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let mut nodes = Box::pin(watch_list(
        Api::<Node>::all(client.clone()),
        WatchParams::default(),
    ));
    let mut pods = Box::pin(watch_list(
        Api::<Pod>::all(client.clone()),
        WatchParams::default(),
    ));
    let (bind_failed, mut bind_failures) = mpsc::channel(256);
    let mut s = Scheduler {
        client,
        snapshot: Snapshot::new(),
        nodes: HashMap::new(),
        queue: Queue::default(),
        binds: Arc::new(Semaphore::new(CONCURRENT_BINDS)),
        bind_failed,
    };
    tracing::info!("scheduler started");
    loop {
        let more = s.place_ready();
        let wake = if more {
            Instant::now()
        } else {
            s.queue
                .next_ready()
                .map(|t| t.max(Instant::now() + Duration::from_millis(5)))
                .unwrap_or_else(|| Instant::now() + RETRY_UNCHANGED)
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                tracing::info!("scheduler stopped");
                return;
            }
            Some(e) = nodes.next() => s.on_node(e),
            Some(e) = pods.next() => s.on_pod(e),
            Some(f) = bind_failures.recv() => s.on_bind_failed(f),
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

impl Scheduler {
    fn on_node(&mut self, event: Event<Node>) {
        match event {
            Event::Init(all) => {
                let names: Vec<String> = self.nodes.keys().cloned().collect();
                for n in names {
                    self.snapshot.remove_node(&n);
                }
                self.nodes.clear();
                for node in all {
                    self.upsert_node(node);
                }
            }
            Event::Applied(node) => self.upsert_node(node),
            Event::Deleted(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.snapshot.remove_node(&name);
                self.nodes.remove(&name);
            }
        }
        self.queue.cluster_changed();
    }

    fn upsert_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.nodes.insert(name, node.clone());
        self.snapshot.upsert_node(node);
    }

    fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::Init(all) => {
                // Start over from the list: nodes kept, pods re-accounted.
                let mut snapshot = Snapshot::new();
                for node in self.nodes.values() {
                    snapshot.upsert_node(node.clone());
                }
                self.snapshot = snapshot;
                self.queue = Queue::default();
                for pod in all {
                    self.on_pod_applied(pod);
                }
            }
            Event::Applied(pod) => self.on_pod_applied(pod),
            Event::Deleted(pod) => {
                let k = pod_key(&pod);
                self.queue.remove(&k);
                let (ns, name) = k.split_once('/').unwrap_or_default();
                self.snapshot.remove_pod(ns, name);
                self.queue.cluster_changed();
            }
        }
    }

    fn on_pod_applied(&mut self, pod: Pod) {
        let k = pod_key(&pod);
        if bound(&pod) {
            self.queue.remove(&k);
            let _ = self.snapshot.add_pod(pod);
        } else if ours_to_place(&pod) {
            self.queue.add(pod);
        } else {
            self.queue.remove(&k);
        }
    }

    /// Forgets the assumed placement of a pod whose binding failed and queues it again (with
    /// a back-off) unless it is gone or was bound meanwhile.
    fn on_bind_failed(&mut self, f: BindFailed) {
        let k = pod_key(&f.pod);
        let (namespace, name) = k.split_once('/').unwrap_or_default();
        tracing::debug!(pod = %k, error = %f.error, "binding failed");
        let still_assumed = self
            .snapshot
            .pod_node(namespace, name)
            .is_some_and(|(_, assumed)| assumed);
        if !still_assumed {
            return;
        }
        self.snapshot.remove_pod(namespace, name);
        if !f.error.is_not_found() {
            self.queue.add(f.pod);
            self.queue.failed(&k, None);
        }
    }

    /// Places the pods that are ready now, at most [`PLACE_BATCH`] before returning so that
    /// watch events (bindings observed, new pods) are taken in between; returns whether more
    /// are ready.
    fn place_ready(&mut self) -> bool {
        let now = Instant::now();
        for _ in 0..PLACE_BATCH {
            let Some(pod) = self.queue.pop_ready(now) else {
                return false;
            };
            let k = pod_key(&pod);
            match schedule(&self.snapshot, &pod) {
                Ok(placement) => {
                    if self.snapshot.assume(&pod, &placement.node).is_err() {
                        self.queue.failed(&k, None);
                        continue;
                    }
                    self.queue.remove(&k);
                    self.bind(pod, placement.node);
                }
                Err(unschedulable) => {
                    let message = unschedulable.to_string();
                    if self.queue.failed(&k, Some(message.clone())) {
                        self.report_unschedulable(pod, unschedulable);
                    }
                }
            }
        }
        true
    }

    fn bind(&self, pod: Pod, node: String) {
        let client = self.client.clone();
        let permits = self.binds.clone();
        let tx = self.bind_failed.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    uid: pod.metadata.uid.clone(),
                    ..Default::default()
                },
                target: ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(node),
                    ..Default::default()
                },
            };
            let api = Api::<Pod>::namespaced(client, &namespace);
            let result = api
                .create_subresource::<_, serde_json::Value>(&name, "binding", &binding)
                .await;
            if let Err(error) = result {
                let _ = tx.send(BindFailed { pod, error }).await;
            }
        });
    }

    /// Tells the pod's owner why it waits: its PodScheduled condition and an event.
    fn report_unschedulable(&self, pod: Pod, why: Unschedulable) {
        let client = self.client.clone();
        let message = why.to_string();
        tokio::spawn(async move {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let now = jiff::Timestamp::now();
            let api = Api::<Pod>::namespaced(client.clone(), &namespace);
            let condition = json!({"status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": null,
                "lastTransitionTime": Time(now),
            }]}});
            if let Err(e) = api.patch_status(&name, &Patch::Strategic(condition)).await {
                tracing::debug!(pod = %name, error = %e, "could not record PodScheduled=False");
            }
            let event = CoreEvent {
                metadata: ObjectMeta {
                    name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                involved_object: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    uid: pod.metadata.uid.clone(),
                    resource_version: pod.metadata.resource_version.clone(),
                    ..Default::default()
                },
                reason: Some("FailedScheduling".into()),
                message: Some(message),
                type_: Some("Warning".into()),
                count: Some(1),
                first_timestamp: Some(Time(now)),
                last_timestamp: Some(Time(now)),
                event_time: Some(MicroTime(now)),
                reporting_component: Some(SCHEDULER_NAME.into()),
                reporting_instance: Some(SCHEDULER_NAME.into()),
                action: Some("Scheduling".into()),
                source: Some(k8s_openapi::api::core::v1::EventSource {
                    component: Some(SCHEDULER_NAME.into()),
                    host: None,
                }),
                ..Default::default()
            };
            let events = Api::<CoreEvent>::namespaced(client, &namespace);
            if let Err(e) = events.create(&event).await {
                tracing::debug!(pod = %name, error = %e, "could not record a FailedScheduling event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_unbound_default_scheduler_pods_are_ours() {
        let mut p = pod("a");
        assert!(ours_to_place(&p));
        p.spec.as_mut().unwrap().scheduler_name = Some("other".into());
        assert!(!ours_to_place(&p));
        let mut p = pod("b");
        p.spec.as_mut().unwrap().node_name = Some("n1".into());
        assert!(!ours_to_place(&p));
    }
}
