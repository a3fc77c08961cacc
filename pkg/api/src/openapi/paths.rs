//! The REST operations of each served resource, described once and rendered by the v2 and
//! v3 writers: list, create, delete-collection, read, replace, patch and delete, the
//! `status` subresource, and each operation's `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind` and query parameters (`fieldValidation`, `dryRun`,
//! `fieldManager`, …). kubectl decides whether the server validates fields from the PATCH
//! operation of a kind: it needs the GVK extension and a `fieldValidation` parameter there.

use serde_json::Value;

use crate::resources::Resource;

use super::schemas::{DELETE_OPTIONS, KindSchemas, PATCH, STATUS};

/// An HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// PUT.
    Put,
    /// POST.
    Post,
    /// DELETE.
    Delete,
    /// PATCH.
    Patch,
}

impl Method {
    /// The lower-case key of the operation in a path item.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In the URL path (`{name}`, `{namespace}`).
    Path,
    /// In the query string.
    Query,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Where it goes.
    pub location: Location,
    /// Its JSON type: `string`, `integer` or `boolean`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
}

const fn query(name: &'static str, kind: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: Location::Query,
        kind,
        description,
    }
}

const NAME: Param = Param {
    name: "name",
    location: Location::Path,
    kind: "string",
    description: "name of the object",
};
const NAMESPACE: Param = Param {
    name: "namespace",
    location: Location::Path,
    kind: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values: All.",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "The name of the actor making the change, for field management.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "How to treat unknown or duplicate fields in the request: Ignore, Warn or Strict.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force an apply request to take over fields owned by other managers.",
);
const LIST: &[Param] = &[
    query(
        "allowWatchBookmarks",
        "boolean",
        "Ask for BOOKMARK watch events.",
    ),
    query(
        "continue",
        "string",
        "The continue token of the previous page.",
    ),
    query(
        "fieldSelector",
        "string",
        "Restrict the objects by their fields.",
    ),
    query(
        "labelSelector",
        "string",
        "Restrict the objects by their labels.",
    ),
    query(
        "limit",
        "integer",
        "The most objects to return in one page.",
    ),
    query(
        "resourceVersion",
        "string",
        "The resource version to read at or to watch from.",
    ),
    query(
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies: Exact or NotOlderThan.",
    ),
    query(
        "sendInitialEvents",
        "boolean",
        "Start a watch with the current objects as ADDED events.",
    ),
    query(
        "timeoutSeconds",
        "integer",
        "End the call after this many seconds.",
    ),
    query("watch", "boolean", "Watch for changes instead of listing."),
];
const DELETE: &[Param] = &[
    DRY_RUN,
    query(
        "gracePeriodSeconds",
        "integer",
        "How many seconds the object may take to terminate.",
    ),
    query(
        "propagationPolicy",
        "string",
        "Whether and how dependents are deleted: Orphan, Background or Foreground.",
    ),
];

/// The media types a PATCH body may have.
pub const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// The body of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The definition of the body.
    pub schema: String,
    /// Whether the body is a patch (its media types are [`PATCH_TYPES`]).
    pub patch: bool,
}

/// One operation on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its method.
    pub method: Method,
    /// Its operation id (`listCoreV1NamespacedPod`).
    pub id: String,
    /// Its `x-kubernetes-action`: list, post, deletecollection, get, put, patch, delete.
    pub action: &'static str,
    /// What it does.
    pub description: String,
    /// Its query parameters.
    pub params: Vec<Param>,
    /// Its body, if it takes one.
    pub body: Option<Body>,
    /// Its responses: status code and the definition returned.
    pub responses: Vec<(u16, String)>,
    /// Whether it can stream watch events.
    pub watchable: bool,
}

/// One path with its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathItem {
    /// The path (`/api/v1/namespaces/{namespace}/pods/{name}`).
    pub path: String,
    /// The parameters of every operation on it (path parameters, `pretty`).
    pub params: Vec<Param>,
    /// The operations.
    pub operations: Vec<Operation>,
    /// The group, version and kind the operations act on.
    pub gvk: (&'static str, &'static str, &'static str),
}

/// The `CoreV1`, `AppsV1`, `CoordinationV1` part of operation ids.
fn id_group(resource: &Resource) -> String {
    let group = resource.group.split('.').next().unwrap_or_default();
    let group = if group.is_empty() { "core" } else { group };
    format!("{}{}", capitalize(group), capitalize(resource.version))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A path item in either document version, given that version's parameter and operation
/// encoders.
pub fn path_item(
    item: &PathItem,
    param: fn(&Param) -> Value,
    operation: fn(&Operation, &PathItem) -> Value,
) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("parameters".into(), item.params.iter().map(param).collect());
    for op in &item.operations {
        out.insert(op.method.key().into(), operation(op, item));
    }
    Value::Object(out)
}

/// The tag of an operation: its group (`core` for the core group) and version.
pub fn tag(group: &str, version: &str) -> String {
    format!(
        "{}_{version}",
        if group.is_empty() { "core" } else { group }
    )
}

/// The URL prefix of a resource's group-version (`/api/v1`, `/apis/apps/v1`).
pub fn prefix(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    }
}

