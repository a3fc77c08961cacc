//! Objects in the store, as upstream keeps them in etcd: JSON under
//! `/registry/<resource>/<namespace>/<name>` (cluster-scoped: `/registry/<resource>/<name>`),
//! written with compare-and-swap on the key's revisions. An object's `resourceVersion` is its
//! key's `mod_revision`; it is not stored in the value but set when the object is read.

use cairn_api::Resource;
use cairn_kv::Store;
use cairn_kv::pb::etcdserverpb::{
    self as rpc, Compare, RequestOp, TxnRequest,
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op, response_op,
};
use cairn_kv::pb::mvccpb::KeyValue;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::object;

/// The key prefix of a resource's objects: all of them, or one namespace's.
pub fn prefix(resource: &Resource, namespace: Option<&str>) -> Vec<u8> {
    let mut p = format!("/registry/{}/", storage_name(resource));
    if let Some(ns) = namespace.filter(|_| resource.namespaced) {
        p.push_str(ns);
        p.push('/');
    }
    p.into_bytes()
}

/// Where resources live in the store: under their plural. The served plurals do not collide
/// except events, which upstream stores once (as core `v1` Events) and serves as both `v1`
/// and `events.k8s.io/v1`, converting on the way in and out.
fn storage_name(resource: &Resource) -> &'static str {
    resource.plural
}

/// Whether objects of `resource` are stored in another version's form.
fn is_converted(resource: &Resource) -> bool {
    resource.group == "events.k8s.io"
}

/// The key of one object.
pub fn key(resource: &Resource, namespace: Option<&str>, name: &str) -> Vec<u8> {
    let mut k = prefix(resource, namespace);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Decodes a stored value as an object of `resource` and sets its `resourceVersion`.
pub fn decode(resource: &Resource, kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!(
            "stored object at {} is not JSON: {e}",
            String::from_utf8_lossy(&kv.key)
        ))
    })?;
    if is_converted(resource) {
        obj = cairn_api::events::event_v1_to_events_v1(&obj);
    }
    object::set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// Encodes an object of `resource` for storage, without its `resourceVersion`.
fn encode(resource: &Resource, obj: &Value) -> Vec<u8> {
    let mut obj = if is_converted(resource) {
        cairn_api::events::events_v1_to_event_v1(obj)
    } else {
        obj.clone()
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).unwrap_or_default()
}

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    /// The objects.
    pub items: Vec<Value>,
    /// The revision the list was read at.
    pub revision: i64,
    /// The key to continue from, when there is more.
    pub next_key: Option<Vec<u8>>,
    /// How many objects remain after this page.
    pub remaining: i64,
}

/// How a write that compares revisions turned out.
#[derive(Debug)]
pub enum Written {
    /// The write happened; the object as stored.
    Done(Value),
    /// The comparison failed; the current object, if there is one.
    Refused(Option<Value>),
}

/// The objects of every resource, over the store.
#[derive(Clone)]
pub struct Storage {
    store: Store,
}

fn compare_mod(key: &[u8], revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Mod as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::ModRevision(revision)),
    }
}

fn get_op(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(rpc::RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    }
}

fn put_op(key: &[u8], value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(rpc::PutRequest {
            key: key.to_vec(),
            value,
            ..Default::default()
        })),
    }
}

fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            rpc::DeleteRangeRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )),
    }
}

/// The object a failed comparison's `else` branch read.
fn current(resource: &Resource, resp: &rpc::TxnResponse) -> ApiResult<Option<Value>> {
    for r in &resp.responses {
        if let Some(response_op::Response::ResponseRange(range)) = &r.response {
            return range.kvs.first().map(|kv| decode(resource, kv)).transpose();
        }
    }
    Ok(None)
}

impl Storage {
    /// Objects over `store`.
    pub fn new(store: Store) -> Storage {
        Storage { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads one object, linearizably.
    pub async fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<Value>> {
        let resp = self
            .store
            .range(rpc::RangeRequest {
                key: key(resource, namespace, name),
                ..Default::default()
            })
            .await?;
        resp.kvs.first().map(|kv| decode(resource, kv)).transpose()
    }

    /// Reads a page of objects: from `start` (or the beginning), at `revision` (0: the latest,
    /// linearizably), at most `limit` (0: all).
    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        start: Option<Vec<u8>>,
        revision: i64,
        limit: i64,
    ) -> ApiResult<Page> {
        let p = prefix(resource, namespace);
        let end = cairn_kv::prefix_end(&p);
        let resp = self
            .store
            .range(rpc::RangeRequest {
                key: start.unwrap_or(p),
                range_end: end,
                revision,
                limit,
                ..Default::default()
            })
            .await?;
        let at = if revision > 0 {
            revision
        } else {
            resp.header.as_ref().map_or(0, |h| h.revision)
        };
        let items = resp
            .kvs
            .iter()
            .map(|kv| decode(resource, kv))
            .collect::<ApiResult<Vec<_>>>()?;
        let remaining = resp.count - items.len() as i64;
        let next_key = match (resp.more, resp.kvs.last()) {
            (true, Some(last)) => {
                let mut k = last.key.clone();
                k.push(0);
                Some(k)
            }
            _ => None,
        };
        Ok(Page {
            items,
            revision: at,
            next_key,
            remaining,
        })
    }

    /// Stores a new object; refused with the existing one if the name is taken.
    pub async fn create(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> ApiResult<Written> {
        self.swap(resource, namespace, name, 0, Some(obj)).await
    }

    /// Replaces an object if its `mod_revision` is still `revision`.
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        revision: i64,
        obj: &Value,
    ) -> ApiResult<Written> {
        self.swap(resource, namespace, name, revision, Some(obj))
            .await
    }

    /// Deletes an object if its `mod_revision` is still `revision`; `Done` carries the object
    /// as it was, with the revision of its deletion.
    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        revision: i64,
    ) -> ApiResult<Written> {
        self.swap(resource, namespace, name, revision, None).await
    }

    /// The one write: if the key's `mod_revision` is `revision` (0: absent), put `obj` or
    /// delete; otherwise read what is there.
    async fn swap(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        revision: i64,
        obj: Option<&Value>,
    ) -> ApiResult<Written> {
        let k = key(resource, namespace, name);
        let (success, before) = match obj {
            Some(o) => (put_op(&k, encode(resource, o)), o.clone()),
            None => (delete_op(&k), Value::Null),
        };
        let resp = self
            .store
            .txn(TxnRequest {
                compare: vec![compare_mod(&k, revision)],
                success: vec![get_op(&k), success],
                failure: vec![get_op(&k)],
            })
            .await?;
        if !resp.succeeded {
            return Ok(Written::Refused(current(resource, &resp)?));
        }
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        let mut done = match obj {
            Some(_) => before,
            None => current(resource, &resp)?.unwrap_or(Value::Null),
        };
        object::set_resource_version(&mut done, rev);
        Ok(Written::Done(done))
    }
}
