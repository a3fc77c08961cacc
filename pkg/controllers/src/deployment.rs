//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets, as
//! upstream's does. Each template revision is one ReplicaSet named `<deployment>-<hash>`
//! (label and selector `pod-template-hash`), annotated with its revision
//! (`deployment.kubernetes.io/revision`, one more than the highest before; a rollback makes
//! the old ReplicaSet the newest revision again). RollingUpdate scales the new ReplicaSet up
//! within `maxSurge` and the old ones down within `maxUnavailable`; Recreate scales the old
//! ones to zero and waits for their pods to be gone first. A replica change alone is a
//! scaling event, spread over the active ReplicaSets; a paused Deployment only scales.
//! Old ReplicaSets beyond `revisionHistoryLimit` are deleted. The status carries the counts
//! and the Available and Progressing conditions `kubectl rollout status` reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, Store};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use crate::claim::claim;
use crate::error::{Error, Result};
use crate::expectations::Expectations;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::template::{self, POD_TEMPLATE_HASH};
use crate::{Informers, meta, pods};

/// The revision annotation on Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Replicas plus maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations of a Deployment not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The Deployment controller.
pub struct DeploymentController {
    client: Client,
    deployments: Store<Deployment>,
    sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Expectations,
}

impl DeploymentController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .deployments
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        let deployments = informers.deployments.store().clone();
        informers
            .replica_sets
            .on_change(move |change: Change<'_, ReplicaSet>| {
                for rs in [Some(change.object()), change.old()].into_iter().flatten() {
                    enqueue_owner(&q, &deployments, rs);
                }
            });
        // Recreate waits for old pods to be gone.
        let q = queue.clone();
        let sets = informers.replica_sets.store().clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            if let Change::Deleted(pod) = change
                && let Some(r) = meta::controller_of(&pod.metadata)
                && r.kind == "ReplicaSet"
                && let Some(rs) = sets.get(pod.metadata.namespace.as_deref(), &r.name)
                && let Some(d) = meta::controller_of(&rs.metadata)
                && d.kind == "Deployment"
            {
                q.add(ObjectKey {
                    namespace: rs.metadata.namespace.clone(),
                    name: d.name.clone(),
                });
            }
        });
        Arc::new(DeploymentController {
            client,
            deployments: informers.deployments.store().clone(),
            sets: informers.replica_sets.store().clone(),
            pods: informers.pods.store().clone(),
            expectations: Expectations::default(),
        })
    }
}

fn enqueue_owner(queue: &Queue<ObjectKey>, deployments: &Store<Deployment>, rs: &ReplicaSet) {
    let ns = meta::namespace(&rs.metadata);
    match meta::controller_of(&rs.metadata) {
        Some(r) if r.kind == "Deployment" => queue.add(ObjectKey {
            namespace: Some(ns.to_string()),
            name: r.name.clone(),
        }),
        Some(_) => {}
        None => {
            for d in deployments.list() {
                let selector = d.spec.as_ref().map(|s| &s.selector);
                if meta::namespace(&d.metadata) == ns
                    && let Ok(Some(s)) = meta::selector(selector)
                    && s.matches(meta::labels(&rs.metadata))
                {
                    queue.add(meta::key(&d.metadata));
                }
            }
        }
    }
}

/// `maxSurge` / `maxUnavailable` of `replicas`: a number, or a percentage rounded up
/// (surge) or down (unavailable).
fn scaled_value(value: Option<&IntOrString>, replicas: i32, round_up: bool) -> Result<i32> {
    match value {
        None => Ok(0),
        Some(IntOrString::Int(i)) => Ok(*i),
        Some(IntOrString::String(s)) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| Error::Invalid(format!("invalid value for IntOrString: {s:?}")))?;
            let product = percent * i64::from(replicas);
            let value = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            Ok(value as i32)
        }
    }
}

