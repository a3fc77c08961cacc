//! Store errors as gRPC statuses, with the codes and messages of etcd's `api/v3rpc/rpctypes`.
//!
//! The message is what clients match on: client-go turns a status back into `rpctypes.ErrCompacted`
//! and friends by comparing the message string, and etcdctl prints it. It is the store error's own
//! text, which is etcd's gRPC message word for word.

use cairn_kv::Error;
use tonic::{Code, Status};

/// The status that ends a stream when the server shuts down (etcd's `ErrGRPCStopped`);
/// clients retry it on another member.
pub(crate) fn stopped() -> Status {
    to_status(Error::Stopped)
}

/// The status etcd answers with for `e`.
pub fn to_status(e: Error) -> Status {
    let code = match &e {
        Error::Compacted { .. } | Error::FutureRevision | Error::LeaseTtlTooLarge => {
            Code::OutOfRange
        }
        Error::RequestTooLarge
        | Error::TooManyOps
        | Error::DuplicateKey
        | Error::EmptyKey
        | Error::ValueProvided
        | Error::LeaseProvided
        | Error::KeyNotFound
        | Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::LeaseNotFound | Error::MemberNotFound { .. } => Code::NotFound,
        Error::LeaseExists | Error::PeerUrlExists | Error::LearnerNotReady | Error::NotLearner => {
            Code::FailedPrecondition
        }
        // etcd answers a learner with Unavailable so that clients try another endpoint.
        Error::NoLeader
        | Error::LeaderChanged
        | Error::Timeout
        | Error::Stopped
        | Error::Learner => Code::Unavailable,
        Error::Membership { .. } | Error::Open(_) | Error::Peer(_) => Code::Unavailable,
        Error::Storage(_) => Code::Internal,
    };
    Status::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_follow_etcd() {
        let s = to_status(Error::Compacted {
            compact_revision: 3,
        });
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            )
        );
        let s = to_status(Error::FutureRevision);
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision"
            )
        );
        assert_eq!(
            to_status(Error::ValueProvided).code(),
            Code::InvalidArgument
        );
        let s = to_status(Error::TooManyOps);
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request"
            )
        );
        let s = to_status(Error::LeaseNotFound);
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
        assert_eq!(to_status(Error::LeaseTtlTooLarge).code(), Code::OutOfRange);
        assert_eq!(
            to_status(Error::LeaseExists).code(),
            Code::FailedPrecondition
        );
        assert_eq!(to_status(Error::NoLeader).code(), Code::Unavailable);
        assert_eq!(to_status(Error::Learner).code(), Code::Unavailable);
        assert_eq!(
            to_status(Error::MemberNotFound { id: 1 }).code(),
            Code::NotFound
        );
    }
}
