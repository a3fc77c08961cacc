//! Snapshot save and restore: save from a running server, restore into a new data dir, start a
//! server on it, and find the same keys with the same values and revisions.
//!
//! etcd does it with `etcdctl snapshot save/restore` (validating the test); cairn with
//! `cairn etcd-snapshot save FILE --etcd-address` and `cairn etcd-snapshot restore FILE
//! --data-dir`. Revisions must survive a restore: Kubernetes resource versions are etcd
//! revisions, and a restored store whose revisions went backwards would confuse every watcher.

use anyhow::{Context, Result, ensure};
use cairn_tests::cairn_server::run_cairn;
use cairn_tests::{EtcdServer, OutputExt, Server, ServerOpts, Target, connect, etcdctl};
use etcd_client::{DeleteOptions, GetOptions};

/// One key as a restored store must reproduce it.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    key: String,
    value: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
}

/// Writes, overwrites and deletes keys under `snap/`; returns the resulting state and revision.
async fn populate(endpoint: &str) -> Result<(Vec<Stored>, i64)> {
    let mut client = connect(endpoint).await?;
    for i in 0..200 {
        client
            .put(format!("snap/{i:03}"), format!("v{i}"), None)
            .await?;
    }
    for i in 0..10 {
        client
            .put(format!("snap/{i:03}"), format!("overwritten-{i}"), None)
            .await?;
    }
    client
        .delete("snap/19", Some(DeleteOptions::new().with_prefix()))
        .await?;
    read_state(endpoint).await
}

async fn read_state(endpoint: &str) -> Result<(Vec<Stored>, i64)> {
    let mut client = connect(endpoint).await?;
    let response = client
        .get("snap/", Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = response.header().context("header")?.revision();
    let state = response
        .kvs()
        .iter()
        .map(|kv| Stored {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
        .collect();
    Ok((state, revision))
}

async fn compare_restored(endpoint: &str, before: &[Stored], revision: i64) -> Result<()> {
    let (after, restored_revision) = read_state(endpoint).await?;
    ensure!(after.len() == 190, "expected 190 keys, got {}", after.len());
    ensure!(after == before, "restored keys differ from the saved ones");
    ensure!(
        restored_revision >= revision,
        "revision went backwards on restore: {revision} -> {restored_revision}"
    );
    // The restored store accepts writes, at later revisions.
    let mut client = connect(endpoint).await?;
    let put = client.put("snap/new", "after restore", None).await?;
    let new_revision = put.header().context("header")?.revision();
    ensure!(
        new_revision > revision,
        "write after restore got revision {new_revision}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_save_and_restore() -> Result<()> {
    let mut source = EtcdServer::start().await?;
    let (before, revision) = populate(&source.endpoint()).await?;
    let file = source.dir().join("backup.db");
    let file_arg = file.to_string_lossy().into_owned();
    etcdctl(&source.endpoint(), &["snapshot", "save", &file_arg])?.expect_success()?;
    source.kill9();

    let mut restored = EtcdServer::create()?;
    let data_dir = restored.data_dir().to_string_lossy().into_owned();
    etcdctl(
        &restored.endpoint(),
        &[
            "snapshot",
            "restore",
            &file_arg,
            "--data-dir",
            &data_dir,
            "--name",
            restored.name(),
            "--initial-cluster",
            &restored.initial_cluster(),
            "--initial-advertise-peer-urls",
            &restored.peer_url(),
        ],
    )?
    .expect_success()?;
    restored.spawn()?;
    restored.wait_ready().await?;
    compare_restored(&restored.endpoint(), &before, revision).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_save_and_restore() -> Result<()> {
    if !Target::Cairn.available()? {
        return Ok(());
    }
    let mut source = Server::start(ServerOpts::single()?).await?;
    let (before, revision) = populate(&source.endpoint()).await?;
    let file = source.dir().join("backup.db");
    let file_arg = file.to_string_lossy().into_owned();
    run_cairn(&[
        "etcd-snapshot",
        "save",
        &file_arg,
        "--etcd-address",
        &source.opts().etcd_address(),
    ])?;
    ensure!(
        std::fs::metadata(&file)?.len() > 0,
        "cairn etcd-snapshot save wrote an empty file"
    );
    source.kill9();

    let mut restored = Server::create(ServerOpts::single()?)?;
    let data_dir = restored.data_dir().to_string_lossy().into_owned();
    run_cairn(&[
        "etcd-snapshot",
        "restore",
        &file_arg,
        "--data-dir",
        &data_dir,
    ])?;
    restored.spawn()?;
    restored.wait_ready().await?;
    compare_restored(&restored.endpoint(), &before, revision).await
}
