//! A hollow node's API objects and heartbeats: the Node it registers (capacity, conditions,
//! addresses, labels, taints) and the Lease in `kube-node-lease` it renews, as a kubelet does.
//!
//! The objects are built by pure functions of the node's index and the shared [`NodeShape`];
//! registering and renewing are thin loops around them. Pods are `hollow_pod`'s business.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_client::{Api, Client, Patch};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::hollow::Stats;

/// The namespace of the node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a Lease is valid without renewal (the kubelet's default).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often each Lease is renewed (the kubelet's default: a quarter of the duration).
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// The kubelet version every hollow node reports.
pub const KUBELET_VERSION: &str = "v1.33.1+cairn-hollow";

/// What every hollow node of one process has in common.
#[derive(Debug, Clone)]
pub struct NodeShape {
    /// Node names are this prefix and the node's index.
    pub name_prefix: String,
    /// Capacity (and allocatable): CPU, memory and pod count.
    pub cpu: String,
    /// Memory capacity, a quantity such as `8Gi`.
    pub memory: String,
    /// Maximum pods.
    pub pods: u32,
    /// Extra labels (`--label`).
    pub labels: BTreeMap<String, String>,
    /// Taints (`--taint`).
    pub taints: Vec<Taint>,
}

impl NodeShape {
    /// The name of node `index`.
    pub fn name(&self, index: usize) -> String {
        format!("{}{index}", self.name_prefix)
    }
}

/// Parses `key=value`.
pub fn parse_label(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => bail!("label {text:?} is not key=value"),
    }
}

/// Parses `key=value:Effect` or `key:Effect`.
pub fn parse_taint(text: &str) -> Result<Taint> {
    let (key_value, effect) = text
        .rsplit_once(':')
        .with_context(|| format!("taint {text:?} is not key=value:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        bail!("taint {text:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute");
    }
    let (key, value) = match key_value.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (key_value, None),
    };
    if key.is_empty() {
        bail!("taint {text:?} has no key");
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// Node `index`'s InternalIP: `10.0.0.1` onwards, inside 10.0.0.0/9 (8 million nodes).
pub fn node_ip(index: usize) -> Ipv4Addr {
    let n = index as u32 + 1;
    Ipv4Addr::new(10, (n >> 16) as u8 & 0x7f, (n >> 8) as u8, n as u8)
}

/// The first three octets of node `index`'s pod range, a /24 inside 10.128.0.0/9.
pub fn pod_range(index: usize) -> [u8; 3] {
    let n = index as u32;
    [10, 128 | ((n >> 8) as u8 & 0x7f), n as u8]
}

fn pod_cidr(index: usize) -> String {
    let [a, b, c] = pod_range(index);
    format!("{a}.{b}.{c}.0/24")
}

fn labels(shape: &NodeShape, name: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch().to_string()),
        (
            "node.kubernetes.io/instance-type".to_string(),
            "hollow".to_string(),
        ),
    ]);
    labels.extend(shape.labels.clone());
    labels
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Node `index` without status (the create; status goes through `/status`).
pub fn node(shape: &NodeShape, index: usize) -> Node {
    let name = shape.name(index);
    let mut node = Node::default();
    node.metadata.labels = Some(labels(shape, &name));
    node.metadata.name = Some(name);
    node.spec = Some(NodeSpec {
        pod_cidr: Some(pod_cidr(index)),
        pod_cidrs: Some(vec![pod_cidr(index)]),
        taints: Some(shape.taints.clone()).filter(|t| !t.is_empty()),
        ..NodeSpec::default()
    });
    node
}

/// Node `index`'s status as of `now`: ready, no pressure, its capacity, addresses and versions.
pub fn node_status(shape: &NodeShape, index: usize, now: Timestamp) -> NodeStatus {
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(shape.cpu.clone())),
        ("memory".to_string(), Quantity(shape.memory.clone())),
        ("pods".to_string(), Quantity(shape.pods.to_string())),
    ]);
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_string(),
                address: node_ip(index).to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_string(),
                address: shape.name(index),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: arch().to_string(),
            operating_system: "linux".to_string(),
            kubelet_version: KUBELET_VERSION.to_string(),
            kube_proxy_version: KUBELET_VERSION.to_string(),
            container_runtime_version: "hollow://1.0.0".to_string(),
            kernel_version: "hollow".to_string(),
            os_image: "cairn hollow node".to_string(),
            machine_id: format!("hollow-{index}"),
            system_uuid: format!("hollow-{index}"),
            boot_id: format!("hollow-{index}"),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    }
}

