//! The rows of the `api` benchmark and the load generators that run them against cairn's
//! Kubernetes API.
//!
//! Every row works on ConfigMaps or Pods in namespace `default`. A level's preload creates
//! `obj-NNNNNN` objects of both kinds and keeps each one's resourceVersion in a [`Store`], so that
//! update rows can send a full object with the right resourceVersion without reading it first
//! (one PUT per operation; a `409 Conflict` is retried after a GET and counted). Create rows make
//! `new-C-NNNNNN` objects and delete them afterwards (unmeasured), so the stored count stays at
//! the level's figure.
//!
//! Updates stamp the object with an annotation holding the send time (nanoseconds since this
//! process started), which watch rows read back from each event to measure propagation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::api_client::{ApiClient, Connection, WatchStream};
use crate::connections::Pool;
use crate::driver::{self, Measured};
use crate::procfs;
use crate::stats::Latencies;

/// Concurrent clients of the per-verb rows.
pub const CLIENTS: [usize; 3] = [1, 16, 128];
/// Writes per second while a watch row's watchers listen.
const WATCH_RATE: u64 = 100;
/// Writes per second of the open-loop mutating row (target: p99 < 25 ms on one node).
pub const MUTATING_RATE: u64 = 500;
/// Watchers of the idle-watchers row (target: < 50 MB of RSS added).
pub const IDLE_WATCHERS: usize = 1000;
/// Connections the idle watchers share, as HTTP/2 streams. hyper's server allows 200 concurrent
/// streams per connection by default, so 1000 need at least five.
pub const IDLE_WATCHER_CONNECTIONS: usize = 8;
/// Clients that preload and clean up (not measured).
const SETUP_CLIENTS: usize = 64;
/// How long a watcher waits for its next event before giving up on the rest.
const WATCH_EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often [`settled_rss`] samples.
const RSS_SAMPLE: Duration = Duration::from_secs(1);
/// RSS counts as settled when two samples differ by less than this.
const RSS_STABLE: u64 = 512 << 10;
/// The longest [`settled_rss`] waits.
const RSS_SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// Conflicts one update retries before it counts as failed.
const MAX_CONFLICTS: u32 = 10;
/// Size of a ConfigMap's one value, as the kv rows' values.
const VALUE_SIZE: usize = 256;
/// The annotation carrying an update's send time.
const STAMP: &str = "cairn-bench/stamp";
/// Page size of the list rows.
const PAGE: u32 = 500;

/// The two kinds of objects the rows use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// ConfigMaps with one 256-byte value.
    ConfigMaps,
    /// Pods with one container, never scheduled (no agent runs).
    Pods,
}

impl Resource {
    /// Both, in the order rows run.
    pub const ALL: [Resource; 2] = [Resource::ConfigMaps, Resource::Pods];

    /// The resource's plural name.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::ConfigMaps => "configmaps",
            Resource::Pods => "pods",
        }
    }

    /// The collection's path in namespace `default`.
    pub fn collection(self) -> String {
        format!("/api/v1/namespaces/default/{}", self.plural())
    }

    fn object_path(self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// The JSON of object `name`, stamped with `stamp`, with `resource_version` for an update.
    fn body(self, name: &str, resource_version: Option<&str>, stamp: u64) -> Vec<u8> {
        let mut metadata = json!({
            "name": name,
            "labels": {"app": "cairn-bench"},
            "annotations": {STAMP: stamp.to_string()},
        });
        if let Some(rv) = resource_version {
            metadata["resourceVersion"] = json!(rv);
        }
        let object = match self {
            Resource::ConfigMaps => json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {"value": value()},
            }),
            Resource::Pods => json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": metadata,
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
            }),
        };
        serde_json::to_vec(&object).expect("JSON values serialize")
    }
}

/// A ConfigMap value of [`VALUE_SIZE`] characters.
fn value() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| {
        "0123456789abcdef"
            .chars()
            .cycle()
            .take(VALUE_SIZE)
            .collect()
    })
}

