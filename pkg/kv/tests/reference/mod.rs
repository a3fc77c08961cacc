//! A reference model of etcd v3's key-value semantics, kept in memory and written from etcd's
//! documentation and server (`api_guarantees.md`, `api.md`, `server/etcdserver/txn`,
//! `server/etcdserver/api/v3rpc/key.go`, `server/storage/mvcc`), not from cairn's code, so that a
//! test can hold cairn's store to it.
//!
//! The model keeps the whole key space at every revision (`states[r]`), which is wasteful and
//! obviously right: a read at revision `r` is a lookup, a write that changes anything appends one
//! state. It covers what a single member decides: revisions, per-key versions, leases' keys,
//! history with compaction, transactions (nested included) and the request checks etcd's gRPC
//! layer makes before proposing. What it does not cover: time (lease expiry), sizes and the
//! operation-count limit, and anything about replication.

use std::collections::{BTreeMap, BTreeSet};

use cairn_kv::pb::etcdserverpb as rpc;
use cairn_kv::pb::mvccpb::{Event, KeyValue, event::EventType};
use rpc::compare::{CompareResult, CompareTarget, TargetUnion};
use rpc::range_request::{SortOrder, SortTarget};
use rpc::request_op::Request;

/// `ErrGRPCCompacted` (`mvcc.ErrCompacted` as the gRPC layer words it, which is what clients
/// see and match on).
pub const ERR_COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
/// `ErrGRPCFutureRev`.
pub const ERR_FUTURE_REV: &str = "etcdserver: mvcc: required revision is a future revision";
/// `lease.ErrLeaseNotFound` as the gRPC layer words it.
pub const ERR_LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";
/// `ErrGRPCLeaseExist`.
pub const ERR_LEASE_EXISTS: &str = "etcdserver: lease already exists";
/// `ErrGRPCKeyNotFound`: `ignore_value`/`ignore_lease` on a missing key.
pub const ERR_KEY_NOT_FOUND: &str = "etcdserver: key not found";
/// `ErrGRPCDuplicateKey`: a txn branch writes one key twice.
pub const ERR_DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";
/// `ErrGRPCEmptyKey`.
pub const ERR_EMPTY_KEY: &str = "etcdserver: key is not provided";
/// `ErrGRPCValueProvided`: `ignore_value` with a value.
pub const ERR_VALUE_PROVIDED: &str = "etcdserver: value is provided";
/// `ErrGRPCLeaseProvided`: `ignore_lease` with a lease.
pub const ERR_LEASE_PROVIDED: &str = "etcdserver: lease is provided";

type State = BTreeMap<Vec<u8>, KeyValue>;

/// What the model answers to a Range: the response, plus what a comparison needs to allow for the
/// freedom etcd has when it sorts (its sort is not stable, so key-values with equal sort keys may
/// come in any order, and a limit may cut such a group anywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAnswer {
    /// The response (header revision included).
    pub resp: rpc::RangeResponse,
    /// Set when etcd sorted by something other than the key: every key-value that survived the
    /// filters, in sorted order, with values even under `keys_only`.
    pub sorted_by: Option<(SortTarget, Vec<KeyValue>)>,
    /// Whether values were cleared.
    pub keys_only: bool,
}

/// One operation's answer inside a Txn.
#[derive(Debug, Clone, PartialEq)]
pub enum OpAnswer {
    /// A Range.
    Range(RangeAnswer),
    /// A Put.
    Put(rpc::PutResponse),
    /// A DeleteRange.
    Delete(rpc::DeleteRangeResponse),
    /// A nested Txn.
    Txn(TxnAnswer),
}

/// What the model answers to a Txn.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnAnswer {
    /// The header revision (meaningful at the top level only).
    pub revision: i64,
    /// Whether the compares held.
    pub succeeded: bool,
    /// One answer per operation of the branch taken.
    pub responses: Vec<OpAnswer>,
}

/// The store as etcd defines it.
#[derive(Debug, Clone)]
pub struct Model {
    /// `states[r]` is the key space at revision `r`; `states[0]` stands for "before revision 1".
    states: Vec<State>,
    compacted: i64,
    leases: BTreeSet<i64>,
    /// The events of each revision, in the order the operations made them; `prev_kv` is the key's
    /// value at the revision before, as etcd's watch server reads it.
    events: BTreeMap<i64, Vec<Event>>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

fn kr_contains(start: &[u8], end: &[u8], key: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        end => key >= start && key < end,
    }
}

