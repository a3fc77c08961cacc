//! `cairn etcd-snapshot save|restore`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn_etcd::rpc::etcdserverpb::maintenance_client::MaintenanceClient;
use cairn_kv::pb::etcdserverpb::SnapshotRequest;
use std::io::Write;

use crate::data_dir::ServerDir;

/// Streams a snapshot from a running server's etcd API into `file`.
pub async fn save(file: &Path, etcd_address: std::net::SocketAddr) -> Result<()> {
    let mut client = MaintenanceClient::connect(format!("http://{etcd_address}"))
        .await
        .with_context(|| format!("connect to the etcd API at {etcd_address}"))?
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut stream = client.snapshot(SnapshotRequest {}).await?.into_inner();
    let tmp = file.with_extension("part");
    let mut out =
        std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut size = 0usize;
    while let Some(chunk) = stream.message().await? {
        out.write_all(&chunk.blob)?;
        size += chunk.blob.len();
    }
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, file)
        .with_context(|| format!("rename {} to {}", tmp.display(), file.display()))?;
    println!("snapshot saved to {} ({size} bytes)", file.display());
    Ok(())
}

/// Restores `file` into a new data directory.
pub fn restore(file: &Path, data_dir: &Path) -> Result<()> {
    let dir = ServerDir::new(data_dir);
    let _lock = dir.lock()?;
    if dir.db().exists() {
        bail!(
            "{} already holds a store; restore into a new data directory",
            data_dir.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    cairn_kv::restore(&dir.db(), &bytes).with_context(|| format!("restore {}", file.display()))?;
    println!(
        "restored {} into {}; start `cairn server --data-dir {}` to run it as a new one-member cluster",
        file.display(),
        data_dir.display(),
        data_dir.display()
    );
    Ok(())
}
