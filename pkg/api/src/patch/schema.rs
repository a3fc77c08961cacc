//! The strategic-merge-patch schema of the served built-in kinds: which lists merge, and by
//! which key. Written from upstream's `patchStrategy`/`patchMergeKey` Go struct tags (k8s.io/api
//! v1.33), as tables keyed by a path of field names from the top of the object; list items add
//! no path segment (`spec.containers.ports` is each container's ports).
//!
//! A list not named here is replaced whole by a patch, as upstream replaces lists without a
//! strategy (tolerations, args, node taints, endpoint subsets, …). Maps always merge key by key.
//! The `retainKeys` strategy (pod volumes, deployment strategy) needs no entry: the server
//! applies a patch's `$retainKeys` directive wherever it appears.

use crate::Resource;

/// How a list field merges with the list a patch gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListStrategy {
    /// Items are objects; a patch item merges into the item with the same value of this key,
    /// or is added.
    MergeByKey(&'static str),
    /// Items are primitives merged as a set (`finalizers`).
    MergeSet,
}

use ListStrategy::{MergeByKey, MergeSet};

type Table = &'static [(&'static str, ListStrategy)];

/// Every kind: ObjectMeta's lists and the conditions of a status.
const COMMON: Table = &[
    ("metadata.finalizers", MergeSet),
    ("metadata.ownerReferences", MergeByKey("uid")),
    ("status.conditions", MergeByKey("type")),
];

/// A Pod, and a pod template (whose `metadata` and `spec` are a Pod's).
const POD: Table = &[
    ("spec.volumes", MergeByKey("name")),
    ("spec.containers", MergeByKey("name")),
    ("spec.containers.ports", MergeByKey("containerPort")),
    ("spec.containers.env", MergeByKey("name")),
    ("spec.containers.volumeMounts", MergeByKey("mountPath")),
    ("spec.containers.volumeDevices", MergeByKey("devicePath")),
    ("spec.initContainers", MergeByKey("name")),
    ("spec.initContainers.ports", MergeByKey("containerPort")),
    ("spec.initContainers.env", MergeByKey("name")),
    ("spec.initContainers.volumeMounts", MergeByKey("mountPath")),
    (
        "spec.initContainers.volumeDevices",
        MergeByKey("devicePath"),
    ),
    ("spec.ephemeralContainers", MergeByKey("name")),
    (
        "spec.ephemeralContainers.ports",
        MergeByKey("containerPort"),
    ),
    ("spec.ephemeralContainers.env", MergeByKey("name")),
    (
        "spec.ephemeralContainers.volumeMounts",
        MergeByKey("mountPath"),
    ),
    (
        "spec.ephemeralContainers.volumeDevices",
        MergeByKey("devicePath"),
    ),
    ("spec.imagePullSecrets", MergeByKey("name")),
    ("spec.hostAliases", MergeByKey("ip")),
    ("spec.topologySpreadConstraints", MergeByKey("topologyKey")),
    ("spec.resourceClaims", MergeByKey("name")),
    ("spec.schedulingGates", MergeByKey("name")),
    ("status.podIPs", MergeByKey("ip")),
    ("status.hostIPs", MergeByKey("ip")),
    ("status.resourceClaimStatuses", MergeByKey("name")),
];

/// Kind-specific lists outside pods, by group and kind.
const KINDS: &[(&str, &str, Table)] = &[
    ("", "Pod", POD),
    ("", "Service", &[("spec.ports", MergeByKey("port"))]),
    (
        "",
        "Node",
        &[
            ("spec.podCIDRs", MergeSet),
            ("status.addresses", MergeByKey("type")),
        ],
    ),
    ("", "ServiceAccount", &[("secrets", MergeByKey("name"))]),
    (
        "batch",
        "CronJob",
        &[
            ("spec.jobTemplate.metadata.finalizers", MergeSet),
            (
                "spec.jobTemplate.metadata.ownerReferences",
                MergeByKey("uid"),
            ),
        ],
    ),
];

/// Where each kind with a pod template holds it; below it the [`POD`] table applies.
const POD_TEMPLATES: &[(&str, &str, &str)] = &[
    ("apps", "Deployment", "spec.template"),
    ("apps", "ReplicaSet", "spec.template"),
    ("apps", "StatefulSet", "spec.template"),
    ("apps", "DaemonSet", "spec.template"),
    ("batch", "Job", "spec.template"),
    ("batch", "CronJob", "spec.jobTemplate.spec.template"),
];

/// The patch schema of one kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    own: Table,
    pod_template: Option<&'static str>,
}

impl Schema {
    /// The schema of `resource`'s objects; kinds without lists of their own get the common one.
    pub(crate) fn of(resource: &Resource) -> Schema {
        let matches = |group: &str, kind: &str| group == resource.group && kind == resource.kind;
        Schema {
            own: KINDS
                .iter()
                .find(|(g, k, _)| matches(g, k))
                .map_or(&[], |(_, _, table)| *table),
            pod_template: POD_TEMPLATES
                .iter()
                .find(|(g, k, _)| matches(g, k))
                .map(|(_, _, at)| *at),
        }
    }

    /// Every list that merges, with its path from the top of the object.
    pub(crate) fn lists(&self) -> Vec<(String, ListStrategy)> {
        let mut out: Vec<(String, ListStrategy)> = self
            .own
            .iter()
            .chain(COMMON)
            .map(|(p, s)| (p.to_string(), *s))
            .collect();
        if let Some(at) = self.pod_template {
            out.extend(
                POD.iter()
                    .chain(COMMON)
                    .map(|(p, s)| (format!("{at}.{p}"), *s)),
            );
        }
        out
    }

    /// How the list at `path` (field names joined by `.`) merges; `None` replaces it.
    pub(crate) fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        let in_template = self
            .pod_template
            .and_then(|at| path.strip_prefix(at))
            .and_then(|rest| rest.strip_prefix('.'));
        lookup(self.own, path)
            .or_else(|| lookup(COMMON, path))
            .or_else(|| in_template.and_then(|p| lookup(POD, p).or_else(|| lookup(COMMON, p))))
    }
}

fn lookup(table: Table, path: &str) -> Option<ListStrategy> {
    table
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, strategy)| *strategy)
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
}
