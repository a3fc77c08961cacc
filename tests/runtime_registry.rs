//! `cairn ctr images pull` against Debian's docker-registry on 127.0.0.1 (anonymous and with
//! basic auth), images pushed with skopeo from a busybox layout built in the test (no network),
//! endpoints and credentials from a k3s-format registries.yaml.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use cairn_tests::ctr::{Node, Registry, add_index_images, build_images};

fn registries_yaml(node: &Node, text: &str) -> Result<PathBuf> {
    let path = node.dir.path().join("registries.yaml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn pull(node: &Node, config: &Path, name: &str) -> Result<std::process::Output> {
    node.ctr([
        "--private-registry".as_ref(),
        config.as_os_str(),
        "images".as_ref(),
        "pull".as_ref(),
        name.as_ref(),
    ])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn pulls_single_images_and_this_platform_from_an_index() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    add_index_images(&images)?;
    let registry = Registry::start(None)?;
    registry.push(&images.layout, "busybox", "busybox:test", None)?;
    registry.push(&images.layout, "multi", "busybox:multi", None)?;
    registry.push(&images.layout, "riscv", "busybox:riscv", None)?;
    let a = &registry.address;
    let config = registries_yaml(
        &node,
        &format!("mirrors:\n  \"{a}\":\n    endpoint: [\"http://{a}\"]\n"),
    )?;

    let out = pull(&node, &config, &format!("{a}/busybox:test"))?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let run = node.ok(["run", "--rm", &format!("{a}/busybox:test"), "c"])?;
    ensure!(run == "hello from busybox\n", "{run:?}");

    let out = pull(&node, &config, &format!("{a}/busybox:multi"))?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let run = node.ok(["run", "--rm", &format!("{a}/busybox:multi"), "c"])?;
    ensure!(
        run == "hello from amd64\n",
        "picked the wrong platform: {run:?}"
    );
    // Same layers as busybox:test: nothing new unpacked.
    ensure!(std::fs::read_dir(node.data_dir().join("agent/snapshots"))?.count() == 2);

    let out = pull(&node, &config, &format!("{a}/busybox:riscv"))?;
    ensure!(
        !out.status.success() && text(&out.stderr).contains("no image for platform linux/amd64"),
        "{}",
        text(&out.stderr)
    );
    let out = pull(&node, &config, &format!("{a}/busybox:missing"))?;
    ensure!(
        !out.status.success() && text(&out.stderr).contains("registry"),
        "{}",
        text(&out.stderr)
    );
    let out = pull(&node, &config, "Not A Reference")?;
    ensure!(
        !out.status.success() && text(&out.stderr).contains("invalid reference"),
        "{}",
        text(&out.stderr)
    );
    let ls = node.ok(["images", "ls"])?;
    ensure!(ls.lines().count() == 3, "{ls}");
    Ok(())
}

#[test]
fn pulls_with_basic_auth_from_registries_yaml_and_refuses_wrong_credentials() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    let registry = Registry::start(Some(("testuser", "testpass")))?;
    registry.push(
        &images.layout,
        "busybox",
        "private/busybox:1.35",
        Some("testuser:testpass"),
    )?;
    let a = &registry.address;
    let name = format!("{a}/private/busybox:1.35");
    let mirror = format!("mirrors:\n  \"{a}\":\n    endpoint: [\"http://{a}\"]\n");

    let none = registries_yaml(&node, &mirror)?;
    let out = pull(&node, &none, &name)?;
    ensure!(
        !out.status.success() && text(&out.stderr).to_lowercase().contains("not authorized"),
        "{}",
        text(&out.stderr)
    );

    let wrong = registries_yaml(
        &node,
        &format!(
            "{mirror}configs:\n  \"{a}\":\n    auth: {{username: testuser, password: wrong}}\n"
        ),
    )?;
    let out = pull(&node, &wrong, &name)?;
    ensure!(
        !out.status.success() && text(&out.stderr).to_lowercase().contains("not authorized"),
        "{}",
        text(&out.stderr)
    );
    ensure!(node.ok(["images", "ls"])?.lines().count() == 1);
    ensure!(
        std::fs::read_dir(node.data_dir().join("agent/images/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );

    // base64 of user:password, as in k3s's `auth:` key.
    let right = registries_yaml(
        &node,
        &format!("{mirror}configs:\n  \"{a}\":\n    auth: {{auth: dGVzdHVzZXI6dGVzdHBhc3M=}}\n"),
    )?;
    let out = pull(&node, &right, &name)?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let run = node.ok(["run", "--rm", &name, "c", "--", "cat", "/etc/layer2"])?;
    ensure!(run == "two\n", "{run:?}");
    Ok(())
}

#[test]
fn a_mirror_rewrite_changes_the_repository_asked_for_but_not_the_image_name() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    let registry = Registry::start(None)?;
    registry.push(
        &images.layout,
        "busybox",
        "mirrorproject/rancher-images/busybox:test",
        None,
    )?;
    let a = &registry.address;
    // docker.io mirrored by the loopback registry, with one rewrite rule.
    let with_rewrite = |rule: &str| {
        registries_yaml(
            &node,
            &format!(
                "mirrors:\n  docker.io:\n    endpoint: [\"http://{a}\"]\n    rewrite:\n      {rule}\n"
            ),
        )
    };
    // k3s's example: docker.io/rancher/* kept under mirrorproject/rancher-images/ on the mirror.
    let config = with_rewrite("\"^rancher/(.*)\": \"mirrorproject/rancher-images/$1\"")?;
    let out = pull(&node, &config, "rancher/busybox:test")?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let ls = node.ok(["images", "ls"])?;
    ensure!(ls.contains("docker.io/rancher/busybox:test"), "{ls}");
    ensure!(!ls.contains("mirrorproject"), "{ls}");
    let run = node.ok(["run", "--rm", "rancher/busybox:test", "c"])?;
    ensure!(run == "hello from busybox\n", "{run:?}");

    // A rewrite that is not a regular expression: refused before anything is asked.
    let bad = with_rewrite("\"^(rancher\": \"x\"")?;
    let out = pull(&node, &bad, "rancher/busybox:test")?;
    ensure!(
        !out.status.success() && text(&out.stderr).contains("rewrite \"^(rancher\""),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
