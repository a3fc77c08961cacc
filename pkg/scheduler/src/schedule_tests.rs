//! Tests of [`crate::schedule`] as a whole: the unschedulable message across plugins, the
//! adaptive node count, assumed pods, and properties over random clusters.

use proptest::prelude::*;

use crate::testing::{node_object, pod, pod_requesting, taint, toleration};
use crate::{Snapshot, filters, incoming::Incoming, num_feasible_nodes_to_find, schedule};

#[test]
fn message_matches_upstream() {
    let mut s = Snapshot::new();
    s.upsert_node(node_object("small", "1", "4Gi", &[]));
    for name in ["cp1", "cp2"] {
        let mut n = node_object(name, "8", "16Gi", &[]);
        n.spec.as_mut().unwrap().taints = Some(vec![taint(
            "node-role.kubernetes.io/control-plane",
            "",
            "NoSchedule",
        )]);
        s.upsert_node(n);
    }
    let err = schedule(&s, &pod_requesting("p", "2", "1Gi")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node-role.kubernetes.io/control-plane: }."
    );
    let mut tolerating = pod_requesting("q", "2", "1Gi");
    tolerating.spec.as_mut().unwrap().tolerations = Some(vec![toleration(
        "node-role.kubernetes.io/control-plane",
        "Exists",
        "",
        "",
    )]);
    assert!(schedule(&s, &tolerating).unwrap().node.starts_with("cp"));
}

#[test]
fn assumed_pods_count_for_the_next_decision() {
    let mut s = Snapshot::new();
    s.upsert_node(node_object("a", "1", "4Gi", &[]));
    s.upsert_node(node_object("b", "1", "4Gi", &[]));
    let first = pod_requesting("p1", "800m", "1Gi");
    let chosen = schedule(&s, &first).unwrap().node;
    s.assume(&first, &chosen).unwrap();
    assert_eq!(s.pod_node("default", "p1"), Some((chosen.as_str(), true)));
    let second = schedule(&s, &pod_requesting("p2", "800m", "1Gi"))
        .unwrap()
        .node;
    assert_ne!(chosen, second);
    s.assume(&pod_requesting("p2", "800m", "1Gi"), &second)
        .unwrap();
    let err = schedule(&s, &pod_requesting("p3", "800m", "1Gi")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/2 nodes are available: 2 Insufficient cpu."
    );
    // A failed binding is forgotten and frees the room.
    s.remove_pod("default", "p1");
    assert_eq!(
        schedule(&s, &pod_requesting("p3", "800m", "1Gi"))
            .unwrap()
            .node,
        chosen
    );
}

#[test]
fn equal_pods_spread_over_equal_nodes() {
    let mut s = Snapshot::new();
    for i in 0..4 {
        s.upsert_node(node_object(&format!("n{i}"), "4", "8Gi", &[]));
    }
    let mut used = std::collections::BTreeSet::new();
    for i in 0..8 {
        let p = pod(&format!("p{i}"));
        let node = schedule(&s, &p).unwrap().node;
        s.assume(&p, &node).unwrap();
        used.insert(node);
    }
    assert_eq!(used.len(), 4);
}

#[test]
fn adaptive_number_of_nodes() {
    let cases = [
        (0, 0),
        (99, 99),
        (100, 100),
        (1000, 420),
        (5000, 500),
        (6000, 300),
        (20000, 1000),
    ];
    for (nodes, want) in cases {
        assert_eq!(num_feasible_nodes_to_find(nodes), want, "{nodes}");
    }
    let mut s = Snapshot::new();
    for i in 0..1000 {
        s.upsert_node(node_object(&format!("n{i:04}"), "4", "8Gi", &[]));
    }
    let placement = schedule(&s, &pod("p")).unwrap();
    assert_eq!((placement.feasible, placement.examined), (420, 420));
}

#[test]
fn no_nodes() {
    let err = schedule(&Snapshot::new(), &pod("p")).unwrap_err();
    assert_eq!(err.to_string(), "no nodes available to schedule pods");
}

fn cluster() -> impl Strategy<Value = (Snapshot, k8s_openapi::api::core::v1::Pod)> {
    let node = (1u32..8, 1u32..16, 0usize..3, any::<bool>(), 0usize..3);
    let pod_req = (0u32..4000, 0u32..8, 0usize..3, 0usize..3);
    (
        prop::collection::vec(node, 1..12),
        prop::collection::vec((0usize..12, 0u32..2000, 0u32..4), 0..20),
        pod_req,
    )
        .prop_map(|(nodes, existing, (cpu, mem, zone, tolerate))| {
            let mut s = Snapshot::new();
            let count = nodes.len();
            for (i, (cpu, mem, zone, cordoned, tainted)) in nodes.into_iter().enumerate() {
                let zone = format!("z{zone}");
                let name = format!("n{i}");
                let mut n = node_object(
                    &name,
                    &cpu.to_string(),
                    &format!("{mem}Gi"),
                    &[("zone", &zone), ("kubernetes.io/hostname", &name)],
                );
                let spec = n.spec.as_mut().unwrap();
                spec.unschedulable = Some(cordoned && i % 2 == 0);
                if tainted > 0 {
                    spec.taints = Some(vec![taint(
                        "dedicated",
                        &format!("t{tainted}"),
                        "NoSchedule",
                    )]);
                }
                s.upsert_node(n);
            }
            for (j, (node, cpu, mem)) in existing.into_iter().enumerate() {
                let mut p =
                    pod_requesting(&format!("e{j}"), &format!("{cpu}m"), &format!("{mem}Gi"));
                p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
                p.spec.as_mut().unwrap().node_name = Some(format!("n{}", node % count));
                s.add_pod(p).unwrap();
            }
            let mut p = pod_requesting("incoming", &format!("{cpu}m"), &format!("{mem}Gi"));
            p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
            let spec = p.spec.as_mut().unwrap();
            if zone > 0 {
                spec.node_selector = Some([("zone".to_string(), format!("z{zone}"))].into());
            }
            if tolerate > 0 {
                spec.tolerations = Some(vec![toleration(
                    "dedicated",
                    "Equal",
                    &format!("t{tolerate}"),
                    "",
                )]);
            }
            spec.topology_spread_constraints = Some(vec![crate::testing::spread(
                "zone",
                2,
                "DoNotSchedule",
                &[("app", "web")],
                None,
            )]);
            (s, p)
        })
}

proptest! {
    #[test]
    fn chosen_node_passes_every_filter_and_the_choice_is_deterministic((s, p) in cluster()) {
        let copy = s.clone();
        let first = schedule(&s, &p);
        let second = schedule(&copy, &p);
        prop_assert_eq!(&first, &second);
        let incoming = Incoming::new(&p);
        let pre = filters::PreFiltered {
            spread: filters::pod_topology_spread::prefilter(&incoming, &s),
            affinity: filters::inter_pod_affinity::prefilter(&incoming, &s),
        };
        let feasible: Vec<String> = s
            .nodes()
            .filter(|n| filters::run(&incoming, &pre, n).is_ok())
            .map(|n| n.name.clone())
            .collect();
        match first {
            Ok(placement) => prop_assert!(feasible.contains(&placement.node)),
            Err(err) => {
                prop_assert!(feasible.is_empty());
                prop_assert_eq!(err.reasons.values().sum::<usize>() >= s.nodes().len(), true);
            }
        }
    }
}
