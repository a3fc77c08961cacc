//! The pod being scheduled, with everything the filters and scores read of it computed once
//! per scheduling attempt: requests, host ports, compiled affinity terms, topology spread
//! constraints (the pod's own or the system defaults) and normalized image names. Nothing here
//! looks at nodes.

use cairn_api::labels::{Operator, Requirement, Selector};
use k8s_openapi::api::core::v1::{Pod, Toleration, TopologySpreadConstraint};

use crate::resources::PodRequests;
use crate::snapshot::{HostPort, pod_key};
use crate::terms::{AffinityTerms, labels};

/// The well-known hostname label.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The well-known zone label.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// One topology spread constraint, compiled.
#[derive(Debug, Clone)]
pub struct SpreadConstraint {
    /// `maxSkew`.
    pub max_skew: i64,
    /// `topologyKey`.
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    /// `labelSelector` plus `matchLabelKeys`; `None` selects no pod.
    pub selector: Option<Selector>,
    /// `minDomains` (1 when unset).
    pub min_domains: i64,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore).
    pub honor_node_taints: bool,
}

impl SpreadConstraint {
    fn new(c: &TopologySpreadConstraint, pod: &Pod) -> SpreadConstraint {
        let selector = c
            .label_selector
            .as_ref()
            .and_then(|s| Selector::try_from(s).ok())
            .map(|s| {
                let mut reqs = s.requirements().to_vec();
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(v) = labels(pod).get(key)
                        && let Ok(r) = Requirement::new(key, Operator::In, [v.clone()])
                    {
                        reqs.push(r);
                    }
                }
                Selector::from_requirements(reqs)
            });
        SpreadConstraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            hard: c.when_unsatisfiable == "DoNotSchedule",
            selector,
            min_domains: c.min_domains.map_or(1, i64::from),
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    /// Whether the constraint's selector selects `pod` in the incoming pod's namespace; pods
    /// being deleted never count.
    pub fn counts(&self, pod: &Pod, namespace: &str) -> bool {
        pod.metadata.deletion_timestamp.is_none()
            && pod.metadata.namespace.as_deref().unwrap_or("default") == namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(labels(pod)))
    }
}

/// The pod being scheduled.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// `namespace/name`.
    pub key: String,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its requests.
    pub requests: PodRequests,
    /// Host ports it asks for.
    pub host_ports: Vec<HostPort>,
    /// Its tolerations.
    pub tolerations: &'a [Toleration],
    /// `spec.nodeName`, when set.
    pub node_name: Option<&'a str>,
    /// Its affinity terms.
    pub terms: AffinityTerms,
    /// Its topology spread constraints, or the system defaults.
    pub spread: Vec<SpreadConstraint>,
    /// Whether `spread` holds the system defaults.
    pub spread_system_defaulted: bool,
    /// Image names of all containers, normalized (`:latest` added where no tag is given).
    pub images: Vec<String>,
    /// Number of containers and init containers.
    pub containers: usize,
}

impl<'a> Incoming<'a> {
    /// Precomputes `pod`.
    pub fn new(pod: &'a Pod) -> Incoming<'a> {
        let spec = pod.spec.as_ref();
        let own: Vec<SpreadConstraint> = spec
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .into_iter()
            .flatten()
            .map(|c| SpreadConstraint::new(c, pod))
            .collect();
        let (spread, spread_system_defaulted) = if own.is_empty() {
            (system_default_constraints(pod), true)
        } else {
            (own, false)
        };
        let containers = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
        let images: Vec<String> = containers
            .clone()
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        Incoming {
            pod,
            key: pod_key(pod),
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            requests: PodRequests::of(pod),
            host_ports: HostPort::of(pod),
            tolerations: spec
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default(),
            node_name: spec
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty()),
            terms: AffinityTerms::of(pod),
            spread,
            spread_system_defaulted,
            images,
            containers: containers.count(),
        }
    }
}

/// Upstream's system default spreading (`{hostname maxSkew 3}`, `{zone maxSkew 5}`, both
/// ScheduleAnyway) for pods of a Service, ReplicaSet, StatefulSet or ReplicationController.
/// Upstream selects with the union of those objects' selectors; without them at hand, a pod
/// with an owner is spread against pods carrying all of its labels, and a pod without owner
/// or labels is not spread.
fn system_default_constraints(pod: &Pod) -> Vec<SpreadConstraint> {
    let owned = pod
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty());
    if !owned || labels(pod).is_empty() {
        return Vec::new();
    }
    let reqs = labels(pod)
        .iter()
        .filter_map(|(k, v)| Requirement::new(k, Operator::Equals, [v.clone()]).ok())
        .collect();
    let selector = Selector::from_requirements(reqs);
    [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)]
        .into_iter()
        .map(|(key, skew)| SpreadConstraint {
            max_skew: skew,
            topology_key: key.to_string(),
            hard: false,
            selector: Some(selector.clone()),
            min_domains: 1,
            honor_node_affinity: true,
            honor_node_taints: false,
        })
        .collect()
}

/// Upstream's `normalizedImageName`: an image without a tag gets `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    let colon = name.rfind(':');
    let slash = name.rfind('/');
    if colon.is_none_or(|c| slash.is_some_and(|s| c < s)) {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}
