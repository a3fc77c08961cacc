//! The real kubectl, oldest and newest supported (1.27 and 1.33), against a real cairn server:
//! the commands users type, checked by what kubectl prints.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use anyhow::{Result, ensure};
use cairn_tests::kubectl::{Kubectl, VERSIONS};
use cairn_tests::{Server, ServerOpts};

async fn server() -> Result<Server> {
    Server::start(ServerOpts::single()?).await
}

fn kubectls(server: &Server) -> Result<Vec<Kubectl>> {
    VERSIONS
        .iter()
        .map(|v| Kubectl::new(v, &server.kubeconfig(), server.dir()))
        .collect()
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        env:
        - {{name: A, value: '1'}}
        - {{name: B, value: '2'}}
"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_version_and_system_namespaces() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let ns = k.ok(&["get", "namespaces", "-o", "name"])?;
        for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            ensure!(
                ns.contains(&format!("namespace/{want}\n")),
                "{}: {want} missing from {ns}",
                k.version
            );
        }
        let version = k.ok(&["version"])?;
        ensure!(version.contains("v1.33.1+cairn"), "{version}");
        let resources = k.ok(&["api-resources"])?;
        for line in [
            "deployments   deploy   apps/v1   true   Deployment",
            "pods          po       v1        true   Pod",
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            ensure!(
                resources
                    .lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>() == words),
                "{}: no {line:?} in\n{resources}",
                k.version
            );
        }
        let groups = k.ok(&["api-versions"])?;
        ensure!(groups.contains("apps/v1") && groups.contains("coordination.k8s.io/v1"));
        let metrics = k.ok(&["get", "--raw", "/metrics"])?;
        ensure!(
            metrics.contains(
                "cairn_apiserver_requests_total{verb=\"list\",resource=\"namespaces\",code=\"200\"}"
            ),
            "{metrics}"
        );
        ensure!(metrics.contains("cairn_kv_revision "), "{metrics}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_then_leaves_unchanged_then_configures() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let name = format!("web-{}", k.version.replace('.', ""));
        let out = k.ok_with_input(&["apply", "-f", "-"], &deployment(&name, 2, "nginx:1.27"))?;
        ensure!(
            out.trim() == format!("deployment.apps/{name} created"),
            "{out}"
        );
        let out = k.ok_with_input(&["apply", "-f", "-"], &deployment(&name, 2, "nginx:1.27"))?;
        ensure!(
            out.trim() == format!("deployment.apps/{name} unchanged"),
            "{out}"
        );
        let out = k.ok_with_input(&["apply", "-f", "-"], &deployment(&name, 3, "nginx:1.28"))?;
        ensure!(
            out.trim() == format!("deployment.apps/{name} configured"),
            "{out}"
        );
        let got = k.ok(&[
            "get",
            "deployment",
            &name,
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}",
        ])?;
        ensure!(got == "3 nginx:1.28 2", "{}: {got}", k.version);
        let out = k.ok(&["delete", "deployment", &name])?;
        ensure!(
            out.trim() == format!("deployment.apps \"{name}\" deleted"),
            "{out}"
        );
        let err = k.fails(&["get", "deployment", &name])?;
        ensure!(
            err.contains(&format!(
                "Error from server (NotFound): deployments.apps \"{name}\" not found"
            )),
            "{err}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_formats_and_stale_replace() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let name = format!("cfg-{}", k.version.replace('.', ""));
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  greeting: hello\n"
        );
        let out = k.ok_with_input(&["create", "-f", "-"], &manifest)?;
        ensure!(out.trim() == format!("configmap/{name} created"), "{out}");
        let err = k.fails_with_input(&["create", "-f", "-"], &manifest)?;
        ensure!(
            err.contains(&format!(
                "Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"{name}\" already exists"
            )),
            "{err}"
        );
        let yaml = k.ok(&["get", "configmap", &name, "-o", "yaml"])?;
        ensure!(yaml.contains("greeting: hello") && yaml.contains("resourceVersion: "));
        ensure!(yaml.contains("uid: ") && yaml.contains("creationTimestamp: "));
        let json: serde_json::Value =
            serde_json::from_str(&k.ok(&["get", "configmap", &name, "-o", "json"])?)?;
        ensure!(json["data"]["greeting"] == "hello" && json["kind"] == "ConfigMap");
        let listed = k.ok(&["get", "configmaps", "-o", "name"])?;
        ensure!(listed.contains(&format!("configmap/{name}")), "{listed}");
        // Page by page (limit and continue) gives the same list.
        let paged = k.ok(&["get", "configmaps", "-o", "name", "--chunk-size=1"])?;
        ensure!(paged == listed, "paged:\n{paged}\nwhole:\n{listed}");

        // A replace with the version read before someone else changed it is refused.
        k.ok(&["label", "configmap", &name, "changed=yes"])?;
        let stale = yaml.replace("greeting: hello", "greeting: stale");
        let err = k.fails_with_input(&["replace", "-f", "-"], &stale)?;
        ensure!(
            err.contains(&format!(
                "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            )),
            "{err}"
        );
        let greeting = k.ok(&["get", "configmap", &name, "-o", "jsonpath={.data.greeting}"])?;
        ensure!(
            greeting == "hello",
            "the stale replace changed the object: {greeting}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_label_annotate_scale() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let name = format!("p-{}", k.version.replace('.', ""));
        k.ok_with_input(&["apply", "-f", "-"], &deployment(&name, 1, "nginx:1"))?;
        let out = k.ok(&["scale", "deployment", &name, "--replicas=4"])?;
        ensure!(
            out.trim() == format!("deployment.apps/{name} scaled"),
            "{out}"
        );
        k.ok(&["label", "deployment", &name, "tier=frontend"])?;
        k.ok(&["annotate", "deployment", &name, "note=hi"])?;
        k.ok(&[
            "patch",
            "deployment",
            &name,
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ])?;
        k.ok(&[
            "patch",
            "deployment",
            &name,
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/minReadySeconds","value":5}]"#,
        ])?;
        // A strategic merge patch changes the one container it names and keeps the rest.
        k.ok(&[
            "patch",
            "deployment",
            &name,
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}"#,
        ])?;
        let got = k.ok(&[
            "get",
            "deployment",
            &name,
            "-o",
            "jsonpath={.spec.replicas} {.metadata.labels.tier} {.metadata.annotations.note} {.spec.paused} {.spec.minReadySeconds} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[1].name}",
        ])?;
        ensure!(
            got == "4 frontend hi true 5 nginx:2 B",
            "{}: {got}",
            k.version
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn get_watch_prints_changes() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let name = format!("w-{}", k.version.replace('.', ""));
        let mut child = k.spawn(&["get", "configmaps", "-w", "-o", "name"])?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Give the watch a moment to start, then change things.
        tokio::time::sleep(Duration::from_millis(500)).await;
        k.ok(&["create", "configmap", &name, "--from-literal=a=b"])?;
        let want = format!("configmap/{name}");
        let seen = (0..50).any(|_| {
            rx.recv_timeout(Duration::from_millis(200))
                .is_ok_and(|l| l == want)
        });
        let _ = child.kill();
        let _ = child.wait();
        ensure!(seen, "{}: kubectl get -w never printed {want}", k.version);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifests_are_refused_with_upstreams_errors() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let err = k.fails_with_input(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
        )?;
        ensure!(
            err.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
            "{}: {err}",
            k.version
        );
        let err = k.fails_with_input(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n  namespace: nowhere\n",
        )?;
        ensure!(
            err.contains("namespaces \"nowhere\" not found"),
            "{}: {err}",
            k.version
        );
        let err = k.fails_with_input(
            &["create", "--validate=false", "-f", "-"],
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: typed\nspec:\n  replicas: many\n",
        )?;
        ensure!(
            err.contains("Error from server (BadRequest)"),
            "{}: {err}",
            k.version
        );
        // Kind rules: a template that its selector does not select.
        let err = k.fails_with_input(
            &["apply", "-f", "-"],
            &deployment("mismatch", 1, "nginx").replace(
                "    metadata:\n      labels: {app: mismatch}",
                "    metadata:\n      labels: {app: other}",
            ),
        )?;
        ensure!(
            err.contains("\"mismatch\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}")
                && err.contains("`selector` does not match template `labels`"),
            "{}: {err}",
            k.version
        );
        // Past upstream's 3 MiB request limit.
        let huge = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n  blob: {}\n",
            "x".repeat(3_300_000)
        );
        let err = k.fails_with_input(&["create", "--validate=false", "-f", "-"], &huge)?;
        ensure!(
            err.to_lowercase().contains("request entity too large"),
            "{}: {err}",
            k.version
        );
        // Nothing of the refused objects was stored.
        let names = k.ok(&["get", "configmaps,deployments", "-A", "-o", "name"])?;
        ensure!(
            !names.contains("Bad_Name") && !names.contains("typed"),
            "{names}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_every_object() -> Result<()> {
    let mut server = server().await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    k.ok_with_input(&["apply", "-f", "-"], &deployment("keep", 2, "nginx:1"))?;
    k.ok(&["create", "namespace", "kept"])?;
    let before = k.ok(&[
        "get",
        "deployment",
        "keep",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
    ])?;
    server.restart().await?;
    let after = k.ok(&[
        "get",
        "deployment",
        "keep",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.resourceVersion}",
    ])?;
    ensure!(before == after, "{before} != {after}");
    let ns = k.ok(&["get", "namespace", "kept", "-o", "name"])?;
    ensure!(ns.trim() == "namespace/kept");
    Ok(())
}

/// A kubeconfig for `server` with `user` (a map of kubeconfig user fields) instead of the admin.
fn kubeconfig_with_user(
    server: &Server,
    file: &str,
    user: serde_yaml::Value,
) -> Result<std::path::PathBuf> {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(server.kubeconfig())?)?;
    config["users"][0]["user"] = user;
    let path = server.dir().join(file);
    std::fs::write(&path, serde_yaml::to_string(&config)?)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_and_nodes_are_refused_as_upstream_refuses_them() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    let scratch = tempfile::tempdir()?;
    let tokens = scratch.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "node1-secret,system:node:n1,u1,system:nodes\nbob-secret,bob,u2,\n",
    )?;
    opts.extra_args = vec!["--token-auth-file".into(), tokens.display().to_string()];
    let server = Server::start(opts).await?;
    let other = server_b().await?;
    let admin = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    for node in ["n1", "n2"] {
        admin.ok_with_input(
            &["create", "-f", "-"],
            &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {node}}}\n"),
        )?;
    }
    // No credentials at all: only the health and version endpoints answer (kubectl would
    // prompt for a password here, so curl asks).
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(server.kubeconfig())?)?;
    let ca = scratch.path().join("ca.crt");
    let ca_b64 = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap_or_default();
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("piped")
                .write_all(ca_b64.as_bytes())?;
            c.wait_with_output()
        })?;
    std::fs::write(&ca, decoded.stdout)?;
    let url = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or_default();
    for (path, want) in [
        ("/api/v1/pods", "\"code\":401"),
        ("/healthz", "ok"),
        ("/version", "v1.33.1+cairn"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&ca)
            .arg(format!("{url}{path}"))
            .output()?;
        let body = String::from_utf8_lossy(&out.stdout);
        ensure!(body.contains(want), "anonymous {path}: {body}");
    }
    for k in kubectls(&server)? {
        // A token nobody issued.
        let forged = kubeconfig_with_user(
            &server,
            "forged.yaml",
            serde_yaml::from_str("token: forged")?,
        )?;
        let err = k.with_kubeconfig(&forged).fails(&["get", "pods"])?;
        ensure!(
            err.contains("You must be logged in to the server"),
            "{}: {err}",
            k.version
        );
        // A client certificate from another cluster's CA.
        let theirs: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(other.kubeconfig())?)?;
        let foreign =
            kubeconfig_with_user(&server, "foreign.yaml", theirs["users"][0]["user"].clone())?;
        let err = k.with_kubeconfig(&foreign).fails(&["get", "pods"])?;
        ensure!(
            !err.is_empty(),
            "{}: a foreign certificate was accepted",
            k.version
        );
        // A server whose certificate is not from the kubeconfig's CA.
        let wrong_ca = other.dir().join("wrong-ca.yaml");
        let mut config: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(other.kubeconfig())?)?;
        let ours: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(server.kubeconfig())?)?;
        config["clusters"][0]["cluster"]["server"] =
            ours["clusters"][0]["cluster"]["server"].clone();
        std::fs::write(&wrong_ca, serde_yaml::to_string(&config)?)?;
        let err = k.with_kubeconfig(&wrong_ca).fails(&["get", "pods"])?;
        ensure!(err.contains("certificate"), "{}: {err}", k.version);

        // An authenticated user with no rights.
        let bob = kubeconfig_with_user(
            &server,
            "bob.yaml",
            serde_yaml::from_str("token: bob-secret")?,
        )?;
        let err = k.with_kubeconfig(&bob).fails(&["get", "pods"])?;
        ensure!(
            err.contains("Error from server (Forbidden): pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
            "{}: {err}",
            k.version
        );
        let can = k
            .with_kubeconfig(&bob)
            .run(&["auth", "can-i", "list", "pods"])?;
        ensure!(
            String::from_utf8_lossy(&can.stdout).trim() == "no",
            "{}: {can:?}",
            k.version
        );

        // A node: its own Node yes, another's no, secrets no.
        let node = kubeconfig_with_user(
            &server,
            "node.yaml",
            serde_yaml::from_str("token: node1-secret")?,
        )?;
        let n = k.with_kubeconfig(&node);
        n.ok(&[
            "label",
            "node",
            "n1",
            "--overwrite",
            &format!("seen={}", k.version.replace('.', "")),
        ])?;
        let err = n.fails(&["label", "node", "n2", "--overwrite", "seen=no"])?;
        ensure!(
            err.contains("nodes \"n2\" is forbidden: User \"system:node:n1\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope"),
            "{}: {err}",
            k.version
        );
        let err = n.fails(&["get", "secrets", "-n", "kube-system"])?;
        ensure!(err.contains("Forbidden"), "{}: {err}", k.version);
        let out = k.ok(&["auth", "can-i", "create", "deployments"])?;
        ensure!(out.trim() == "yes", "{}: {out}", k.version);
    }
    Ok(())
}