/// Nanoseconds since the first call: the clock of update stamps and watch latencies.
fn now_nanos() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// POST new objects.
    Create,
    /// PUT a stored object with its current resourceVersion and a new stamp.
    Update,
    /// GET a random stored object.
    Get,
    /// GET the first page (`limit=500`) of the collection.
    List,
    /// `clients` watchers on the collection while one writer updates objects at [`WATCH_RATE`];
    /// latency from the update's send to each watcher's receipt, throughput in events delivered.
    Watch,
    /// GET the whole collection, no limit (target: 10,000 pods in < 1 s).
    ListAll,
    /// Creates and updates of ConfigMaps and Pods at [`MUTATING_RATE`], open loop, latency from
    /// the scheduled start (target: p99 < 25 ms).
    Mutating,
    /// [`IDLE_WATCHERS`] watches on pods left open: RSS added (target: < 50 MB).
    IdleWatchers,
}

/// One line of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The objects it works on.
    pub resource: Resource,
    /// What it does.
    pub workload: Workload,
    /// Concurrent clients (watchers for watch rows).
    pub clients: usize,
}

impl Row {
    /// Every row, in the order they run. The idle watchers come first, on the server as the
    /// preload left it: after a large list the server's RSS stays hundreds of MiB above its
    /// working set until later allocations make glibc give the freed memory back, which would
    /// be counted against the watchers (seen as a drop of 372 MiB while they opened).
    pub fn all() -> Vec<Row> {
        let mut rows = vec![Row {
            resource: Resource::Pods,
            workload: Workload::IdleWatchers,
            clients: IDLE_WATCHERS,
        }];
        for resource in Resource::ALL {
            for workload in [
                Workload::Create,
                Workload::Update,
                Workload::Get,
                Workload::List,
                Workload::Watch,
            ] {
                for clients in CLIENTS {
                    rows.push(Row {
                        resource,
                        workload,
                        clients,
                    });
                }
            }
            rows.push(Row {
                resource,
                workload: Workload::ListAll,
                clients: 1,
            });
        }
        rows.push(Row {
            resource: Resource::ConfigMaps,
            workload: Workload::Mutating,
            clients: 0,
        });
        rows
    }

    /// Name used by `--rows` and in the tables.
    pub fn name(&self) -> String {
        let r = self.resource.plural();
        let verb = match self.workload {
            Workload::Create => "create",
            Workload::Update => "update",
            Workload::Get => "get",
            Workload::List => "list",
            Workload::Watch => "watch",
            Workload::ListAll => return format!("{r}-list-all"),
            Workload::Mutating => return format!("mutating-{MUTATING_RATE}ps"),
            Workload::IdleWatchers => return format!("{r}-watchers-{IDLE_WATCHERS}"),
        };
        format!("{r}-{verb}-{}", self.clients)
    }

    /// Operations to run: all, or a tenth with `quick` (watchers are never cut).
    pub fn ops(&self, quick: bool) -> u64 {
        let full: u64 = match (self.workload, self.clients) {
            (Workload::Create | Workload::Update, 1) => 2_000,
            (Workload::Create | Workload::Update, _) => 10_000,
            (Workload::Get, 1) => 5_000,
            (Workload::Get, _) => 30_000,
            (Workload::List, 1) => 200,
            (Workload::List, _) => 1_000,
            (Workload::Watch, _) => 10 * WATCH_RATE,
            (Workload::ListAll, _) => 5,
            (Workload::Mutating, _) => 10 * MUTATING_RATE,
            (Workload::IdleWatchers, _) => return IDLE_WATCHERS as u64,
        };
        if quick { (full / 10).max(2) } else { full }
    }

    /// Connections the row's clients share.
    fn connections(&self) -> usize {
        match self.workload {
            Workload::IdleWatchers => IDLE_WATCHER_CONNECTIONS,
            Workload::ListAll => 1,
            Workload::Mutating => Pool::connections_for(SETUP_CLIENTS),
            _ => Pool::connections_for(self.clients),
        }
    }

