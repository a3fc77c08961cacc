//! `cairn-bench hollow-nodes` against a real cairn server: the nodes register Ready with
//! their labels and taints, their Leases are renewed, and pods bound to them (through
//! `pods/binding` by the test itself; the scheduler is off) run, succeed, fail and go away as a kubelet
//! would make them.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use cairn_client::{Api, Client, Config, DeleteParams, ListParams};
use cairn_tests::hollow::HollowNodes;
use cairn_tests::{Server, ServerOpts};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;

/// The `cairn-bench` binary built beside the cairn binary under test.
fn client(server: &Server) -> Result<Client> {
    let config = Config::from_kubeconfig(server.kubeconfig())?.with_field_manager("cairn-test");
    Ok(Client::new(config)?)
}

/// Polls `check` until it answers `Some`, for at most `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn renew_time(lease: &Lease) -> Option<Timestamp> {
    Some(lease.spec.as_ref()?.renew_time.as_ref()?.0)
}

/// Creates pod `name` running `command` (none: the image's) and binds it to `node`.
async fn bound_pod(pods: &Api<Pod>, name: &str, command: Option<&str>, node: &str) -> Result<()> {
    let mut container = serde_json::json!({"name": "main", "image": "nginx:1.27"});
    if let Some(command) = command {
        container["command"] = serde_json::json!([command]);
    }
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [container], "restartPolicy": "Never"},
    }))?;
    pods.create(&pod).await?;
    let mut binding = Binding::default();
    binding.metadata.name = Some(name.to_string());
    binding.target = ObjectReference {
        kind: Some("Node".into()),
        name: Some(node.to_string()),
        ..ObjectReference::default()
    };
    let _: serde_json::Value = pods.create_subresource(name, "binding", &binding).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hollow_nodes_register_heartbeat_and_run_pods() -> Result<()> {
    let server = Server::start(ServerOpts::single()?).await?;
    let client = client(&server)?;
    let mut hollow = HollowNodes::start(
        &server,
        &[
            "--count",
            "3",
            "--label",
            "tier=test",
            "--taint",
            "dedicated=hollow:PreferNoSchedule",
        ],
    )?;

    // Three Ready nodes with their shape.
    let nodes: Api<Node> = Api::cluster(client.clone());
    let ready = eventually("3 Ready hollow nodes", Duration::from_secs(30), || async {
        let list = nodes.list(&ListParams::default()).await?;
        let ready: Vec<Node> = list
            .items
            .into_iter()
            .filter(|node| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.type_ == "Ready"
                                && c.status == "True"
                                && c.reason.as_deref() == Some("KubeletReady")
                        })
                    })
            })
            .collect();
        Ok((ready.len() == 3).then_some(ready))
    })
    .await?;
    for node in &ready {
        let name = node.metadata.name.as_deref().context("unnamed node")?;
        ensure!(name.starts_with("hollow-"), "{name}");
        let labels = node.metadata.labels.as_ref().context("no labels")?;
        ensure!(labels.get("kubernetes.io/hostname").map(String::as_str) == Some(name));
        ensure!(
            labels
                .get("node.kubernetes.io/instance-type")
                .map(String::as_str)
                == Some("hollow")
        );
        ensure!(labels.get("tier").map(String::as_str) == Some("test"));
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        ensure!(
            taints.len() == 1
                && taints[0].key == "dedicated"
                && taints[0].effect == "PreferNoSchedule",
            "{taints:?}"
        );
        let status = node.status.as_ref().context("no status")?;
        let capacity = status.capacity.as_ref().context("no capacity")?;
        ensure!(
            capacity["pods"].0 == "110"
                && capacity["cpu"].0 == "4"
                && capacity["memory"].0 == "8Gi"
        );
        let info = status.node_info.as_ref().context("no nodeInfo")?;
        ensure!(info.kubelet_version == "v1.33.1+cairn-hollow");
        let addresses = status.addresses.as_ref().context("no addresses")?;
        ensure!(
            addresses
                .iter()
                .any(|a| a.type_ == "InternalIP" && a.address.starts_with("10."))
        );
    }

    // Each node's Lease is renewed: its renewTime moves on within the renew interval.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for i in 0..3 {
        let name = format!("hollow-{i}");
        let first = eventually(
            &format!("the lease of {name}"),
            Duration::from_secs(15),
            || async { Ok(leases.get_opt(&name).await?) },
        )
        .await?;
        let spec = first.spec.as_ref().context("no lease spec")?;
        ensure!(spec.holder_identity.as_deref() == Some(name.as_str()));
        ensure!(spec.lease_duration_seconds == Some(40));
        let before = renew_time(&first).context("no renewTime")?;
        eventually(
            &format!("{name}'s lease renewed"),
            Duration::from_secs(25),
            || async {
                let lease = leases.get(&name).await?;
                Ok(renew_time(&lease).filter(|t| *t > before))
            },
        )
        .await?;
    }

    // A bound pod runs and is Ready with an address; `true` and `false` pods end.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    bound_pod(&pods, "web", None, "hollow-1").await?;
    bound_pod(&pods, "ok", Some("true"), "hollow-0").await?;
    bound_pod(&pods, "bad", Some("false"), "hollow-2").await?;
    let web = eventually("web Running and Ready", Duration::from_secs(20), || async {
        let pod = pods.get("web").await?;
        Ok(
            (phase(&pod) == Some("Running") && condition(&pod, "Ready").as_deref() == Some("True"))
                .then_some(pod),
        )
    })
    .await?;
    let status = web.status.as_ref().context("no status")?;
    let pod_ip = status.pod_ip.as_deref().context("no podIP")?;
    ensure!(pod_ip.starts_with("10."), "{pod_ip}");
    ensure!(status.host_ip.is_some() && status.start_time.is_some());
    for type_ in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        ensure!(
            condition(&web, type_).as_deref() == Some("True"),
            "{type_}: {status:?}"
        );
    }
    let container = &status
        .container_statuses
        .as_ref()
        .context("no containerStatuses")?[0];
    ensure!(container.ready && container.started == Some(true) && container.restart_count == 0);
    ensure!(
        container
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_some()
    );
    ensure!(
        container
            .container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("hollow://"))
    );

    for (name, wanted, exit_code) in [("ok", "Succeeded", 0), ("bad", "Failed", 1)] {
        let pod = eventually(
            &format!("{name} {wanted}"),
            Duration::from_secs(20),
            || async {
                let pod = pods.get(name).await?;
                Ok((phase(&pod) == Some(wanted)).then_some(pod))
            },
        )
        .await?;
        let container = &pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .context("no containerStatuses")?[0];
        let terminated = container
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .context("not terminated")?;
        ensure!(
            terminated.exit_code == exit_code && !container.ready,
            "{container:?}"
        );
    }

    // Deleting a running pod (with the default grace period) removes it at once.
    pods.delete("web", &DeleteParams::default()).await?;
    eventually("web gone", Duration::from_secs(15), || async {
        Ok(pods.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;

    // SIGTERM ends the process with a summary.
    let printed = hollow.terminate()?;
    let summary = printed.lines().last().unwrap_or_default();
    ensure!(
        summary.contains("3 nodes")
            && summary.contains("3 pods handled (1 running, 1 succeeded, 1 failed), 1 removed"),
        "{printed}"
    );
    Ok(())
}
