//! Informer-like helpers: [`watch_list`] turns list + watch into one endless stream of
//! [`Event`]s that survives watch timeouts, dropped connections and compaction, and [`Store`]
//! is the shared cache a [`reflector`] keeps current from that stream.
//!
//! The behaviour follows client-go's reflector: the first list reads the server's cache
//! (`resourceVersion=0`), later ones read consistently; lists are paginated; the watch starts
//! at the list's resourceVersion with bookmarks on and a 5-minute `timeoutSeconds`, restarts
//! from the last resourceVersion seen (bookmarks included) when it ends, and a `410 Expired`
//! or a failure leads to a relist after a back-off of 100 ms doubling to 10 s.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{Api, Object};
use crate::error::{Error, Result};
use crate::params::{ListParams, WatchParams};
use crate::watch::{WatchEvent, WatchStream};

/// Page size of the lists.
const PAGE_SIZE: u32 = 500;
/// `timeoutSeconds` of each watch.
const WATCH_TIMEOUT_SECONDS: u32 = 300;

/// A change seen by [`watch_list`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// The complete set of objects after a (re)list: replaces everything known before.
    Init(Vec<K>),
    /// The object was created or changed.
    Applied(K),
    /// The object was deleted; this is its last state.
    Deleted(K),
}

/// Exponential back-off: 100 ms doubling to at most 10 s, reset after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// A back-off starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay to wait now; the following one is doubled.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts again from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Lists and watches `api` for the objects `params` selects, forever. Errors are logged and
/// retried, never returned; every relist yields an [`Event::Init`]. Bookmarks are always
/// asked for; each watch lasts `params.timeout_seconds` (default 5 minutes).
pub fn watch_list<K>(api: Api<K>, params: WatchParams) -> impl Stream<Item = Event<K>> + Send
where
    K: Object + Metadata<Ty = ObjectMeta>,
{
    let lister = Lister {
        api,
        params: WatchParams {
            allow_bookmarks: true,
            timeout_seconds: params.timeout_seconds.or(Some(WATCH_TIMEOUT_SECONDS)),
            ..params
        },
        resource_version: None,
        listed_once: false,
        watch: None,
        backoff: Backoff::default(),
    };
    futures::stream::unfold(lister, |mut lister| async move {
        let event = lister.next().await;
        Some((event, lister))
    })
}

struct Lister<K> {
    api: Api<K>,
    params: WatchParams,
    /// Where the next watch starts; `None` means a relist is due.
    resource_version: Option<String>,
    listed_once: bool,
    watch: Option<(WatchStream<K>, Instant)>,
    backoff: Backoff,
}

impl<K: Object + Metadata<Ty = ObjectMeta>> Lister<K> {
    async fn next(&mut self) -> Event<K> {
        loop {
            if let Some((stream, started)) = &mut self.watch {
                let started = *started;
                match stream.next().await {
                    Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                        self.seen(&object);
                        return Event::Applied(object);
                    }
                    Some(Ok(WatchEvent::Deleted(object))) => {
                        self.seen(&object);
                        return Event::Deleted(object);
                    }
                    Some(Ok(WatchEvent::Bookmark(bookmark))) => {
                        self.resource_version = Some(bookmark.metadata.resource_version);
                    }
                    Some(Ok(WatchEvent::Error(status))) => {
                        self.watch = None;
                        if status.code == 410 {
                            tracing::debug!(path = self.api.collection_path(), %status, "watch expired, relisting");
                        } else {
                            tracing::warn!(path = self.api.collection_path(), %status, "watch failed, relisting");
                            self.sleep().await;
                        }
                        self.resource_version = None;
                    }
                    Some(Err(error)) => {
                        self.watch = None;
                        tracing::warn!(path = self.api.collection_path(), error = %error_chain(&error), "watch broke, watching again");
                        self.sleep().await;
                    }
                    None => {
                        self.watch = None;
                        // A watch that ends at once again and again would spin: slow it down.
                        if started.elapsed() < Duration::from_secs(1) {
                            self.sleep().await;
                        }
                    }
                }
                continue;
            }
            match self.resource_version.clone() {
                None => match list_all(self.api.clone(), self.params.to_list(), self.listed_once)
                    .await
                {
                    Ok((items, resource_version)) => {
                        self.resource_version = Some(resource_version);
                        self.listed_once = true;
                        self.backoff.reset();
                        return Event::Init(items);
                    }
                    Err(error) => {
                        tracing::warn!(path = self.api.collection_path(), error = %error_chain(&error), "list failed");
                        self.sleep().await;
                    }
                },
                Some(resource_version) => {
                    match watch(self.api.clone(), self.params.clone(), resource_version).await {
                        Ok(stream) => self.watch = Some((stream, Instant::now())),
                        Err(error) if error.is_gone() => self.resource_version = None,
                        Err(error) => {
                            tracing::warn!(path = self.api.collection_path(), error = %error_chain(&error), "watch failed to start");
                            self.sleep().await;
                        }
                    }
                }
            }
        }
    }

    fn seen(&mut self, object: &K) {
        if let Some(rv) = &object.metadata().resource_version {
            self.resource_version = Some(rv.clone());
        }
        self.backoff.reset();
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.backoff.next_delay()).await;
    }
}

