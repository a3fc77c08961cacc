//! The Cluster service: the member list and membership changes.
//!
//! In cairn a server normally joins through the HTTPS join endpoint, which also hands it its
//! certificates; `MemberAdd` here only registers a member's peer URL (as etcd does before the new
//! member starts), so it is best effort: the new member still has to be started with the cluster's
//! certificates. `MemberUpdate` is not supported: a member's addresses change by rejoining.

use std::time::Duration;

use cairn_kv::pb::etcdserverpb::{
    Member as PbMember, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use cairn_kv::{Error, Member, MemberInfo, Store};
use tonic::{Request, Response, Status};

use crate::header;
use crate::rpc::etcdserverpb::cluster_server::Cluster;
use crate::status::to_status;

/// How long `MemberAdd` waits for the membership change. Adding a member waits for it to catch
/// up, which never happens for a member that has not been started; etcd answers at once.
const ADD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `etcdserverpb.Cluster`.
pub(crate) struct ClusterService {
    store: Store,
}

impl ClusterService {
    pub(crate) fn new(store: Store) -> Self {
        ClusterService { store }
    }

    fn members(&self) -> Vec<PbMember> {
        self.store.members().into_iter().map(to_pb).collect()
    }
}

/// A member as etcd lists it; an address not known yet is left out.
fn to_pb(m: MemberInfo) -> PbMember {
    let url = |u: String| if u.is_empty() { Vec::new() } else { vec![u] };
    PbMember {
        id: m.id,
        name: m.member.name,
        peer_ur_ls: url(m.member.peer_url),
        client_ur_ls: url(m.member.client_url),
        is_learner: m.is_learner,
    }
}

/// A new member's ID: random and non-zero, like the store's own.
fn new_member_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let req = request.into_inner();
        let Some(peer_url) = req.peer_ur_ls.first().cloned() else {
            return Err(Status::invalid_argument(
                "etcdserver: given member URLs are invalid",
            ));
        };
        let known = self.store.members();
        if known
            .iter()
            .any(|m| req.peer_ur_ls.contains(&m.member.peer_url))
        {
            return Err(to_status(Error::PeerUrlExists));
        }
        let id = new_member_id();
        let member = Member {
            peer_url,
            ..Member::default()
        };
        let add = self.store.add_member(id, member.clone(), req.is_learner);
        match tokio::time::timeout(ADD_TIMEOUT, add).await {
            Err(_) => return Err(to_status(Error::Timeout)),
            Ok(result) => result.map_err(to_status)?,
        }
        let added = PbMember {
            id,
            name: String::new(),
            peer_ur_ls: req.peer_ur_ls,
            client_ur_ls: Vec::new(),
            is_learner: req.is_learner,
        };
        Ok(Response::new(MemberAddResponse {
            header: Some(header::now(&self.store)),
            member: Some(added),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.store
            .remove_member(request.into_inner().id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(header::now(&self.store)),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(Status::unimplemented(
            "cairn: members change their addresses by rejoining",
        ))
    }

    /// The members as this member knows them. `linearizable` is not honoured: membership is
    /// applied from the Raft log on every member, so the list is at most one entry behind.
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: Some(header::now(&self.store)),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        self.store
            .promote_member(request.into_inner().id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(header::now(&self.store)),
            members: self.members(),
        }))
    }
}
