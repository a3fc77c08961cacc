//! cairn-apiserver: the Kubernetes REST API over cairn-kv, served on hyper. It authenticates
//! (client certificates, bearer tokens) and authorizes requests, serves discovery and OpenAPI,
//! and gets, lists, watches, creates, updates, patches and deletes the resources cairn-api
//! describes, answering errors as `metav1.Status`. It does not run controllers or the
//! scheduler; those reach it over HTTP like any client.

mod authn;
mod authz;
mod call;
mod delete;
mod discovery;
mod error;
mod filter;
mod metrics;
mod negotiate;
mod object;
mod openapi;
mod protobuf;
mod read;
mod request;
mod response;
mod review;
mod server;
mod storage;
mod strategy;
mod table;
mod watch;
mod watch_cache;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use cairn_kv::Store;
use http::{HeaderMap, Method, Response, StatusCode};

pub use authn::{TokenFileError, Tokens, User};
pub use discovery::{KUBERNETES_GIT_VERSION, KUBERNETES_MINOR};
pub use error::ApiError;
pub use response::Body;
pub use server::{Routes, serve};

use call::Call;
use error::ApiResult;
use request::{Query, Target};
use storage::Storage;

/// The largest request body accepted (upstream's limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How the API server is set up.
pub struct Config {
    /// The store.
    pub store: Store,
    /// Bearer tokens and their users.
    pub tokens: Tokens,
    /// The address clients reach the API at (`HOST:PORT`), for legacy discovery.
    pub advertise: String,
}

/// The API server: stateless apart from its store handle; shared by every connection.
pub struct ApiServer {
    storage: Storage,
    caches: watch_cache::Caches,
    metrics: metrics::Metrics,
    tokens: Tokens,
    advertise: String,
}

/// The parts of a request the server reads.
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The user of the connection's verified client certificate, if any.
    pub peer: Option<User>,
}

impl ApiServer {
    /// A server over `config.store`.
    pub fn new(config: Config) -> Arc<ApiServer> {
        let storage = Storage::new(config.store);
        Arc::new(ApiServer {
            caches: watch_cache::Caches::new(storage.clone()),
            metrics: metrics::Metrics::new(),
            storage,
            tokens: config.tokens,
            advertise: config.advertise,
        })
    }

