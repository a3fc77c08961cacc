//! Durability: a single member under concurrent puts is killed with SIGKILL mid-load and
//! restarted; every put it acknowledged must still be there ("any completed operations are
//! durable", etcd API guarantees).
//!
//! Run against real etcd (validating the test) and cairn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cairn_tests::Target;
use cairn_tests::client::connect_with_timeout;
use cairn_tests::target::SingleServer;
use etcd_client::GetOptions;

const WRITERS: usize = 16;
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1500);

/// Puts `dur/<writer>/<n>` until `stop`; returns the puts the server acknowledged.
async fn writer(
    endpoint: String,
    id: usize,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(String, String)>> {
    let mut client = connect_with_timeout(&endpoint, Duration::from_secs(2)).await?;
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let (key, value) = (format!("dur/{id:02}/{n:06}"), format!("{id}-{n}"));
        match client.put(key.as_str(), value.as_str(), None).await {
            Ok(_) => acked.push((key, value)),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(acked)
}

async fn acknowledged_puts_survive_kill9(target: Target) -> Result<()> {
    if !target.available()? {
        return Ok(());
    }
    let mut server = SingleServer::start(target).await?;
    let endpoint = server.endpoint().url;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(endpoint.clone(), id, stop.clone())))
        .collect();
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.context("writer panicked")??);
    }
    ensure!(
        acked.len() >= 50,
        "only {} puts acknowledged before the kill; the test needs load",
        acked.len()
    );

    server.restart().await?;
    let mut client = connect_with_timeout(&endpoint, Duration::from_secs(10)).await?;
    let response = client
        .get("dur/", Some(GetOptions::new().with_prefix()))
        .await?;
    let present: BTreeMap<String, String> = response
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(key, value)| present.get(key) != Some(value))
        .collect();
    eprintln!(
        "{target}: {} acknowledged, {} present after restart",
        acked.len(),
        present.len()
    );
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged puts lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_acknowledged_puts_survive_kill9() -> Result<()> {
    acknowledged_puts_survive_kill9(Target::Etcd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cairn_acknowledged_puts_survive_kill9() -> Result<()> {
    acknowledged_puts_survive_kill9(Target::Cairn).await
}
