//! The cluster as the placement core sees it: nodes, the pods bound or assumed on each, and
//! what scheduling reads of them precomputed once per change rather than once per pod
//! (requested and allocatable resources, host ports in use, images present, taints, compiled
//! affinity terms). It owns no IO: a scheduling loop feeds it from watches and calls
//! [`Snapshot::assume`] after each decision so that the next pod sees it before the binding
//! round-trip completes.
//!
//! Candidates are kept sorted by name, the order [`crate::schedule`] walks them in.
//! A node removed while pods are still accounted to it stays as a ghost (no `Node`, never a
//! candidate) until its last pod is removed, as upstream's cache does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::resources::{PodRequests, Resources};
use crate::terms::{AffinityTerms, NamespaceLabels};

/// Why the snapshot refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The pod names no node (`spec.nodeName` is empty).
    #[error("pod {pod} is not bound to a node")]
    NotBound {
        /// `namespace/name` of the pod.
        pod: String,
    },
    /// The node is not in the snapshot.
    #[error("node {node} not found")]
    NodeNotFound {
        /// The node's name.
        node: String,
    },
}

/// A host port taken on a node: protocol, host IP (`0.0.0.0` when unset) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The host IP, `0.0.0.0` for all.
    pub ip: String,
    /// The port number.
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports collide: same protocol and port, and the same IP or either on
    /// all addresses.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }

    /// The host ports a pod's containers ask for.
    pub fn of(pod: &Pod) -> Vec<HostPort> {
        let Some(spec) = pod.spec.as_ref() else {
            return Vec::new();
        };
        spec.containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.is_some_and(|hp| hp > 0))
            .map(|p| HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port: p.host_port.unwrap_or_default(),
            })
            .collect()
    }
}

/// A pod accounted to a node, with what scheduling reads of it precomputed.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    /// Whether it is assumed (decided here, binding not yet observed).
    pub assumed: bool,
    /// Its requests.
    pub requests: PodRequests,
    /// Its host ports.
    pub host_ports: Vec<HostPort>,
    /// Its compiled affinity terms.
    pub terms: AffinityTerms,
}

impl PodInfo {
    /// Precomputes a pod.
    pub fn new(pod: Arc<Pod>, assumed: bool) -> PodInfo {
        PodInfo {
            key: pod_key(&pod),
            assumed,
            requests: PodRequests::of(&pod),
            host_ports: HostPort::of(&pod),
            terms: AffinityTerms::of(&pod),
            pod,
        }
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// Whether the pod is being deleted.
    pub fn terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A node and the pods on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// The node; `None` for a ghost (removed, pods still accounted).
    pub node: Option<Arc<Node>>,
    /// `status.allocatable`.
    pub allocatable: Resources,
    /// Sum of the exact requests of its pods.
    pub requested: Resources,
    /// Sum of its pods' cpu requests with defaults for best-effort containers.
    pub non_zero_milli_cpu: i64,
    /// Sum of its pods' memory requests with defaults for best-effort containers.
    pub non_zero_memory: i64,
    /// Its pods, bound and assumed.
    pub pods: Vec<PodInfo>,
    /// Indices into `pods` of pods with any affinity term.
    pub pods_with_affinity: Vec<usize>,
    /// Indices into `pods` of pods with required anti-affinity terms.
    pub pods_with_required_anti_affinity: Vec<usize>,
    /// Host ports in use.
    pub host_ports: Vec<HostPort>,
    /// Image name → size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// `spec.taints`.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl NodeInfo {
    fn ghost(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            node: None,
            allocatable: Resources::default(),
            requested: Resources::default(),
            non_zero_milli_cpu: 0,
            non_zero_memory: 0,
            pods: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            host_ports: Vec::new(),
            images: HashMap::new(),
            taints: Vec::new(),
            unschedulable: false,
        }
    }

    fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(Resources::from_list)
            .unwrap_or_default();
        self.images = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|image| {
                let size = image.size_bytes.unwrap_or_default();
                image.names.iter().flatten().map(move |n| (n.clone(), size))
            })
            .collect();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.node = Some(node);
    }

    /// The node's labels (empty for a ghost or a node without labels).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }

    fn add_pod(&mut self, info: PodInfo) {
        self.requested.add(&info.requests.exact);
        self.non_zero_milli_cpu += info.requests.non_zero_milli_cpu;
        self.non_zero_memory += info.requests.non_zero_memory;
        self.host_ports.extend(info.host_ports.iter().cloned());
        self.pods.push(info);
        self.reindex();
    }

    fn remove_pod(&mut self, key: &str) -> Option<PodInfo> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let info = self.pods.swap_remove(i);
        self.requested.sub(&info.requests.exact);
        self.non_zero_milli_cpu -= info.requests.non_zero_milli_cpu;
        self.non_zero_memory -= info.requests.non_zero_memory;
        for port in &info.host_ports {
            if let Some(j) = self.host_ports.iter().position(|p| p == port) {
                self.host_ports.swap_remove(j);
            }
        }
        self.reindex();
        Some(info)
    }

    fn reindex(&mut self) {
        self.pods_with_affinity.clear();
        self.pods_with_required_anti_affinity.clear();
        for (i, p) in self.pods.iter().enumerate() {
            if !p.terms.is_empty() {
                self.pods_with_affinity.push(i);
            }
            if !p.terms.required_anti_affinity.is_empty() {
                self.pods_with_required_anti_affinity.push(i);
            }
        }
    }
}

/// Image name → (size, number of nodes holding it).
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageSpread {
    /// Size in bytes (the last node's report).
    pub size: i64,
    /// How many nodes have it.
    pub nodes: usize,
}

/// The cluster as seen by the placement core.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
    /// Indices of nodes that are not ghosts, in insertion order.
    live: Vec<usize>,
    /// `namespace/name` → index of the node the pod is accounted to.
    pod_nodes: HashMap<String, usize>,
    images: HashMap<String, ImageSpread>,
    namespace_labels: NamespaceLabels,
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
    /// Where the next search for feasible nodes starts (upstream's `nextStartNodeIndex`).
    next_start: AtomicUsize,
}

impl Clone for Snapshot {
    fn clone(&self) -> Snapshot {
        Snapshot {
            nodes: self.nodes.clone(),
            by_name: self.by_name.clone(),
            live: self.live.clone(),
            pod_nodes: self.pod_nodes.clone(),
            images: self.images.clone(),
            namespace_labels: self.namespace_labels.clone(),
            pods_with_affinity: self.pods_with_affinity,
            pods_with_required_anti_affinity: self.pods_with_required_anti_affinity,
            next_start: AtomicUsize::new(self.next_start.load(Ordering::Relaxed)),
        }
    }
}

