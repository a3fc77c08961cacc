//! `watch`: a stream of `{"type": …, "object": …}` events for a resource's objects, from a
//! resourceVersion (strictly after it) or from now with the current objects first as ADDED
//! events; selectors turn objects moving in or out of the selection into ADDED and DELETED as
//! upstream does; BOOKMARK events when asked; an ERROR event with 410 Expired when the version
//! has been compacted; the stream ends after `timeoutSeconds`.

use std::time::Duration;

use bytes::Bytes;
use cairn_kv::pb::mvccpb::{Event, event::EventType};
use cairn_kv::{KeyRange, WatchEvent, WatchSpec};
use http::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::call::Call;
use crate::error::{ApiError, ApiResult};
use crate::filter::Filter;
use crate::negotiate::{self, Representation};
use crate::object;
use crate::response::{self, Body};
use crate::storage;
use crate::table;

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
    /// Deliver changes after this revision (0: after the initial list).
    after: i64,
    bookmarks: bool,
    timeout: Duration,
    representation: Representation,
}

fn plan(call: &Call<'_>) -> ApiResult<Plan> {
    let rv = call.query.get("resourceVersion");
    let after = match rv {
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

/// `GET …?watch=true`.
pub async fn watch(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let plan = plan(call)?;
    let filter = Filter::from_query(call.resource, &call.query)?;
    let namespace = call.namespace().map(str::to_string);
    let storage = &call.api.storage;
    let prefix = storage::prefix(call.resource, namespace.as_deref());

    // The initial state, read at one revision; changes follow from the next.
    let mut initial = Vec::new();
    let mut after = plan.after;
    if plan.initial {
        let page = storage
            .list(call.resource, namespace.as_deref(), None, 0, 0)
            .await?;
        initial = page.items;
        after = page.revision;
    }
    let (feed_tx, feed_rx) = mpsc::channel(256);
    let spec = WatchSpec {
        range: KeyRange::new(&prefix, &cairn_kv::prefix_end(&prefix)),
        start_revision: after + 1,
        prev_kv: true,
        no_put: false,
        no_delete: false,
    };
    let watcher = match storage.store().watch(spec, (), feed_tx) {
        Ok(w) => Some(w),
        Err(cairn_kv::Error::Compacted { compact_revision }) => {
            let (tx, resp) = response::stream("application/json");
            let e = ApiError::expired(format!(
                "too old resource version: {after} ({compact_revision})"
            ));
            tokio::spawn(async move {
                let _ = tx
                    .send(line(&json!({"type": "ERROR", "object": e.status()})))
                    .await;
            });
            return Ok(resp);
        }
        Err(e) => return Err(e.into()),
    };
    let content_type = match plan.representation {
        Representation::Table(v) => table::content_type(v),
        Representation::Object => "application/json".to_string(),
    };
    let (tx, resp) = response::stream(&content_type);
    let stream = Stream {
        tx,
        filter,
        plan,
        resource: call.resource,
        include: table::include_object(&call.query),
        last: after,
    };
    tokio::spawn(stream.run(initial, feed_rx, watcher));
    Ok(resp)
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// One running watch stream.
struct Stream {
    tx: mpsc::Sender<Bytes>,
    filter: Filter,
    plan: Plan,
    resource: &'static cairn_api::Resource,
    include: cairn_api::printers::IncludeObject,
    /// The revision everything up to which has been sent.
    last: i64,
}

impl Stream {
    async fn send(&self, kind: &str, obj: &Value) -> bool {
        let object = match self.plan.representation {
            Representation::Table(version) if kind != "ERROR" && kind != "BOOKMARK" => {
                match table::of_resource(
                    self.resource,
                    version,
                    std::slice::from_ref(obj),
                    None,
                    self.include,
                ) {
                    Ok(t) => t,
                    Err(e) => e.status(),
                }
            }
            _ => obj.clone(),
        };
        self.tx
            .send(line(&json!({"type": kind, "object": object})))
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

    async fn run(
        mut self,
        initial: Vec<Value>,
        mut feed: mpsc::Receiver<((), WatchEvent)>,
        watcher: Option<cairn_kv::Watcher>,
    ) {
        let _watcher = watcher;
        for obj in initial
            .iter()
            .filter(|o| self.filter.matches(self.resource, o))
        {
            if !self
                .send("ADDED", &with_kind(self.resource, obj.clone()))
                .await
            {
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
                event = feed.recv() => match event {
                    Some(((), WatchEvent::Events(rev))) => {
                        for e in &rev.events {
                            if !self.deliver(e).await {
                                return;
                            }
                        }
                        self.last = rev.revision;
                    }
                    Some(((), WatchEvent::Compacted { compact_revision })) => {
                        let e = ApiError::expired(format!(
                            "too old resource version: {} ({compact_revision})", self.last
                        ));
                        let _ = self.send("ERROR", &e.status()).await;
                        return;
                    }
                    None => return,
                },
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Sends one store event as the watch event the selection makes of it.
    async fn deliver(&self, e: &Event) -> bool {
        let decode = |kv: &Option<cairn_kv::pb::mvccpb::KeyValue>| {
            kv.as_ref()
                .and_then(|kv| storage::decode(kv).ok())
                .map(|o| with_kind(self.resource, o))
        };
        let prev = decode(&e.prev_kv);
        let was = prev
            .as_ref()
            .is_some_and(|p| self.filter.matches(self.resource, p));
        if e.r#type == EventType::Delete as i32 {
            let (Some(mut obj), true) = (prev, was) else {
                return true;
            };
            let revision = e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            object::set_resource_version(&mut obj, revision);
            return self.send("DELETED", &obj).await;
        }
        let Some(obj) = decode(&e.kv) else {
            return true;
        };
        let is = self.filter.matches(self.resource, &obj);
        match (was, is) {
            (_, true) if prev.is_none() => self.send("ADDED", &obj).await,
            (true, true) => self.send("MODIFIED", &obj).await,
            (false, true) => self.send("ADDED", &obj).await,
            (true, false) => self.send("DELETED", &obj).await,
            (false, false) => true,
        }
    }
}

/// Objects in watch events carry their kind and apiVersion.
fn with_kind(resource: &cairn_api::Resource, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.entry("kind").or_insert_with(|| json!(resource.kind));
        o.entry("apiVersion")
            .or_insert_with(|| json!(resource.api_version));
    }
    obj
}
