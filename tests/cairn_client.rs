//! cairn-client, cairn's own API client, against a real cairn server: typed CRUD and the
//! error helpers, patches of every kind, subresources, the reflector following changes and
//! relisting after compaction, and leader election on a Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use cairn_client::{
    Api, Client, Config, DeleteParams, Deleted, Event, LeaderElectionConfig, LeaderElector,
    ListParams, Patch, Store, WatchEvent, WatchParams, reflector, watch_list,
};
use cairn_tests::{OutputExt, Server, ServerOpts, etcdctl};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, ConfigMap, ObjectReference, Pod};
use tokio_util::sync::CancellationToken;

fn client(server: &Server) -> Result<Client> {
    let config = Config::from_kubeconfig(server.kubeconfig())?.with_field_manager("cairn-test");
    Ok(Client::new(config)?)
}

fn config_map(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cm.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    cm
}

fn data(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref()?.get(key).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_crud_with_the_error_helpers() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server)?, "default");

    let created = api
        .create(&config_map("one", &[("app", "a")], &[("k", "v")]))
        .await?;
    ensure!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    ensure!(managers == ["cairn-test"], "{managers:?}");

    let again = api.create(&config_map("one", &[], &[])).await.unwrap_err();
    ensure!(
        again.is_already_exists() && !again.is_conflict(),
        "{again:?}"
    );
    let missing = api.get("nope").await.unwrap_err();
    ensure!(missing.is_not_found(), "{missing:?}");
    ensure!(api.get_opt("nope").await?.is_none());

    let mut changed = api.get("one").await?;
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api.replace("one", &changed).await?;
    ensure!(data(&replaced, "k").as_deref() == Some("w"));
    // `changed` still carries the old resourceVersion.
    let stale = api.replace("one", &changed).await.unwrap_err();
    ensure!(
        stale.is_conflict() && !stale.is_already_exists(),
        "{stale:?}"
    );

    for name in ["two", "three"] {
        api.create(&config_map(name, &[("app", "a")], &[])).await?;
    }
    api.create(&config_map("other", &[("app", "b")], &[]))
        .await?;
    let selected = api.list(&ListParams::default().labels("app=a")).await?;
    let mut names: Vec<_> = selected
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    ensure!(names == ["one", "three", "two"], "{names:?}");
    ensure!(selected.metadata.resource_version.is_some());
    let page = api
        .list(&ListParams::default().labels("app in (a,b)").limit(2))
        .await?;
    ensure!(page.items.len() == 2);
    let token = page
        .metadata
        .continue_
        .clone()
        .context("no continue token")?;
    let rest = api
        .list(&ListParams {
            continue_token: Some(token),
            ..ListParams::default().labels("app in (a,b)").limit(2)
        })
        .await?;
    ensure!(rest.items.len() == 2 && rest.metadata.continue_.is_none_or(|c| c.is_empty()));

    let deleted = api.delete("other", &DeleteParams::default()).await?;
    ensure!(
        matches!(&deleted, Deleted::Object(cm) if cm.metadata.name.as_deref() == Some("other"))
            || matches!(&deleted, Deleted::Status(s) if s.code < 300),
        "{deleted:?}"
    );
    ensure!(api.get("other").await.unwrap_err().is_not_found());
    let gone = api
        .delete("other", &DeleteParams::default())
        .await
        .unwrap_err();
    ensure!(gone.is_not_found(), "{gone:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_of_every_kind_and_subresources() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let client = client(&server)?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&config_map("p", &[], &[("a", "1")])).await?;

    let merged = api
        .patch("p", &Patch::Merge(serde_json::json!({"data": {"b": "2"}})))
        .await?;
    ensure!(
        data(&merged, "a").as_deref() == Some("1") && data(&merged, "b").as_deref() == Some("2")
    );
    let strategic = api
        .patch(
            "p",
            &Patch::Strategic(serde_json::json!({"metadata": {"labels": {"s": "x"}}})),
        )
        .await?;
    ensure!(
        strategic
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l["s"] == "x")
    );
    let json = api
        .patch(
            "p",
            &Patch::Json(serde_json::json!([{"op": "remove", "path": "/data/a"}])),
        )
        .await?;
    ensure!(data(&json, "a").is_none() && data(&json, "b").is_some());
    let applied = api
        .patch(
            "p",
            &Patch::Apply {
                manager: "applier".into(),
                force: true,
                body: serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "p"}, "data": {"c": "3"}}),
            },
        )
        .await?;
    ensure!(data(&applied, "c").as_deref() == Some("3"));
    ensure!(
        applied
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("applier")
                && m.operation.as_deref() == Some("Apply"))
    );

    // A pod: status through /status, then bound to a node through pods/binding.
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))?;
    pods.create(&pod).await?;
    let patched = pods
        .patch_status(
            "pod",
            &Patch::Merge(serde_json::json!({"status": {"message": "hello"}})),
        )
        .await?;
    ensure!(patched.status.as_ref().and_then(|s| s.message.as_deref()) == Some("hello"));
    let mut current = patched.clone();
    current.status.as_mut().context("no status")?.message = Some("again".into());
    let replaced = pods.replace_status("pod", &current).await?;
    ensure!(replaced.status.as_ref().and_then(|s| s.message.as_deref()) == Some("again"));

    let mut binding = Binding::default();
    binding.metadata.name = Some("pod".into());
    binding.target = ObjectReference {
        kind: Some("Node".into()),
        name: Some("node-1".into()),
        ..ObjectReference::default()
    };
    let _: serde_json::Value = pods.create_subresource("pod", "binding", &binding).await?;
    let bound = pods.get("pod").await?;
    ensure!(bound.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-1"));
    let twice = pods
        .create_subresource::<_, serde_json::Value>("pod", "binding", &binding)
        .await
        .unwrap_err();
    ensure!(twice.is_conflict(), "{twice:?}");

    let eviction = serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "pod", "namespace": "default"}});
    let _: serde_json::Value = pods
        .create_subresource("pod", "eviction", &eviction)
        .await?;
    let after = pods.get_opt("pod").await?;
    ensure!(
        after.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
        "the evicted pod is neither gone nor terminating"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_watch_sees_changes_in_order() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server)?, "default");
    let start = api.list(&ListParams::default()).await?;
    let rv = start.metadata.resource_version.unwrap_or_default();
    let mut stream = api.watch(&WatchParams::default(), &rv).await?;
    api.create(&config_map("w", &[], &[("k", "1")])).await?;
    api.patch("w", &Patch::Merge(serde_json::json!({"data": {"k": "2"}})))
        .await?;
    api.delete("w", &DeleteParams::default()).await?;
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await? {
            Some(Ok(WatchEvent::Added(_))) => kinds.push("ADDED"),
            Some(Ok(WatchEvent::Modified(cm))) => {
                ensure!(data(&cm, "k").as_deref() == Some("2"));
                kinds.push("MODIFIED")
            }
            Some(Ok(WatchEvent::Deleted(_))) => kinds.push("DELETED"),
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => bail!("unexpected {other:?}"),
        }
    }
    ensure!(kinds == ["ADDED", "MODIFIED", "DELETED"], "{kinds:?}");
    Ok(())
}

