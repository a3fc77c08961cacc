//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! `foregroundDeletion` and `orphan` finalizers the API server adds on deletes with those
//! propagation policies, as upstream's does.
//!
//! It keeps an index from each owner's uid to its dependents, fed by the shared informers.
//! For a dependent it checks each owner reference against the cache, confirming a missing
//! owner with a live read (the cache may not have seen a new owner yet): with no owner left it
//! is deleted (in the foreground when an owner is waiting for its dependents); owners that are
//! gone are dropped from its references while others remain. An owner being deleted in the
//! foreground has its dependents deleted and loses its finalizer once no dependent that
//! blocks it is left; an owner being deleted with `orphan` has itself removed from its
//! dependents' references first. Only the kinds the controller manager watches are known;
//! an owner of another kind is assumed to exist, so nothing is deleted by mistake.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cairn_client::{
    Api, Client, DeleteParams, Object, ObjectKey, Patch, Preconditions, PropagationPolicy, Store,
};
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde_json::json;

use crate::error::Result;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta};

/// The finalizer of a foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an orphaning deletion.
pub const ORPHAN: &str = "orphan";

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind the collector knows, type-erased.
trait Kind: Send + Sync {
    fn api_version(&self) -> &'static str;
    fn kind(&self) -> &'static str;
    fn namespaced(&self) -> bool;
    fn cached(&self, namespace: Option<&str>, name: &str) -> Option<ObjectMeta>;
    fn live(
        &self,
        namespace: Option<&str>,
        name: String,
    ) -> BoxFuture<'_, Result<Option<ObjectMeta>>>;
    fn delete(
        &self,
        namespace: Option<&str>,
        name: String,
        params: DeleteParams,
    ) -> BoxFuture<'_, Result<()>>;
    fn patch(
        &self,
        namespace: Option<&str>,
        name: String,
        patch: Patch,
    ) -> BoxFuture<'_, Result<()>>;
}

type MakeApi<K> = Arc<dyn Fn(Option<&str>) -> Api<K> + Send + Sync>;

struct Typed<K> {
    store: Store<K>,
    api: MakeApi<K>,
    namespaced: bool,
}

impl<K: Object + Metadata<Ty = ObjectMeta>> Typed<K> {
    fn namespaced(client: &Client, informer: &Informer<K>) -> Self
    where
        K: k8s_openapi::Resource<Scope = NamespaceResourceScope>,
    {
        let client = client.clone();
        Typed {
            store: informer.store().clone(),
            api: Arc::new(move |ns| Api::namespaced(client.clone(), ns.unwrap_or_default())),
            namespaced: true,
        }
    }

    fn cluster(client: &Client, informer: &Informer<K>) -> Self
    where
        K: k8s_openapi::Resource<Scope = ClusterResourceScope>,
    {
        let client = client.clone();
        Typed {
            store: informer.store().clone(),
            api: Arc::new(move |_| Api::cluster(client.clone())),
            namespaced: false,
        }
    }
}

