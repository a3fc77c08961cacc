//! The scheduling loop around the pure core: it follows nodes and pods through the API (one
//! reflector each), keeps the [`Snapshot`] current, queues the pods that are ours to place
//! (`spec.schedulerName` is `default-scheduler`, no node yet, not being deleted), places them
//! one at a time, assumes each decision at once so the next one sees it, and binds through
//! `pods/binding` in the background. A pod that fits nowhere gets `PodScheduled=False`, a
//! `FailedScheduling` event, and a back-off (1 s doubling to 10 s); it is tried again once the
//! back-off is over and the cluster has changed (a node added or changed, a pod deleted), or
//! after a minute regardless.

use std::collections::{HashMap, VecDeque};
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

use crate::{Snapshot, Unschedulable, schedule};

/// The scheduler name this scheduler answers to.
pub const SCHEDULER_NAME: &str = "default-scheduler";

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod is retried after this long even if nothing changed.
const RETRY_UNCHANGED: Duration = Duration::from_secs(60);
/// Bindings in flight at once.
const CONCURRENT_BINDS: usize = 64;

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

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

/// A pod in the queue.
struct Queued {
    pod: Pod,
    attempts: u32,
    ready_at: Instant,
    /// When it last failed to fit, if it did; it then also waits for a cluster change.
    failed_at: Option<Instant>,
    last_message: Option<String>,
}

/// The pods waiting to be placed.
#[derive(Default)]
struct Queue {
    pods: HashMap<String, Queued>,
    order: VecDeque<String>,
    /// Bumped on every cluster change.
    generation: u64,
    changed_at: HashMap<String, u64>,
}

impl Queue {
    fn add(&mut self, pod: Pod) {
        let k = key(&pod);
        match self.pods.get_mut(&k) {
            Some(q) => q.pod = pod,
            None => {
                self.order.push_back(k.clone());
                self.pods.insert(
                    k,
                    Queued {
                        pod,
                        attempts: 0,
                        ready_at: Instant::now(),
                        failed_at: None,
                        last_message: None,
                    },
                );
            }
        }
    }

    fn remove(&mut self, k: &str) {
        self.pods.remove(k);
        self.changed_at.remove(k);
    }

    fn cluster_changed(&mut self) {
        self.generation += 1;
    }

    /// The next pod ready to be tried, if any.
    fn pop_ready(&mut self, now: Instant) -> Option<Pod> {
        for _ in 0..self.order.len() {
            let k = self.order.pop_front()?;
            let Some(q) = self.pods.get(&k) else {
                continue;
            };
            let waited_for_change = match q.failed_at {
                None => true,
                Some(at) => {
                    self.changed_at
                        .get(&k)
                        .is_some_and(|g| *g < self.generation)
                        || now >= at + RETRY_UNCHANGED
                }
            };
            if now >= q.ready_at && waited_for_change {
                let pod = q.pod.clone();
                self.order.push_back(k);
                return Some(pod);
            }
            self.order.push_back(k);
        }
        None
    }

    /// Backs a pod off after a failed attempt; returns whether its message is new.
    fn failed(&mut self, k: &str, message: Option<String>) -> bool {
        let generation = self.generation;
        let Some(q) = self.pods.get_mut(k) else {
            return false;
        };
        q.attempts += 1;
        let backoff = INITIAL_BACKOFF
            .saturating_mul(1 << (q.attempts - 1).min(4))
            .min(MAX_BACKOFF);
        let now = Instant::now();
        q.ready_at = now + backoff;
        let new_message = message.is_some() && q.last_message != message;
        if message.is_some() {
            q.failed_at = Some(now);
            self.changed_at.insert(k.to_string(), generation);
            q.last_message = message;
        }
        new_message
    }

    /// The soonest moment a pod may become ready.
    fn next_ready(&self) -> Option<Instant> {
        self.pods.values().map(|q| q.ready_at).min()
    }
}

/// What a background binding reports.
struct Bound {
    key: String,
    namespace: String,
    name: String,
    result: Result<(), String>,
}

/// The scheduler's state, owned by its one task.
struct Scheduler {
    client: Client,
    snapshot: Snapshot,
    nodes: HashMap<String, Node>,
    queue: Queue,
    binds: Arc<Semaphore>,
    bound_tx: mpsc::Sender<Bound>,
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
    let (bound_tx, mut bound_rx) = mpsc::channel(256);
    let mut s = Scheduler {
        client,
        snapshot: Snapshot::new(),
        nodes: HashMap::new(),
        queue: Queue::default(),
        binds: Arc::new(Semaphore::new(CONCURRENT_BINDS)),
        bound_tx,
    };
    tracing::info!("scheduler started");
    loop {
        s.place_ready();
        let wake = s
            .queue
            .next_ready()
            .map(|t| t.max(Instant::now() + Duration::from_millis(5)))
            .unwrap_or_else(|| Instant::now() + RETRY_UNCHANGED);
        tokio::select! {
            _ = shutdown.cancelled() => {
                tracing::info!("scheduler stopped");
                return;
            }
            Some(e) = nodes.next() => s.on_node(e),
            Some(e) = pods.next() => s.on_pod(e),
            Some(b) = bound_rx.recv() => s.on_bound(b),
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
                let k = key(&pod);
                self.queue.remove(&k);
                let (ns, name) = k.split_once('/').unwrap_or_default();
                self.snapshot.remove_pod(ns, name);
                self.queue.cluster_changed();
            }
        }
    }

    fn on_pod_applied(&mut self, pod: Pod) {
        let k = key(&pod);
        if bound(&pod) {
            self.queue.remove(&k);
            let _ = self.snapshot.add_pod(pod);
        } else if ours_to_place(&pod) {
            self.queue.add(pod);
        } else {
            self.queue.remove(&k);
        }
    }

    fn on_bound(&mut self, b: Bound) {
        if let Err(e) = b.result {
            tracing::debug!(pod = %b.key, error = %e, "binding failed");
            self.snapshot.remove_pod(&b.namespace, &b.name);
            self.queue.failed(&b.key, None);
        }
    }

    /// Places every pod that is ready now.
    fn place_ready(&mut self) {
        let now = Instant::now();
        while let Some(pod) = self.queue.pop_ready(now) {
            let k = key(&pod);
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
    }

    fn bind(&self, pod: Pod, node: String) {
        let client = self.client.clone();
        let permits = self.binds.clone();
        let tx = self.bound_tx.clone();
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
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = tx
                .send(Bound {
                    key: format!("{namespace}/{name}"),
                    namespace,
                    name,
                    result,
                })
                .await;
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

    #[tokio::test(start_paused = true)]
    async fn a_failed_pod_waits_for_its_backoff_and_a_change() {
        let mut q = Queue::default();
        q.add(pod("a"));
        let now = Instant::now();
        assert!(q.pop_ready(now).is_some());
        assert!(q.failed("default/a", Some("0/1 nodes are available".into())));
        assert!(
            !q.failed("default/a", Some("0/1 nodes are available".into())),
            "same message"
        );
        tokio::time::advance(MAX_BACKOFF).await;
        assert!(q.pop_ready(Instant::now()).is_none(), "nothing changed yet");
        q.cluster_changed();
        assert!(q.pop_ready(Instant::now()).is_some());
        q.remove("default/a");
        assert!(q.pop_ready(Instant::now()).is_none());
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
