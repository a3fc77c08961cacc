//! The store handle: what the etcd API, the join endpoints and the command line use. It owns the
//! Raft node and the background tasks around it (write batching, the lease clock, compaction) and
//! turns etcd requests into log proposals or local reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use prost::Message;
use redb::ReadableDatabase;
use redb::{Database, Durability, ReadableTable};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Refusal, Result};
use crate::forward::{LeaderCall, LeaderReply};
use crate::history::{History, KeyIndex};
use crate::lease::{LeaseClock, MAX_TTL, MIN_TTL};
use crate::log_store::LogStore;
use crate::mvcc::{self, LeaseChange, Writer};
use crate::network::Peers;
use crate::pb::cairnpb::{self, write::Op, write_result::Result as Outcome};
use crate::pb::etcdserverpb as rpc;
use crate::raft_types::{Member, NodeId, Proposal, Raft};
use crate::state_machine::{Position, Shared, StateMachine, read_position};
use crate::tables::{self, LEASE_KEYS, LEASES, META, REVISIONS, meta};
use crate::watch::{self, WatchEvent, WatchHub, WatchSpec, Watcher};
use crate::{peer_service, snapshot};

/// The most writes proposed as one Raft entry.
const MAX_BATCH: usize = 1024;
/// How many batches may be in Raft at once.
const MAX_IN_FLIGHT: usize = 2;
/// redb's page cache (its default is 1 GiB; a small node has less than that in all).
const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// How long adding a voter may wait for it to catch up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Revisions physically compacted per step.
const COMPACT_STEP: usize = 1000;

type Pending = (
    cairnpb::Write,
    oneshot::Sender<Result<cairnpb::WriteResult>>,
);

/// A member of the cluster, as seen by one etcd client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its ID.
    pub id: NodeId,
    /// Its addresses.
    pub member: Member,
    /// Whether it is a learner (replicates, does not vote).
    pub is_learner: bool,
}

/// A member's view of itself, for `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    /// The leader's ID, 0 if none is known.
    pub leader: NodeId,
    /// The Raft term.
    pub raft_term: u64,
    /// The last log index.
    pub raft_index: u64,
    /// The last applied index.
    pub raft_applied_index: u64,
    /// The database file size.
    pub db_size: i64,
    /// Whether this member is a learner.
    pub is_learner: bool,
    /// The store revision.
    pub revision: i64,
}

/// The store: cheap to clone, shared by every API.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) raft: Raft,
    pub(crate) db: Arc<Database>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) peers: Peers,
    clock: Mutex<LeaseClock>,
    proposer: mpsc::Sender<Pending>,
    /// The batches that may be in Raft at once ([`MAX_IN_FLIGHT`]).
    slots: Arc<Semaphore>,
    readers: mpsc::Sender<oneshot::Sender<Result<u64>>>,
    shutdown: CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn open_database(config: &Config) -> Result<Database> {
    let path = &config.db_path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Open(format!("create {}: {e}", dir.display())))?;
    }
    let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            Error::Open(format!("database {} is in use by another process", path.display()))
        }
        other => Error::Open(format!(
            "database {} cannot be opened (corrupt or not a cairn database; it was left untouched): {other}",
            path.display()
        )),
    })?;
    tables::create_all(&db)?;
    Ok(db)
}

/// Reads this member's node ID, choosing one on first open.
fn node_id(db: &Database) -> Result<NodeId> {
    let txn = db.begin_read()?;
    if let Some(id) = tables::get_meta::<NodeId>(&txn.open_table(META)?, meta::IDENTITY)? {
        return Ok(id);
    }
    drop(txn);
    let id = loop {
        let id: u64 = rand::random();
        if id != 0 {
            break id;
        }
    };
    let txn = db.begin_write()?;
    tables::put_meta(&mut txn.open_table(META)?, meta::IDENTITY, &id)?;
    txn.commit()?;
    Ok(id)
}

fn load_leases(db: &Database) -> Result<Vec<(i64, i64)>> {
    let txn = db.begin_read()?;
    let t = txn.open_table(LEASES)?;
    let mut out = Vec::new();
    for e in t.iter()? {
        let (k, v) = e?;
        out.push((k.value(), v.value()));
    }
    Ok(out)
}