fn select(state: &State, start: &[u8], end: &[u8]) -> Vec<KeyValue> {
    state
        .values()
        .filter(|kv| kr_contains(start, end, &kv.key))
        .cloned()
        .collect()
}

fn sort_cmp(target: SortTarget, a: &KeyValue, b: &KeyValue) -> std::cmp::Ordering {
    match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    }
}

/// Whether two key-values have the same sort key under `target`.
pub fn same_sort_key(target: SortTarget, a: &KeyValue, b: &KeyValue) -> bool {
    sort_cmp(target, a, b) == std::cmp::Ordering::Equal
}

fn header(revision: i64) -> Option<rpc::ResponseHeader> {
    Some(rpc::ResponseHeader {
        revision,
        ..Default::default()
    })
}

/// A Compare against one key-value (etcd's `compareKV`).
fn compare_kv(c: &rpc::Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let target = CompareTarget::try_from(c.target).expect("compare target");
    let ord: Ordering = match target {
        CompareTarget::Value => {
            let v = match &c.target_union {
                Some(TargetUnion::Value(v)) => v.as_slice(),
                _ => &[],
            };
            kv.value.as_slice().cmp(v)
        }
        CompareTarget::Version => kv.version.cmp(&match c.target_union {
            Some(TargetUnion::Version(v)) => v,
            _ => 0,
        }),
        CompareTarget::Create => kv.create_revision.cmp(&match c.target_union {
            Some(TargetUnion::CreateRevision(v)) => v,
            _ => 0,
        }),
        CompareTarget::Mod => kv.mod_revision.cmp(&match c.target_union {
            Some(TargetUnion::ModRevision(v)) => v,
            _ => 0,
        }),
        CompareTarget::Lease => kv.lease.cmp(&match c.target_union {
            Some(TargetUnion::Lease(v)) => v,
            _ => 0,
        }),
    };
    match CompareResult::try_from(c.result).expect("compare result") {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

/// A Compare against a state (etcd's `applyCompare`): every key in the range must pass; a range
/// with no key compares as one key with zero values, except that a VALUE compare then fails.
fn compare(state: &State, c: &rpc::Compare) -> bool {
    let kvs = select(state, &c.key, &c.range_end);
    if kvs.is_empty() {
        return c.target != CompareTarget::Value as i32 && compare_kv(c, &KeyValue::default());
    }
    kvs.iter().all(|kv| compare_kv(c, kv))
}

fn compares(state: &State, cs: &[rpc::Compare]) -> bool {
    cs.iter().all(|c| compare(state, c))
}

/// The checks etcd's gRPC layer makes on each request (`v3rpc/key.go`).
fn check_range_request(r: &rpc::RangeRequest) -> Result<(), String> {
    if r.key.is_empty() {
        return Err(ERR_EMPTY_KEY.into());
    }
    Ok(())
}

fn check_put_request(p: &rpc::PutRequest) -> Result<(), String> {
    if p.key.is_empty() {
        return Err(ERR_EMPTY_KEY.into());
    }
    if p.ignore_value && !p.value.is_empty() {
        return Err(ERR_VALUE_PROVIDED.into());
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(ERR_LEASE_PROVIDED.into());
    }
    Ok(())
}

fn check_delete_request(d: &rpc::DeleteRangeRequest) -> Result<(), String> {
    if d.key.is_empty() {
        return Err(ERR_EMPTY_KEY.into());
    }
    Ok(())
}

fn check_txn_request(t: &rpc::TxnRequest) -> Result<(), String> {
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(ERR_EMPTY_KEY.into());
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range_request(r)?,
            Some(Request::RequestPut(p)) => check_put_request(p)?,
            Some(Request::RequestDeleteRange(d)) => check_delete_request(d)?,
            Some(Request::RequestTxn(t)) => check_txn_request(t)?,
            None => return Err(ERR_KEY_NOT_FOUND.into()),
        }
    }
    Ok(())
}

