//! The StatefulSet controller: pods with stable names `<set>-<ordinal>` (and hostname
//! `<set>-<ordinal>`, subdomain `serviceName`), as upstream's does. With the default
//! `OrderedReady` policy pod N is created only once pods 0…N-1 are Running and Ready, scaling
//! down removes the highest ordinal first, one at a time, and only while the rest are
//! healthy; `Parallel` creates and deletes without waiting. A RollingUpdate replaces pods of
//! an older template from the highest ordinal down to `partition`, one at a time, each only
//! once the others are Ready. The revision is a hash of the template
//! (`controller-revision-hash: <set>-<hash>`), each kept as a ControllerRevision of that name
//! ([`history`](crate::history)), so `kubectl rollout history|undo statefulset` work. No
//! volume claims are made (no volumes yet).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, Store};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::claim::claim;
use crate::daemonset::REVISION_HASH;
use crate::error::Result;
use crate::expectations::Expectations;
use crate::history::{self, History};
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, pods, template};

/// The label naming a StatefulSet pod.
pub const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying a StatefulSet pod's ordinal.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";

/// The StatefulSet controller.
pub struct StatefulSetController {
    client: Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    history: History,
    expectations: Expectations,
}

impl StatefulSetController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .stateful_sets
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            if let Some(r) = meta::controller_of(&change.object().metadata)
                && r.kind == "StatefulSet"
            {
                q.add(ObjectKey {
                    namespace: change.object().metadata.namespace.clone(),
                    name: r.name.clone(),
                });
            }
        });
        Arc::new(StatefulSetController {
            client: client.clone(),
            sets: informers.stateful_sets.store().clone(),
            pods: informers.pods.store().clone(),
            history: History::new(client, informers.controller_revisions.store().clone()),
            expectations: Expectations::default(),
        })
    }
}

/// The ordinal of a pod of set `set`, from its name.
fn ordinal(set: &str, pod: &Pod) -> Option<i32> {
    meta::name(&pod.metadata)
        .strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
        .filter(|n: &i32| *n >= 0)
}

fn healthy(pod: &Pod) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod) && !meta::is_deleting(&pod.metadata)
}

