//! The routes cairn serves beside the Kubernetes API on the HTTPS port (6443): `/cacerts` for
//! anyone, and the endpoints through which a new server joins: `server-bootstrap` hands it the
//! cluster CA, `join` adds it to the Raft membership. Both demand the token's secret. Also the
//! client side of those calls.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use cairn_apiserver::Body;
use cairn_kv::{Member, Store};
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

/// What a joining server receives from `server-bootstrap`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bootstrap {
    /// The cluster CA certificate (PEM).
    pub ca_cert: String,
    /// The cluster CA key (PEM).
    pub ca_key: String,
}

/// What a joining server sends to `join`.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Its member ID.
    pub id: u64,
    /// How to reach it.
    pub member: Member,
}

/// The path of the bootstrap endpoint.
pub const BOOTSTRAP_PATH: &str = "/v1-cairn/server-bootstrap";
/// The path of the join endpoint.
pub const JOIN_PATH: &str = "/v1-cairn/join";

/// The state the endpoints serve from.
pub struct Endpoints {
    /// The store.
    pub store: Store,
    /// The CA certificate (PEM), served at `/cacerts`.
    pub ca_cert: String,
    /// The CA key (PEM), handed to joining servers.
    pub ca_key: String,
    /// The join token.
    pub token: cairn_pki::Token,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r
}

fn json<T: Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => {
            let mut r = text(StatusCode::OK, b);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

impl Endpoints {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|secret| self.token.secret_matches(secret.trim()))
    }

    async fn join(self: Arc<Self>, body: Bytes) -> Response<Body> {
        let join: JoinRequest = match serde_json::from_slice(&body) {
            Ok(j) => j,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("invalid join request: {e}"),
                );
            }
        };
        tracing::info!(id = format!("{:x}", join.id), member = %join.member, "adding a server");
        match self.store.add_member(join.id, join.member, false).await {
            Ok(()) => json(&serde_json::json!({ "joined": true })),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("join failed: {e}")),
        }
    }
}

/// The CA and join endpoints, served beside the Kubernetes API on the HTTPS port.
pub struct Routes(pub Arc<Endpoints>);

impl cairn_apiserver::Routes for Routes {
    fn route(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<BoxFuture<'static, Response<Body>>> {
        let endpoints = self.0.clone();
        let answer = match (method.clone(), path) {
            (Method::GET, "/cacerts") => text(StatusCode::OK, endpoints.ca_cert.clone()),
            (Method::GET, "/ping") => text(StatusCode::OK, "pong"),
            (Method::POST, BOOTSTRAP_PATH) | (Method::POST, JOIN_PATH)
                if !endpoints.authorized(headers) =>
            {
                text(
                    StatusCode::UNAUTHORIZED,
                    "the token's secret is not this cluster's",
                )
            }
            (Method::POST, BOOTSTRAP_PATH) => json(&Bootstrap {
                ca_cert: endpoints.ca_cert.clone(),
                ca_key: endpoints.ca_key.clone(),
            }),
            (Method::POST, JOIN_PATH) => return Some(Box::pin(endpoints.join(body))),
            _ => return None,
        };
        Some(Box::pin(async move { answer }))
    }
}

/// Where an `https://HOST:PORT` URL points.
pub fn parse_server_url(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("server URL {url:?} must start with https://"))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().with_context(|| format!("port in {url:?}"))?,
        ),
        _ => (hostport.trim_matches(['[', ']']).to_string(), 6443),
    };
    Ok((host, port))
}

/// One HTTPS request with the given TLS client settings; the status and body.
pub async fn request(
    server: &str,
    tls: rustls::ClientConfig,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes)> {
    let (host, port) = parse_server_url(server)?;
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("resolve {host}"))?
        .next()
        .with_context(|| format!("resolve {host}: no address"))?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .with_context(|| format!("connect to {server}: timed out"))?
    .with_context(|| format!("connect to {server}"))?;
    let name = rustls::pki_types::ServerName::try_from(host.clone()).context("server name")?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {server}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, format!("{host}:{port}"));
    if let Some(secret) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = sender
        .send_request(req)
        .await
        .with_context(|| format!("request {path} from {server}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
