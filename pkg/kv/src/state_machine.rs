//! The Raft state machine: applies committed batches of etcd writes to the multi-version tables,
//! publishes their events to the watch hub and their lease changes to the lease clock, and builds
//! and installs snapshots.
//!
//! Applies commit without fsync (`Durability::None`): the log entries they come from are already
//! durable in the write-ahead log, and after a crash openraft re-applies them from the last durable
//! `last_applied`. Every [`SYNC_EVERY_APPLIES`] applies or [`SYNC_EVERY`], and before the log is
//! purged, one apply commits durably instead, which bounds the replay and lets redb reuse freed
//! pages. So a write pays one fsync (its log append), not two, and an idle member pays none.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StorageIOError};
use redb::ReadableDatabase;
use redb::{Database, Durability};
use tokio::sync::mpsc;

use crate::error::{Error, Refusal, Result};
use crate::mvcc::{LeaseChange, RevisionEvents, Writer};
use crate::pb::cairnpb::{self, write::Op, write_result::Result as Outcome};
use crate::raft_types::{
    Applied, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::snapshot;
use crate::tables::{self, META, meta};
use crate::watch::WatchHub;

/// What the state machine shares with the store's readers and background tasks.
pub(crate) struct Shared {
    /// Watchers hear applied revisions here.
    pub hub: WatchHub,
    /// Each key's versions; changed only together with the tables, under its write lock.
    pub index: Arc<std::sync::RwLock<crate::history::KeyIndex>>,
    /// The lease clock hears grants and revocations here.
    pub leases: mpsc::UnboundedSender<LeaseChange>,
    /// Wakes the physical compactor.
    pub compactor: tokio::sync::Notify,
    /// The newest snapshot built or installed: its metadata here, its data in `snapshot_file`
    /// (a snapshot holds the whole history; it is not kept in memory).
    pub snapshot: std::sync::Mutex<Option<SnapshotMeta>>,
    /// Where the newest snapshot's data is kept.
    pub snapshot_file: std::path::PathBuf,
}

/// Make applies durable at least this often (in applies)...
const SYNC_EVERY_APPLIES: u32 = 1024;
/// ...and this often (in time, while applies keep coming).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The state machine. One per member; openraft owns it and calls it from one task.
pub struct StateMachine {
    db: Arc<Database>,
    shared: Arc<Shared>,
    unsynced: u32,
    synced_at: Instant,
}

/// Commits everything applied so far durably.
pub(crate) fn make_durable(db: &Database) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.commit()?;
    Ok(())
}

fn sm_err(e: impl Into<Error>) -> StorageError {
    StorageIOError::write_state_machine(&e.into()).into()
}

impl StateMachine {
    pub(crate) fn new(db: Arc<Database>, shared: Arc<Shared>) -> Self {
        StateMachine {
            db,
            shared,
            unsynced: 0,
            synced_at: Instant::now(),
        }
    }

    fn after_commit(
        &self,
        published: Vec<RevisionEvents>,
        leases: Vec<LeaseChange>,
        compacting: bool,
    ) {
        self.shared.hub.publish(published);
        for change in leases {
            let _ = self.shared.leases.send(change);
        }
        if compacting {
            self.shared.compactor.notify_one();
        }
    }
}

/// The state machine's position, as stored beside its tables.
pub(crate) struct Position {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub revision: i64,
    pub compact_revision: i64,
    pub compacted_upto: i64,
}

pub(crate) fn read_position(
    t: &impl redb::ReadableTable<&'static str, &'static [u8]>,
) -> Result<Position> {
    Ok(Position {
        last_applied: tables::get_meta::<Option<LogId>>(t, meta::LAST_APPLIED)?.flatten(),
        membership: tables::get_meta(t, meta::MEMBERSHIP)?.unwrap_or_default(),
        // etcd's first revision is 1: an empty store answers with revision 1.
        revision: tables::get_meta(t, meta::REVISION)?.unwrap_or(1),
        compact_revision: tables::get_meta(t, meta::COMPACT_REVISION)?.unwrap_or(0),
        compacted_upto: tables::get_meta(t, meta::COMPACTED_UPTO)?.unwrap_or(0),
    })
}

/// Applies one client write; refusals become results, storage failures abort the batch.
fn apply_write(w: &mut Writer<'_>, write: &cairnpb::Write) -> Result<cairnpb::WriteResult> {
    let outcome = match &write.op {
        Some(Op::Put(r)) => w.put(r).map(Outcome::Put),
        Some(Op::DeleteRange(r)) => w.delete_range(r).map(Outcome::DeleteRange),
        Some(Op::Txn(r)) => w.txn(r).map(Outcome::Txn),
        Some(Op::Compaction(r)) => w.compact(r).map(Outcome::Compaction),
        Some(Op::LeaseGrant(r)) => w.lease_grant(r).map(Outcome::LeaseGrant),
        Some(Op::LeaseRevoke(r)) => w.lease_revoke(r).map(Outcome::LeaseRevoke),
        None => Err(Error::InvalidArgument("empty write".into())),
    };
    let result = match outcome {
        Ok(o) => o,
        Err(e) => match Refusal::from_error(&e) {
            Some(kind) => {
                let detail = match &e {
                    Error::Compacted { compact_revision } => compact_revision.to_string(),
                    _ => String::new(),
                };
                Outcome::Refused(cairnpb::Refusal {
                    kind: kind as u32,
                    detail,
                })
            }
            None if matches!(e, Error::Storage(_)) => return Err(e),
            // Input the API layer should have refused; every member refuses it alike.
            None => Outcome::Refused(cairnpb::Refusal {
                kind: 0,
                detail: e.to_string(),
            }),
        },
    };
    Ok(cairnpb::WriteResult {
        result: Some(result),
    })
}

