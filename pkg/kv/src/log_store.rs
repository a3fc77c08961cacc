//! The Raft log as an append-only write-ahead log in segment files, and the vote beside it.
//!
//! openraft's durability contract: the vote is on disk before `save_vote` returns, and an append
//! is reported flushed only after `fdatasync` of the segment it was written to. An append writes
//! a whole batch of entries with one write and one `fdatasync`; nothing else is on a write's path
//! (the state machine commits without fsync, see `state_machine.rs`). At idle nothing is written.
//! The disk work runs in place on the calling task's thread: measured with `cairn-bench kv`,
//! handing each fdatasync to tokio's blocking pool cost a single client's put more than the sync.
//!
//! Layout of the directory: `NNNNNNNNNNNNNNNN.log` segments named by their first index (hex),
//! each a sequence of records `[len u32 LE][crc32 u32 LE][postcard Entry]`, and `log.meta` (vote
//! and last purged log ID), replaced atomically. A torn record at the end of the newest segment
//! (a crash mid-append, never acknowledged) is cut off on open; a bad record anywhere else is
//! corruption and refuses to open.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use redb::Database;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::raft_types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::tables;

/// A new segment is started once the active one reaches this size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const META_FILE: &str = "log.meta";
const HEADER: usize = 8;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct LogMeta {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
    log_id: LogId,
}

struct Segment {
    file: Arc<File>,
    size: u64,
}

struct Wal {
    dir: PathBuf,
    segments: BTreeMap<u64, Segment>,
    index: BTreeMap<u64, Loc>,
    meta: LogMeta,
}

/// The Raft log storage. Cheap to clone: a handle on the shared log.
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    /// The state machine's database: made durable before the log it depends on is purged.
    db: Arc<Database>,
}

fn io(what: impl std::fmt::Display, e: std::io::Error) -> Error {
    Error::Storage(format!("{what}: {e}"))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:016x}.log"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir.display(), e))
}

fn write_meta(dir: &Path, meta: &LogMeta) -> Result<()> {
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    let bytes = tables::encode(meta)?;
    let mut f = File::create(&tmp).map_err(|e| io(tmp.display(), e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io(tmp.display(), e))?;
    std::fs::rename(&tmp, dir.join(META_FILE)).map_err(|e| io(tmp.display(), e))?;
    sync_dir(dir)
}

/// Parses a segment's records; returns them and the length of the valid prefix.
fn scan(bytes: &[u8]) -> (Vec<(u64, u32, Entry)>, u64) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= HEADER {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or_default());
        let end = pos + HEADER + len as usize;
        if len == 0 || end > bytes.len() {
            break;
        }
        let payload = &bytes[pos + HEADER..end];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entry) = tables::decode::<Entry>(payload) else {
            break;
        };
        out.push((pos as u64, len, entry));
        pos = end;
    }
    (out, pos as u64)
}

