//! What controllers read of nodes: whether a pod template's node selector and required node
//! affinity admit a node (cairn-api's `node_selection`, the scheduler's rules), its taints and
//! its Ready condition.

use cairn_api::node_selection;
pub use cairn_api::node_selection::tolerates;
use k8s_openapi::api::core::v1::{Node, PodSpec, Taint};

use crate::meta;

/// Whether the pod's `nodeSelector` and required node affinity admit `node`.
pub fn selects(spec: &PodSpec, node: &Node) -> bool {
    node_selection::selects(
        spec,
        meta::name(&node.metadata),
        meta::labels(&node.metadata),
    )
}

/// The node's taints.
pub fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// The status of the node's Ready condition, if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}
