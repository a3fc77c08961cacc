//! etcd's multi-version data model over the redb tables: one store revision per write, per-key
//! create/mod revision, version and lease, reads at past revisions, transactions, leases'
//! attached keys, and compaction.
//!
//! Everything here is deterministic: every member applies the same log entries to the same state
//! and gets the same result. Validation that etcd does before proposing (sizes, operation counts,
//! duplicate keys) lives in [`validate`]; refusals that depend on the state (a missing lease, a
//! compacted revision) are decided here, before anything is changed.

use std::collections::BTreeSet;

use prost::Message;
use redb::{ReadableTable, Table, WriteTransaction};

use crate::error::{Error, Result};
use crate::history::{self, History, KeyIndex, Version};
use crate::keyrange::KeyRange;
use crate::pb::etcdserverpb::{
    self as rpc, compare::CompareResult, compare::CompareTarget, compare::TargetUnion,
    range_request::SortOrder, range_request::SortTarget, request_op::Request as Op,
    response_op::Response as OpResponse,
};
use crate::pb::mvccpb::{self, KeyValue, event::EventType};
use crate::tables::{LEASE_KEYS, LEASES, REVISIONS};

/// The events of one revision, as a watch delivers them (always with `prev_kv`; watchers that did
/// not ask for it have it stripped).
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionEvents {
    /// The revision.
    pub revision: i64,
    /// Its events in operation order.
    pub events: Vec<mvccpb::Event>,
}

/// A lease came or went while applying; the leader's lease clock follows these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// Granted with a TTL in seconds.
    Granted {
        /// The lease.
        id: i64,
        /// The TTL in seconds.
        ttl: i64,
    },
    /// Revoked or expired.
    Revoked {
        /// The lease.
        id: i64,
    },
    /// The whole state was replaced (a snapshot was installed): reload every lease.
    Reload,
}

fn is_tombstone(kv: &KeyValue) -> bool {
    kv.version == 0
}

/// Read access to the versions, from a read or a write transaction.
pub(crate) trait Versions {
    /// See [`History::get_at`].
    fn get_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>>;
    /// See [`History::scan_at`].
    fn scan_at(
        &self,
        range: &KeyRange,
        rev: i64,
        visit: &mut dyn FnMut(KeyValue) -> Result<bool>,
    ) -> Result<()>;
    /// See [`History::count_at`].
    fn count_at(&self, range: &KeyRange, rev: i64) -> usize;
}

impl<T: ReadableTable<(u64, u32), &'static [u8]>> Versions for History<'_, T> {
    fn get_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>> {
        History::get_at(self, key, rev)
    }
    fn scan_at(
        &self,
        range: &KeyRange,
        rev: i64,
        visit: &mut dyn FnMut(KeyValue) -> Result<bool>,
    ) -> Result<()> {
        History::scan_at(self, range, rev, visit)
    }
    fn count_at(&self, range: &KeyRange, rev: i64) -> usize {
        History::count_at(self, range, rev)
    }
}

/// The newest version of one key, if it is live.
fn get_latest(hist: &impl Versions, key: &[u8]) -> Result<Option<KeyValue>> {
    Ok(hist.get_at(key, i64::MAX)?.filter(|kv| !is_tombstone(kv)))
}