/// The heartbeat Lease of node `name` (uid `node_uid`), renewed at `now`.
pub fn lease(name: &str, node_uid: Option<String>, now: Timestamp) -> Lease {
    let mut lease = Lease::default();
    lease.metadata.name = Some(name.to_string());
    lease.metadata.namespace = Some(LEASE_NAMESPACE.to_string());
    // As the kubelet does: the Lease goes when its Node goes.
    lease.metadata.owner_references = node_uid.map(|uid| {
        vec![OwnerReference {
            api_version: "v1".to_string(),
            kind: "Node".to_string(),
            name: name.to_string(),
            uid,
            ..OwnerReference::default()
        }]
    });
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(name.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(now)),
        ..LeaseSpec::default()
    });
    lease
}

/// Creates or updates node `index` (labels, taints, then status) and its Lease.
async fn register(client: &Client, shape: &NodeShape, index: usize) -> Result<()> {
    let nodes: Api<Node> = Api::cluster(client.clone());
    let wanted = node(shape, index);
    let name = shape.name(index);
    let registered = match nodes.create(&wanted).await {
        Ok(node) => node,
        Err(e) if e.is_already_exists() => {
            let spec = wanted.spec.unwrap_or_default();
            let patch = json!({
                "metadata": {"labels": wanted.metadata.labels},
                "spec": {"taints": spec.taints},
            });
            nodes.patch(&name, &Patch::Merge(patch)).await?
        }
        Err(e) => return Err(e).with_context(|| format!("creating node {name}")),
    };
    let status = node_status(shape, index, Timestamp::now());
    nodes
        .patch_status(&name, &Patch::Merge(json!({ "status": status })))
        .await
        .with_context(|| format!("writing the status of node {name}"))?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let wanted = lease(&name, registered.metadata.uid, Timestamp::now());
    match leases.create(&wanted).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => renew(&leases, &name).await,
        Err(e) => Err(e).with_context(|| format!("creating the lease of node {name}")),
    }
}

/// Registers every node, `concurrency` at a time.
pub async fn register_all(
    client: &Client,
    shape: &NodeShape,
    count: usize,
    concurrency: usize,
) -> Result<()> {
    futures::stream::iter(0..count)
        .map(|index| register(client, shape, index))
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await
}

/// Renews the Lease of node `name`.
async fn renew(leases: &Api<Lease>, name: &str) -> Result<()> {
    let spec = lease(name, None, Timestamp::now()).spec;
    leases
        .patch(name, &Patch::Merge(json!({ "spec": spec })))
        .await
        .with_context(|| format!("renewing the lease of node {name}"))?;
    Ok(())
}

/// Renews every node's Lease once per [`RENEW_INTERVAL`], one node after another spread evenly
/// over the interval so that N nodes do not write at once. Writes share `writes`. Never returns.
pub async fn heartbeats(
    client: Client,
    shape: Arc<NodeShape>,
    count: usize,
    writes: Arc<Semaphore>,
    stats: Arc<Stats>,
) {
    if count == 0 {
        return std::future::pending().await;
    }
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let step = RENEW_INTERVAL / count as u32;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for index in (0..count).cycle() {
        ticks.tick().await;
        let Ok(permit) = writes.clone().acquire_owned().await else {
            return;
        };
        let leases = leases.clone();
        let name = shape.name(index);
        let stats = stats.clone();
        tokio::spawn(async move {
            match renew(&leases, &name).await {
                Ok(()) => stats.lease_renewals.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    eprintln!("hollow-nodes: {e:#}");
                    stats.errors.fetch_add(1, Ordering::Relaxed)
                }
            };
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> NodeShape {
        NodeShape {
            name_prefix: "hollow-".into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: 110,
            labels: BTreeMap::from([("zone".into(), "a".into())]),
            taints: vec![parse_taint("dedicated=hollow:NoSchedule").unwrap()],
        }
    }

    #[test]
    fn taints_and_labels_parse() {
        let t = parse_taint("gpu:NoExecute").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value, t.effect.as_str()),
            ("gpu", None, "NoExecute")
        );
        assert!(parse_taint("a=b:Sometimes").is_err());
        assert!(parse_taint("a=b").is_err());
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_label("=b").is_err());
    }

    #[test]
    fn addresses_do_not_collide() {
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(node_ip(255), Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(pod_range(0), [10, 128, 0]);
        assert_eq!(pod_range(257), [10, 129, 1]);
        assert_eq!(pod_cidr(1), "10.128.1.0/24");
    }

    #[test]
    fn a_node_carries_its_shape() {
        let shape = shape();
        let node = node(&shape, 3);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "hollow-3");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "hollow");
        assert_eq!(labels["zone"], "a");
        assert_eq!(node.spec.unwrap().taints.unwrap()[0].key, "dedicated");
        let status = node_status(&shape, 3, Timestamp::UNIX_EPOCH);
        assert_eq!(status.capacity.unwrap()["pods"].0, "110");
        let ready = status.conditions.unwrap().pop().unwrap();
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(status.node_info.unwrap().kubelet_version, KUBELET_VERSION);
    }
}
