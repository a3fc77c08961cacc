//! What a member asks of the leader over the peer channel, and the answers. Writes are forwarded
//! as whole batches in their protobuf encoding; the rest are small postcard records.

use serde::{Deserialize, Serialize};

use crate::raft_types::{Member, NodeId};

/// A request only the leader can serve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum LeaderCall {
    /// Propose a `cairnpb.WriteBatch`.
    Write(Vec<u8>),
    /// Confirm leadership with a quorum and return the log index a linearizable read must see.
    ReadIndex,
    /// Renew a lease; answers its TTL (0 if it does not exist).
    LeaseKeepAlive(i64),
    /// A lease's granted TTL and remaining seconds.
    LeaseTimeToLive(i64),
    /// Add a member as a learner (and promote it unless `learner`).
    AddMember {
        id: NodeId,
        member: Member,
        learner: bool,
    },
    /// Promote a learner to voter.
    PromoteMember(NodeId),
    /// Remove a member.
    RemoveMember(NodeId),
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum LeaderReply {
    /// A `cairnpb.WriteResults`.
    Written(Vec<u8>),
    /// The read index.
    ReadIndex(u64),
    /// A TTL (keep-alive).
    Ttl(i64),
    /// Granted TTL and remaining seconds; `None` if the lease does not exist.
    TimeToLive(Option<(i64, i64)>),
    /// Done.
    Done,
}
