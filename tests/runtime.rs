//! cairn's container runtime end to end, as root: `cairn ctr` imports busybox tarballs built
//! from Debian's busybox-static (docker-archive and oci-archive, plain, gzip and zstd) and runs
//! containers through libcontainer in cairn's shim. Each test owns a data and run directory and
//! removes its containers (processes, mounts, cgroups) when it ends.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cairn_tests::ctr::{Node, build_images};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn images_dir(node: &Node) -> PathBuf {
    node.data_dir().join("agent/images")
}

/// What a user checks after a failed import: no image listed, no blob, no snapshot, no
/// half-written file.
fn assert_nothing_imported(node: &Node) -> Result<()> {
    let ls = node.ok(["images", "ls"])?;
    ensure!(
        ls.lines().count() == 1,
        "images listed after a failed import:\n{ls}"
    );
    let images = images_dir(node);
    ensure!(
        count_entries(&images.join("blobs/sha256")) == 0,
        "blobs left"
    );
    ensure!(
        count_entries(&images.join("ingest")) == 0,
        "ingest files left"
    );
    ensure!(
        count_entries(&node.data_dir().join("agent/snapshots")) == 0,
        "snapshots left"
    );
    Ok(())
}

fn compress(tool: &str, file: &Path) -> Result<PathBuf> {
    let ext = if tool == "gzip" { "gz" } else { "zst" };
    let out = file.with_extension(format!("tar.{ext}"));
    let status = Command::new(tool)
        .arg("-c")
        .arg(file)
        .stdout(fs::File::create(&out)?)
        .status()?;
    ensure!(status.success(), "{tool} failed");
    Ok(out)
}

#[test]
fn imports_docker_and_oci_archives_plain_gzip_and_zstd() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    let gz = compress("gzip", &images.oci_archive)?;
    let zst = compress("zstd", &images.docker_archive)?;
    for file in [&gz, &zst] {
        let out = node.ok([
            std::ffi::OsStr::new("images"),
            "import".as_ref(),
            file.as_os_str(),
        ])?;
        ensure!(out.contains("docker.io/library/busybox:"), "{out}");
    }
    let ls = node.ok(["images", "ls"])?;
    ensure!(ls.contains("docker.io/library/busybox:test"), "{ls}");
    ensure!(ls.contains("docker.io/library/busybox:docker"), "{ls}");
    // Both tarballs hold the same two layers: each is unpacked once and shared.
    let snapshots = node.data_dir().join("agent/snapshots");
    ensure!(
        count_entries(&snapshots) == 2,
        "snapshots: {}",
        count_entries(&snapshots)
    );
    // Both images run.
    for image in ["busybox:test", "busybox:docker"] {
        let out = node.ok(["run", "--rm", image, "hello"])?;
        ensure!(out == "hello from busybox\n", "{image}: {out:?}");
    }
    // Removing one image keeps the shared snapshots; removing the other collects everything.
    node.ok(["images", "rm", "busybox:test"])?;
    ensure!(count_entries(&snapshots) == 2);
    node.ok(["images", "rm", "docker.io/library/busybox:docker"])?;
    assert_nothing_imported(&node)?;
    node.fails(["images", "rm", "busybox:test"], "not found")?;
    Ok(())
}

#[test]
fn air_gap_tarballs_in_the_images_dir_are_imported_once() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    let dir = images_dir(&node);
    fs::create_dir_all(&dir)?;
    fs::copy(
        compress("gzip", &images.oci_archive)?,
        dir.join("busybox.tar.gz"),
    )?;
    fs::write(dir.join("broken.tar"), b"not a tarball")?;
    // The next command imports them (and says so), refusing the broken one.
    let first = node.ctr(["images", "ls"])?;
    ensure!(
        stdout(&first).contains("docker.io/library/busybox:test"),
        "{}",
        stdout(&first)
    );
    ensure!(
        stderr(&first).contains("imported docker.io/library/busybox:test from busybox.tar.gz"),
        "{}",
        stderr(&first)
    );
    ensure!(stderr(&first).contains("broken.tar"), "{}", stderr(&first));
    // Once: neither is looked at again while unchanged.
    let second = node.ctr(["images", "ls"])?;
    ensure!(stderr(&second).is_empty(), "{}", stderr(&second));
    node.ok(["run", "--rm", "busybox:test", "c", "--", "true"])?;
    // A file that appears later is imported by the command after.
    fs::copy(&images.docker_archive, dir.join("docker.tar"))?;
    let ls = node.ok(["images", "ls"])?;
    ensure!(ls.contains("docker.io/library/busybox:docker"), "{ls}");
    // An image removed by hand stays removed while its tarball is unchanged.
    node.ok(["images", "rm", "docker.io/library/busybox:docker"])?;
    let ls = node.ok(["images", "ls"])?;
    ensure!(!ls.contains("busybox:docker"), "{ls}");
    // Taken away and put back (same size and mtime, as `mv` does): imported again.
    let aside = node.dir.path().join("aside.tar");
    fs::rename(dir.join("docker.tar"), &aside)?;
    node.ok(["images", "ls"])?;
    fs::rename(&aside, dir.join("docker.tar"))?;
    let ls = node.ok(["images", "ls"])?;
    ensure!(ls.contains("docker.io/library/busybox:docker"), "{ls}");
    Ok(())
}

