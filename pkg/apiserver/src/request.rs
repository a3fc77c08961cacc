//! What a request asks for, read from its method, path and query as upstream's request-info
//! factory reads them: the API group and version, namespace, resource, name, subresource, and
//! the verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`).

use std::collections::BTreeMap;

use http::Method;

/// A request for a resource (`/api/v1/namespaces/default/pods/web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// The API group; empty for the core group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The namespace, when the path names one.
    pub namespace: Option<String>,
    /// The resource's plural name.
    pub resource: String,
    /// The object's name, when the path names one.
    pub name: Option<String>,
    /// The subresource (`status`, `scale`, …).
    pub subresource: Option<String>,
    /// The verb.
    pub verb: &'static str,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource or object.
    Resource(ResourceRequest),
    /// Discovery of a group-version (`/api/v1`, `/apis/apps/v1`).
    GroupVersion {
        /// The group.
        group: String,
        /// The version.
        version: String,
    },
    /// Discovery of a group (`/apis/apps`).
    Group(String),
    /// Anything else (`/version`, `/api`, `/apis`, `/openapi/v2`, …).
    NonResource,
}

/// The verb of a request on a resource.
fn verb(method: &Method, has_name: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if has_name => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if has_name => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// Reads what `path` addresses.
pub fn parse(method: &Method, path: &str, query: &Query) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Target::Group((*group).to_string()),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Target::NonResource,
    };
    if rest.is_empty() {
        return Target::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        };
    }
    // `namespaces/NS/RESOURCE/…` is a namespaced resource; `namespaces/NS[/SUB]` is the
    // namespace object itself.
    let (namespace, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() && !is_namespace_subresource(tail) => {
            (Some(*ns), tail)
        }
        _ => (None, rest),
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
        [] => return Target::NonResource,
    };
    let watch = query.flag("watch");
    Target::Resource(ResourceRequest {
        group: group.to_string(),
        version: version.to_string(),
        namespace: namespace.map(str::to_string),
        resource: resource.to_string(),
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
        verb: verb(method, name.is_some(), watch),
    })
}

fn is_namespace_subresource(tail: &[&str]) -> bool {
    matches!(tail, ["status"] | ["finalize"])
}

/// A request's query parameters. Repeated keys keep every value; empty pairs (`?&a=b`, which
/// kube-rs sends) are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(BTreeMap<String, Vec<String>>);

impl Query {
    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Query {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in query.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_default().push(decode(v));
        }
        Query(map)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// A boolean parameter (`true` or `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path_and_query: &str) -> ResourceRequest {
        let (path, q) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match parse(&method, path, &Query::parse(Some(q))) {
            Target::Resource(r) => r,
            other => panic!("{path_and_query}: {other:?}"),
        }
    }

    #[test]
    fn reads_paths_like_upstream() {
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods/web");
        assert_eq!(
            (
                r.group.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref(),
                r.verb
            ),
            ("", Some("default"), "pods", Some("web"), "get")
        );
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods?watch=true");
        assert_eq!(r.verb, "watch");
        let r = resource(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = resource(Method::PUT, "/api/v1/namespaces/x/status");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("x"), Some("status"))
        );
        let r = resource(
            Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        );
        assert_eq!(
            (r.group.as_str(), r.subresource.as_deref(), r.verb),
            ("apps", Some("scale"), "patch")
        );
        let r = resource(Method::DELETE, "/api/v1/namespaces/default/configmaps");
        assert_eq!(r.verb, "deletecollection");
        let r = resource(Method::GET, "/api/v1/pods");
        assert_eq!((r.namespace, r.verb), (None, "list"));
        assert_eq!(
            parse(&Method::GET, "/apis/apps/v1", &Query::default()),
            Target::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            parse(&Method::GET, "/version", &Query::default()),
            Target::NonResource
        );
    }

    #[test]
    fn query_tolerates_empty_pairs_and_decodes() {
        let q = Query::parse(Some(
            "&labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&command=echo&command=hi",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.all("command"), ["echo", "hi"]);
        assert_eq!(q.get("missing"), None);
    }
}
