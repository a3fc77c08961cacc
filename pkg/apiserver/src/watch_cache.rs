//! The watch cache: per resource, the current objects and a window of recent changes in
//! memory, kept up to date by ONE store watch, so that lists and watches — a thousand
//! informers — cost memory and a fan-out, not a store watch each. Each object is encoded once
//! when it changes; watchers and lists send those bytes as they are.
//!
//! Exactness of `resourceVersion` is kept: a consistent list first learns the store's
//! revision through a read barrier and waits until the cache has seen everything up to it;
//! a watch from a revision older than the window is served by the store instead (see
//! `watch.rs`); a list at an exact past revision or a continued list is read from the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use cairn_api::Resource;
use cairn_kv::pb::mvccpb::{Event, KeyValue, event::EventType};
use cairn_kv::{KeyRange, WatchEvent, WatchSpec};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::storage::{self, Storage};

/// How many recent changes each resource keeps for watches that resume.
const HISTORY: usize = 10_000;

/// How many changes a slow watcher may fall behind before it catches up from the history.
const FANOUT: usize = 1024;

/// How many objects a (re)load decodes at a time.
const RELOAD_PAGE: i64 = 500;

/// How long a consistent read waits for the cache before it is served by the store.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// One object as the cache holds it: encoded once, with what selectors look at.
#[derive(Debug)]
pub struct Entry {
    /// The object's JSON, with `kind`, `apiVersion` and `resourceVersion`.
    pub json: Bytes,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its selectable fields.
    pub fields: BTreeMap<String, String>,
}

impl Entry {
    /// Encodes an object of `resource` at `revision`.
    pub fn new(resource: &Resource, revision: i64, mut obj: Value) -> Entry {
        if let Some(o) = obj.as_object_mut() {
            o.insert("kind".into(), json!(resource.kind));
            o.insert("apiVersion".into(), json!(resource.api_version));
        }
        object::set_resource_version(&mut obj, revision);
        Entry {
            labels: object::labels(&obj),
            fields: cairn_api::fields::selectable_fields(resource, &obj),
            json: Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
        }
    }

    /// The object as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// A page of a list from the cache.
pub struct Page {
    /// The revision the page reflects.
    pub revision: i64,
    /// The objects.
    pub items: Vec<Arc<Entry>>,
    /// Where the next page starts (after the last key of this one), if there is more.
    pub next_key: Option<Vec<u8>>,
    /// How many selected objects follow this page.
    pub remaining: usize,
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted; the entry is its last state with the deletion's revision.
    Deleted,
}

/// One change, as watchers receive it.
#[derive(Debug)]
pub struct CacheEvent {
    /// The revision of the change.
    pub revision: i64,
    /// What happened.
    pub change: Change,
    /// The object after the change (its last state for a deletion).
    pub entry: Arc<Entry>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<Entry>>,
}

/// What a watcher subscribing receives.
pub enum Feed {
    /// The current objects at `revision`, then every change after it.
    Snapshot {
        /// The revision of the snapshot.
        revision: i64,
        /// The objects.
        objects: Vec<Arc<Entry>>,
        /// Changes after `revision`.
        live: broadcast::Receiver<Arc<CacheEvent>>,
    },
    /// The changes after a revision, from the history, then live.
    Resume {
        /// Changes already made after the revision asked for.
        past: Vec<Arc<CacheEvent>>,
        /// Changes after those.
        live: broadcast::Receiver<Arc<CacheEvent>>,
    },
    /// The revision is older than the cache's window.
    TooOld,
}

struct State {
    objects: BTreeMap<Vec<u8>, Arc<Entry>>,
    /// Everything up to this revision is in `objects`.
    revision: i64,
    history: VecDeque<Arc<CacheEvent>>,
    /// The history holds every change after this revision.
    history_from: i64,
    /// Where changes go to watchers; replaced (ending every watch) when the cache reloads.
    fanout: broadcast::Sender<Arc<CacheEvent>>,
}

impl State {
    fn empty() -> State {
        State {
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            history_from: 0,
            fanout: broadcast::channel(FANOUT).0,
        }
    }
}

/// One resource's cache.
pub struct Cache {
    resource: &'static Resource,
    state: Arc<RwLock<State>>,
    syncs: mpsc::Sender<(i64, oneshot::Sender<()>)>,
}

impl Cache {
    /// One page of the objects under `prefix` (a namespace, or all) that `select` selects, at
    /// most `limit` (0: all), read at one revision.
    pub fn page(&self, prefix: &[u8], limit: usize, select: impl Fn(&Entry) -> bool) -> Page {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let end = cairn_kv::prefix_end(prefix);
        let mut items: Vec<Arc<Entry>> = Vec::new();
        let mut last_key: Option<&Vec<u8>> = None;
        let mut remaining = 0;
        for (key, entry) in state.objects.range(prefix.to_vec()..end) {
            if !select(entry) {
                continue;
            }
            if limit == 0 || items.len() < limit {
                items.push(entry.clone());
                last_key = Some(key);
            } else {
                remaining += 1;
            }
        }
        let next_key = last_key.filter(|_| remaining > 0).map(|k| {
            let mut k = k.clone();
            k.push(0);
            k
        });
        Page {
            revision: state.revision,
            items,
            next_key,
            remaining,
        }
    }