#[test]
fn layers_keep_whiteouts_links_devices_and_ownership() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let snapshots = node.data_dir().join("agent/snapshots");
    let mut found_device = false;
    let mut found_whiteout = false;
    for entry in fs::read_dir(&snapshots)? {
        let fs_dir = entry?.path().join("fs");
        if let Ok(m) = fs::symlink_metadata(fs_dir.join("dev/nullish")) {
            ensure!(m.file_type().is_char_device() && m.rdev() == nix_makedev(1, 3));
            let a = fs::metadata(fs_dir.join("etc/passwd"))?;
            let b = fs::metadata(fs_dir.join("etc/passwd.hard"))?;
            ensure!(a.ino() == b.ino(), "hard link not kept");
            ensure!(fs::metadata(fs_dir.join("home/app"))?.uid() == 1000);
            ensure!(
                fs::symlink_metadata(fs_dir.join("bin/sh"))?
                    .file_type()
                    .is_symlink()
            );
            ensure!(fs::metadata(fs_dir.join("tmp"))?.mode() & 0o7777 == 0o1777);
            found_device = true;
        }
        if fs_dir.join("etc/layer2").exists() {
            let m = fs::symlink_metadata(fs_dir.join("etc/motd"))?;
            ensure!(
                m.file_type().is_char_device() && m.rdev() == 0,
                "whiteout not in overlay form"
            );
            let m = fs::symlink_metadata(fs_dir.join("data/sub"))?;
            ensure!(
                m.file_type().is_char_device() && m.rdev() == 0,
                "directory whiteout not in overlay form"
            );
            found_whiteout = true;
        }
    }
    ensure!(found_device && found_whiteout);
    // Inside a container the upper layer hides what it deleted.
    let out = node.ok([
        "run",
        "--rm",
        "busybox:test",
        "c",
        "--",
        "sh",
        "-c",
        "cat /etc/layer2; ls /data; test -e /etc/motd || echo motd-gone; stat -c %u /home/app",
    ])?;
    ensure!(out == "two\nnew\nmotd-gone\n1000\n", "{out:?}");
    Ok(())
}

fn nix_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfffff000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffffff00) << 12)
        | (minor & 0xff)
}

#[test]
fn exit_code_and_both_streams_reach_the_cri_log() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let out = node.ctr([
        "run",
        "busybox:test",
        "c",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ])?;
    ensure!(
        out.status.code() == Some(3),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    ensure!(stdout(&out) == "out\n", "{:?}", stdout(&out));
    ensure!(stderr(&out) == "err\n", "{:?}", stderr(&out));
    ensure!(node.status("c")?.as_deref() == Some("exited (3)"));
    let log = fs::read_to_string(node.data_dir().join("agent/containers/c/container.log"))?;
    let records: Vec<Vec<&str>> = log.lines().map(|l| l.splitn(4, ' ').collect()).collect();
    ensure!(records.len() == 2, "{log}");
    for r in &records {
        ensure!(
            r[0].ends_with('Z') && r[0].contains('T') && r[0].len() == 30,
            "timestamp {:?}",
            r[0]
        );
    }
    let mut streams: Vec<(&str, &str, &str)> = records.iter().map(|r| (r[1], r[2], r[3])).collect();
    streams.sort();
    ensure!(
        streams == vec![("stderr", "F", "err"), ("stdout", "F", "out")],
        "{log}"
    );
    let logs = node.ctr(["logs", "c"])?;
    ensure!(stdout(&logs) == "out\n" && stderr(&logs) == "err\n");
    node.ok(["rm", "c"])?;
    ensure!(node.status("c")?.is_none());
    Ok(())
}

/// `ctr run` forks its shim (a single-threaded caller); a caller with threads, such as the agent,
/// re-executes the binary as `cairn shim start`, which `CAIRN_SHIM=exec` forces. Both shims
/// stream the output to an attached `run` while the container runs, give its exit code, serve
/// `exec` and `stop`, and outlive their starter.
#[test]
fn forked_and_re_executed_shims_behave_alike() -> Result<()> {
    use std::io::{BufRead, BufReader};
    let node = Node::new()?;
    node.import_test_images()?;
    for (mode, re_executed) in [("fork", false), ("exec", true)] {
        let name = format!("attached-{mode}");
        let mut run = node
            .command([
                "run",
                "busybox:test",
                &name,
                "--",
                "sh",
                "-c",
                "echo first; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; exit 7",
            ])
            .env("CAIRN_SHIM", mode)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(run.stdout.take().context("stdout")?).lines();
        let first = lines.next().context("no output")??;
        ensure!(first == "first", "{mode}: {first:?}");
        // The line came while the container still runs (it waits for /tmp/go).
        ensure!(
            node.status(&name)?
                .is_some_and(|s| s.starts_with("running")),
            "{mode}: {:?}",
            node.status(&name)?
        );
        let cmdline = fs::read(format!("/proc/{}/cmdline", shim_pid(&node, &name)?))?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        ensure!(
            cmdline.contains(" shim ") == re_executed,
            "{mode}: the shim runs {cmdline:?}"
        );
        node.ok(["exec", &name, "--", "touch", "/tmp/go"])?;
        ensure!(
            lines.next().context("no second line")?? == "second",
            "{mode}"
        );
        let status = run.wait()?;
        ensure!(status.code() == Some(7), "{mode}: {status:?}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut run.stderr.take().context("stderr")?, &mut err)?;
        ensure!(err == "err\n", "{mode}: {err:?}");

        let name = format!("detached-{mode}");
        let out = node
            .command([
                "run",
                "--detach",
                "busybox:test",
                &name,
                "--",
                "sleep",
                "300",
            ])
            .env("CAIRN_SHIM", mode)
            .output()?;
        ensure!(out.status.success(), "{mode}: {}", stderr(&out));
        let exec = node
            .command(["exec", &name, "--", "sh", "-c", "exit 4"])
            .env("CAIRN_SHIM", mode)
            .output()?;
        ensure!(exec.status.code() == Some(4), "{mode}: {exec:?}");
        ensure!(!process_gone(shim_pid(&node, &name)?), "{mode}: shim gone");
        node.ok(["stop", "-t", "0", &name])?;
        ensure!(
            node.status(&name)?.as_deref() == Some("exited (137)"),
            "{mode}"
        );
        node.ok(["rm", &name, &format!("attached-{mode}")])?;
    }
    Ok(())
}

#[test]
fn env_args_cwd_and_user_reach_the_process() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let out = node.ok([
        "run",
        "--rm",
        "--env",
        "FOO=bar baz",
        "--env",
        "PATH=/bin",
        "--cwd",
        "/tmp",
        "--user",
        "app",
        "busybox:test",
        "c",
        "--",
        "sh",
        "-c",
        "echo \"$FOO\"; pwd; id -u; id -g; id -G; echo $0 \"$1\"",
        "arg0",
        "arg one",
    ])?;
    ensure!(
        out == "bar baz\n/tmp\n1000\n1000\n1000 44\narg0 arg one\n",
        "{out:?}"
    );
    let out = node.ok([
        "run",
        "--rm",
        "--user",
        "4242:44",
        "busybox:test",
        "c",
        "--",
        "id",
    ])?;
    ensure!(out.trim() == "uid=4242 gid=44(video)", "{out:?}");
    node.fails(
        [
            "run",
            "--rm",
            "--user",
            "nobody",
            "busybox:test",
            "c",
            "--",
            "id",
        ],
        "nobody",
    )?;
    ensure!(
        node.status("c")?.is_none(),
        "a container that failed to start is left"
    );
    Ok(())
}

