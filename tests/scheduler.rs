//! The scheduler inside `cairn server`, driven with the real kubectl: pods are placed on nodes
//! that fit, spread over equal nodes, and a pod that fits nowhere says why, as upstream says
//! it, until the cluster changes so that it fits.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use cairn_tests::kubectl::{Kubectl, VERSIONS};
use cairn_tests::{Server, ServerOpts};

fn node(name: &str, cpu: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: {name}{labels}}}
status:
  capacity: {{cpu: '{cpu}', memory: 8Gi, pods: '110'}}
  allocatable: {{cpu: '{cpu}', memory: 8Gi, pods: '110'}}
  conditions:
  - {{type: Ready, status: 'True', reason: KubeletReady, message: ready}}
"
    )
}

fn pod(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: c
    image: busybox
    resources: {{requests: {{cpu: 500m, memory: 64Mi}}}}
{extra_spec}"
    )
}

/// Polls `args` until kubectl prints `want`.
async fn wait_until(k: &Kubectl, args: &[&str], want: &str) -> Result<()> {
    let mut last = String::new();
    for _ in 0..150 {
        last = k.ok(args)?;
        if last.trim() == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{args:?} printed {last:?}, never {want:?}")
}

/// Polls `jsonpath` on an object until it is not empty.
async fn wait_for(k: &Kubectl, args: &[&str], what: &str) -> Result<String> {
    for _ in 0..100 {
        let out = k.run(args)?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} never happened")
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_are_placed_where_they_fit_and_say_why_not() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    opts.control_loops = true;
    let server = Server::start(opts).await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    for (name, labels) in [("n1", ""), ("n2", "")] {
        k.ok_with_input(&["create", "-f", "-"], &node(name, "2", labels))?;
    }

    // Four pods of half a CPU: two on each node.
    for i in 0..4 {
        k.ok_with_input(&["create", "-f", "-"], &pod(&format!("p{i}"), ""))?;
    }
    let mut per_node = std::collections::BTreeMap::new();
    for i in 0..4 {
        let name = format!("p{i}");
        let node = wait_for(
            &k,
            &["get", "pod", &name, "-o", "jsonpath={.spec.nodeName}"],
            &format!("{name} placed"),
        )
        .await?;
        *per_node.entry(node).or_insert(0) += 1;
    }
    ensure!(
        per_node.values().all(|n| *n == 2),
        "not spread: {per_node:?}"
    );

    // A pod for nodes labelled disk=ssd waits, saying why.
    k.ok_with_input(
        &["create", "-f", "-"],
        &pod("picky", "  nodeSelector: {disk: ssd}\n"),
    )?;
    let message = wait_for(
        &k,
        &[
            "get",
            "pod",
            "picky",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ],
        "PodScheduled=False on picky",
    )
    .await?;
    ensure!(
        message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
        "{message}"
    );
    let events = wait_for(
        &k,
        &[
            "get",
            "events",
            "--field-selector=involvedObject.name=picky,reason=FailedScheduling",
            "-o",
            "jsonpath={.items[0].message}",
        ],
        "a FailedScheduling event",
    )
    .await?;
    ensure!(events == message, "{events}");
    // Too big for any node.
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  containers:\n  - {name: c, image: busybox, resources: {requests: {cpu: '64'}}}\n",
    )?;
    let message = wait_for(
        &k,
        &[
            "get",
            "pod",
            "huge",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ],
        "PodScheduled=False on huge",
    )
    .await?;
    ensure!(
        message == "0/2 nodes are available: 2 Insufficient cpu.",
        "{message}"
    );

    // A node that fits arrives: the waiting pod is placed on it.
    k.ok_with_input(&["create", "-f", "-"], &node("n3", "2", ", disk: ssd"))?;
    let placed = wait_for(
        &k,
        &["get", "pod", "picky", "-o", "jsonpath={.spec.nodeName}"],
        "picky placed",
    )
    .await?;
    ensure!(placed == "n3", "{placed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduling_continues_when_the_active_schedulers_server_dies() -> Result<()> {
    let mut cluster = cairn_tests::Cluster::start_with(3, |o| o.control_loops = true).await?;
    let on = |c: &cairn_tests::Cluster, i: usize| {
        Kubectl::new(VERSIONS[1], &c.nodes[i].kubeconfig(), c.nodes[i].dir())
    };
    let k = on(&cluster, 0)?;
    k.ok_with_input(&["create", "-f", "-"], &node("n1", "8", ""))?;
    k.ok_with_input(&["create", "-f", "-"], &pod("before", ""))?;
    wait_for(
        &k,
        &["get", "pod", "before", "-o", "jsonpath={.spec.nodeName}"],
        "before placed",
    )
    .await?;

    // Kill the server whose scheduler holds the Lease.
    let holder = k.ok(&[
        "get",
        "lease",
        "kube-scheduler",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    let active = cluster
        .nodes
        .iter()
        .position(|s| holder.starts_with(&format!("{}_", s.opts().name)))
        .ok_or_else(|| anyhow::anyhow!("no server holds the Lease: {holder:?}"))?;
    cluster.nodes[active].kill9();
    let survivor = on(&cluster, (active + 1) % 3)?;
    survivor.ok_with_input(&["create", "-f", "-"], &pod("after", ""))?;
    // Another server's scheduler takes over once the Lease expires (15 s).
    for _ in 0..60 {
        let node = survivor.ok(&["get", "pod", "after", "-o", "jsonpath={.spec.nodeName}"])?;
        if node == "n1" {
            let holder_now = survivor.ok(&[
                "get",
                "lease",
                "kube-scheduler",
                "-n",
                "kube-system",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])?;
            ensure!(
                holder_now != holder,
                "the dead server still holds the Lease"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the pod created after the kill was never placed")
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_run_on_hollow_nodes_the_scheduler_picks() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    opts.control_loops = true;
    let server = Server::start(opts).await?;
    let _nodes = cairn_tests::hollow::HollowNodes::start(&server, &["--count", "3", "--cpu", "2"])?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    wait_until(
        &k,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ],
        "True True True",
    )
    .await?;
    for i in 0..6 {
        k.ok_with_input(&["create", "-f", "-"], &pod(&format!("w{i}"), ""))?;
    }
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: done}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: c, image: busybox, command: ['true']}\n",
    )?;
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..6 {
        let name = format!("w{i}");
        wait_until(
            &k,
            &["get", "pod", &name, "-o", "jsonpath={.status.phase}"],
            "Running",
        )
        .await?;
        nodes.insert(k.ok(&["get", "pod", &name, "-o", "jsonpath={.spec.nodeName}"])?);
    }
    ensure!(
        nodes.len() == 3,
        "six equal pods on three equal nodes used {nodes:?}"
    );
    wait_until(
        &k,
        &["get", "pod", "done", "-o", "jsonpath={.status.phase}"],
        "Succeeded",
    )
    .await
}