async fn server_b() -> Result<Server> {
    let ip = cairn_tests::ports::loopback(1);
    Server::start(ServerOpts {
        name: "other".into(),
        ..ServerOpts::member(1, cairn_tests::cairn_server::Ports::allocate(&[ip])?)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn generators_tables_describe_and_explain() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        // kubectl 1.33 sends these bodies as protobuf, 1.27 as JSON.
        let ns = format!("gen{}", k.version.replace('.', ""));
        let n = ns.as_str();
        let out = k.ok(&["create", "namespace", n])?;
        ensure!(out.trim() == format!("namespace/{n} created"), "{out}");
        k.ok(&["create", "configmap", "c", "--from-literal=a=b", "-n", n])?;
        k.ok(&[
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=p=q",
            "-n",
            n,
        ])?;
        k.ok(&[
            "create",
            "deployment",
            "d",
            "--image=nginx:1.27",
            "--replicas=2",
            "-n",
            n,
        ])?;
        k.ok(&["run", "web", "--image=nginx", "-n", n])?;
        let secret = k.ok(&["get", "secret", "s", "-n", n, "-o", "jsonpath={.data.p}"])?;
        ensure!(secret == "cQ==", "{}: {secret}", k.version);

        let pods = k.ok(&["get", "pods", "-n", n])?;
        let header: Vec<&str> = pods
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(
            header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{pods}"
        );
        let row: Vec<&str> = pods
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(row[..4] == ["web", "0/1", "Pending", "0"], "{pods}");
        let wide = k.ok(&["get", "pods", "-o", "wide", "-n", n])?;
        ensure!(
            wide.lines()
                .next()
                .unwrap_or_default()
                .contains("IP       NODE"),
            "{wide}"
        );
        let deploy = k.ok(&["get", "deployments", "-n", n])?;
        let header: Vec<&str> = deploy
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(
            header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "{deploy}"
        );
        let all = k.ok(&["get", "all", "-n", n])?;
        ensure!(
            all.contains("pod/web") && all.contains("deployment.apps/d"),
            "{all}"
        );
        let labels = k.ok(&["get", "pods", "--show-labels", "-n", n])?;
        ensure!(labels.contains("run=web"), "{labels}");
        let everywhere = k.ok(&["get", "configmaps", "-A"])?;
        ensure!(
            everywhere.lines().any(|l| l.starts_with(&format!("{n} "))),
            "{everywhere}"
        );

        let described = k.ok(&["describe", "deployment", "d", "-n", n])?;
        ensure!(
            described.contains("Replicas:") && described.contains("nginx:1.27"),
            "{described}"
        );
        let explained = k.ok(&["explain", "pod.spec.nodeName"])?;
        ensure!(
            explained.contains("FIELD: nodeName <string>"),
            "{explained}"
        );
        ensure!(explained.to_lowercase().contains("node"), "{explained}");
        let explained = k.ok(&["explain", "deployment.spec.replicas"])?;
        ensure!(
            explained.contains("replicas") && explained.contains("<integer>"),
            "{explained}"
        );

        let out = k.ok(&["delete", "pod", "web", "-n", n])?;
        ensure!(out.trim() == "pod \"web\" deleted", "{out}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_deletion_waits_for_its_finalizer() -> Result<()> {
    // Without the controller manager, nothing empties and finalizes the namespace.
    let server = server().await?;
    let k = Kubectl::new(VERSIONS[0], &server.kubeconfig(), server.dir())?;
    k.ok_with_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n",
    )?;
    k.ok(&["delete", "namespace", "doomed", "--wait=false"])?;
    let phase = k.ok(&[
        "get",
        "namespace",
        "doomed",
        "-o",
        "jsonpath={.status.phase}",
    ])?;
    ensure!(phase == "Terminating", "{phase}");
    let err = k.fails_with_input(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: doomed}\n",
    )?;
    ensure!(
        err.contains(
            "unable to create new content in namespace doomed because it is being terminated"
        ),
        "{err}"
    );
    // What the namespace controller does once the content is gone.
    k.ok_with_input(
        &["replace", "--raw", "/api/v1/namespaces/doomed/finalize", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"},"spec":{"finalizers":[]}}"#,
    )?;
    let err = k.fails(&["get", "namespace", "doomed"])?;
    ensure!(err.contains("namespaces \"doomed\" not found"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_owns_fields_and_reports_conflicts() -> Result<()> {
    let server = server().await?;
    for k in kubectls(&server)? {
        let name = format!("ssa-{}", k.version.replace('.', ""));
        let config = |value: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"{value}\"\n"
            )
        };
        let out = k.ok_with_input(&["apply", "--server-side", "-f", "-"], &config("1"))?;
        ensure!(
            out.trim() == format!("configmap/{name} serverside-applied"),
            "{out}"
        );
        k.ok_with_input(&["apply", "--server-side", "-f", "-"], &config("1"))?;
        let err = k.fails_with_input(
            &["apply", "--server-side", "--field-manager=other", "-f", "-"],
            &config("2"),
        )?;
        ensure!(
            err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.a"),
            "{}: {err}",
            k.version
        );
        ensure!(err.contains("--force-conflicts"), "{err}");
        k.ok_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=other",
                "--force-conflicts",
                "-f",
                "-",
            ],
            &config("2"),
        )?;
        let got: serde_json::Value = serde_json::from_str(&k.ok(&[
            "get",
            "configmap",
            &name,
            "-o",
            "json",
            "--show-managed-fields",
        ])?)?;
        ensure!(got["data"]["a"] == "2", "{got}");
        let owners: Vec<(String, bool)> = got["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["manager"].as_str().unwrap_or_default().to_string(),
                    e["fieldsV1"]["f:data"]["f:a"].is_object(),
                )
            })
            .collect();
        ensure!(owners.contains(&("other".into(), true)), "{owners:?}");
        ensure!(!owners.contains(&("kubectl".into(), true)), "{owners:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_are_bound_once_and_deleted_gracefully() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    let scratch = tempfile::tempdir()?;
    let tokens = scratch.path().join("tokens.csv");
    std::fs::write(&tokens, "n1-secret,system:node:n1,u1,system:nodes\n")?;
    opts.extra_args = vec!["--token-auth-file".into(), tokens.display().to_string()];
    let server = Server::start(opts).await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    let node = k.with_kubeconfig(&kubeconfig_with_user(
        &server,
        "n1.yaml",
        serde_yaml::from_str("token: n1-secret")?,
    )?);
    k.ok(&["run", "web", "--image=nginx"])?;
    k.ok(&["run", "other", "--image=nginx"])?;
    let binding = |pod: &str, node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{pod}"}},"target":{{"kind":"Node","name":"{node}"}}}}"#
        )
    };
    k.ok_with_input(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/web/binding",
            "-f",
            "-",
        ],
        &binding("web", "n1"),
    )?;
    let err = k.fails_with_input(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/web/binding",
            "-f",
            "-",
        ],
        &binding("web", "n2"),
    )?;
    ensure!(err.contains("is already assigned to node \"n1\""), "{err}");
    let got = k.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.spec.nodeName} {.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ])?;
    ensure!(got == "n1 True", "{got}");

    // The node may read and update the status of its own pod, not of another's.
    let status = r#"{"status":{"phase":"Running"}}"#;
    node.ok(&[
        "patch",
        "pod",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ])?;
    let err = node.fails(&[
        "patch",
        "pod",
        "other",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ])?;
    ensure!(err.contains("Forbidden"), "{err}");
    let phase = k.ok(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"])?;
    ensure!(phase == "Running", "{phase}");

    // A running pod bound to a node is marked and left for the node to stop...
    k.ok(&["delete", "pod", "web", "--wait=false"])?;
    let marked = k.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.deletionGracePeriodSeconds}",
    ])?;
    ensure!(marked == "30", "{marked}");
    // ...which removes it once its containers have stopped.
    node.ok(&["delete", "pod", "web", "--grace-period=0", "--force"])?;
    let err = k.fails(&["get", "pod", "web"])?;
    ensure!(err.contains("pods \"web\" not found"), "{err}");
    // An unbound pod goes at once.
    k.ok(&["delete", "pod", "other"])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_served_in_both_versions() -> Result<()> {
    let server = server().await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: default}
