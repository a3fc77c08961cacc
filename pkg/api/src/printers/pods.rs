//! Pods: the `READY`, `STATUS` and `RESTARTS` logic of `kubectl get pods`.
//!
//! The status is upstream's reason rule: the phase or `status.reason`, overridden by the
//! first init container that has not finished (`Init:1/3`, `Init:CrashLoopBackOff`,
//! `Init:Error`), then by the containers' waiting or terminated reasons
//! (`CrashLoopBackOff`, `Completed`, `ExitCode:1`), then `Terminating` (or `Unknown` for a
//! pod on a lost node) once a deletion timestamp is set.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{age, none_if_empty, time_since};
use super::{AGE, Cells, Column, NAME, Result, decode};

/// The pod columns.
pub const COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Ready",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::string(
        "Status",
        "The aggregate status of the containers in this pod.",
    ),
    Column::string(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::string("IP", "The pod's IP address (status.podIPs[0]).").wide(),
    Column::string("Node", "The node the pod is bound to (spec.nodeName).").wide(),
    Column::string(
        "Nominated Node",
        "The node on which the pod may run after a preemption (status.nominatedNodeName).",
    )
    .wide(),
    Column::string(
        "Readiness Gates",
        "How many of the pod's readiness gates are true.",
    )
    .wide(),
];

/// The reason a pod on an unreachable node is given when it is deleted.
const NODE_LOST: &str = "NodeLost";

/// The cells of one pod.
pub fn cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let pod: Pod = decode("Pod", object)?;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let summary = summarize(
        &pod,
        &spec.containers,
        spec.init_containers.as_deref().unwrap_or_default(),
        &status,
    );

    let restarts = match summary.last_restart {
        Some(last) if summary.restarts != 0 => {
            format!(
                "{} ({} ago)",
                summary.restarts,
                time_since(Some(&last), now)
            )
        }
        _ => summary.restarts.to_string(),
    };
    let ip = status
        .pod_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(|ip| ip.ip.clone())
        .unwrap_or_default();
    Ok(vec![
        json!(pod.metadata.name.clone().unwrap_or_default()),
        json!(format!("{}/{}", summary.ready, summary.total)),
        json!(summary.reason),
        json!(restarts),
        age(&pod.metadata, now),
        json!(none_if_empty(ip)),
        json!(none_if_empty(spec.node_name.clone().unwrap_or_default())),
        json!(none_if_empty(
            status.nominated_node_name.clone().unwrap_or_default()
        )),
        json!(readiness_gates(&pod)),
    ])
}

/// The `Completed` row condition of a pod that has finished, as upstream marks it.
pub fn conditions(object: &Value) -> Option<Value> {
    let (reason, message) = match object.pointer("/status/phase")?.as_str()? {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// What the pod's containers add up to.
#[derive(Debug, Default)]
struct Summary {
    ready: usize,
    total: usize,
    restarts: i64,
    last_restart: Option<Time>,
    reason: String,
}

fn summarize(
    pod: &Pod,
    containers: &[Container],
    inits: &[Container],
    status: &PodStatus,
) -> Summary {
    let phase = status.phase.clone().unwrap_or_default();
    let mut s = Summary {
        total: containers.len() + inits.iter().filter(|c| is_sidecar(c)).count(),
        reason: status
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or(phase.clone()),
        ..Summary::default()
    };
    let gated = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    if gated {
        s.reason = "SchedulingGated".into();
    }

    let initializing = init_containers(&mut s, inits, status);
    if !initializing || condition_true(status, "Initialized") {
        containers_status(&mut s, status);
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some(NODE_LOST) {
            s.reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            s.reason = "Terminating".into();
        }
    }
    s
}

/// A restartable init container (`restartPolicy: Always`), which runs beside the others.
fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Walks the init containers; true while one of them holds the pod in initialization.
/// Leaves the restarts of sidecars only (the others count only while initializing).
fn init_containers(s: &mut Summary, inits: &[Container], status: &PodStatus) -> bool {
    let statuses = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let mut sidecar_restarts = 0;
    let mut sidecar_last_restart: Option<Time> = None;
    let mut initializing = false;
    for (i, container) in statuses.iter().enumerate() {
        let sidecar = inits
            .iter()
            .find(|c| c.name == container.name)
            .is_some_and(is_sidecar);
        s.restarts += i64::from(container.restart_count);
        note_restart(&mut s.last_restart, container);
        if sidecar {
            sidecar_restarts += i64::from(container.restart_count);
            note_restart(&mut sidecar_last_restart, container);
        }
        let state = container.state.clone().unwrap_or_default();
        if state.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar && container.started == Some(true) {
            if container.ready {
                s.ready += 1;
            }
            continue;
        }
        initializing = true;
        s.reason = if let Some(t) = &state.terminated {
            match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => format!("Init:{reason}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            }
        } else if let Some(reason) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{reason}")
        } else {
            format!("Init:{i}/{}", inits.len())
        };
        break;
    }
    if !initializing || condition_true(status, "Initialized") {
        s.restarts = sidecar_restarts;
        s.last_restart = sidecar_last_restart;
    }
    initializing
}

/// Adds the regular containers: restarts, readiness and the reason of the first one (in
/// upstream's reverse walk, the last one set wins) that waits or has terminated.
fn containers_status(s: &mut Summary, status: &PodStatus) {
    let mut has_running = false;
    for container in status.container_statuses.iter().flatten().rev() {
        s.restarts += i64::from(container.restart_count);
        note_restart(&mut s.last_restart, container);
        let state = container.state.clone().unwrap_or_default();
        let waiting = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .filter(|r| !r.is_empty());
        if let Some(reason) = waiting {
            s.reason = reason;
        } else if let Some(t) = &state.terminated {
            s.reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => reason.to_string(),
                None if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
                None => format!("ExitCode:{}", t.exit_code),
            };
        } else if container.ready && state.running.is_some() {
            has_running = true;
            s.ready += 1;
        }
    }
    if s.reason == "Completed" && has_running {
        s.reason = if condition_true(status, "Ready") {
            "Running"
        } else {
            "NotReady"
        }
        .into();
    }
}

/// Keeps the latest `lastState.terminated.finishedAt` seen.
fn note_restart(last: &mut Option<Time>, container: &ContainerStatus) {
    let finished = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.clone());
    if let Some(finished) = finished
        && last.as_ref().is_none_or(|l| l.0 < finished.0)
    {
        *last = Some(finished);
    }
}