#[test]
fn memory_limit_oom_kills_and_is_reported() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    // tail buffers a line that never ends.
    let out = node.ctr([
        "run",
        "--memory",
        "16Mi",
        "busybox:test",
        "oom",
        "--",
        "sh",
        "-c",
        "exec tail /dev/zero",
    ])?;
    ensure!(out.status.code() == Some(137), "{:?}", out.status);
    ensure!(stderr(&out).contains("OOM-killed"), "{}", stderr(&out));
    ensure!(node.status("oom")?.as_deref() == Some("exited (137, OOMKilled)"));
    // Without the limit the same amount of memory is fine.
    let ok = node.ok([
        "run",
        "--rm",
        "--memory",
        "64Mi",
        "busybox:test",
        "fine",
        "--",
        "sh",
        "-c",
        "head -c 8m /dev/zero | tail -c 1 | wc -c",
    ])?;
    ensure!(ok.trim() == "1", "{ok:?}");
    Ok(())
}

#[test]
fn pids_limit_stops_forks() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let out = node.ctr([
        "run",
        "--rm",
        "--pids",
        "4",
        "busybox:test",
        "p",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo forked",
    ])?;
    ensure!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    ensure!(!out.status.success());
    let out = node.ok([
        "run",
        "--rm",
        "--pids",
        "16",
        "busybox:test",
        "p",
        "--",
        "sh",
        "-c",
        "sleep 0 & sleep 0 & wait; echo forked",
    ])?;
    ensure!(out == "forked\n", "{out:?}");
    Ok(())
}