    /// Creates the namespaces every cluster has (`default`, `kube-system`, `kube-public`,
    /// `kube-node-lease`) when they are missing.
    pub async fn ensure_system_namespaces(&self) -> Result<(), ApiError> {
        let namespaces = cairn_api::resources::find("", "v1", "namespaces").expect("served");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.storage.get(namespaces, None, name).await?.is_some() {
                continue;
            }
            let body = serde_json::json!({"metadata": {"name": name}});
            let mut ns = cairn_api::typed::admit(namespaces, body)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .object;
            strategy::prepare_create(namespaces, &mut ns);
            self.storage.create(namespaces, None, name, &ns).await?;
        }
        Ok(())
    }

    /// Who is asking: the certificate's user, else the bearer token's; `Ok(None)` when the
    /// request carries no credentials.
    fn authenticate(&self, req: &ApiRequest) -> ApiResult<Option<User>> {
        if let Some(u) = &req.peer {
            return Ok(Some(u.clone()));
        }
        let bearer = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match bearer {
            None => Ok(None),
            Some(token) => self
                .tokens
                .user(token)
                .cloned()
                .map(Some)
                .ok_or_else(ApiError::unauthorized),
        }
    }

    /// Answers one request, and counts it.
    pub async fn handle(&self, req: ApiRequest) -> Response<Body> {
        let started = std::time::Instant::now();
        let query = Query::parse(req.query.as_deref());
        let (verb, resource) = match request::parse(&req.method, &req.path, &query) {
            Target::Resource(r) => {
                let name = match (&r.subresource, r.group.is_empty()) {
                    (Some(s), true) => format!("{}/{s}", r.resource),
                    (Some(s), false) => format!("{}.{}/{s}", r.resource, r.group),
                    (None, true) => r.resource.clone(),
                    (None, false) => format!("{}.{}", r.resource, r.group),
                };
                (r.verb.to_string(), name)
            }
            _ => (req.method.as_str().to_ascii_lowercase(), String::new()),
        };
        let response = match self.route(req).await {
            Ok(r) => r,
            Err(e) => response::error(&e),
        };
        self.metrics.observe(
            metrics::RequestLabels {
                verb,
                resource,
                code: response.status().as_u16().to_string(),
            },
            started.elapsed(),
        );
        response
    }

    async fn route(&self, req: ApiRequest) -> ApiResult<Response<Body>> {
        let path = req.path.clone();
        if req.method == Method::GET && authz::is_public_path(&path) {
            return Ok(match path.as_str() {
                "/version" => response::json(StatusCode::OK, &discovery::version()),
                _ => response::text(StatusCode::OK, "ok"),
            });
        }
        let user = self
            .authenticate(&req)?
            .ok_or_else(ApiError::unauthorized)?;
        let query = Query::parse(req.query.as_deref());
        match request::parse(&req.method, &path, &query) {
            Target::NonResource => {
                authz::authorize_path(&user, &req.method, &path)?;
                self.non_resource(&path, &req.headers)
            }
            Target::Group(group) => {
                authz::authorize_path(&user, &req.method, &path)?;
                discovery::legacy_group(&group)
                    .map(|d| response::json(StatusCode::OK, &d))
                    .ok_or_else(ApiError::no_route)
            }
            Target::GroupVersion { group, version } => {
                authz::authorize_path(&user, &req.method, &path)?;
                discovery::resource_list(&group, &version)
                    .map(|d| response::json(StatusCode::OK, &d))
                    .ok_or_else(ApiError::no_route)
            }
            Target::Resource(r) => {
                let resource = cairn_api::resources::find(&r.group, &r.version, &r.resource)
                    .ok_or_else(ApiError::no_route)?;
                authz::authorize(&user, &r, &self.storage).await?;
                let call = Call {
                    api: self,
                    user,
                    req: r,
                    resource,
                    query,
                    headers: req.headers,
                    body: req.body,
                };
                dispatch(&call).await
            }
        }
    }

    fn non_resource(&self, path: &str, headers: &HeaderMap) -> ApiResult<Response<Body>> {
        match path {
            "/api" => Ok(match negotiate::aggregated_discovery(headers) {
                Some(v) => response::json_typed(
                    StatusCode::OK,
                    &discovery::aggregated_content_type(v),
                    &discovery::aggregated(true, v),
                ),
                None => response::json(StatusCode::OK, &discovery::legacy_core(&self.advertise)),
            }),
            "/apis" => Ok(match negotiate::aggregated_discovery(headers) {
                Some(v) => response::json_typed(
                    StatusCode::OK,
                    &discovery::aggregated_content_type(v),
                    &discovery::aggregated(false, v),
                ),
                None => response::json(StatusCode::OK, &discovery::legacy_groups()),
            }),
            p if p.starts_with("/healthz")
                || p.starts_with("/livez")
                || p.starts_with("/readyz") =>
            {
                Ok(response::text(StatusCode::OK, "ok"))
            }
            p if p.starts_with("/openapi/") => openapi::serve(p, headers),
            "/metrics" => Ok(response::with_type(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(self.storage.store()),
            )),
            _ => Err(ApiError::no_route()),
        }
    }
}

/// Sends a request for a resource to the handler of its verb and subresource.
async fn dispatch(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let sub = call.req.subresource.as_deref();
    if let Some(s) = sub
        && call.resource.subresource(s).is_none()
    {
        return Err(ApiError::no_route());
    }
    let allowed = match sub {
        Some(s) => call
            .resource
            .subresource(s)
            .is_some_and(|s| s.verbs.contains(&call.req.verb)),
        None => call.resource.verbs.contains(&call.req.verb),
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(call.req.verb));
    }
    match (call.req.verb, sub) {
        ("create", None) if !call.resource.is_stored() => review::create(call),
        ("get", None | Some("status")) => read::get(call).await,
        ("get", Some("scale")) => write::scale_get(call).await,
        ("list", None) => read::list(call).await,
        ("watch", None) => watch::watch(call).await,
        ("create", None) => write::create(call).await,
        ("create", Some("binding")) => write::bind(call).await,
        ("create", Some("eviction")) => delete::delete(call).await,
        ("update", Some("finalize")) => write::finalize(call).await,
        ("update", _) => write::update(call).await,
        ("patch", _) => write::patch(call).await,
        ("delete", None) => delete::delete(call).await,
        ("deletecollection", None) => delete::delete_collection(call).await,
        (verb, _) => Err(ApiError::method_not_allowed(verb)),
    }
}
