//! etcd-client helpers shared by the tests: connecting, waiting for an endpoint to serve, and
//! asserting the exact gRPC error etcd returns.
//!
//! Go clients (kube-apiserver among them) map errors back to typed values by their gRPC message,
//! so cairn must return the same status code and the same message text as etcd; the assertion
//! here compares both exactly.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{Client, ConnectOptions, Error};

/// Connects an etcd-client to one endpoint (`http://ip:port`) with short timeouts.
pub async fn connect(endpoint: &str) -> Result<Client> {
    connect_with_timeout(endpoint, Duration::from_secs(10)).await
}

/// Connects with a per-request timeout of `timeout`.
pub async fn connect_with_timeout(endpoint: &str, timeout: Duration) -> Result<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(timeout);
    Client::connect([endpoint], Some(options))
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

/// Polls `endpoint` with a linearizable Get until it answers, for at most `timeout`.
/// `alive` is called between attempts and should fail if the server process has exited, so that
/// a crash is reported at once with its cause rather than as a timeout.
pub async fn wait_ready(
    endpoint: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        let attempt = async {
            let mut client = connect_with_timeout(endpoint, Duration::from_secs(1)).await?;
            client.get("cairn-tests/readiness", None).await?;
            anyhow::Ok(())
        };
        let last_error = match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "attempt timed out".to_owned(),
        };
        if Instant::now() >= deadline {
            bail!("{endpoint} not ready after {timeout:?}: {last_error}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that `result` is a gRPC error with exactly this code and message.
pub fn expect_grpc_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    code: tonic::Code,
    message: &str,
) -> Result<()> {
    match result {
        Ok(value) => bail!("expected error {code:?} {message:?}, got success: {value:?}"),
        Err(Error::GRpcStatus(status)) => {
            if status.code() != code || status.message() != message {
                bail!(
                    "expected error {code:?} {message:?}, got {:?} {:?}",
                    status.code(),
                    status.message()
                );
            }
            Ok(())
        }
        Err(other) => bail!("expected gRPC error {code:?} {message:?}, got {other}"),
    }
}

/// Whether an error means the request never reached a server (so it certainly had no effect).
pub fn is_connect_error(error: &Error) -> bool {
    let text = match error {
        Error::GRpcStatus(status) => format!("{} {:?}", status.message(), status.code()),
        other => format!("{other:?}"),
    };
    text.contains("Connection refused") || text.contains("tcp connect error")
}
