//! The resources cairn serves: for each, its group, version, kind, names, scope, verbs and
//! subresources, as discovery advertises them and as the API server routes requests. Group,
//! version, kind and plural come from the k8s-openapi types, so they cannot drift from the
//! objects' own `apiVersion` and `kind`.

use k8s_openapi::api::{apps, authorization, batch, coordination, core, discovery, events};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};

/// Whether a k8s-openapi scope type is namespaced.
pub trait Scope {
    /// True for namespaced resources.
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// The verbs of a stored resource.
pub const CRUD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a `status` or `scale` subresource.
pub const GET_UPDATE_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource (`pods/status`, `deployments/scale`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Its name, after the parent's name in the URL.
    pub name: &'static str,
    /// The group of the object it takes and returns.
    pub group: &'static str,
    /// The version of that object.
    pub version: &'static str,
    /// The kind of that object.
    pub kind: &'static str,
    /// What can be done with it.
    pub verbs: &'static [&'static str],
}

impl Subresource {
    /// The `status` subresource of `R`.
    pub const fn status<R: k8s_openapi::Resource>() -> Subresource {
        Subresource {
            name: "status",
            group: R::GROUP,
            version: R::VERSION,
            kind: R::KIND,
            verbs: GET_UPDATE_VERBS,
        }
    }

