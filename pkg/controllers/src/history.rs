//! Template history as ControllerRevisions, as upstream's `controller/history` keeps it for
//! DaemonSets and StatefulSets: each template an owner has had is one revision named
//! `<owner>-<hash>`, labelled like the template plus `controller-revision-hash: <hash>`,
//! carrying the owner's annotations (so `kubectl rollout history` shows change causes) and,
//! as data, the strategic merge patch that puts that template back
//! (`{"spec": {"template": {…, "$patch": "replace"}}}`, which `kubectl rollout undo` sends).
//! The current template's revision always has the highest number: going back to an older
//! template renumbers its revision instead of writing a copy. Revisions beyond the owner's
//! `revisionHistoryLimit` that no pod runs are deleted, oldest first.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_client::{Api, Client, DeleteParams, Object, Patch, Store};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::{Metadata, NamespaceResourceScope};
use serde_json::{Value, json};

use crate::daemonset::REVISION_HASH;
use crate::error::Result;
use crate::meta;

/// The ControllerRevisions of DaemonSets and StatefulSets.
#[derive(Clone)]
pub struct History {
    client: Client,
    revisions: Store<ControllerRevision>,
}

/// The revision data that restores `template`.
pub fn patch_of(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(map) = t.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The name of `owner`'s revision of hash `hash`.
pub fn name_of(owner: &ObjectMeta, hash: &str) -> String {
    format!("{}-{hash}", meta::name(owner))
}

impl History {
    /// History over the revisions cached in `revisions`, written through `client`.
    pub fn new(client: Client, revisions: Store<ControllerRevision>) -> Self {
        History { client, revisions }
    }

    /// The revisions `owner` controls, oldest first.
    pub fn owned(&self, owner: &ObjectMeta) -> Vec<Arc<ControllerRevision>> {
        let ns = meta::namespace(owner);
        let mut owned: Vec<_> = self
            .revisions
            .list()
            .into_iter()
            .filter(|r| {
                meta::namespace(&r.metadata) == ns && meta::is_controlled_by(&r.metadata, owner)
            })
            .collect();
        owned.sort_by_key(|r| r.revision);
        owned
    }

    /// Makes `template` (of hash `hash`, hashed with collision count `collisions`) the newest
    /// revision of `owner`, a `K`. When another template already has that name, raises the
    /// owner's `status.collisionCount` instead (its next pass hashes again) and returns false.
    pub async fn record<K>(
        &self,
        owner: &ObjectMeta,
        template: &PodTemplateSpec,
        hash: &str,
        collisions: Option<i32>,
    ) -> Result<bool>
    where
        K: Object + Metadata<Ty = ObjectMeta, Scope = NamespaceResourceScope>,
    {
        if !self.write::<K>(owner, template, hash).await? {
            let count = collisions.unwrap_or(0) + 1;
            let patch = Patch::Merge(json!({"status": {"collisionCount": count}}));
            Api::<K>::namespaced(self.client.clone(), meta::namespace(owner))
                .patch_status(meta::name(owner), &patch)
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Writes the revision of `template`, or renumbers it as the newest; false when another
    /// template already has its name.
    async fn write<K: k8s_openapi::Resource>(
        &self,
        owner: &ObjectMeta,
        template: &PodTemplateSpec,
        hash: &str,
    ) -> Result<bool> {
        let api =
            Api::<ControllerRevision>::namespaced(self.client.clone(), meta::namespace(owner));
        let name = name_of(owner, hash);
        let data = patch_of(template);
        let owned = self.owned(owner);
        let newest = owned.last().map_or(0, |r| r.revision);
        let existing = match owned.iter().find(|r| meta::name(&r.metadata) == name) {
            Some(r) => (**r).clone(),
            None => {
                let mut labels = template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                labels.insert(REVISION_HASH.into(), hash.into());
                let revision = ControllerRevision {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: owner.namespace.clone(),
                        labels: Some(labels),
                        annotations: owner.annotations.clone(),
                        owner_references: Some(vec![meta::controller_ref::<K>(owner)]),
                        ..Default::default()
                    },
                    data: Some(RawExtension(data.clone())),
                    revision: newest + 1,
                };
                match api.create(&revision).await {
                    Ok(_) => return Ok(true),
                    // Written by an earlier pass the cache has not seen yet, or someone else's.
                    Err(e) if e.is_already_exists() => api.get(&name).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let ours = meta::is_controlled_by(&existing.metadata, owner);
        if !ours || existing.data.as_ref().map(|d| &d.0) != Some(&data) {
            return Ok(false);
        }
        if existing.revision >= newest {
            return Ok(true);
        }
        // Back to an older template: its revision becomes the newest.
        let patch = Patch::Merge(json!({"revision": newest + 1}));
        api.patch(&name, &patch).await?;
        Ok(true)
    }

    /// Deletes `owner`'s oldest revisions beyond `limit`, sparing `current` and those named in
    /// `in_use` (revisions some pod still runs).
    pub async fn prune(
        &self,
        owner: &ObjectMeta,
        limit: i32,
        current: &str,
        in_use: &HashSet<String>,
    ) -> Result<()> {
        let api =
            Api::<ControllerRevision>::namespaced(self.client.clone(), meta::namespace(owner));
        let old: Vec<_> = self
            .owned(owner)
            .into_iter()
            .filter(|r| {
                let name = meta::name(&r.metadata);
                name != current && !in_use.contains(name) && !meta::is_deleting(&r.metadata)
            })
            .collect();
        let excess = old
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        for r in &old[..excess] {
            match api
                .delete(meta::name(&r.metadata), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_replaces_the_whole_template() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
        }))
        .unwrap();
        let data = patch_of(&template);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(data["spec"]["template"]["metadata"]["labels"]["app"], "web");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox:1"
        );
    }
}