impl Wal {
    fn open(dir: &Path) -> Result<Wal> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir.display(), e))?;
        let meta = match std::fs::read(dir.join(META_FILE)) {
            Ok(b) => tables::decode(&b).map_err(|e| {
                Error::Open(format!(
                    "raft log metadata {} is corrupt: {e}",
                    dir.join(META_FILE).display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LogMeta::default(),
            Err(e) => return Err(io(dir.join(META_FILE).display(), e)),
        };
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| io(dir.display(), e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_suffix(".log")?, 16).ok()
            })
            .collect();
        firsts.sort_unstable();
        let purged = meta.last_purged.map_or(0, |l| l.index + 1);
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            segments: BTreeMap::new(),
            index: BTreeMap::new(),
            meta,
        };
        for (i, &first) in firsts.iter().enumerate() {
            let path = segment_path(dir, first);
            let bytes = std::fs::read(&path).map_err(|e| io(path.display(), e))?;
            let (records, valid) = scan(&bytes);
            if valid < bytes.len() as u64 {
                if i + 1 < firsts.len() {
                    return Err(Error::Open(format!(
                        "raft log segment {} is corrupt at offset {valid} (not its end); refusing to open",
                        path.display()
                    )));
                }
                // A torn final append: it was never reported flushed, so nothing acknowledged is lost.
                tracing::warn!(segment = %path.display(), offset = valid, "cutting off a torn record");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io(path.display(), e))?;
                f.set_len(valid)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io(path.display(), e))?;
            }
            for (offset, len, entry) in records {
                if entry.log_id.index >= purged {
                    wal.index.insert(
                        entry.log_id.index,
                        Loc {
                            segment: first,
                            offset,
                            len,
                            log_id: entry.log_id,
                        },
                    );
                }
            }
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(path.display(), e))?;
            wal.segments.insert(
                first,
                Segment {
                    file: Arc::new(file),
                    size: valid,
                },
            );
        }
        Ok(wal)
    }

    fn read(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for loc in self.index.range(range).map(|(_, l)| *l) {
            let seg = self
                .segments
                .get(&loc.segment)
                .ok_or_else(|| Error::Storage(format!("segment {:x} missing", loc.segment)))?;
            let mut buf = vec![0u8; loc.len as usize];
            seg.file
                .read_exact_at(&mut buf, loc.offset + HEADER as u64)
                .map_err(|e| io(format!("read log entry {}", loc.log_id.index), e))?;
            out.push(tables::decode(&buf)?);
        }
        Ok(out)
    }

    /// Writes encoded entries to the active segment (starting one if needed); returns the file to
    /// sync.
    fn write(&mut self, entries: Vec<(LogId, Vec<u8>)>) -> Result<(Arc<File>, bool)> {
        let Some((first_id, _)) = entries.first() else {
            return Err(Error::Storage("empty append".into()));
        };
        let mut new_segment = false;
        let active = match self.segments.last_key_value() {
            Some((&first, seg)) if seg.size < SEGMENT_BYTES => first,
            _ => {
                let first = first_id.index;
                let path = segment_path(&self.dir, first);
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| io(path.display(), e))?;
                self.segments.insert(
                    first,
                    Segment {
                        file: Arc::new(file),
                        size: 0,
                    },
                );
                new_segment = true;
                first
            }
        };
        let seg = self
            .segments
            .get_mut(&active)
            .ok_or_else(|| Error::Storage("no active segment".into()))?;
        let mut buf = Vec::with_capacity(entries.iter().map(|(_, b)| b.len() + HEADER).sum());
        let mut offset = seg.size;
        for (log_id, payload) in &entries {
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            buf.extend_from_slice(payload);
            self.index.insert(
                log_id.index,
                Loc {
                    segment: active,
                    offset,
                    len: payload.len() as u32,
                    log_id: *log_id,
                },
            );
            offset += (HEADER + payload.len()) as u64;
        }
        (&*seg.file)
            .write_all(&buf)
            .map_err(|e| io("append to the raft log", e))?;
        seg.size = offset;
        Ok((seg.file.clone(), new_segment))
    }

    /// Removes entries from `index` on, from the index and the files.
    fn truncate(&mut self, index: u64) -> Result<()> {
        let Some(loc) = self.index.get(&index).copied() else {
            return Ok(());
        };
        self.index.split_off(&index);
        let doomed: Vec<u64> = self
            .segments
            .range(loc.segment + 1..)
            .map(|(f, _)| *f)
            .collect();
        for first in doomed {
            self.segments.remove(&first);
            let path = segment_path(&self.dir, first);
            std::fs::remove_file(&path).map_err(|e| io(path.display(), e))?;
        }
        let path = segment_path(&self.dir, loc.segment);
        if loc.offset == 0 {
            self.segments.remove(&loc.segment);
            std::fs::remove_file(&path).map_err(|e| io(path.display(), e))?;
        } else if let Some(seg) = self.segments.get_mut(&loc.segment) {
            seg.file
                .set_len(loc.offset)
                .and_then(|()| seg.file.sync_all())
                .map_err(|e| io(path.display(), e))?;
            seg.size = loc.offset;
        }
        sync_dir(&self.dir)
    }

    /// Forgets entries up to `log_id` and deletes segments that hold nothing newer.
    fn purge(&mut self, log_id: LogId) -> Result<()> {
        self.meta.last_purged = Some(log_id);
        write_meta(&self.dir, &self.meta)?;
        let keep = self.index.split_off(&(log_id.index + 1));
        self.index = keep;
        // A segment can go once the next one starts at or below the first entry kept.
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        for pair in firsts.windows(2) {
            if pair[1] <= log_id.index + 1 {
                self.segments.remove(&pair[0]);
                let path = segment_path(&self.dir, pair[0]);
                std::fs::remove_file(&path).map_err(|e| io(path.display(), e))?;
            }
        }
        Ok(())
    }
}

