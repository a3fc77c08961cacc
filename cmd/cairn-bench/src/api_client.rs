//! A small Kubernetes API client for load generation: HTTP/2 over rustls with the admin
//! kubeconfig's client certificate, JSON bodies, and watch streams read line by line.
//!
//! Each [`Connection`] is one TLS connection speaking HTTP/2 (hyper's low-level client, ALPN
//! `h2`); clones share it and multiplex their requests as streams. The benchmark decides how many
//! connections a row opens, so unlike a pooling client (hyper-util's legacy `Client`, which would
//! put every request on one HTTP/2 connection) the connection count is explicit and reported.
//! This is not a general client: no redirects, no token refresh, no protobuf.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Deserialize;

/// Time allowed for TCP connect plus the TLS and HTTP/2 handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one request, body included; a request that takes longer counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The parts of a kubeconfig this client uses: the first cluster and the first user.
#[derive(Debug, Deserialize)]
struct Kubeconfig {
    clusters: Vec<NamedCluster>,
    users: Vec<NamedUser>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: String,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    user: User,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    cert_data: String,
    #[serde(rename = "client-key-data")]
    key_data: String,
}

/// Where the API server is and how to reach it; opens [`Connection`]s.
pub struct ApiClient {
    tls: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    /// `https://HOST:PORT`, prefixed to every request path.
    base: Arc<str>,
}

impl ApiClient {
    /// A client for the server, CA and client certificate of the kubeconfig at `path`.
    pub fn from_kubeconfig(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
        let config: Kubeconfig = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing the kubeconfig {}", path.display()))?;
        let cluster = &config.clusters.first().context("no cluster")?.cluster;
        let user = &config.users.first().context("no user")?.user;
        let ca = decode_pem(&cluster.ca_data, "certificate-authority-data")?;
        let cert = decode_pem(&user.cert_data, "client-certificate-data")?;
        let key = decode_pem(&user.key_data, "client-key-data")?;
        let mut tls = cairn_pki::client_config(&ca, Some((&cert, &key)))?;
        tls.alpn_protocols = vec![cairn_pki::ALPN_H2.to_vec()];

        let uri: http::Uri = cluster.server.parse().context("server URL")?;
        ensure!(
            uri.scheme_str() == Some("https"),
            "server {} is not https",
            cluster.server
        );
        let host = uri.host().context("server URL without a host")?;
        let port = uri.port_u16().unwrap_or(443);
        let ip = host.trim_start_matches('[').trim_end_matches(']');
        let addr = SocketAddr::new(
            ip.parse()
                .with_context(|| format!("server host {host} is not an IP address"))?,
            port,
        );
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            addr,
            server_name: ServerName::try_from(ip.to_owned()).context("server name")?,
            base: format!("https://{host}:{port}").into(),
        })
    }

    /// Opens one HTTP/2 connection.
    pub async fn connect(&self) -> Result<Connection> {
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let tls = self.tls.connect(self.server_name.clone(), tcp).await?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            ensure!(
                alpn.as_deref() == Some(cairn_pki::ALPN_H2),
                "the server did not agree to HTTP/2 (ALPN {alpn:?})"
            );
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                // Full lists of 100,000 objects are large: let the windows grow with the
                // bandwidth-delay product instead of stalling on the 5 MB default.
                .adaptive_window(true)
                .handshake(TokioIo::new(tls))
                .await?;
            tokio::spawn(conn);
            Ok(sender)
        };
        let sender = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .context("connecting timed out")?
            .with_context(|| format!("connecting to {}", self.base))?;
        Ok(Connection {
            sender,
            base: self.base.clone(),
        })
    }

    /// Opens `n` connections.
    pub async fn connect_many(&self, n: usize) -> Result<Vec<Connection>> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(self.connect().await?);
        }
        Ok(conns)
    }
}

fn decode_pem(data: &str, field: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .with_context(|| format!("{field} is not base64"))?;
    String::from_utf8(bytes).with_context(|| format!("{field} is not PEM text"))
}

/// One HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    base: Arc<str>,
}

/// A complete answer.
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The body if the status is `expected`, otherwise an error quoting the server's message.
    pub fn expect(self, expected: StatusCode) -> Result<Bytes> {
        if self.status == expected {
            return Ok(self.body);
        }
        Err(status_error(self.status, &self.body))
    }
}

/// An error for an unexpected status, with the message of the server's Status object.
fn status_error(status: StatusCode, body: &[u8]) -> anyhow::Error {
    #[derive(Deserialize)]
    struct Status {
        message: Option<String>,
    }
    let message = serde_json::from_slice::<Status>(body)
        .ok()
        .and_then(|s| s.message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    anyhow::anyhow!("{status}: {message}")
}

impl Connection {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let mut sender = self.sender.clone();
        Ok(sender.send_request(req).await?)
    }

    /// Sends a request and reads the whole answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let exchange = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(Reply { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .with_context(|| format!("{path}: timed out after {REQUEST_TIMEOUT:?}"))?
    }

    /// `GET path` expecting `200 OK`.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        self.request(Method::GET, path, None)
            .await?
            .expect(StatusCode::OK)
    }

    /// Starts a watch (`path` carries `watch=true`); returns once the server answered `200 OK`.
    pub async fn watch(&self, path: &str) -> Result<WatchStream> {
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.send(Method::GET, path, None))
            .await
            .context("starting the watch timed out")??;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(status_error(status, &body));
        }
        Ok(WatchStream {
            body: resp.into_body(),
            buf: Vec::new(),
            scanned: 0,
        })
    }
}

/// The events of a watch: one JSON document per line.
pub struct WatchStream {
    body: Incoming,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
}

impl WatchStream {
    /// The next event line (without its newline), or `None` when the server ended the stream.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(n) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + n;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                return Ok(Some(line));
            }
            self.scanned = self.buf.len();
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
