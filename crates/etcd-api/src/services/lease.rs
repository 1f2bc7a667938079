//! etcd's Lease service: LeaseGrant and LeaseRevoke go through the node's writer (they are
//! logged); LeaseKeepAlive, LeaseTimeToLive and LeaseLeases read and renew the node's lessor, as
//! etcd's leader serves them without a proposal.
//!
//! etcd's answers kept here: a keep-alive of an unknown (or expired and revoked) lease answers
//! TTL 0 rather than an error, one response per request; a TimeToLive of an unknown lease answers
//! TTL -1 with the header filled; every header carries the revision current when it was made.

use strata_node::{WriteRequest, WriteResponse};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Api, BoxStream};
use crate::convert;
use crate::pb::etcdserverpb as pb;

/// Keep-alive answers waiting for a slow client, at most, before the stream stops reading.
const KEEP_ALIVE_RESPONSES_BUFFERED_MAX: usize = 16;

#[tonic::async_trait]
impl pb::lease_server::Lease for Api {
    async fn lease_grant(&self, request: Request<pb::LeaseGrantRequest>) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let request = request.into_inner();
        let WriteResponse::LeaseGrant { id, ttl, revision } = self.write(WriteRequest::LeaseGrant { id: request.id, ttl: request.ttl }).await? else {
            unreachable!("the writer answers a lease grant with a lease grant")
        };
        Ok(Response::new(pb::LeaseGrantResponse { header: Some(self.header(revision)), id, ttl, error: String::new() }))
    }

    async fn lease_revoke(&self, request: Request<pb::LeaseRevokeRequest>) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let WriteResponse::LeaseRevoke { revision } = self.write(WriteRequest::LeaseRevoke { id: request.into_inner().id }).await? else {
            unreachable!("the writer answers a lease revoke with a lease revoke")
        };
        Ok(Response::new(pb::LeaseRevokeResponse { header: Some(self.header(revision)) }))
    }

    type LeaseKeepAliveStream = BoxStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(&self, request: Request<Streaming<pb::LeaseKeepAliveRequest>>) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = request.into_inner();
        let (responses, receiver) = tokio::sync::mpsc::channel(KEEP_ALIVE_RESPONSES_BUFFERED_MAX);
        let api = self.clone();
        tokio::spawn(async move {
            loop {
                let request = match requests.message().await {
                    Ok(Some(request)) => request,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = responses.send(Err(status)).await;
                        return;
                    }
                };
                // As etcd: the header is made before the renewal, so its revision is never newer
                // than the state the keep-alive saw.
                let header = api.header(api.node.revision());
                // etcd answers TTL 0, not an error, for a lease it does not know (any more).
                let ttl = api.node.lease_renew(request.id).await.unwrap_or(0);
                let response = pb::LeaseKeepAliveResponse { header: Some(header), id: request.id, ttl };
                if responses.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn lease_time_to_live(&self, request: Request<pb::LeaseTimeToLiveRequest>) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let request = request.into_inner();
        let header = self.header(self.node.revision());
        let response = match self.node.lease_time_to_live(request.id, request.keys) {
            Some(shown) => convert::lease_time_to_live_response(shown, header),
            None => convert::lease_time_to_live_unknown(request.id, header),
        };
        Ok(Response::new(response))
    }

    async fn lease_leases(&self, _: Request<pb::LeaseLeasesRequest>) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let header = self.header(self.node.revision());
        Ok(Response::new(convert::lease_leases_response(self.node.leases(), header)))
    }
}
