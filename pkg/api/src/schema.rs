//! The merge schema of the served built-in kinds: what a strategic merge patch and server-side
//! apply need to know beyond JSON. For each list, how a strategic merge patch merges it (by a
//! merge key, or as a set) and how server-side apply treats it (`x-kubernetes-list-type`
//! `atomic`, `set`, or `map` with its `x-kubernetes-list-map-keys`); and which objects apply
//! replaces whole (`x-kubernetes-map-type: atomic`, `+structType=atomic`).
//!
//! Written by hand from upstream's Go markers (k8s.io/api: `patchStrategy`/`patchMergeKey`,
//! `+listType`/`+listMapKey`, `+structType`/`+mapType`) as tables keyed by a path of field names;
//! list items add no segment (`spec.containers.ports` is each container's ports). Tables are
//! [`Part`]s that mount shared parts (a pod spec, a container, object metadata) below a prefix,
//! so a pod template or a CronJob's job template reuse them.
//!
//! What is not named keeps the defaults: a strategic merge patch replaces a list without a
//! strategy (tolerations, args, taints); server-side apply treats a list without a list type as
//! atomic and merges every object field by field. The `retainKeys` strategy (pod volumes,
//! deployment strategy) needs no entry: the server applies a patch's `$retainKeys` directive
//! wherever it appears. Free-form maps (labels, data) and structs are not told apart: where
//! upstream's field sets differ for them (a map of objects), cairn treats the map as a struct.

use crate::Resource;

/// How a list field merges with the list a strategic merge patch gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListStrategy {
    /// Items are objects; a patch item merges into the item with the same value of this key,
    /// or is added.
    MergeByKey(&'static str),
    /// Items are primitives merged as a set (`finalizers`).
    MergeSet,
}

use ListStrategy::{MergeByKey, MergeSet};

/// A key field of a server-side apply `map` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapKey {
    /// The field's name.
    pub(crate) name: &'static str,
    /// The value upstream's schema defaults it to when an item omits it (`protocol: TCP`).
    pub(crate) default: Option<&'static str>,
}

/// How server-side apply treats a list (`x-kubernetes-list-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ListType {
    /// Replaced whole and owned as one field; the default.
    #[default]
    Atomic,
    /// Primitives, each owned on its own.
    Set,
    /// Objects identified by the values of these key fields, each merged and owned on its own.
    Map(&'static [MapKey]),
}

/// What server-side apply needs to know of the field at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shape {
    /// The list type, when the field is a list.
    pub(crate) list: ListType,
    /// Whether the value is replaced whole; for a `set` or `map` list, each item is.
    pub(crate) atomic: bool,
}

/// One field the schema has something to say about.
#[derive(Debug, Clone, Copy)]
struct Field {
    path: &'static str,
    smp: Option<ListStrategy>,
    ssa: ListType,
    atomic: bool,
}

const fn key(name: &'static str) -> MapKey {
    MapKey {
        name,
        default: None,
    }
}

/// `protocol`, which upstream defaults to `TCP` (it is part of port lists' keys).
const PROTOCOL: MapKey = MapKey {
    name: "protocol",
    default: Some("TCP"),
};

/// A list merged by keys in both: the patch merge key is the first list-map key.
const fn keyed(path: &'static str, keys: &'static [MapKey]) -> Field {
    Field {
        path,
        smp: Some(MergeByKey(keys[0].name)),
        ssa: ListType::Map(keys),
        atomic: false,
    }
}

/// A set of primitives in both.
const fn set(path: &'static str) -> Field {
    Field {
        path,
        smp: Some(MergeSet),
        ssa: ListType::Set,
        atomic: false,
    }
}

/// A list-map for server-side apply that strategic merge patch replaces.
const fn map_only(path: &'static str, keys: &'static [MapKey]) -> Field {
    Field {
        smp: None,
        ..keyed(path, keys)
    }
}

/// A set for server-side apply that strategic merge patch replaces.
const fn set_only(path: &'static str) -> Field {
    Field {
        smp: None,
        ..set(path)
    }
}

/// A list strategic merge patch merges by `key` but whose list type is `atomic`.
const fn patch_only(path: &'static str, key: &'static str) -> Field {
    Field {
        path,
        smp: Some(MergeByKey(key)),
        ssa: ListType::Atomic,
        atomic: false,
    }
}

