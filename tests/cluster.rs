//! Three cairn servers on 127.0.0.1-3: replication, leader failover after `kill -9`, catch-up
//! after restart, member removal and re-joining, and joins refused for a wrong token or CA hash.
//!
//! cairn only (the behaviour is cairn's own: `--server`/`--token` joining). Skipped while the
//! binary does not exist, failing instead under `CI=1` / `CAIRN_REQUIRE_BIN=1`. The tests of this
//! binary run one at a time (see [`cairn_tests::cairn_cluster`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::cairn_cluster::{exclusive, status};
use cairn_tests::client::connect_with_timeout;
use cairn_tests::target::eventually;
use cairn_tests::{Cluster, OutputExt, Server, Target, connect, etcdctl};
use etcd_client::{Client, GetOptions};

/// The spec's failover bound: a write on a surviving member succeeds this soon after the leader
/// is killed.
const FAILOVER_BOUND: Duration = Duration::from_secs(2);

fn skip() -> Result<bool> {
    Ok(!Target::Cairn.available()?)
}

/// All `(key, value)` pairs under `prefix` read from one member without going through the
/// leader (a serializable read), so it shows what that member has applied.
async fn local_view(endpoint: &str, prefix: &str) -> Result<BTreeMap<String, String>> {
    let mut client = connect_with_timeout(endpoint, Duration::from_secs(2)).await?;
    let response = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await?;
    Ok(response
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect())
}

/// Waits until the member at `endpoint` has applied every pair in `expected` (and nothing else
/// under `prefix`).
async fn converges(
    endpoint: &str,
    prefix: &str,
    expected: &BTreeMap<String, String>,
) -> Result<()> {
    eventually(
        Duration::from_secs(30),
        &format!("{endpoint} has all {} keys under {prefix}", expected.len()),
        || async move { Ok(local_view(endpoint, prefix).await? == *expected) },
    )
    .await
}

