//! Snapshots of the state machine: a self-contained file that holds the whole multi-version key
//! space (history included, so watches and past reads keep working on the member that installs
//! it), the leases and the revision counters. Raft ships it to lagging or new members, and
//! `etcdctl snapshot save` / `cairn etcd-snapshot` write the same bytes to a file.
//!
//! Format: the magic line, length-prefixed postcard records, an empty record, zero padding to a
//! multiple of 512 bytes, then the SHA-256 of everything before it.

use redb::ReadableDatabase;
use redb::{Database, Durability, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::raft_types::{LogId, StoredMembership};
use crate::state_machine::{Position, read_position};
use crate::tables::{self, LEASE_KEYS, LEASES, META, REVISIONS, meta};

const MAGIC: &[u8] = b"cairn-snapshot-v2\n";

#[derive(Serialize, Deserialize)]
enum Record {
    Revision {
        revision: i64,
        compact_revision: i64,
        compacted_upto: i64,
    },
    Version {
        revision: u64,
        sub: u32,
        kv: Vec<u8>,
    },
    Lease {
        id: i64,
        ttl: i64,
    },
    LeaseKey {
        id: i64,
        key: Vec<u8>,
    },
}

fn push(out: &mut Vec<u8>, r: &Record) -> Result<()> {
    let bytes = tables::encode(r)?;
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Dumps the state machine from one consistent read.
pub(crate) fn dump(db: &Database) -> Result<(Position, Vec<u8>)> {
    let txn = db.begin_read()?;
    let pos = read_position(&txn.open_table(META)?)?;
    let mut out = MAGIC.to_vec();
    push(
        &mut out,
        &Record::Revision {
            revision: pos.revision,
            compact_revision: pos.compact_revision,
            compacted_upto: pos.compacted_upto,
        },
    )?;
    for e in txn.open_table(REVISIONS)?.iter()? {
        let (k, v) = e?;
        let (revision, sub) = k.value();
        push(
            &mut out,
            &Record::Version {
                revision,
                sub,
                kv: v.value().to_vec(),
            },
        )?;
    }
    for e in txn.open_table(LEASES)?.iter()? {
        let (k, v) = e?;
        push(
            &mut out,
            &Record::Lease {
                id: k.value(),
                ttl: v.value(),
            },
        )?;
    }
    for e in txn.open_table(LEASE_KEYS)?.iter()? {
        let (k, _) = e?;
        let (id, key) = k.value();
        push(
            &mut out,
            &Record::LeaseKey {
                id,
                key: key.to_vec(),
            },
        )?;
    }
    // An empty record ends the records; zeros pad the body to whole 512-byte blocks, the shape
    // etcdctl checks before it trusts the trailing checksum.
    out.extend_from_slice(&0u32.to_le_bytes());
    out.resize(out.len().div_ceil(512) * 512, 0);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok((pos, out))
}

/// Checks a snapshot's magic and checksum and returns its records' bytes.
fn verified(bytes: &[u8]) -> Result<&[u8]> {
    let bad = |why: &str| Error::InvalidArgument(format!("invalid snapshot: {why}"));
    if bytes.len() < MAGIC.len() + 32 || !bytes.starts_with(MAGIC) {
        return Err(bad("not a cairn snapshot"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(bad("checksum mismatch (truncated or corrupt)"));
    }
    Ok(&body[MAGIC.len()..])
}

fn records(mut body: &[u8]) -> impl Iterator<Item = Result<Record>> + '_ {
    std::iter::from_fn(move || {
        if body.is_empty() {
            return None;
        }
        if body.len() < 4 {
            return Some(Err(Error::InvalidArgument(
                "invalid snapshot: truncated record".into(),
            )));
        }
        let len = u32::from_le_bytes(body[..4].try_into().unwrap_or_default()) as usize;
        if len == 0 {
            return None;
        }
        if body.len() < 4 + len {
            return Some(Err(Error::InvalidArgument(
                "invalid snapshot: truncated record".into(),
            )));
        }
        let rec = tables::decode(&body[4..4 + len]);
        body = &body[4 + len..];
        Some(rec)
    })
}

/// Replaces the state machine with a snapshot's content, durably. `last_applied` and `membership`
/// come from Raft's snapshot metadata (`None` when restoring a file into a new cluster: then the
/// snapshot's own are dropped and the caller bootstraps a fresh membership).
pub(crate) fn install(
    db: &Database,
    bytes: &[u8],
    last_applied: Option<LogId>,
    membership: &StoredMembership,
) -> Result<()> {
    let body = verified(bytes)?;
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.delete_table(REVISIONS)?;
    txn.delete_table(LEASES)?;
    txn.delete_table(LEASE_KEYS)?;
    {
        let mut revs = txn.open_table(REVISIONS)?;
        let mut leases = txn.open_table(LEASES)?;
        let mut lease_keys = txn.open_table(LEASE_KEYS)?;
        let mut meta_t = txn.open_table(META)?;
        for rec in records(body) {
            match rec? {
                Record::Revision {
                    revision,
                    compact_revision,
                    compacted_upto,
                } => {
                    tables::put_meta(&mut meta_t, meta::REVISION, &revision)?;
                    tables::put_meta(&mut meta_t, meta::COMPACT_REVISION, &compact_revision)?;
                    tables::put_meta(&mut meta_t, meta::COMPACTED_UPTO, &compacted_upto)?;
                }
                Record::Version { revision, sub, kv } => {
                    revs.insert((revision, sub), kv.as_slice())?;
                }
                Record::Lease { id, ttl } => {
                    leases.insert(id, ttl)?;
                }
                Record::LeaseKey { id, key } => {
                    lease_keys.insert((id, key.as_slice()), ())?;
                }
            }
        }
        tables::put_meta(&mut meta_t, meta::LAST_APPLIED, &last_applied)?;
        tables::put_meta(&mut meta_t, meta::MEMBERSHIP, membership)?;
    }
    txn.commit()?;
    Ok(())
}

/// The store revision the database holds.
pub(crate) fn revision_of(db: &Database) -> Result<i64> {
    let txn = db.begin_read()?;
    Ok(read_position(&txn.open_table(META)?)?.revision)
}
