//! Builders of nodes, pods and snapshots for this crate's unit tests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerImage, ContainerPort, Node, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PreferredSchedulingTerm, ResourceRequirements,
    Taint, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::snapshot::{NodeInfo, Snapshot};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn node_object(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(map(labels)),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(
                [("cpu", cpu), ("memory", memory), ("pods", "110")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.into())))
                    .collect(),
            ),
            ..Default::default()
        }),
    }
}

fn info(node: Node) -> NodeInfo {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut s = Snapshot::new();
    s.upsert_node(node);
    s.node(&name).cloned().expect("node just added")
}

pub fn node(name: &str, cpu: &str, memory: &str) -> NodeInfo {
    info(node_object(name, cpu, memory, &[]))
}

pub fn node_with_labels(name: &str, labels: &[(&str, &str)]) -> NodeInfo {
    info(node_object(name, "4", "8Gi", labels))
}

pub fn node_with_image(name: &str, image: &str, size: i64) -> NodeInfo {
    let mut n = node_object(name, "4", "8Gi", &[]);
    n.status.as_mut().unwrap().images = Some(vec![ContainerImage {
        names: Some(vec![image.into()]),
        size_bytes: Some(size),
    }]);
    info(n)
}

pub fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("app:1".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn labelled_pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    let mut p = pod(name);
    p.metadata.labels = Some(map(labels));
    p
}

pub fn owned(mut p: Pod) -> Pod {
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "rs".into(),
        uid: "uid".into(),
        ..Default::default()
    }]);
    p
}

pub fn pod_requesting(name: &str, cpu: &str, memory: &str) -> Pod {
    let mut p = pod(name);
    p.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements {
        requests: Some(
            [("cpu", cpu), ("memory", memory)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.into())))
                .collect(),
        ),
        ..Default::default()
    });
    p
}

pub fn pod_with_host_port(name: &str, port: i32) -> Pod {
    let mut p = pod(name);
    p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
        container_port: port,
        host_port: Some(port),
        ..Default::default()
    }]);
    p
}

pub fn pod_with_image(name: &str, image: &str) -> Pod {
    let mut p = pod(name);
    p.spec.as_mut().unwrap().containers[0].image = Some(image.into());
    p
}

pub fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: Some(value.into()).filter(|v: &String| !v.is_empty()),
        effect: effect.into(),
        ..Default::default()
    }
}

pub fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
    let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    Toleration {
        key: opt(key),
        operator: opt(operator),
        value: opt(value),
        effect: opt(effect),
        ..Default::default()
    }
}

pub fn required_node_affinity(reqs: Vec<NodeSelectorRequirement>) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(reqs),
                    match_fields: None,
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn preferred_node_affinity(terms: &[(i32, &str, &str)]) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(
                terms
                    .iter()
                    .map(|(w, k, v)| PreferredSchedulingTerm {
                        weight: *w,
                        preference: NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: k.to_string(),
                                operator: "In".into(),
                                values: Some(vec![v.to_string()]),
                            }]),
                            match_fields: None,
                        },
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn term(topology_key: &str, labels: &[(&str, &str)]) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(map(labels)),
            ..Default::default()
        }),
        topology_key: topology_key.into(),
        ..Default::default()
    }
}

/// Required pod affinity (`affinity`) or anti-affinity with one term.
pub fn pod_affinity(affinity: bool, topology_key: &str, labels: &[(&str, &str)]) -> Affinity {
    let terms = Some(vec![term(topology_key, labels)]);
    if affinity {
        Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: terms,
                ..Default::default()
            }),
            ..Default::default()
        }
    } else {
        Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: terms,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Preferred affinity and anti-affinity terms: (weight, topology key, label key, label value).
pub fn preferred_pod_affinity(
    affinity: &[(i32, &str, &str, &str)],
    anti: &[(i32, &str, &str, &str)],
) -> Affinity {
    let weighted = |terms: &[(i32, &str, &str, &str)]| {
        Some(
            terms
                .iter()
                .map(|(w, tk, k, v)| WeightedPodAffinityTerm {
                    weight: *w,
                    pod_affinity_term: term(tk, &[(k, v)]),
                })
                .collect(),
        )
    };
    Affinity {
        pod_affinity: Some(PodAffinity {
            preferred_during_scheduling_ignored_during_execution: weighted(affinity),
            ..Default::default()
        }),
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: weighted(anti),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn spread(
    key: &str,
    max_skew: i32,
    when: &str,
    labels: &[(&str, &str)],
    min_domains: Option<i32>,
) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        topology_key: key.into(),
        max_skew,
        when_unsatisfiable: when.into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(map(labels)),
            ..Default::default()
        }),
        min_domains,
        ..Default::default()
    }
}

/// A snapshot of these nodes (their `Node` objects) with pods bound to them.
pub fn snapshot_with(nodes: Vec<NodeInfo>, pods: Vec<(&str, Pod)>) -> Snapshot {
    let mut s = Snapshot::new();
    for n in nodes {
        s.upsert_node((*n.node.expect("not a ghost")).clone());
    }
    for (node, mut p) in pods {
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        s.add_pod(p).expect("bound");
    }
    s
}