/// An object (struct or map) that server-side apply replaces whole.
const fn atomic(path: &'static str) -> Field {
    Field {
        path,
        smp: None,
        ssa: ListType::Atomic,
        atomic: true,
    }
}

impl Field {
    /// The same list, with items replaced whole (an `ownerReferences` entry).
    const fn atomic_items(self) -> Field {
        Field {
            atomic: true,
            ..self
        }
    }
}

/// A table of fields, with the tables that apply below some of its paths.
#[derive(Debug)]
struct Part {
    fields: &'static [Field],
    /// (prefix, part): `part`'s paths continue `prefix` (empty: at the same level).
    mounts: &'static [(&'static str, &'static Part)],
}

impl Part {
    fn find(&'static self, path: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.path == path).or_else(|| {
            self.mounts
                .iter()
                .find_map(|(prefix, part)| below(path, prefix).and_then(|p| part.find(p)))
        })
    }

    /// Every field, with its path from this part's top.
    fn each(&'static self, prefix: &str, out: &mut Vec<(String, &'static Field)>) {
        for field in self.fields {
            out.push((join(prefix, field.path), field));
        }
        for (at, part) in self.mounts {
            part.each(&join(prefix, at), out);
        }
    }
}

/// `path` relative to `prefix`, when it is below it.
fn below<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    path.strip_prefix(prefix)?.strip_prefix('.')
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}.{path}"),
    }
}

const NO_PART: Part = Part {
    fields: &[],
    mounts: &[],
};

/// ObjectMeta, wherever an object or a template has one.
const OBJECT_META: Part = Part {
    fields: &[
        set("metadata.finalizers"),
        keyed("metadata.ownerReferences", &[key("uid")]).atomic_items(),
    ],
    mounts: &[],
};

/// What every kind shares: its metadata and its status's conditions.
const ROOT: Part = Part {
    fields: &[keyed("status.conditions", &[key("type")])],
    mounts: &[("", &OBJECT_META)],
};

/// A container, an init container or an ephemeral container.
const CONTAINER: Part = Part {
    fields: &[
        keyed("ports", &[key("containerPort"), PROTOCOL]),
        keyed("env", &[key("name")]),
        atomic("env.valueFrom.configMapKeyRef"),
        atomic("env.valueFrom.secretKeyRef"),
        atomic("env.valueFrom.fieldRef"),
        atomic("env.valueFrom.resourceFieldRef"),
        keyed("volumeMounts", &[key("mountPath")]),
        keyed("volumeDevices", &[key("devicePath")]),
        map_only("resources.claims", &[key("name")]),
    ],
    mounts: &[],
};

