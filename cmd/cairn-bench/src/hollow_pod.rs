//! Pods on hollow nodes: one watch of every pod, and for each pod bound to one of our nodes the
//! status a kubelet would write once its containers ran, without running anything.
//!
//! A new pod goes to Running and Ready at once, except one whose first container's command is
//! `["true"]` or `["false"]`, which ends Succeeded or Failed as if that command had run. A pod
//! being deleted is removed with grace period 0, as a kubelet does once its containers stopped.
//! One task owns the loop's state (which pods were handled, each node's next pod IP); writes run
//! as short tasks bounded by a shared semaphore, so there is no task per pod.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_client::{
    Api, Client, DeleteParams, Event, Patch, Preconditions, WatchParams, watch_list,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::hollow::Stats;
use crate::hollow_node::{NodeShape, node_ip, pod_range};

/// Attempts of one status write before the pod is given up on.
const WRITE_ATTEMPTS: u32 = 5;

/// How a pod on a hollow node ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its containers run (and are ready) until the pod is deleted.
    Running,
    /// `["true"]`: exited 0.
    Succeeded,
    /// `["false"]`: exited 1.
    Failed,
}

impl Outcome {
    /// The outcome of `pod`, decided by its first container's command.
    pub fn of(pod: &Pod) -> Self {
        let command = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.containers.first())
            .and_then(|container| container.command.as_deref());
        match command {
            Some([only]) if only == "true" => Outcome::Succeeded,
            Some([only]) if only == "false" => Outcome::Failed,
            _ => Outcome::Running,
        }
    }
}

/// A fake image digest: stable per image, shaped like a real one.
fn image_id(image: &str) -> String {
    let mut digest = String::with_capacity(64);
    for seed in 0u64..4 {
        let mut hasher = DefaultHasher::new();
        (seed, image).hash(&mut hasher);
        digest.push_str(&format!("{:016x}", hasher.finish()));
    }
    let repository = image.split_once(':').map_or(image, |(repo, _)| repo);
    format!("{repository}@sha256:{digest}")
}

/// The merge patch of `pod`'s status once it ran to `outcome` on a node with address
/// `host_ip`, with address `pod_ip`, at `now`.
pub fn status_patch(
    pod: &Pod,
    outcome: Outcome,
    host_ip: &str,
    pod_ip: &str,
    now: Timestamp,
) -> Value {
    let now = serde_json::to_value(Time(now)).expect("a time serializes");
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let running = outcome == Outcome::Running;
    let containers = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|container| {
            let image = container.image.as_deref().unwrap_or_default();
            let container_id = format!("hollow://{uid}/{}", container.name);
            let state = match outcome {
                Outcome::Running => json!({"running": {"startedAt": now}}),
                Outcome::Succeeded | Outcome::Failed => {
                    let (exit_code, reason) = if outcome == Outcome::Succeeded {
                        (0, "Completed")
                    } else {
                        (1, "Error")
                    };
                    json!({"terminated": {
                        "exitCode": exit_code, "reason": reason, "startedAt": now,
                        "finishedAt": now, "containerID": container_id,
                    }})
                }
            };
            json!({
                "name": container.name, "image": image, "imageID": image_id(image),
                "containerID": container_id, "ready": running, "started": running,
                "restartCount": 0, "state": state,
            })
        })
        .collect();
    let condition = |type_: &str, status: bool| {
        let mut condition = json!({
            "type": type_, "status": if status { "True" } else { "False" }, "lastTransitionTime": now,
        });
        if !status {
            condition["reason"] = "PodCompleted".into();
        }
        condition
    };
    let phase = match outcome {
        Outcome::Running => "Running",
        Outcome::Succeeded => "Succeeded",
        Outcome::Failed => "Failed",
    };
    json!({"status": {
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", running),
            condition("Initialized", true),
            condition("ContainersReady", running),
            condition("Ready", running),
            condition("PodScheduled", true),
        ],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "containerStatuses": statuses,
    }})
}

/// The pod loop's state, owned by one task.
struct Pods {
    client: Client,
    /// Node name → index, for our nodes only.
    nodes: HashMap<String, usize>,
    /// Per node, the last host part handed out in its pod range (1..=254, then round again).
    next_ip: Vec<u8>,
    /// Uids whose status was written (or is being written); a watch echo does not repeat it.
    handled: HashSet<String>,
    /// Uids whose removal was asked for.
    removing: HashSet<String>,
    writes: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl Pods {
    async fn on_pod(&mut self, pod: &Pod) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            return;
        };
        let Some(&index) = self.nodes.get(node) else {
            return;
        };
        let (Some(uid), Some(namespace), Some(name)) = (
            pod.metadata.uid.clone(),
            pod.metadata.namespace.clone(),
            pod.metadata.name.clone(),
        ) else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        if pod.metadata.deletion_timestamp.is_some() {
            if !self.removing.insert(uid.clone()) {
                return;
            }
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let stats = self.stats.clone();
            self.spawn_write(async move {
                match api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e).context(format!("removing pod {namespace}/{name}")),
                }
                stats.pods_removed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .await;
            return;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        // Running, Succeeded and Failed pods were handled already, maybe by an earlier process.
        if !matches!(phase, None | Some("Pending")) || !self.handled.insert(uid) {
            return;
        }
        let outcome = Outcome::of(pod);
        let patch = Patch::Merge(status_patch(
            pod,
            outcome,
            &node_ip(index).to_string(),
            &self.pod_ip(index),
            Timestamp::now(),
        ));
        let stats = self.stats.clone();
        self.spawn_write(async move {
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=WRITE_ATTEMPTS {
                match api.patch_status(&name, &patch).await {
                    Ok(_) => break,
                    Err(e) if e.is_not_found() => return Ok(()),
                    Err(e) if attempt == WRITE_ATTEMPTS => {
                        return Err(e)
                            .context(format!("writing the status of pod {namespace}/{name}"));
                    }
                    Err(_) => tokio::time::sleep(delay).await,
                }
                delay *= 2;
            }
            stats.pod_handled(outcome);
            Ok(())
        })
        .await;
    }