/// Serves a Range request at the state the tables hold (`current` is their revision).
pub(crate) fn range(
    hist: &impl Versions,
    current: i64,
    compacted: i64,
    req: &rpc::RangeRequest,
) -> Result<rpc::RangeResponse> {
    let at = if req.revision <= 0 {
        current
    } else {
        req.revision
    };
    if at > current {
        return Err(Error::FutureRevision);
    }
    if at < compacted {
        return Err(Error::Compacted {
            compact_revision: compacted,
        });
    }
    let kr = KeyRange::new(&req.key, &req.range_end);
    let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    let needs_sort = !matches!(
        (order, target),
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key)
    );
    let filtered = req.min_mod_revision > 0
        || req.max_mod_revision > 0
        || req.min_create_revision > 0
        || req.max_create_revision > 0;
    let keep = |kv: &KeyValue| {
        (req.min_mod_revision <= 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_mod_revision <= 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_create_revision <= 0 || kv.create_revision >= req.min_create_revision)
            && (req.max_create_revision <= 0 || kv.create_revision <= req.max_create_revision)
    };
    // The count comes from the index; without sorting or filtering, reading stops at limit+1.
    let cap = if req.limit > 0 && !needs_sort && !filtered {
        req.limit as usize + 1
    } else {
        usize::MAX
    };
    let count = hist.count_at(&kr, at) as i64;
    let mut kvs = Vec::new();
    if !req.count_only {
        hist.scan_at(&kr, at, &mut |kv: KeyValue| {
            if keep(&kv) {
                kvs.push(kv);
            }
            Ok(kvs.len() < cap)
        })?;
    }
    if needs_sort {
        let key = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, Vec::new()),
                SortTarget::Create => (kv.create_revision, Vec::new()),
                SortTarget::Mod => (kv.mod_revision, Vec::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        kvs.sort_by_key(key);
        if order == SortOrder::Descend {
            kvs.reverse();
        }
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    let mut more = false;
    if req.limit > 0 && kvs.len() > req.limit as usize {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    Ok(rpc::RangeResponse {
        header: Some(rpc::ResponseHeader {
            revision: current,
            ..Default::default()
        }),
        kvs,
        more,
        count,
    })
}

/// The events of revisions `from..=to`, read from history, in revision order.
pub(crate) fn history_events<T: ReadableTable<(u64, u32), &'static [u8]>>(
    hist: &History<'_, T>,
    from: i64,
    to: i64,
    max_revisions: usize,
) -> Result<Vec<RevisionEvents>> {
    let mut out = Vec::new();
    for (revision, kvs) in hist.revisions(from, to, max_revisions)? {
        let mut events = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let prev = hist
                .get_at(&kv.key, revision - 1)?
                .filter(|p| !is_tombstone(p));
            events.push(event(kv, prev));
        }
        out.push(RevisionEvents { revision, events });
    }
    Ok(out)
}

fn event(kv: KeyValue, prev: Option<KeyValue>) -> mvccpb::Event {
    let kind = if is_tombstone(&kv) {
        EventType::Delete
    } else {
        EventType::Put
    };
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(kv),
        prev_kv: prev,
    }
}

/// A hash of the key space as of `rev`: equal on members that agree, whatever their garbage.
pub(crate) fn hash_at(hist: &impl Versions, rev: i64) -> Result<u32> {
    // FNV-1a over every visible key-value's encoding, folded to 32 bits like etcd's crc32 field.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut visit = |kv: KeyValue| {
        for b in kv.encode_to_vec() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(true)
    };
    let all = KeyRange::new(b"\0", b"\0");
    hist.scan_at(&all, rev, &mut visit)?;
    Ok((h ^ (h >> 32)) as u32)
}

/// Checks a put the way etcd does before proposing it.
pub fn validate_put(req: &rpc::PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

/// Checks a transaction the way etcd does before proposing it: at most `max_ops` operations per
/// list, valid operations, and no key written by two operations of one branch.
pub fn validate_txn(req: &rpc::TxnRequest, max_ops: usize) -> Result<()> {
    // Like etcd: every operation's own validity first, then duplicates.
    validate_ops(req, max_ops)?;
    branch_writes(&req.success)?;
    branch_writes(&req.failure)?;
    Ok(())
}

fn validate_ops(req: &rpc::TxnRequest, max_ops: usize) -> Result<()> {
    if req.compare.len() > max_ops || req.success.len() > max_ops || req.failure.len() > max_ops {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(Op::RequestPut(p)) => validate_put(p)?,
            Some(Op::RequestDeleteRange(rpc::DeleteRangeRequest { key, .. }))
            | Some(Op::RequestRange(rpc::RangeRequest { key, .. }))
                if key.is_empty() =>
            {
                return Err(Error::EmptyKey);
            }
            Some(Op::RequestTxn(t)) => validate_ops(t, max_ops)?,
            _ => {}
        }
    }
    Ok(())
}

/// What one operation may write: keys put and ranges deleted.
#[derive(Default)]
struct Writes {
    puts: BTreeSet<Vec<u8>>,
    dels: Vec<KeyRange>,
}

impl Writes {
    fn conflicts(&self, other: &Writes) -> bool {
        self.puts
            .iter()
            .any(|k| other.puts.contains(k) || other.dels.iter().any(|d| d.contains(k)))
            || other
                .puts
                .iter()
                .any(|k| self.dels.iter().any(|d| d.contains(k)))
    }
}

