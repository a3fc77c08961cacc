//! `watch`: a stream of `{"type": …, "object": …}` events for a resource's objects, from a
//! resourceVersion (strictly after it) or from now with the current objects first as ADDED
//! events; selectors turn objects moving in or out of the selection into ADDED and DELETED as
//! upstream does; BOOKMARK events when asked; an ERROR event with 410 Expired when the version
//! has been compacted; the stream ends after `timeoutSeconds`.
//!
//! Watches are fed by the resource's watch cache. Only a watch resuming from a revision older
//! than the cache's window gets its own store watch, converted into the same events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_kv::pb::mvccpb::event::EventType;
use cairn_kv::{KeyRange, WatchEvent, WatchSpec};
use http::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::call::Call;
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::negotiate::{self, Representation};
use crate::object;
use crate::response::{self, Body};
use crate::storage;
use crate::table;
use crate::watch_cache::{Cache, CacheEvent, Change, Entry, Feed};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);

/// The longest a watch runs without `timeoutSeconds`; upstream picks 30–60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What a watch delivers, decided before the stream starts.
struct Plan {
    /// Send the current objects first (resourceVersion unset or "0", or sendInitialEvents).
    initial: bool,
    /// Mark the end of the initial events with a bookmark.
    initial_end_bookmark: bool,
    /// Deliver changes after this revision (with `initial` false).
    after: i64,
    bookmarks: bool,
    timeout: Duration,
    representation: Representation,
}

fn plan(call: &Call<'_>) -> ApiResult<Plan> {
    let after = match call.query.get("resourceVersion") {
        None => 0,
        Some(v) => object::parse_resource_version(v).map_err(ApiError::bad_request)?,
    };
    let send_initial = call.query.get("sendInitialEvents").map(|v| v == "true");
    let timeout = match call.query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}")))?,
        ),
        None => DEFAULT_TIMEOUT,
    };
    Ok(Plan {
        initial: send_initial.unwrap_or(after == 0),
        initial_end_bookmark: send_initial == Some(true),
        after,
        bookmarks: call.query.flag("allowWatchBookmarks"),
        timeout,
        representation: negotiate::representation(&call.headers),
    })
}

/// Where a watch's changes come from.
enum Source {
    /// The watch cache's fan-out.
    Cache {
        cache: Arc<Cache>,
        live: broadcast::Receiver<Arc<CacheEvent>>,
        /// Changes read back from the history after falling behind.
        backlog: VecDeque<Arc<CacheEvent>>,
    },
    /// A store watch of its own, converted.
    Store {
        rx: mpsc::Receiver<Result<Arc<CacheEvent>, ApiError>>,
    },
}

/// The next thing a source yields.
enum Next {
    Event(Arc<CacheEvent>),
    Expired(ApiError),
    Closed,
}

impl Source {
    async fn next(&mut self, last: i64) -> Next {
        match self {
            Source::Cache {
                cache,
                live,
                backlog,
            } => loop {
                if let Some(e) = backlog.pop_front() {
                    return Next::Event(e);
                }
                match live.recv().await {
                    Ok(e) => return Next::Event(e),
                    // Fell behind the fan-out: catch up from the history. (Events of a
                    // revision that changed several objects and was partly sent before the
                    // lag are not resent; the API writes one object per revision.)
                    Err(broadcast::error::RecvError::Lagged(_)) => match cache.since(last) {
                        Some(past) => {
                            *live = live.resubscribe();
                            backlog.extend(past);
                        }
                        None => {
                            return Next::Expired(ApiError::expired(format!(
                                "too old resource version: {last} (the watcher fell behind)"
                            )));
                        }
                    },
                    Err(broadcast::error::RecvError::Closed) => return Next::Closed,
                }
            },
            Source::Store { rx } => match rx.recv().await {
                Some(Ok(e)) => Next::Event(e),
                Some(Err(e)) => Next::Expired(e),
                None => Next::Closed,
            },
        }
    }
}

/// `GET …?watch=true`.
pub async fn watch(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let plan = plan(call)?;
    let filter = Filter::from_query(call.resource, &call.query)?;
    let prefix = storage::prefix(call.resource, call.namespace());
    let cache = call.api.caches.get(call.resource).await?;
    let (initial, last, source) =
        match cache.subscribe((!plan.initial).then_some(plan.after), &prefix) {
            Feed::Snapshot {
                revision,
                objects,
                live,
            } => (
                objects,
                revision,
                cache_source(cache, live, VecDeque::new()),
            ),
            Feed::Resume { past, live } => (
                Vec::new(),
                plan.after,
                cache_source(cache, live, past.into()),
            ),
            Feed::TooOld => match store_source(call, &prefix, plan.after) {
                Ok(source) => (Vec::new(), plan.after, source),
                Err(e) if e.code == 410 => return Ok(expired_stream(e)),
                Err(e) => return Err(e),
            },
        };
    let content_type = match plan.representation {
        Representation::Table(v) => table::content_type(v),
        Representation::Object => "application/json".to_string(),
    };
    let (tx, resp) = response::stream(&content_type);
    let stream = Stream {
        _counted: call.api.metrics.watch_started(call.resource.plural),
        tx,
        filter,
        plan,
        resource: call.resource,
        include: table::include_object(&call.query),
        last,
    };
    tokio::spawn(stream.run(initial, source));
    Ok(resp)
}

fn cache_source(
    cache: Arc<Cache>,
    live: broadcast::Receiver<Arc<CacheEvent>>,
    backlog: VecDeque<Arc<CacheEvent>>,
) -> Source {
    Source::Cache {
        cache,
        live,
        backlog,
    }
}

