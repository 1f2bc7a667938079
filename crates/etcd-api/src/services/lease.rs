//! etcd's Lease service.

use tonic::Streaming;

use tonic::{Request, Response, Status};

use super::{Api, BoxStream};
use crate::errors::not_yet;
use crate::pb::etcdserverpb as pb;

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