    /// Node `index`'s next pod IP. Addresses are reused after 254 pods, which a node holding
    /// at most 110 pods at a time does not notice unless its pods live very long.
    fn pod_ip(&mut self, index: usize) -> String {
        let host = &mut self.next_ip[index];
        *host = if *host >= 254 { 1 } else { *host + 1 };
        let [a, b, c] = pod_range(index);
        format!("{a}.{b}.{c}.{host}")
    }

    /// Runs `write` as its own task once one of the shared write slots is free.
    async fn spawn_write(&self, write: impl Future<Output = Result<()>> + Send + 'static) {
        let Ok(permit) = self.writes.clone().acquire_owned().await else {
            return;
        };
        let stats = self.stats.clone();
        tokio::spawn(async move {
            if let Err(e) = write.await {
                eprintln!("hollow-nodes: {e:#}");
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }

    fn forget(&mut self, pod: &Pod) {
        if let Some(uid) = &pod.metadata.uid {
            self.handled.remove(uid);
            self.removing.remove(uid);
        }
    }
}

/// Follows every pod with one watch and moves those bound to our nodes along. Never returns.
pub async fn run(
    client: Client,
    shape: &NodeShape,
    count: usize,
    writes: Arc<Semaphore>,
    stats: Arc<Stats>,
) {
    let mut pods = Pods {
        nodes: (0..count).map(|index| (shape.name(index), index)).collect(),
        next_ip: vec![0; count],
        handled: HashSet::new(),
        removing: HashSet::new(),
        client: client.clone(),
        writes,
        stats,
    };
    let events = watch_list(Api::<Pod>::all(client), WatchParams::default());
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Event::Init(all) => {
                let present: HashSet<&str> = all
                    .iter()
                    .filter_map(|pod| pod.metadata.uid.as_deref())
                    .collect();
                pods.handled.retain(|uid| present.contains(uid.as_str()));
                pods.removing.retain(|uid| present.contains(uid.as_str()));
                for pod in &all {
                    pods.on_pod(pod).await;
                }
            }
            Event::Applied(pod) => pods.on_pod(&pod).await,
            Event::Deleted(pod) => pods.forget(&pod),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(command: Option<&[&str]>) -> Pod {
        let mut container = json!({"name": "c", "image": "busybox:1.36"});
        if let Some(command) = command {
            container["command"] = json!(command);
        }
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": [container], "nodeName": "hollow-0"},
        }))
        .unwrap()
    }

    #[test]
    fn the_first_command_decides_the_outcome() {
        assert_eq!(Outcome::of(&pod(None)), Outcome::Running);
        assert_eq!(Outcome::of(&pod(Some(&["true"]))), Outcome::Succeeded);
        assert_eq!(Outcome::of(&pod(Some(&["false"]))), Outcome::Failed);
        assert_eq!(
            Outcome::of(&pod(Some(&["sh", "-c", "true"]))),
            Outcome::Running
        );
    }

    #[test]
    fn a_running_pod_is_ready_with_its_addresses() {
        let patch = status_patch(
            &pod(None),
            Outcome::Running,
            "10.0.0.1",
            "10.128.0.1",
            Timestamp::UNIX_EPOCH,
        );
        let status = &patch["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.128.0.1");
        assert_eq!(status["hostIP"], "10.0.0.1");
        assert_eq!(status["startTime"], "1970-01-01T00:00:00Z");
        for condition in status["conditions"].as_array().unwrap() {
            assert_eq!(condition["status"], "True", "{condition}");
        }
        let container = &status["containerStatuses"][0];
        assert_eq!(container["ready"], true);
        assert_eq!(container["containerID"], "hollow://u-1/c");
        assert!(
            container["imageID"]
                .as_str()
                .unwrap()
                .starts_with("busybox@sha256:")
        );
        assert!(container["state"]["running"]["startedAt"].is_string());
        // The patch decodes as a pod status.
        let _: Pod = serde_json::from_value(patch).unwrap();
    }

    #[test]
    fn a_finished_pod_says_how_it_exited() {
        let pod = pod(Some(&["false"]));
        let patch = status_patch(
            &pod,
            Outcome::Failed,
            "10.0.0.1",
            "10.128.0.2",
            Timestamp::UNIX_EPOCH,
        );
        let container = &patch["status"]["containerStatuses"][0];
        assert_eq!(patch["status"]["phase"], "Failed");
        assert_eq!(container["ready"], false);
        assert_eq!(container["state"]["terminated"]["exitCode"], 1);
        assert_eq!(container["state"]["terminated"]["reason"], "Error");
        let ok = status_patch(&pod, Outcome::Succeeded, "h", "p", Timestamp::UNIX_EPOCH);
        assert_eq!(
            ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }
}