/// Polls `check` for up to 20 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Result<()> {
    for _ in 0..200 {
        if check() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting until {what}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reflector_keeps_a_store_current() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server)?, "default");
    api.create(&config_map("before", &[("r", "y")], &[]))
        .await?;
    api.create(&config_map("unselected", &[("r", "n")], &[]))
        .await?;

    let store = Store::<ConfigMap>::new();
    let events = watch_list(api.clone(), WatchParams::default().labels("r=y"));
    let task = tokio::spawn(reflector(store.clone(), events).for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), store.wait_ready()).await?;
    ensure!(store.len() == 1 && store.get(Some("default"), "before").is_some());

    api.create(&config_map("after", &[("r", "y")], &[("k", "1")]))
        .await?;
    eventually("the store sees the create", || {
        store.get(Some("default"), "after").is_some()
    })
    .await?;
    api.patch(
        "after",
        &Patch::Merge(serde_json::json!({"data": {"k": "2"}})),
    )
    .await?;
    eventually("the store sees the update", || {
        store
            .get(Some("default"), "after")
            .is_some_and(|cm| data(&cm, "k").as_deref() == Some("2"))
    })
    .await?;
    api.delete("before", &DeleteParams::default()).await?;
    eventually("the store sees the delete", || {
        store.get(Some("default"), "before").is_none()
    })
    .await?;
    // Moving out of the selection is a delete too.
    api.patch(
        "after",
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"r": "n"}}})),
    )
    .await?;
    eventually("the store sees the object leave the selection", || {
        store.is_empty()
    })
    .await?;
    task.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reflector_relists_after_compaction() -> Result<()> {
    let mut server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server)?, "default");
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let stream = watch_list(api.clone(), WatchParams::default().labels("r=y"));
    let task = tokio::spawn(stream.for_each(move |event| {
        let _ = tx.send(event);
        async {}
    }));
    let next = async |events: &mut tokio::sync::mpsc::UnboundedReceiver<Event<ConfigMap>>| {
        tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .context("no event in time")?
            .context("the reflector stopped")
    };
    ensure!(matches!(next(&mut events).await?, Event::Init(items) if items.is_empty()));
    api.create(&config_map("kept", &[("r", "y")], &[])).await?;
    ensure!(matches!(next(&mut events).await?, Event::Applied(_)));

    // Revisions the reflector does not see (outside its selection), then compaction past the
    // last one it saw. Its running watch is not affected; a new watch from there is expired.
    let mut last = None;
    for i in 0..5 {
        last = Some(api.create(&config_map(&format!("x{i}"), &[], &[])).await?);
    }
    let revision = last
        .and_then(|cm| cm.metadata.resource_version)
        .context("no revision")?;
    etcdctl(&server.endpoint(), &["compact", &revision])?.expect_success()?;
    // A restart breaks the watch and empties the server's watch cache, so the reflector's
    // watch from its last revision gets 410 Expired and it lists again.
    server.restart().await?;
    match next(&mut events).await? {
        Event::Init(items) => {
            let names: Vec<_> = items
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect();
            ensure!(names == ["kept"], "{names:?}");
        }
        other => bail!("expected a relist, got {other:?}"),
    }
    // And it watches again.
    api.create(&config_map("later", &[("r", "y")], &[])).await?;
    match next(&mut events).await? {
        Event::Applied(cm) => ensure!(cm.metadata.name.as_deref() == Some("later")),
        other => bail!("expected the new object, got {other:?}"),
    }
    task.abort();
    Ok(())
}