// These two own their arguments so that the futures do not borrow the `Lister` (whose watch
// stream is `Send` but not `Sync`).

/// Starts a watch.
async fn watch<K: Object>(
    api: Api<K>,
    params: WatchParams,
    resource_version: String,
) -> Result<WatchStream<K>> {
    api.watch(&params, &resource_version).await
}

/// All pages of a list, and the list's resourceVersion.
async fn list_all<K: Object>(
    api: Api<K>,
    params: ListParams,
    listed_once: bool,
) -> Result<(Vec<K>, String)> {
    let mut params = ListParams {
        limit: Some(PAGE_SIZE),
        // The first list may come from the server's cache; after that, read consistently so
        // that a relist never goes back in time.
        resource_version: (!listed_once).then(|| "0".to_string()),
        ..params
    };
    let mut items = Vec::new();
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                params.continue_token = Some(token);
                params.resource_version = None;
            }
            None => {
                let rv = page.metadata.resource_version.unwrap_or_default();
                return Ok((items, rv));
            }
        }
    }
}

fn error_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The key of an object in a [`Store`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `meta`.
    pub fn of(meta: &ObjectMeta) -> Self {
        ObjectKey {
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// A shared cache of objects keyed by namespace and name, kept current by a [`reflector`].
/// Cheap to clone; clones see the same objects.
#[derive(Debug)]
pub struct Store<K> {
    objects: Arc<RwLock<HashMap<ObjectKey, Arc<K>>>>,
    ready: watch::Sender<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            objects: self.objects.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: Metadata<Ty = ObjectMeta>> Default for Store<K> {
    fn default() -> Self {
        Store {
            objects: Arc::default(),
            ready: watch::Sender::new(false),
        }
    }
}

impl<K: Metadata<Ty = ObjectMeta>> Store<K> {
    /// An empty store, not ready until its first [`Event::Init`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event.
    pub fn apply(&self, event: &Event<K>)
    where
        K: Clone,
    {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Init(items) => {
                *objects = items
                    .iter()
                    .map(|o| (ObjectKey::of(o.metadata()), Arc::new(o.clone())))
                    .collect();
                drop(objects);
                self.ready.send_replace(true);
            }
            Event::Applied(object) => {
                objects.insert(ObjectKey::of(object.metadata()), Arc::new(object.clone()));
            }
            Event::Deleted(object) => {
                objects.remove(&ObjectKey::of(object.metadata()));
            }
        }
    }

    /// The object `namespace/name` (`None` namespace for cluster-scoped objects).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = ObjectKey {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        self.read().get(&key).cloned()
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether a first list has filled the store.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until a first list has filled the store.
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ObjectKey, Arc<K>>> {
        self.objects.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Passes `events` through, applying each to `store` first.
pub fn reflector<K, S>(store: Store<K>, events: S) -> impl Stream<Item = Event<K>>
where
    K: Metadata<Ty = ObjectMeta> + Clone,
    S: Stream<Item = Event<K>>,
{
    events.inspect(move |event| store.apply(event))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    #[test]
    fn backoff_doubles_to_ten_seconds_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    fn cm(namespace: &str, name: &str, value: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some(namespace.into());
        cm.metadata.name = Some(name.into());
        cm.data = Some([("k".to_string(), value.to_string())].into());
        cm
    }

    #[tokio::test]
    async fn the_store_follows_events() {
        let store = Store::<ConfigMap>::new();
        assert!(!store.is_ready());
        let events = futures::stream::iter([
            Event::Init(vec![cm("a", "x", "1"), cm("b", "x", "1")]),
            Event::Applied(cm("a", "x", "2")),
            Event::Applied(cm("a", "y", "1")),
            Event::Deleted(cm("b", "x", "1")),
        ]);
        let seen: Vec<_> = reflector(store.clone(), events).collect().await;
        assert_eq!(seen.len(), 4);
        store.wait_ready().await;
        assert_eq!(store.len(), 2);
        let x = store.get(Some("a"), "x").unwrap();
        assert_eq!(x.data.as_ref().unwrap()["k"], "2");
        assert!(store.get(Some("b"), "x").is_none());
        store.apply(&Event::Init(vec![cm("c", "z", "1")]));
        assert_eq!(store.len(), 1);
        assert!(store.get(Some("c"), "z").is_some());
    }
}