/// A PodSpec.
const POD_SPEC: Part = Part {
    fields: &[
        keyed("volumes", &[key("name")]),
        atomic("volumes.cephfs.secretRef"),
        atomic("volumes.cinder.secretRef"),
        atomic("volumes.csi.nodePublishSecretRef"),
        atomic("volumes.flexVolume.secretRef"),
        atomic("volumes.iscsi.secretRef"),
        atomic("volumes.rbd.secretRef"),
        atomic("volumes.scaleIO.secretRef"),
        atomic("volumes.storageos.secretRef"),
        atomic("volumes.ephemeral.volumeClaimTemplate.spec.selector"),
        atomic("volumes.ephemeral.volumeClaimTemplate.spec.dataSource"),
        keyed("containers", &[key("name")]),
        keyed("initContainers", &[key("name")]),
        keyed("ephemeralContainers", &[key("name")]),
        keyed("imagePullSecrets", &[key("name")]).atomic_items(),
        keyed("hostAliases", &[key("ip")]),
        keyed(
            "topologySpreadConstraints",
            &[key("topologyKey"), key("whenUnsatisfiable")],
        ),
        atomic("topologySpreadConstraints.labelSelector"),
        keyed("resourceClaims", &[key("name")]),
        keyed("schedulingGates", &[key("name")]),
        atomic("nodeSelector"),
        atomic("affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
    ],
    mounts: &[
        ("containers", &CONTAINER),
        ("initContainers", &CONTAINER),
        ("ephemeralContainers", &CONTAINER),
    ],
};

/// A Pod; its status's lists are not part of templates.
const POD: Part = Part {
    fields: &[
        keyed("status.podIPs", &[key("ip")]),
        patch_only("status.hostIPs", "ip"),
        keyed("status.resourceClaimStatuses", &[key("name")]),
    ],
    mounts: &[("spec", &POD_SPEC)],
};

/// A PodTemplateSpec.
const POD_TEMPLATE: Part = Part {
    fields: &[],
    mounts: &[("", &OBJECT_META), ("spec", &POD_SPEC)],
};

/// Deployments, ReplicaSets, StatefulSets and DaemonSets: a label selector and a template.
const WORKLOAD: Part = Part {
    fields: &[atomic("spec.selector")],
    mounts: &[("spec.template", &POD_TEMPLATE)],
};

/// A JobSpec's lists, with the job's status (meaningless, and harmless, in a template).
const JOB: Part = Part {
    fields: &[
        atomic("spec.selector"),
        patch_only("status.conditions", "type"),
        set_only("status.uncountedTerminatedPods.succeeded"),
        set_only("status.uncountedTerminatedPods.failed"),
    ],
    mounts: &[("spec.template", &POD_TEMPLATE)],
};

/// A CronJob's job template.
const JOB_TEMPLATE: Part = Part {
    fields: &[],
    mounts: &[("", &OBJECT_META), ("", &JOB)],
};

/// The part of each kind with fields of its own, by group and kind.
const KINDS: &[(&str, &str, &Part)] = &[
    ("", "Pod", &POD),
    (
        "",
        "Service",
        &Part {
            fields: &[
                keyed("spec.ports", &[key("port"), PROTOCOL]),
                atomic("spec.selector"),
            ],
            mounts: &[],
        },
    ),
    (
        "",
        "Node",
        &Part {
            fields: &[
                set("spec.podCIDRs"),
                keyed("status.addresses", &[key("type")]),
            ],
            mounts: &[],
        },
    ),
    (
        "",
        "ServiceAccount",
        &Part {
            fields: &[keyed("secrets", &[key("name")]).atomic_items()],
            mounts: &[],
        },
    ),
    (
        "",
        "Event",
        &Part {
            fields: &[atomic("involvedObject"), atomic("related")],
            mounts: &[],
        },
    ),
    (
        "events.k8s.io",
        "Event",
        &Part {
            fields: &[atomic("regarding"), atomic("related")],
            mounts: &[],
        },
    ),
    ("apps", "Deployment", &WORKLOAD),
    ("apps", "ReplicaSet", &WORKLOAD),
    ("apps", "StatefulSet", &WORKLOAD),
    ("apps", "DaemonSet", &WORKLOAD),
    ("batch", "Job", &JOB),
    (
        "batch",
        "CronJob",
        &Part {
            fields: &[],
            mounts: &[("spec.jobTemplate", &JOB_TEMPLATE)],
        },
    ),
];

/// The merge schema of one kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    own: &'static Part,
}

impl Schema {
    /// The schema of `resource`'s objects; kinds without fields of their own get the common one.
    pub(crate) fn of(resource: &Resource) -> Schema {
        Schema {
            own: KINDS
                .iter()
                .find(|(g, k, _)| *g == resource.group && *k == resource.kind)
                .map_or(&NO_PART, |(_, _, part)| *part),
        }
    }

