//! Where versions live: every version of every key, in a redb table keyed by (revision, position
//! in the revision), and an in-memory index from each key to the revisions that changed it.
//!
//! This is etcd's own layout (its backend keys versions by revision; its `treeIndex` maps keys to
//! revisions). Writes append at the end of the table, so a batch of writes dirties a page or two
//! instead of one page per key; a read finds the revision in memory and fetches one row. The index
//! is rebuilt from the table when a member opens or installs a snapshot.

use std::collections::BTreeMap;
use std::ops::Bound;

use prost::Message;
use redb::{ReadableDatabase, ReadableTable};

use crate::error::{Error, Result};
use crate::keyrange::KeyRange;
use crate::pb::mvccpb::KeyValue;
use crate::tables::REVISIONS;

/// The key bounds of a range in the index.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// One version of a key: where it is stored and whether it is a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub rev: u64,
    pub sub: u32,
    pub tombstone: bool,
}

/// Each key's versions still in the history window, oldest first.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
}

impl KeyIndex {
    /// Builds the index from the versions table.
    pub(crate) fn load(db: &redb::Database) -> Result<KeyIndex> {
        let txn = db.begin_read()?;
        let revs = txn.open_table(REVISIONS)?;
        let mut index = KeyIndex::default();
        for row in revs.iter()? {
            let (k, v) = row?;
            let (rev, sub) = k.value();
            let kv = decode(v.value())?;
            index.push(
                &kv.key,
                Version {
                    rev,
                    sub,
                    tombstone: kv.version == 0,
                },
            );
        }
        Ok(index)
    }

    /// Records a new version (newer than every version of the key so far).
    pub(crate) fn push(&mut self, key: &[u8], v: Version) {
        self.keys.entry(key.to_vec()).or_default().push(v);
    }

    /// The newest version of `key` at or below `rev`.
    pub(crate) fn at(&self, key: &[u8], rev: u64) -> Option<Version> {
        let versions = self.keys.get(key)?;
        let n = versions.partition_point(|v| v.rev <= rev);
        n.checked_sub(1).map(|i| versions[i])
    }

    /// The versions of `key` at or below `rev`, oldest first.
    pub(crate) fn up_to(&self, key: &[u8], rev: u64) -> Vec<Version> {
        self.keys.get(key).map_or_else(Vec::new, |vs| {
            vs.iter().copied().take_while(|v| v.rev <= rev).collect()
        })
    }

    /// Forgets versions of `key` (compaction).
    pub(crate) fn forget(&mut self, key: &[u8], doomed: &[Version]) {
        if let Some(vs) = self.keys.get_mut(key) {
            vs.retain(|v| !doomed.contains(v));
            if vs.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    fn keys_in(&self, range: &KeyRange) -> impl Iterator<Item = (&Vec<u8>, &Vec<Version>)> {
        let bounds: Option<KeyBounds<'_>> = match range {
            _ if range.is_empty() => None,
            KeyRange::Single(k) => Some((Bound::Included(k), Bound::Included(k))),
            KeyRange::Span { start, end } => Some((
                Bound::Included(start),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            )),
        };
        bounds
            .into_iter()
            .flat_map(|b| self.keys.range::<[u8], _>(b))
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<KeyValue> {
    KeyValue::decode(bytes).map_err(|e| Error::Storage(format!("corrupt key-value: {e}")))
}

/// Reading versions: the index plus the table (of a read or a write transaction).
pub(crate) struct History<'a, T> {
    pub index: &'a KeyIndex,
    pub revs: &'a T,
}

impl<T: ReadableTable<(u64, u32), &'static [u8]>> History<'_, T> {
    fn fetch(&self, v: Version) -> Result<KeyValue> {
        match self.revs.get((v.rev, v.sub))? {
            Some(bytes) => decode(bytes.value()),
            None => Err(Error::Storage(format!(
                "version {}.{} is missing",
                v.rev, v.sub
            ))),
        }
    }

    /// The newest version of `key` at or below `rev`, a tombstone included.
    pub(crate) fn get_at(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>> {
        match self.index.at(key, rev.max(0) as u64) {
            Some(v) => self.fetch(v).map(Some),
            None => Ok(None),
        }
    }

    /// The live key-values of a range as of revision `rev`, in key order, until `visit` says
    /// stop.
    pub(crate) fn scan_at(
        &self,
        range: &KeyRange,
        rev: i64,
        mut visit: impl FnMut(KeyValue) -> Result<bool>,
    ) -> Result<()> {
        let rev = rev.max(0) as u64;
        for (_, versions) in self.index.keys_in(range) {
            let n = versions.partition_point(|v| v.rev <= rev);
            let Some(v) = n.checked_sub(1).map(|i| versions[i]) else {
                continue;
            };
            if v.tombstone {
                continue;
            }
            if !visit(self.fetch(v)?)? {
                break;
            }
        }
        Ok(())
    }

    /// How many live keys a range holds as of `rev`, without reading them.
    pub(crate) fn count_at(&self, range: &KeyRange, rev: i64) -> usize {
        let rev = rev.max(0) as u64;
        self.index
            .keys_in(range)
            .filter(|(_, vs)| {
                let n = vs.partition_point(|v| v.rev <= rev);
                n.checked_sub(1).is_some_and(|i| !vs[i].tombstone)
            })
            .count()
    }

    /// The versions written at revisions `from..=to` (at most `max_revisions` of them), in order.
    pub(crate) fn revisions(
        &self,
        from: i64,
        to: i64,
        max_revisions: usize,
    ) -> Result<Vec<(i64, Vec<KeyValue>)>> {
        let mut out: Vec<(i64, Vec<KeyValue>)> = Vec::new();
        if from > to {
            return Ok(out);
        }
        for row in self
            .revs
            .range((from as u64, 0u32)..=(to as u64, u32::MAX))?
        {
            let (k, v) = row?;
            let rev = k.value().0 as i64;
            match out.last_mut() {
                Some((r, kvs)) if *r == rev => kvs.push(decode(v.value())?),
                _ => {
                    if out.len() == max_revisions {
                        break;
                    }
                    out.push((rev, vec![decode(v.value())?]));
                }
            }
        }
        Ok(out)
    }
}
