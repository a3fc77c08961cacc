//! `cairn-bench runtime`: the container runtime against runc and crun, side by side in one run.
//!
//! One cycle is create + start + wait + delete of a busybox `true` container, each as a whole
//! process as a user runs it: `cairn ctr run --rm`, `runc run`, `crun run`, interleaved round by
//! round so that all three see the same machine. It also times importing a ~50 MB oci-archive
//! with `cairn ctr images import` against `skopeo copy` of the same tarball into an OCI layout.
//! crun refuses hybrid cgroup hosts unless `/sys/fs/cgroup/unified/cgroup.controllers` is empty,
//! so on such a host the whole benchmark re-executes itself in a private mount namespace where
//! an empty file is bind-mounted over it (all three runtimes then run under the same view).
//! The last line reads `cycle median: cairn X ms, runc Y ms, crun Z ms`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// `cairn-bench runtime` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measured rounds (after one warm-up round).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// The cairn binary (default: `cairn` beside this one).
    #[arg(long)]
    cairn_bin: Option<PathBuf>,
    /// Size of the import image's extra layer, in MiB.
    #[arg(long, default_value_t = 50)]
    import_mib: u64,
}

const NS_ENV: &str = "CAIRN_BENCH_RUNTIME_NS";
const UNIFIED_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// Runs the benchmark.
pub async fn run(args: Args) -> Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

fn run_blocking(args: Args) -> Result<()> {
    let hybrid = std::fs::read_to_string(UNIFIED_CONTROLLERS).is_ok_and(|c| !c.trim().is_empty());
    if hybrid && std::env::var_os(NS_ENV).is_none() {
        let empty = tempfile::NamedTempFile::new()?;
        let status = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind \"$CAIRN_BENCH_EMPTY\" {UNIFIED_CONTROLLERS} && exec \"$@\""
            ))
            .arg("sh")
            .args(std::env::args_os())
            .env(NS_ENV, "1")
            .env("CAIRN_BENCH_EMPTY", empty.path())
            .status()
            .context("re-executing in a private mount namespace (unshare)")?;
        ensure!(status.success(), "benchmark failed: {status}");
        return Ok(());
    }
    let cairn = crate::targets::cairn_bin(args.cairn_bin)?;
    ensure!(
        cairn.exists(),
        "no cairn binary at {} (build it or pass --cairn-bin)",
        cairn.display()
    );
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    println!("building images in {} …", d.display());
    build(d, args.import_mib)?;
    let data = d.join("data");
    let run = d.join("run");
    let ctr = |extra: &[&str]| {
        let mut c = Command::new(&cairn);
        c.arg("ctr")
            .arg("--data-dir")
            .arg(&data)
            .arg("--run-dir")
            .arg(&run)
            .args(extra);
        c
    };
    quiet(ctr(&[
        "images",
        "import",
        path_str(&d.join("busybox.tar"))?,
    ]))?;

    // Import: cairn vs skopeo, same tarball, fresh destination each time.
    let mut cairn_import = Vec::new();
    let mut skopeo_import = Vec::new();
    for i in 0..3 {
        let dest = d.join(format!("import-{i}"));
        let t = Instant::now();
        let mut c = Command::new(&cairn);
        c.arg("ctr")
            .arg("--data-dir")
            .arg(&dest)
            .arg("--run-dir")
            .arg(&run)
            .args(["images", "import"])
            .arg(d.join("big.tar"));
        quiet(c)?;
        cairn_import.push(t.elapsed());
        let t = Instant::now();
        let mut s = Command::new("skopeo");
        s.args(["copy", "-q"])
            .arg(format!("oci-archive:{}", d.join("big.tar").display()))
            .arg(format!("oci:{}:big", dest.join("skopeo").display()));
        quiet(s)?;
        skopeo_import.push(t.elapsed());
    }

    let bundle = d.join("bundle");
    let mut runc = Vec::new();
    let mut crun = Vec::new();
    let mut ours = Vec::new();
    for round in 0..=args.rounds {
        let id = format!("bench{round}");
        let t = Instant::now();
        quiet(ctr(&[
            "run",
            "--rm",
            "docker.io/library/busybox:bench",
            &id,
            "--",
            "true",
        ]))?;
        let cairn_t = t.elapsed();
        let t = Instant::now();
        let mut c = Command::new("runc");
        c.arg("--root")
            .arg(d.join("runc-state"))
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(&id);
        quiet(c)?;
        let runc_t = t.elapsed();
        let t = Instant::now();
        let mut c = Command::new("crun");
        c.arg("--root")
            .arg(d.join("crun-state"))
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(&id);
        quiet(c)?;
        let crun_t = t.elapsed();
        if round > 0 {
            ours.push(cairn_t);
            runc.push(runc_t);
            crun.push(crun_t);
        }
    }
    println!();
    println!(
        "| create+start+wait+delete (`true`), {} rounds | median | p99 |",
        args.rounds
    );
    println!("|---|---|---|");
    for (name, v) in [
        ("cairn ctr run --rm", &mut ours),
        ("runc run", &mut runc),
        ("crun run", &mut crun),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms |",
            ms(pct(v, 50.0)),
            ms(pct(v, 99.0))
        );
    }
    println!();
    println!(
        "| import of a {} MiB oci-archive, 3 runs | median |",
        args.import_mib
    );
    println!("|---|---|");
    println!(
        "| cairn ctr images import | {:.0} ms |",
        ms(pct(&mut cairn_import, 50.0))
    );
    println!(
        "| skopeo copy oci-archive: → oci: | {:.0} ms |",
        ms(pct(&mut skopeo_import, 50.0))
    );
    println!();
    println!(
        "cycle median: cairn {:.1} ms, runc {:.1} ms, crun {:.1} ms",
        ms(pct(&mut ours, 50.0)),
        ms(pct(&mut runc, 50.0)),
        ms(pct(&mut crun, 50.0))
    );
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

fn quiet(mut c: Command) -> Result<()> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {c:?}"))?;
    if !out.status.success() {
        bail!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A busybox image (docker-archive), a big image (oci-archive, busybox plus a random layer of
/// `mib` MiB) and a runc/crun bundle of the same busybox rootfs running `true`.
fn build(d: &Path, mib: u64) -> Result<()> {
    let script = format!(
        r#"
umoci init --layout oci
umoci new --image oci:bench
umoci unpack --image oci:bench b >/dev/null
mkdir -p b/rootfs/bin b/rootfs/proc b/rootfs/sys b/rootfs/dev b/rootfs/tmp
cp /bin/busybox b/rootfs/bin/
chroot b/rootfs /bin/busybox --install -s /bin
umoci repack --image oci:bench b >/dev/null
umoci config --image oci:bench --config.env PATH=/bin --config.cmd true
skopeo copy -q oci:oci:bench docker-archive:busybox.tar:docker.io/library/busybox:bench
mkdir -p bundle && cp -a b/rootfs bundle/rootfs
rm -rf b
umoci unpack --image oci:bench b >/dev/null
head -c {mib}M /dev/urandom > b/rootfs/big
umoci repack --image oci:bench b >/dev/null
rm -rf b
skopeo copy -q oci:oci:bench oci-archive:big.tar:docker.io/library/big:bench
cd bundle && runc spec
"#
    );
    let out = Command::new("sh")
        .arg("-euc")
        .arg(script)
        .current_dir(d)
        .output()?;
    if !out.status.success() {
        bail!(
            "building the benchmark images failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config = d.join("bundle/config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["true"]);
    spec["root"]["path"] = d.join("bundle/rootfs").display().to_string().into();
    std::fs::write(&config, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}
