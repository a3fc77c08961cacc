//! The Raft log and vote on redb, honouring openraft's durability contract: the vote is on disk
//! before `save_vote` returns, and an append is reported flushed only after its commit was
//! fsynced. One durable commit covers a whole `append` batch, and, because the state machine lives
//! in the same database, everything applied before it too.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use redb::ReadableDatabase;
use redb::{Database, Durability, ReadableTable};

use crate::error::Error;
use crate::raft_types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::tables::{self, LOG, META, meta};

/// The Raft log storage. Cheap to clone: a handle on the shared database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

fn read_err(e: impl Into<Error>) -> StorageError {
    StorageIOError::read_logs(&e.into()).into()
}

fn write_err(e: Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

/// Runs blocking database work off the async threads; `fail` says what a failure was.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    fail: fn(Error) -> StorageError,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(fail),
        Err(e) => Err(fail(Error::Storage(e.to_string()))),
    }
}

fn vote_err(e: Error) -> StorageError {
    StorageIOError::write_vote(&e).into()
}

impl LogStore {
    /// A log store on `db` (its tables must exist).
    pub fn new(db: Arc<Database>) -> Self {
        LogStore { db }
    }

    fn write(
        &self,
        durability: Durability,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        f(&txn)?;
        txn.commit()?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let mut out = Vec::new();
        for item in table.range(range).map_err(read_err)? {
            let (_, v) = item.map_err(read_err)?;
            out.push(tables::decode(v.value()).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let meta_t = txn.open_table(META).map_err(read_err)?;
        let last_purged: Option<LogId> =
            tables::get_meta(&meta_t, meta::LAST_PURGED).map_err(read_err)?;
        let log = txn.open_table(LOG).map_err(read_err)?;
        let last = match log.last().map_err(read_err)? {
            Some((_, v)) => Some(tables::decode::<Entry>(v.value()).map_err(read_err)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let this = self.clone();
        let vote = *vote;
        blocking(
            move || {
                this.write(Durability::Immediate, |txn| {
                    let mut t = txn.open_table(META)?;
                    tables::put_meta(&mut t, meta::VOTE, &vote)
                })
            },
            vote_err,
        )
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| StorageIOError::read_vote(&Error::from(e)))?;
        let t = txn
            .open_table(META)
            .map_err(|e| StorageIOError::read_vote(&Error::from(e)))?;
        tables::get_meta(&t, meta::VOTE).map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, tables::encode(&e)?)))
            .collect::<Result<_, Error>>()
            .map_err(write_err)?;
        if encoded.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        let this = self.clone();
        // The entries are readable once the commit returns; the callback fires only after the
        // fsync inside that commit, which is what openraft counts as flushed.
        let res = blocking(
            move || {
                this.write(Durability::Immediate, |txn| {
                    let mut t = txn.open_table(LOG)?;
                    for (index, bytes) in &encoded {
                        t.insert(*index, bytes.as_slice())?;
                    }
                    Ok(())
                })
            },
            write_err,
        )
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(
            move || {
                this.write(Durability::Immediate, |txn| {
                    let mut t = txn.open_table(LOG)?;
                    t.retain_in(log_id.index.., |_, _| false)?;
                    Ok(())
                })
            },
            write_err,
        )
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        // Not fsynced on its own: a purge lost in a crash only leaves entries that are still
        // consistent with the recorded `last_purged`, and the next durable commit carries it.
        blocking(
            move || {
                this.write(Durability::None, |txn| {
                    let mut t = txn.open_table(LOG)?;
                    t.retain_in(..=log_id.index, |_, _| false)?;
                    let mut m = txn.open_table(META)?;
                    tables::put_meta(&mut m, meta::LAST_PURGED, &log_id)
                })
            },
            write_err,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    //! openraft's storage conformance suite on the redb log and state machine.
    use std::sync::Arc;

    use openraft::StorageError as OpenraftStorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::LogStore;
    use crate::raft_types::{NodeId, TypeConfig};
    use crate::state_machine::{Shared, StateMachine};
    use crate::tables;
    use crate::watch::WatchHub;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), OpenraftStorageError<NodeId>>
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let db =
                Arc::new(redb::Database::create(dir.path().join("state.redb")).expect("create db"));
            tables::create_all(&db).expect("tables");
            let (leases, _) = tokio::sync::mpsc::unbounded_channel();
            let shared = Arc::new(Shared {
                hub: WatchHub::new(1),
                leases,
                compactor: tokio::sync::Notify::new(),
                snapshot: std::sync::Mutex::new(None),
            });
            Ok((
                dir,
                LogStore::new(db.clone()),
                StateMachine::new(db, shared),
            ))
        }
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "openraft's suite returns its own error type"
    )]
    fn openraft_storage_suite() -> Result<(), OpenraftStorageError<NodeId>> {
        Suite::test_all(Builder)
    }
}