impl LogStore {
    /// Opens (or creates) the log in `dir`. `db` is the state machine's database.
    pub fn open(dir: &Path, db: Arc<Database>) -> Result<Self> {
        Ok(LogStore {
            wal: Arc::new(Mutex::new(Wal::open(dir)?)),
            db,
        })
    }

    fn wal(&self) -> std::sync::MutexGuard<'_, Wal> {
        self.wal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_err(e: Error) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        self.wal().read(bounds).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let wal = self.wal();
        let last_purged = wal.meta.last_purged;
        let last = wal
            .index
            .last_key_value()
            .map(|(_, l)| l.log_id)
            .or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut wal = self.wal();
        let mut meta = wal.meta.clone();
        meta.vote = Some(*vote);
        write_meta(&wal.dir, &meta).map_err(|e| StorageIOError::write_vote(&e))?;
        wal.meta = meta;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.wal().meta.vote)
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
        let encoded: Vec<(LogId, Vec<u8>)> = entries
            .into_iter()
            .map(|e| Ok((e.log_id, tables::encode(&e)?)))
            .collect::<Result<_, Error>>()
            .map_err(write_err)?;
        if encoded.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // Written (and so readable) under the lock; synced outside it.
        let (file, new_segment, dir) = {
            let mut wal = self.wal();
            let (file, new_segment) = wal.write(encoded).map_err(write_err)?;
            (file, new_segment, wal.dir.clone())
        };
        let res = file
            .sync_data()
            .map_err(|e| io("fdatasync the raft log", e))
            .and_then(|()| if new_segment { sync_dir(&dir) } else { Ok(()) });
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.wal().truncate(log_id.index).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The entries about to go must be durable in the state machine first: its applies are
        // not fsynced one by one.
        crate::state_machine::make_durable(&self.db).map_err(write_err)?;
        self.wal().purge(log_id).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    //! openraft's storage conformance suite on the log and the redb state machine, and the
    //! log's own recovery rules.
    use std::sync::Arc;

    use openraft::StorageError as OpenraftStorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::raft_types::NodeId;
    use crate::state_machine::{Shared, StateMachine};
    use crate::watch::WatchHub;

    struct Builder;

    fn open_in(dir: &Path) -> (LogStore, StateMachine) {
        let db = Arc::new(redb::Database::create(dir.join("state.redb")).expect("create db"));
        tables::create_all(&db).expect("tables");
        let (leases, _) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            hub: WatchHub::new(1),
            index: Arc::default(),
            leases,
            compactor: tokio::sync::Notify::new(),
            snapshot: std::sync::Mutex::new(None),
            snapshot_file: dir.join("state.snap"),
        });
        let log = LogStore::open(&dir.join("wal"), db.clone()).expect("open log");
        (log, StateMachine::new(db, shared))
    }

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), OpenraftStorageError<NodeId>>
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, sm) = open_in(dir.path());
            Ok((dir, log, sm))
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

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(term, 1), index),
            payload: openraft::EntryPayload::Blank,
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        {
            let mut wal = Wal::open(&wal_dir).unwrap();
            let entries = (1..=3)
                .map(|i| (entry(1, i).log_id, tables::encode(&entry(1, i)).unwrap()))
                .collect();
            wal.write(entries).unwrap();
        }
        let seg = segment_path(&wal_dir, 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let wal = Wal::open(&wal_dir).unwrap();
        assert_eq!(wal.read(..).unwrap().len(), 3);
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            wal.segments[&1].size
        );
    }

    #[test]
    fn truncate_and_purge_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        {
            let mut wal = Wal::open(&wal_dir).unwrap();
            let entries = (1..=10)
                .map(|i| (entry(1, i).log_id, tables::encode(&entry(1, i)).unwrap()))
                .collect();
            wal.write(entries).unwrap();
            wal.truncate(8).unwrap();
            wal.purge(entry(1, 3).log_id).unwrap();
        }
        let wal = Wal::open(&wal_dir).unwrap();
        let idx: Vec<u64> = wal
            .read(..)
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(idx, vec![4, 5, 6, 7]);
        assert_eq!(wal.meta.last_purged, Some(entry(1, 3).log_id));
    }
}