impl<K: Object + Metadata<Ty = ObjectMeta>> Kind for Typed<K> {
    fn api_version(&self) -> &'static str {
        K::API_VERSION
    }
    fn kind(&self) -> &'static str {
        K::KIND
    }
    fn namespaced(&self) -> bool {
        self.namespaced
    }
    fn cached(&self, namespace: Option<&str>, name: &str) -> Option<ObjectMeta> {
        self.store
            .get(namespace, name)
            .map(|o| o.metadata().clone())
    }
    fn live(
        &self,
        namespace: Option<&str>,
        name: String,
    ) -> BoxFuture<'_, Result<Option<ObjectMeta>>> {
        let api = (self.api)(namespace);
        Box::pin(async move { Ok(api.get_opt(&name).await?.map(|o| o.metadata().clone())) })
    }
    fn delete(
        &self,
        namespace: Option<&str>,
        name: String,
        params: DeleteParams,
    ) -> BoxFuture<'_, Result<()>> {
        let api = (self.api)(namespace);
        Box::pin(async move {
            match api.delete(&name, &params).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }
    fn patch(
        &self,
        namespace: Option<&str>,
        name: String,
        patch: Patch,
    ) -> BoxFuture<'_, Result<()>> {
        let api = (self.api)(namespace);
        Box::pin(async move {
            match api.patch(&name, &patch).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// An object the collector looks at: the index of its kind and its key.
pub type GcKey = (usize, ObjectKey);

/// Owner uid → dependents, and each object's uid and owners (to update the index).
#[derive(Default)]
struct Graph {
    dependents: HashMap<String, HashSet<GcKey>>,
    owners: HashMap<GcKey, (String, Vec<OwnerReference>)>,
    by_uid: HashMap<String, GcKey>,
}

impl Graph {
    fn update(&mut self, key: &GcKey, m: Option<&ObjectMeta>) {
        if let Some((uid, refs)) = self.owners.remove(key) {
            for r in refs {
                if let Some(set) = self.dependents.get_mut(&r.uid) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&r.uid);
                    }
                }
            }
            self.by_uid.remove(&uid);
        }
        if let Some(m) = m {
            let refs = m.owner_references.clone().unwrap_or_default();
            for r in &refs {
                self.dependents
                    .entry(r.uid.clone())
                    .or_default()
                    .insert(key.clone());
            }
            let uid = meta::uid(m).to_string();
            self.by_uid.insert(uid.clone(), key.clone());
            self.owners.insert(key.clone(), (uid, refs));
        }
    }
}

/// The garbage collector.
pub struct GarbageCollector {
    kinds: Vec<Arc<dyn Kind>>,
    graph: Arc<Mutex<Graph>>,
}

fn watch<K: Object + Metadata<Ty = ObjectMeta>>(
    index: usize,
    informer: &Informer<K>,
    graph: &Arc<Mutex<Graph>>,
    queue: &Queue<GcKey>,
) {
    let graph = graph.clone();
    let queue = queue.clone();
    informer.on_change(move |change: Change<'_, K>| {
        let m = change.object().metadata();
        let key = (index, meta::key(m));
        let mut g = graph.lock().unwrap_or_else(PoisonError::into_inner);
        match change {
            Change::Deleted(_) => {
                g.update(&key, None);
                // Its dependents may be orphans now; its owners may wait for it.
                for d in g.dependents.get(meta::uid(m)).into_iter().flatten() {
                    queue.add(d.clone());
                }
                for r in m.owner_references.iter().flatten() {
                    if let Some(owner) = g.by_uid.get(&r.uid) {
                        queue.add(owner.clone());
                    }
                }
            }
            _ => {
                g.update(&key, Some(m));
                let has_owners = m.owner_references.as_ref().is_some_and(|r| !r.is_empty());
                let finalizing = meta::is_deleting(m)
                    && m.finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND || f == ORPHAN);
                if has_owners || finalizing {
                    queue.add(key);
                }
            }
        }
    });
}