async fn put_all(
    client: &mut Client,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Result<BTreeMap<String, String>> {
    let mut written = BTreeMap::new();
    for i in range {
        let (key, value) = (format!("{prefix}{i:04}"), format!("value-{i}"));
        client.put(key.as_str(), value.as_str(), None).await?;
        written.insert(key, value);
    }
    Ok(written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_to_every_member() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    let cluster = Cluster::start(3).await?;
    let endpoints = cluster.endpoints();
    let mut expected = BTreeMap::new();
    // Writes through every member, the followers included.
    for (index, endpoint) in endpoints.iter().enumerate() {
        let mut client = connect(endpoint).await?;
        expected.extend(put_all(&mut client, "rep/", index * 20..(index + 1) * 20).await?);
    }
    for endpoint in &endpoints {
        converges(endpoint, "rep/", &expected).await?;
    }
    // Identical state at one revision hashes identically on every member.
    let mut client = connect(&endpoints[0]).await?;
    let revision = client
        .get("rep/", None)
        .await?
        .header()
        .context("header")?
        .revision();
    let mut hashes = Vec::new();
    for endpoint in &endpoints {
        let mut client = connect(endpoint).await?;
        hashes.push(client.hash_kv(revision).await?.hash());
    }
    ensure!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "HashKV at revision {revision} differs between members: {hashes:?}"
    );
    // Every member lists the same three members.
    let json = etcdctl(&endpoints[2], &["member", "list", "-w", "json"])?.json()?;
    let members = json["members"].as_array().context("members")?;
    ensure!(members.len() == 3, "member list: {json}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill9_fails_over_within_bound_and_loses_nothing() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    let mut cluster = Cluster::start(3).await?;
    let endpoints = cluster.endpoints();
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let mut acked = {
        let mut client = connect(&endpoints[(leader + 1) % 3]).await?;
        put_all(&mut client, "fo/", 0..50).await?
    };
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // Connected before the kill, so the measurement is the cluster's, not connection setup.
    let mut clients = Vec::new();
    for &index in &survivors {
        let mut client =
            connect_with_timeout(&endpoints[index], Duration::from_millis(400)).await?;
        client.get("fo/warmup", None).await?;
        clients.push(client);
    }

    let killed_at = Instant::now();
    cluster.nodes[leader].kill9();
    let mut attempt = 0usize;
    let key = loop {
        let key = format!("fo/after-kill-{attempt}");
        let count = clients.len();
        let client = &mut clients[attempt % count];
        let put = tokio::time::timeout(
            Duration::from_millis(400),
            client.put(key.as_str(), "v", None),
        );
        if let Ok(Ok(_)) = put.await {
            break key;
        }
        attempt += 1;
        if killed_at.elapsed() > Duration::from_secs(20) {
            bail!("no write succeeded on a surviving member within 20 s of killing the leader");
        }
    };
    let failover = killed_at.elapsed();
    eprintln!("first write after killing the leader succeeded after {failover:?}");
    ensure!(
        failover <= FAILOVER_BOUND,
        "a write on a surviving member took {failover:?} after the leader was killed (bound {FAILOVER_BOUND:?})"
    );
    acked.insert(key, "v".to_owned());

    let new_leader = cluster.leader(Duration::from_secs(5)).await?;
    ensure!(new_leader != leader, "the killed member cannot be leader");

    // No acknowledged write is lost: a linearizable read through the new leader sees them all.
    let mut client = connect(&endpoints[new_leader]).await?;
    let response = client
        .get("fo/", Some(GetOptions::new().with_prefix()))
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
    for (key, value) in &acked {
        ensure!(
            present.get(key) == Some(value),
            "acknowledged write {key}={value} lost after failover"
        );
    }

    // More writes while it is down, then the killed member restarts and catches up.
    let mut client = connect(&endpoints[survivors[0]]).await?;
    acked.extend(put_all(&mut client, "fo/", 50..80).await?);
    cluster.nodes[leader].restart().await?;
    let expected = local_view(&endpoints[new_leader], "fo/").await?;
    for (key, value) in &acked {
        ensure!(
            expected.get(key) == Some(value),
            "{key} missing on the leader"
        );
    }
    converges(&endpoints[leader], "fo/", &expected).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_remove_and_rejoin() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    let mut cluster = Cluster::start(3).await?;
    let endpoints = cluster.endpoints();
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    // Remove a follower other than node-1, which the rejoining member dials with --server.
    let removed = [1, 2]
        .into_iter()
        .find(|&i| i != leader)
        .expect("two candidates, one leader");
    let mut client = connect(&endpoints[0]).await?;
    let mut expected = put_all(&mut client, "mr/", 0..20).await?;
    let (removed_id, _) = status(&endpoints[removed]).await?;

    // Retried for a while: etcd refuses reconfiguration ("unhealthy cluster") until every member
    // has been connected for a few seconds, and a newly formed cluster may not be there yet.
    let remove_id = format!("{removed_id:x}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stdout = loop {
        let output = etcdctl(&endpoints[0], &["member", "remove", &remove_id])?;
        if output.status.success() || Instant::now() >= deadline {
            break output.expect_success()?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(
        // etcdctl prints the ID with `%16x`: space-padded when it has fewer than 16 digits.
        stdout.contains(&format!("Member {remove_id:>16} removed from cluster")),
        "member remove output: {stdout}"
    );
    let members: Vec<u64> = client
        .member_list()
        .await?
        .members()
        .iter()
        .map(|m| m.id())
        .collect();
    ensure!(
        members.len() == 2 && !members.contains(&removed_id),
        "after removal: {members:x?}"
    );
    cluster.nodes[removed].kill9();

    // The two remaining members still form a quorum.
    expected.extend(put_all(&mut client, "mr/", 20..40).await?);

    // Re-add: wipe the removed member's data and start it again with --server/--token.
    let node = &mut cluster.nodes[removed];
    node.wipe_data()?;
    node.spawn()?;
    node.wait_ready().await?;
    let (rejoined_id, _) = status(&endpoints[removed]).await?;
    eventually(Duration::from_secs(30), "three members again", || {
        let mut client = client.clone();
        async move {
            let ids: Vec<u64> = client
                .member_list()
                .await?
                .members()
                .iter()
                .map(|m| m.id())
                .collect();
            Ok(ids.len() == 3 && ids.contains(&rejoined_id))
        }
    })
    .await?;
    converges(&endpoints[removed], "mr/", &expected).await?;
    Ok(())
}

/// Splits a k3s-style full token `K10<ca-sha256>::<user>:<password>`.
fn token_parts(token: &str) -> Result<(&str, &str, &str)> {
    let parse = || {
        let rest = token.strip_prefix("K10")?;
        let (hash, credentials) = rest.split_once("::")?;
        let (user, password) = credentials.split_once(':')?;
        Some((hash, user, password))
    };
    parse().with_context(|| {
        format!("token {token:?} is not in the K10<ca-hash>::<user>:<password> form")
    })
}

/// Starts node-1, then node-2 joining with `token`, and returns node-2's exit status and stderr.
async fn join_with(
    make_token: impl FnOnce(&str) -> Result<String>,
) -> Result<(std::process::ExitStatus, String)> {
    let _exclusive = exclusive().await;
    let opts = Cluster::member_opts(2)?;
    let first = Server::start(opts[0].clone()).await?;
    let token = make_token(&first.token()?)?;
    let mut joiner = Server::create(opts[1].clone().joining(first.opts(), &token))?;
    joiner.spawn()?;
    let status = joiner
        .wait_exit(Duration::from_secs(60))
        .await
        .context("a server with a bad token must exit")?;
    Ok((status, joiner.stderr()))
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_wrong_token_fails() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    let (status, stderr) = join_with(|token| {
        let (hash, user, _) = token_parts(token)?;
        Ok(format!("K10{hash}::{user}:wrong-password"))
    })
    .await?;
    ensure!(
        !status.success(),
        "joining with a wrong token exited with {status}"
    );
    ensure!(
        words(&stderr.to_lowercase()).any(|w| w == "token"),
        "the error must say the token is wrong; stderr:\n{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_wrong_ca_hash_fails() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    let (status, stderr) = join_with(|token| {
        let (hash, user, password) = token_parts(token)?;
        let wrong: String = hash
            .chars()
            .map(|c| if c == '0' { '1' } else { '0' })
            .collect();
        Ok(format!("K10{wrong}::{user}:{password}"))
    })
    .await?;
    ensure!(
        !status.success(),
        "joining with a wrong CA hash exited with {status}"
    );
    ensure!(
        words(&stderr).any(|w| w == "CA"),
        "the error must say the CA does not match; stderr:\n{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_member_catches_up_from_a_snapshot() -> Result<()> {
    if skip()? {
        return Ok(());
    }
    // Snapshots every 20 entries, keeping only 20 behind them: a member that misses 300 writes
    // can only catch up from a snapshot.
    let mut cluster = Cluster::start_with_args(3, &["--etcd-snapshot-count", "20"]).await?;
    let nodes = &mut cluster.nodes;
    let mut client = connect(&nodes[0].endpoint()).await?;
    let mut expected = put_all(&mut client, "snap/", 0..20).await?;
    converges(&nodes[2].endpoint(), "snap/", &expected).await?;
    nodes[2].kill9();
    expected.extend(put_all(&mut client, "snap/", 20..320).await?);
    nodes[2].spawn()?;
    nodes[2].wait_ready().await?;
    for node in nodes.iter() {
        converges(&node.endpoint(), "snap/", &expected).await?;
    }
    // The same history: equal hashes at the current revision.
    let revision = client
        .get("snap/", None)
        .await?
        .header()
        .context("header")?
        .revision();
    let mut hashes = Vec::new();
    for node in nodes.iter() {
        hashes.push(
            connect(&node.endpoint())
                .await?
                .hash_kv(revision)
                .await?
                .hash(),
        );
    }
    ensure!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "members differ after catch-up: {hashes:?}"
    );
    // And it really was a snapshot (the log it missed had been purged).
    let log = nodes[2].stderr();
    ensure!(
        log.contains("installed a snapshot"),
        "the lagging member did not install a snapshot:\n{log}"
    );
    Ok(())
}