fn elector(server: &Server, identity: &str) -> Result<LeaderElector> {
    let config = LeaderElectionConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        // Stop renewing without a word, as a process that dies would.
        release_on_cancel: false,
        ..LeaderElectionConfig::new("default", "cairn-test", identity)
    };
    Ok(LeaderElector::new(client(server)?, config)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_leader_and_a_takeover_when_it_stops_renewing() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let (a, b) = (elector(&server, "a")?, elector(&server, "b")?);
    let (mut leading_a, mut leading_b) = (a.subscribe(), b.subscribe());
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let task_a = tokio::spawn(a.run(stop_a.clone()));
    let task_b = tokio::spawn(b.run(stop_b.clone()));

    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if *leading_a.borrow() || *leading_b.borrow() {
                return;
            }
            tokio::select! {
                _ = leading_a.changed() => {}
                _ = leading_b.changed() => {}
            }
        }
    })
    .await
    .context("nobody became leader")?;
    // For several lease durations, exactly one leads.
    for _ in 0..20 {
        let (a, b) = (*leading_a.borrow(), *leading_b.borrow());
        ensure!(a != b, "leading: a={a} b={b}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let (first, stop, task, mut follower, next) = if *leading_a.borrow() {
        (&mut leading_a, stop_a, task_a, leading_b, "b")
    } else {
        (&mut leading_b, stop_b, task_b, leading_a, "a")
    };
    let leases: Api<Lease> = Api::namespaced(client(&server)?, "default");
    let lease = leases.get("cairn-test").await?;
    let spec = lease.spec.context("no lease spec")?;
    ensure!(
        spec.holder_identity.as_deref() != Some(next) && spec.lease_duration_seconds == Some(3)
    );

    stop.cancel();
    task.await?;
    ensure!(!*first.borrow());
    tokio::time::timeout(Duration::from_secs(10), follower.wait_for(|l| *l))
        .await
        .context("the follower did not take over")??;
    let spec = leases
        .get("cairn-test")
        .await?
        .spec
        .context("no lease spec")?;
    ensure!(spec.holder_identity.as_deref() == Some(next), "{spec:?}");
    ensure!(spec.lease_transitions == Some(1), "{spec:?}");
    Ok(())
}
