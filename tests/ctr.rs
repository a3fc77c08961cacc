//! A cairn node's runtime driven through `cairn ctr`, as a person would, and the busybox test
//! images it runs (built from Debian's busybox-static with umoci and skopeo: no network).
//!
//! [`Node`] owns a data directory and a run directory; on drop it removes every container it
//! still has with `cairn ctr rm -f` (which kills, unmounts and removes cgroups), so a failing
//! test leaves no processes, mounts or cgroups behind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::cairn_server::cairn_binary;

/// The busybox image tarballs built for a test.
pub struct TestImages {
    /// An oci-archive of `docker.io/library/busybox:test`.
    pub oci_archive: PathBuf,
    /// A docker-archive of `docker.io/library/busybox:docker` (the same layers).
    pub docker_archive: PathBuf,
    /// The OCI layout both were made from (`oci:<layout>:busybox`).
    pub layout: PathBuf,
}

fn sh(script: &str, dir: &Path) -> Result<()> {
    let out = Command::new("sh")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .context("running sh")?;
    if !out.status.success() {
        bail!(
            "image setup failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Builds a two-layer busybox image in `dir`: layer 1 has busybox and its applets, users
/// `root` and `app` (1000, also in group `video` 44), `/etc/motd`, `/data/sub/old`, a hard link
/// and a device node; layer 2 deletes `/etc/motd` and `/data/sub` (whiteouts) and adds
/// `/etc/layer2` and `/data/new`. Its Cmd prints `hello from busybox`.
pub fn build_images(dir: &Path) -> Result<TestImages> {
    sh(
        r#"
umoci init --layout oci
umoci new --image oci:busybox
umoci unpack --image oci:busybox b1 >/dev/null
R=b1/rootfs
mkdir -p $R/bin $R/etc $R/tmp $R/proc $R/sys $R/dev $R/home/app $R/data/sub
cp /bin/busybox $R/bin/
chroot $R /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' > $R/etc/passwd
printf 'root:x:0:\napp:x:1000:\nvideo:x:44:app\n' > $R/etc/group
echo gone > $R/etc/motd
echo old > $R/data/sub/old
chmod 1777 $R/tmp
chown 1000:1000 $R/home/app
ln $R/etc/passwd $R/etc/passwd.hard
mknod $R/dev/nullish c 1 3
umoci repack --image oci:busybox b1 >/dev/null
rm -rf b1
umoci unpack --image oci:busybox b2 >/dev/null
R=b2/rootfs
rm $R/etc/motd
rm -rf $R/data/sub
echo two > $R/etc/layer2
echo new > $R/data/new
umoci repack --image oci:busybox b2 >/dev/null
rm -rf b2
umoci config --image oci:busybox --config.cmd sh --config.cmd -c \
    --config.cmd 'echo hello from busybox' --config.env PATH=/bin --os linux --architecture amd64
skopeo copy -q oci:oci:busybox oci-archive:busybox-oci.tar:docker.io/library/busybox:test
skopeo copy -q oci:oci:busybox docker-archive:busybox-docker.tar:docker.io/library/busybox:docker
"#,
        dir,
    )?;
    Ok(TestImages {
        oci_archive: dir.join("busybox-oci.tar"),
        docker_archive: dir.join("busybox-docker.tar"),
        layout: dir.join("oci"),
    })
}

/// A node's runtime state: data and run directories, used through `cairn ctr`.
pub struct Node {
    /// Holds `data/`, `run/` and the test images.
    pub dir: tempfile::TempDir,
}

impl Node {
    /// A fresh node.
    pub fn new() -> Result<Self> {
        Ok(Node {
            dir: tempfile::tempdir()?,
        })
    }

    /// `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `--run-dir`.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A `cairn ctr …` command for this node.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(cairn_binary());
        cmd.arg("ctr")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(args);
        cmd
    }

    /// Runs `cairn ctr …` to its end.
    pub fn ctr<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().context("running cairn ctr")
    }

    /// Runs `cairn ctr …` and fails unless it succeeds; returns its stdout.
    pub fn ok<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.ctr(&args)?;
        if !out.status.success() {
            bail!(
                "cairn ctr {:?} failed ({}): {}{}",
                args,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The STATUS column of `cairn ctr ps` for `name`.
    pub fn status(&self, name: &str) -> Result<Option<String>> {
        let ps = self.ok(["ps"])?;
        Ok(ps
            .lines()
            .skip(1)
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" ")))
    }

    /// The ID column of `cairn ctr ps` for `name`.
    pub fn id(&self, name: &str) -> Result<String> {
        let ps = self.ok(["ps"])?;
        ps.lines()
            .skip(1)
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
            .with_context(|| format!("{name} not in ps:\n{ps}"))
    }

    /// The init pid of a running container, from `cairn ctr ps`.
    pub fn pid(&self, name: &str) -> Result<i32> {
        let status = self.status(name)?.context("no such container")?;
        status
            .strip_prefix("running (pid ")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{name} is not running: {status}"))
    }

    /// Imports the test images; returns them.
    pub fn import_test_images(&self) -> Result<TestImages> {
        let images = build_images(self.dir.path())?;
        self.ok([
            OsStr::new("images"),
            OsStr::new("import"),
            images.oci_archive.as_os_str(),
        ])?;
        self.ok([
            OsStr::new("images"),
            OsStr::new("import"),
            images.docker_archive.as_os_str(),
        ])?;
        Ok(images)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let Ok(ps) = self.ok(["ps"]) else { return };
        for line in ps.lines().skip(1) {
            if let Some(name) = line.split_whitespace().next() {
                let _ = self.ctr(["rm", "-f", name]);
            }
        }
    }
}
