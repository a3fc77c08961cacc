//! Which servers a test runs against: real etcd always, cairn when its binary exists.
//!
//! Running every conformance test against etcd first validates the test itself; running it
//! against cairn checks cairn. While cairn is being written its binary may be missing, and then
//! cairn runs are skipped with a note, except in CI (`CI=1` or `CAIRN_REQUIRE_BIN=1`), where a
//! missing binary fails the test.
//!
//! The [`conformance_tests!`](crate::conformance_tests) macro turns each `async fn(Endpoint)`
//! into two tests, `etcd::<name>` and `cairn::<name>`, so either side can be selected with a
//! test name filter (`cargo test -p cairn-tests -- etcd::`).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cairn_server::{Server, ServerOpts, cairn_binary};
use crate::etcd_server::EtcdServer;

/// A server implementation the tests can run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Debian's etcd 3.4: the reference.
    Etcd,
    /// The cairn binary under test.
    Cairn,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Etcd => "etcd",
            Self::Cairn => "cairn",
        })
    }
}

/// Whether a missing cairn binary must fail rather than skip (`CI=1`/`true` or
/// `CAIRN_REQUIRE_BIN=1`).
pub fn cairn_required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    set("CI") || set("CAIRN_REQUIRE_BIN")
}

impl Target {
    /// Whether tests can run against this target now; an error if it is required but missing.
    pub fn available(self) -> Result<bool> {
        match self {
            Self::Etcd => Ok(true),
            Self::Cairn => {
                let binary = cairn_binary();
                if binary.exists() {
                    Ok(true)
                } else if cairn_required() {
                    bail!(
                        "cairn binary missing at {} and CI/CAIRN_REQUIRE_BIN demands it",
                        binary.display()
                    )
                } else {
                    eprintln!(
                        "skipping cairn run: no binary at {} (build it or set CAIRN_BIN)",
                        binary.display()
                    );
                    Ok(false)
                }
            }
        }
    }
}

/// The targets to run against: etcd always, cairn if its binary exists (or is required).
pub fn targets() -> Result<Vec<Target>> {
    let mut targets = vec![Target::Etcd];
    if Target::Cairn.available()? {
        targets.push(Target::Cairn);
    }
    Ok(targets)
}

/// What a conformance test body gets: the etcd API URL and which implementation serves it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The implementation behind the URL.
    pub target: Target,
    /// `http://ip:port` of the etcd v3 API.
    pub url: String,
}

/// A single-member server of either target, with the same lifecycle operations.
#[derive(Debug)]
pub enum SingleServer {
    /// Real etcd.
    Etcd(EtcdServer),
    /// cairn.
    Cairn(Server),
}

impl SingleServer {
    /// Starts a single-member server of `target` and waits until it serves.
    pub async fn start(target: Target) -> Result<Self> {
        Ok(match target {
            Target::Etcd => Self::Etcd(EtcdServer::start().await?),
            Target::Cairn => Self::Cairn(Server::start(ServerOpts::single()?).await?),
        })
    }

    /// Which implementation this is.
    pub fn target(&self) -> Target {
        match self {
            Self::Etcd(_) => Target::Etcd,
            Self::Cairn(_) => Target::Cairn,
        }
    }

    /// The etcd API endpoint.
    pub fn endpoint(&self) -> Endpoint {
        let url = match self {
            Self::Etcd(server) => server.endpoint(),
            Self::Cairn(server) => server.endpoint(),
        };
        Endpoint {
            target: self.target(),
            url,
        }
    }

    /// SIGKILL by PID.
    pub fn kill9(&mut self) {
        match self {
            Self::Etcd(server) => server.kill9(),
            Self::Cairn(server) => server.kill9(),
        }
    }

    /// Restarts on the same data and waits until it serves.
    pub async fn restart(&mut self) -> Result<()> {
        match self {
            Self::Etcd(server) => server.restart().await,
            Self::Cairn(server) => server.restart().await,
        }
    }
}

/// Runs `body` against a fresh single-member server of `target`, or skips it (returning `Ok`)
/// when the target is unavailable and not required.
pub async fn run_on<F, Fut>(target: Target, body: F) -> Result<()>
where
    F: FnOnce(Endpoint) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if !target.available()? {
        return Ok(());
    }
    let server = SingleServer::start(target)
        .await
        .with_context(|| format!("starting {target}"))?;
    let result = body(server.endpoint()).await;
    // Keep the server alive until the body is done; dropping it prints its logs (shown on failure).
    drop(server);
    result.with_context(|| format!("against {target}"))
}

/// Polls `check` every 100 ms until it returns `Ok(true)`, for at most `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => "condition false".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not true within {timeout:?} ({last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Declares each `async fn name(Endpoint) -> anyhow::Result<()>` as two tests, `etcd::name` and
/// `cairn::name`, each on a fresh single-member server.
#[macro_export]
macro_rules! conformance_tests {
    ($($test:ident),+ $(,)?) => {
        mod etcd {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() -> ::anyhow::Result<()> {
                    $crate::run_on($crate::Target::Etcd, super::$test).await
                }
            )+
        }
        mod cairn {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() -> ::anyhow::Result<()> {
                    $crate::run_on($crate::Target::Cairn, super::$test).await
                }
            )+
        }
    };
}
