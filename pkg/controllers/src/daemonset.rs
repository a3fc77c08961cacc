//! The DaemonSet controller: one pod per eligible node, as upstream's does. A node is
//! eligible when the template's node selector and required node affinity admit it and its
//! NoSchedule/NoExecute taints are tolerated by the template's tolerations plus the ones
//! upstream adds to every daemon pod (not-ready and unreachable NoExecute; disk, memory and
//! PID pressure and unschedulable NoSchedule; network-unavailable for host-network pods).
//! Pods are not bound here: each asks for its node by a required node affinity on
//! `metadata.name`, and the default scheduler places it, as upstream has done since 1.12.
//! Pods on nodes that left or stopped being eligible are deleted, failed ones replaced.
//! RollingUpdate replaces pods of an older template (`controller-revision-hash`), at most
//! `maxUnavailable` unavailable at a time. Each template is kept as a ControllerRevision
//! ([`history`](crate::history)), so `kubectl rollout history|undo daemonset` work.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, Store};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use crate::claim::claim;
use crate::error::Result;
use crate::expectations::Expectations;
use crate::history::{self, History};
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, nodes, pods, template};

/// The label carrying the template hash on daemon pods.
pub const REVISION_HASH: &str = "controller-revision-hash";

/// The DaemonSet controller.
pub struct DaemonSetController {
    client: Client,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    history: History,
    expectations: Expectations,
}

impl DaemonSetController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .daemon_sets
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            if let Some(r) = meta::controller_of(&change.object().metadata)
                && r.kind == "DaemonSet"
            {
                q.add(ObjectKey {
                    namespace: change.object().metadata.namespace.clone(),
                    name: r.name.clone(),
                });
            }
        });
        // Nodes joining, leaving or changing: every DaemonSet looks again.
        let q = queue.clone();
        let sets = informers.daemon_sets.store().clone();
        informers.nodes.on_change(move |change: Change<'_, Node>| {
            if let Change::Updated { old, new } = &change
                && old.metadata.labels == new.metadata.labels
                && old.spec == new.spec
                && nodes::ready_status(old) == nodes::ready_status(new)
            {
                return;
            }
            for ds in sets.list() {
                q.add(meta::key(&ds.metadata));
            }
        });
        Arc::new(DaemonSetController {
            client: client.clone(),
            sets: informers.daemon_sets.store().clone(),
            pods: informers.pods.store().clone(),
            nodes: informers.nodes.store().clone(),
            history: History::new(client, informers.controller_revisions.store().clone()),
            expectations: Expectations::default(),
        })
    }
}

fn exists(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        value: None,
        toleration_seconds: None,
    }
}

/// The template with upstream's daemon tolerations added.
fn with_daemon_tolerations(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    let spec = t.spec.get_or_insert_with(Default::default);
    let host_network = spec.host_network == Some(true);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let mut wanted = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        wanted.push(exists(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    for w in wanted {
        let covered = tolerations
            .iter()
            .any(|t| t.key == w.key && t.effect == w.effect && t.operator == w.operator);
        if !covered {
            tolerations.push(w);
        }
    }
    t
}

/// Whether a daemon pod from `template` (with the daemon tolerations) belongs on `node`.
fn should_run(template: &PodTemplateSpec, node: &Node) -> bool {
    let Some(spec) = &template.spec else {
        return false;
    };
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    nodes::selects(spec, node)
        && nodes::taints(node)
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .all(|taint| tolerations.iter().any(|t| nodes::tolerates(t, taint)))
}

/// The node a daemon pod is for: its node, or the one its node affinity names.
fn target_node(pod: &Pod) -> Option<String> {
    if let Some(n) = pods::node_name(pod) {
        return Some(n.to_string());
    }
    let terms = &pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|f| {
            (f.key == "metadata.name" && f.operator == "In")
                .then(|| f.values.as_ref()?.first().cloned())
                .flatten()
        })
    })
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod asks for `node` by name.
fn pin_to(pod: &mut Pod, node: &str) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    });
}