    /// Subscribes a watcher: from now with the current objects (`after` None), or after a
    /// revision.
    pub fn subscribe(&self, after: Option<i64>, prefix: &[u8]) -> Feed {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let live = state.fanout.subscribe();
        match after {
            None => {
                let end = cairn_kv::prefix_end(prefix);
                Feed::Snapshot {
                    revision: state.revision,
                    objects: state
                        .objects
                        .range(prefix.to_vec()..end)
                        .map(|(_, e)| e.clone())
                        .collect(),
                    live,
                }
            }
            Some(rev) if rev >= state.history_from => Feed::Resume {
                past: state
                    .history
                    .iter()
                    .filter(|e| e.revision > rev)
                    .cloned()
                    .collect(),
                live,
            },
            Some(_) => Feed::TooOld,
        }
    }

    /// The changes after `revision` still in the history (for a watcher that fell behind);
    /// `None` if they are gone.
    pub fn since(&self, revision: i64) -> Option<Vec<Arc<CacheEvent>>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        (revision >= state.history_from).then(|| {
            state
                .history
                .iter()
                .filter(|e| e.revision > revision)
                .cloned()
                .collect()
        })
    }

    /// The revision the cache is current to.
    pub fn revision(&self) -> i64 {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .revision
    }

    /// Waits until the cache holds every change up to `revision`.
    pub async fn sync(&self, revision: i64) -> ApiResult<()> {
        if self.revision() >= revision {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.syncs
            .send((revision, tx))
            .await
            .map_err(|_| ApiError::internal("the watch cache stopped"))?;
        match tokio::time::timeout(SYNC_TIMEOUT, rx).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ApiError::timeout(format!(
                "the {} cache did not reach revision {revision} in time",
                self.resource.plural
            ))),
        }
    }
}

/// A cache that starts once, by whichever request needs it first.
type Slot = Arc<tokio::sync::OnceCell<Arc<Cache>>>;

/// Every resource's cache, each started on first use.
pub struct Caches {
    storage: Storage,
    caches: Mutex<HashMap<(&'static str, &'static str), Slot>>,
}