fn condition_true(status: &PodStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c: &PodCondition| c.type_ == type_ && c.status == "True")
}

/// `true/all` of the readiness gates, `<none>` without any.
fn readiness_gates(pod: &Pod) -> String {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or_default();
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let true_gates = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{true_gates}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": at(-300)},
            "spec": spec, "status": status,
        })
    }

    fn two_containers() -> Value {
        json!({"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}], "nodeName": "edge-1"})
    }

    fn running(name: &str, ready: bool, restarts: i32) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "image": "x", "imageID": "",
               "state": {"running": {"startedAt": at(-100)}}})
    }

    #[test]
    fn headers_match_upstream() {
        assert_eq!(
            headers("v1", "Pod"),
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
        );
    }

    #[test]
    fn running_pod_with_one_ready_container() {
        let row = cells(pod(
            two_containers(),
            json!({"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}],
                   "containerStatuses": [running("a", true, 0), running("b", false, 0)]}),
        ));
        assert_eq!(
            row,
            json!([
                "web",
                "1/2",
                "Running",
                "0",
                "5m",
                "10.42.0.5",
                "edge-1",
                "<none>",
                "<none>"
            ])
            .as_array()
            .unwrap()
            .clone()
        );
    }

    #[test]
    fn crash_loop_with_last_restart_age() {
        let waiting = json!({"name": "a", "ready": false, "restartCount": 5, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": at(-90)}}});
        let row = cells(pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [waiting, running("b", true, 0)]}),
        ));
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "CrashLoopBackOff");
        assert_eq!(row[3], "5 (90s ago)");
    }

    #[test]
    fn init_containers_in_progress_and_failed() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
        let done = json!({"name": "i1", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let running_init = json!({"name": "i2", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"running": {}}});
        let row = cells(pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [done.clone(), running_init]}),
        ));
        assert_eq!(row[2], "Init:1/2");
        assert_eq!(row[1], "0/1");

        let crashing = json!({"name": "i2", "ready": false, "restartCount": 3, "image": "", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
        let row = cells(pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [done.clone(), crashing]}),
        ));
        assert_eq!(row[2], "Init:CrashLoopBackOff");
        assert_eq!(row[3], "3");

        let failed = json!({"name": "i2", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": 2}}});
        let row = cells(pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [done, failed]}),
        ));
        assert_eq!(row[2], "Init:ExitCode:2");
    }

    #[test]
    fn sidecars_count_toward_ready() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]});
        let proxy = json!({"name": "proxy", "ready": true, "started": true, "restartCount": 1, "image": "", "imageID": "",
            "state": {"running": {}}});
        let row = cells(pod(
            spec,
            json!({"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [proxy], "containerStatuses": [running("a", true, 0)]}),
        ));
        assert_eq!(row[1], "2/2");
        assert_eq!(row[2], "Running");
        assert_eq!(row[3], "1");
    }

    #[test]
    fn completed_terminating_and_pending() {
        let completed = json!({"name": "a", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let mut succeeded = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [completed]}),
        );
        assert_eq!(cells(succeeded.clone())[2], "Completed");

        succeeded["metadata"]["deletionTimestamp"] = json!(at(-1));
        assert_eq!(
            cells(succeeded)[2],
            "Completed",
            "a finished pod is not Terminating"
        );

        let mut running_pod = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Running", "containerStatuses": [running("a", true, 0)]}),
        );
        running_pod["metadata"]["deletionTimestamp"] = json!(at(-1));
        assert_eq!(cells(running_pod)[2], "Terminating");

        let pending = cells(pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending"}),
        ));
        assert_eq!(
            &pending[1..5],
            &[json!("0/1"), json!("Pending"), json!("0"), json!("5m")]
        );
        assert_eq!(
            &pending[5..],
            &[
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn completed_becomes_running_while_a_container_runs() {
        let completed = json!({"name": "a", "ready": false, "restartCount": 0, "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let row = cells(pod(
            two_containers(),
            json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [completed, running("b", true, 0)]}),
        ));
        assert_eq!(row[2], "NotReady");
    }

    #[test]
    fn readiness_gates_and_finished_conditions() {
        let spec = json!({"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "lb/ready"}, {"conditionType": "other"}]});
        let row = cells(pod(
            spec,
            json!({"phase": "Running", "conditions": [{"type": "lb/ready", "status": "True"}]}),
        ));
        assert_eq!(row[8], "1/2");
        let finished = super::conditions(&json!({"status": {"phase": "Succeeded"}})).unwrap();
        assert_eq!(finished[0]["type"], "Completed");
        assert!(super::conditions(&json!({"status": {"phase": "Running"}})).is_none());
    }
}
