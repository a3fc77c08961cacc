//! What a user may do. `system:masters` may do anything; every authenticated user may read
//! discovery, `/version`, the OpenAPI documents and ask what it may do (upstream's
//! `system:basic-user` and `system:discovery` roles); a node identity (`system:node:NAME` in
//! `system:nodes`) may do what upstream's Node authorizer and `system:node` role allow; nobody
//! else may do anything.

use serde_json::Value;

use crate::authn::{MASTERS, User};
use crate::error::{ApiError, ApiResult};
use crate::request::ResourceRequest;
use crate::storage::Storage;

/// Non-resource paths every authenticated user may read.
fn is_discovery_path(path: &str) -> bool {
    matches!(
        path,
        "/api" | "/apis" | "/version" | "/healthz" | "/livez" | "/readyz"
    ) || path.starts_with("/api/")
        || path.starts_with("/apis/")
        || path.starts_with("/openapi/")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Paths anyone may read without credentials.
pub fn is_public_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/cacerts" | "/ping"
    )
}

/// Upstream's Forbidden message for a resource request.
pub fn forbidden(user: &User, r: &ResourceRequest) -> ApiError {
    let resource = match &r.subresource {
        Some(sub) => format!("{}/{sub}", r.resource),
        None => r.resource.clone(),
    };
    let subject = match &r.name {
        Some(n) => format!("{} \"{n}\"", qualified(r)),
        None => qualified(r),
    };
    let scope = match &r.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, r.verb, r.group
    ))
}

fn qualified(r: &ResourceRequest) -> String {
    if r.group.is_empty() {
        r.resource.clone()
    } else {
        format!("{}.{}", r.resource, r.group)
    }
}

/// Authorizes a request for a non-resource path.
pub fn authorize_path(user: &User, method: &http::Method, path: &str) -> ApiResult<()> {
    if user.in_group(MASTERS) || (method == http::Method::GET && is_discovery_path(path)) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "forbidden: User \"{}\" cannot {} path \"{path}\"",
        user.name,
        method.as_str().to_ascii_lowercase()
    )))
}

/// Authorizes a request for a resource; a node's requests may need a look at the store.
pub async fn authorize(user: &User, r: &ResourceRequest, storage: &Storage) -> ApiResult<()> {
    if user.in_group(MASTERS) {
        return Ok(());
    }
    if r.group == "authorization.k8s.io" && r.resource == "selfsubjectaccessreviews" {
        return Ok(());
    }
    let allowed = match user.node_name() {
        Some(node) => node_may(node, r, storage).await?,
        None => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(user, r))
    }
}