    /// A short description of clients and connections for the report.
    pub fn shape(&self) -> String {
        let conns = self.connections();
        let c = |n: usize, what: &str| {
            format!(
                "{n} {what}{} / {conns} connection{}",
                plural(n),
                plural(conns)
            )
        };
        match self.workload {
            Workload::Watch => format!(
                "{}, 1 writer at {WATCH_RATE} updates/s",
                c(self.clients, "watcher")
            ),
            Workload::IdleWatchers => format!(
                "{IDLE_WATCHERS} watches as HTTP/2 streams over {conns} connections, one pod update delivered to all"
            ),
            Workload::Mutating => format!(
                "open loop at {MUTATING_RATE}/s over {conns} connections: create/update ConfigMap, create/update Pod in turn"
            ),
            Workload::ListAll => "1 client, full list as JSON, no limit".into(),
            Workload::List => format!("{}, limit={PAGE}", c(self.clients, "client")),
            _ => c(self.clients, "client"),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The preloaded objects of one resource and the resourceVersion each was last written at.
pub struct Store {
    resource: Resource,
    versions: Vec<Mutex<String>>,
}

impl Store {
    fn name(i: u64) -> String {
        format!("obj-{i:06}")
    }

    fn len(&self) -> u64 {
        self.versions.len() as u64
    }

    fn version(&self, i: u64) -> String {
        self.versions[i as usize]
            .lock()
            .expect("version lock")
            .clone()
    }

    fn set_version(&self, i: u64, rv: String) {
        *self.versions[i as usize].lock().expect("version lock") = rv;
    }
}

/// What the rows of one level share: the client, the preloaded objects and the server's PIDs.
pub struct Level {
    /// Opens connections to the server.
    pub client: ApiClient,
    configmaps: Arc<Store>,
    pods: Arc<Store>,
    /// The server processes, for the idle-watchers row's RSS.
    pub pids: Vec<u32>,
}

impl Level {
    fn store(&self, r: Resource) -> Arc<Store> {
        match r {
            Resource::ConfigMaps => self.configmaps.clone(),
            Resource::Pods => self.pods.clone(),
        }
    }

    /// Creates `objects` ConfigMaps and `objects` Pods; returns the level and the time taken.
    pub async fn preload(
        client: ApiClient,
        pids: Vec<u32>,
        objects: u64,
    ) -> Result<(Self, Duration)> {
        let started = Instant::now();
        let conns = client
            .connect_many(Pool::connections_for(SETUP_CLIENTS))
            .await?;
        let mut stores = Vec::new();
        for resource in Resource::ALL {
            let store = Arc::new(Store {
                resource,
                versions: (0..objects).map(|_| Mutex::new(String::new())).collect(),
            });
            let s = store.clone();
            let m = driver::closed_loop(handles(&conns, SETUP_CLIENTS), objects, move |c, i| {
                let s = s.clone();
                Box::pin(async move {
                    let name = Store::name(i);
                    let body = s.resource.body(&name, None, now_nanos());
                    let reply = c
                        .request(Method::POST, &s.resource.collection(), Some(body))
                        .await?;
                    s.set_version(i, resource_version(&reply.expect(StatusCode::CREATED)?)?);
                    Ok(0)
                })
            })
            .await?;
            ensure!(
                m.errors == 0,
                "{} of {objects} {} failed to preload (first error: {})",
                m.errors,
                resource.plural(),
                m.first_error.unwrap_or_default()
            );
            stores.push(store);
        }
        let pods = stores.pop().expect("two stores");
        let configmaps = stores.pop().expect("two stores");
        Ok((
            Level {
                client,
                configmaps,
                pods,
                pids,
            },
            started.elapsed(),
        ))
    }
}

/// What a row measured, and for the idle-watchers row the RSS its watchers added.
pub struct Outcome {
    /// Operations, latencies and errors.
    pub measured: Measured,
    /// RSS after opening the watchers minus RSS before, in bytes.
    pub rss_added: Option<i64>,
}

/// Runs `ops` operations of `row` on `level`.
pub async fn run(row: &Row, level: &Level, ops: u64) -> Result<Outcome> {
    let conns = level.client.connect_many(row.connections()).await?;
    let store = level.store(row.resource);
    let measured = match row.workload {
        Workload::Create => {
            let prefix = format!("new-{}", row.clients);
            let r = row.resource;
            let names = prefix.clone();
            let m = driver::closed_loop(handles(&conns, row.clients), ops, move |c, i| {
                let name = format!("{names}-{i:06}");
                Box::pin(async move {
                    let body = r.body(&name, None, now_nanos());
                    c.request(Method::POST, &r.collection(), Some(body))
                        .await?
                        .expect(StatusCode::CREATED)?;
                    Ok(0)
                })
            })
            .await;
            delete_all(&conns, r, &prefix, ops).await?;
            m?
        }
        Workload::Update => {
            // Operation i updates object (start + i) mod N: concurrent operations touch
            // distinct objects, and each row starts where the last one stopped.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let start = NEXT.fetch_add(ops, Ordering::Relaxed);
            driver::closed_loop(handles(&conns, row.clients), ops, move |c, i| {
                let store = store.clone();
                Box::pin(async move { update(&c, &store, (start + i) % store.len()).await })
            })
            .await?
        }
        Workload::Get => {
            driver::closed_loop(handles(&conns, row.clients), ops, move |c, _| {
                let path = store
                    .resource
                    .object_path(&Store::name(rand::random_range(0..store.len())));
                Box::pin(async move {
                    c.get(&path).await?;
                    Ok(0)
                })
            })
            .await?
        }
        Workload::List => {
            let path = format!("{}?limit={PAGE}", row.resource.collection());
            let expected = store.len().min(u64::from(PAGE));
            driver::closed_loop(handles(&conns, row.clients), ops, move |c, _| {
                let path = path.clone();
                Box::pin(async move {
                    let body = c.get(&path).await?;
                    // Counting items costs the client a parse; one list in a hundred checks.
                    if rand::random_range(0..100) == 0 {
                        ensure_items(&body, expected)?;
                    }
                    Ok(0)
                })
            })
            .await?
        }
        Workload::ListAll => {
            let path = row.resource.collection();
            ensure_items(&conns[0].get(&path).await?, store.len())?;
            driver::closed_loop(handles(&conns, 1), ops, move |c, _| {
                let path = path.clone();
                Box::pin(async move {
                    c.get(&path).await?;
                    Ok(0)
                })
            })
            .await?
        }
        Workload::Watch => {
            let writer = level.client.connect().await?;
            watch_fanout(&conns, writer, &store, row.clients, ops).await?
        }
        Workload::Mutating => {
            let stores = [
                level.store(Resource::ConfigMaps),
                level.store(Resource::Pods),
            ];
            let m = driver::open_loop(conns.clone(), MUTATING_RATE, ops, move |c, i| {
                // create ConfigMap, update ConfigMap, create Pod, update Pod, …
                let store = stores[(i / 2 % 2) as usize].clone();
                let n = i / 4;
                Box::pin(async move {
                    if i % 2 == 0 {
                        let name = format!("mut-{n:06}");
                        let body = store.resource.body(&name, None, now_nanos());
                        c.request(Method::POST, &store.resource.collection(), Some(body))
                            .await?
                            .expect(StatusCode::CREATED)?;
                        Ok(0)
                    } else {
                        update(&c, &store, n * 7919 % store.len()).await
                    }
                })
            })
            .await;
            let created = ops.div_ceil(4);
            for r in Resource::ALL {
                delete_all(&conns, r, "mut", created).await?;
            }
            m?
        }
        Workload::IdleWatchers => return idle_watchers(level, &conns, &store).await,
    };
    Ok(Outcome {
        measured,
        rss_added: None,
    })
}

/// `clients` handles spread over `conns`.
fn handles(conns: &[Connection], clients: usize) -> Vec<Connection> {
    (0..clients)
        .map(|c| conns[c % conns.len()].clone())
        .collect()
}

#[derive(Deserialize)]
struct Meta {
    metadata: MetaFields,
}

#[derive(Deserialize)]
struct MetaFields {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// `metadata.resourceVersion` of an object or a list.
fn resource_version(body: &[u8]) -> Result<String> {
    let meta: Meta = serde_json::from_slice(body).context("no metadata.resourceVersion")?;
    Ok(meta.metadata.resource_version)
}

/// Checks that a list holds `expected` items.
fn ensure_items(body: &[u8], expected: u64) -> Result<()> {
    #[derive(Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
    }
    let list: List = serde_json::from_slice(body).context("not a list")?;
    ensure!(
        list.items.len() as u64 == expected,
        "the list has {} items, {expected} expected",
        list.items.len()
    );
    Ok(())
}

/// Updates object `i` of `store` with a fresh stamp; yields the conflicts it retried.
async fn update(c: &Connection, store: &Store, i: u64) -> Result<u32> {
    let name = Store::name(i);
    let path = store.resource.object_path(&name);
    let mut rv = store.version(i);
    for conflicts in 0..=MAX_CONFLICTS {
        let body = store.resource.body(&name, Some(&rv), now_nanos());
        let reply = c.request(Method::PUT, &path, Some(body)).await?;
        if reply.status == StatusCode::CONFLICT {
            rv = resource_version(&c.get(&path).await?)?;
            continue;
        }
        store.set_version(i, resource_version(&reply.expect(StatusCode::OK)?)?);
        return Ok(conflicts);
    }
    bail!("{name}: gave up after {MAX_CONFLICTS} conflicts")
}

/// Deletes `PREFIX-NNNNNN` for NNNNNN below `count` (unmeasured clean-up after a create row).
async fn delete_all(conns: &[Connection], r: Resource, prefix: &str, count: u64) -> Result<()> {
    let prefix = prefix.to_owned();
    let m = driver::closed_loop(handles(conns, SETUP_CLIENTS), count, move |c, i| {
        let path = r.object_path(&format!("{prefix}-{i:06}"));
        Box::pin(async move {
            let reply = c.request(Method::DELETE, &path, None).await?;
            if !(reply.status.is_success() || reply.status == StatusCode::NOT_FOUND) {
                reply.expect(StatusCode::OK)?;
            }
            Ok(0)
        })
    })
    .await?;
    ensure!(
        m.errors == 0,
        "{} of {count} clean-up deletes of {} failed (first error: {})",
        m.errors,
        r.plural(),
        m.first_error.unwrap_or_default()
    );
    Ok(())
}

/// Opens a watch on `r` from the collection's current resourceVersion on each of `watchers`
/// streams (spread over `conns`).
async fn open_watches(
    conns: &[Connection],
    r: Resource,
    watchers: usize,
) -> Result<Vec<WatchStream>> {
    let rv = resource_version(&conns[0].get(&format!("{}?limit=1", r.collection())).await?)?;
    let path = format!("{}?watch=true&resourceVersion={rv}", r.collection());
    let opened = futures::future::join_all((0..watchers).map(|w| {
        let (c, path) = (conns[w % conns.len()].clone(), path.clone());
        async move { c.watch(&path).await }
    }))
    .await;
    opened.into_iter().collect()
}

/// Reads events until `expected` stamped ones arrived, the stream ends or none comes for
/// [`WATCH_EVENT_TIMEOUT`]; records the latency of each from its stamp.
async fn read_stamps(stream: &mut WatchStream, expected: u64) -> Latencies {
    let mut latencies = Latencies::default();
    while (latencies.len() as u64) < expected {
        let Ok(Ok(Some(line))) =
            tokio::time::timeout(WATCH_EVENT_TIMEOUT, stream.next_line()).await
        else {
            break;
        };
        let arrived = now_nanos();
        if let Some(sent) = stamp_of(&line) {
            latencies.record(Duration::from_nanos(arrived.saturating_sub(sent)));
        }
    }
    latencies
}

/// The stamp annotation of a watch event, found without parsing the whole event.
fn stamp_of(line: &[u8]) -> Option<u64> {
    let key = format!("\"{STAMP}\":\"");
    let at = line.windows(key.len()).position(|w| w == key.as_bytes())? + key.len();
    let digits = &line[at..];
    let end = digits.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// `watchers` watches on the store's collection over `conns`; one writer updates `writes`
/// objects at [`WATCH_RATE`] on its own connection. `ok` counts events delivered (writes ×
/// watchers when nothing is lost), `errors` the events and writes that went missing.
async fn watch_fanout(
    conns: &[Connection],
    writer: Connection,
    store: &Arc<Store>,
    watchers: usize,
    writes: u64,
) -> Result<Measured> {
    let streams = open_watches(conns, store.resource, watchers).await?;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_stamps(&mut s, writes).await }))
        .collect();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / WATCH_RATE as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed_writes = 0;
    let mut first_error = None;
    for i in 0..writes {
        tick.tick().await;
        if let Err(e) = update(&writer, store, i % store.len()).await {
            failed_writes += 1;
            first_error.get_or_insert(format!("{e:#}"));
        }
    }
    let mut latencies = Latencies::default();
    for reader in readers {
        latencies.merge(reader.await.context("watcher task panicked")?);
    }
    let ok = latencies.len() as u64;
    let expected = (writes - failed_writes) * watchers as u64;
    Ok(Measured {
        ok,
        errors: expected.saturating_sub(ok) + failed_writes,
        elapsed: started.elapsed(),
        latencies,
        first_error,
        ..Measured::default()
    })
}

/// Opens [`IDLE_WATCHERS`] watches on pods and reports the RSS they added; then checks they are
/// live by updating one pod and timing its event's arrival at every watcher.
async fn idle_watchers(level: &Level, conns: &[Connection], store: &Arc<Store>) -> Result<Outcome> {
    let row_started = Instant::now();
    // The first watch of a resource starts its watch cache (the objects in memory, shared by
    // every watch and list, and counted in the list rows); the row measures what the watchers
    // add on top of it.
    let _warm = open_watches(conns, store.resource, 1).await?;
    let before = settled_rss(&level.pids).await?;
    let started = Instant::now();
    let streams = open_watches(conns, store.resource, IDLE_WATCHERS).await?;
    let opened = started.elapsed();
    let after = settled_rss(&level.pids).await?;
    eprintln!(
        "  {IDLE_WATCHERS} watches opened in {:.2} s; RSS {} -> {} MiB",
        opened.as_secs_f64(),
        before >> 20,
        after >> 20
    );
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_stamps(&mut s, 1).await }))
        .collect();
    update(&conns[0], store, 0).await?;
    let mut latencies = Latencies::default();
    for reader in readers {
        latencies.merge(reader.await.context("watcher task panicked")?);
    }
    let ok = latencies.len() as u64;
    Ok(Outcome {
        measured: Measured {
            ok,
            errors: IDLE_WATCHERS as u64 - ok,
            elapsed: row_started.elapsed(),
            latencies,
            first_error: (ok < IDLE_WATCHERS as u64)
                .then(|| format!("{} watchers got no event", IDLE_WATCHERS as u64 - ok)),
            ..Measured::default()
        },
        rss_added: Some(after as i64 - before as i64),
    })
}