impl Reconcile for StatefulSetController {
    type Key = ObjectKey;
    const NAME: &'static str = "statefulset";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(set) = self.sets.get(Some(ns), &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let spec = set.spec.clone().unwrap_or_default();
        let selector = meta::selector(Some(&spec.selector))?;
        let api = Api::<Pod>::namespaced(self.client.clone(), ns);
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| meta::namespace(&p.metadata) == ns && ordinal(&key.name, p).is_some())
            .collect();
        let controller_ref = meta::controller_ref::<StatefulSet>(&set.metadata);
        let owned = claim(
            &api,
            &set.metadata,
            &controller_ref,
            selector.as_ref(),
            candidates,
        )
        .await?;
        let mut by_ordinal: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
        for pod in owned {
            if let Some(n) = ordinal(&key.name, &pod) {
                by_ordinal.insert(n, pod);
            }
        }
        let collisions = set.status.as_ref().and_then(|s| s.collision_count);
        let hash = template::hash(&spec.template, REVISION_HASH, collisions);
        let revision = history::name_of(&set.metadata, &hash);
        if !meta::is_deleting(&set.metadata)
            && !self
                .history
                .record::<StatefulSet>(&set.metadata, &spec.template, &hash, collisions)
                .await?
        {
            return Ok(None);
        }
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let revision_of = |p: &Pod| meta::labels(&p.metadata).get(REVISION_HASH).cloned();

        if self.expectations.satisfied(key, &self.pods) && !meta::is_deleting(&set.metadata) {
            self.step(key, &set, &api, &by_ordinal, replicas, parallel, &revision)
                .await?;
        }

        // Status.
        let count = |f: &dyn Fn(&Pod) -> bool| by_ordinal.values().filter(|p| f(p)).count() as i32;
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = meta::now();
        let updated = count(&|p| revision_of(p).as_deref() == Some(revision.as_str()));
        let old = set.status.clone().unwrap_or_default();
        let all_updated = updated == replicas
            && by_ordinal.len() as i32 == replicas
            && by_ordinal.values().all(|p| healthy(p));
        let current_revision = if all_updated || old.current_revision.is_none() {
            revision.clone()
        } else {
            old.current_revision.clone().unwrap_or_default()
        };
        let current = count(&|p| revision_of(p).as_deref() == Some(current_revision.as_str()));
        if !meta::is_deleting(&set.metadata) {
            let mut in_use: HashSet<String> =
                by_ordinal.values().filter_map(|p| revision_of(p)).collect();
            in_use.insert(current_revision.clone());
            let limit = spec.revision_history_limit.unwrap_or(10);
            self.history
                .prune(&set.metadata, limit, &revision, &in_use)
                .await?;
        }
        let status = json!({
            "replicas": by_ordinal.len(),
            "readyReplicas": count(&|p| pods::is_ready(p)),
            "availableReplicas": count(&|p| pods::is_available(p, min_ready, now)),
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": revision,
            "observedGeneration": set.metadata.generation.unwrap_or(0),
        });
        let before = serde_json::to_value(&old).unwrap_or_default();
        let changed = status
            .as_object()
            .into_iter()
            .flatten()
            .any(|(k, v)| before.get(k).unwrap_or(&json!(0)) != v);
        if changed {
            let sets = Api::<StatefulSet>::namespaced(self.client.clone(), ns);
            match sets
                .patch_status(&key.name, &Patch::Merge(json!({"status": status})))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

impl StatefulSetController {
    /// One step toward the spec: create, delete or replace pods, in order.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        key: &ObjectKey,
        set: &StatefulSet,
        api: &Api<Pod>,
        by_ordinal: &BTreeMap<i32, Arc<Pod>>,
        replicas: i32,
        parallel: bool,
        revision: &str,
    ) -> Result<()> {
        let spec = set.spec.clone().unwrap_or_default();
        // Failed pods are replaced.
        for pod in by_ordinal.values() {
            if pods::phase(pod) == "Failed" && !meta::is_deleting(&pod.metadata) {
                self.delete(key, api, pod).await?;
                if !parallel {
                    return Ok(());
                }
            }
        }
        // Missing pods, lowest ordinal first; in order, each waits for those before it.
        for n in 0..replicas {
            match by_ordinal.get(&n) {
                None => {
                    self.create(key, set, api, n, revision).await?;
                    if !parallel {
                        return Ok(());
                    }
                }
                Some(pod) if !parallel && !healthy(pod) => return Ok(()),
                Some(_) => {}
            }
        }
        // Surplus pods, highest ordinal first.
        let surplus: Vec<&Arc<Pod>> = by_ordinal.range(replicas..).rev().map(|(_, p)| p).collect();
        if !surplus.is_empty() {
            if parallel {
                for pod in surplus {
                    if !meta::is_deleting(&pod.metadata) {
                        self.delete(key, api, pod).await?;
                    }
                }
            } else if let Some(pod) = surplus.first()
                && !meta::is_deleting(&pod.metadata)
                && by_ordinal.range(..replicas).all(|(_, p)| healthy(p))
            {
                self.delete(key, api, pod).await?;
            }
            return Ok(());
        }
        // Rolling update, highest ordinal down to the partition, one at a time.
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        if strategy.type_.as_deref() == Some("OnDelete") {
            return Ok(());
        }
        let partition = strategy
            .rolling_update
            .and_then(|r| r.partition)
            .unwrap_or(0);
        if !by_ordinal.values().all(|p| healthy(p)) {
            return Ok(());
        }
        for n in (partition.max(0)..replicas).rev() {
            if let Some(pod) = by_ordinal.get(&n)
                && meta::labels(&pod.metadata)
                    .get(REVISION_HASH)
                    .map(String::as_str)
                    != Some(revision)
            {
                return self.delete(key, api, pod).await;
            }
        }
        Ok(())
    }

    async fn create(
        &self,
        key: &ObjectKey,
        set: &StatefulSet,
        api: &Api<Pod>,
        n: i32,
        revision: &str,
    ) -> Result<()> {
        let spec = set.spec.clone().unwrap_or_default();
        let name = format!("{}-{n}", key.name);
        let index = n.to_string();
        let mut pod = pods::from_template(
            &spec.template,
            meta::namespace(&set.metadata),
            meta::controller_ref::<StatefulSet>(&set.metadata),
            "",
            &[
                (POD_NAME, &name),
                (POD_INDEX, &index),
                (REVISION_HASH, revision),
            ],
        );
        pod.metadata.generate_name = None;
        pod.metadata.name = Some(name.clone());
        let pod_spec = pod.spec.get_or_insert_with(Default::default);
        pod_spec.hostname = Some(name.clone());
        if !spec.service_name.as_deref().unwrap_or_default().is_empty() {
            pod_spec.subdomain = spec.service_name.clone();
        }
        tracing::debug!(pod = name, "creating a stateful pod");
        match api.create(&pod).await {
            Ok(created) => {
                self.expectations.written(key, &created.metadata);
                Ok(())
            }
            // The previous pod of that name is still going away.
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &ObjectKey, api: &Api<Pod>, pod: &Pod) -> Result<()> {
        match api
            .delete(meta::name(&pod.metadata), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.expectations.deleted(key, &pod.metadata);
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