/// A delete's interval as etcd's interval tree holds it: a point, or `[key, range_end)`.
#[derive(Debug, Clone)]
struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn contains(&self, k: &[u8]) -> bool {
        match &self.end {
            None => k == self.start.as_slice(),
            Some(end) => k >= self.start.as_slice() && k < end.as_slice(),
        }
    }
}

/// etcd's `checkIntervals`: no key may be put twice, or put and deleted, by one branch; puts
/// of a nested txn are checked against the deletes of this level and of the nested txns before
/// it, and the two branches of one nested txn may put the same key.
fn check_intervals(ops: &[rpc::RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>), String> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(Interval {
                start: d.key.clone(),
                end: (!d.range_end.is_empty()).then(|| d.range_end.clone()),
            }),
            _ => None,
        })
        .collect();
    let hits = |dels: &[Interval], k: &[u8]| dels.iter().any(|iv| iv.contains(k));
    let mut puts = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || hits(&dels, k) {
                return Err(ERR_DUPLICATE_KEY.into());
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || hits(&dels, k) {
                return Err(ERR_DUPLICATE_KEY.into());
            }
            puts.insert(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || hits(&dels, &p.key) {
            return Err(ERR_DUPLICATE_KEY.into());
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// A write in progress: etcd's `storeTxnWrite` over the model.
struct Write<'m> {
    model: &'m Model,
    /// The revision the write started at.
    begin: i64,
    /// The key space with this write's changes so far.
    state: State,
    events: Vec<Event>,
}

impl Write<'_> {
    fn changed(&self) -> bool {
        !self.events.is_empty()
    }

    /// The revision reads inside the write see: the pending one once something changed.
    fn rev(&self) -> i64 {
        self.begin + i64::from(self.changed())
    }

    fn before(&self, key: &[u8]) -> Option<KeyValue> {
        self.model.states[self.begin as usize].get(key).cloned()
    }

    fn range(&self, r: &rpc::RangeRequest) -> Result<RangeAnswer, String> {
        self.model.range_in(r, self.rev(), &self.state)
    }

    fn put(&mut self, p: &rpc::PutRequest) -> Result<rpc::PutResponse, String> {
        let prev = self.state.get(&p.key).cloned();
        if (p.ignore_value || p.ignore_lease) && prev.is_none() {
            return Err(ERR_KEY_NOT_FOUND.into());
        }
        let rev = self.begin + 1;
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |k| k.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |k| k.version + 1),
            value: if p.ignore_value {
                prev.as_ref().expect("checked").value.clone()
            } else {
                p.value.clone()
            },
            lease: if p.ignore_lease {
                prev.as_ref().expect("checked").lease
            } else {
                p.lease
            },
        };
        self.state.insert(p.key.clone(), kv.clone());
        let before = self.before(&p.key);
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: before,
        });
        Ok(rpc::PutResponse {
            header: header(rev),
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete(&mut self, start: &[u8], end: &[u8]) -> Vec<KeyValue> {
        let doomed = select(&self.state, start, end);
        let rev = self.begin + 1;
        for kv in &doomed {
            self.state.remove(&kv.key);
            let tomb = KeyValue {
                key: kv.key.clone(),
                mod_revision: rev,
                ..Default::default()
            };
            let before = self.before(&kv.key);
            self.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(tomb),
                prev_kv: before,
            });
        }
        doomed
    }

    fn delete_range(&mut self, d: &rpc::DeleteRangeRequest) -> rpc::DeleteRangeResponse {
        let doomed = self.delete(&d.key, &d.range_end);
        rpc::DeleteRangeResponse {
            header: header(self.rev()),
            deleted: doomed.len() as i64,
            prev_kvs: if d.prev_kv { doomed } else { Vec::new() },
        }
    }

    /// etcd's `checkTxn`: along the branches the compares chose (all compares, nested ones
    /// included, read the state before the txn), ranges must be readable and puts must have their
    /// key (for `ignore_*`) and lease.
    fn check_txn(&self, t: &rpc::TxnRequest) -> Result<(), String> {
        let before = &self.model.states[self.begin as usize];
        let ops = if compares(before, &t.compare) {
            &t.success
        } else {
            &t.failure
        };
        for op in ops {
            match &op.request {
                Some(Request::RequestRange(r)) => {
                    if r.revision != 0 && r.revision > self.begin {
                        return Err(ERR_FUTURE_REV.into());
                    }
                    if r.revision != 0 && r.revision < self.model.compacted {
                        return Err(ERR_COMPACTED.into());
                    }
                }
                Some(Request::RequestPut(p)) => {
                    if (p.ignore_value || p.ignore_lease) && !before.contains_key(&p.key) {
                        return Err(ERR_KEY_NOT_FOUND.into());
                    }
                    if p.lease != 0 && !self.model.leases.contains(&p.lease) {
                        return Err(ERR_LEASE_NOT_FOUND.into());
                    }
                }
                Some(Request::RequestTxn(t)) => self.check_txn(t)?,
                Some(Request::RequestDeleteRange(_)) | None => {}
            }
        }
        Ok(())
    }

    fn execute_txn(&mut self, t: &rpc::TxnRequest) -> Result<TxnAnswer, String> {
        let succeeded = compares(&self.model.states[self.begin as usize], &t.compare);
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::new();
        for op in ops {
            responses.push(match &op.request {
                Some(Request::RequestRange(r)) => OpAnswer::Range(self.range(r)?),
                Some(Request::RequestPut(p)) => OpAnswer::Put(self.put(p)?),
                Some(Request::RequestDeleteRange(d)) => OpAnswer::Delete(self.delete_range(d)),
                Some(Request::RequestTxn(t)) => OpAnswer::Txn(self.execute_txn(t)?),
                None => unreachable!("refused by the request checks"),
            });
        }
        Ok(TxnAnswer {
            revision: 0,
            succeeded,
            responses,
        })
    }
}