#[test]
fn container_cannot_raise_its_own_memory_limit() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = if v2 {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let script = format!("echo 1073741824 > {file}; echo write=$?; cat {file}");
    let out = node.ctr([
        "run",
        "--rm",
        "--memory",
        "32Mi",
        "busybox:test",
        "c",
        "--",
        "sh",
        "-c",
        &script,
    ])?;
    let text = stdout(&out);
    ensure!(
        text.contains("write=1") || text.contains("write=2"),
        "the write succeeded: {text}"
    );
    ensure!(
        text.trim_end().ends_with("33554432"),
        "limit changed: {text}"
    );
    ensure!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn exec_runs_in_the_container_and_returns_its_exit_code() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok([
        "run",
        "--detach",
        "busybox:test",
        "svc",
        "--",
        "sh",
        "-c",
        "echo ready > /tmp/state; exec sleep 300",
    ])?;
    let out = node.ctr([
        "exec",
        "svc",
        "--",
        "sh",
        "-c",
        "cat /tmp/state; hostname; exit 5",
    ])?;
    ensure!(
        out.status.code() == Some(5),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    ensure!(stdout(&out) == "ready\nsvc\n", "{:?}", stdout(&out));
    // The exec'd process sees the container's processes, not the host's.
    let ps = node.ok([
        "exec",
        "svc",
        "--",
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'",
    ])?;
    ensure!(ps.trim().parse::<u32>()? <= 4, "{ps}");
    node.ok(["stop", "-t", "0", "svc"])?;
    node.fails(["exec", "svc", "--", "true"], "not running")?;
    Ok(())
}

#[test]
fn exec_passes_stdin_and_gives_a_terminal_on_request() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok(["run", "-d", "busybox:test", "svc", "--", "sleep", "300"])?;
    // Without a terminal: stdin as a pipe, to its end.
    let out = node.ctr_with_input(
        ["exec", "svc", "--", "sh", "-c", "tr a-z A-Z; tty"],
        "hello\n",
    )?;
    ensure!(stdout(&out).starts_with("HELLO\n"), "{:?}", stdout(&out));
    ensure!(stdout(&out).contains("not a tty"), "{:?}", stdout(&out));
    ensure!(out.status.code() == Some(1), "{:?}", out.status);
    // With one: the process's stdin is a terminal of the container's, its controlling one,
    // fed from our stdin; the exit code comes back.
    let script = "tty; test -t 0 && echo stdin-is-a-tty; : < /dev/tty && echo controlling; \
                  read line; echo got=$line; exit 7";
    let out = node.ctr_with_input(
        ["exec", "--tty", "svc", "--", "sh", "-c", script],
        "typed\n",
    )?;
    let text = stdout(&out);
    ensure!(
        out.status.code() == Some(7),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    ensure!(text.contains("/dev/pts/"), "{text:?}");
    ensure!(text.contains("stdin-is-a-tty"), "{text:?}");
    ensure!(
        text.contains("controlling"),
        "no controlling terminal: {text:?}"
    );
    ensure!(text.contains("got=typed"), "{text:?}");
    // A terminal turns \n into \r\n.
    ensure!(text.contains("got=typed\r\n"), "{text:?}");
    // The end of our input is the end of the process's (cat ends).
    let out = node.ctr_with_input(["exec", "-t", "svc", "--", "cat"], "one line\n")?;
    ensure!(out.status.success(), "{:?}", out.status);
    ensure!(stdout(&out).contains("one line"), "{:?}", stdout(&out));
    let left: Vec<String> = fs::read_dir(node.run_dir())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    ensure!(
        left.is_empty(),
        "exec sockets or process files left: {left:?}"
    );
    Ok(())
}

#[test]
fn container_processes_start_with_default_signal_actions() -> Result<()> {
    // cairn is a Rust program, which ignores SIGPIPE; a container's processes must not inherit
    // that (under runc, `yes | head -1` ends quietly by SIGPIPE, not with a write error).
    let node = Node::new()?;
    node.import_test_images()?;
    let script = "grep SigIgn /proc/self/status; yes | head -1";
    let out = node.ctr([
        "run",
        "--rm",
        "busybox:test",
        "sig",
        "--",
        "sh",
        "-c",
        script,
    ])?;
    ensure!(out.status.success(), "{}", stderr(&out));
    ensure!(
        stdout(&out) == "SigIgn:\t0000000000000000\ny\n",
        "{:?}",
        stdout(&out)
    );
    ensure!(stderr(&out).is_empty(), "{:?}", stderr(&out));
    node.ok(["run", "-d", "busybox:test", "svc", "--", "sleep", "300"])?;
    let out = node.ctr(["exec", "svc", "--", "sh", "-c", script])?;
    ensure!(
        stdout(&out) == "SigIgn:\t0000000000000000\ny\n" && stderr(&out).is_empty(),
        "{:?} {:?}",
        stdout(&out),
        stderr(&out)
    );
    node.ok(["rm", "-f", "svc"])?;
    Ok(())
}

/// Runs a command (argv after the script) on a new pseudo-terminal, as its session's
/// controlling terminal sized 24x80, as a shell in a terminal emulator would: writes a newline
/// at once, waits for "24 80", resizes the window to 40x120 (the kernel sends the foreground
/// process group SIGWINCH), writes a second newline, waits for "40 120"; prints what the
/// terminal showed and exits with the command's code.
const ON_A_RESIZED_TERMINAL: &str = r#"
import fcntl, os, select, struct, subprocess, sys, termios, time
def size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
master, slave = os.openpty()
size(slave, 24, 80)
p = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave,
                     start_new_session=True,
                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
os.close(slave)
shown = b''
def until(marker):
    global shown
    deadline = time.time() + 30
    while marker not in shown and time.time() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown += chunk
os.write(master, b'\n')
until(b'24 80')
size(master, 40, 120)
os.write(master, b'\n')
until(b'40 120')
code = p.wait(timeout=30)
sys.stdout.write(shown.decode(errors='replace'))
sys.exit(code)
"#;

#[test]
fn exec_with_a_terminal_follows_window_size_changes() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok(["run", "-d", "busybox:test", "svc", "--", "sleep", "300"])?;
    let exec = node.command([
        "exec",
        "-t",
        "svc",
        "--",
        "sh",
        "-c",
        "read a; stty size; read b; stty size",
    ]);
    let out = Command::new("python3")
        .arg("-c")
        .arg(ON_A_RESIZED_TERMINAL)
        .arg(exec.get_program())
        .args(exec.get_args())
        .output()?;
    let shown = stdout(&out);
    ensure!(
        out.status.success(),
        "{:?} {shown:?} {}",
        out.status,
        stderr(&out)
    );
    let first = shown
        .find("24 80")
        .context(format!("no first size: {shown:?}"))?;
    let second = shown
        .find("40 120")
        .context(format!("resize not seen: {shown:?}"))?;
    ensure!(first < second, "{shown:?}");
    Ok(())
}

#[test]
fn default_seccomp_profile_refuses_new_namespaces_unless_unconfined() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let script = "grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?";
    let run = |extra: &[&str], name: &str| -> Result<std::process::Output> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox:test", name, "--", "sh", "-c", script]);
        node.ctr(args)
    };
    let confined = run(&[], "confined")?;
    let text = stdout(&confined);
    ensure!(text.contains("Seccomp:\t2"), "no filter: {text}");
    ensure!(text.contains("unshare=1"), "unshare -U worked: {text}");
    ensure!(
        stderr(&confined).contains("Operation not permitted"),
        "{}",
        stderr(&confined)
    );
    // The same call works without the filter: the profile, not a capability, refused it.
    let open = run(&["--seccomp", "unconfined"], "open")?;
    let text = stdout(&open);
    ensure!(text.contains("Seccomp:\t0"), "filtered: {text}");
    ensure!(text.contains("unshare=0"), "{text} {}", stderr(&open));
    node.fails(
        [
            "run",
            "--seccomp",
            "strict",
            "busybox:test",
            "x",
            "--",
            "true",
        ],
        "seccomp profile",
    )?;
    // An exec'd process gets the container's filter too.
    node.ok(["run", "-d", "busybox:test", "svc", "--", "sleep", "300"])?;
    let status = node.ok(["exec", "svc", "--", "grep", "Seccomp:", "/proc/self/status"])?;
    ensure!(status.contains("Seccomp:\t2"), "{status}");
    Ok(())
}