impl GarbageCollector {
    /// The collector over every kind the informers hold, feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<GcKey>) -> Arc<Self> {
        let graph: Arc<Mutex<Graph>> = Arc::default();
        let kinds: Vec<Arc<dyn Kind>> = vec![
            Arc::new(Typed::namespaced(&client, &informers.pods)),
            Arc::new(Typed::namespaced(&client, &informers.replica_sets)),
            Arc::new(Typed::namespaced(&client, &informers.deployments)),
            Arc::new(Typed::namespaced(&client, &informers.daemon_sets)),
            Arc::new(Typed::namespaced(&client, &informers.jobs)),
            Arc::new(Typed::namespaced(&client, &informers.cron_jobs)),
            Arc::new(Typed::namespaced(&client, &informers.leases)),
            Arc::new(Typed::cluster(&client, &informers.nodes)),
            Arc::new(Typed::namespaced(&client, &informers.services)),
            Arc::new(Typed::namespaced(&client, &informers.endpoint_slices)),
            Arc::new(Typed::namespaced(&client, &informers.stateful_sets)),
            Arc::new(Typed::namespaced(&client, &informers.controller_revisions)),
        ];
        watch(0, &informers.pods, &graph, queue);
        watch(1, &informers.replica_sets, &graph, queue);
        watch(2, &informers.deployments, &graph, queue);
        watch(3, &informers.daemon_sets, &graph, queue);
        watch(4, &informers.jobs, &graph, queue);
        watch(5, &informers.cron_jobs, &graph, queue);
        watch(6, &informers.leases, &graph, queue);
        watch(7, &informers.nodes, &graph, queue);
        watch(8, &informers.services, &graph, queue);
        watch(9, &informers.endpoint_slices, &graph, queue);
        watch(10, &informers.stateful_sets, &graph, queue);
        watch(11, &informers.controller_revisions, &graph, queue);
        Arc::new(GarbageCollector { kinds, graph })
    }

    fn kind_of(&self, r: &OwnerReference) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.kind() == r.kind && k.api_version() == r.api_version)
    }

    fn dependents(&self, uid: &str) -> Vec<GcKey> {
        let g = self.graph.lock().unwrap_or_else(PoisonError::into_inner);
        g.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn ns<'a>(&self, index: usize, key: &'a ObjectKey) -> Option<&'a str> {
        if self.kinds[index].namespaced() {
            key.namespace.as_deref()
        } else {
            None
        }
    }

    /// The owner `r` of an object in `namespace`, if it exists (same uid).
    async fn owner(
        &self,
        namespace: Option<&str>,
        r: &OwnerReference,
    ) -> Result<Option<OwnerState>> {
        let Some(index) = self.kind_of(r) else {
            // A kind we do not watch: assume it exists.
            return Ok(Some(OwnerState::Present));
        };
        let kind = &self.kinds[index];
        let ns = if kind.namespaced() { namespace } else { None };
        let found = match kind.cached(ns, &r.name) {
            Some(m) if meta::uid(&m) == r.uid => Some(m),
            _ => kind
                .live(ns, r.name.clone())
                .await?
                .filter(|m| meta::uid(m) == r.uid),
        };
        Ok(found.map(|m| {
            if meta::is_deleting(&m) && m.finalizers.iter().flatten().any(|f| f == FOREGROUND) {
                OwnerState::Waiting
            } else {
                OwnerState::Present
            }
        }))
    }

    /// Removes the owner references with these uids from a dependent.
    async fn drop_refs(
        &self,
        index: usize,
        key: &ObjectKey,
        m: &ObjectMeta,
        uids: &[&str],
    ) -> Result<()> {
        let refs: Vec<&OwnerReference> = m
            .owner_references
            .iter()
            .flatten()
            .filter(|r| !uids.contains(&r.uid.as_str()))
            .collect();
        let refs: Vec<OwnerReference> = refs.into_iter().cloned().collect();
        let patch = crate::claim::owners_patch(m, &refs);
        self.kinds[index]
            .patch(self.ns(index, key), key.name.clone(), patch)
            .await
    }

    async fn remove_finalizer(
        &self,
        index: usize,
        key: &ObjectKey,
        m: &ObjectMeta,
        finalizer: &str,
    ) -> Result<()> {
        let rest: Vec<&String> = m
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        // Guarded by the finalizers themselves: other fields may change meanwhile.
        let patch = Patch::Json(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": m.finalizers.clone().unwrap_or_default()},
            {"op": "replace", "path": "/metadata/finalizers", "value": rest},
        ]));
        tracing::debug!(name = key.name, finalizer, "removing a finalizer");
        self.kinds[index]
            .patch(self.ns(index, key), key.name.clone(), patch)
            .await
    }

    async fn delete(
        &self,
        index: usize,
        key: &ObjectKey,
        m: &ObjectMeta,
        policy: PropagationPolicy,
    ) -> Result<()> {
        tracing::info!(kind = self.kinds[index].kind(), namespace = ?key.namespace, name = key.name, ?policy, "deleting a dependent whose owners are gone");
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(meta::uid(m).to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.kinds[index]
            .delete(self.ns(index, key), key.name.clone(), params)
            .await
    }

    /// Upstream's choice for a dependent whose owner waits for it: in the foreground when it
    /// has dependents of its own (so the wait reaches down), else in the background.
    fn policy_for(&self, m: &ObjectMeta, owner_waits: bool) -> PropagationPolicy {
        if owner_waits && !self.dependents(meta::uid(m)).is_empty() {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        }
    }

    /// An owner being deleted with `orphan`: free its dependents, then drop the finalizer.
    async fn orphan(&self, index: usize, key: &ObjectKey, m: &ObjectMeta) -> Result<()> {
        let uid = meta::uid(m);
        for (di, dk) in self.dependents(uid) {
            let ns = self.ns(di, &dk);
            if let Some(dm) = self.kinds[di].cached(ns, &dk.name) {
                self.drop_refs(di, &dk, &dm, &[uid]).await?;
            }
        }
        self.remove_finalizer(index, key, m, ORPHAN).await
    }

    /// An owner being deleted in the foreground: delete its dependents; once none that
    /// blocks it is left, drop the finalizer. Whether it is still waiting.
    async fn foreground(&self, index: usize, key: &ObjectKey, m: &ObjectMeta) -> Result<bool> {
        let uid = meta::uid(m);
        let mut blocking = 0;
        for (di, dk) in self.dependents(uid) {
            let ns = self.ns(di, &dk);
            let Some(dm) = self.kinds[di].cached(ns, &dk.name) else {
                continue;
            };
            let r = dm.owner_references.iter().flatten().find(|r| r.uid == uid);
            let blocks = r.is_some_and(|r| r.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if !meta::is_deleting(&dm) {
                let policy = self.policy_for(&dm, blocks);
                self.delete(di, &dk, &dm, policy).await?;
            }
        }
        if blocking == 0 {
            self.remove_finalizer(index, key, m, FOREGROUND).await?;
            return Ok(false);
        }
        Ok(true)
    }
}

enum OwnerState {
    Present,
    /// Being deleted in the foreground, waiting for its dependents.
    Waiting,
}

impl Reconcile for GarbageCollector {
    type Key = GcKey;
    const NAME: &'static str = "garbage-collector";

    async fn reconcile(&self, (index, key): &GcKey) -> Result<Option<Duration>> {
        let index = *index;
        let ns = self.ns(index, key);
        let Some(m) = self.kinds[index].cached(ns, &key.name) else {
            return Ok(None);
        };
        if meta::is_deleting(&m) {
            let finalizers = m.finalizers.clone().unwrap_or_default();
            if finalizers.iter().any(|f| f == ORPHAN) {
                self.orphan(index, key, &m).await?;
                return Ok(None);
            }
            if finalizers.iter().any(|f| f == FOREGROUND) {
                // Dependents' deletions queue this owner again; look anyway in a while.
                let waiting = self.foreground(index, key, &m).await?;
                return Ok(waiting.then_some(Duration::from_secs(5)));
            }
        }
        let refs = m.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(None);
        }
        let mut solid = 0;
        let mut waiting = Vec::new();
        let mut dangling = Vec::new();
        for r in &refs {
            match self.owner(key.namespace.as_deref(), r).await? {
                Some(OwnerState::Present) => solid += 1,
                Some(OwnerState::Waiting) => waiting.push(r.uid.as_str()),
                None => dangling.push(r.uid.as_str()),
            }
        }
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(None);
        }
        if solid > 0 {
            let gone: Vec<&str> = dangling.iter().chain(waiting.iter()).copied().collect();
            self.drop_refs(index, key, &m, &gone).await?;
        } else if !meta::is_deleting(&m) {
            let policy = self.policy_for(&m, !waiting.is_empty());
            self.delete(index, key, &m, policy).await?;
        }
        Ok(None)
    }
}