/// Whether a user may do something, for `SelfSubjectAccessReview`: the same rules without
/// the store (a node is answered as for objects bound to it).
pub fn would_allow(user: &User, r: &ResourceRequest) -> bool {
    if user.in_group(MASTERS) {
        return true;
    }
    match user.node_name() {
        Some(node) => node_static(node, r).unwrap_or(true),
        None => r.group == "authorization.k8s.io" && r.resource == "selfsubjectaccessreviews",
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// The node rules that need no store: `Some(decision)`, or `None` when the answer depends on
/// the objects bound to the node.
fn node_static(node: &str, r: &ResourceRequest) -> Option<bool> {
    let own = r.name.as_deref() == Some(node);
    let verb = r.verb;
    let sub = r.subresource.as_deref();
    Some(match (r.group.as_str(), r.resource.as_str()) {
        ("", "nodes") => match sub {
            None if READ.contains(&verb) => true,
            None | Some("status") => own || (verb == "create" && sub.is_none()),
            _ => false,
        },
        ("coordination.k8s.io", "leases") => {
            r.namespace.as_deref() == Some("kube-node-lease") && (own || verb == "create")
        }
        ("", "pods") => match (sub, verb) {
            (None, "get" | "list" | "watch") => true,
            (None, "delete") | (Some("status"), "get" | "update" | "patch") => return None,
            _ => false,
        },
        ("", "services" | "endpoints") | ("discovery.k8s.io", "endpointslices") => {
            READ.contains(&verb)
        }
        ("", "events") | ("events.k8s.io", "events") => {
            matches!(verb, "create" | "update" | "patch")
        }
        ("", "configmaps" | "secrets" | "serviceaccounts" | "persistentvolumeclaims") => {
            if verb == "get" {
                return None;
            }
            false
        }
        _ => false,
    })
}

async fn node_may(node: &str, r: &ResourceRequest, storage: &Storage) -> ApiResult<bool> {
    if let Some(decision) = node_static(node, r) {
        return Ok(decision);
    }
    let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else {
        return Ok(false);
    };
    let pods = cairn_api::resources::find("", "v1", "pods").expect("pods are served");
    if r.resource == "pods" {
        let pod = storage.get(pods, Some(ns), name).await?;
        return Ok(pod.is_some_and(|p| bound_to(&p, node)));
    }
    // A configmap, secret, service account or claim: only if a pod bound to the node uses it.
    let mut start = None;
    loop {
        let page = storage.list(pods, Some(ns), start, 0, 500).await?;
        if page
            .items
            .iter()
            .any(|p| bound_to(p, node) && references(p, &r.resource, name))
        {
            return Ok(true);
        }
        match page.next_key {
            Some(k) => start = Some(k),
            None => return Ok(false),
        }
    }
}

fn bound_to(pod: &Value, node: &str) -> bool {
    pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
}

/// Whether a pod refers to an object of `resource` called `name` (volumes, projected volumes,
/// env and envFrom of every container, image pull secrets, its service account).
pub fn references(pod: &Value, resource: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    match resource {
        "serviceaccounts" => is(&spec["serviceAccountName"]),
        "persistentvolumeclaims" => {
            volumes(spec).any(|v| is(&v["persistentVolumeClaim"]["claimName"]))
        }
        "secrets" => {
            volumes(spec).any(|v| is(&v["secret"]["secretName"]))
                || projected(spec).any(|s| is(&s["secret"]["name"]))
                || env_refs(spec, "secretKeyRef", "secretRef").any(is)
                || list(&spec["imagePullSecrets"]).any(|s| is(&s["name"]))
        }
        "configmaps" => {
            volumes(spec).any(|v| is(&v["configMap"]["name"]))
                || projected(spec).any(|s| is(&s["configMap"]["name"]))
                || env_refs(spec, "configMapKeyRef", "configMapRef").any(is)
        }
        _ => false,
    }
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    list(&spec["volumes"])
}

fn projected(spec: &Value) -> impl Iterator<Item = &Value> {
    volumes(spec).flat_map(|v| list(&v["projected"]["sources"]))
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    list(&spec["containers"])
        .chain(list(&spec["initContainers"]))
        .chain(list(&spec["ephemeralContainers"]))
}

/// The names in `env[].valueFrom.<key_ref>.name` and `envFrom[].<from_ref>.name`.
fn env_refs<'a>(
    spec: &'a Value,
    key_ref: &'a str,
    from_ref: &'a str,
) -> impl Iterator<Item = &'a Value> {
    containers(spec).flat_map(move |c| {
        list(&c["env"])
            .map(move |e| &e["valueFrom"][key_ref]["name"])
            .chain(list(&c["envFrom"]).map(move |e| &e[from_ref]["name"]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(
        verb: &'static str,
        group: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> ResourceRequest {
        ResourceRequest {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(Into::into),
            resource: resource.into(),
            name: name.map(Into::into),
            subresource: None,
            verb,
        }
    }

    #[test]
    fn forbidden_reads_like_upstream() {
        let bob = User::new("bob", []);
        let e = forbidden(&bob, &req("list", "", "pods", Some("default"), None));
        assert_eq!(
            e.message,
            "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let e = forbidden(&bob, &req("get", "apps", "deployments", None, Some("x")));
        assert!(e.message.starts_with("deployments.apps \"x\" is forbidden"));
        assert!(e.message.ends_with("at the cluster scope"));
    }

    #[test]
    fn nodes_touch_only_their_own_node_and_lease() {
        assert_eq!(
            node_static("n1", &req("update", "", "nodes", None, Some("n1"))),
            Some(true)
        );
        assert_eq!(
            node_static("n1", &req("update", "", "nodes", None, Some("n2"))),
            Some(false)
        );
        assert_eq!(
            node_static("n1", &req("list", "", "nodes", None, None)),
            Some(true)
        );
        assert_eq!(
            node_static(
                "n1",
                &req(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    Some("kube-node-lease"),
                    Some("n1")
                )
            ),
            Some(true)
        );
        assert_eq!(
            node_static(
                "n1",
                &req(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    Some("kube-node-lease"),
                    Some("n2")
                )
            ),
            Some(false)
        );
        assert_eq!(
            node_static("n1", &req("list", "", "secrets", Some("d"), None)),
            Some(false)
        );
        assert_eq!(
            node_static("n1", &req("get", "", "secrets", Some("d"), Some("s"))),
            None
        );
        assert_eq!(
            node_static("n1", &req("create", "apps", "deployments", Some("d"), None)),
            Some(false)
        );
    }

    #[test]
    fn pod_references() {
        let pod = json!({"spec": {
            "nodeName": "n1",
            "volumes": [{"name": "v", "configMap": {"name": "cm1"}}, {"name": "s", "secret": {"secretName": "s1"}}],
            "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}],
                            "envFrom": [{"configMapRef": {"name": "cm2"}}]}],
            "imagePullSecrets": [{"name": "pull"}]
        }});
        for (r, n) in [
            ("configmaps", "cm1"),
            ("configmaps", "cm2"),
            ("secrets", "s1"),
            ("secrets", "s2"),
            ("secrets", "pull"),
        ] {
            assert!(references(&pod, r, n), "{r}/{n}");
        }
        assert!(!references(&pod, "secrets", "cm1"));
        assert!(bound_to(&pod, "n1") && !bound_to(&pod, "n2"));
    }
}