impl Reconcile for DaemonSetController {
    type Key = ObjectKey;
    const NAME: &'static str = "daemonset";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(ds) = self.sets.get(Some(ns), &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let spec = ds.spec.clone().unwrap_or_default();
        let selector = meta::selector(Some(&spec.selector))?;
        let pod_api = Api::<Pod>::namespaced(self.client.clone(), ns);
        let in_namespace: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| meta::namespace(&p.metadata) == ns)
            .collect();
        // The revisions some pod still runs (terminating ones too) are kept, whatever the
        // history limit.
        let in_use: HashSet<String> = in_namespace
            .iter()
            .filter(|p| meta::is_controlled_by(&p.metadata, &ds.metadata))
            .filter_map(|p| meta::labels(&p.metadata).get(REVISION_HASH))
            .map(|h| history::name_of(&ds.metadata, h))
            .collect();
        let candidates: Vec<Arc<Pod>> = in_namespace
            .into_iter()
            .filter(|p| !meta::is_deleting(&p.metadata))
            .collect();
        let controller_ref = meta::controller_ref::<DaemonSet>(&ds.metadata);
        let owned = claim(
            &pod_api,
            &ds.metadata,
            &controller_ref,
            selector.as_ref(),
            candidates,
        )
        .await?;
        let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = template::hash(&spec.template, REVISION_HASH, collisions);
        if !meta::is_deleting(&ds.metadata)
            && !self
                .history
                .record::<DaemonSet>(&ds.metadata, &spec.template, &hash, collisions)
                .await?
        {
            return Ok(None);
        }
        let tmpl = with_daemon_tolerations(&spec.template);
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = meta::now();

        let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        let mut orphans = Vec::new();
        for pod in owned {
            match target_node(&pod) {
                Some(n) => by_node.entry(n).or_default().push(pod),
                None => orphans.push(pod),
            }
        }
        let mut create_on = Vec::new();
        let mut delete = orphans;
        let (mut desired, mut scheduled, mut misscheduled, mut ready, mut available, mut updated) =
            (0, 0, 0, 0, 0, 0);
        let mut old_pods = Vec::new();
        let mut unavailable = 0;
        let nodes = self.nodes.list();
        for node in &nodes {
            let name = meta::name(&node.metadata).to_string();
            let mut here = by_node.remove(&name).unwrap_or_default();
            if should_run(&tmpl, node) {
                desired += 1;
                let (failed, mut running): (Vec<_>, Vec<_>) =
                    here.drain(..).partition(|p| pods::phase(p) == "Failed");
                delete.extend(failed);
                running.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                if running.len() > 1 {
                    delete.extend(running.drain(1..));
                }
                match running.first() {
                    None => {
                        create_on.push(name);
                        unavailable += 1;
                    }
                    Some(p) => {
                        scheduled += 1;
                        let is_available = pods::is_available(p, min_ready, now);
                        if pods::is_ready(p) {
                            ready += 1;
                        }
                        if is_available {
                            available += 1;
                        } else {
                            unavailable += 1;
                        }
                        if meta::labels(&p.metadata).get(REVISION_HASH) == Some(&hash) {
                            updated += 1;
                        } else {
                            old_pods.push((is_available, p.clone()));
                        }
                    }
                }
            } else if !here.is_empty() {
                misscheduled += 1;
                delete.extend(here);
            }
        }
        // Pods for nodes that are gone.
        delete.extend(by_node.into_values().flatten());
        if !meta::is_deleting(&ds.metadata) {
            let limit = spec.revision_history_limit.unwrap_or(10);
            let current = history::name_of(&ds.metadata, &hash);
            self.history
                .prune(&ds.metadata, limit, &current, &in_use)
                .await?;
        }

        if self.expectations.satisfied(key, &self.pods) && !meta::is_deleting(&ds.metadata) {
            let rolling = spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.type_.as_deref())
                != Some("OnDelete");
            if rolling && !old_pods.is_empty() {
                let max_unavailable = spec
                    .update_strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref())
                    .and_then(|r| r.max_unavailable.as_ref())
                    .map(|v| match v {
                        IntOrString::Int(i) => *i,
                        IntOrString::String(s) => s
                            .trim_end_matches('%')
                            .parse::<i32>()
                            .map(|p| p * desired / 100)
                            .unwrap_or(1),
                    })
                    .unwrap_or(1)
                    .max(1);
                // Unavailable old pods go first and cost nothing; then as many as allowed.
                old_pods.sort_by_key(|(a, _)| *a);
                let mut budget = max_unavailable - unavailable;
                for (is_available, pod) in old_pods {
                    if !is_available {
                        delete.push(pod);
                    } else if budget > 0 {
                        budget -= 1;
                        delete.push(pod);
                    }
                }
            }
            for pod in &delete {
                match pod_api
                    .delete(meta::name(&pod.metadata), &DeleteParams::default())
                    .await
                {
                    Ok(_) => self.expectations.deleted(key, &pod.metadata),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let prefix = pods::generate_name_prefix(meta::name(&ds.metadata));
            for node in &create_on {
                let mut pod = pods::from_template(
                    &tmpl,
                    ns,
                    controller_ref.clone(),
                    &prefix,
                    &[(REVISION_HASH, &hash)],
                );
                pin_to(&mut pod, node);
                let created = pod_api.create(&pod).await?;
                self.expectations.written(key, &created.metadata);
            }
        }

        let status = ds.status.clone().unwrap_or_default();
        let generation = ds.metadata.generation.unwrap_or(0);
        // A ready pod becomes available after minReadySeconds: look again then.
        let again = self
            .pods
            .list()
            .iter()
            .filter(|p| meta::is_controlled_by(&p.metadata, &ds.metadata))
            .filter_map(|p| pods::until_available(p, min_ready, now))
            .min()
            .map(|s| Duration::from_secs(s as u64));
        if status.desired_number_scheduled == desired
            && status.current_number_scheduled == scheduled
            && status.number_misscheduled == misscheduled
            && status.number_ready == ready
            && status.number_available.unwrap_or(0) == available
            && status.updated_number_scheduled.unwrap_or(0) == updated
            && status.number_unavailable.unwrap_or(0) == desired - available
            && status.observed_generation.unwrap_or(0) == generation
        {
            return Ok(again);
        }
        let api = Api::<DaemonSet>::namespaced(self.client.clone(), ns);
        let patch = Patch::Merge(json!({"status": {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "updatedNumberScheduled": updated,
            "numberUnavailable": desired - available,
            "observedGeneration": generation,
        }}));
        match api.patch_status(&key.name, &patch).await {
            Ok(_) => Ok(again),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
