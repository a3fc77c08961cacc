//! kube-rs, the Rust client, as a second independent client of cairn's API: typed CRUD with
//! the errors it maps, watches through its runtime's watcher, a watch from a compacted
//! version, and server-side apply.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::{OutputExt, Server, ServerOpts, etcdctl};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;

async fn client(server: &Server) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
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

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_crud_with_upstreams_errors() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    let created = api
        .create(
            &PostParams::default(),
            &config_map("one", &[("app", "a")], &[("k", "v")]),
        )
        .await?;
    ensure!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let again = api
        .create(&PostParams::default(), &config_map("one", &[], &[]))
        .await
        .expect_err("a second create of one name");
    ensure!(api_code(&again) == Some(409), "{again}");
    api.create(
        &PostParams::default(),
        &config_map("two", &[("app", "b")], &[]),
    )
    .await?;

    let got = api.get("one").await?;
    ensure!(
        got.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str)
            == Some("v")
    );
    let selected = api.list(&ListParams::default().labels("app=a")).await?;
    ensure!(selected.items.len() == 1 && selected.items[0].metadata.name.as_deref() == Some("one"));
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=two"))
        .await?;
    ensure!(by_name.items.len() == 1);

    // Replace with the version read: accepted; with a stale one: 409.
    let mut changed = got.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api.replace("one", &PostParams::default(), &changed).await?;
    ensure!(replaced.metadata.resource_version != got.metadata.resource_version);
    let stale = api
        .replace("one", &PostParams::default(), &changed)
        .await
        .expect_err("a replace with a stale resourceVersion");
    ensure!(api_code(&stale) == Some(409), "{stale}");

    let patched = api
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"x": "y"}})),
        )
        .await?;
    ensure!(patched.data.unwrap_or_default().len() == 2);
    api.delete("one", &DeleteParams::default()).await?;
    let gone = api.get("one").await.expect_err("deleted");
    ensure!(api_code(&gone) == Some(404), "{gone}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_sees_creates_updates_and_deletes() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    api.create(&PostParams::default(), &config_map("before", &[], &[]))
        .await?;
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.create(&PostParams::default(), &config_map("during", &[], &[]))
                .await?;
            api.delete("before", &DeleteParams::default()).await?;
            anyhow::Ok(())
        })
    };
    let mut seen_before = false;
    let mut seen_during = false;
    let mut seen_delete = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(seen_before && seen_during && seen_delete) {
        let event = tokio::time::timeout_at(deadline, events.try_next())
            .await
            .context("the watcher saw too little")??
            .context("the watcher ended")?;
        match event {
            watcher::Event::InitApply(cm) | watcher::Event::Apply(cm) => {
                match cm.metadata.name.as_deref() {
                    Some("before") => seen_before = true,
                    Some("during") => seen_during = true,
                    _ => {}
                }
            }
            watcher::Event::Delete(cm) if cm.metadata.name.as_deref() == Some("before") => {
                seen_delete = true;
            }
            _ => {}
        }
    }
    writer.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_from_a_compacted_version_is_expired() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    let first = api
        .create(&PostParams::default(), &config_map("c0", &[], &[]))
        .await?;
    let first_rv = first.metadata.resource_version.clone().unwrap_or_default();
    let mut last = first;
    for i in 1..5 {
        last = api
            .create(
                &PostParams::default(),
                &config_map(&format!("c{i}"), &[], &[]),
            )
            .await?;
    }
    let revision = last.metadata.resource_version.unwrap_or_default();
    etcdctl(&server.endpoint(), &["compact", &revision])?.expect_success()?;
    let mut stream = api.watch(&WatchParams::default(), &first_rv).await?.boxed();
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await? {
        Some(Ok(WatchEvent::Error(e))) => {
            ensure!(e.code == 410 && e.reason == "Expired", "{e:?}");
            ensure!(e.message.starts_with("too old resource version"), "{e:?}");
        }
        other => bail!("expected a 410 ERROR event, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_from_kube_rs() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await?, "default");
    let applied = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied", "labels": {"owner": "kube-rs"}},
        "data": {"k": "v"},
    });
    let params = PatchParams::apply("kube-rs-test");
    let first = api
        .patch("applied", &params, &Patch::Apply(&applied))
        .await?;
    let managers: Vec<String> = first
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    ensure!(managers == ["kube-rs-test"], "{managers:?}");
    // Another manager changing the same field conflicts, unless it forces.
    let changed = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"k": "w"},
    });
    let err = api
        .patch(
            "applied",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&changed),
        )
        .await
        .expect_err("a conflicting apply");
    ensure!(api_code(&err) == Some(409), "{err}");
    let forced = api
        .patch(
            "applied",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&changed),
        )
        .await?;
    ensure!(forced.data.unwrap_or_default().get("k").map(String::as_str) == Some("w"));
    // Dropping a field from one's configuration removes it (agreeing on a value another
    // manager owns is no conflict).
    let mut smaller = changed.clone();
    smaller["metadata"]["labels"] = serde_json::json!({});
    let after = api
        .patch("applied", &params, &Patch::Apply(&smaller))
        .await?;
    ensure!(after.metadata.labels.unwrap_or_default().is_empty());
    Ok(())
}