impl Model {
    /// An empty store: revision 1, nothing compacted.
    pub fn new() -> Self {
        Model {
            states: vec![State::new(), State::new()],
            compacted: 0,
            leases: BTreeSet::new(),
            events: BTreeMap::new(),
        }
    }

    /// The store revision.
    pub fn revision(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    /// The compacted revision (0 if never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compacted
    }

    /// Every revision's events, in order.
    pub fn events(&self) -> &BTreeMap<i64, Vec<Event>> {
        &self.events
    }

    /// The granted leases.
    pub fn leases(&self) -> &BTreeSet<i64> {
        &self.leases
    }

    fn begin(&self) -> Write<'_> {
        Write {
            model: self,
            begin: self.revision(),
            state: self.states.last().expect("revision 1").clone(),
            events: Vec::new(),
        }
    }

    /// Ends a write: if it changed anything, its state becomes the next revision.
    fn commit(&mut self, state: State, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.states.push(state);
        let rev = self.revision();
        self.events.insert(rev, events);
    }

    /// A Range at `current` (the revision of the view reading), whose key space is `now`; older
    /// revisions come from history (etcd's `executeRange` over `rangeKeys`).
    fn range_in(
        &self,
        r: &rpc::RangeRequest,
        current: i64,
        now: &State,
    ) -> Result<RangeAnswer, String> {
        if r.revision > current {
            return Err(ERR_FUTURE_REV.into());
        }
        let at = if r.revision <= 0 { current } else { r.revision };
        if at < self.compacted {
            return Err(ERR_COMPACTED.into());
        }
        let state = if at == current {
            now
        } else {
            &self.states[at as usize]
        };
        let all = select(state, &r.key, &r.range_end);
        let count = all.len() as i64;
        let order = SortOrder::try_from(r.sort_order).expect("sort order");
        let target = SortTarget::try_from(r.sort_target).expect("sort target");
        let default_ordering = |order| {
            order == SortOrder::None || (target == SortTarget::Key && order == SortOrder::Ascend)
        };
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        // The store fetches limit+1 key-values in key order unless it must sort or filter. Note
        // that "no order" with a non-key target counts as default ordering here and is sorted
        // (ascending) only afterwards, among the key-values fetched.
        let fetch = if !default_ordering(order) || filtered || r.limit <= 0 {
            usize::MAX
        } else {
            r.limit as usize + 1
        };
        let mut kvs: Vec<KeyValue> = if r.count_only {
            Vec::new()
        } else {
            all.into_iter().take(fetch).collect()
        };
        kvs.retain(|kv| {
            (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
                && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
                && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
                && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
        });
        let order = if target != SortTarget::Key && order == SortOrder::None {
            SortOrder::Ascend
        } else {
            order
        };
        let mut sorted_by = None;
        if !default_ordering(order) {
            if target == SortTarget::Key {
                kvs.reverse();
            } else {
                kvs.sort_by(|a, b| {
                    let o = sort_cmp(target, a, b);
                    if order == SortOrder::Descend {
                        o.reverse()
                    } else {
                        o
                    }
                });
                sorted_by = Some((target, kvs.clone()));
            }
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() > r.limit as usize {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        if r.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeAnswer {
            resp: rpc::RangeResponse {
                header: header(current),
                kvs,
                more,
                count,
            },
            sorted_by,
            keys_only: r.keys_only,
        })
    }

    /// Range.
    pub fn range(&self, r: &rpc::RangeRequest) -> Result<RangeAnswer, String> {
        check_range_request(r)?;
        self.range_in(r, self.revision(), self.states.last().expect("revision 1"))
    }

    /// Put.
    pub fn put(&mut self, p: &rpc::PutRequest) -> Result<rpc::PutResponse, String> {
        check_put_request(p)?;
        // The applier looks the lease up before the write looks at the key.
        if p.lease != 0 && !self.leases.contains(&p.lease) {
            return Err(ERR_LEASE_NOT_FOUND.into());
        }
        let mut w = self.begin();
        let resp = w.put(p)?;
        let (state, events) = (w.state, w.events);
        self.commit(state, events);
        Ok(resp)
    }

    /// DeleteRange.
    pub fn delete_range(
        &mut self,
        d: &rpc::DeleteRangeRequest,
    ) -> Result<rpc::DeleteRangeResponse, String> {
        check_delete_request(d)?;
        let mut w = self.begin();
        let resp = w.delete_range(d);
        let (state, events) = (w.state, w.events);
        self.commit(state, events);
        Ok(resp)
    }

    /// Txn: one revision for all its changes, none if it changes nothing.
    pub fn txn(&mut self, t: &rpc::TxnRequest) -> Result<TxnAnswer, String> {
        check_txn_request(t)?;
        check_intervals(&t.success)?;
        check_intervals(&t.failure)?;
        let mut w = self.begin();
        w.check_txn(t)?;
        let mut answer = w.execute_txn(t)?;
        answer.revision = w.rev();
        let (state, events) = (w.state, w.events);
        self.commit(state, events);
        Ok(answer)
    }

    /// Compact: history below `revision` goes; reads there fail from now on.
    pub fn compact(&mut self, revision: i64) -> Result<rpc::CompactionResponse, String> {
        if revision <= self.compacted {
            return Err(ERR_COMPACTED.into());
        }
        if revision > self.revision() {
            return Err(ERR_FUTURE_REV.into());
        }
        self.compacted = revision;
        Ok(rpc::CompactionResponse {
            header: header(self.revision()),
        })
    }

    /// LeaseGrant with a chosen ID; it does not change the revision.
    pub fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<rpc::LeaseGrantResponse, String> {
        if !self.leases.insert(id) {
            return Err(ERR_LEASE_EXISTS.into());
        }
        Ok(rpc::LeaseGrantResponse {
            header: header(self.revision()),
            id,
            ttl,
            error: String::new(),
        })
    }

    /// LeaseRevoke: the lease's keys are deleted, in key order, in one revision.
    pub fn lease_revoke(&mut self, id: i64) -> Result<rpc::LeaseRevokeResponse, String> {
        if !self.leases.remove(&id) {
            return Err(ERR_LEASE_NOT_FOUND.into());
        }
        let mut w = self.begin();
        let attached: Vec<Vec<u8>> = w
            .state
            .values()
            .filter(|kv| kv.lease == id)
            .map(|kv| kv.key.clone())
            .collect();
        for key in attached {
            w.delete(&key, &[]);
        }
        let (state, events) = (w.state, w.events);
        self.commit(state, events);
        Ok(rpc::LeaseRevokeResponse {
            header: header(self.revision()),
        })
    }
}
