//! The etcd API against a real one-member store, driven by the `etcd-client` crate: what
//! etcdctl, client-go and kube-apiserver rely on, including etcd's error codes and messages.

use std::net::SocketAddr;
use std::time::Duration;

use cairn_etcd::EtcdServerConfig;
use cairn_kv::{Config, Member, Store};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, LeaseTimeToLiveOptions,
    PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
    WatchStream,
};
use tokio::sync::oneshot;
use tonic::Code;

/// A store serving the etcd API on an ephemeral loopback port.
struct Server {
    store: Store,
    client: Client,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    async fn start() -> Server {
        Server::start_with(EtcdServerConfig::default()).await
    }

    async fn start_with(mut config: EtcdServerConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.listen = addr;
        let peer_port = free_port();
        let member = Member {
            name: "m1".into(),
            peer_url: format!("http://127.0.0.1:{peer_port}"),
            client_url: format!("http://{addr}"),
            api_url: String::new(),
        };
        let store_config = Config::new(
            dir.path().join("db"),
            42,
            member,
            SocketAddr::from(([127, 0, 0, 1], peer_port)),
        );
        let store = Store::open(store_config).await.unwrap();
        store.bootstrap().await.unwrap();
        store
            .wait_for_leader(Duration::from_secs(10))
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(cairn_etcd::serve(
            store.clone(),
            listener,
            config,
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = Client::connect([format!("http://{addr}")], None)
            .await
            .unwrap();
        Server {
            store,
            client,
            addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// Shuts the server down; open watch and keep-alive streams must not hold it up.
    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("the server stops in time")
            .unwrap();
        self.store.shutdown().await;
    }
}

/// The gRPC status of a failed call.
fn status<T: std::fmt::Debug>(r: Result<T, etcd_client::Error>) -> (Code, String) {
    match r {
        Err(etcd_client::Error::GRpcStatus(s)) => (s.code(), s.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch response in time")
        .expect("the watch stream works")
        .expect("the watch stream is open")
}

fn keys(r: &etcd_client::GetResponse) -> Vec<&str> {
    r.kvs().iter().map(|kv| kv.key_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_and_range_options() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let first = c
        .put("a/1", "one", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.put("a/2", "two", None).await.unwrap();
    c.put("a/3", "three", None).await.unwrap();
    c.put("b/1", "other", None).await.unwrap();
    let prev = c
        .put("a/1", "uno", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(prev.prev_key().unwrap().value(), b"one");

    let r = c.get("a/1", None).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"uno");
    assert_eq!(r.kvs()[0].version(), 2);
    assert_eq!(r.kvs()[0].create_revision(), first);
    assert_eq!(r.header().unwrap().revision(), first + 4);

    let r = c
        .get("a/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(&r), ["a/1", "a/2", "a/3"]);
    assert_eq!(r.count(), 3);

    let r = c
        .get("a/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(keys(&r), ["a/1", "a/2"]);
    assert!(r.more());
    assert_eq!(r.count(), 3);

    let r = c
        .get("a/1", Some(GetOptions::new().with_revision(first)))
        .await
        .unwrap();
    assert_eq!(r.kvs()[0].value(), b"one");

    let r = c
        .get("a/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .unwrap();
    assert!(r.kvs().iter().all(|kv| kv.value().is_empty()));
    assert_eq!(r.kvs().len(), 3);

    let r = c
        .get(
            "a/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert!(r.kvs().is_empty());
    assert_eq!(r.count(), 3);

    let r = c
        .get(
            "a/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&r), ["a/3", "a/2", "a/1"]);

    let r = c
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(r.count(), 4);

    let d = c
        .delete(
            "a/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(d.deleted(), 3);
    assert_eq!(d.prev_kvs().len(), 3);
    assert_eq!(d.prev_kvs()[0].value(), b"uno");
    assert_eq!(
        c.get("a/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .count(),
        0
    );

    assert_eq!(
        status(c.put("", "x", None).await),
        (
            Code::InvalidArgument,
            "etcdserver: key is not provided".into()
        )
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_and_their_limits() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    c.put("k", "v1", None).await.unwrap();

    let txn = Txn::new()
        .when([Compare::value("k", CompareOp::Equal, "v1")])
        .and_then([TxnOp::put("k", "v2", None), TxnOp::get("k", None)])
        .or_else([TxnOp::get("k", None)]);
    let r = c.txn(txn).await.unwrap();
    assert!(r.succeeded());
    match &r.op_responses()[1] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"v2"),
        other => panic!("unexpected {other:?}"),
    }

    // kube-apiserver's create: the key must not exist.
    let txn = Txn::new()
        .when([Compare::mod_revision("k", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("k", "v3", None)])
        .or_else([TxnOp::get("k", None)]);
    let r = c.txn(txn).await.unwrap();
    assert!(!r.succeeded());
    match &r.op_responses()[0] {
        TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"v2"),
        other => panic!("unexpected {other:?}"),
    }

    let many: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("m{i}"), "x", None))
        .collect();
    assert_eq!(
        status(c.txn(Txn::new().and_then(many)).await),
        (
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request".into()
        )
    );
    let exactly: Vec<TxnOp> = (0..128)
        .map(|i| TxnOp::put(format!("m{i}"), "x", None))
        .collect();
    let r = c.txn(Txn::new().and_then(exactly)).await.unwrap();
    assert!(r.succeeded());

    let dup = Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]);
    assert_eq!(
        status(c.txn(dup).await),
        (
            Code::InvalidArgument,
            "etcdserver: duplicate key given in txn request".into()
        )
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_and_future_revisions() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let r1 = c
        .put("k", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.put("k", "2", None).await.unwrap();
    let r3 = c
        .put("k", "3", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.compact(r3, None).await.unwrap();

    assert_eq!(
        status(c.get("k", Some(GetOptions::new().with_revision(r1))).await),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted".into()
        )
    );
    assert_eq!(
        status(
            c.get("k", Some(GetOptions::new().with_revision(r3 + 100)))
                .await
        ),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision".into()
        )
    );
    assert_eq!(
        c.get("k", Some(GetOptions::new().with_revision(r3)))
            .await
            .unwrap()
            .kvs()[0]
            .value(),
        b"3"
    );
    // Compacting again at or below the compacted revision is refused the same way.
    assert_eq!(status(c.compact(r1, None).await).0, Code::OutOfRange);

    // A watch from a compacted revision is created, then canceled with the compacted revision.
    let mut w = c
        .watch("k", Some(WatchOptions::new().with_start_revision(r1)))
        .await
        .unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let canceled = next(&mut w).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), created.watch_id());
    assert_eq!(canceled.compact_revision(), r3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_keep_alive_and_revoke() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let lease = c.lease_grant(60, None).await.unwrap();
    assert_eq!(lease.ttl(), 60);
    let id = lease.id();
    c.put("l/1", "x", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    c.put("l/2", "y", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    assert_eq!(c.get("l/1", None).await.unwrap().kvs()[0].lease(), id);

    let (mut keeper, mut answers) = c.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((a.id(), a.ttl()), (id, 60));
    keeper.keep_alive().await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(a.ttl(), 60);

    let t = c
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(t.granted_ttl(), 60);
    assert!(t.ttl() > 55 && t.ttl() <= 60, "ttl {}", t.ttl());
    let mut attached = t.keys().to_vec();
    attached.sort();
    assert_eq!(attached, [b"l/1".to_vec(), b"l/2".to_vec()]);

    assert!(
        c.leases()
            .await
            .unwrap()
            .leases()
            .iter()
            .any(|l| l.id() == id)
    );

    c.lease_revoke(id).await.unwrap();
    assert_eq!(
        c.get("l/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .count(),
        0
    );
    assert_eq!(c.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
    assert_eq!(
        status(c.lease_revoke(id).await),
        (
            Code::NotFound,
            "etcdserver: requested lease not found".into()
        )
    );
    assert_eq!(
        status(
            c.put("k", "v", Some(PutOptions::new().with_lease(id)))
                .await
        ),
        (
            Code::NotFound,
            "etcdserver: requested lease not found".into()
        )
    );
    // Keeping an unknown lease alive answers TTL 0, as etcd does.
    keeper.keep_alive().await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(a.ttl(), 0);

    let granted = c
        .lease_grant(
            30,
            Some(etcd_client::LeaseGrantOptions::new().with_id(7777)),
        )
        .await
        .unwrap();
    assert_eq!(granted.id(), 7777);
    assert_eq!(
        status(
            c.lease_grant(
                30,
                Some(etcd_client::LeaseGrantOptions::new().with_id(7777))
            )
            .await
        ),
        (
            Code::FailedPrecondition,
            "etcdserver: lease already exists".into()
        )
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_deletes_its_keys() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let id = c.lease_grant(2, None).await.unwrap().id();
    c.put("ephemeral", "x", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    let mut w = c.watch("ephemeral", None).await.unwrap();
    assert!(next(&mut w).await.created());
    let deleted = next(&mut w).await;
    assert_eq!(deleted.events()[0].event_type(), EventType::Delete);
    assert_eq!(c.get("ephemeral", None).await.unwrap().count(), 0);
    assert_eq!(c.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_keys_prefixes_history_and_cancel() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let r1 = c
        .put("w/a", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.put("w/a", "2", None).await.unwrap();

    // From a past revision, with previous values.
    let mut past = c
        .watch(
            "w/a",
            Some(WatchOptions::new().with_start_revision(r1).with_prev_key()),
        )
        .await
        .unwrap();
    assert!(next(&mut past).await.created());
    let e1 = next(&mut past).await;
    assert_eq!(e1.events()[0].kv().unwrap().value(), b"1");
    assert!(e1.events()[0].prev_kv().is_none());
    let e2 = next(&mut past).await;
    assert_eq!(e2.events()[0].kv().unwrap().value(), b"2");
    assert_eq!(e2.events()[0].prev_kv().unwrap().value(), b"1");

    // A key and a prefix on one stream.
    let mut w = c.watch("w/b", None).await.unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let key_id = created.watch_id();
    w.watch("w/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let prefix_id = created.watch_id();
    assert_ne!(key_id, prefix_id);

    c.put("w/b", "x", None).await.unwrap();
    c.put("w/c", "y", None).await.unwrap();
    c.delete("w/b", None).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let r = next(&mut w).await;
        for e in r.events() {
            seen.push((
                r.watch_id(),
                e.event_type(),
                e.kv().unwrap().key_str().unwrap().to_owned(),
            ));
        }
    }
    let of = |id: i64| {
        seen.iter()
            .filter(|s| s.0 == id)
            .map(|s| (s.1, s.2.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(key_id),
        [(EventType::Put, "w/b"), (EventType::Delete, "w/b")]
    );
    assert_eq!(
        of(prefix_id),
        [
            (EventType::Put, "w/b"),
            (EventType::Put, "w/c"),
            (EventType::Delete, "w/b")
        ]
    );

    // A transaction's events arrive in one response.
    let txn = Txn::new().and_then([TxnOp::put("w/t1", "1", None), TxnOp::put("w/t2", "2", None)]);
    c.txn(txn).await.unwrap();
    let r = next(&mut w).await;
    assert_eq!(r.watch_id(), prefix_id);
    assert_eq!(r.events().len(), 2);

    // Cancel the prefix watch; the key watch goes on.
    w.cancel(prefix_id).await.unwrap();
    let r = next(&mut w).await;
    assert!(r.canceled());
    assert_eq!(r.watch_id(), prefix_id);
    c.put("w/c", "z", None).await.unwrap();
    c.put("w/b", "again", None).await.unwrap();
    let r = next(&mut w).await;
    assert_eq!(r.watch_id(), key_id);
    assert_eq!(r.events()[0].kv().unwrap().value(), b"again");

    // Filters.
    let mut nodelete = c
        .watch(
            "w/f",
            Some(WatchOptions::new().with_filters([etcd_client::WatchFilterType::NoDelete])),
        )
        .await
        .unwrap();
    assert!(next(&mut nodelete).await.created());
    c.delete("w/f", None).await.unwrap();
    c.put("w/f", "1", None).await.unwrap();
    c.delete("w/f", None).await.unwrap();
    c.put("w/f", "2", None).await.unwrap();
    assert_eq!(
        next(&mut nodelete).await.events()[0].kv().unwrap().value(),
        b"1"
    );
    assert_eq!(
        next(&mut nodelete).await.events()[0].kv().unwrap().value(),
        b"2"
    );

    // A client-chosen ID, and the same ID again.
    w.watch("w/x", Some(WatchOptions::new().with_watch_id(100)))
        .await
        .unwrap();
    let r = next(&mut w).await;
    assert!(r.created() && !r.canceled());
    assert_eq!(r.watch_id(), 100);
    w.watch("w/y", Some(WatchOptions::new().with_watch_id(100)))
        .await
        .unwrap();
    let r = next(&mut w).await;
    assert!(r.created() && r.canceled());
    assert_eq!(r.watch_id(), -1);
    assert_eq!(
        r.cancel_reason(),
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_requests_and_notifications() {
    let s = Server::start_with(EtcdServerConfig {
        progress_notify_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut c = s.client.clone();
    c.put("p/a", "1", None).await.unwrap();
    let mut w = c
        .watch("p/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let id = created.watch_id();
    let other = c
        .put("q", "elsewhere", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    w.request_progress().await.unwrap();
    let p = next(&mut w).await;
    assert!(p.events().is_empty() && !p.created() && !p.canceled());
    assert_eq!(p.watch_id(), -1);
    assert!(p.header().unwrap().revision() >= other);

    // An event, then a progress request: the event comes first, and the progress covers it.
    let rev = c
        .put("p/b", "2", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    w.request_progress().await.unwrap();
    let e = next(&mut w).await;
    assert_eq!(e.events()[0].kv().unwrap().mod_revision(), rev);
    let p = next(&mut w).await;
    assert!(p.events().is_empty());
    assert!(p.header().unwrap().revision() >= rev);

    // progress_notify: a quiet watch hears the revision every interval.
    let mut n = c
        .watch(
            "n/",
            Some(WatchOptions::new().with_prefix().with_progress_notify()),
        )
        .await
        .unwrap();
    let created = next(&mut n).await;
    let nid = created.watch_id();
    let later = c
        .put("elsewhere", "x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let p = next(&mut n).await;
    assert!(p.events().is_empty() && !p.canceled());
    assert_eq!(p.watch_id(), nid);
    assert!(p.header().unwrap().revision() >= created.header().unwrap().revision());
    let p = next(&mut n).await;
    assert_eq!(p.watch_id(), nid);
    assert!(p.header().unwrap().revision() >= later);
    let _ = id;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_events_arrive_in_order_while_progress_is_requested() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let mut w = c
        .watch("o/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(next(&mut w).await.created());
    let writer = {
        let mut c = c.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..300 {
                last = c
                    .put(format!("o/{}", i % 7), format!("{i}"), None)
                    .await
                    .unwrap()
                    .header()
                    .unwrap()
                    .revision();
            }
            last
        })
    };
    let mut highest_event = 0;
    let mut events = 0;
    let mut progresses = 0;
    let mut requests = 0;
    while events < 300 {
        if requests < 20 {
            w.request_progress().await.unwrap();
            requests += 1;
        }
        let r = next(&mut w).await;
        if r.events().is_empty() {
            let rev = r.header().unwrap().revision();
            assert!(
                rev >= highest_event,
                "progress {rev} after event {highest_event}"
            );
            progresses += 1;
        }
        for e in r.events() {
            let rev = e.kv().unwrap().mod_revision();
            assert!(rev > highest_event, "event {rev} after {highest_event}");
            highest_event = rev;
            events += 1;
        }
    }
    assert_eq!(highest_event, writer.await.unwrap());
    assert!(progresses > 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_and_cluster() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    c.put("k", "v", None).await.unwrap();

    let st = c.status().await.unwrap();
    assert_eq!(st.version(), "3.5.16");
    assert!(st.db_size() > 0);
    assert_eq!(st.leader(), s.store.id());
    assert_eq!(st.header().unwrap().member_id(), s.store.id());
    assert_eq!(st.header().unwrap().cluster_id(), 42);

    let members = c.member_list().await.unwrap();
    let m = &members.members()[0];
    assert_eq!(members.members().len(), 1);
    assert_eq!(
        (m.id(), m.name(), m.is_learner()),
        (s.store.id(), "m1", false)
    );
    assert_eq!(m.client_urls(), [format!("http://{}", s.addr)]);
    assert_eq!(
        status(c.member_remove(12345).await),
        (Code::NotFound, "etcdserver: member not found".into())
    );

    let mut snap = c.snapshot().await.unwrap();
    let mut bytes = 0;
    let mut last_remaining = u64::MAX;
    while let Some(chunk) = snap.message().await.unwrap() {
        bytes += chunk.blob().len();
        last_remaining = chunk.remaining_bytes();
    }
    assert!(bytes > 0);
    assert_eq!(last_remaining, 0);

    let h1 = c.hash_kv(0).await.unwrap();
    let h2 = c.hash_kv(0).await.unwrap();
    assert_eq!(h1.hash(), h2.hash());
    assert_eq!(h1.hash_revision(), s.store.revision());
    c.put("k", "changed", None).await.unwrap();
    assert_ne!(c.hash_kv(0).await.unwrap().hash(), h1.hash());
    assert_eq!(
        c.hash_kv(h1.hash_revision()).await.unwrap().hash(),
        h1.hash()
    );

    c.defragment().await.unwrap();
    let alarms = c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await
        .unwrap();
    assert!(alarms.alarms().is_empty());
    assert_eq!(status(c.move_leader(1).await).0, Code::Unimplemented);

    // The gRPC health service.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "etcdserverpb.KV"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_watch_stream_ends_cleanly() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    for _ in 0..5 {
        let mut w = c
            .watch("d/", Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap();
        assert!(next(&mut w).await.created());
        drop(w);
    }
    c.put("d/x", "still works", None).await.unwrap();
    let mut w = c
        .watch(
            "d/",
            Some(WatchOptions::new().with_prefix().with_start_revision(1)),
        )
        .await
        .unwrap();
    assert!(next(&mut w).await.created());
    assert_eq!(
        next(&mut w).await.events()[0].kv().unwrap().value(),
        b"still works"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_open_streams_with_unavailable() {
    let s = Server::start().await;
    let mut c = s.client.clone();
    let mut w = c
        .watch("s/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(next(&mut w).await.created());
    let id = c.lease_grant(60, None).await.unwrap().id();
    let (_keeper, _answers) = c.lease_keep_alive(id).await.unwrap();
    s.stop().await;
    match tokio::time::timeout(Duration::from_secs(5), w.message())
        .await
        .unwrap()
    {
        Err(etcd_client::Error::GRpcStatus(st)) => {
            assert_eq!(
                (st.code(), st.message()),
                (Code::Unavailable, "etcdserver: server stopped")
            )
        }
        other => panic!("expected the stream to end with a status, got {other:?}"),
    }
}

/// Runs etcdctl (API v3) against the server; `None` when etcdctl is not installed.
async fn etcdctl(addr: SocketAddr, args: &[&str]) -> Option<std::process::Output> {
    let mut command = std::process::Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=http://{addr}"))
        .arg("--dial-timeout=5s")
        .arg("--command-timeout=10s")
        .args(args);
    match tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running etcdctl: {e}"),
    }
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "etcdctl failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_basic_commands() {
    let s = Server::start().await;
    let a = s.addr;
    let Some(out) = etcdctl(a, &["put", "greeting", "hello"]).await else {
        eprintln!("etcdctl is not installed; skipped");
        return s.stop().await;
    };
    assert_eq!(stdout_of(&out).trim(), "OK");
    assert_eq!(
        stdout_of(
            &etcdctl(a, &["get", "greeting", "--print-value-only"])
                .await
                .unwrap()
        )
        .trim(),
        "hello"
    );
    // etcdctl 3.4 reports health on stderr.
    let health = etcdctl(a, &["endpoint", "health"]).await.unwrap();
    stdout_of(&health);
    assert!(String::from_utf8_lossy(&health.stderr).contains("is healthy"));
    // These dial one endpoint with the `:authority` "http://host:port", which the HTTP/2
    // server would refuse as malformed were it not rewritten on the way in.
    let status = stdout_of(&etcdctl(a, &["endpoint", "status"]).await.unwrap());
    assert!(status.contains(cairn_etcd::VERSION), "{status}");
    let hashkv = stdout_of(&etcdctl(a, &["endpoint", "hashkv"]).await.unwrap());
    assert!(hashkv.contains(&a.to_string()), "{hashkv}");
    assert!(stdout_of(&etcdctl(a, &["defrag"]).await.unwrap()).contains("Finished defragmenting"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.db");
    let saved = etcdctl(a, &["snapshot", "save", file.to_str().unwrap()])
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&saved.stdout).contains("Snapshot saved"),
        "{}\n{}",
        String::from_utf8_lossy(&saved.stdout),
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(file.metadata().unwrap().len() > 0);
    assert!(stdout_of(&etcdctl(a, &["member", "list"]).await.unwrap()).contains("m1"));
    assert!(
        stdout_of(&etcdctl(a, &["lease", "grant", "60"]).await.unwrap())
            .contains("granted with TTL(60s)")
    );
    assert!(
        stdout_of(&etcdctl(a, &["alarm", "list"]).await.unwrap())
            .trim()
            .is_empty()
    );

    let rev = s.store.revision();
    stdout_of(&etcdctl(a, &["compact", &rev.to_string()]).await.unwrap());
    let out = etcdctl(a, &["get", "greeting", &format!("--rev={}", rev - 1)])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("etcdserver: mvcc: required revision has been compacted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;
}
