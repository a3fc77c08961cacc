//! The HTTPS port: TLS with ALPN `h2` and `http/1.1` (HTTP/1.1 upgrades are kept for exec),
//! each connection's verified client certificate read once, bodies collected up to the limit,
//! and requests the API does not serve handed to the embedding binary's routes (the CA and
//! the join endpoints).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

use crate::authn::{self, User};
use crate::error::ApiError;
use crate::response::{self, Body};
use crate::{ApiRequest, ApiServer, MAX_BODY_BYTES};

/// Requests served beside the API by the embedding binary.
pub trait Routes: Send + Sync + 'static {
    /// Answers a request for `path`, or `None` if it is not one of these routes.
    fn route(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<BoxFuture<'static, Response<Body>>>;
}

/// Serves the HTTPS port until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: rustls::ServerConfig,
    api: Arc<ApiServer>,
    routes: Arc<dyn Routes>,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the HTTPS port failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let routes = routes.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let user: Option<User> = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|leaf| authn::from_certificate(leaf.as_ref()));
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                let routes = routes.clone();
                let user = user.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&api, &*routes, req, user).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "HTTPS connection ended");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

async fn handle(
    api: &ApiServer,
    routes: &dyn Routes,
    req: Request<Incoming>,
    peer: Option<User>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return response::error(&ApiError::too_large());
        }
        Err(e) => return response::error(&ApiError::bad_request(e.to_string())),
    };
    let path = parts.uri.path().to_string();
    if let Some(answer) = routes.route(&parts.method, &path, &parts.headers, body.clone()) {
        return answer.await;
    }
    let started = std::time::Instant::now();
    let method = parts.method.clone();
    let response = api
        .handle(ApiRequest {
            method: parts.method,
            path: path.clone(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
            peer,
        })
        .await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed = ?started.elapsed(), "request");
    response
}
