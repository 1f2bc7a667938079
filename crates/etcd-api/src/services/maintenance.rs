//! etcd's Maintenance service.

use tonic::{Request, Response, Status};

use super::{Api, BoxStream, RAFT_TERM};
use crate::errors::not_yet;
use crate::pb::etcdserverpb as pb;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for Api {
    async fn alarm(&self, _: Request<pb::AlarmRequest>) -> Result<Response<pb::AlarmResponse>, Status> {
        Err(not_yet("Maintenance.Alarm"))
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self.node.status();
        Ok(Response::new(pb::StatusResponse {
            header: Some(self.header(status.revision)),
            version: strata_node::ETCD_API_VERSION.to_string(),
            db_size: status.log_bytes as i64,
            leader: self.node.member_id(),
            raft_index: status.last_log_index,
            raft_term: RAFT_TERM,
            raft_applied_index: status.last_log_index,
            errors: Vec::new(),
            db_size_in_use: status.log_bytes as i64,
            is_learner: false,
        }))
    }

    async fn defragment(&self, _: Request<pb::DefragmentRequest>) -> Result<Response<pb::DefragmentResponse>, Status> {
        Err(not_yet("Maintenance.Defragment"))
    }

    async fn hash(&self, _: Request<pb::HashRequest>) -> Result<Response<pb::HashResponse>, Status> {
        Err(not_yet("Maintenance.Hash"))
    }

    async fn hash_kv(&self, _: Request<pb::HashKvRequest>) -> Result<Response<pb::HashKvResponse>, Status> {
        Err(not_yet("Maintenance.HashKV"))
    }

    type SnapshotStream = BoxStream<pb::SnapshotResponse>;

    async fn snapshot(&self, _: Request<pb::SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(not_yet("Maintenance.Snapshot"))
    }

    async fn move_leader(&self, _: Request<pb::MoveLeaderRequest>) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        Err(not_yet("Maintenance.MoveLeader"))
    }

    async fn downgrade(&self, _: Request<pb::DowngradeRequest>) -> Result<Response<pb::DowngradeResponse>, Status> {
        Err(not_yet("Maintenance.Downgrade"))
    }
}

