//! etcd's six gRPC services on top of a [`Node`]. KV, Maintenance.Status and Cluster.MemberList
//! are served; the rest answer `Unimplemented` with a message naming what is missing until their
//! issues land (watch, lease, auth, the other maintenance calls).

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use strata_node::{Node, WriteRequest, WriteResponse};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::errors::{api_status, kv_status, node_status, not_yet, ApiError};
use crate::pb::etcdserverpb as pb;

/// A single etcd member elects itself leader at term 2; clients only display it.
pub const RAFT_TERM: u64 = 2;

/// What a node serves under: its identity, URLs and request limits.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub request_bytes_max: u64,
    pub txn_ops_max: usize,
}

/// The state every service shares. Cloning is cheap.
#[derive(Clone)]
pub struct Api {
    node: Arc<Node>,
    info: Arc<ServerInfo>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl Api {
    pub fn new(node: Arc<Node>, info: ServerInfo) -> Api {
        Api { node, info: Arc::new(info) }
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn header(&self, revision: i64) -> pb::ResponseHeader {
        pb::ResponseHeader { cluster_id: self.node.cluster_id(), member_id: self.node.member_id(), revision, raft_term: RAFT_TERM }
    }

    /// etcd refuses a proposal whose encoding exceeds `--max-request-bytes`; it checks this only
    /// when proposing, after the request's own checks.
    fn check_size(&self, encoded_len: usize) -> Result<(), Status> {
        if encoded_len as u64 > self.info.request_bytes_max {
            return Err(api_status(ApiError::RequestTooLarge));
        }
        Ok(())
    }

    async fn write(&self, request: WriteRequest) -> Result<WriteResponse, Status> {
        self.node.write(request).await.map_err(node_status)
    }

    fn member(&self) -> pb::Member {
        pb::Member {
            id: self.node.member_id(),
            name: self.info.name.clone(),
            peer_ur_ls: self.info.peer_urls.clone(),
            client_ur_ls: self.info.client_urls.clone(),
            is_learner: false,
        }
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for Api {
    async fn range(&self, request: Request<pb::RangeRequest>) -> Result<Response<pb::RangeResponse>, Status> {
        let request = convert::range_request(request.into_inner());
        strata_mvcc::validate_range(&request).map_err(kv_status)?;
        let response = self.node.range(&request).map_err(kv_status)?;
        let header = self.header(response.revision);
        Ok(Response::new(convert::range_response(response, header)))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::put_request(request);
        // As etcd: the request is checked first, its size only when it is proposed.
        strata_mvcc::validate_put(&request).map_err(kv_status)?;
        self.check_size(encoded_len)?;
        let WriteResponse::Put(response) = self.write(WriteRequest::Put(request)).await? else {
            unreachable!("the writer answers a put with a put")
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::put_response(response, header)))
    }

    async fn delete_range(&self, request: Request<pb::DeleteRangeRequest>) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::delete_range_request(request);
        strata_mvcc::validate_delete_range(&request).map_err(kv_status)?;
        self.check_size(encoded_len)?;
        let WriteResponse::DeleteRange(response) = self.write(WriteRequest::DeleteRange(request)).await? else {
            unreachable!("the writer answers a delete with a delete")
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::delete_range_response(response, header)))
    }

    async fn txn(&self, request: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::txn_request(request);
        strata_mvcc::validate_txn(&request, self.info.txn_ops_max).map_err(kv_status)?;
        let response = if request.is_read_only() {
            self.node.txn_read(&request).map_err(kv_status)?
        } else {
            self.check_size(encoded_len)?;
            let WriteResponse::Txn(response) = self.write(WriteRequest::Txn(request)).await? else {
                unreachable!("the writer answers a txn with a txn")
            };
            response
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::txn_response(response, header)))
    }

    async fn compact(&self, request: Request<pb::CompactionRequest>) -> Result<Response<pb::CompactionResponse>, Status> {
        let request = request.into_inner();
        self.check_size(request.encoded_len())?;
        let WriteResponse::Compact(revision) =
            self.write(WriteRequest::Compact { revision: request.revision, physical: request.physical }).await?
        else {
            unreachable!("the writer answers a compaction with a compaction")
        };
        Ok(Response::new(pb::CompactionResponse { header: Some(self.header(revision)) }))
    }
}

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

#[tonic::async_trait]
impl pb::watch_server::Watch for Api {
    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(&self, _: Request<Streaming<pb::WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        Err(not_yet("Watch"))
    }
}

#[tonic::async_trait]
impl pb::lease_server::Lease for Api {
    async fn lease_grant(&self, _: Request<pb::LeaseGrantRequest>) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        Err(not_yet("Lease.LeaseGrant"))
    }

    async fn lease_revoke(&self, _: Request<pb::LeaseRevokeRequest>) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        Err(not_yet("Lease.LeaseRevoke"))
    }

    type LeaseKeepAliveStream = BoxStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(&self, _: Request<Streaming<pb::LeaseKeepAliveRequest>>) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        Err(not_yet("Lease.LeaseKeepAlive"))
    }

    async fn lease_time_to_live(&self, _: Request<pb::LeaseTimeToLiveRequest>) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        Err(not_yet("Lease.LeaseTimeToLive"))
    }

    async fn lease_leases(&self, _: Request<pb::LeaseLeasesRequest>) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        Err(not_yet("Lease.LeaseLeases"))
    }
}

macro_rules! auth_not_yet {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        #[tonic::async_trait]
        impl pb::auth_server::Auth for Api {
            $(
                async fn $method(&self, _: Request<pb::$request>) -> Result<Response<pb::$response>, Status> {
                    Err(not_yet(concat!("Auth.", stringify!($request))))
                }
            )*
        }
    };
}

auth_not_yet! {
    auth_enable(AuthEnableRequest) -> AuthEnableResponse;
    auth_disable(AuthDisableRequest) -> AuthDisableResponse;
    auth_status(AuthStatusRequest) -> AuthStatusResponse;
    authenticate(AuthenticateRequest) -> AuthenticateResponse;
    user_add(AuthUserAddRequest) -> AuthUserAddResponse;
    user_get(AuthUserGetRequest) -> AuthUserGetResponse;
    user_list(AuthUserListRequest) -> AuthUserListResponse;
    user_delete(AuthUserDeleteRequest) -> AuthUserDeleteResponse;
    user_change_password(AuthUserChangePasswordRequest) -> AuthUserChangePasswordResponse;
    user_grant_role(AuthUserGrantRoleRequest) -> AuthUserGrantRoleResponse;
    user_revoke_role(AuthUserRevokeRoleRequest) -> AuthUserRevokeRoleResponse;
    role_add(AuthRoleAddRequest) -> AuthRoleAddResponse;
    role_get(AuthRoleGetRequest) -> AuthRoleGetResponse;
    role_list(AuthRoleListRequest) -> AuthRoleListResponse;
    role_delete(AuthRoleDeleteRequest) -> AuthRoleDeleteResponse;
    role_grant_permission(AuthRoleGrantPermissionRequest) -> AuthRoleGrantPermissionResponse;
    role_revoke_permission(AuthRoleRevokePermissionRequest) -> AuthRoleRevokePermissionResponse;
}