/// The script a device test runs: a block device outside the allow-list can be neither made
/// nor opened, the allowed ones work.
const DEVICE_SCRIPT: &str = "mknod /tmp/sda b 8 0; echo mknod=$?; head -c 1 /tmp/sda; echo open=$?; \
     echo x > /dev/null; echo null=$?; echo zero=$(head -c 4 /dev/zero | wc -c)";

fn assert_device_filter(out: &std::process::Output) -> Result<()> {
    let text = stdout(out);
    ensure!(
        !text.contains("mknod=0") || !text.contains("open=0"),
        "a block device was made and opened: {text}"
    );
    ensure!(text.contains("null=0"), "/dev/null refused: {text}");
    ensure!(text.contains("zero=4\n"), "/dev/zero refused: {text}");
    ensure!(
        stderr(out).contains("Operation not permitted"),
        "{}",
        stderr(out)
    );
    Ok(())
}

#[test]
fn devices_outside_the_allow_list_are_refused() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let out = node.ctr([
        "run",
        "--rm",
        "busybox:test",
        "dev",
        "--",
        "sh",
        "-c",
        DEVICE_SCRIPT,
    ])?;
    assert_device_filter(&out)
}

/// On a cgroup v2 host (this one is hybrid: v1 hierarchies, and cgroup2 beside them), seen
/// from a mount namespace whose `/sys/fs/cgroup` is the cgroup2 hierarchy: the device
/// allow-list is an eBPF filter, the container sees its own cgroup as the root, read-only, and
/// its cgroup is gone when it ends.
#[test]
fn cgroup_v2_hosts_get_the_device_filter_and_a_read_only_own_cgroup() -> Result<()> {
    // The host's cgroup2 hierarchy: beside v1 on a hybrid host, at the root on a v2 one.
    let unified = if is_mount_point(Path::new("/sys/fs/cgroup/unified"))? {
        Path::new("/sys/fs/cgroup/unified")
    } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Path::new("/sys/fs/cgroup")
    } else {
        anyhow::bail!("this host has no cgroup2 hierarchy");
    };
    let node = Node::new()?;
    node.import_test_images()?;
    let before: Vec<_> = fs::read_dir(unified.join("cairn"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let script = format!(
        "{DEVICE_SCRIPT}; cat /proc/self/cgroup; test -f /sys/fs/cgroup/cgroup.procs && echo v2-files; \
         touch /sys/fs/cgroup/x; echo touch=$?"
    );
    let cairn = node.command([
        "run",
        "--rm",
        "busybox:test",
        "v2",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$0\" \"$@\"")
        .arg(cairn.get_program())
        .args(cairn.get_args())
        .output()?;
    ensure!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert_device_filter(&out)?;
    let text = stdout(&out);
    ensure!(
        text.contains("0::/\n"),
        "not in its own cgroup namespace: {text}"
    );
    ensure!(text.contains("v2-files"), "{text}");
    ensure!(text.contains("touch=1"), "its cgroup is writable: {text}");
    ensure!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let after: Vec<_> = fs::read_dir(unified.join("cairn"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    ensure!(
        after.iter().all(|e| before.contains(e)),
        "cgroups left: {after:?} (before: {before:?})"
    );
    Ok(())
}

#[test]
fn stop_waits_for_sigterm_then_sigkills() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok([
        "run",
        "-d",
        "busybox:test",
        "polite",
        "--",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.1; done",
    ])?;
    wait_for_log(&node, "polite", "up")?;
    let out = node.ok(["stop", "-t", "30s", "polite"])?;
    ensure!(out.trim() == "polite exited (0)", "{out}");
    ensure!(node.ok(["logs", "polite"])? == "up\ngot-term\n");
    // PID 1 without a handler ignores SIGTERM: only SIGKILL after the grace period ends it.
    node.ok([
        "run",
        "-d",
        "busybox:test",
        "stubborn",
        "--",
        "sleep",
        "300",
    ])?;
    let started = Instant::now();
    let out = node.ok(["stop", "-t", "1s", "stubborn"])?;
    ensure!(out.trim() == "stubborn exited (137)", "{out}");
    ensure!(
        started.elapsed() >= Duration::from_secs(1),
        "SIGKILL came before the grace period ended"
    );
    Ok(())
}

fn wait_for_log(node: &Node, name: &str, text: &str) -> Result<()> {
    for _ in 0..500 {
        // The container may not exist yet while its starter is still creating it.
        if node.ok(["logs", name]).is_ok_and(|l| l.contains(text)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("{name} never logged {text:?}")
}

#[test]
fn container_survives_kill_9_of_its_starter() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let mut starter = node
        .command([
            "run",
            "busybox:test",
            "orphan",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 300",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    wait_for_log(&node, "orphan", "started")?;
    let pid = node.pid("orphan")?;
    starter.kill()?; // SIGKILL
    starter.wait()?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        node.pid("orphan")? == pid,
        "the container changed after its starter died"
    );
    ensure!(Path::new(&format!("/proc/{pid}")).exists());
    let out = node.ok(["exec", "orphan", "--", "echo", "still-here"])?;
    ensure!(out == "still-here\n");
    node.ok(["stop", "-t", "0", "orphan"])?;
    ensure!(node.status("orphan")?.as_deref() == Some("exited (137)"));
    Ok(())
}

#[test]
fn nothing_is_left_after_rm() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok([
        "run",
        "-d",
        "--memory",
        "32Mi",
        "--cpus",
        "0.5",
        "--pids",
        "20",
        "busybox:test",
        "gone",
        "--",
        "sleep",
        "300",
    ])?;
    let id = node.id("gone")?;
    let pid = node.pid("gone")?;
    let netns = fs::read_link(format!("/proc/{pid}/ns/net"))?;
    ensure!(
        netns != fs::read_link("/proc/self/ns/net")?,
        "the container shares the host's netns"
    );
    let rootfs = node.data_dir().join("agent/containers/gone/rootfs");
    let mounted = || -> Result<bool> {
        let target = rootfs.display().to_string();
        Ok(fs::read_to_string("/proc/self/mountinfo")?
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(target.as_str())))
    };
    ensure!(mounted()?, "rootfs not mounted while running");
    let cgroups: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("cairn").join(&id))
        .chain([PathBuf::from("/sys/fs/cgroup/cairn").join(&id)])
        .collect();
    ensure!(
        cgroups.iter().any(|c| c.exists()),
        "no cgroup while running"
    );
    let quota =
        fs::read_to_string("/sys/fs/cgroup/cpu/cairn/".to_string() + &id + "/cpu.cfs_quota_us")
            .or_else(|_| fs::read_to_string(format!("/sys/fs/cgroup/cairn/{id}/cpu.max")))?;
    ensure!(quota.starts_with("50000"), "cpu quota {quota}");
    let procs_file = cgroups
        .iter()
        .map(|c| c.join("cgroup.procs"))
        .find(|f| f.exists())
        .context("no cgroup.procs")?;
    let procs: Vec<String> = fs::read_to_string(&procs_file)?
        .lines()
        .map(str::to_string)
        .collect();
    ensure!(procs.contains(&pid.to_string()), "{procs:?}");
    node.fails(["rm", "gone"], "running")?;
    node.ok(["rm", "-f", "gone"])?;
    ensure!(node.status("gone")?.is_none());
    ensure!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} left"
    );
    ensure!(!mounted()?, "rootfs still mounted");
    for c in &cgroups {
        ensure!(!c.exists(), "cgroup {} left", c.display());
    }
    ensure!(!node.data_dir().join("agent/containers/gone").exists());
    ensure!(
        count_entries(&node.run_dir().join("containers")) == 0,
        "libcontainer state left"
    );
    // Every process of the container is gone, and with them its (unnamed) network namespace.
    for p in &procs {
        ensure!(!Path::new("/proc").join(p).exists(), "process {p} left");
    }
    Ok(())
}

