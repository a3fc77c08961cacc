//! The ReplicaSet controller: keeps `spec.replicas` active pods from the template, each with
//! the ReplicaSet as its controller (ownerReferences `controller: true`). It adopts matching
//! orphans and releases pods that stopped matching; it creates in slow-start batches (1, 2,
//! 4, …) and deletes the pods upstream would delete first (unscheduled, not ready, newer);
//! and it reports replicas, fullyLabeledReplicas, readyReplicas, availableReplicas and
//! observedGeneration.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Patch, Store};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::claim::claim;
use crate::error::Result;
use crate::expectations::Expectations;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, pods};

/// The most pods created or deleted in one pass (upstream's burst).
const BURST: usize = 500;

/// The ReplicaSet controller.
pub struct ReplicaSetController {
    client: Client,
    pods: Store<Pod>,
    sets: Store<ReplicaSet>,
    expectations: Expectations,
}

impl ReplicaSetController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .replica_sets
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        let sets = informers.replica_sets.store().clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            for pod in [Some(change.object()), change.old()].into_iter().flatten() {
                enqueue_owner(&q, &sets, pod);
            }
        });
        Arc::new(ReplicaSetController {
            client,
            pods: informers.pods.store().clone(),
            sets: informers.replica_sets.store().clone(),
            expectations: Expectations::default(),
        })
    }
}

/// Queues the ReplicaSet controlling `pod`, or, for an orphan, every ReplicaSet that could
/// adopt it.
fn enqueue_owner(queue: &Queue<ObjectKey>, sets: &Store<ReplicaSet>, pod: &Pod) {
    let ns = meta::namespace(&pod.metadata);
    match meta::controller_of(&pod.metadata) {
        Some(r) if r.kind == "ReplicaSet" => queue.add(ObjectKey {
            namespace: Some(ns.to_string()),
            name: r.name.clone(),
        }),
        Some(_) => {}
        None => {
            for rs in sets.list() {
                if meta::namespace(&rs.metadata) != ns {
                    continue;
                }
                let selector = rs.spec.as_ref().map(|s| &s.selector);
                if let Ok(Some(s)) = meta::selector(selector)
                    && s.matches(meta::labels(&pod.metadata))
                {
                    queue.add(meta::key(&rs.metadata));
                }
            }
        }
    }
}

impl Reconcile for ReplicaSetController {
    type Key = ObjectKey;
    const NAME: &'static str = "replicaset";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(rs) = self.sets.get(Some(ns), &key.name) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let spec = rs.spec.clone().unwrap_or_default();
        let selector = meta::selector(Some(&spec.selector))?;
        let satisfied = self.expectations.satisfied(key, &self.pods);
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| meta::namespace(&p.metadata) == ns && pods::is_active(p))
            .collect();
        let api = Api::<Pod>::namespaced(self.client.clone(), ns);
        let controller_ref = meta::controller_ref::<ReplicaSet>(&rs.metadata);
        let owned = claim(
            &api,
            &rs.metadata,
            &controller_ref,
            selector.as_ref(),
            candidates,
        )
        .await?;
        let wanted = spec.replicas.unwrap_or(1).max(0) as usize;
        let mut failure = None;
        if satisfied
            && !meta::is_deleting(&rs.metadata)
            && let Err(e) = self.manage(key, &rs, &api, owned.clone(), wanted).await
        {
            failure = Some(e);
        }
        let again = self.update_status(&rs, &owned).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(again),
        }
    }
}

impl ReplicaSetController {
    /// Creates or deletes pods so that `wanted` are active.
    async fn manage(
        &self,
        key: &ObjectKey,
        rs: &ReplicaSet,
        api: &Api<Pod>,
        mut owned: Vec<Arc<Pod>>,
        wanted: usize,
    ) -> Result<()> {
        let ns = meta::namespace(&rs.metadata);
        if owned.len() < wanted {
            let Some(template) = rs.spec.as_ref().and_then(|s| s.template.clone()) else {
                return Ok(());
            };
            let missing = (wanted - owned.len()).min(BURST);
            let prefix = pods::generate_name_prefix(meta::name(&rs.metadata));
            let pod = pods::from_template(
                &template,
                ns,
                meta::controller_ref::<ReplicaSet>(&rs.metadata),
                &prefix,
                &[],
            );
            tracing::debug!(
                namespace = ns,
                rs = meta::name(&rs.metadata),
                missing,
                "creating pods"
            );
            slow_start(missing, |_| async {
                let created = api.create(&pod).await?;
                self.expectations.written(key, &created.metadata);
                Ok(())
            })
            .await?;
        } else if owned.len() > wanted {
            pods::sort_for_deletion(&mut owned);
            let surplus = (owned.len() - wanted).min(BURST);
            let doomed = &owned[..surplus];
            let deletes = doomed.iter().map(|pod| async move {
                match api
                    .delete(meta::name(&pod.metadata), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {
                        self.expectations.deleted(key, &pod.metadata);
                        Ok(())
                    }
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e),
                }
            });
            for result in futures::future::join_all(deletes).await {
                result?;
            }
        }
        Ok(())
    }

    /// Writes the status the pods give, when it changed; when a ready pod is yet to become
    /// available, when to look again.
    async fn update_status(&self, rs: &ReplicaSet, owned: &[Arc<Pod>]) -> Result<Option<Duration>> {
        let spec = rs.spec.clone().unwrap_or_default();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = meta::now();
        let template_labels = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let fully_labeled = owned
            .iter()
            .filter(|p| {
                let labels = meta::labels(&p.metadata);
                template_labels
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .count() as i32;
        let ready = owned.iter().filter(|p| pods::is_ready(p)).count() as i32;
        let available = owned
            .iter()
            .filter(|p| pods::is_available(p, min_ready, now))
            .count() as i32;
        let again = owned
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready, now))
            .min()
            .map(|s| Duration::from_secs(s as u64));
        let replicas = owned.len() as i32;
        let generation = rs.metadata.generation.unwrap_or(0);
        let status = rs.status.clone().unwrap_or_default();
        if status.replicas == replicas
            && status.fully_labeled_replicas.unwrap_or(0) == fully_labeled
            && status.ready_replicas.unwrap_or(0) == ready
            && status.available_replicas.unwrap_or(0) == available
            && status.observed_generation.unwrap_or(0) == generation
        {
            return Ok(again);
        }
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), meta::namespace(&rs.metadata));
        let patch = Patch::Merge(json!({"status": {
            "replicas": replicas,
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": generation,
        }}));
        match api.patch_status(meta::name(&rs.metadata), &patch).await {
            Ok(_) => Ok(again),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `count` calls of `make` in batches of 1, 2, 4, …, stopping at the first batch with a
/// failure (upstream's slow start: a template the server refuses costs one call, not many).
pub async fn slow_start<F, Fut>(count: usize, make: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut done = 0;
    let mut batch = 1;
    while done < count {
        let n = batch.min(count - done);
        let results = futures::future::join_all((done..done + n).map(&make)).await;
        for result in results {
            result?;
        }
        done += n;
        batch *= 2;
    }
    Ok(())
}