/// Everything a branch may write, refusing two operations that write the same key. A nested
/// transaction counts as one operation writing what either of its branches writes (its branches
/// exclude each other, so they may write the same key).
fn branch_writes(ops: &[rpc::RequestOp]) -> Result<Writes> {
    let mut per_op: Vec<Writes> = Vec::with_capacity(ops.len());
    for op in ops {
        let w = match &op.request {
            Some(Op::RequestPut(p)) => Writes {
                puts: BTreeSet::from([p.key.clone()]),
                dels: Vec::new(),
            },
            Some(Op::RequestDeleteRange(d)) => Writes {
                puts: BTreeSet::new(),
                dels: vec![KeyRange::new(&d.key, &d.range_end)],
            },
            Some(Op::RequestTxn(t)) => {
                let mut w = branch_writes(&t.success)?;
                let f = branch_writes(&t.failure)?;
                w.puts.extend(f.puts);
                w.dels.extend(f.dels);
                w
            }
            Some(Op::RequestRange(_)) | None => Writes::default(),
        };
        if per_op.iter().any(|earlier| earlier.conflicts(&w)) {
            return Err(Error::DuplicateKey);
        }
        per_op.push(w);
    }
    let mut all = Writes::default();
    for w in per_op {
        all.puts.extend(w.puts);
        all.dels.extend(w.dels);
    }
    Ok(all)
}

/// Which branch a transaction takes, and, in order, which branch each nested transaction of that
/// branch takes. etcd decides every compare against the state before the transaction runs.
struct Path {
    succeeded: bool,
    nested: Vec<Path>,
}

/// The state machine's tables inside one write transaction, with the revision counters.
pub(crate) struct Writer<'t> {
    revs: Table<'t, (u64, u32), &'static [u8]>,
    index: &'t mut KeyIndex,
    leases: Table<'t, i64, i64>,
    lease_keys: Table<'t, (i64, &'static [u8]), ()>,
    /// The store revision.
    pub revision: i64,
    /// The compacted revision.
    pub compact_revision: i64,
    events: Vec<mvccpb::Event>,
    /// Revisions completed in this transaction, for the watch hub once it commits.
    pub published: Vec<RevisionEvents>,
    /// Leases granted or revoked in this transaction.
    pub lease_changes: Vec<LeaseChange>,
}

impl<'t> Writer<'t> {
    /// The state machine's tables in `txn`, with the key index, which must be held exclusively
    /// until `txn` commits (readers see the index and the tables change together).
    pub(crate) fn open(
        txn: &'t WriteTransaction,
        index: &'t mut KeyIndex,
        revision: i64,
        compact_revision: i64,
    ) -> Result<Self> {
        Ok(Writer {
            revs: txn.open_table(REVISIONS)?,
            index,
            leases: txn.open_table(LEASES)?,
            lease_keys: txn.open_table(LEASE_KEYS)?,
            revision,
            compact_revision,
            events: Vec::new(),
            published: Vec::new(),
            lease_changes: Vec::new(),
        })
    }