#[test]
fn corrupt_truncated_or_foreign_tarballs_are_refused_and_leave_nothing() -> Result<()> {
    let node = Node::new()?;
    let images = build_images(node.dir.path())?;
    let dir = node.dir.path();
    // Truncated in the middle of the layer.
    let whole = fs::read(&images.oci_archive)?;
    let truncated = dir.join("truncated.tar");
    fs::write(&truncated, &whole[..whole.len() / 2])?;
    // A layer blob changed (one byte appended) inside an otherwise valid archive.
    let unpacked = dir.join("corrupt");
    fs::create_dir(&unpacked)?;
    let ok = Command::new("tar")
        .arg("-xf")
        .arg(&images.oci_archive)
        .arg("-C")
        .arg(&unpacked)
        .status()?;
    ensure!(ok.success());
    let biggest = fs::read_dir(unpacked.join("blobs/sha256"))?
        .filter_map(|e| e.ok())
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .context("no blobs")?
        .path();
    let mut blob = fs::read(&biggest)?;
    blob.push(0);
    fs::write(&biggest, blob)?;
    let corrupt = dir.join("corrupt.tar");
    let ok = Command::new("tar")
        .arg("-cf")
        .arg(&corrupt)
        .arg("-C")
        .arg(&unpacked)
        .arg(".")
        .status()?;
    ensure!(ok.success());
    // Not a tarball at all, and a gzip stream cut short.
    let garbage = dir.join("garbage.tar");
    fs::write(&garbage, b"this is not an image archive\n".repeat(100))?;
    let gz = compress("gzip", &images.docker_archive)?;
    let gz_bytes = fs::read(&gz)?;
    let gz_cut = dir.join("cut.tar.gz");
    fs::write(&gz_cut, &gz_bytes[..gz_bytes.len() * 2 / 3])?;
    for (file, expect) in [
        (&truncated, "invalid image archive"),
        (&corrupt, "digest mismatch"),
        (&garbage, "invalid image archive"),
        (&gz_cut, "invalid image archive"),
    ] {
        let out = node.ctr([
            std::ffi::OsStr::new("images"),
            "import".as_ref(),
            file.as_os_str(),
        ])?;
        ensure!(!out.status.success(), "{} was imported", file.display());
        ensure!(
            stderr(&out).contains(expect),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
        assert_nothing_imported(&node)?;
    }
    node.fails(["run", "busybox:test", "c"], "not found")?;
    Ok(())
}

#[test]
fn containers_share_a_sandboxs_network_ipc_and_uts_namespaces() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let path = node.ok(["sandbox", "create", "--hostname", "web-0", "pod1"])?;
    let path = PathBuf::from(path.trim());
    ensure!(
        path.starts_with(node.run_dir().join("netns")),
        "{}",
        path.display()
    );
    node.ok([
        "run",
        "-d",
        "--sandbox",
        "pod1",
        "busybox:test",
        "server",
        "--",
        "nc",
        "-l",
        "-p",
        "8080",
        "-e",
        "hostname",
    ])?;
    node.ok([
        "run",
        "-d",
        "--sandbox",
        "pod1",
        "busybox:test",
        "side",
        "--",
        "sleep",
        "300",
    ])?;
    node.ok(["run", "-d", "busybox:test", "alone", "--", "sleep", "300"])?;
    let ns = |name: &str, kind: &str| -> Result<PathBuf> {
        Ok(fs::read_link(format!(
            "/proc/{}/ns/{kind}",
            node.pid(name)?
        ))?)
    };
    for kind in ["net", "ipc", "uts"] {
        let host = fs::read_link(format!("/proc/self/ns/{kind}"))?;
        ensure!(
            ns("server", kind)? != host,
            "the sandbox's {kind} is the host's"
        );
        ensure!(
            ns("server", kind)? == ns("side", kind)?,
            "{kind} not shared"
        );
        ensure!(
            ns("alone", kind)? != ns("side", kind)?,
            "{kind} shared outside the sandbox"
        );
    }
    // The server listens on the sandbox's loopback and answers with the sandbox's hostname; a
    // third container in the sandbox reaches it.
    let mut reply = String::new();
    for _ in 0..100 {
        reply = node.ok([
            "run",
            "--rm",
            "--sandbox",
            "pod1",
            "busybox:test",
            "client",
            "--",
            "sh",
            "-c",
            "nc 127.0.0.1 8080 </dev/null",
        ])?;
        if !reply.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(reply == "web-0\n", "{reply:?}");
    ensure!(node.ok(["exec", "alone", "--", "hostname"])? == "alone\n");
    node.fails(
        [
            "run",
            "--rm",
            "--sandbox",
            "nope",
            "busybox:test",
            "c",
            "--",
            "true",
        ],
        "no sandbox",
    )?;
    node.fails(["sandbox", "create", "pod1"], "exists")?;
    node.fails(["sandbox", "create", "bad/name"], "sandbox name")?;
    ensure!(node.ok(["sandbox", "ls"])? == "pod1\n");
    node.ok(["rm", "-f", "server"])?;
    node.ok(["rm", "-f", "side"])?;
    node.ok(["sandbox", "rm", "pod1"])?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    for dir in ["netns", "ipcns", "utsns"] {
        let file = node.run_dir().join(dir).join("pod1");
        ensure!(!file.exists(), "{} left", file.display());
        ensure!(
            !mountinfo.contains(&file.display().to_string()),
            "{} still mounted",
            file.display()
        );
    }
    ensure!(node.ok(["sandbox", "ls"])?.is_empty());
    Ok(())
}

fn process_gone(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(true)
}

fn is_mount_point(path: &Path) -> Result<bool> {
    let target = path.display().to_string();
    Ok(fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str())))
}