/// A 200 whose stream is one ERROR event, as upstream reports a compacted resourceVersion.
fn expired_stream(e: ApiError) -> Response<Body> {
    let (tx, resp) = response::stream("application/json");
    tokio::spawn(async move {
        let _ = tx
            .send(line(&json!({"type": "ERROR", "object": e.status()})))
            .await;
    });
    resp
}

/// A store watch after `after`, converted into cache events by a task.
fn store_source(call: &Call<'_>, prefix: &[u8], after: i64) -> ApiResult<Source> {
    let resource = call.resource;
    let (feed_tx, mut feed_rx) = mpsc::channel(256);
    let spec = WatchSpec {
        range: KeyRange::new(prefix, &cairn_kv::prefix_end(prefix)),
        start_revision: after + 1,
        prev_kv: true,
        no_put: false,
        no_delete: false,
    };
    let watcher = match call.api.storage.store().watch(spec, (), feed_tx) {
        Ok(w) => w,
        Err(cairn_kv::Error::Compacted { compact_revision }) => {
            return Err(ApiError::expired(format!(
                "too old resource version: {after} ({compact_revision})"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(((), event)) = feed_rx.recv().await {
            let rev = match event {
                WatchEvent::Events(rev) => rev,
                WatchEvent::Compacted { compact_revision } => {
                    let e = ApiError::expired(format!(
                        "too old resource version: {after} ({compact_revision})"
                    ));
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            for e in &rev.events {
                let entry = |kv: &cairn_kv::pb::mvccpb::KeyValue, revision: i64| {
                    let mut obj = storage::decode(resource, kv).ok()?;
                    object::set_resource_version(&mut obj, revision);
                    Some(Arc::new(Entry::new(resource, revision, obj)))
                };
                let prev = e.prev_kv.as_ref().and_then(|kv| entry(kv, kv.mod_revision));
                let converted = if e.r#type == EventType::Delete as i32 {
                    e.prev_kv
                        .as_ref()
                        .and_then(|kv| entry(kv, rev.revision))
                        .map(|last| (Change::Deleted, last))
                } else {
                    e.kv.as_ref()
                        .and_then(|kv| entry(kv, kv.mod_revision))
                        .map(|now| {
                            let change = if prev.is_some() {
                                Change::Modified
                            } else {
                                Change::Added
                            };
                            (change, now)
                        })
                };
                let Some((change, entry)) = converted else {
                    continue;
                };
                let event = Arc::new(CacheEvent {
                    revision: rev.revision,
                    change,
                    entry,
                    prev,
                });
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Source::Store { rx })
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// One running watch stream.
struct Stream {
    _counted: crate::metrics::WatchGuard,
    tx: mpsc::Sender<Bytes>,
    filter: Filter,
    plan: Plan,
    resource: &'static cairn_api::Resource,
    include: cairn_api::printers::IncludeObject,
    /// The revision everything up to which has been sent.
    last: i64,
}

impl Stream {
    /// Sends an event about a cached object: its encoded bytes as they are, or a Table row.
    async fn send_entry(&self, kind: &str, entry: &Entry) -> bool {
        let bytes = match self.plan.representation {
            Representation::Table(version) => {
                let obj = entry.value();
                let t = table::of_resource(
                    self.resource,
                    version,
                    std::slice::from_ref(&obj),
                    None,
                    self.include,
                )
                .unwrap_or_else(|e| e.status());
                line(&json!({"type": kind, "object": t}))
            }
            Representation::Object => {
                let mut b = Vec::with_capacity(entry.json.len() + 32);
                b.extend_from_slice(b"{\"type\":\"");
                b.extend_from_slice(kind.as_bytes());
                b.extend_from_slice(b"\",\"object\":");
                b.extend_from_slice(&entry.json);
                b.extend_from_slice(b"}\n");
                Bytes::from(b)
            }
        };
        self.tx.send(bytes).await.is_ok()
    }

    async fn send(&self, kind: &str, obj: &Value) -> bool {
        self.tx
            .send(line(&json!({"type": kind, "object": obj})))
            .await
            .is_ok()
    }

    fn bookmark(&self, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": self.last.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version, "metadata": meta})
    }

    async fn run(mut self, initial: Vec<Arc<Entry>>, mut source: Source) {
        for entry in initial.iter().filter(|e| self.filter.matches_entry(e)) {
            if !self.send_entry("ADDED", entry).await {
                return;
            }
        }
        if self.plan.initial_end_bookmark && !self.send("BOOKMARK", &self.bookmark(true)).await {
            return;
        }
        let deadline = tokio::time::sleep(self.plan.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = ticker.tick(), if self.plan.bookmarks => {
                    if !self.send("BOOKMARK", &self.bookmark(false)).await {
                        return;
                    }
                }
                next = source.next(self.last) => match next {
                    Next::Event(e) => {
                        if !self.deliver(&e).await {
                            return;
                        }
                        self.last = e.revision;
                    }
                    Next::Expired(e) => {
                        let _ = self.send("ERROR", &e.status()).await;
                        return;
                    }
                    Next::Closed => return,
                },
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Sends one change as the watch event the selection makes of it.
    async fn deliver(&self, e: &CacheEvent) -> bool {
        let was = e
            .prev
            .as_ref()
            .is_some_and(|p| self.filter.matches_entry(p));
        let is = self.filter.matches_entry(&e.entry);
        let kind = match (e.change, was, is) {
            (Change::Deleted, true, _) => "DELETED",
            (Change::Deleted, false, _) => return true,
            (Change::Added, _, true) => "ADDED",
            (Change::Modified, true, true) => "MODIFIED",
            (Change::Modified, false, true) => "ADDED",
            (Change::Modified, true, false) => "DELETED",
            (_, _, false) => return true,
        };
        self.send_entry(kind, &e.entry).await
    }
}