impl Snapshot {
    /// An empty cluster.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Adds a node or replaces it (its pods stay accounted).
    pub fn upsert_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let i = self.slot(&name);
        let was_live = self.nodes[i].node.is_some();
        self.forget_images(i);
        self.nodes[i].set_node(Arc::new(node));
        self.count_images(i);
        if !was_live {
            let nodes = &self.nodes;
            let at = self
                .live
                .partition_point(|&j| nodes[j].name.as_str() < name.as_str());
            self.live.insert(at, i);
        }
    }

    /// Removes a node; pods still accounted to it keep it as a ghost until they are removed.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.by_name.get(name) else {
            return;
        };
        self.forget_images(i);
        self.nodes[i].node = None;
        self.nodes[i].images.clear();
        self.drop_if_empty_ghost(i);
        self.rebuild_live();
    }

    /// Accounts a bound pod to the node in its `spec.nodeName` (replacing an earlier copy,
    /// assumed or not). Terminal pods (Succeeded, Failed) are removed instead: they hold nothing.
    pub fn add_pod(&mut self, pod: Pod) -> Result<(), SnapshotError> {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let key = pod_key(&pod);
        let Some(node) = node else {
            return Err(SnapshotError::NotBound { pod: key });
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            self.remove_pod_key(&key);
            return Ok(());
        }
        self.place(Arc::new(pod), &node, false);
        Ok(())
    }

    /// Accounts a pod to `node` before its binding is observed (upstream's `AssumePod`). A later
    /// [`Snapshot::add_pod`] of the bound pod replaces it; [`Snapshot::remove_pod`] forgets it
    /// when the binding fails.
    pub fn assume(&mut self, pod: &Pod, node: &str) -> Result<(), SnapshotError> {
        match self.by_name.get(node) {
            Some(&i) if self.nodes[i].node.is_some() => {}
            _ => {
                return Err(SnapshotError::NodeNotFound {
                    node: node.to_string(),
                });
            }
        }
        let mut pod = pod.clone();
        pod.spec.get_or_insert_with(Default::default).node_name = Some(node.to_string());
        self.place(Arc::new(pod), node, true);
        Ok(())
    }

    /// Stops accounting a pod (deleted, or its assumed binding failed).
    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        self.remove_pod_key(&format!("{namespace}/{name}"));
    }

    /// Sets the labels of a namespace, read by affinity terms with a `namespaceSelector`.
    pub fn set_namespace_labels(&mut self, namespace: &str, labels: BTreeMap<String, String>) {
        self.namespace_labels.insert(namespace.to_string(), labels);
    }

    /// The node by name (ghosts included).
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }

    /// Schedulable candidates: every node that is not a ghost, by name.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &NodeInfo> {
        self.live.iter().map(|&i| &self.nodes[i])
    }

    /// The node a pod is accounted to and whether it is only assumed there.
    pub fn pod_node(&self, namespace: &str, name: &str) -> Option<(&str, bool)> {
        let key = format!("{namespace}/{name}");
        let &i = self.pod_nodes.get(&key)?;
        let node = &self.nodes[i];
        let pod = node.pods.iter().find(|p| p.key == key)?;
        Some((node.name.as_str(), pod.assumed))
    }

    pub(crate) fn live(&self) -> &[usize] {
        &self.live
    }

    pub(crate) fn all(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub(crate) fn image(&self, name: &str) -> Option<ImageSpread> {
        self.images.get(name).copied()
    }

    pub(crate) fn namespace_labels(&self) -> &NamespaceLabels {
        &self.namespace_labels
    }

    pub(crate) fn has_pods_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    pub(crate) fn has_pods_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    /// Takes the start index for the next search and moves it past the `examined` nodes.
    pub(crate) fn start_index(&self) -> usize {
        self.next_start.load(Ordering::Relaxed)
    }

    pub(crate) fn advance_start(&self, examined: usize) {
        let n = self.live.len().max(1);
        let next = (self.next_start.load(Ordering::Relaxed) + examined) % n;
        self.next_start.store(next, Ordering::Relaxed);
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.nodes.push(NodeInfo::ghost(name));
        self.by_name.insert(name.to_string(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    fn place(&mut self, pod: Arc<Pod>, node: &str, assumed: bool) {
        let info = PodInfo::new(pod, assumed);
        self.remove_pod_key(&info.key);
        let i = self.slot(node);
        self.pods_with_affinity += usize::from(!info.terms.is_empty());
        self.pods_with_required_anti_affinity +=
            usize::from(!info.terms.required_anti_affinity.is_empty());
        self.pod_nodes.insert(info.key.clone(), i);
        self.nodes[i].add_pod(info);
    }

    fn remove_pod_key(&mut self, key: &str) {
        let Some(i) = self.pod_nodes.remove(key) else {
            return;
        };
        if let Some(info) = self.nodes[i].remove_pod(key) {
            self.pods_with_affinity -= usize::from(!info.terms.is_empty());
            self.pods_with_required_anti_affinity -=
                usize::from(!info.terms.required_anti_affinity.is_empty());
        }
        if self.drop_if_empty_ghost(i) {
            self.rebuild_live();
        }
    }

    /// Removes node slot `i` if it is a ghost without pods; the last slot moves into its place.
    fn drop_if_empty_ghost(&mut self, i: usize) -> bool {
        if self.nodes[i].node.is_some() || !self.nodes[i].pods.is_empty() {
            return false;
        }
        let removed = self.nodes.swap_remove(i);
        self.by_name.remove(&removed.name);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name.clone();
            self.by_name.insert(moved, i);
            for p in &self.nodes[i].pods {
                self.pod_nodes.insert(p.key.clone(), i);
            }
        }
        true
    }

    fn rebuild_live(&mut self) {
        let mut live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].node.is_some())
            .collect();
        live.sort_by(|&a, &b| self.nodes[a].name.cmp(&self.nodes[b].name));
        self.live = live;
    }

    fn count_images(&mut self, i: usize) {
        for (name, &size) in &self.nodes[i].images {
            let spread = self.images.entry(name.clone()).or_default();
            spread.size = size;
            spread.nodes += 1;
        }
    }

    fn forget_images(&mut self, i: usize) {
        for name in self.nodes[i].images.keys() {
            if let Some(spread) = self.images.get_mut(name) {
                spread.nodes -= 1;
                if spread.nodes == 0 {
                    self.images.remove(name);
                }
            }
        }
    }
}
