//! `Api<K>`: the typed calls on one resource in one scope, and the paths they use.
//!
//! Paths come from the k8s-openapi type (`GROUP`, `VERSION`, `URL_PATH_SEGMENT`, `Scope`), so
//! a call cannot name a resource the type does not describe. Bodies are JSON.

use std::marker::PhantomData;

use http::Method;
use k8s_openapi::{ClusterResourceScope, List, ListableResource, NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Body, Client};
use crate::error::{Error, Result, Status};
use crate::params::{DeleteParams, ListParams, Patch, Query, WatchParams};
use crate::watch::{self, WatchStream};

/// The bounds every resource type handled by [`Api`] meets.
pub trait Object:
    Resource + ListableResource + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
}

impl<K> Object for K where
    K: Resource + ListableResource + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
}

/// The answer to a delete: the object when it is still there (finalizers or a grace period
/// keep it) or was returned as deleted, or the `Status` the server sent instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted<K> {
    /// The object as the delete left it.
    Object(K),
    /// A success `Status`.
    Status(Status),
}

/// Typed calls on resource `K` in one namespace, all namespaces, or the cluster scope.
#[derive(Debug, Clone)]
pub struct Api<K> {
    client: Client,
    /// The collection's path, such as `/api/v1/namespaces/default/configmaps`.
    collection: String,
    _kind: PhantomData<fn() -> K>,
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
fn prefix<K: Resource>() -> String {
    if K::GROUP.is_empty() {
        format!("/api/{}", K::VERSION)
    } else {
        format!("/apis/{}/{}", K::GROUP, K::VERSION)
    }
}

impl<K: Object> Api<K> {
    /// `K` in namespace `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Self
    where
        K: Resource<Scope = NamespaceResourceScope>,
    {
        Self::at(
            client,
            format!(
                "{}/namespaces/{namespace}/{}",
                prefix::<K>(),
                K::URL_PATH_SEGMENT
            ),
        )
    }

    /// `K` across all namespaces: for lists and watches (writes need a namespace).
    pub fn all(client: Client) -> Self {
        Self::at(client, format!("{}/{}", prefix::<K>(), K::URL_PATH_SEGMENT))
    }

    /// A cluster-scoped `K`, such as Node or Namespace.
    pub fn cluster(client: Client) -> Self
    where
        K: Resource<Scope = ClusterResourceScope>,
    {
        Self::at(client, format!("{}/{}", prefix::<K>(), K::URL_PATH_SEGMENT))
    }

    fn at(client: Client, collection: String) -> Self {
        Api {
            client,
            collection,
            _kind: PhantomData,
        }
    }

    /// The client this handle calls through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection's path.
    pub fn collection_path(&self) -> &str {
        &self.collection
    }

    fn item(&self, name: &str) -> String {
        format!("{}/{name}", self.collection)
    }

    fn write_query(&self) -> String {
        let mut query = Query::default();
        query.pair("fieldManager", self.client.field_manager());
        query.finish()
    }

    fn json<B: Serialize + ?Sized>(body: &B) -> Result<Body> {
        Ok(Body {
            content_type: "application/json",
            bytes: serde_json::to_vec(body).map_err(Error::Encode)?,
        })
    }

    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<K> {
        self.client
            .request(Method::GET, &self.item(name), None)
            .await
    }

    /// Reads one object, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists one page (or everything when `params.limit` is unset). The list's
    /// `metadata.resourceVersion` and `metadata.continue` say where it stands.
    pub async fn list(&self, params: &ListParams) -> Result<List<K>> {
        let mut query = Query::default();
        params.query(&mut query);
        let path = format!("{}{}", self.collection, query.finish());
        let raw: RawList<K> = self.client.request(Method::GET, &path, None).await?;
        Ok(List {
            items: raw.items,
            metadata: raw.metadata,
        })
    }

    /// Creates `object`.
    pub async fn create(&self, object: &K) -> Result<K> {
        let path = format!("{}{}", self.collection, self.write_query());
        let body = Self::json(object)?;
        self.client.request(Method::POST, &path, Some(body)).await
    }

    /// Replaces object `name`; its `metadata.resourceVersion`, when set, must be current or
    /// the server answers 409 Conflict.
    pub async fn replace(&self, name: &str, object: &K) -> Result<K> {
        let path = format!("{}{}", self.item(name), self.write_query());
        let body = Self::json(object)?;
        self.client.request(Method::PUT, &path, Some(body)).await
    }

    /// Replaces the status of object `name` (through `/status`).
    pub async fn replace_status(&self, name: &str, object: &K) -> Result<K> {
        self.replace_subresource(name, "status", object).await
    }