struct ApplyOutput {
    results: Vec<Applied>,
    published: Vec<RevisionEvents>,
    leases: Vec<LeaseChange>,
    compacting: bool,
}

fn apply_blocking(
    db: &Database,
    index: &std::sync::RwLock<crate::history::KeyIndex>,
    entries: Vec<Entry>,
    durable: bool,
) -> Result<ApplyOutput> {
    // Readers take the index before they open a read transaction, so holding it until the
    // commit makes the new versions appear in both at once.
    let mut index = index.write().unwrap_or_else(|p| p.into_inner());
    let mut txn = db.begin_write()?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    let out;
    {
        let mut meta_t = txn.open_table(META)?;
        let mut pos = read_position(&meta_t)?;
        let before = (pos.revision, pos.compact_revision);
        let mut membership_changed = false;
        let mut w = Writer::open(&txn, &mut index, pos.revision, pos.compact_revision)?;
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            pos.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(Applied::default()),
                EntryPayload::Normal(proposal) => {
                    let mut applied = cairnpb::WriteResults::default();
                    for write in &proposal.0.writes {
                        applied.results.push(apply_write(&mut w, write)?);
                    }
                    results.push(Applied(applied));
                }
                EntryPayload::Membership(m) => {
                    pos.membership = StoredMembership::new(Some(entry.log_id), m);
                    membership_changed = true;
                    results.push(Applied::default());
                }
            }
        }
        // Only what changed: each record rewritten is another page copied.
        tables::put_meta(&mut meta_t, meta::LAST_APPLIED, &pos.last_applied)?;
        if membership_changed {
            tables::put_meta(&mut meta_t, meta::MEMBERSHIP, &pos.membership)?;
        }
        if w.revision != before.0 {
            tables::put_meta(&mut meta_t, meta::REVISION, &w.revision)?;
        }
        if w.compact_revision != before.1 {
            tables::put_meta(&mut meta_t, meta::COMPACT_REVISION, &w.compact_revision)?;
        }
        out = ApplyOutput {
            results,
            compacting: w.compact_revision > pos.compacted_upto,
            published: std::mem::take(&mut w.published),
            leases: std::mem::take(&mut w.lease_changes),
        };
    }
    txn.commit()?;
    Ok(out)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let txn = self.db.begin_read().map_err(sm_err)?;
        let t = txn.open_table(META).map_err(sm_err)?;
        let pos = read_position(&t).map_err(sm_err)?;
        Ok((pos.last_applied, pos.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.unsynced += 1;
        let durable = self.unsynced >= SYNC_EVERY_APPLIES || self.synced_at.elapsed() >= SYNC_EVERY;
        if durable {
            self.unsynced = 0;
            self.synced_at = Instant::now();
        }
        // In place, like the log's fdatasync (see `log_store.rs`): a hand-off costs more.
        let out = apply_blocking(&self.db, &self.shared.index, entries, durable).map_err(sm_err)?;
        self.after_commit(out.published, out.leases, out.compacting);
        Ok(out.results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        data: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let db = self.db.clone();
        let bytes = Arc::new(data.into_inner());
        let meta = meta.clone();
        let (m, b) = (meta.clone(), bytes.clone());
        let signature = Some(meta.signature());
        let index = self.shared.index.clone();
        tokio::task::spawn_blocking(move || {
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            snapshot::install(&db, &b, m.last_log_id, &m.last_membership)?;
            *index = crate::history::KeyIndex::load(&db)?;
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| sm_err(Error::Storage(e.to_string())))?
        .map_err(|e| StorageError::from(StorageIOError::write_snapshot(signature, &e)))?;
        // Watchers notice the jump in revision and catch up from the installed history.
        let revision = snapshot::revision_of(&self.db).map_err(sm_err)?;
        tracing::info!(snapshot = %meta.snapshot_id, revision, "installed a snapshot");
        self.shared.hub.reset_to(revision);
        let _ = self.shared.leases.send(LeaseChange::Reload);
        self.shared.keep_snapshot(meta, &bytes).map_err(sm_err)?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.shared
            .current_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

impl Shared {
    /// Keeps `bytes` as the current snapshot.
    fn keep_snapshot(&self, meta: SnapshotMeta, bytes: &[u8]) -> Result<()> {
        let tmp = self.snapshot_file.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.snapshot_file))
            .map_err(|e| {
                Error::Storage(format!(
                    "keep snapshot {}: {e}",
                    self.snapshot_file.display()
                ))
            })?;
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta);
        Ok(())
    }

    /// The current snapshot, read back from its file.
    fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>> {
        let meta = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(meta) = meta else { return Ok(None) };
        let bytes = std::fs::read(&self.snapshot_file).map_err(|e| {
            Error::Storage(format!(
                "read snapshot {}: {e}",
                self.snapshot_file.display()
            ))
        })?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

/// Builds snapshots from a consistent read of the state machine.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let db = self.db.clone();
        let (pos, bytes) = tokio::task::spawn_blocking(move || snapshot::dump(&db))
            .await
            .map_err(|e| sm_err(Error::Storage(e.to_string())))?
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        let snapshot_id = match pos.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, pos.revision),
            None => format!("0-0-{}", pos.revision),
        };
        let meta = SnapshotMeta {
            last_log_id: pos.last_applied,
            last_membership: pos.membership,
            snapshot_id,
        };
        self.shared
            .keep_snapshot(meta.clone(), &bytes)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
