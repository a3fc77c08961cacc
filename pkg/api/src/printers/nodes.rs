//! Nodes: status from the `Ready` condition (plus `SchedulingDisabled` when cordoned), roles
//! from the `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels, and the node
//! info columns of `-o wide`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{age, none_if_empty};
use super::{AGE, Cells, Column, NAME, Result, decode};

/// The node columns.
pub const COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "The status of the node"),
    Column::string("Roles", "The roles of the node"),
    AGE,
    Column::string("Version", "The kubelet version the node reports."),
    Column::string("Internal-IP", "The node's first InternalIP address.").wide(),
    Column::string("External-IP", "The node's first ExternalIP address.").wide(),
    Column::string("OS-Image", "The OS image the node reports.").wide(),
    Column::string("Kernel-Version", "The kernel version the node reports.").wide(),
    Column::string(
        "Container-Runtime",
        "The container runtime and version the node reports.",
    )
    .wide(),
];

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

/// The cells of one node.
pub fn cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let node: Node = decode("Node", object)?;
    let status = node.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    let unknown = |s: String| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s
        }
    };
    Ok(vec![
        json!(node.metadata.name.clone().unwrap_or_default()),
        json!(node_status(&node, &status)),
        json!(roles(&node)),
        age(&node.metadata, now),
        json!(info.kubelet_version),
        json!(address(&status, "InternalIP")),
        json!(address(&status, "ExternalIP")),
        json!(unknown(info.os_image)),
        json!(unknown(info.kernel_version)),
        json!(unknown(info.container_runtime_version)),
    ])
}

/// `Ready`, `NotReady` or `Unknown`, then `,SchedulingDisabled` for a cordoned node.
fn node_status(node: &Node, status: &NodeStatus) -> String {
    let ready = status
        .conditions
        .iter()
        .flatten()
        .rfind(|c| c.type_ == "Ready");
    let mut text = match ready {
        Some(c) if c.status == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        text.push_str(",SchedulingDisabled");
    }
    text
}

/// The node's roles, sorted, comma-separated; `<none>` without any.
fn roles(node: &Node) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in node.metadata.labels.iter().flatten() {
        if let Some(role) = key.strip_prefix(ROLE_PREFIX).filter(|r| !r.is_empty()) {
            roles.insert(role.to_string());
        } else if key == ROLE_LABEL && !value.is_empty() {
            roles.insert(value.clone());
        }
    }
    none_if_empty(roles.into_iter().collect::<Vec<_>>().join(","))
}

/// The first address of `type_`, `<none>` without one.
fn address(status: &NodeStatus, type_: &str) -> String {
    status
        .addresses
        .iter()
        .flatten()
        .find(|a| a.type_ == type_)
        .map(|a| a.address.clone())
        .unwrap_or_else(|| "<none>".into())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    fn node(labels: Value, spec: Value, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "edge-1", "labels": labels, "creationTimestamp": at(-3 * 86400 - 7200)},
               "spec": spec, "status": status})
    }

    #[test]
    fn headers_match_upstream() {
        let names: Vec<_> = headers("v1", "Node").into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
    }

    #[test]
    fn ready_control_plane_node() {
        let row = cells(node(
            json!({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "true"}),
            json!({}),
            json!({"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.4"}, {"type": "Hostname", "address": "edge-1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.1+cairn", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0",
                                "containerRuntimeVersion": "cairn://0.1.0", "architecture": "amd64", "bootID": "", "kubeProxyVersion": "",
                                "machineID": "", "operatingSystem": "linux", "systemUUID": ""}}),
        ));
        assert_eq!(
            row,
            [
                "edge-1",
                "Ready",
                "control-plane,master",
                "3d2h",
                "v1.33.1+cairn",
                "10.0.0.4",
                "<none>",
                "Debian GNU/Linux 12",
                "6.1.0",
                "cairn://0.1.0"
            ]
            .map(Value::from)
        );
    }

    #[test]
    fn not_ready_cordoned_and_unknown() {
        let row = cells(node(
            json!({"kubernetes.io/role": "worker"}),
            json!({"unschedulable": true}),
            json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
        ));
        assert_eq!(row[1], "NotReady,SchedulingDisabled");
        assert_eq!(row[2], "worker");
        let row = cells(node(json!({}), json!({}), json!({})));
        assert_eq!(row[1], "Unknown");
        assert_eq!(row[2], "<none>");
        assert_eq!(row[7], "<unknown>");
    }
}
