//! The redb tables that hold the state machine: etcd's multi-version key space, leases, and their
//! bookkeeping. (The Raft log and vote live in the write-ahead log, `log_store.rs`.)

use redb::TableDefinition;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// Small records by name (see the `meta` keys below), postcard-encoded.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Every version still inside the history window, the newest included, in the order written:
/// (revision, position within the revision) → `mvccpb.KeyValue`. A deletion is a tombstone
/// (version 0). The in-memory `KeyIndex` (`history.rs`) finds a key's versions here.
pub(crate) const REVISIONS: TableDefinition<(u64, u32), &[u8]> =
    TableDefinition::new("kv_revisions");
/// Granted leases: ID → granted TTL in seconds.
pub(crate) const LEASES: TableDefinition<i64, i64> = TableDefinition::new("leases");
/// Keys attached to a lease: (lease ID, key).
pub(crate) const LEASE_KEYS: TableDefinition<(i64, &[u8]), ()> = TableDefinition::new("lease_keys");

/// Keys of the `META` table.
pub(crate) mod meta {
    /// The last applied log ID.
    pub(crate) const LAST_APPLIED: &str = "sm.last_applied";
    /// The membership as of the last applied entry.
    pub(crate) const MEMBERSHIP: &str = "sm.membership";
    /// The store revision.
    pub(crate) const REVISION: &str = "sm.revision";
    /// The compacted revision: reads below it are refused.
    pub(crate) const COMPACT_REVISION: &str = "sm.compact_revision";
    /// Revisions below this one have been physically removed.
    pub(crate) const COMPACTED_UPTO: &str = "sm.compacted_upto";
    /// This member's identity: node ID and cluster ID.
    pub(crate) const IDENTITY: &str = "member.identity";
}

/// Encodes a record (postcard): `META` values, log entries, peer messages.
pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::Storage(format!("encode: {e}")))
}

/// Decodes a record (postcard).
pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| Error::Storage(format!("decode: {e}")))
}

/// Reads a `META` record.
pub(crate) fn get_meta<T: DeserializeOwned>(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

/// Writes a `META` record.
pub(crate) fn put_meta<T: Serialize>(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    v: &T,
) -> Result<()> {
    table.insert(key, encode(v)?.as_slice())?;
    Ok(())
}

/// Creates every table so that readers never meet a missing one.
pub(crate) fn create_all(db: &redb::Database) -> Result<()> {
    let txn = db.begin_write()?;
    {
        txn.open_table(META)?;
        txn.open_table(REVISIONS)?;
        txn.open_table(LEASES)?;
        txn.open_table(LEASE_KEYS)?;
    }
    txn.commit()?;
    Ok(())
}