    /// Replaces object `name` through one of its subresources (`status`, or a namespace's
    /// `finalize`).
    pub async fn replace_subresource(
        &self,
        name: &str,
        subresource: &str,
        object: &K,
    ) -> Result<K> {
        let path = format!("{}/{subresource}{}", self.item(name), self.write_query());
        let body = Self::json(object)?;
        self.client.request(Method::PUT, &path, Some(body)).await
    }

    /// Patches object `name`.
    pub async fn patch(&self, name: &str, patch: &Patch) -> Result<K> {
        self.patch_at(self.item(name), patch).await
    }

    /// Patches the status of object `name` (through `/status`).
    pub async fn patch_status(&self, name: &str, patch: &Patch) -> Result<K> {
        self.patch_at(format!("{}/status", self.item(name)), patch)
            .await
    }

    async fn patch_at(&self, path: String, patch: &Patch) -> Result<K> {
        let mut query = Query::default();
        match patch {
            Patch::Apply { manager, force, .. } => {
                let manager = if manager.is_empty() {
                    self.client.field_manager()
                } else {
                    manager
                };
                query.pair("fieldManager", manager);
                if *force {
                    query.pair("force", "true");
                }
            }
            _ => query.pair("fieldManager", self.client.field_manager()),
        }
        let body = Body {
            content_type: patch.content_type(),
            bytes: serde_json::to_vec(patch.body()).map_err(Error::Encode)?,
        };
        let path = format!("{path}{}", query.finish());
        self.client.request(Method::PATCH, &path, Some(body)).await
    }

    /// Deletes object `name`.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted<K>> {
        let path = self.item(name);
        let mut options = serde_json::to_value(params).map_err(Error::Encode)?;
        options["kind"] = "DeleteOptions".into();
        options["apiVersion"] = "v1".into();
        let body = Self::json(&options)?;
        let bytes = self
            .client
            .request_bytes(Method::DELETE, &path, Some(body))
            .await?;
        let decode = |source| Error::Decode {
            path: path.clone(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(decode)?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("Status") {
            Ok(Deleted::Status(
                serde_json::from_value(value).map_err(decode)?,
            ))
        } else {
            Ok(Deleted::Object(
                serde_json::from_value(value).map_err(decode)?,
            ))
        }
    }

    /// Posts `body` to subresource `subresource` of object `name`, such as a `Binding` to
    /// `pods/NAME/binding` or an `Eviction` to `pods/NAME/eviction`; the answer is decoded as
    /// `R` (often a [`Status`] or `serde_json::Value`).
    pub async fn create_subresource<B, R>(
        &self,
        name: &str,
        subresource: &str,
        body: &B,
    ) -> Result<R>
    where
        B: Serialize,
        R: DeserializeOwned,
    {
        let path = format!("{}/{subresource}{}", self.item(name), self.write_query());
        let body = Self::json(body)?;
        self.client.request(Method::POST, &path, Some(body)).await
    }

    /// Watches from `resource_version` (empty: from now, with the current objects first as
    /// `ADDED`). The stream ends when the server ends the watch (its `timeoutSeconds`).
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<WatchStream<K>> {
        let mut query = Query::default();
        params.query(&mut query, resource_version);
        let path = format!("{}{}", self.collection, query.finish());
        let body = self.client.request_stream(&path).await?;
        Ok(watch::events(path, body))
    }
}

/// `k8s_openapi::List` deserializes only with `kind` and `apiVersion` checks of its own;
/// this is its plain shape.
#[derive(serde::Deserialize)]
struct RawList<K> {
    #[serde(default = "Vec::new")]
    items: Vec<K>,
    #[serde(default)]
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta,
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};

    use super::*;
    use crate::config::{Config, Credentials};

    fn client() -> Client {
        let ca = include_str!("../testdata/ca.pem");
        Client::new(Config::new("https://127.0.0.1:6443", ca, Credentials::None)).unwrap()
    }

    #[test]
    fn paths_follow_group_version_and_scope() {
        let c = client();
        assert_eq!(
            Api::<Pod>::namespaced(c.clone(), "kube-system").collection_path(),
            "/api/v1/namespaces/kube-system/pods"
        );
        assert_eq!(Api::<Pod>::all(c.clone()).collection_path(), "/api/v1/pods");
        assert_eq!(
            Api::<Deployment>::namespaced(c.clone(), "d").item("web"),
            "/apis/apps/v1/namespaces/d/deployments/web"
        );
        assert_eq!(
            Api::<Lease>::namespaced(c.clone(), "kube-node-lease").collection_path(),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        );
        assert_eq!(
            Api::<Node>::cluster(c.clone()).item("n1"),
            "/api/v1/nodes/n1"
        );
        assert_eq!(
            Api::<Namespace>::cluster(c.clone()).collection_path(),
            "/api/v1/namespaces"
        );
        let cms = Api::<ConfigMap>::namespaced(c.with_field_manager("cairn-scheduler"), "x");
        assert_eq!(cms.write_query(), "?fieldManager=cairn-scheduler");
    }
}
