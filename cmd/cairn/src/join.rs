//! Joining an existing cluster, from the new server's side: fetch `/cacerts` without trusting it,
//! check its hash against the token, then, trusting only that CA, present the token's secret to
//! get the cluster CA and to be added to the Raft membership.

use anyhow::{Context, Result, bail};
use cairn_kv::Member;
use cairn_pki::Token;
use http::{Method, StatusCode};

use crate::https::{self, BOOTSTRAP_PATH, Bootstrap, JOIN_PATH, JoinRequest};

/// Fetches the server's CA and checks it against the token's pinned hash.
pub async fn trusted_ca(server: &str, token: &Token) -> Result<String> {
    let (status, body) = https::request(
        server,
        cairn_pki::insecure_capture_client_config(),
        Method::GET,
        "/cacerts",
        None,
        None,
    )
    .await?;
    if status != StatusCode::OK {
        bail!("{server}/cacerts answered {status}");
    }
    let pem = String::from_utf8(body.to_vec()).context("the CA bundle is not text")?;
    if token.ca_hash().is_some() {
        cairn_pki::verify_ca(token, pem.as_bytes()).map_err(|e| {
            anyhow::anyhow!(
                "wrong CA hash: the CA certificate served by {server} does not match the hash in the token ({e}); \
                 check the token and the server address"
            )
        })?;
    } else {
        tracing::warn!(%server, "the token has no CA hash; trusting the server's CA on first use");
    }
    Ok(pem)
}

fn refused(server: &str, status: StatusCode, body: &[u8]) -> anyhow::Error {
    if status == StatusCode::UNAUTHORIZED {
        anyhow::anyhow!("wrong token: {server} refused the token's secret")
    } else {
        anyhow::anyhow!(
            "{server} answered {status}: {}",
            String::from_utf8_lossy(body)
        )
    }
}

/// Gets the cluster CA (certificate and key) from a server that accepts the token.
pub async fn bootstrap(server: &str, token: &Token) -> Result<Bootstrap> {
    let ca = trusted_ca(server, token).await?;
    let tls = cairn_pki::client_config(&ca, None)?;
    let (status, body) = https::request(
        server,
        tls,
        Method::POST,
        BOOTSTRAP_PATH,
        Some(token.secret()),
        None,
    )
    .await?;
    if status != StatusCode::OK {
        return Err(refused(server, status, &body));
    }
    let b: Bootstrap = serde_json::from_slice(&body).context("invalid bootstrap answer")?;
    if b.ca_cert.trim() != ca.trim() {
        bail!("{server} handed out a CA that is not the one it serves");
    }
    Ok(b)
}

/// Asks the cluster to add this server (as a learner, then a voter once caught up).
pub async fn join(
    server: &str,
    ca_pem: &str,
    token: &Token,
    id: u64,
    member: Member,
) -> Result<()> {
    let tls = cairn_pki::client_config(ca_pem, None)?;
    let body = serde_json::to_vec(&JoinRequest { id, member })?;
    let req = https::request(
        server,
        tls,
        Method::POST,
        JOIN_PATH,
        Some(token.secret()),
        Some(body),
    );
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(300), req)
        .await
        .context("joining timed out")??;
    if status != StatusCode::OK {
        return Err(refused(server, status, &body));
    }
    Ok(())
}