/// Every directory cgroup `/cairn/<id>` could have (v1 hierarchies and v2).
fn cgroup_dirs(id: &str) -> Result<Vec<PathBuf>> {
    Ok(fs::read_dir("/sys/fs/cgroup")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("cairn").join(id))
        .chain([PathBuf::from("/sys/fs/cgroup/cairn").join(id)])
        .collect())
}

/// The pid of `name`'s shim, as it recorded it.
fn shim_pid(node: &Node, name: &str) -> Result<i32> {
    let state = fs::read(
        node.data_dir()
            .join("agent/containers")
            .join(name)
            .join("state.json"),
    )?;
    let state: serde_json::Value = serde_json::from_slice(&state)?;
    let pid = state["shim_pid"].as_i64().context("no shim_pid")?;
    Ok(i32::try_from(pid)?)
}

#[test]
fn recovers_after_a_reboot_like_cleanup_and_keeps_live_shims() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    let sandbox = PathBuf::from(node.ok(["sandbox", "create", "pod1"])?.trim());
    node.ok([
        "run",
        "-d",
        "--sandbox",
        "pod1",
        "busybox:test",
        "lost",
        "--",
        "sleep",
        "300",
    ])?;
    // An attached `--rm` run, and a container whose shim is not touched.
    let mut starter = node
        .command([
            "run",
            "--rm",
            "busybox:test",
            "tmp",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 300",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    wait_for_log(&node, "tmp", "started")?;
    node.ok([
        "run",
        "-d",
        "busybox:test",
        "survivor",
        "--",
        "sleep",
        "300",
    ])?;
    let survivor_pid = node.pid("survivor")?;

    // The reboot, as far as a shared machine allows: the starter, both shims and both
    // containers die by SIGKILL (shims first, so none records an exit), their root mounts,
    // the sandbox's bind mount and their libcontainer state under the run directory are lost.
    // Their (empty) cgroups stay for the runtime to remove.
    let mut victims = Vec::new();
    for name in ["lost", "tmp"] {
        let id = node.id(name)?;
        let shim = shim_pid(&node, name)?;
        let init = node.pid(name)?;
        ensure!(shim != init && !process_gone(shim), "{name}: shim {shim}");
        victims.push((name, id, shim, init));
    }
    starter.kill()?;
    starter.wait()?;
    for (_, _, shim, _) in &victims {
        kill_9(*shim)?;
    }
    for (_, _, _, init) in &victims {
        kill_9(*init)?;
    }
    for (name, _, shim, init) in &victims {
        for pid in [shim, init] {
            let mut tries = 0;
            while !process_gone(*pid) {
                tries += 1;
                ensure!(tries < 1000, "{name}: process {pid} survived SIGKILL");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    for (name, id, _, _) in &victims {
        let rootfs = node
            .data_dir()
            .join("agent/containers")
            .join(name)
            .join("rootfs");
        umount(&rootfs)?;
        fs::remove_dir_all(node.run_dir().join("containers").join(id))?;
    }
    umount(&sandbox)?;
    ensure!(
        sandbox.exists(),
        "the sandbox file should stay for the test"
    );

    // The next start: the lost container is recorded as ended, honestly; the --rm one is gone;
    // the live shim's container still runs; the dead sandbox is forgotten.
    ensure!(
        node.status("lost")?.as_deref()
            == Some("exited (255, unknown: the run directory was cleared)"),
        "{:?}",
        node.status("lost")?
    );
    ensure!(node.status("tmp")?.is_none(), "the --rm container is left");
    ensure!(!node.data_dir().join("agent/containers/tmp").exists());
    ensure!(node.pid("survivor")? == survivor_pid);
    ensure!(
        node.ok(["sandbox", "ls"])?.is_empty(),
        "the dead sandbox is listed"
    );
    ensure!(!sandbox.exists());
    for dir in ["ipcns", "utsns"] {
        let file = node.run_dir().join(dir).join("pod1");
        ensure!(!file.exists(), "{} left", file.display());
        ensure!(!is_mount_point(&file)?, "{} still mounted", file.display());
    }
    for (name, id, _, _) in &victims {
        for c in cgroup_dirs(id)? {
            ensure!(!c.exists(), "{name}: cgroup {} left", c.display());
        }
        let rootfs = node
            .data_dir()
            .join("agent/containers")
            .join(name)
            .join("rootfs");
        ensure!(!is_mount_point(&rootfs)?, "{name}: root still mounted");
    }
    ensure!(node.ok(["logs", "lost"])?.is_empty());
    node.fails(["exec", "lost", "--", "true"], "not running")?;

    // Both names work again.
    node.ok(["rm", "lost"])?;
    ensure!(node.status("lost")?.is_none());
    for name in ["lost", "tmp"] {
        let out = node.ok(["run", "--rm", "busybox:test", name, "--", "echo", "again"])?;
        ensure!(out == "again\n", "{name}: {out:?}");
    }
    let out = node.ok(["exec", "survivor", "--", "echo", "still-here"])?;
    ensure!(out == "still-here\n", "{out:?}");
    let survivor_id = node.id("survivor")?;
    node.ok(["rm", "-f", "survivor"])?;

    // Nothing is left: processes, mounts, cgroups, libcontainer state, records.
    ensure!(
        node.ok(["ps"])?.lines().count() == 1,
        "{}",
        node.ok(["ps"])?
    );
    for (name, id, shim, init) in &victims {
        ensure!(
            process_gone(*shim) && process_gone(*init),
            "{name}: process left"
        );
        for c in cgroup_dirs(id)? {
            ensure!(!c.exists(), "{name}: cgroup {} left", c.display());
        }
    }
    ensure!(process_gone(survivor_pid));
    for c in cgroup_dirs(&survivor_id)? {
        ensure!(!c.exists(), "cgroup {} left", c.display());
    }
    ensure!(count_entries(&node.run_dir().join("containers")) == 0);
    ensure!(count_entries(&node.data_dir().join("agent/containers")) == 0);
    let mounts = fs::read_to_string("/proc/self/mountinfo")?;
    ensure!(
        !mounts.contains(&node.dir.path().display().to_string()),
        "mounts left:\n{mounts}"
    );
    Ok(())
}

fn kill_9(pid: i32) -> Result<()> {
    let ok = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()?;
    ensure!(ok.success(), "kill -9 {pid}");
    Ok(())
}

fn umount(path: &Path) -> Result<()> {
    let ok = Command::new("umount").arg("-l").arg(path).status()?;
    ensure!(ok.success(), "umount {}", path.display());
    Ok(())
}

#[test]
fn a_container_whose_shim_died_is_ended_and_cleaned_up() -> Result<()> {
    let node = Node::new()?;
    node.import_test_images()?;
    node.ok([
        "run",
        "-d",
        "busybox:test",
        "orphan",
        "--",
        "sh",
        "-c",
        "sleep 300 & exec sleep 301",
    ])?;
    let id = node.id("orphan")?;
    let init = node.pid("orphan")?;
    let shim = shim_pid(&node, "orphan")?;
    let procs: Vec<i32> = cgroup_dirs(&id)?
        .iter()
        .filter_map(|c| fs::read_to_string(c.join("cgroup.procs")).ok())
        .flat_map(|s| s.lines().filter_map(|l| l.parse().ok()).collect::<Vec<_>>())
        .collect();
    ensure!(procs.contains(&init) && procs.len() >= 2, "{procs:?}");
    kill_9(shim)?;
    let mut tries = 0;
    while !process_gone(shim) {
        tries += 1;
        ensure!(tries < 1000, "shim {shim} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nobody copies its output or will record its end: the next start ends it.
    ensure!(
        node.status("orphan")?.as_deref() == Some("exited (255, unknown: the shim died)"),
        "{:?}",
        node.status("orphan")?
    );
    for pid in &procs {
        ensure!(process_gone(*pid), "process {pid} left");
    }
    for c in cgroup_dirs(&id)? {
        ensure!(!c.exists(), "cgroup {} left", c.display());
    }
    let rootfs = node.data_dir().join("agent/containers/orphan/rootfs");
    ensure!(!is_mount_point(&rootfs)?, "root still mounted");
    ensure!(count_entries(&node.run_dir().join("containers")) == 0);
    node.ok(["rm", "orphan"])?;
    let out = node.ok([
        "run",
        "--rm",
        "busybox:test",
        "orphan",
        "--",
        "echo",
        "again",
    ])?;
    ensure!(out == "again\n", "{out:?}");
    Ok(())
}