    /// The `scale` subresource (an autoscaling/v1 Scale).
    pub const SCALE: Subresource = Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: GET_UPDATE_VERBS,
    };
}

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// The `apiVersion` of its objects (`v1`, `apps/v1`).
    pub api_version: &'static str,
    /// The kind of its objects.
    pub kind: &'static str,
    /// The kind of its lists; empty when it cannot be listed.
    pub list_kind: &'static str,
    /// The plural name, as in URLs.
    pub plural: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names kubectl accepts (`po`, `deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// The verbs on the resource itself.
    pub verbs: &'static [&'static str],
    /// Its subresources.
    pub subresources: &'static [Subresource],
}

impl Resource {
    /// A stored, listable resource of type `R`.
    pub const fn of<R>() -> Resource
    where
        R: k8s_openapi::ListableResource,
        R::Scope: Scope,
    {
        Resource {
            group: R::GROUP,
            version: R::VERSION,
            api_version: R::API_VERSION,
            kind: R::KIND,
            list_kind: R::LIST_KIND,
            plural: R::URL_PATH_SEGMENT,
            namespaced: <R::Scope as Scope>::NAMESPACED,
            short_names: &[],
            categories: &[],
            verbs: CRUD_VERBS,
            subresources: &[],
        }
    }

    const fn short_names(mut self, names: &'static [&'static str]) -> Resource {
        self.short_names = names;
        self
    }

    const fn in_all(mut self) -> Resource {
        self.categories = &["all"];
        self
    }

    const fn subresources(mut self, subresources: &'static [Subresource]) -> Resource {
        self.subresources = subresources;
        self
    }

    /// The singular name: the kind in lower case.
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }

    /// The subresource called `name`.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether objects of this resource are kept in the store (a review is only answered).
    pub fn is_stored(&self) -> bool {
        self.verbs.contains(&"get")
    }

    /// Whether the resource has a `status` subresource, so that the main resource's writes
    /// leave `.status` alone and status writes leave everything else alone.
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The `group/version` string of URLs and discovery (`v1` for the core group).
    pub fn group_version(&self) -> &'static str {
        self.api_version
    }
}

const POD_SUBRESOURCES: &[Subresource] = &[
    Subresource::status::<core::v1::Pod>(),
    Subresource {
        name: "binding",
        group: "",
        version: "v1",
        kind: "Binding",
        verbs: &["create"],
    },
    Subresource {
        name: "eviction",
        group: "policy",
        version: "v1",
        kind: "Eviction",
        verbs: &["create"],
    },
    Subresource {
        name: "log",
        group: "",
        version: "v1",
        kind: "Pod",
        verbs: &["get"],
    },
    Subresource {
        name: "exec",
        group: "",
        version: "v1",
        kind: "PodExecOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "attach",
        group: "",
        version: "v1",
        kind: "PodAttachOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "portforward",
        group: "",
        version: "v1",
        kind: "PodPortForwardOptions",
        verbs: &["create", "get"],
    },
];

/// Every resource cairn serves, core group first, in discovery order.
pub static RESOURCES: &[Resource] = &[
    Resource::of::<core::v1::Namespace>()
        .short_names(&["ns"])
        .subresources(&[
            Subresource::status::<core::v1::Namespace>(),
            Subresource {
                name: "finalize",
                group: "",
                version: "v1",
                kind: "Namespace",
                verbs: &["update"],
            },
        ]),
    Resource::of::<core::v1::Node>()
        .short_names(&["no"])
        .subresources(&[Subresource::status::<core::v1::Node>()]),
    Resource::of::<core::v1::Pod>()
        .short_names(&["po"])
        .in_all()
        .subresources(POD_SUBRESOURCES),
    Resource::of::<core::v1::Service>()
        .short_names(&["svc"])
        .in_all()
        .subresources(&[Subresource::status::<core::v1::Service>()]),
    Resource::of::<core::v1::Endpoints>().short_names(&["ep"]),
    Resource::of::<core::v1::ConfigMap>().short_names(&["cm"]),
    Resource::of::<core::v1::Secret>(),
    Resource::of::<core::v1::ServiceAccount>().short_names(&["sa"]),
    Resource::of::<core::v1::Event>().short_names(&["ev"]),
    Resource::of::<apps::v1::Deployment>()
        .short_names(&["deploy"])
        .in_all()
        .subresources(&[
            Subresource::SCALE,
            Subresource::status::<apps::v1::Deployment>(),
        ]),
    Resource::of::<apps::v1::ReplicaSet>()
        .short_names(&["rs"])
        .in_all()
        .subresources(&[
            Subresource::SCALE,
            Subresource::status::<apps::v1::ReplicaSet>(),
        ]),
    Resource::of::<apps::v1::StatefulSet>()
        .short_names(&["sts"])
        .in_all()
        .subresources(&[
            Subresource::SCALE,
            Subresource::status::<apps::v1::StatefulSet>(),
        ]),
    Resource::of::<apps::v1::DaemonSet>()
        .short_names(&["ds"])
        .in_all()
        .subresources(&[Subresource::status::<apps::v1::DaemonSet>()]),
    Resource::of::<apps::v1::ControllerRevision>(),
    Resource::of::<batch::v1::Job>()
        .in_all()
        .subresources(&[Subresource::status::<batch::v1::Job>()]),
    Resource::of::<batch::v1::CronJob>()
        .short_names(&["cj"])
        .in_all()
        .subresources(&[Subresource::status::<batch::v1::CronJob>()]),
    Resource::of::<coordination::v1::Lease>(),
    Resource::of::<discovery::v1::EndpointSlice>(),
    Resource::of::<events::v1::Event>().short_names(&["ev"]),
    Resource {
        group: <authorization::v1::SelfSubjectAccessReview as k8s_openapi::Resource>::GROUP,
        version: <authorization::v1::SelfSubjectAccessReview as k8s_openapi::Resource>::VERSION,
        api_version:
            <authorization::v1::SelfSubjectAccessReview as k8s_openapi::Resource>::API_VERSION,
        kind: <authorization::v1::SelfSubjectAccessReview as k8s_openapi::Resource>::KIND,
        list_kind: "",
        plural:
            <authorization::v1::SelfSubjectAccessReview as k8s_openapi::Resource>::URL_PATH_SEGMENT,
        namespaced: false,
        short_names: &[],
        categories: &[],
        verbs: &["create"],
        subresources: &[],
    },
];

/// The resource `plural` in `group`/`version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource whose objects have this `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

/// The served API groups with their versions, in discovery order; the core group is `""`.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_types() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.list_kind, "PodList");
        assert!(pods.namespaced);
        assert_eq!(pods.singular(), "pod");
        let nodes = find("", "v1", "nodes").unwrap();
        assert!(!nodes.namespaced);
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.api_version, "apps/v1");
        assert_eq!(deploy.subresource("scale").unwrap().kind, "Scale");
        assert!(deploy.has_status());
        let review = find("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap();
        assert!(!review.is_stored());
    }

    #[test]
    fn every_resource_is_unique_and_groups_are_listed_once() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    (a.group, a.version, a.plural) != (b.group, b.version, b.plural),
                    "{} twice",
                    a.plural
                );
            }
        }
        let groups = groups();
        assert_eq!(groups[0], ("", vec!["v1"]));
        assert!(groups.iter().any(|(g, _)| *g == "apps"));
    }
}