/// The working view of one Deployment during a pass.
struct Rollout {
    d: Arc<Deployment>,
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    rolling: bool,
    /// The ReplicaSet of the current template, if there is one.
    new: Option<ReplicaSet>,
    /// The others, oldest first.
    old: Vec<ReplicaSet>,
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn revision(m: &ObjectMeta) -> u64 {
    meta::annotation(m, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

impl Rollout {
    fn all(&self) -> impl Iterator<Item = &ReplicaSet> {
        self.new.iter().chain(self.old.iter())
    }

    fn total_spec(&self) -> i32 {
        self.all().map(rs_replicas).sum()
    }

    /// Upstream's `NewRSNewReplicas`.
    fn new_rs_new_replicas(&self) -> i32 {
        if !self.rolling {
            return self.replicas;
        }
        let current_new = self.new.as_ref().map(rs_replicas).unwrap_or(0);
        let max_total = self.replicas + self.max_surge;
        let current = self.total_spec();
        if current >= max_total {
            return current_new;
        }
        let up = (max_total - current)
            .min(self.replicas - current_new)
            .max(0);
        current_new + up
    }
}

impl Reconcile for DeploymentController {
    type Key = ObjectKey;
    const NAME: &'static str = "deployment";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(d) = self.deployments.get(Some(ns), &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        if !self.expectations.satisfied(key, &self.sets) {
            return Ok(Some(Duration::from_secs(1)));
        }
        let spec = d.spec.clone().unwrap_or_default();
        let selector = meta::selector(Some(&spec.selector))?;
        if selector.as_ref().is_none_or(|s| s.is_empty()) {
            tracing::warn!(
                namespace = ns,
                name = key.name,
                "a deployment with an empty selector selects nothing"
            );
            return Ok(None);
        }
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), ns);
        let candidates: Vec<Arc<ReplicaSet>> = self
            .sets
            .list()
            .into_iter()
            .filter(|rs| meta::namespace(&rs.metadata) == ns)
            .collect();
        let controller_ref = meta::controller_ref::<Deployment>(&d.metadata);
        let mut owned: Vec<ReplicaSet> = claim(
            &api,
            &d.metadata,
            &controller_ref,
            selector.as_ref(),
            candidates,
        )
        .await?
        .into_iter()
        .map(|rs| (*rs).clone())
        .collect();
        owned.sort_by_key(|rs| (created(rs), meta::name(&rs.metadata).to_string()));

        let replicas = spec.replicas.unwrap_or(1).max(0);
        let strategy = spec.strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref() != Some("Recreate");
        let (max_surge, max_unavailable) = if rolling {
            let ru = strategy.rolling_update.clone().unwrap_or_default();
            let surge = scaled_value(ru.max_surge.as_ref(), replicas, true)?;
            let unavailable = scaled_value(ru.max_unavailable.as_ref(), replicas, false)?;
            if surge == 0 && unavailable == 0 {
                (0, 1)
            } else {
                (surge, unavailable)
            }
        } else {
            (0, 0)
        };
        let new_index = owned.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| template::equal_ignoring(t, &spec.template, POD_TEMPLATE_HASH))
        });
        let new = new_index.map(|i| owned.remove(i));
        let mut r = Rollout {
            d: d.clone(),
            replicas,
            max_surge,
            max_unavailable,
            rolling,
            new,
            old: owned,
        };

        if meta::is_deleting(&d.metadata) {
            return self.write_status(&r, None).await;
        }
        let paused = spec.paused == Some(true);
        let mut progress = self.paused_condition(&d, paused);
        if paused || self.is_scaling_event(&r) {
            self.sync_revision(key, &mut r, false, &mut progress)
                .await?;
            self.scale(key, &mut r).await?;
            if paused {
                self.clean_up(&r).await?;
            }
            return self.write_status(&r, progress).await;
        }
        if rolling {
            self.sync_revision(key, &mut r, true, &mut progress).await?;
            if self.reconcile_new(key, &mut r).await? {
                return self.write_status(&r, progress).await;
            }
            if self.reconcile_old(key, &mut r).await? {
                return self.write_status(&r, progress).await;
            }
        } else {
            self.sync_revision(key, &mut r, false, &mut progress)
                .await?;
            let mut scaled = false;
            for i in 0..r.old.len() {
                if rs_replicas(&r.old[i]) > 0 {
                    self.scale_rs(key, &mut r.old[i], 0, &d, 0).await?;
                    scaled = true;
                }
            }
            if scaled || self.old_pods_running(&r) {
                return self.write_status(&r, progress).await;
            }
            if r.new.is_none() {
                self.sync_revision(key, &mut r, true, &mut progress).await?;
            }
            if let Some(new) = &mut r.new
                && rs_replicas(new) != replicas
            {
                self.scale_rs(key, new, replicas, &d, 0).await?;
            }
        }
        if complete(&r, &status_of(&r)) {
            self.clean_up(&r).await?;
        }
        self.write_status(&r, progress).await
    }
}