/// The server's RSS once it has stopped moving: memory freed by an earlier row (a large list)
/// goes back to the system over seconds, and would otherwise be counted against the watchers.
/// Samples every [`RSS_SAMPLE`] until two in a row differ by less than [`RSS_STABLE`], for at
/// most [`RSS_SETTLE_LIMIT`].
async fn settled_rss(pids: &[u32]) -> Result<u64> {
    let started = Instant::now();
    let mut last = procfs::total_rss(pids)?;
    loop {
        tokio::time::sleep(RSS_SAMPLE).await;
        let now = procfs::total_rss(pids)?;
        if now.abs_diff(last) < RSS_STABLE || started.elapsed() > RSS_SETTLE_LIMIT {
            return Ok(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_names_are_unique_and_parse_back() {
        let rows = Row::all();
        let mut names: Vec<_> = rows.iter().map(Row::name).collect();
        assert!(names.contains(&"pods-list-all".to_string()));
        assert!(names.contains(&"configmaps-watch-128".to_string()));
        assert!(names.contains(&"mutating-500ps".to_string()));
        assert!(names.contains(&"pods-watchers-1000".to_string()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len());
    }

    #[test]
    fn finds_the_stamp_in_an_event() {
        let body = Resource::Pods.body("p", Some("42"), 1234567);
        let event = format!(
            "{{\"type\":\"MODIFIED\",\"object\":{}}}",
            String::from_utf8(body).unwrap()
        );
        assert_eq!(stamp_of(event.as_bytes()), Some(1234567));
        assert_eq!(stamp_of(b"{\"type\":\"BOOKMARK\"}"), None);
    }

    #[test]
    fn bodies_are_the_objects_asked_for() {
        let cm: serde_json::Value =
            serde_json::from_slice(&Resource::ConfigMaps.body("a", None, 1)).unwrap();
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["data"]["value"].as_str().unwrap().len(), VALUE_SIZE);
        assert!(cm["metadata"].get("resourceVersion").is_none());
        let pod: serde_json::Value =
            serde_json::from_slice(&Resource::Pods.body("b", Some("7"), 2)).unwrap();
        assert_eq!(pod["metadata"]["resourceVersion"], "7");
        assert_eq!(pod["spec"]["containers"][0]["name"], "c");
    }
}
