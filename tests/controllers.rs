//! The controller manager inside `cairn server`, driven with the real kubectl (1.27 and 1.33)
//! against hollow nodes: Deployments roll out, update, roll back, scale, pause, restart and
//! are deleted with their ReplicaSets and pods; Jobs finish or fail; DaemonSets cover the
//! nodes; CronJobs fire; a dead node's pods move.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
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
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    // The API answers (and the kubeconfig the hollow nodes read is written).
    wait_until(
        &k,
        &["get", "namespace", "default", "-o", "name"],
        "namespace/default",
    )
    .await?;
    let count = nodes.to_string();
    let hollow = HollowNodes::start(&server, &["--count", &count, "--cpu", "8"])?;
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

/// Polls `args` until `pred` holds for kubectl's output; returns that output.
async fn wait_for(
    k: &Kubectl,
    args: &[&str],
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    let mut last = String::new();
    for _ in 0..300 {
        let out = k.run(args)?;
        last = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && pred(&last) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "kubectl.{} {args:?}: never {what}; last printed {last:?}",
        k.version
    )
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

#[tokio::test(flavor = "multi_thread")]
async fn jobs_complete_fail_after_their_backoff_limit_and_expire() -> Result<()> {
    let (server, _nodes, _) = cluster(2).await?;
    for version in VERSIONS {
        let k = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let v = version.replace('.', "-");
        // One ["true"] pod: Complete.
        let ok = format!("ok-{v}");
        k.ok(&["create", "job", &ok, "--image=busybox", "--", "true"])?;
        k.ok(&[
            "wait",
            "--for=condition=complete",
            &format!("job/{ok}"),
            "--timeout=60s",
        ])?;
        let status = k.ok(&[
            "get",
            "job",
            &ok,
            "-o",
            "jsonpath={.status.succeeded}/{.status.active}",
        ])?;
        ensure!(status == "1/0", "{status}");
        let labels = k.ok(&[
            "get",
            "pods",
            "-l",
            &format!("job-name={ok}"),
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])?;
        ensure!(labels == "Succeeded", "{labels}");

        // Three completions, two at a time.
        let many = format!("many-{v}");
        k.ok_with_input(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {many}}}\nspec:\n  completions: 3\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: c, image: busybox, command: ['true']}}\n"
            ),
        )?;
        k.ok(&[
            "wait",
            "--for=condition=complete",
            &format!("job/{many}"),
            "--timeout=60s",
        ])?;
        let done = k.ok(&["get", "job", &many, "-o", "jsonpath={.status.succeeded}"])?;
        ensure!(done == "3", "{done}");
        let pods = k.ok(&[
            "get",
            "pods",
            "-l",
            &format!("job-name={many}"),
            "-o",
            "name",
        ])?;
        ensure!(pods.lines().count() == 3, "{pods}");

        // ["false"] pods: Failed once more than backoffLimit (1) have failed.
        let bad = format!("bad-{v}");
        k.ok_with_input(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {bad}}}\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: c, image: busybox, command: ['false']}}\n"
            ),
        )?;
        k.ok(&[
            "wait",
            "--for=condition=failed",
            &format!("job/{bad}"),
            "--timeout=120s",
        ])?;
        let reason = k.ok(&[
            "get",
            "job",
            &bad,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason} {.status.failed}",
        ])?;
        ensure!(reason == "BackoffLimitExceeded 2", "{reason}");
        let phases = k.ok(&[
            "get",
            "pods",
            "-l",
            &format!("job-name={bad}"),
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])?;
        ensure!(phases == "Failed Failed", "{phases}");

        // ttlSecondsAfterFinished: the finished Job goes, and its pods with it.
        let brief = format!("brief-{v}");
        k.ok_with_input(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {brief}}}\nspec:\n  ttlSecondsAfterFinished: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {{name: c, image: busybox, command: ['true']}}\n"
            ),
        )?;
        wait_until(
            &k,
            &[
                "get",
                "jobs,pods",
                "-l",
                &format!("job-name={brief}"),
                "-o",
                "name",
                "--ignore-not-found",
            ],
            "",
        )
        .await?;
        let gone = k.fails(&["get", "job", &brief])?;
        ensure!(gone.contains("NotFound"), "{gone}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn indexed_jobs_and_pod_failure_policies() -> Result<()> {
    let (_server, _nodes, k) = cluster(2).await?;
    // Indexed: one succeeded pod per index, each knowing its index.
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: shards}\nspec:\n  completionMode: Indexed\n  completions: 4\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {name: c, image: busybox, command: ['true']}\n",
    )?;
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/shards",
        "--timeout=60s",
    ])?;
    let status = k.ok(&[
        "get",
        "job",
        "shards",
        "-o",
        "jsonpath={.status.succeeded} {.status.completedIndexes}",
    ])?;
    ensure!(status == "4 0-3", "{status}");
    let pods = k.ok(&[
        "get",
        "pods",
        "-l",
        "job-name=shards",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.labels.batch\.kubernetes\.io/job-completion-index}:{.spec.hostname}:{.spec.containers[0].env[?(@.name=="JOB_COMPLETION_INDEX")].valueFrom.fieldRef.fieldPath} {end}"#,
    ])?;
    let field = "metadata.annotations['batch.kubernetes.io/job-completion-index']";
    let want: Vec<String> = (0..4).map(|i| format!("{i}:shards-{i}:{field}")).collect();
    ensure!(lines(&pods) == want, "{pods}");

    // FailJob: the first pod that exits 1 fails the Job, whatever its backoffLimit.
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: fatal}\nspec:\n  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [1]}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {name: main, image: busybox, command: ['false']}\n",
    )?;
    k.ok(&[
        "wait",
        "--for=condition=failed",
        "job/fatal",
        "--timeout=60s",
    ])?;
    let failed = k.ok(&[
        "get",
        "job",
        "fatal",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Failed")].reason}|{.status.conditions[?(@.type=="Failed")].message}|{.status.failed}"#,
    ])?;
    let parts: Vec<&str> = failed.split('|').collect();
    ensure!(
        parts.len() == 3
            && parts[0] == "PodFailurePolicy"
            && parts[1].starts_with("Container main for pod default/fatal-")
            && parts[1].ends_with("failed with exit code 1 matching FailJob rule at index 0")
            && parts[2] == "1",
        "{failed}"
    );

    // Ignore: exits of 1 do not count, so backoffLimit 0 is never reached; the pods are
    // replaced until the deadline.
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: flaky}\nspec:\n  backoffLimit: 0\n  activeDeadlineSeconds: 5\n  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onExitCodes: {operator: In, values: [1]}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {name: main, image: busybox, command: ['false']}\n",
    )?;
    k.ok(&[
        "wait",
        "--for=condition=failed",
        "job/flaky",
        "--timeout=60s",
    ])?;
    let reason = k.ok(&[
        "get",
        "job",
        "flaky",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Failed")].reason} {.status.failed}"#,
    ])?;
    ensure!(reason == "DeadlineExceeded 0", "{reason}");
    let tries = k.ok(&["get", "pods", "-l", "job-name=flaky", "-o", "name"])?;
    ensure!(tries.lines().count() >= 2, "replaced pods: {tries}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cronjob_fires_and_keeps_its_history_short() -> Result<()> {
    let (server, _nodes, k) = cluster(1).await?;
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: tick}\nspec:\n  schedule: '* * * * *'\n  successfulJobsHistoryLimit: 1\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - {name: c, image: busybox, command: ['true']}\n",
    )?;
    // One on Kolkata's clock (UTC+5:30, no daylight saving), every minute of this hour and the
    // next there: on UTC's clock those hours are five or six hours away, so it would not run.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let kolkata_hour = |secs: u64| (secs + 19_800) / 3600 % 24;
    let hours = format!("{},{}", kolkata_hour(now), kolkata_hour(now + 3600));
    k.ok_with_input(
        &["create", "-f", "-"],
        &format!("apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: local}}\nspec:\n  schedule: '* {hours} * * *'\n  timeZone: Asia/Kolkata\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - {{name: c, image: busybox, command: ['true']}}\n"),
    )?;
    // A zone that does not exist is refused as upstream refuses it.
    let refused = k.fails_with_input(
        &["create", "-f", "-"],
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nowhere}\nspec:\n  schedule: '* * * * *'\n  timeZone: Mars/Olympus\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - {name: c, image: busybox}\n",
    )?;
    ensure!(
        refused.contains(
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"
        ),
        "{refused}"
    );
    let k127 = Kubectl::new(VERSIONS[0], &server.kubeconfig(), server.dir())?;
    // A run every minute (named by its minute, as upstream names them); only the last
    // finished Job is kept.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..700 {
        let names = k127.ok(&["get", "jobs", "-o", "jsonpath={.items[*].metadata.name}"])?;
        seen.extend(names.split_whitespace().map(str::to_string));
        if seen.iter().filter(|n| n.starts_with("tick-")).count() >= 2
            && seen.iter().any(|n| n.starts_with("local-"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (zoned, seen): (Vec<String>, _) = seen.into_iter().partition(|n| n.starts_with("local-"));
    ensure!(seen.len() >= 2, "runs seen: {seen:?}");
    ensure!(seen.iter().all(|n| n.starts_with("tick-")), "{seen:?}");
    ensure!(!zoned.is_empty(), "the Kolkata CronJob never ran");
    let success = k.ok(&[
        "get",
        "cronjob",
        "tick",
        "-o",
        "jsonpath={.status.lastSuccessfulTime}",
    ])?;
    ensure!(!success.is_empty(), "no lastSuccessfulTime");
    for _ in 0..100 {
        let completed = k.ok(&[
            "get",
            "jobs",
            "-o",
            "jsonpath={range .items[?(@.status.succeeded==1)]}{.metadata.name} {end}",
        ])?;
        if completed
            .split_whitespace()
            .filter(|n| n.starts_with("tick-"))
            .count()
            <= 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let completed = k.ok(&[
        "get",
        "jobs",
        "-o",
        "jsonpath={range .items[?(@.status.succeeded==1)]}{.metadata.name} {end}",
    ])?;
    ensure!(
        completed
            .split_whitespace()
            .filter(|n| n.starts_with("tick-"))
            .count()
            <= 1,
        "history kept: {completed}"
    );
    // Deleting the CronJobs removes their Jobs.
    k.ok(&["delete", "cronjob", "tick", "local"])?;
    wait_until(&k, &["get", "jobs", "-o", "name"], "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemonset_covers_eligible_nodes_as_they_come_and_go() -> Result<()> {
    let (server, _nodes, k) = cluster(2).await?;
    // A tainted node the DaemonSet does not tolerate.
    let _tainted = HollowNodes::start(
        &server,
        &[
            "--count",
            "1",
            "--name-prefix",
            "tainted-",
            "--taint",
            "dedicated=db:NoSchedule",
        ],
    )?;
    wait_until(
        &k,
        &["get", "node", "tainted-0", "-o", "name"],
        "node/tainted-0",
    )
    .await?;
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers:\n      - {name: c, image: busybox}\n",
    )?;
    let on_nodes = "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.spec.nodeName} {end}";
    for version in VERSIONS {
        let kv = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let out = kv.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"])?;
        ensure!(out.contains("successfully rolled out"), "{out}");
    }
    wait_for(
        &k,
        &["get", "pods", "-l", "app=agent", "-o", on_nodes],
        "a pod on each untainted node",
        |o| lines(o) == ["hollow-0", "hollow-1"],
    )
    .await?;
    let status = k.ok(&[
        "get",
        "ds",
        "agent",
        "-o",
        "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}",
    ])?;
    ensure!(status == "2/2", "{status}");

    // A node joins: it gets a pod; it leaves: the pod goes.
    let mut joined = HollowNodes::start(&server, &["--count", "1", "--name-prefix", "late-"])?;
    wait_for(
        &k,
        &["get", "pods", "-l", "app=agent", "-o", on_nodes],
        "a pod on the new node",
        |o| lines(o) == ["hollow-0", "hollow-1", "late-0"],
    )
    .await?;
    joined.terminate()?;
    k.ok(&["delete", "node", "late-0"])?;
    wait_for(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ],
        "the pod of the deleted node gone",
        |o| lines(o) == ["hollow-0", "hollow-1"],
    )
    .await?;
    let status = k.ok(&[
        "get",
        "ds",
        "agent",
        "-o",
        "jsonpath={.status.desiredNumberScheduled}",
    ])?;
    ensure!(status == "2", "{status}");

    // A template change replaces the pods, one node at a time.
    k.ok(&["set", "image", "daemonset/agent", "c=busybox:2"])?;
    k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"])?;
    wait_until(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
        "busybox:2 busybox:2",
    )
    .await?;

    // Both templates are revisions; undo brings the first back as revision 3.
    history_and_undo(
        &server,
        &k,
        "daemonset/agent",
        "app=agent",
        ["busybox", "busybox:2"],
    )
    .await?;
    k.ok(&["delete", "daemonset", "agent"])?;
    wait_until(
        &k,
        &[
            "get",
            "controllerrevisions",
            "-l",
            "app=agent",
            "-o",
            "name",
        ],
        "",
    )
    .await
}

/// The revision numbers `kubectl rollout history` lists for `workload`.
fn revisions(k: &Kubectl, workload: &str) -> Result<Vec<String>> {
    let out = k.ok(&["rollout", "history", workload])?;
    Ok(out
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// For a workload (pods labelled `selector`) whose template went from image `images[0]` to
/// `images[1]`: its history lists both as ControllerRevisions of this controller, with each
/// kubectl; `--revision=1` shows the first template; undo brings it back as revision 3 and
/// the pods follow.
async fn history_and_undo(
    server: &Server,
    k: &Kubectl,
    workload: &str,
    selector: &str,
    images: [&str; 2],
) -> Result<()> {
    let (kind, name) = workload.split_once('/').context("kind/name")?;
    for version in VERSIONS {
        let kv = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let listed = revisions(&kv, workload)?;
        ensure!(
            listed == ["1", "2"],
            "kubectl.{version} rollout history: {listed:?}"
        );
        let first = kv.ok(&["rollout", "history", workload, "--revision=1"])?;
        let image = first
            .lines()
            .find_map(|l| l.trim().strip_prefix("Image:"))
            .map(str::trim);
        ensure!(
            image == Some(images[0]),
            "kubectl.{version} rollout history --revision=1:\n{first}"
        );
    }
    let table = k.ok(&["get", "controllerrevisions", "-l", selector, "--no-headers"])?;
    let controller = format!("{kind}.apps/{name}");
    ensure!(
        table.lines().count() == 2 && table.lines().all(|l| l.contains(&controller)),
        "{table}"
    );
    let out = k.ok(&["rollout", "undo", workload])?;
    ensure!(out.contains("rolled back"), "{out}");
    k.ok(&["rollout", "status", workload, "--timeout=60s"])?;
    wait_for(
        k,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
        "the pods back on the first template",
        |o| !o.is_empty() && o.split_whitespace().all(|i| i == images[0]),
    )
    .await?;
    let listed = revisions(k, workload)?;
    ensure!(listed == ["2", "3"], "after undo: {listed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_pods_move_to_a_live_node() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    opts.control_loops = true;
    let server = Server::start(opts).await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    wait_until(
        &k,
        &["get", "namespace", "default", "-o", "name"],
        "namespace/default",
    )
    .await?;
    let mut doomed = HollowNodes::start(&server, &["--count", "1", "--name-prefix", "doomed-"])?;
    wait_until(
        &k,
        &[
            "get",
            "node",
            "doomed-0",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        "True",
    )
    .await?;
    // The pods tolerate an unreachable node for 2 s only (the default is 300 s).
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: mover}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: mover}}\n  template:\n    metadata: {labels: {app: mover}}\n    spec:\n      tolerations:\n      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}\n      containers:\n      - {name: c, image: busybox}\n",
    )?;
    k.ok(&["rollout", "status", "deployment/mover", "--timeout=60s"])?;
    wait_until(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=mover",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ],
        "doomed-0 doomed-0",
    )
    .await?;
    let _alive = HollowNodes::start(&server, &["--count", "1", "--name-prefix", "alive-"])?;
    wait_until(
        &k,
        &[
            "get",
            "node",
            "alive-0",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        "True",
    )
    .await?;

    // Kill the node's process: no more heartbeats.
    doomed.terminate()?;
    for _ in 0..120 {
        let ready = k.ok(&[
            "get",
            "node",
            "doomed-0",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])?;
        if ready == "Unknown" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = k.ok(&[
        "get",
        "node",
        "doomed-0",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
    ])?;
    ensure!(ready == "NodeStatusUnknown", "Ready reason: {ready}");
    let taints = k.ok(&[
        "get",
        "node",
        "doomed-0",
        "-o",
        "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
    ])?;
    ensure!(
        lines(&taints)
            == [
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule"
            ],
        "{taints}"
    );
    // The pods are evicted and replaced on the live node.
    let live_pods = "jsonpath={range .items[*]}{.spec.nodeName}:{.metadata.deletionTimestamp}:{.status.conditions[?(@.type==\"Ready\")].status} {end}";
    let out = wait_for(
        &k,
        &["get", "pods", "-l", "app=mover", "-o", live_pods],
        "two live pods on alive-0",
        |o| {
            o.split_whitespace()
                .filter(|p| !p.contains("Z:"))
                .collect::<Vec<_>>()
                == ["alive-0::True", "alive-0::True"]
        },
    )
    .await?;
    ensure!(
        out.contains("doomed-0:"),
        "the evicted pods stay until their node confirms: {out}"
    );
    k.ok(&["rollout", "status", "deployment/mover", "--timeout=60s"])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_orphan_or_wait_for_dependents_as_asked() -> Result<()> {
    let (server, _nodes, _) = cluster(1).await?;
    for version in VERSIONS {
        let k = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let name = format!("gc-{}", version.replace('.', "-"));
        let app = format!("app={name}");
        k.ok(&[
            "create",
            "deployment",
            &name,
            "--image=busybox",
            "--replicas=2",
        ])?;
        rollout(&k, &name).await?;
        let rs = k.ok(&[
            "get",
            "rs",
            "-l",
            &app,
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])?;

        // Orphan: the Deployment goes, its ReplicaSet and pods stay, without the owner.
        k.ok(&["delete", "deployment", &name, "--cascade=orphan"])?;
        let owners = k.ok(&[
            "get",
            "rs",
            &rs,
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ])?;
        ensure!(owners.is_empty(), "still owned: {owners}");
        let pods = k.ok(&["get", "pods", "-l", &app, "-o", "name"])?;
        ensure!(pods.lines().count() == 2, "{pods}");

        // Foreground: kubectl waits until the pods went first, then the ReplicaSet.
        k.ok(&["delete", "rs", &rs, "--cascade=foreground", "--timeout=60s"])?;
        let left = k.ok(&["get", "rs,pods", "-l", &app, "-o", "name"])?;
        ensure!(left.is_empty(), "left after a foreground delete: {left}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_namespace_gets_a_default_service_account() -> Result<()> {
    let (_server, _nodes, k) = cluster(1).await?;
    k.ok(&["create", "namespace", "team"])?;
    wait_until(
        &k,
        &[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "team",
            "-o",
            "name",
        ],
        "serviceaccount/default",
    )
    .await?;
    k.ok(&["delete", "serviceaccount", "default", "-n", "team"])?;
    wait_until(
        &k,
        &[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "team",
            "-o",
            "name",
        ],
        "serviceaccount/default",
    )
    .await?;
    wait_until(
        &k,
        &[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "default",
            "-o",
            "name",
        ],
        "serviceaccount/default",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_services_endpoints_follow_its_ready_pods() -> Result<()> {
    let (_server, _nodes, k) = cluster(2).await?;
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
    ])?;
    rollout(&k, "web").await?;
    k.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ])?;
    let pod_ips = || -> Result<Vec<String>> {
        Ok(lines(&k.ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ])?))
    };
    let ips = pod_ips()?;
    ensure!(ips.len() == 2, "{ips:?}");
    let endpoints = "jsonpath={.subsets[*].addresses[*].ip}";
    wait_for(
        &k,
        &["get", "endpoints", "web", "-o", endpoints],
        "both pods in the endpoints",
        |o| lines(o) == ips,
    )
    .await?;
    let port = k.ok(&[
        "get",
        "endpoints",
        "web",
        "-o",
        "jsonpath={.subsets[0].ports[0].port}",
    ])?;
    ensure!(port == "8080", "{port}");
    let slices = "jsonpath={range .items[*]}{range .endpoints[*]}{.addresses[0]} {end}{end}";
    wait_for(
        &k,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            slices,
        ],
        "both pods in the slice",
        |o| lines(o) == ips,
    )
    .await?;

    k.ok(&["scale", "deployment", "web", "--replicas=3"])?;
    rollout(&k, "web").await?;
    let ips = pod_ips()?;
    ensure!(ips.len() == 3, "{ips:?}");
    wait_for(
        &k,
        &["get", "endpoints", "web", "-o", endpoints],
        "three pods in the endpoints",
        |o| lines(o) == ips,
    )
    .await?;
    wait_for(
        &k,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            slices,
        ],
        "three pods in the slice",
        |o| lines(o) == ips,
    )
    .await?;

    // Past a hundred endpoints the addresses are split across slices, none over a hundred.
    k.ok(&["scale", "deployment", "web", "--replicas=130"])?;
    rollout(&k, "web").await?;
    let ips = pod_ips()?;
    ensure!(ips.len() == 130, "{} pods", ips.len());
    let per_slice =
        r#"jsonpath={range .items[*]}{range .endpoints[*]}{.addresses[0]},{end}{"\n"}{end}"#;
    let out = wait_for(
        &k,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            per_slice,
        ],
        "130 pods in two slices",
        |o| lines(&o.replace(',', " ")) == ips && o.lines().count() == 2,
    )
    .await?;
    let sizes: Vec<usize> = out
        .lines()
        .map(|l| l.split(',').filter(|a| !a.is_empty()).count())
        .collect();
    ensure!(sizes.iter().all(|&n| n <= 100), "slice sizes {sizes:?}");

    k.ok(&["scale", "deployment", "web", "--replicas=0"])?;
    wait_for(
        &k,
        &["get", "endpoints", "web", "-o", endpoints],
        "no endpoints",
        str::is_empty,
    )
    .await?;
    // Deleting the Service removes its Endpoints and (through the garbage collector) slices.
    k.ok(&["delete", "service", "web"])?;
    wait_until(
        &k,
        &[
            "get",
            "endpoints,endpointslices",
            "-l",
            "app=web",
            "-o",
            "name",
        ],
        "",
    )
    .await?;
    wait_until(
        &k,
        &[
            "get",
            "endpoints",
            "web",
            "--ignore-not-found",
            "-o",
            "name",
        ],
        "",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statefulset_keeps_stable_names_in_order() -> Result<()> {
    let (server, _nodes, k) = cluster(2).await?;
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  replicas: 3\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers:\n      - {name: c, image: busybox:1}\n",
    )?;
    for version in VERSIONS {
        let kv = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let out = kv.ok(&["rollout", "status", "statefulset/db", "--timeout=60s"])?;
        ensure!(out.contains("roll"), "{out}");
    }
    let names =
        "jsonpath={range .items[*]}{.metadata.name}/{.spec.hostname}/{.spec.subdomain} {end}";
    wait_for(
        &k,
        &["get", "pods", "-l", "app=db", "-o", names],
        "db-0..2",
        |o| lines(o) == ["db-0/db-0/db", "db-1/db-1/db", "db-2/db-2/db"],
    )
    .await?;
    // Scaling down removes the highest ordinal.
    k.ok(&["scale", "statefulset", "db", "--replicas=2"])?;
    wait_for(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        "db-2 gone",
        |o| lines(o) == ["db-0", "db-1"],
    )
    .await?;
    // An update replaces every pod, keeping the names.
    k.ok(&["set", "image", "statefulset/db", "c=busybox:2"])?;
    k.ok(&["rollout", "status", "statefulset/db", "--timeout=60s"])?;
    wait_for(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}",
        ],
        "both pods updated",
        |o| lines(o) == ["db-0=busybox:2", "db-1=busybox:2"],
    )
    .await?;
    history_and_undo(
        &server,
        &k,
        "statefulset/db",
        "app=db",
        ["busybox:1", "busybox:2"],
    )
    .await?;
    k.ok(&["delete", "statefulset", "db"])?;
    wait_until(&k, &["get", "pods", "-l", "app=db", "-o", "name"], "").await?;
    wait_until(
        &k,
        &["get", "controllerrevisions", "-l", "app=db", "-o", "name"],
        "",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicaset_adopts_orphans_and_releases_pods_that_stop_matching() -> Result<()> {
    let (_server, _nodes, k) = cluster(1).await?;
    k.ok(&["run", "stray", "--image=busybox", "--labels=app=rs"])?;
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: rs}}\n  template:\n    metadata: {labels: {app: rs}}\n    spec:\n      containers:\n      - {name: c, image: busybox}\n",
    )?;
    // The stray pod is adopted and counts: one more pod makes two.
    wait_until(&k, &["get", "pod", "stray", "-o", "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}"], "ReplicaSet/rs/true").await?;
    wait_until(&k, &["get", "rs", "rs", "-o", "jsonpath={.status.replicas}/{.status.readyReplicas}/{.status.availableReplicas}/{.status.fullyLabeledReplicas}"], "2/2/2/2").await?;
    let pods = k.ok(&["get", "pods", "-l", "app=rs", "-o", "name"])?;
    ensure!(pods.lines().count() == 2, "{pods}");
    // Relabelled, it is released and replaced.
    k.ok(&["label", "pod", "stray", "app=gone", "--overwrite"])?;
    wait_until(
        &k,
        &[
            "get",
            "pod",
            "stray",
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ],
        "",
    )
    .await?;
    wait_for(
        &k,
        &[
            "get",
            "pods",
            "-l",
            "app=rs",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
        ],
        "a replacement",
        |o| o.lines().count() == 2 && !o.contains("stray"),
    )
    .await?;
    // Scaled down, it deletes a pod; the released one stays.
    k.ok(&["scale", "rs", "rs", "--replicas=1"])?;
    wait_until(
        &k,
        &["get", "rs", "rs", "-o", "jsonpath={.status.replicas}"],
        "1",
    )
    .await?;
    k.ok(&["get", "pod", "stray"])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_that_cannot_progress_says_so() -> Result<()> {
    let (server, _nodes, k) = cluster(1).await?;
    // Its pods fit no node, so the rollout cannot finish within its 2 s deadline.
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: stuck}\nspec:\n  progressDeadlineSeconds: 2\n  replicas: 1\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      nodeSelector: {disk: none}\n      containers:\n      - {name: c, image: busybox}\n",
    )?;
    wait_until(
        &k,
        &[
            "get",
            "deployment",
            "stuck",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
        ],
        "ProgressDeadlineExceeded",
    )
    .await?;
    for version in VERSIONS {
        let kv = Kubectl::new(version, &server.kubeconfig(), server.dir())?;
        let err = kv.fails(&["rollout", "status", "deployment/stuck", "--timeout=30s"])?;
        ensure!(err.contains("exceeded its progress deadline"), "{err}");
    }
    let available = k.ok(&[
        "get",
        "deployment",
        "stuck",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
    ])?;
    ensure!(available == "False", "{available}");
    Ok(())
}