/// The paths of one resource.
pub fn resource_paths(k: &KindSchemas) -> Vec<PathItem> {
    let r = k.resource;
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let id = |verb: &str, suffix: &str| format!("{verb}{}{scope}{}{suffix}", id_group(r), r.kind);
    let collection_path = if r.namespaced {
        format!("{}/namespaces/{{namespace}}/{}", prefix(r), r.plural)
    } else {
        format!("{}/{}", prefix(r), r.plural)
    };
    let mut base_params = vec![PRETTY];
    if r.namespaced {
        base_params.insert(0, NAMESPACE);
    }
    let gvk = (r.group, r.version, r.kind);
    let write = |method, verb: &str, action, suffix: &str, body: Body| Operation {
        method,
        id: id(verb, suffix),
        action,
        description: format!("{verb} {} {}", r.kind, suffix.to_lowercase())
            .trim_end()
            .to_string(),
        params: match method {
            Method::Patch => vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE],
            _ => vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
        },
        body: Some(body),
        responses: vec![(200, k.kind.clone()), (201, k.kind.clone())],
        watchable: false,
    };
    let kind_body = Body {
        schema: k.kind.clone(),
        patch: false,
    };
    let patch_body = Body {
        schema: PATCH.into(),
        patch: true,
    };

    let create = write(Method::Post, "create", "post", "", kind_body.clone());
    let Some(list_schema) = &k.list else {
        // Only created, like the access reviews.
        return vec![PathItem {
            path: collection_path,
            params: base_params,
            operations: vec![create],
            gvk,
        }];
    };
    let list = Operation {
        method: Method::Get,
        id: id("list", ""),
        action: "list",
        description: format!("list or watch objects of kind {}", r.kind),
        params: LIST.to_vec(),
        body: None,
        responses: vec![(200, list_schema.clone())],
        watchable: true,
    };
    let delete_collection = Operation {
        method: Method::Delete,
        id: format!("delete{}Collection{scope}{}", id_group(r), r.kind),
        action: "deletecollection",
        description: format!("delete collection of {}", r.kind),
        params: [DELETE, LIST].concat(),
        body: Some(Body {
            schema: DELETE_OPTIONS.into(),
            patch: false,
        }),
        responses: vec![(200, STATUS.into())],
        watchable: false,
    };
    let read = |suffix: &str| Operation {
        method: Method::Get,
        id: id("read", suffix),
        action: "get",
        description: format!(
            "read the specified {}{}",
            r.kind,
            if suffix.is_empty() { "" } else { " status" }
        ),
        params: Vec::new(),
        body: None,
        responses: vec![(200, k.kind.clone())],
        watchable: false,
    };
    let delete = Operation {
        method: Method::Delete,
        id: id("delete", ""),
        action: "delete",
        description: format!("delete a {}", r.kind),
        params: DELETE.to_vec(),
        body: Some(Body {
            schema: DELETE_OPTIONS.into(),
            patch: false,
        }),
        responses: vec![(200, STATUS.into()), (202, STATUS.into())],
        watchable: false,
    };
    let item_params = [base_params.clone(), vec![NAME]].concat();
    let mut paths = vec![
        PathItem {
            path: collection_path.clone(),
            params: base_params,
            operations: vec![list.clone(), create, delete_collection],
            gvk,
        },
        PathItem {
            path: format!("{collection_path}/{{name}}"),
            params: item_params.clone(),
            operations: vec![
                read(""),
                write(Method::Put, "replace", "put", "", kind_body.clone()),
                write(Method::Patch, "patch", "patch", "", patch_body.clone()),
                delete,
            ],
            gvk,
        },
    ];
    if r.has_status() {
        paths.push(PathItem {
            path: format!("{collection_path}/{{name}}/status"),
            params: item_params,
            operations: vec![
                read("Status"),
                write(Method::Put, "replace", "put", "Status", kind_body),
                write(Method::Patch, "patch", "patch", "Status", patch_body),
            ],
            gvk,
        });
    }
    if r.namespaced {
        paths.push(PathItem {
            path: format!("{}/{}", prefix(r), r.plural),
            params: vec![PRETTY],
            operations: vec![Operation {
                id: format!("list{}{}ForAllNamespaces", id_group(r), r.kind),
                ..list
            }],
            gvk,
        });
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::schemas::definitions;

    fn paths_of(kind: &str) -> Vec<PathItem> {
        let defs = definitions();
        let k = defs.kinds.iter().find(|k| k.resource.kind == kind).unwrap();
        resource_paths(k)
    }

    #[test]
    fn namespaced_resource_paths_and_ids() {
        let paths = paths_of("Deployment");
        let names: Vec<_> = paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "/apis/apps/v1/namespaces/{namespace}/deployments",
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
                "/apis/apps/v1/deployments",
            ]
        );
        let ids: Vec<_> = paths
            .iter()
            .flat_map(|p| p.operations.iter().map(|o| o.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                "listAppsV1NamespacedDeployment",
                "createAppsV1NamespacedDeployment",
                "deleteAppsV1CollectionNamespacedDeployment",
                "readAppsV1NamespacedDeployment",
                "replaceAppsV1NamespacedDeployment",
                "patchAppsV1NamespacedDeployment",
                "deleteAppsV1NamespacedDeployment",
                "readAppsV1NamespacedDeploymentStatus",
                "replaceAppsV1NamespacedDeploymentStatus",
                "patchAppsV1NamespacedDeploymentStatus",
                "listAppsV1DeploymentForAllNamespaces",
            ]
        );
        let patch = &paths[1].operations[2];
        assert_eq!(patch.method, Method::Patch);
        assert!(patch.params.iter().any(|p| p.name == "fieldValidation"));
    }

    #[test]
    fn cluster_scoped_and_create_only_resources() {
        let paths = paths_of("Node");
        assert_eq!(paths[0].path, "/api/v1/nodes");
        assert_eq!(paths[1].operations[0].id, "readCoreV1Node");
        let paths = paths_of("SelfSubjectAccessReview");
        assert_eq!(paths.len(), 1);
        assert_eq!(
            paths[0].path,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        );
        assert_eq!(
            paths[0].operations[0].id,
            "createAuthorizationV1SelfSubjectAccessReview"
        );
    }
}
