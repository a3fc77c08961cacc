//! The HTTP core: one pooled HTTP/2 connection over rustls, credentials, the `User-Agent`, and
//! turning non-2xx answers into [`Error::Api`].
//!
//! This module knows requests and bodies, not resources; paths come from [`crate::Api`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;

use crate::config::{Config, Credentials};
use crate::error::{Error, Result, Status};

/// The `User-Agent` every request carries.
pub const USER_AGENT_VALUE: &str = concat!("cairn/", env!("CARGO_PKG_VERSION"));

type HttpClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A handle on the API server. Cheap to clone; clones share one connection pool (one HTTP/2
/// connection multiplexes every request and watch).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    field_manager: Arc<str>,
}

struct Inner {
    http: HttpClient,
    server: String,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server)
            .field("field_manager", &self.field_manager)
            .finish()
    }
}

/// A request body with its content type.
pub(crate) struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Client {
    /// A client for `config`. Does not connect until the first request.
    pub fn new(config: Config) -> Result<Self> {
        if !config.server.starts_with("https://") {
            return Err(Error::Config(format!(
                "server {:?} is not an https URL",
                config.server
            )));
        }
        let (client_cert, authorization) = match &config.credentials {
            Credentials::ClientCert { cert_pem, key_pem } => {
                (Some((cert_pem.as_str(), key_pem.as_str())), None)
            }
            Credentials::Token(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
                value.set_sensitive(true);
                (None, Some(value))
            }
            Credentials::None => (None, None),
        };
        // ALPN is set by the connector builder: `h2` only, since `enable_http2` alone is on.
        let tls = cairn_pki::client_config(&config.ca_pem, client_cert).map_err(Error::Tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http2()
            .wrap_connector(http);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            // Keep the one connection alive through idle periods and notice a dead peer.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(10))
            .build(connector);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                server: config.server,
                authorization,
                timeout: config.timeout,
            }),
            field_manager: Arc::from(config.field_manager),
        })
    }

    /// A clone sending `field_manager` with its writes; it shares this client's connections.
    pub fn with_field_manager(&self, field_manager: &str) -> Self {
        Client {
            inner: self.inner.clone(),
            field_manager: Arc::from(field_manager),
        }
    }

    /// The `fieldManager` sent with writes.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// Sends a request and decodes a JSON answer.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<T> {
        let bytes = self.request_bytes(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            path: path.to_string(),
            source,
        })
    }

    /// Sends a request and returns the whole body of a successful answer.
    pub(crate) async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Bytes> {
        let call = async {
            let response = self.send(method, path, body).await?;
            read_body(path, response).await
        };
        tokio::time::timeout(self.inner.timeout, call)
            .await
            .map_err(|_| Error::Timeout {
                path: path.to_string(),
            })?
    }

    /// Sends a request and returns the streaming body of a successful answer (watches).
    /// Only the response head is bounded by the request timeout.
    pub(crate) async fn request_stream(&self, path: &str) -> Result<Incoming> {
        let response = tokio::time::timeout(self.inner.timeout, self.send(Method::GET, path, None))
            .await
            .map_err(|_| Error::Timeout {
                path: path.to_string(),
            })??;
        if response.status().is_success() {
            Ok(response.into_body())
        } else {
            Err(read_body(path, response).await.err().unwrap_or_else(|| {
                Error::Api(Status {
                    code: 500,
                    reason: "InternalError".into(),
                    message: "unexpected status".into(),
                })
            }))
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Response<Incoming>> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.inner.server, path))
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "application/json");
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let request = match body {
            Some(body) => request
                .header(CONTENT_TYPE, body.content_type)
                .body(Full::new(Bytes::from(body.bytes))),
            None => request.body(Full::new(Bytes::new())),
        }
        .map_err(|e| Error::Config(format!("invalid request to {path}: {e}")))?;
        tracing::trace!(method = %request.method(), path, "request");
        self.inner
            .http
            .request(request)
            .await
            .map_err(|source| Error::Transport {
                path: path.to_string(),
                source,
            })
    }
}

/// Reads the whole body; a non-2xx answer becomes [`Error::Api`] with the server's `Status`
/// when it sent one.
async fn read_body(path: &str, response: Response<Incoming>) -> Result<Bytes> {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|source| Error::Body {
            path: path.to_string(),
            source,
        })?
        .to_bytes();
    if status.is_success() {
        return Ok(bytes);
    }
    Err(Error::Api(status_from(status, &bytes)))
}

/// The `Status` of a failed answer: the body's when it is one, else made from the HTTP status.
pub(crate) fn status_from(status: StatusCode, body: &[u8]) -> Status {
    match serde_json::from_slice::<Status>(body) {
        Ok(mut parsed) if parsed.code != 0 || !parsed.reason.is_empty() => {
            if parsed.code == 0 {
                parsed.code = status.as_u16();
            }
            parsed
        }
        _ => Status {
            code: status.as_u16(),
            reason: status
                .canonical_reason()
                .unwrap_or_default()
                .replace(' ', ""),
            message: String::from_utf8_lossy(body).trim().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_bodies_become_statuses() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}"#;
        let status = status_from(StatusCode::NOT_FOUND, body);
        assert_eq!(status.code, 404);
        assert_eq!(status.reason, "NotFound");
        assert_eq!(status.message, "configmaps \"x\" not found");
        let plain = status_from(StatusCode::SERVICE_UNAVAILABLE, b"try later\n");
        assert_eq!(plain.code, 503);
        assert_eq!(plain.reason, "ServiceUnavailable");
        assert_eq!(plain.message, "try later");
    }

    #[test]
    fn plain_http_is_refused() {
        let config = Config::new("http://127.0.0.1:1", "", Credentials::None);
        assert!(matches!(Client::new(config), Err(Error::Config(_))));
    }
}