    fn hist(&self) -> History<'_, Table<'t, (u64, u32), &'static [u8]>> {
        History {
            index: self.index,
            revs: &self.revs,
        }
    }

    fn header(&self) -> Option<rpc::ResponseHeader> {
        Some(rpc::ResponseHeader {
            revision: self.revision,
            ..Default::default()
        })
    }

    /// The revision the write being applied gets, if it changes anything.
    fn pending(&self) -> i64 {
        self.revision + 1
    }

    /// Ends the write being applied: if it changed anything, its revision becomes the store's.
    fn finish(&mut self) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        self.revision += 1;
        let events = std::mem::take(&mut self.events);
        self.published.push(RevisionEvents {
            revision: self.revision,
            events,
        });
        Ok(())
    }

    /// Throws away the effects of a write that failed half-way (only possible on storage errors).
    fn forget_pending(&mut self) {
        self.events.clear();
    }

    pub(crate) fn put(&mut self, req: &rpc::PutRequest) -> Result<rpc::PutResponse> {
        // A lone put reports a missing lease before a missing key; inside a transaction etcd
        // checks the key first.
        self.check_lease(req)?;
        self.check_put(req)?;
        let res = self.put_inner(req);
        self.finish_or_forget(res)
    }

    pub(crate) fn delete_range(
        &mut self,
        req: &rpc::DeleteRangeRequest,
    ) -> Result<rpc::DeleteRangeResponse> {
        let res = self.delete_inner(req);
        self.finish_or_forget(res)
    }

    pub(crate) fn txn(&mut self, req: &rpc::TxnRequest) -> Result<rpc::TxnResponse> {
        let res = self.txn_inner(req);
        self.finish_or_forget(res)
    }

    fn finish_or_forget<T: HeaderMut>(&mut self, res: Result<T>) -> Result<T> {
        match res {
            Ok(mut r) => {
                self.finish()?;
                r.set_header(self.header());
                Ok(r)
            }
            Err(e) => {
                self.forget_pending();
                Err(e)
            }
        }
    }

    fn check_put(&self, req: &rpc::PutRequest) -> Result<()> {
        validate_put(req)?;
        if (req.ignore_value || req.ignore_lease) && get_latest(&self.hist(), &req.key)?.is_none() {
            return Err(Error::KeyNotFound);
        }
        self.check_lease(req)
    }

    fn check_lease(&self, req: &rpc::PutRequest) -> Result<()> {
        if !req.ignore_lease && req.lease != 0 && self.leases.get(req.lease)?.is_none() {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    /// Writes a put already checked.
    fn put_inner(&mut self, req: &rpc::PutRequest) -> Result<rpc::PutResponse> {
        let prev = get_latest(&self.hist(), &req.key)?;
        let rev = self.pending();
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: match (&prev, req.ignore_value) {
                (Some(p), true) => p.value.clone(),
                _ => req.value.clone(),
            },
            lease: match (&prev, req.ignore_lease) {
                (Some(p), true) => p.lease,
                _ => req.lease,
            },
        };
        self.record(kv, prev.clone())?;
        Ok(rpc::PutResponse {
            header: None,
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    fn delete_inner(&mut self, req: &rpc::DeleteRangeRequest) -> Result<rpc::DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let mut doomed = Vec::new();
        self.hist().scan_at(
            &KeyRange::new(&req.key, &req.range_end),
            i64::MAX,
            &mut |kv| {
                doomed.push(kv);
                Ok(true)
            },
        )?;
        let deleted = doomed.len() as i64;
        for prev in &doomed {
            self.tombstone(prev)?;
        }
        Ok(rpc::DeleteRangeResponse {
            header: None,
            deleted,
            prev_kvs: if req.prev_kv { doomed } else { Vec::new() },
        })
    }

    fn tombstone(&mut self, prev: &KeyValue) -> Result<()> {
        let kv = KeyValue {
            key: prev.key.clone(),
            mod_revision: self.pending(),
            ..Default::default()
        };
        self.record(kv, Some(prev.clone()))
    }

    /// Writes a new version (or a tombstone) of a key at the pending revision.
    fn record(&mut self, kv: KeyValue, prev: Option<KeyValue>) -> Result<()> {
        let key = kv.key.clone();
        let at = Version {
            rev: kv.mod_revision as u64,
            sub: self.events.len() as u32,
            tombstone: is_tombstone(&kv),
        };
        self.revs
            .insert((at.rev, at.sub), kv.encode_to_vec().as_slice())?;
        self.index.push(&key, at);
        let old_lease = prev.as_ref().map_or(0, |p| p.lease);
        if old_lease != 0 && old_lease != kv.lease {
            self.lease_keys.remove((old_lease, key.as_slice()))?;
        }
        if kv.lease != 0 && old_lease != kv.lease {
            self.lease_keys.insert((kv.lease, key.as_slice()), ())?;
        }
        self.events.push(event(kv, prev));
        Ok(())
    }

    fn compare(&self, c: &rpc::Compare) -> Result<bool> {
        let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
        let result = CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal);
        let mut kvs = Vec::new();
        self.hist()
            .scan_at(&KeyRange::new(&c.key, &c.range_end), i64::MAX, &mut |kv| {
                kvs.push(kv);
                Ok(true)
            })?;
        if kvs.is_empty() {
            if target == CompareTarget::Value {
                return Ok(false);
            }
            kvs.push(KeyValue::default());
        }
        Ok(kvs
            .iter()
            .all(|kv| compare_one(kv, target, result, c.target_union.as_ref())))
    }

    /// Decides every compare of a transaction (and of the nested ones on its path) against the
    /// state before it runs.
    fn plan(&self, req: &rpc::TxnRequest) -> Result<Path> {
        let mut succeeded = true;
        for c in &req.compare {
            succeeded &= self.compare(c)?;
        }
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = Vec::new();
        for op in ops {
            if let Some(Op::RequestTxn(t)) = &op.request {
                nested.push(self.plan(t)?);
            }
        }
        Ok(Path { succeeded, nested })
    }

    /// Refusals that must come before any change, along the path the transaction will take.
    fn check_path(&self, req: &rpc::TxnRequest, path: &Path) -> Result<()> {
        let ops = if path.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = path.nested.iter();
        for op in ops {
            match &op.request {
                Some(Op::RequestPut(p)) => self.check_put(p)?,
                Some(Op::RequestRange(r)) => {
                    if r.revision > self.revision {
                        return Err(Error::FutureRevision);
                    }
                    if r.revision > 0 && r.revision < self.compact_revision {
                        return Err(Error::Compacted {
                            compact_revision: self.compact_revision,
                        });
                    }
                }
                Some(Op::RequestTxn(t)) => {
                    let p = nested
                        .next()
                        .ok_or_else(|| Error::Storage("txn path mismatch".into()))?;
                    self.check_path(t, p)?;
                }
                Some(Op::RequestDeleteRange(_)) | None => {}
            }
        }
        Ok(())
    }

    fn txn_inner(&mut self, req: &rpc::TxnRequest) -> Result<rpc::TxnResponse> {
        let path = self.plan(req)?;
        self.check_path(req, &path)?;
        // Past the checks nothing may be refused: a failure now would leave half a transaction
        // written, so it is a storage error, which aborts the whole apply instead.
        self.run_path(req, &path).map_err(|e| match e {
            Error::Storage(_) => e,
            other => Error::Storage(format!(
                "transaction refused after it began writing: {other}"
            )),
        })
    }

    fn run_path(&mut self, req: &rpc::TxnRequest, path: &Path) -> Result<rpc::TxnResponse> {
        let ops = if path.succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut nested = path.nested.iter();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match &op.request {
                Some(Op::RequestRange(r)) => {
                    // Once the transaction has written, its own writes are the newest state.
                    let current = if self.events.is_empty() {
                        self.revision
                    } else {
                        self.pending()
                    };
                    OpResponse::ResponseRange(range(
                        &self.hist(),
                        current,
                        self.compact_revision,
                        r,
                    )?)
                }
                Some(Op::RequestPut(p)) => OpResponse::ResponsePut(self.put_inner(p)?),
                Some(Op::RequestDeleteRange(d)) => {
                    OpResponse::ResponseDeleteRange(self.delete_inner(d)?)
                }
                Some(Op::RequestTxn(t)) => {
                    let p = nested
                        .next()
                        .ok_or_else(|| Error::Storage("txn path mismatch".into()))?;
                    OpResponse::ResponseTxn(self.run_path(t, p)?)
                }
                None => continue,
            };
            responses.push(rpc::ResponseOp {
                response: Some(response),
            });
        }
        Ok(rpc::TxnResponse {
            header: None,
            succeeded: path.succeeded,
            responses,
        })
    }

    pub(crate) fn compact(
        &mut self,
        req: &rpc::CompactionRequest,
    ) -> Result<rpc::CompactionResponse> {
        if req.revision <= self.compact_revision {
            return Err(Error::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        if req.revision > self.revision {
            return Err(Error::FutureRevision);
        }
        self.compact_revision = req.revision;
        Ok(rpc::CompactionResponse {
            header: self.header(),
        })
    }

    pub(crate) fn lease_grant(
        &mut self,
        req: &rpc::LeaseGrantRequest,
    ) -> Result<rpc::LeaseGrantResponse> {
        if self.leases.get(req.id)?.is_some() {
            return Err(Error::LeaseExists);
        }
        self.leases.insert(req.id, req.ttl)?;
        self.lease_changes.push(LeaseChange::Granted {
            id: req.id,
            ttl: req.ttl,
        });
        Ok(rpc::LeaseGrantResponse {
            header: self.header(),
            id: req.id,
            ttl: req.ttl,
            error: String::new(),
        })
    }

    pub(crate) fn lease_revoke(
        &mut self,
        req: &rpc::LeaseRevokeRequest,
    ) -> Result<rpc::LeaseRevokeResponse> {
        if self.leases.get(req.id)?.is_none() {
            return Err(Error::LeaseNotFound);
        }
        let mut keys = Vec::new();
        for entry in self
            .lease_keys
            .range((req.id, &[][..])..(req.id.saturating_add(1), &[][..]))?
        {
            let (k, _) = entry?;
            keys.push(k.value().1.to_vec());
        }
        for key in keys {
            if let Some(prev) = get_latest(&self.hist(), &key)? {
                self.tombstone(&prev)?;
            }
            self.lease_keys.remove((req.id, key.as_slice()))?;
        }
        self.leases.remove(req.id)?;
        self.finish()?;
        self.lease_changes.push(LeaseChange::Revoked { id: req.id });
        Ok(rpc::LeaseRevokeResponse {
            header: self.header(),
        })
    }

    /// Physically removes what compaction made unreachable, for at most `max_revisions` revisions
    /// starting at `cursor` (every revision below `cursor` is done). Returns the new cursor.
    ///
    /// For each key changed in those revisions, every version older than its newest version at or
    /// below the compacted revision goes, and that newest one too if it is a tombstone below the
    /// compacted revision. The compacted revision's own changes are kept, so a watch may start
    /// there.
    pub(crate) fn compact_step(&mut self, cursor: i64, max_revisions: usize) -> Result<i64> {
        let target = self.compact_revision;
        if cursor >= target {
            return Ok(cursor);
        }
        let mut seen = 0usize;
        let mut last = None;
        let mut keys = BTreeSet::new();
        for row in self
            .revs
            .range((cursor.max(0) as u64, 0u32)..(target as u64, 0u32))?
        {
            let (k, v) = row?;
            let rev = k.value().0;
            if last != Some(rev) {
                if seen == max_revisions {
                    break;
                }
                seen += 1;
                last = Some(rev);
            }
            keys.insert(history::decode(v.value())?.key);
        }
        let next = match last {
            Some(last) if seen == max_revisions => last as i64 + 1,
            _ => target,
        };
        for key in keys {
            let versions = self.index.up_to(&key, target as u64);
            let Some(&newest) = versions.last() else {
                continue;
            };
            let doomed: Vec<Version> = versions
                .into_iter()
                .filter(|v| {
                    v.rev < newest.rev || (*v == newest && v.tombstone && (v.rev as i64) < target)
                })
                .collect();
            for v in &doomed {
                self.revs.remove((v.rev, v.sub))?;
            }
            self.index.forget(&key, &doomed);
        }
        Ok(next)
    }
}

fn compare_one(
    kv: &KeyValue,
    target: CompareTarget,
    result: CompareResult,
    against: Option<&TargetUnion>,
) -> bool {
    use std::cmp::Ordering;
    let ord = match (target, against) {
        (CompareTarget::Value, Some(TargetUnion::Value(v))) => {
            kv.value.as_slice().cmp(v.as_slice())
        }
        (CompareTarget::Version, Some(TargetUnion::Version(v))) => kv.version.cmp(v),
        (CompareTarget::Create, Some(TargetUnion::CreateRevision(v))) => kv.create_revision.cmp(v),
        (CompareTarget::Mod, Some(TargetUnion::ModRevision(v))) => kv.mod_revision.cmp(v),
        (CompareTarget::Lease, Some(TargetUnion::Lease(v))) => kv.lease.cmp(v),
        // A compare whose target and value disagree compares against the zero value, as etcd does.
        (CompareTarget::Value, _) => kv.value.as_slice().cmp(&[][..]),
        (CompareTarget::Version, _) => kv.version.cmp(&0),
        (CompareTarget::Create, _) => kv.create_revision.cmp(&0),
        (CompareTarget::Mod, _) => kv.mod_revision.cmp(&0),
        (CompareTarget::Lease, _) => kv.lease.cmp(&0),
    };
    match result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
        CompareResult::NotEqual => ord != Ordering::Equal,
    }
}

/// Responses whose header the writer fills once the revision is known.
trait HeaderMut {
    fn set_header(&mut self, h: Option<rpc::ResponseHeader>);
}

macro_rules! header_mut {
    ($($t:ty),*) => {$(
        impl HeaderMut for $t {
            fn set_header(&mut self, h: Option<rpc::ResponseHeader>) {
                self.header = h;
            }
        }
    )*};
}
header_mut!(rpc::PutResponse, rpc::DeleteRangeResponse, rpc::TxnResponse);