    fn field(&self, path: &str) -> Option<&'static Field> {
        self.own.find(path).or_else(|| ROOT.find(path))
    }

    /// Every list a strategic merge patch merges, with its path from the top of the object.
    pub(crate) fn lists(&self) -> Vec<(String, ListStrategy)> {
        let mut fields = Vec::new();
        self.own.each("", &mut fields);
        ROOT.each("", &mut fields);
        let mut out: Vec<(String, ListStrategy)> = Vec::new();
        for (path, field) in fields {
            if let Some(smp) = field.smp
                && !out.iter().any(|(p, _)| *p == path)
            {
                out.push((path, smp));
            }
        }
        out
    }

    /// How a strategic merge patch merges the list at `path` (field names joined by `.`);
    /// `None` replaces it.
    pub(crate) fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        self.field(path).and_then(|f| f.smp)
    }

    /// How server-side apply treats the field at `path`.
    pub(crate) fn shape(&self, path: &str) -> Shape {
        self.field(path).map_or_else(Shape::default, |f| Shape {
            list: f.ssa,
            atomic: f.atomic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn schema(group: &str, plural: &str) -> Schema {
        Schema::of(find(group, "v1", plural).unwrap())
    }

    #[test]
    fn pods_and_templates_share_the_pod_table() {
        let pod = schema("", "pods");
        assert_eq!(
            pod.list_strategy("spec.containers"),
            Some(MergeByKey("name"))
        );
        assert_eq!(
            pod.list_strategy("spec.containers.ports"),
            Some(MergeByKey("containerPort"))
        );
        assert_eq!(pod.list_strategy("spec.tolerations"), None);
        assert_eq!(
            pod.list_strategy("status.conditions"),
            Some(MergeByKey("type"))
        );
        let deploy = schema("apps", "deployments");
        assert_eq!(
            deploy.list_strategy("spec.template.spec.initContainers.env"),
            Some(MergeByKey("name"))
        );
        assert_eq!(
            deploy.list_strategy("spec.template.metadata.finalizers"),
            Some(MergeSet)
        );
        assert_eq!(deploy.list_strategy("spec.containers"), None);
        let cron = schema("batch", "cronjobs");
        assert_eq!(
            cron.list_strategy("spec.jobTemplate.spec.template.spec.volumes"),
            Some(MergeByKey("name"))
        );
        assert_eq!(
            cron.list_strategy("spec.jobTemplate.metadata.ownerReferences"),
            Some(MergeByKey("uid"))
        );
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            schema("", "services").list_strategy("spec.ports"),
            Some(MergeByKey("port"))
        );
        assert_eq!(schema("", "nodes").list_strategy("spec.taints"), None);
        assert_eq!(
            schema("", "nodes").list_strategy("spec.podCIDRs"),
            Some(MergeSet)
        );
        assert_eq!(
            schema("", "serviceaccounts").list_strategy("secrets"),
            Some(MergeByKey("name"))
        );
        assert_eq!(
            schema("", "configmaps").list_strategy("metadata.ownerReferences"),
            Some(MergeByKey("uid"))
        );
        assert_eq!(schema("", "endpoints").list_strategy("subsets"), None);
    }

    #[test]
    fn apply_list_types_differ_from_patch_keys_where_upstream_does() {
        let pod = schema("", "pods");
        let ListType::Map(ports) = pod.shape("spec.containers.ports").list else {
            panic!("ports are a map list");
        };
        assert_eq!(ports, [key("containerPort"), PROTOCOL]);
        assert_eq!(pod.list_strategy("status.hostIPs"), Some(MergeByKey("ip")));
        assert_eq!(pod.shape("status.hostIPs").list, ListType::Atomic);
        assert_eq!(pod.list_strategy("spec.containers.resources.claims"), None);
        assert!(matches!(
            pod.shape("spec.containers.resources.claims").list,
            ListType::Map(_)
        ));
        assert_eq!(pod.shape("spec.containers.args"), Shape::default());
        assert!(pod.shape("spec.nodeSelector").atomic);
        assert_eq!(pod.shape("metadata.finalizers").list, ListType::Set);
        let owners = pod.shape("metadata.ownerReferences");
        assert!(
            owners.atomic && matches!(owners.list, ListType::Map([MapKey { name: "uid", .. }]))
        );
        let job = schema("batch", "jobs");
        assert_eq!(job.shape("status.conditions").list, ListType::Atomic);
        assert!(job.shape("spec.selector").atomic);
        assert!(schema("apps", "deployments").shape("spec.selector").atomic);
        assert!(matches!(
            schema("", "namespaces").shape("status.conditions").list,
            ListType::Map(_)
        ));
    }

    #[test]
    fn patch_lists_are_listed_once() {
        let lists = schema("batch", "jobs").lists();
        let conditions: Vec<_> = lists
            .iter()
            .filter(|(p, _)| p == "status.conditions")
            .collect();
        assert_eq!(conditions.len(), 1);
        assert!(
            lists
                .iter()
                .any(|(p, _)| p == "spec.template.spec.containers.env")
        );
        assert!(!lists.iter().any(|(p, _)| p.contains("resources.claims")));
    }
}