impl DeploymentController {
    /// The Progressing condition pausing or resuming calls for, if it changes.
    fn paused_condition(&self, d: &Deployment, paused: bool) -> Option<DeploymentCondition> {
        let current = condition(d.status.as_ref(), "Progressing");
        let marked = current.is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused"));
        if paused && !marked {
            Some(new_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            ))
        } else if !paused && marked {
            Some(new_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            ))
        } else {
            None
        }
    }

    /// Upstream's `isScalingEvent`: an active ReplicaSet was scaled for another replica count.
    fn is_scaling_event(&self, r: &Rollout) -> bool {
        r.all().filter(|rs| rs_replicas(rs) > 0).any(|rs| {
            meta::annotation(&rs.metadata, DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|desired| desired != r.replicas)
        })
    }

    /// Finds or (when `create`) creates the new ReplicaSet, with the next revision.
    async fn sync_revision(
        &self,
        key: &ObjectKey,
        r: &mut Rollout,
        create: bool,
        progress: &mut Option<DeploymentCondition>,
    ) -> Result<()> {
        let d = r.d.clone();
        let spec = d.spec.clone().unwrap_or_default();
        let max_old = r
            .old
            .iter()
            .map(|rs| revision(&rs.metadata))
            .max()
            .unwrap_or(0);
        let next = max_old + 1;
        let ns = meta::namespace(&d.metadata);
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), ns);
        if let Some(new) = &mut r.new {
            let mut updated = new.clone();
            let annotations = updated
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new);
            let mut changed = false;
            if revision(&new.metadata) < next {
                annotations.insert(REVISION.into(), next.to_string());
                changed = true;
                for (k, v) in d.metadata.annotations.iter().flatten() {
                    if !NOT_COPIED.contains(&k.as_str()) && annotations.get(k) != Some(v) {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
            }
            let rs_spec = updated.spec.get_or_insert_with(Default::default);
            if rs_spec.min_ready_seconds != spec.min_ready_seconds {
                rs_spec.min_ready_seconds = spec.min_ready_seconds;
                changed = true;
            }
            if changed {
                let written = api.replace(meta::name(&new.metadata), &updated).await?;
                self.expectations.written(key, &written.metadata);
                *new = written;
            }
            if condition(d.status.as_ref(), "Progressing").is_none() && progress.is_none() {
                *progress = Some(new_condition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    &format!("Found new replica set \"{}\"", meta::name(&new.metadata)),
                ));
            }
            return self.annotate_revision(&d, revision(&new.metadata)).await;
        }
        if !create {
            return Ok(());
        }
        let collisions = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template::hash(&spec.template, POD_TEMPLATE_HASH, collisions);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector: LabelSelector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut annotations: BTreeMap<String, String> = d
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.insert(REVISION.into(), next.to_string());
        annotations.insert(DESIRED_REPLICAS.into(), r.replicas.to_string());
        annotations.insert(MAX_REPLICAS.into(), (r.replicas + r.max_surge).to_string());
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", meta::name(&d.metadata));
        let replicas = r.new_rs_new_replicas();
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: Some(vec![meta::controller_ref::<Deployment>(&d.metadata)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        match api.create(&rs).await {
            Ok(created) => {
                tracing::info!(
                    namespace = ns,
                    deployment = meta::name(&d.metadata),
                    rs = name,
                    replicas,
                    "created a replica set"
                );
                self.expectations.written(key, &created.metadata);
                *progress = Some(new_condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    &format!("Created new replica set \"{name}\""),
                ));
                r.new = Some(created);
                self.annotate_revision(&d, next).await
            }
            Err(e) if e.is_already_exists() => {
                // Either the cache lags behind our own create, or another template hashed to
                // the same name: then count a collision so that the next hash differs.
                let existing = api.get(&name).await?;
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| {
                        template::equal_ignoring(t, &spec.template, POD_TEMPLATE_HASH)
                    });
                if same && meta::is_controlled_by(&existing.metadata, &d.metadata) {
                    self.expectations.written(key, &existing.metadata);
                    return Err(Error::Invalid(format!(
                        "replica set {name} exists but is not in the cache yet"
                    )));
                }
                let count = collisions.unwrap_or(0) + 1;
                let dapi = Api::<Deployment>::namespaced(self.client.clone(), ns);
                dapi.patch_status(
                    meta::name(&d.metadata),
                    &Patch::Merge(json!({"status": {"collisionCount": count}})),
                )
                .await?;
                Err(Error::Invalid(format!(
                    "hash collision on replica set {name}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the Deployment's revision annotation to the new ReplicaSet's.
    async fn annotate_revision(&self, d: &Deployment, rev: u64) -> Result<()> {
        if revision(&d.metadata) == rev {
            return Ok(());
        }
        let api = Api::<Deployment>::namespaced(self.client.clone(), meta::namespace(&d.metadata));
        let patch = Patch::Merge(json!({"metadata": {"annotations": {REVISION: rev.to_string()}}}));
        api.patch(meta::name(&d.metadata), &patch).await?;
        Ok(())
    }

    /// Sets a ReplicaSet's replicas and scaling annotations.
    async fn scale_rs(
        &self,
        key: &ObjectKey,
        rs: &mut ReplicaSet,
        replicas: i32,
        d: &Deployment,
        max_surge: i32,
    ) -> Result<()> {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let mut updated = rs.clone();
        let annotations = updated
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        let changed_annotations = annotations.get(DESIRED_REPLICAS) != Some(&desired.to_string())
            || annotations.get(MAX_REPLICAS) != Some(&(desired + max_surge).to_string());
        if rs_replicas(rs) == replicas && !changed_annotations {
            return Ok(());
        }
        annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
        annotations.insert(MAX_REPLICAS.into(), (desired + max_surge).to_string());
        updated.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), meta::namespace(&rs.metadata));
        tracing::info!(
            namespace = meta::namespace(&rs.metadata),
            rs = meta::name(&rs.metadata),
            from = rs_replicas(rs),
            to = replicas,
            "scaling a replica set"
        );
        let written = api.replace(meta::name(&rs.metadata), &updated).await?;
        self.expectations.written(key, &written.metadata);
        *rs = written;
        Ok(())
    }

    /// Upstream's `reconcileNewReplicaSet`; whether it scaled.
    async fn reconcile_new(&self, key: &ObjectKey, r: &mut Rollout) -> Result<bool> {
        let Some(current) = r.new.as_ref().map(rs_replicas) else {
            return Ok(false);
        };
        let target = if current > r.replicas {
            r.replicas
        } else {
            r.new_rs_new_replicas()
        };
        if target == current {
            return Ok(false);
        }
        let d = r.d.clone();
        let surge = r.max_surge;
        let new = r.new.as_mut().expect("checked above");
        self.scale_rs(key, new, target, &d, surge).await?;
        Ok(true)
    }

    /// Upstream's `reconcileOldReplicaSets`: scale old ReplicaSets down as far as
    /// `maxUnavailable` allows, unhealthy replicas first; whether it scaled.
    async fn reconcile_old(&self, key: &ObjectKey, r: &mut Rollout) -> Result<bool> {
        let old_count: i32 = r.old.iter().map(rs_replicas).sum();
        if old_count == 0 {
            return Ok(false);
        }
        let all_count = r.total_spec();
        let min_available = r.replicas - r.max_unavailable;
        let new_unavailable = r
            .new
            .as_ref()
            .map(|n| rs_replicas(n) - rs_available(n))
            .unwrap_or(0);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let d = r.d.clone();
        let surge = r.max_surge;
        // Unhealthy replicas first.
        let mut cleaned = 0;
        for rs in r.old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let (spec, available) = (rs_replicas(rs), rs_available(rs));
            if spec == 0 || spec == available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(spec - available);
            self.scale_rs(key, rs, spec - down, &d, surge).await?;
            cleaned += down;
        }
        // Then healthy ones, as long as enough stay available.
        let available: i32 = r.all().map(rs_available).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for rs in r.old.iter_mut() {
                if scaled >= total {
                    break;
                }
                let spec = rs_replicas(rs);
                if spec == 0 {
                    continue;
                }
                let down = spec.min(total - scaled);
                self.scale_rs(key, rs, spec - down, &d, surge).await?;
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    /// Upstream's `scale`: a replica change goes to the one active ReplicaSet, or is shared
    /// among several in proportion to their sizes.
    async fn scale(&self, key: &ObjectKey, r: &mut Rollout) -> Result<()> {
        let d = r.d.clone();
        let surge = r.max_surge;
        let replicas = r.replicas;
        let active: Vec<bool> = r.all().map(|rs| rs_replicas(rs) > 0).collect();
        let active_count = active.iter().filter(|a| **a).count();
        if active_count <= 1 {
            // The active one, or the newest if none is active.
            let target = if active_count == 1 {
                r.new
                    .iter_mut()
                    .chain(r.old.iter_mut())
                    .find(|rs| rs_replicas(rs) > 0)
            } else if r.new.is_some() {
                r.new.as_mut()
            } else {
                r.old.last_mut()
            };
            if let Some(rs) = target {
                self.scale_rs(key, rs, replicas, &d, surge).await?;
            }
            return Ok(());
        }
        if let Some(new) = &r.new
            && rs_replicas(new) == replicas
            && rs_available(new) == replicas
        {
            for rs in r.old.iter_mut() {
                self.scale_rs(key, rs, 0, &d, surge).await?;
            }
            return Ok(());
        }
        let allowed = if replicas > 0 { replicas + surge } else { 0 };
        let current: i32 = r.all().map(rs_replicas).sum();
        let to_add = allowed - current;
        if to_add == 0 {
            return Ok(());
        }
        // Proportional shares, the remainder to the largest (newest on ties when growing).
        let mut sets: Vec<&mut ReplicaSet> = r
            .new
            .iter_mut()
            .chain(r.old.iter_mut())
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        sets.sort_by(|a, b| {
            rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
                if to_add > 0 {
                    created(b).cmp(&created(a))
                } else {
                    created(a).cmp(&created(b))
                }
            })
        });
        let shares: Vec<i32> = sets
            .iter()
            .map(|rs| {
                (i64::from(to_add) * i64::from(rs_replicas(rs)) / i64::from(current.max(1))) as i32
            })
            .collect();
        let leftover = to_add - shares.iter().sum::<i32>();
        for (i, rs) in sets.into_iter().enumerate() {
            let mut share = shares[i];
            if i == 0 {
                share += leftover;
            }
            let target = (rs_replicas(rs) + share).max(0);
            self.scale_rs(key, rs, target, &d, surge).await?;
        }
        Ok(())
    }

    /// Whether pods of old ReplicaSets still exist (Recreate waits for them).
    fn old_pods_running(&self, r: &Rollout) -> bool {
        let uids: Vec<&str> = r.old.iter().map(|rs| meta::uid(&rs.metadata)).collect();
        self.pods.list().iter().any(|p| {
            meta::controller_of(&p.metadata).is_some_and(|c| uids.contains(&c.uid.as_str()))
                && !pods::is_terminal(p)
        })
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`, oldest revision first.
    async fn clean_up(&self, r: &Rollout) -> Result<()> {
        let limit =
            r.d.spec
                .as_ref()
                .and_then(|s| s.revision_history_limit)
                .unwrap_or(10)
                .max(0) as usize;
        let mut cleanable: Vec<&ReplicaSet> = r
            .old
            .iter()
            .filter(|rs| !meta::is_deleting(&rs.metadata))
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        cleanable.sort_by_key(|rs| revision(&rs.metadata));
        let surplus = cleanable.len() - limit;
        for rs in &cleanable[..surplus] {
            let status = rs.status.clone().unwrap_or_default();
            if rs_replicas(rs) != 0
                || status.replicas != 0
                || rs.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0)
            {
                continue;
            }
            let api =
                Api::<ReplicaSet>::namespaced(self.client.clone(), meta::namespace(&rs.metadata));
            tracing::info!(
                rs = meta::name(&rs.metadata),
                "deleting an old replica set beyond the history limit"
            );
            match api
                .delete(meta::name(&rs.metadata), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes the status with its conditions, when it changed; when the progress deadline
    /// needs a look, when to look again.
    async fn write_status(
        &self,
        r: &Rollout,
        progress: Option<DeploymentCondition>,
    ) -> Result<Option<Duration>> {
        let d = &r.d;
        let old = d.status.clone().unwrap_or_default();
        let mut status = status_of(r);
        status.conditions = old.conditions.clone();
        let now = meta::now();
        let available = if status.available_replicas.unwrap_or(0) >= r.replicas - r.max_unavailable
        {
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        } else {
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        };
        set_condition(&mut status, available);
        if let Some(c) = progress {
            set_condition(&mut status, c);
        }
        let paused = d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let deadline = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds);
        let mut again = None;
        if let Some(deadline) = deadline.filter(|s| *s != i32::MAX)
            && !paused
        {
            let rs_name = r.new.as_ref().map(|n| meta::name(&n.metadata).to_string());
            if complete(r, &status) {
                let message = match &rs_name {
                    Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                    None => "Deployment has successfully progressed.".to_string(),
                };
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", &message),
                );
            } else if progressing(&old, &status) {
                let message = match &rs_name {
                    Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                    None => "Deployment is progressing.".to_string(),
                };
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", &message);
                if let Some(current) = condition(Some(&status), "Progressing")
                    && current.status == "True"
                {
                    c.last_transition_time = current.last_transition_time.clone();
                }
                // Progress moves the deadline: replace even when the reason is the same.
                status
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .retain(|c| c.type_ != "Progressing");
                status.conditions.get_or_insert_with(Vec::new).push(c);
            } else if let Some(current) = condition(Some(&status), "Progressing").cloned()
                && current.reason.as_deref() != Some("NewReplicaSetAvailable")
                && current.reason.as_deref() != Some("ProgressDeadlineExceeded")
            {
                let from = current
                    .last_update_time
                    .as_ref()
                    .map(|t| t.0.as_second())
                    .unwrap_or(now.as_second());
                let left = from + i64::from(deadline) - now.as_second();
                if left <= 0 {
                    let message = match &rs_name {
                        Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                        None => format!(
                            "Deployment \"{}\" has timed out progressing.",
                            meta::name(&d.metadata)
                        ),
                    };
                    set_condition(
                        &mut status,
                        new_condition("Progressing", "False", "ProgressDeadlineExceeded", &message),
                    );
                } else {
                    again = Some(Duration::from_secs(left as u64));
                }
            }
        }
        if status == old {
            return Ok(again);
        }
        let api = Api::<Deployment>::namespaced(self.client.clone(), meta::namespace(&d.metadata));
        let body = serde_json::to_value(&status).map_err(|e| Error::Invalid(e.to_string()))?;
        let patch = Patch::Merge(json!({"status": body}));
        match api.patch_status(meta::name(&d.metadata), &patch).await {
            Ok(_) => Ok(again),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Upstream's `calculateStatus` without the conditions.
fn status_of(r: &Rollout) -> DeploymentStatus {
    let sum = |f: fn(&ReplicaSet) -> i32| r.all().map(f).sum::<i32>();
    let available = sum(rs_available);
    let status = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    DeploymentStatus {
        observed_generation: r.d.metadata.generation,
        replicas: Some(sum(|rs| {
            rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
        })),
        updated_replicas: Some(r.new.as_ref().map(|n| status(n).replicas).unwrap_or(0)),
        ready_replicas: Some(sum(|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        })),
        available_replicas: Some(available),
        unavailable_replicas: Some((r.replicas - available).max(0)),
        collision_count: r.d.status.as_ref().and_then(|s| s.collision_count),
        terminating_replicas: r.d.status.as_ref().and_then(|s| s.terminating_replicas),
        conditions: None,
    }
}

/// Upstream's `DeploymentComplete`.
fn complete(r: &Rollout, s: &DeploymentStatus) -> bool {
    s.updated_replicas.unwrap_or(0) == r.replicas
        && s.replicas.unwrap_or(0) == r.replicas
        && s.available_replicas.unwrap_or(0) == r.replicas
        && s.observed_generation.unwrap_or(0) >= r.d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`: more updated, ready or available pods, or fewer old.
fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let o = |v: Option<i32>| v.unwrap_or(0);
    let old_old = o(old.replicas) - o(old.updated_replicas);
    let new_old = o(new.replicas) - o(new.updated_replicas);
    o(new.updated_replicas) > o(old.updated_replicas)
        || new_old < old_old
        || o(new.ready_replicas) > o(old.ready_replicas)
        || o(new.available_replicas) > o(old.available_replicas)
}

fn condition<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: &str) -> DeploymentCondition {
    let now = meta::time(meta::now());
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Upstream's `SetDeploymentCondition`: a condition with the same status and reason stays as
/// it is; one with the same status keeps its transition time.
fn set_condition(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|x| x.type_ == c.type_) {
        if current.status == c.status && current.reason == c.reason {
            return;
        }
        if current.status == c.status {
            c.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|x| x.type_ != c.type_);
    conditions.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let pct = IntOrString::String("25%".into());
        assert_eq!(scaled_value(Some(&pct), 3, true).unwrap(), 1);
        assert_eq!(scaled_value(Some(&pct), 3, false).unwrap(), 0);
        assert_eq!(scaled_value(Some(&pct), 10, true).unwrap(), 3);
        assert_eq!(scaled_value(Some(&pct), 10, false).unwrap(), 2);
        assert_eq!(
            scaled_value(Some(&IntOrString::Int(2)), 10, false).unwrap(),
            2
        );
        assert!(scaled_value(Some(&IntOrString::String("x".into())), 1, true).is_err());
    }
}
