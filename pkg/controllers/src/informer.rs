//! Shared informers: one list-and-watch per resource for all controllers, a cache
//! ([`Store`]) kept current from it, and change handlers that controllers register to turn
//! changes into keys of their work queues.
//!
//! Handlers run on the informer's task right after the cache has been updated, so a key a
//! handler queues is reconciled against a cache that already holds the change. A relist
//! reports every listed object as added or updated and every vanished one as deleted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use cairn_client::{Api, Event, Object, ObjectKey, Store, WatchParams, watch_list};
use futures::StreamExt;
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio_util::sync::CancellationToken;

/// What changed in an informer's cache.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// A new object.
    Added(&'a K),
    /// An object changed (or was listed again).
    Updated {
        /// Its previous state.
        old: &'a K,
        /// Its state now.
        new: &'a K,
    },
    /// The object is gone; this is its last state.
    Deleted(&'a K),
}

impl<'a, K> Change<'a, K> {
    /// The object's state now, or its last state when deleted.
    pub fn object(&self) -> &'a K {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }

    /// The previous state, when there was one.
    pub fn old(&self) -> Option<&'a K> {
        match self {
            Change::Updated { old, .. } => Some(old),
            _ => None,
        }
    }
}

type Handler<K> = Arc<dyn Fn(Change<'_, K>) + Send + Sync>;

/// One resource's list-and-watch, cache and handlers. Cheap to clone.
pub struct Informer<K> {
    api: Api<K>,
    params: WatchParams,
    store: Store<K>,
    handlers: Arc<RwLock<Vec<Handler<K>>>>,
}

impl<K: Clone> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            api: self.api.clone(),
            params: self.params.clone(),
            store: self.store.clone(),
            handlers: self.handlers.clone(),
        }
    }
}

impl<K: Object + Metadata<Ty = ObjectMeta>> Informer<K> {
    /// An informer of everything `api` lists.
    pub fn new(api: Api<K>) -> Self {
        Informer {
            api,
            params: WatchParams::default(),
            store: Store::new(),
            handlers: Arc::default(),
        }
    }

    /// The cache.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Calls `handler` on every change from now on (register before [`Informer::run`]).
    pub fn on_change(&self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(handler));
    }

    /// Lists and watches until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut events = Box::pin(watch_list(self.api.clone(), self.params.clone()));
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            self.dispatch(event);
        }
    }

    fn dispatch(&self, event: Event<K>) {
        let handlers = self
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let call = |change: Change<'_, K>| {
            for handler in &handlers {
                handler(Change::clone_ref(&change));
            }
        };
        match &event {
            Event::Init(items) => {
                let before: HashMap<ObjectKey, Arc<K>> = self
                    .store
                    .list()
                    .into_iter()
                    .map(|o| (ObjectKey::of(o.metadata()), o))
                    .collect();
                self.store.apply(&event);
                let mut listed = HashSet::new();
                for item in items {
                    let key = ObjectKey::of(item.metadata());
                    match before.get(&key) {
                        Some(old) => call(Change::Updated { old, new: item }),
                        None => call(Change::Added(item)),
                    }
                    listed.insert(key);
                }
                for (key, old) in &before {
                    if !listed.contains(key) {
                        call(Change::Deleted(old));
                    }
                }
            }
            Event::Applied(object) => {
                let key = ObjectKey::of(object.metadata());
                let old = self.store.get(key.namespace.as_deref(), &key.name);
                self.store.apply(&event);
                match &old {
                    Some(old) => call(Change::Updated { old, new: object }),
                    None => call(Change::Added(object)),
                }
            }
            Event::Deleted(object) => {
                self.store.apply(&event);
                call(Change::Deleted(object));
            }
        }
    }
}

impl<K> Change<'_, K> {
    fn clone_ref(&self) -> Change<'_, K> {
        match self {
            Change::Added(o) => Change::Added(o),
            Change::Updated { old, new } => Change::Updated { old, new },
            Change::Deleted(o) => Change::Deleted(o),
        }
    }
}
