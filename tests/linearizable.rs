//! Linearizability under crashes: 8 clients run random put / get / compare-and-swap on 5 keys
//! (one request at a time, 1 s timeout, no retries) while the leader is killed with SIGKILL and
//! restarted twice; the recorded history must be linearizable.
//!
//! The same workload and nemesis against a single real etcd member checks the recorder and the
//! checker: etcd 3.4 is linearizable (Jepsen 3.4.3), so a violation there is a harness bug.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::linearizability::{Op, OpResult, Operation, check};
use cairn_tests::target::SingleServer;
use cairn_tests::workload::{self, WorkloadConfig, summarize};
use cairn_tests::{Cluster, Target};

/// Time between the start of the workload (or the previous restart) and the next kill.
const RUN_BEFORE_KILL: Duration = Duration::from_secs(4);
/// Time a killed member stays down.
const DOWN_FOR: Duration = Duration::from_secs(2);

fn verify(target: Target, history: &[Operation]) -> Result<()> {
    let summary = summarize(history);
    eprintln!("{target}: {summary:?}");
    ensure!(
        summary.ok >= 200,
        "too few completed operations to mean anything: {summary:?}"
    );
    ensure!(
        summary.cas_succeeded > 0,
        "no compare-and-swap ever succeeded: {summary:?}"
    );
    let started = std::time::Instant::now();
    let report = check(history);
    eprintln!("{target}: checked in {:?}\n{report}", started.elapsed());
    ensure!(
        report.is_linearizable(),
        "{target}: history is not linearizable:\n{report}"
    );
    Ok(())
}

/// The recorded etcd history with one stale read injected: a get that starts after two
/// successive puts on a key returned, yet sees the first put's value. The checker must reject it,
/// which shows it is not vacuous on real histories.
fn with_stale_read(history: &[Operation]) -> Result<Vec<Operation>> {
    let mut puts: Vec<&Operation> = history
        .iter()
        .filter(|o| matches!(o.result, OpResult::Put { .. }))
        .collect();
    puts.sort_by_key(|o| o.call_instant);
    let (first, second) = puts
        .iter()
        .find_map(|first| {
            puts.iter()
                .find(|second| {
                    second.key == first.key && second.call_instant > first.return_instant
                })
                .map(|second| (*first, *second))
        })
        .context("no two successive puts on one key")?;
    let (Op::Put { value }, OpResult::Put { revision }) = (&first.op, &first.result) else {
        bail!("not a put");
    };
    let mut mutated = history.to_vec();
    mutated.push(Operation {
        client: usize::MAX,
        key: first.key.clone(),
        call_instant: second.return_instant + Duration::from_micros(1),
        return_instant: second.return_instant + Duration::from_micros(2),
        op: Op::Get,
        result: OpResult::Get {
            value: Some(value.clone()),
            mod_revision: *revision,
        },
    });
    Ok(mutated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cairn_three_members_leader_killed_twice() -> Result<()> {
    if !Target::Cairn.available()? {
        return Ok(());
    }
    let mut cluster = Cluster::start(3).await?;
    let config = WorkloadConfig::default();
    eprintln!("workload seed {}", config.seed);
    let workload = tokio::spawn(workload::run(cluster.endpoints(), config));
    for _ in 0..2 {
        tokio::time::sleep(RUN_BEFORE_KILL).await;
        let leader = cluster.leader(Duration::from_secs(10)).await?;
        eprintln!("killing leader node-{}", leader + 1);
        cluster.nodes[leader].kill9();
        tokio::time::sleep(DOWN_FOR).await;
        cluster.nodes[leader].restart().await?;
    }
    let history = workload.await??;
    verify(Target::Cairn, &history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_single_member_killed_twice() -> Result<()> {
    let mut server = SingleServer::start(Target::Etcd).await?;
    let config = WorkloadConfig {
        duration: Duration::from_secs(15),
        ..WorkloadConfig::default()
    };
    eprintln!("workload seed {}", config.seed);
    let workload = tokio::spawn(workload::run(vec![server.endpoint().url], config));
    for _ in 0..2 {
        tokio::time::sleep(RUN_BEFORE_KILL).await;
        server.kill9();
        tokio::time::sleep(DOWN_FOR).await;
        server.restart().await?;
    }
    let history = workload.await??;
    verify(Target::Etcd, &history)?;
    let report = check(&with_stale_read(&history)?);
    ensure!(
        !report.is_linearizable(),
        "the checker accepted a history with an injected stale read:\n{report}"
    );
    Ok(())
}
