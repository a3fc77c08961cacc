//! Writes a controller has made and its cache has not shown yet.
//!
//! Caches lag behind writes: a ReplicaSet that created three pods and is reconciled again
//! before the pods' events arrive would create three more. As upstream's controllers do, a
//! controller records what it created and deleted per owner, and holds back further creates
//! and deletes for that owner until the cache shows them (or a timeout passes, in case an
//! event was missed). Unlike upstream's counters, the pending writes are checked against the
//! cache itself, so no handler has to count events.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cairn_client::{ObjectKey, Store};
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

use crate::meta;

/// How long pending writes hold an owner back at most.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Write {
    /// Created or updated: the cache must hold it at this revision or later.
    Written { key: ObjectKey, revision: u64 },
    /// Deleted: the cache must no longer hold it as a live object with this uid.
    Deleted { key: ObjectKey, uid: String },
}

#[derive(Debug)]
struct Pending {
    writes: Vec<Write>,
    since: Instant,
}

/// Pending writes per owner.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<ObjectKey, Pending>>,
}

impl Expectations {
    fn record(&self, owner: &ObjectKey, write: Write) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pending.entry(owner.clone()).or_insert_with(|| Pending {
            writes: Vec::new(),
            since: Instant::now(),
        });
        entry.since = Instant::now();
        entry.writes.push(write);
    }

    /// `owner` created or updated `object` (as the server answered).
    pub fn written(&self, owner: &ObjectKey, object: &ObjectMeta) {
        self.record(
            owner,
            Write::Written {
                key: meta::key(object),
                revision: meta::revision(object),
            },
        );
    }

    /// `owner` deleted `object`.
    pub fn deleted(&self, owner: &ObjectKey, object: &ObjectMeta) {
        self.record(
            owner,
            Write::Deleted {
                key: meta::key(object),
                uid: meta::uid(object).to_string(),
            },
        );
    }

    /// Forgets `owner` (it is gone).
    pub fn forget(&self, owner: &ObjectKey) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(owner);
    }

    /// Whether `store` shows every write of `owner` (or they are too old to wait for).
    pub fn satisfied<K: Metadata<Ty = ObjectMeta>>(
        &self,
        owner: &ObjectKey,
        store: &Store<K>,
    ) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = pending.get_mut(owner) else {
            return true;
        };
        if entry.since.elapsed() > TIMEOUT {
            tracing::debug!(?owner, "expectations timed out");
            pending.remove(owner);
            return true;
        }
        entry.writes.retain(|write| match write {
            Write::Written { key, revision } => store
                .get(key.namespace.as_deref(), &key.name)
                .is_none_or(|o| meta::revision(o.metadata()) < *revision),
            Write::Deleted { key, uid } => store
                .get(key.namespace.as_deref(), &key.name)
                .is_some_and(|o| {
                    meta::uid(o.metadata()) == uid && !meta::is_deleting(o.metadata())
                }),
        });
        if entry.writes.is_empty() {
            pending.remove(owner);
            true
        } else {
            false
        }
    }
}
