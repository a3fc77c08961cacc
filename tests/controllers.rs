//! The controller manager inside `cairn server`, driven with the real kubectl (1.27 and 1.33)
//! against hollow nodes: Deployments roll out, update, roll back, scale, pause, restart and
//! are deleted with their ReplicaSets and pods; Jobs finish or fail; DaemonSets cover the
//! nodes; CronJobs fire; a dead node's pods move.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use cairn_tests::hollow::HollowNodes;
use cairn_tests::kubectl::{Kubectl, VERSIONS};
use cairn_tests::{Server, ServerOpts};

/// Polls `args` until kubectl prints `want` (trimmed).
async fn wait_until(k: &Kubectl, args: &[&str], want: &str) -> Result<()> {
    let mut last = String::new();
    for _ in 0..300 {
        let out = k.run(args)?;
        last = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && last == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "kubectl.{} {args:?} printed {last:?}, never {want:?}",
        k.version
    )
}

/// A server running the control loops, with `nodes` hollow nodes Ready.
async fn cluster(nodes: usize) -> Result<(Server, HollowNodes, Kubectl)> {
    let mut opts = ServerOpts::single()?;
    opts.control_loops = true;
    let server = Server::start(opts).await?;
    let count = nodes.to_string();
    let hollow = HollowNodes::start(&server, &["--count", &count, "--cpu", "8"])?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    wait_until(
        &k,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status} {end}",
        ],
        &vec!["True"; nodes].join(" "),
    )
    .await?;
    Ok((server, hollow, k))
}

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

/// The images of the running pods labelled `app=name`.
fn running_images(k: &Kubectl, name: &str) -> Result<Vec<String>> {
    let out = k.ok(&[
        "get",
        "pods",
        "-l",
        &format!("app={name}"),
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}x{end}{range .items[*]}{.spec.containers[0].image} {end}",
    ])?;
    Ok(lines(&out))
}

async fn rollout(k: &Kubectl, name: &str) -> Result<String> {
    k.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=120s",
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_roll_out_update_undo_scale_and_go_away() -> Result<()> {
    let (server, _nodes, _) = cluster(2).await?;
    for version in VERSIONS {
        let k = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let name = format!("web-{}", version.replace('.', "-"));
        let deploy = format!("deployment/{name}");
        k.ok(&[
            "create",
            "deployment",
            &name,
            "--image=busybox:1",
            "--replicas=3",
        ])?;
        let out = rollout(&k, &name).await?;
        ensure!(out.contains("successfully rolled out"), "{out}");
        ensure!(
            running_images(&k, &name)? == ["busybox:1"; 3],
            "{:?}",
            running_images(&k, &name)?
        );
        let ready = k.ok(&["get", &deploy, "-o", "jsonpath={.status.readyReplicas}/{.status.availableReplicas}/{.status.updatedReplicas}"])?;
        ensure!(ready == "3/3/3", "{ready}");
        let available = k.ok(&[
            "get",
            &deploy,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
        ])?;
        ensure!(available == "True", "{available}");

        // An update rolls out as a second ReplicaSet, revision 2.
        k.ok(&["set", "image", &deploy, "busybox=busybox:2"])?;
        rollout(&k, &name).await?;
        wait_until(
            &k,
            &[
                "get",
                &deploy,
                "-o",
                "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
            ],
            "2",
        )
        .await?;
        wait_until(
            &k,
            &[
                "get",
                "pods",
                "-l",
                &format!("app={name}"),
                "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image} {end}",
            ],
            "busybox:2 busybox:2 busybox:2",
        )
        .await?;
        let sets = k.ok(&[
            "get",
            "rs",
            "-l",
            &format!("app={name}"),
            "-o",
            "jsonpath={range .items[*]}{.spec.replicas} {end}",
        ])?;
        ensure!(lines(&sets) == ["0", "3"], "replica sets: {sets}");
        let history = k.ok(&["rollout", "history", &deploy])?;
        ensure!(
            history.contains("1 ") && history.contains("2 "),
            "{history}"
        );

        // Undo goes back to the first template: its ReplicaSet becomes revision 3.
        k.ok(&["rollout", "undo", &deploy])?;
        rollout(&k, &name).await?;
        wait_until(
            &k,
            &[
                "get",
                "pods",
                "-l",
                &format!("app={name}"),
                "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image} {end}",
            ],
            "busybox:1 busybox:1 busybox:1",
        )
        .await?;
        let revision = k.ok(&[
            "get",
            &deploy,
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])?;
        ensure!(revision == "3", "revision after undo: {revision}");
        let sets = k.ok(&["get", "rs", "-l", &format!("app={name}"), "--no-headers"])?;
        ensure!(
            sets.lines().count() == 2,
            "undo reuses the old replica set: {sets}"
        );

        // Scale.
        k.ok(&["scale", &deploy, "--replicas=5"])?;
        rollout(&k, &name).await?;
        wait_until(
            &k,
            &["get", &deploy, "-o", "jsonpath={.status.availableReplicas}"],
            "5",
        )
        .await?;
        k.ok(&["scale", &deploy, "--replicas=2"])?;
        rollout(&k, &name).await?;
        wait_until(
            &k,
            &[
                "get",
                "pods",
                "-l",
                &format!("app={name}"),
                "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image} {end}",
            ],
            "busybox:1 busybox:1",
        )
        .await?;

        // Paused: a template change makes no new ReplicaSet until resumed.
        k.ok(&["rollout", "pause", &deploy])?;
        wait_until(
            &k,
            &[
                "get",
                &deploy,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
            ],
            "DeploymentPaused",
        )
        .await?;
        k.ok(&["set", "image", &deploy, "busybox=busybox:3"])?;
        wait_until(
            &k,
            &[
                "get",
                &deploy,
                "-o",
                "jsonpath={.status.observedGeneration}",
            ],
            &k.ok(&["get", &deploy, "-o", "jsonpath={.metadata.generation}"])?,
        )
        .await?;
        let sets = k.ok(&["get", "rs", "-l", &format!("app={name}"), "--no-headers"])?;
        ensure!(sets.lines().count() == 2, "paused, yet: {sets}");
        k.ok(&["rollout", "resume", &deploy])?;
        rollout(&k, &name).await?;
        wait_until(
            &k,
            &[
                "get",
                "pods",
                "-l",
                &format!("app={name}"),
                "-o",
                "jsonpath={range .items[*]}{.spec.containers[0].image} {end}",
            ],
            "busybox:3 busybox:3",
        )
        .await?;

        // Restart: same image, new pods.
        let before = lines(&k.ok(&["get", "pods", "-l", &format!("app={name}"), "-o", "name"])?);
        k.ok(&["rollout", "restart", &deploy])?;
        rollout(&k, &name).await?;
        for _ in 0..100 {
            let now = lines(&k.ok(&["get", "pods", "-l", &format!("app={name}"), "-o", "name"])?);
            if now.len() == 2 && now.iter().all(|p| !before.contains(p)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let now = lines(&k.ok(&["get", "pods", "-l", &format!("app={name}"), "-o", "name"])?);
        ensure!(
            now.len() == 2 && now.iter().all(|p| !before.contains(p)),
            "restart left {now:?} (before {before:?})"
        );

        // Deleting the Deployment removes its ReplicaSets and pods.
        k.ok(&["delete", &deploy])?;
        wait_until(
            &k,
            &["get", "rs,pods", "-l", &format!("app={name}"), "-o", "name"],
            "",
        )
        .await?;
    }
    Ok(())
}