fn raft_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Storage(format!("raft: {e}"))
}

impl Store {
    /// Opens (or creates) the member's database and starts its Raft node and peer service.
    pub async fn open(config: Config) -> Result<Store> {
        config.validate()?;
        let db = Arc::new(open_database(&config)?);
        let id = node_id(&db)?;
        let pos = {
            let txn = db.begin_read()?;
            read_position(&txn.open_table(META)?)?
        };
        let (lease_tx, lease_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            hub: WatchHub::new(pos.revision),
            index: Arc::new(std::sync::RwLock::new(KeyIndex::load(&db)?)),
            leases: lease_tx,
            compactor: tokio::sync::Notify::new(),
            snapshot: std::sync::Mutex::new(None),
            snapshot_file: config.db_path.with_extension("snap"),
        });
        let peers = Peers::new(config.peer_tls.clone());
        let raft = Raft::new(
            id,
            Arc::new(config.raft_config()?),
            peers.clone(),
            LogStore::open(&config.wal_dir(), db.clone())?,
            StateMachine::new(db.clone(), shared.clone()),
        )
        .await
        .map_err(raft_err)?;
        let listener = tokio::net::TcpListener::bind(config.peer_listen)
            .await
            .map_err(|e| Error::Open(format!("listen on {} for peers: {e}", config.peer_listen)))?;
        let (proposer, proposals) = mpsc::channel(MAX_BATCH * 4);
        let (readers, reads) = mpsc::channel(MAX_BATCH * 4);
        let clock = LeaseClock::new(load_leases(&db)?, Instant::now());
        let inner = Arc::new(Inner {
            id,
            config,
            raft,
            db,
            shared,
            peers,
            clock: Mutex::new(clock),
            proposer,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            readers,
            shutdown: CancellationToken::new(),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(peer_service::serve(inner.clone(), listener)),
            tokio::spawn(propose_batches(inner.clone(), proposals)),
            tokio::spawn(batch_read_indexes(inner.clone(), reads)),
            tokio::spawn(follow_leases(inner.clone(), lease_rx)),
            tokio::spawn(expire_leases(inner.clone())),
            tokio::spawn(compact_physically(inner.clone())),
            tokio::spawn(compact_automatically(inner.clone())),
        ];
        *inner.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        inner.shared.compactor.notify_one();
        Ok(Store { inner })
    }

    /// This member's ID.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The cluster's ID.
    pub fn cluster_id(&self) -> u64 {
        self.inner.config.cluster_id
    }

    /// Whether this member has ever been part of a cluster (it has a vote or log).
    pub async fn is_initialized(&self) -> Result<bool> {
        self.inner.raft.is_initialized().await.map_err(raft_err)
    }

    /// Starts a new one-member cluster with this member as its only voter.
    pub async fn bootstrap(&self) -> Result<()> {
        let members = BTreeMap::from([(self.inner.id, self.inner.config.member.clone())]);
        self.inner.raft.initialize(members).await.map_err(raft_err)
    }

