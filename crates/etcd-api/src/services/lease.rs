//! etcd's Lease service: LeaseGrant and LeaseRevoke go through the node's writer (they are
//! logged); LeaseKeepAlive, LeaseTimeToLive and LeaseLeases read and renew the node's lessor, as
//! etcd's leader serves them without a proposal.
//!
//! Auth, as etcd: LeaseGrant reads the token (refusing a bad one) but needs no permission;
//! LeaseRevoke needs write permission on every key attached to the lease (checked by the writer);
//! LeaseTimeToLive with `keys` needs read permission on them (etcd 3.5's check; 3.4 has none);
//! keep-alives and LeaseLeases are not checked at all.
//!
//! etcd's answers kept here: a keep-alive of an unknown (or expired and revoked) lease answers
//! TTL 0 rather than an error, one response per request; a TimeToLive of an unknown lease answers
//! TTL -1 with the header filled; every header carries the revision current when it was made.

use strata_node::{WriteRequest, WriteResponse};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Api, BoxStream};
use crate::convert;
use crate::errors::auth_status;
use crate::pb::etcdserverpb as pb;

/// Keep-alive answers waiting for a slow client, at most, before the stream stops reading.
const KEEP_ALIVE_RESPONSES_BUFFERED_MAX: usize = 16;

#[tonic::async_trait]
impl pb::lease_server::Lease for Api {
    async fn lease_grant(&self, request: Request<pb::LeaseGrantRequest>) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let request = request.into_inner();
        let WriteResponse::LeaseGrant { id, ttl, revision } = self.write_as(WriteRequest::LeaseGrant { id: request.id, ttl: request.ttl }, caller).await? else {
            unreachable!("the writer answers a lease grant with a lease grant")
        };
        Ok(Response::new(pb::LeaseGrantResponse { header: Some(self.header(revision)), id, ttl, error: String::new() }))
    }

    async fn lease_revoke(&self, request: Request<pb::LeaseRevokeRequest>) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let WriteResponse::LeaseRevoke { revision } = self.write_as(WriteRequest::LeaseRevoke { id: request.into_inner().id }, caller).await? else {
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
        if request.get_ref().keys {
            self.check_lease_keys_readable(&request).map_err(auth_status)?;
        }
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

impl Api {
    /// etcd 3.5's `checkLeaseTimeToLive`: with auth enabled, a caller (else `user name is empty`)
    /// with read permission on every key attached to the lease.
    fn check_lease_keys_readable(&self, request: &Request<pb::LeaseTimeToLiveRequest>) -> Result<(), strata_auth::AuthError> {
        let auth = self.node.auth_state();
        if !auth.is_enabled() {
            return Ok(());
        }
        let caller = self.caller(request)?.ok_or(strata_auth::AuthError::UserEmpty)?;
        let keys = self.node.lease_time_to_live(request.get_ref().id, true).map(|shown| shown.keys).unwrap_or_default();
        keys.iter().try_for_each(|key| auth.is_range_permitted(Some(&caller), key, b""))
    }
}