involvedObject: {kind: Pod, name: web, namespace: default}
reason: Scheduled
message: assigned default/web to n1
type: Normal
source: {component: default-scheduler}
",
    )?;
    let new = k.ok(&[
        "get",
        "events.v1.events.k8s.io",
        "web.1",
        "-o",
        "jsonpath={.regarding.name} {.note} {.reason} {.deprecatedSource.component}",
    ])?;
    ensure!(
        new == "web assigned default/web to n1 Scheduled default-scheduler",
        "{new}"
    );
    k.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web.2, namespace: default}
eventTime: 2026-11-25T10:00:00.000000Z
reportingController: cairn.io/scheduler
reportingInstance: n1
action: Binding
reason: Scheduled
regarding: {kind: Pod, name: web, namespace: default}
note: second
type: Normal
",
    )?;
    let old = k.ok(&[
        "get",
        "events",
        "--field-selector=involvedObject.name=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.message};{end}",
    ])?;
    ensure!(
        old == "web.1=assigned default/web to n1;web.2=second;",
        "{old}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_server_of_a_cluster_serves_the_same_objects() -> Result<()> {
    let cluster = cairn_tests::Cluster::start(3).await?;
    let on = |i: usize| {
        Kubectl::new(
            VERSIONS[1],
            &cluster.nodes[i].kubeconfig(),
            cluster.nodes[i].dir(),
        )
    };
    on(0)?.ok_with_input(&["apply", "-f", "-"], &deployment("shared", 1, "nginx:1"))?;
    // A write through another server, then consistent reads everywhere see both.
    on(2)?.ok(&["scale", "deployment", "shared", "--replicas=3"])?;
    for i in 0..3 {
        let got = on(i)?.ok(&[
            "get",
            "deployment",
            "shared",
            "-o",
            "jsonpath={.spec.replicas}",
        ])?;
        ensure!(got == "3", "server {i}: {got}");
        let listed = on(i)?.ok(&["get", "deployments", "-o", "name"])?;
        ensure!(
            listed.trim() == "deployment.apps/shared",
            "server {i}: {listed}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_namespace_deletes_its_content() -> Result<()> {
    let mut opts = ServerOpts::single()?;
    opts.control_loops = true;
    let server = Server::start(opts).await?;
    let k = Kubectl::new(VERSIONS[1], &server.kubeconfig(), server.dir())?;
    k.ok_with_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: gone}\n",
    )?;
    k.ok_with_input(
        &["apply", "-n", "gone", "-f", "-"],
        &deployment("web", 1, "nginx"),
    )?;
    k.ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        "gone",
        "--from-literal=a=b",
    ])?;
    // kubectl waits until the namespace is gone.
    let out = k.ok(&["delete", "namespace", "gone", "--timeout=60s"])?;
    ensure!(out.trim() == "namespace \"gone\" deleted", "{out}");
    let left = k.ok(&["get", "deployments,configmaps", "-n", "gone", "-o", "name"])?;
    ensure!(left.trim().is_empty(), "{left}");
    Ok(())
}
