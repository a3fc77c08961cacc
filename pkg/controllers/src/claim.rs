//! Upstream's controller reference manager: an owner claims the objects its selector selects.
//! It adopts matching orphans (adds itself as controller), releases objects it controls that
//! no longer match (removes itself), and leaves objects another controller owns alone. An
//! owner being deleted adopts nothing. The writes are JSON patches guarded by the object's
//! resourceVersion, so a concurrent change fails the patch instead of being overwritten.

use std::sync::Arc;

use cairn_api::labels::Selector;
use cairn_client::{Api, Object, Patch};
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;

use crate::error::Result;
use crate::meta;

/// Claims among `candidates` (objects in the owner's namespace) for `owner` with
/// `controller_ref`; returns the objects the owner controls afterwards.
pub async fn claim<K>(
    api: &Api<K>,
    owner: &ObjectMeta,
    controller_ref: &OwnerReference,
    selector: Option<&Selector>,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>>
where
    K: Object + Metadata<Ty = ObjectMeta>,
{
    let mut claimed = Vec::new();
    for candidate in candidates {
        let m = candidate.metadata();
        let matches = meta::selects(selector, meta::labels(m));
        match meta::controller_of(m) {
            Some(r) if r.uid == meta::uid(owner) => {
                if matches || meta::is_deleting(owner) {
                    claimed.push(candidate);
                } else if !meta::is_deleting(m) {
                    release(api, m, meta::uid(owner)).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches
                    && !meta::is_deleting(owner)
                    && !meta::is_deleting(m)
                    && let Some(adopted) = adopt(api, m, controller_ref).await?
                {
                    claimed.push(Arc::new(adopted));
                }
            }
        }
    }
    Ok(claimed)
}

async fn adopt<K: Object + Metadata<Ty = ObjectMeta>>(
    api: &Api<K>,
    m: &ObjectMeta,
    controller_ref: &OwnerReference,
) -> Result<Option<K>> {
    let mut refs = m.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != controller_ref.uid);
    refs.push(controller_ref.clone());
    let name = meta::name(m);
    tracing::info!(namespace = meta::namespace(m), name, owner = %controller_ref.name, "adopting");
    guarded_set_owners(api, m, refs).await
}

async fn release<K: Object + Metadata<Ty = ObjectMeta>>(
    api: &Api<K>,
    m: &ObjectMeta,
    owner_uid: &str,
) -> Result<()> {
    let mut refs = m.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    tracing::info!(
        namespace = meta::namespace(m),
        name = meta::name(m),
        "releasing"
    );
    guarded_set_owners(api, m, refs).await.map(|_| ())
}

/// A JSON patch setting the owner references to `refs` if the object (same uid) still has
/// the ones `m` shows.
pub fn owners_patch(m: &ObjectMeta, refs: &[OwnerReference]) -> Patch {
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": meta::uid(m)})];
    match &m.owner_references {
        Some(current) => {
            ops.push(json!({"op": "test", "path": "/metadata/ownerReferences", "value": current}))
        }
        None => ops.push(json!({"op": "add", "path": "/metadata/ownerReferences", "value": []})),
    }
    if refs.is_empty() {
        ops.push(json!({"op": "remove", "path": "/metadata/ownerReferences"}));
    } else {
        ops.push(json!({"op": "replace", "path": "/metadata/ownerReferences", "value": refs}));
    }
    Patch::Json(serde_json::Value::Array(ops))
}

/// Sets the owner references if the object still has the ones `m` shows; `None` when it is
/// gone.
async fn guarded_set_owners<K: Object + Metadata<Ty = ObjectMeta>>(
    api: &Api<K>,
    m: &ObjectMeta,
    refs: Vec<OwnerReference>,
) -> Result<Option<K>> {
    let patch = owners_patch(m, &refs);
    match api.patch(meta::name(m), &patch).await {
        Ok(object) => Ok(Some(object)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
