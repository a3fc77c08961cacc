//! The Raft type configuration: what a log entry carries, what applying it returns, and how a
//! member is addressed.

use std::fmt;
use std::io::Cursor;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::pb::cairnpb;

/// A member's ID: etcd's member ID, also the Raft node ID.
pub type NodeId = u64;

/// How to reach a member, stored in the Raft membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name (the node name).
    pub name: String,
    /// Where its Raft peer service listens (`https://IP:2380`).
    pub peer_url: String,
    /// Where its etcd API listens (`http://IP:2379`).
    pub client_url: String,
    /// Where its HTTPS API (join endpoints, later Kubernetes) listens (`https://IP:6443`).
    pub api_url: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.peer_url)
    }
}

/// The payload of a normal log entry: a batch of client writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proposal(pub cairnpb::WriteBatch);

/// What applying one entry produced: one result per write of the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied(pub cairnpb::WriteResults);

/// Serde through protobuf: the log holds the same bytes the etcd wire format would.
macro_rules! serde_via_prost {
    ($outer:ident, $inner:ty) => {
        impl Serialize for $outer {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0.encode_to_vec())
            }
        }
        impl<'de> Deserialize<'de> for $outer {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes: serde_bytes_vec::ByteBuf = Deserialize::deserialize(d)?;
                <$inner>::decode(bytes.0.as_slice())
                    .map($outer)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_prost!(Proposal, cairnpb::WriteBatch);
serde_via_prost!(Applied, cairnpb::WriteResults);

mod serde_bytes_vec {
    //! A byte buffer that deserializes from serde bytes (postcard) or a sequence (self-describing
    //! formats), without a dependency on `serde_bytes`.
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

    pub(super) struct ByteBuf(pub Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(ByteBuf(out))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

openraft::declare_raft_types!(
    /// cairn's Raft types.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = Member,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log ID.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// A storage error as openraft wants it.
pub type StorageError = openraft::StorageError<NodeId>;
/// Stored membership.
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
