//! The filter plugins, one file each, in upstream's order, and the [`Failure`] a node gets
//! from the first one it fails. A failure is a small `Copy` value that points into the
//! snapshot (a taint by index) so that filtering allocates nothing; its reasons become text
//! only when a pod turns out unschedulable ([`crate::message`]).

pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Why a node cannot take the pod: the first failing filter's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// NodeUnschedulable.
    Unschedulable,
    /// NodeName.
    NodeName,
    /// TaintToleration: index of the first untolerated NoSchedule/NoExecute taint.
    UntoleratedTaint(usize),
    /// NodeAffinity (nodeSelector or required node affinity).
    NodeAffinity,
    /// NodePorts.
    NodePorts,
    /// NodeResourcesFit, with every resource that is short.
    Resources(node_resources_fit::Shortage),
    /// PodTopologySpread: the node lacks a constraint's topology key.
    SpreadMissingLabel,
    /// PodTopologySpread: placing the pod here would exceed a maxSkew.
    SpreadSkew,
    /// InterPodAffinity: the pod's required affinity is not met.
    PodAffinity,
    /// InterPodAffinity: the pod's required anti-affinity is not met.
    PodAntiAffinity,
    /// InterPodAffinity: an existing pod's required anti-affinity forbids the pod.
    ExistingPodsAntiAffinity,
}

impl Failure {
    /// Upstream's reason texts for this failure on `node`, passed one by one to `each`.
    pub fn reasons(&self, node: &NodeInfo, incoming: &Incoming<'_>, mut each: impl FnMut(String)) {
        let text = match self {
            Failure::Unschedulable => node_unschedulable::REASON,
            Failure::NodeName => node_name::REASON,
            Failure::UntoleratedTaint(i) => {
                let t = &node.taints[*i];
                each(taint_toleration::reason(t));
                return;
            }
            Failure::NodeAffinity => node_affinity::REASON,
            Failure::NodePorts => node_ports::REASON,
            Failure::Resources(shortage) => {
                shortage.reasons(incoming, each);
                return;
            }
            Failure::SpreadMissingLabel => pod_topology_spread::REASON_MISSING_LABEL,
            Failure::SpreadSkew => pod_topology_spread::REASON_SKEW,
            Failure::PodAffinity => inter_pod_affinity::REASON_AFFINITY,
            Failure::PodAntiAffinity => inter_pod_affinity::REASON_ANTI_AFFINITY,
            Failure::ExistingPodsAntiAffinity => inter_pod_affinity::REASON_EXISTING_ANTI_AFFINITY,
        };
        each(text.to_string());
    }
}

/// Per-pod state the filters compute once over the whole cluster (upstream's PreFilter).
#[derive(Debug)]
pub struct PreFiltered<'a> {
    /// PodTopologySpread's counts for hard constraints.
    pub spread: pod_topology_spread::FilterState<'a>,
    /// InterPodAffinity's counts.
    pub affinity: inter_pod_affinity::FilterState<'a>,
}

/// Runs every filter on `node` in upstream's order; the first failure wins.
pub fn run(incoming: &Incoming<'_>, pre: &PreFiltered<'_>, node: &NodeInfo) -> Result<(), Failure> {
    node_unschedulable::filter(incoming, node)?;
    node_name::filter(incoming, node)?;
    taint_toleration::filter(incoming, node)?;
    node_affinity::filter(incoming, node)?;
    node_ports::filter(incoming, node)?;
    node_resources_fit::filter(incoming, node)?;
    pod_topology_spread::filter(incoming, &pre.spread, node)?;
    inter_pod_affinity::filter(&pre.affinity, node)?;
    Ok(())
}