    /// Waits until a leader is known (this member or another).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let m = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "leader known")
            .await
            .map_err(|_| Error::NoLeader)?;
        m.current_leader.ok_or(Error::NoLeader)
    }

    /// Waits until this member is a voter that knows a leader.
    pub async fn wait_for_voter(&self, timeout: Duration) -> Result<()> {
        let id = self.inner.id;
        self.inner
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| {
                    m.current_leader.is_some()
                        && m.membership_config
                            .membership()
                            .voter_ids()
                            .any(|v| v == id)
                },
                "voter",
            )
            .await
            .map(|_| ())
            .map_err(|_| Error::NoLeader)
    }

    /// Resolves when the Raft node has stopped on a fatal error (a failed disk write, say), with
    /// the reason; a member in that state can only serve errors.
    pub async fn failed(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "the raft node stopped".into();
            }
        }
    }

    /// Stops the Raft node and every background task.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let _ = self.inner.raft.shutdown().await;
        for t in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// A response header for `revision` from this member.
    pub fn response_header(&self, revision: i64) -> rpc::ResponseHeader {
        rpc::ResponseHeader {
            cluster_id: self.inner.config.cluster_id,
            member_id: self.inner.id,
            revision,
            raft_term: self.inner.raft.metrics().borrow().current_term,
        }
    }

    fn with_header(&self, h: Option<rpc::ResponseHeader>) -> Option<rpc::ResponseHeader> {
        Some(self.response_header(h.map_or(0, |h| h.revision)))
    }

    // ----- reads -----

    /// Serves a Range: linearizable unless `serializable` is set.
    pub async fn range(&self, req: rpc::RangeRequest) -> Result<rpc::RangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if !req.serializable {
            self.read_barrier().await?;
        }
        let (mut resp, revision) = self.read(|hist, pos| {
            Ok((
                mvcc::range(hist, pos.revision, pos.compact_revision, &req)?,
                pos.revision,
            ))
        })?;
        resp.header = Some(self.response_header(revision));
        Ok(resp)
    }

    /// Waits until this member has applied everything committed when the call began, confirmed
    /// by the leader with a quorum (Raft's read index).
    pub async fn read_barrier(&self) -> Result<()> {
        let index = self.inner.read_index().await?;
        self.inner
            .raft
            .wait(Some(self.inner.config.request_timeout))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|_| Error::Timeout)
    }

    /// The current store revision on this member.
    pub fn revision(&self) -> i64 {
        self.inner.shared.hub.last()
    }

    // ----- writes -----

    async fn write(&self, op: Op) -> Result<Outcome> {
        let write = cairnpb::Write { op: Some(op) };
        if write.encoded_len() > self.inner.config.max_request_bytes {
            return Err(Error::RequestTooLarge);
        }
        let proposer = &self.inner.proposer;
        // A write alone (none waiting for the batcher, a slot free) is proposed from here: a
        // batch of one either way, without the batcher's two hand-offs. Under load writes queue
        // and go in batches.
        let alone = proposer.capacity() == proposer.max_capacity();
        let slot = alone
            .then(|| self.inner.slots.clone().try_acquire_owned().ok())
            .flatten();
        let result = match slot {
            Some(permit) => {
                let results = self
                    .inner
                    .propose(cairnpb::WriteBatch {
                        writes: vec![write],
                    })
                    .await;
                drop(permit);
                results?
                    .results
                    .pop()
                    .ok_or_else(|| Error::Storage("result count mismatch".into()))?
            }
            None => {
                let (tx, rx) = oneshot::channel();
                proposer
                    .send((write, tx))
                    .await
                    .map_err(|_| Error::Stopped)?;
                rx.await.map_err(|_| Error::Stopped)??
            }
        };
        match result.result {
            Some(Outcome::Refused(r)) if r.kind == 0 => Err(Error::InvalidArgument(r.detail)),
            Some(Outcome::Refused(r)) => Err(Refusal::into_error(r.kind, &r.detail)),
            Some(o) => Ok(o),
            None => Err(Error::Storage("empty write result".into())),
        }
    }

    /// Puts a key.
    pub async fn put(&self, req: rpc::PutRequest) -> Result<rpc::PutResponse> {
        mvcc::validate_put(&req)?;
        match self.write(Op::Put(req)).await? {
            Outcome::Put(mut r) => {
                r.header = self.with_header(r.header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    /// Deletes a key or range.
    pub async fn delete_range(
        &self,
        req: rpc::DeleteRangeRequest,
    ) -> Result<rpc::DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        match self.write(Op::DeleteRange(req)).await? {
            Outcome::DeleteRange(mut r) => {
                r.header = self.with_header(r.header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    /// Runs a transaction.
    pub async fn txn(&self, req: rpc::TxnRequest) -> Result<rpc::TxnResponse> {
        mvcc::validate_txn(&req, self.inner.config.max_txn_ops)?;
        match self.write(Op::Txn(req)).await? {
            Outcome::Txn(mut r) => {
                r.header = self.with_header(r.header);
                let header = r.header;
                fill_txn_headers(&mut r, header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    /// Compacts history up to a revision.
    pub async fn compact(&self, revision: i64) -> Result<rpc::CompactionResponse> {
        match self
            .write(Op::Compaction(rpc::CompactionRequest {
                revision,
                physical: false,
            }))
            .await?
        {
            Outcome::Compaction(mut r) => {
                r.header = self.with_header(r.header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    // ----- leases -----

    /// Grants a lease (choosing an ID when `id` is 0).
    pub async fn lease_grant(&self, id: i64, ttl: i64) -> Result<rpc::LeaseGrantResponse> {
        if ttl > MAX_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if id != 0 {
            id
        } else {
            (rand::random::<u64>() >> 1).max(1) as i64
        };
        let req = rpc::LeaseGrantRequest {
            ttl: ttl.max(MIN_TTL),
            id,
        };
        match self.write(Op::LeaseGrant(req)).await? {
            Outcome::LeaseGrant(mut r) => {
                r.header = self.with_header(r.header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    /// Revokes a lease, deleting its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<rpc::LeaseRevokeResponse> {
        match self
            .write(Op::LeaseRevoke(rpc::LeaseRevokeRequest { id }))
            .await?
        {
            Outcome::LeaseRevoke(mut r) => {
                r.header = self.with_header(r.header);
                Ok(r)
            }
            _ => Err(Error::Storage("mismatched write result".into())),
        }
    }

    /// Renews a lease; its TTL, or 0 if it does not exist.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<rpc::LeaseKeepAliveResponse> {
        let ttl = match self
            .inner
            .leader_call(LeaderCall::LeaseKeepAlive(id))
            .await?
        {
            LeaderReply::Ttl(t) => t,
            _ => return Err(Error::Peer("unexpected reply".into())),
        };
        Ok(rpc::LeaseKeepAliveResponse {
            header: Some(self.response_header(self.revision())),
            id,
            ttl,
        })
    }

    /// A lease's TTLs and, if asked, its keys; TTL -1 if it does not exist (as etcd answers).
    pub async fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<rpc::LeaseTimeToLiveResponse> {
        let ttls = match self
            .inner
            .leader_call(LeaderCall::LeaseTimeToLive(id))
            .await?
        {
            LeaderReply::TimeToLive(t) => t,
            _ => return Err(Error::Peer("unexpected reply".into())),
        };
        let header = Some(self.response_header(self.revision()));
        let Some((granted, remaining)) = ttls else {
            return Ok(rpc::LeaseTimeToLiveResponse {
                header,
                id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            });
        };
        let mut attached = Vec::new();
        if keys {
            let txn = self.inner.db.begin_read()?;
            let t = txn.open_table(LEASE_KEYS)?;
            for e in t.range((id, &[][..])..(id.saturating_add(1), &[][..]))? {
                attached.push(e?.0.value().1.to_vec());
            }
        }
        Ok(rpc::LeaseTimeToLiveResponse {
            header,
            id,
            ttl: remaining,
            granted_ttl: granted,
            keys: attached,
        })
    }

    /// Every granted lease's ID.
    pub async fn lease_leases(&self) -> Result<rpc::LeaseLeasesResponse> {
        self.read_barrier().await?;
        let leases = load_leases(&self.inner.db)?
            .into_iter()
            .map(|(id, _)| rpc::LeaseStatus { id })
            .collect();
        Ok(rpc::LeaseLeasesResponse {
            header: Some(self.response_header(self.revision())),
            leases,
        })
    }

    // ----- watches -----

    /// Starts a watcher that sends `(tag, event)` to `out`. Fails at once if the start revision
    /// has been compacted.
    pub fn watch<T: Clone + Send + 'static>(
        &self,
        spec: WatchSpec,
        tag: T,
        out: mpsc::Sender<(T, WatchEvent)>,
    ) -> Result<Watcher> {
        if spec.start_revision > 0 {
            self.read(|_, pos| {
                if spec.start_revision < pos.compact_revision {
                    return Err(Error::Compacted {
                        compact_revision: pos.compact_revision,
                    });
                }
                Ok(())
            })?;
        }
        Ok(watch::start(
            self.inner.db.clone(),
            self.inner.shared.index.clone(),
            &self.inner.shared.hub,
            spec,
            tag,
            out,
        ))
    }

    // ----- cluster -----

    /// The cluster's members.
    pub fn members(&self) -> Vec<MemberInfo> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, member)| MemberInfo {
                id: *id,
                member: member.clone(),
                is_learner: !voters.contains(id),
            })
            .collect()
    }

    /// Adds a member: as a learner, then (unless `learner`) promoted to voter once caught up.
    pub async fn add_member(&self, id: NodeId, member: Member, learner: bool) -> Result<()> {
        self.inner
            .leader_call(LeaderCall::AddMember {
                id,
                member,
                learner,
            })
            .await
            .map(|_| ())
    }

    /// Promotes a learner to voter.
    pub async fn promote_member(&self, id: NodeId) -> Result<()> {
        self.inner
            .leader_call(LeaderCall::PromoteMember(id))
            .await
            .map(|_| ())
    }

    /// Removes a member.
    pub async fn remove_member(&self, id: NodeId) -> Result<()> {
        self.inner
            .leader_call(LeaderCall::RemoveMember(id))
            .await
            .map(|_| ())
    }

    /// This member's status.
    pub fn status(&self) -> StoreStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let db_size = std::fs::metadata(&self.inner.config.db_path).map_or(0, |m| m.len() as i64);
        StoreStatus {
            leader: m.current_leader.unwrap_or(0),
            raft_term: m.current_term,
            raft_index: m.last_log_index.unwrap_or(0),
            raft_applied_index: m.last_applied.map_or(0, |l| l.index),
            db_size,
            is_learner: m.state == ServerState::Learner,
            revision: self.revision(),
        }
    }

    /// A snapshot of the whole key space (the bytes of an etcd-snapshot file).
    pub async fn snapshot(&self) -> Result<Vec<u8>> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || snapshot::dump(&db).map(|(_, b)| b))
            .await
            .map_err(|e| Error::Storage(e.to_string()))?
    }

    /// A hash of the key space at `revision` (0 = now), with the revision hashed and the
    /// compacted revision.
    pub async fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64)> {
        self.read(|hist, pos| {
            let at = if revision <= 0 {
                pos.revision
            } else {
                revision
            };
            if at > pos.revision {
                return Err(Error::FutureRevision);
            }
            if at < pos.compact_revision {
                return Err(Error::Compacted {
                    compact_revision: pos.compact_revision,
                });
            }
            Ok((mvcc::hash_at(hist, at)?, at, pos.compact_revision))
        })
    }

    /// Runs `f` on one consistent view of the state machine. The key index is taken before the
    /// read transaction opens: an apply holds it until its commit (`apply_blocking`), so the two
    /// always agree.
    fn read<T>(
        &self,
        f: impl FnOnce(
            &History<'_, redb::ReadOnlyTable<(u64, u32), &'static [u8]>>,
            &Position,
        ) -> Result<T>,
    ) -> Result<T> {
        let index = self
            .inner
            .shared
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let txn = self.inner.db.begin_read()?;
        let pos = read_position(&txn.open_table(META)?)?;
        let revs = txn.open_table(REVISIONS)?;
        f(
            &History {
                index: &index,
                revs: &revs,
            },
            &pos,
        )
    }
}

fn fill_txn_headers(r: &mut rpc::TxnResponse, h: Option<rpc::ResponseHeader>) {
    use rpc::response_op::Response as R;
    for op in &mut r.responses {
        match &mut op.response {
            Some(R::ResponseRange(x)) => x.header = h,
            Some(R::ResponsePut(x)) => x.header = h,
            Some(R::ResponseDeleteRange(x)) => x.header = h,
            Some(R::ResponseTxn(x)) => {
                x.header = h;
                fill_txn_headers(x, h);
            }
            None => {}
        }
    }
}

/// Restores an etcd-snapshot file into a new database at `db_path` (which must not exist). The
/// member that opens it bootstraps a new one-member cluster holding the same data.
pub fn restore(db_path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if db_path.exists() {
        return Err(Error::Open(format!(
            "{} exists already; restore needs a new data directory",
            db_path.display()
        )));
    }
    if let Some(dir) = db_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Open(format!("create {}: {e}", dir.display())))?;
    }
    let tmp = db_path.with_extension("restoring");
    let _ = std::fs::remove_file(&tmp);
    {
        let db = Database::create(&tmp)?;
        tables::create_all(&db)?;
        snapshot::install(&db, bytes, None, &Default::default())?;
    }
    std::fs::rename(&tmp, db_path)
        .map_err(|e| Error::Open(format!("rename {}: {e}", tmp.display())))?;
    Ok(())
}

impl Inner {
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    fn leader_url(&self, leader: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.peer_url.clone())
    }

    /// Serves `call` here if this member leads, else forwards it to the leader.
    pub(crate) async fn leader_call(self: &Arc<Self>, call: LeaderCall) -> Result<LeaderReply> {
        let timeout = match call {
            LeaderCall::AddMember { .. } => JOIN_TIMEOUT,
            _ => self.config.request_timeout,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.raft.metrics().borrow().current_leader;
            match leader {
                Some(l) if l == self.id => match self.serve_leader_call(call.clone()).await {
                    Err(Error::LeaderChanged) if Instant::now() < deadline => continue,
                    other => return other,
                },
                Some(l) => {
                    let url = self.leader_url(l).ok_or(Error::NoLeader)?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    return self.peers.call_leader(&url, &call, left).await;
                }
                None => {
                    if Instant::now() >= deadline {
                        return Err(Error::NoLeader);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = self
                        .raft
                        .wait(Some(left))
                        .metrics(|m| m.current_leader.is_some(), "leader")
                        .await;
                }
            }
        }
    }

    /// The index a linearizable read must wait for, from a round shared with the reads that
    /// arrived with it.
    async fn read_index(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.readers.send(tx).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// One read-index round with the leader (a quorum heartbeat there).
    async fn read_index_round(self: &Arc<Self>) -> Result<u64> {
        match self.leader_call(LeaderCall::ReadIndex).await? {
            LeaderReply::ReadIndex(i) => Ok(i),
            _ => Err(Error::Peer("unexpected reply".into())),
        }
    }

    /// Serves a leader call on this member, which believes it leads.
    pub(crate) async fn serve_leader_call(
        self: &Arc<Self>,
        call: LeaderCall,
    ) -> Result<LeaderReply> {
        match call {
            LeaderCall::Write(bytes) => {
                let batch = cairnpb::WriteBatch::decode(bytes.as_slice())
                    .map_err(|e| Error::InvalidArgument(format!("bad write batch: {e}")))?;
                let results = self.propose_here(batch).await?;
                Ok(LeaderReply::Written(results.encode_to_vec()))
            }
            LeaderCall::ReadIndex => match self.raft.get_read_log_id().await {
                Ok((read, _)) => Ok(LeaderReply::ReadIndex(read.map_or(0, |l| l.index))),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                    Err(Error::LeaderChanged)
                }
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                    Err(Error::Timeout)
                }
                Err(e) => Err(raft_err(e)),
            },
            LeaderCall::LeaseKeepAlive(id) => {
                self.ensure_leader()?;
                let ttl = self
                    .clock
                    .lock()
                    .await
                    .keep_alive(id, Instant::now())
                    .unwrap_or(0);
                Ok(LeaderReply::Ttl(ttl))
            }
            LeaderCall::LeaseTimeToLive(id) => {
                self.ensure_leader()?;
                Ok(LeaderReply::TimeToLive(
                    self.clock.lock().await.remaining(id, Instant::now()),
                ))
            }
            LeaderCall::AddMember {
                id,
                member,
                learner,
            } => {
                let voters: BTreeSet<NodeId> = self
                    .raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect();
                if voters.contains(&id) {
                    return Ok(LeaderReply::Done);
                }
                // A learner is added at once (like etcd's MemberAdd); a voter only once it has
                // caught up, so that adding it never costs the cluster its quorum.
                let add = self.raft.add_learner(id, member, !learner);
                tokio::time::timeout(JOIN_TIMEOUT, add)
                    .await
                    .map_err(|_| Error::LearnerNotReady)?
                    .map_err(membership_err)?;
                if !learner {
                    self.raft
                        .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                        .await
                        .map_err(membership_err)?;
                }
                Ok(LeaderReply::Done)
            }
            LeaderCall::PromoteMember(id) => {
                if self.is_voter(id)? {
                    return Err(Error::NotLearner);
                }
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(membership_err)?;
                Ok(LeaderReply::Done)
            }
            LeaderCall::RemoveMember(id) => {
                let change = if self.is_voter(id)? {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                self.raft
                    .change_membership(change, false)
                    .await
                    .map_err(membership_err)?;
                Ok(LeaderReply::Done)
            }
        }
    }

    /// Whether member `id` votes (`MemberNotFound` if it is not a member at all).
    fn is_voter(&self, id: NodeId) -> Result<bool> {
        let metrics = self.raft.metrics();
        let membership = metrics.borrow().membership_config.membership().clone();
        if membership.get_node(&id).is_none() {
            return Err(Error::MemberNotFound { id });
        }
        Ok(membership.voter_ids().any(|v| v == id))
    }

    fn ensure_leader(&self) -> Result<()> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader == Some(self.id) && m.state == ServerState::Leader {
            Ok(())
        } else {
            Err(Error::LeaderChanged)
        }
    }

    /// Proposes a batch through this member's Raft node.
    async fn propose_here(&self, batch: cairnpb::WriteBatch) -> Result<cairnpb::WriteResults> {
        let fut = self.raft.client_write(Proposal(batch));
        match tokio::time::timeout(self.config.request_timeout, fut).await {
            Err(_) => Err(Error::Timeout),
            Ok(Ok(resp)) => Ok(resp.data.0),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(Error::LeaderChanged)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(Error::Membership {
                    reason: e.to_string(),
                })
            }
            Ok(Err(RaftError::Fatal(_))) => Err(Error::Stopped),
        }
    }

    /// Proposes a batch on the leader, wherever it is.
    async fn propose(
        self: &Arc<Self>,
        batch: cairnpb::WriteBatch,
    ) -> Result<cairnpb::WriteResults> {
        // On the leader, propose directly: no encoding for a peer call.
        if self.raft.metrics().borrow().current_leader == Some(self.id) {
            match self.propose_here(batch.clone()).await {
                Err(Error::LeaderChanged) => {}
                other => return other,
            }
        }
        match self
            .leader_call(LeaderCall::Write(batch.encode_to_vec()))
            .await?
        {
            LeaderReply::Written(bytes) => cairnpb::WriteResults::decode(bytes.as_slice())
                .map_err(|e| Error::Peer(format!("bad write results: {e}"))),
            _ => Err(Error::Peer("unexpected reply".into())),
        }
    }
}

fn membership_err<E: std::fmt::Display>(e: RaftError<NodeId, E>) -> Error {
    match e {
        RaftError::Fatal(_) => Error::Stopped,
        RaftError::APIError(e) => Error::Membership {
            reason: e.to_string(),
        },
    }
}

/// Collects concurrent writes into batches, each proposed as one Raft entry.
async fn propose_batches(inner: Arc<Inner>, mut rx: mpsc::Receiver<Pending>) {
    loop {
        let Ok(permit) = inner.slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut pending = vec![first];
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            let (writes, replies): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
            match inner.propose(cairnpb::WriteBatch { writes }).await {
                Ok(results) if results.results.len() == replies.len() => {
                    for (reply, result) in replies.into_iter().zip(results.results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Ok(_) => {
                    for reply in replies {
                        let _ = reply.send(Err(Error::Storage("result count mismatch".into())));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves linearizable reads' read-index requests in rounds: every request waiting when a round
/// starts shares its answer, and requests that arrive during a round wait for the next one (an
/// answer obtained before a read arrived could miss a write that finished before it).
async fn batch_read_indexes(
    inner: Arc<Inner>,
    mut rx: mpsc::Receiver<oneshot::Sender<Result<u64>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiting.push(w);
        }
        let index = inner.read_index_round().await;
        for w in waiting {
            let _ = w.send(index.clone());
        }
    }
}

/// Keeps the lease clock in step with the log, and restarts every lease's TTL on becoming leader.
async fn follow_leases(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<LeaseChange>) {
    let mut metrics = inner.raft.metrics();
    let mut leading = false;
    loop {
        tokio::select! {
            change = rx.recv() => {
                let Some(change) = change else { return };
                let mut clock = inner.clock.lock().await;
                if change == LeaseChange::Reload {
                    if let Ok(leases) = load_leases(&inner.db) {
                        clock.reset(leases, Instant::now());
                    }
                } else {
                    clock.follow(change, Instant::now());
                }
            }
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                let now_leading = metrics.borrow().state == ServerState::Leader;
                if now_leading && !leading {
                    inner.clock.lock().await.refresh_all(Instant::now());
                }
                leading = now_leading;
            }
        }
    }
}

/// On the leader, revokes leases whose time is up. Touches nothing while none expire.
async fn expire_leases(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let revoking: Arc<std::sync::Mutex<BTreeSet<i64>>> = Arc::default();
    loop {
        tick.tick().await;
        if inner.ensure_leader().is_err() {
            continue;
        }
        let expired = inner.clock.lock().await.expired(Instant::now());
        for id in expired {
            if !revoking
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id)
            {
                continue;
            }
            let store = Store {
                inner: inner.clone(),
            };
            let revoking = revoking.clone();
            tokio::spawn(async move {
                if let Err(e) = store.lease_revoke(id).await
                    && e != Error::LeaseNotFound
                {
                    tracing::warn!(lease = id, error = %e, "revoking an expired lease failed");
                }
                revoking
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        }
    }
}

/// Physically removes history that compaction made unreachable, in small steps that do not hold
/// up writes for long. Runs on every member; it changes nothing any read can see.
async fn compact_physically(inner: Arc<Inner>) {
    loop {
        inner.shared.compactor.notified().await;
        loop {
            let db = inner.db.clone();
            let index = inner.shared.index.clone();
            let step = tokio::task::spawn_blocking(move || -> Result<bool> {
                let mut index = index.write().unwrap_or_else(|p| p.into_inner());
                let mut txn = db.begin_write()?;
                txn.set_durability(Durability::None)?;
                let more;
                {
                    let mut meta_t = txn.open_table(META)?;
                    let pos = read_position(&meta_t)?;
                    if pos.compacted_upto >= pos.compact_revision {
                        return Ok(false);
                    }
                    let mut w = Writer::open(&txn, &mut index, pos.revision, pos.compact_revision)?;
                    let next = w.compact_step(pos.compacted_upto, COMPACT_STEP)?;
                    tables::put_meta(&mut meta_t, meta::COMPACTED_UPTO, &next)?;
                    more = next < pos.compact_revision;
                }
                txn.commit()?;
                Ok(more)
            })
            .await;
            match step {
                Ok(Ok(true)) => tokio::task::yield_now().await,
                Ok(Ok(false)) => break,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "physical compaction failed");
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// On the leader, compacts history older than the retention period, like etcd's periodic
/// compactor: it samples the revision every tenth of the period and compacts to the sample
/// taken one period ago. Proposes nothing while the revision stands still.
async fn compact_automatically(inner: Arc<Inner>) {
    let retention = inner.config.compaction_retention;
    if retention.is_zero() {
        return;
    }
    let every = (retention / 10).max(Duration::from_millis(100));
    let mut samples: std::collections::VecDeque<(Instant, i64)> = Default::default();
    let mut tick = tokio::time::interval(every);
    let store = Store {
        inner: inner.clone(),
    };
    loop {
        tick.tick().await;
        let now = Instant::now();
        samples.push_back((now, store.revision()));
        let mut target = None;
        while let Some(&(at, rev)) = samples.front() {
            if now.duration_since(at) >= retention {
                target = Some(rev);
                samples.pop_front();
            } else {
                break;
            }
        }
        let Some(rev) = target else { continue };
        if inner.ensure_leader().is_err() {
            continue;
        }
        let compacted = {
            let Ok(txn) = inner.db.begin_read() else {
                continue;
            };
            let Ok(t) = txn.open_table(META) else {
                continue;
            };
            read_position(&t).map(|p| p.compact_revision).unwrap_or(0)
        };
        if rev > compacted {
            match store.compact(rev).await {
                Ok(_) => tracing::debug!(revision = rev, "compacted"),
                Err(e) => tracing::warn!(revision = rev, error = %e, "automatic compaction failed"),
            }
        }
    }
}
