//! etcd's Cluster service, answered as a single-member etcd answers it.

use tonic::{Request, Response, Status};

use super::Api;
use crate::errors::not_yet;
use crate::pb::etcdserverpb as pb;

#[tonic::async_trait]
impl pb::cluster_server::Cluster for Api {
    async fn member_add(&self, _: Request<pb::MemberAddRequest>) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(not_yet("Cluster.MemberAdd"))
    }

    async fn member_remove(&self, _: Request<pb::MemberRemoveRequest>) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        Err(not_yet("Cluster.MemberRemove"))
    }

    async fn member_update(&self, _: Request<pb::MemberUpdateRequest>) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(not_yet("Cluster.MemberUpdate"))
    }

    async fn member_list(&self, _: Request<pb::MemberListRequest>) -> Result<Response<pb::MemberListResponse>, Status> {
        // etcd's cluster service fills no revision in its headers.
        Ok(Response::new(pb::MemberListResponse { header: Some(self.header(0)), members: vec![self.member()] }))
    }

    async fn member_promote(&self, _: Request<pb::MemberPromoteRequest>) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        Err(not_yet("Cluster.MemberPromote"))
    }
}

