//! A cairn node's runtime driven through `cairn ctr`, as a person would, and the busybox test
//! images it runs (built from Debian's busybox-static with umoci and skopeo: no network).
//!
//! [`Node`] owns a data directory and a run directory; on drop it removes every container it
//! still has with `cairn ctr rm -f` (which kills, unmounts and removes cgroups) and every
//! sandbox network namespace, so a failing test leaves no processes, mounts, cgroups or
//! namespaces behind.

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

    /// Runs `cairn ctr …` to its end with `input` as its stdin (then closed).
    pub fn ctr_with_input<I, S>(&self, args: I, input: &str) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        crate::process::output_with_input(&mut self.command(args), input.as_bytes())
            .context("running cairn ctr")
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

    /// Runs `cairn ctr …` and fails unless it fails saying `expected` on stderr.
    pub fn fails<I, S>(&self, args: I, expected: &str) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.ctr(&args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(expected) {
            bail!(
                "cairn ctr {args:?} should have failed saying {expected:?} ({}): {stderr}",
                out.status
            );
        }
        Ok(())
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
        if let Ok(names) = self.ok(["sandbox", "ls"]) {
            for name in names.lines() {
                let _ = self.ctr(["sandbox", "rm", name]);
            }
        }
    }
}

/// Adds to the test layout two index-tagged images: `multi` (amd64 and arm64/v8, whose Cmds
/// print `hello from amd64` and `hello from fake arm64`) and `riscv` (riscv64 only).
pub fn add_index_images(images: &TestImages) -> Result<()> {
    let dir = images.layout.parent().context("layout in a directory")?;
    sh(
        r#"
umoci tag --image oci:busybox busybox-amd64
umoci config --image oci:busybox-amd64 --config.cmd sh --config.cmd -c --config.cmd 'echo hello from amd64'
umoci tag --image oci:busybox busybox-arm64
umoci config --image oci:busybox-arm64 --architecture arm64 --config.cmd sh --config.cmd -c --config.cmd 'echo hello from fake arm64'
umoci tag --image oci:busybox busybox-riscv
umoci config --image oci:busybox-riscv --architecture riscv64 --config.cmd sh --config.cmd -c --config.cmd 'echo riscv'
python3 - <<'PY'
import hashlib, json
layout = json.load(open("oci/index.json"))
by_name = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in layout["manifests"]}
def desc(name, arch, variant=None):
    d = {k: by_name[name][k] for k in ("mediaType", "digest", "size")}
    d["platform"] = {"architecture": arch, "os": "linux"}
    if variant:
        d["platform"]["variant"] = variant
    return d
def add(tag, entries):
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}).encode()
    digest = hashlib.sha256(body).hexdigest()
    open("oci/blobs/sha256/" + digest, "wb").write(body)
    layout["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": "sha256:" + digest, "size": len(body),
        "annotations": {"org.opencontainers.image.ref.name": tag}})
add("multi", [desc("busybox-amd64", "amd64"), desc("busybox-arm64", "arm64", "v8")])
add("riscv", [desc("busybox-riscv", "riscv64")])
json.dump(layout, open("oci/index.json", "w"))
PY
"#,
        dir,
    )
}

/// Debian's docker-registry on 127.0.0.1, killed by PID on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub address: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `basic_auth` = (user, password) it demands those credentials.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: \"{address}\"}}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = basic_auth {
            // bcrypt at the lowest cost: the registry checks it on every request.
            let out = Command::new("python3")
                .args(["-W", "ignore", "-c"])
                .arg(format!(
                    "import crypt; print('{user}:' + crypt.crypt('{password}', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"
                ))
                .output()?;
            ensure_ok(&out, "htpasswd")?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout)?;
            config.push_str(&format!(
                "auth: {{htpasswd: {{realm: basic-realm, path: {}}}}}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let registry = Registry {
            address,
            child,
            _dir: dir,
        };
        for _ in 0..500 {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return Ok(registry);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        bail!("docker-registry did not listen on {}", registry.address)
    }

    /// Pushes `oci:<layout>:<tag>` (all platforms) as `<address>/<repo>`.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, creds: Option<&str>) -> Result<()> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--dest-tls-verify=false"]);
        if let Some(c) = creds {
            cmd.arg("--dest-creds").arg(c);
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}", self.address))
            .output()?;
        ensure_ok(&out, "skopeo copy")
    }
}

fn ensure_ok(out: &Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