impl Caches {
    /// No caches yet.
    pub fn new(storage: Storage) -> Caches {
        Caches {
            storage,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// The cache of `resource`, started (with a full list) if it is not running.
    pub async fn get(&self, resource: &'static Resource) -> ApiResult<Arc<Cache>> {
        let cell = self
            .caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((resource.group, resource.plural))
            .or_default()
            .clone();
        cell.get_or_try_init(|| start(self.storage.clone(), resource))
            .await
            .cloned()
    }
}

/// Lists the resource, then follows its store watch in a task.
async fn start(storage: Storage, resource: &'static Resource) -> ApiResult<Arc<Cache>> {
    let (syncs_tx, syncs_rx) = mpsc::channel(64);
    let cache = Arc::new(Cache {
        resource,
        state: Arc::new(RwLock::new(State::empty())),
        syncs: syncs_tx,
    });
    let follower = Follower {
        storage,
        resource,
        state: cache.state.clone(),
        pending: Vec::new(),
    };
    let watch = follower.reload().await?;
    tokio::spawn(follower.run(watch, syncs_rx));
    Ok(cache)
}

type StoreFeed = (cairn_kv::Watcher, mpsc::Receiver<((), WatchEvent)>);

/// The task that keeps one cache current.
struct Follower {
    storage: Storage,
    resource: &'static Resource,
    state: Arc<RwLock<State>>,
    pending: Vec<(i64, oneshot::Sender<()>)>,
}

impl Follower {
    /// Reads every object and starts the store watch after that revision.
    /// Reads the objects page by page at one revision, so that only a page is ever decoded
    /// at a time, then starts the store watch after that revision.
    async fn reload(&self) -> ApiResult<StoreFeed> {
        let prefix = storage::prefix(self.resource, None);
        let mut objects = BTreeMap::new();
        let mut start = None;
        let mut revision = 0;
        loop {
            let page = self
                .storage
                .list(self.resource, None, start, revision, RELOAD_PAGE)
                .await?;
            revision = page.revision;
            for obj in page.items {
                let key = storage::key(
                    self.resource,
                    object::namespace(&obj),
                    object::name(&obj).unwrap_or_default(),
                );
                let rev = object::resource_version(&obj).unwrap_or(0);
                objects.insert(key, Arc::new(Entry::new(self.resource, rev, obj)));
            }
            match page.next_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let watcher = self.storage.store().watch(
            WatchSpec {
                range: KeyRange::new(&prefix, &cairn_kv::prefix_end(&prefix)),
                start_revision: revision + 1,
                prev_kv: true,
                no_put: false,
                no_delete: false,
            },
            (),
            tx,
        )?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        // A new fan-out: watchers of the old state end and resume from a revision.
        *state = State {
            objects,
            revision,
            history: VecDeque::new(),
            history_from: revision,
            fanout: broadcast::channel(FANOUT).0,
        };
        Ok((watcher, rx))
    }

    async fn run(
        mut self,
        mut watch: StoreFeed,
        mut syncs: mpsc::Receiver<(i64, oneshot::Sender<()>)>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        loop {
            tokio::select! {
                event = watch.1.recv() => match event {
                    Some(((), WatchEvent::Events(rev))) => self.apply(rev.revision, &rev.events),
                    Some(((), WatchEvent::Compacted { .. })) | None => {
                        // Fell behind compaction: start over from a fresh list.
                        match self.reload().await {
                            Ok(w) => watch = w,
                            Err(e) => {
                                tracing::warn!(resource = self.resource.plural, error = %e, "watch cache reload failed");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                },
                request = syncs.recv() => match request {
                    Some(r) => self.pending.push(r),
                    None => return,
                },
                _ = tick.tick(), if !self.pending.is_empty() => {}
            }
            self.answer_syncs(&mut watch);
        }
    }

    /// Answers the consistent reads waiting for a revision the store watch has passed: what
    /// it delivered up to then is in the channel, so draining it brings the cache there.
    fn answer_syncs(&mut self, watch: &mut StoreFeed) {
        if self.pending.is_empty() {
            return;
        }
        let synced = watch.0.synced();
        if self.pending.iter().any(|(r, _)| *r <= synced) {
            while let Ok(((), event)) = watch.1.try_recv() {
                if let WatchEvent::Events(rev) = event {
                    self.apply(rev.revision, &rev.events);
                }
            }
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.revision = state.revision.max(synced);
        }
        let current = self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .revision;
        for (_, tx) in self.pending.extract_if(.., |(r, _)| *r <= current) {
            let _ = tx.send(());
        }
    }

    /// Applies one revision's store events.
    fn apply(&self, revision: i64, events: &[Event]) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for e in events {
            let Some(kv) = &e.kv else { continue };
            let prev = state.objects.get(&kv.key).cloned();
            let (change, entry) = if e.r#type == EventType::Delete as i32 {
                let Some(last) = prev.clone().or_else(|| self.entry(e.prev_kv.as_ref())) else {
                    continue;
                };
                state.objects.remove(&kv.key);
                let mut obj = last.value();
                object::set_resource_version(&mut obj, revision);
                (
                    Change::Deleted,
                    Arc::new(Entry::new(self.resource, revision, obj)),
                )
            } else {
                let Some(entry) = self.entry(Some(kv)) else {
                    continue;
                };
                state.objects.insert(kv.key.clone(), entry.clone());
                let change = if prev.is_some() {
                    Change::Modified
                } else {
                    Change::Added
                };
                (change, entry)
            };
            let event = Arc::new(CacheEvent {
                revision,
                change,
                entry,
                prev,
            });
            state.history.push_back(event.clone());
            while state.history.len() > HISTORY {
                if let Some(old) = state.history.pop_front() {
                    state.history_from = old.revision;
                }
            }
            let _ = state.fanout.send(event);
        }
        state.revision = state.revision.max(revision);
    }

    fn entry(&self, kv: Option<&KeyValue>) -> Option<Arc<Entry>> {
        let kv = kv?;
        let obj = storage::decode(self.resource, kv).ok()?;
        Some(Arc::new(Entry::new(self.resource, kv.mod_revision, obj)))
    }
}
