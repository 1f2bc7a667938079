//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact, validated as etcd's `v3rpc` does.
//! With auth enabled, reads (Range, read-only Txn) are checked here against the durable auth
//! state, as etcd checks serialized reads; writes are checked by the node's writer, as etcd
//! checks them when applying. Either way the request's own validation comes first and the
//! token is read after it, as in etcd. Compaction needs no permission (etcd checks none).

use prost::Message;
use strata_node::{WriteRequest, WriteResponse};
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;
use crate::errors::{auth_status, kv_status};
use crate::pb::etcdserverpb as pb;

#[tonic::async_trait]
impl pb::kv_server::Kv for Api {
    async fn range(&self, request: Request<pb::RangeRequest>) -> Result<Response<pb::RangeResponse>, Status> {
        let caller = self.caller(&request);
        let request = convert::range_request(request.into_inner());
        strata_mvcc::validate_range(&request).map_err(kv_status)?;
        let caller = caller.map_err(auth_status)?;
        let response = self
            .node
            .serialized_read(caller.as_ref(), |auth| auth.is_range_permitted(caller.as_ref(), &request.key, &request.range_end), || {
                self.node.range(&request)
            })
            .map_err(auth_status)?
            .map_err(kv_status)?;
        let header = self.header(response.revision);
        Ok(Response::new(convert::range_response(response, header)))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::put_request(request);
        // As etcd: the request is checked first, its size only when it is proposed.
        strata_mvcc::validate_put(&request).map_err(kv_status)?;
        self.check_size(encoded_len)?;
        let caller = caller.map_err(auth_status)?;
        let WriteResponse::Put(response) = self.write_as(WriteRequest::Put(request), caller).await? else {
            unreachable!("the writer answers a put with a put")
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::put_response(response, header)))
    }

    async fn delete_range(&self, request: Request<pb::DeleteRangeRequest>) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::delete_range_request(request);
        strata_mvcc::validate_delete_range(&request).map_err(kv_status)?;
        self.check_size(encoded_len)?;
        let caller = caller.map_err(auth_status)?;
        let WriteResponse::DeleteRange(response) = self.write_as(WriteRequest::DeleteRange(request), caller).await? else {
            unreachable!("the writer answers a delete with a delete")
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::delete_range_response(response, header)))
    }

    async fn txn(&self, request: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let request = convert::txn_request(request);
        strata_mvcc::validate_txn(&request, self.info.txn_ops_max).map_err(kv_status)?;
        let response = if request.is_read_only() {
            let caller = caller.map_err(auth_status)?;
            self.node
                .serialized_read(caller.as_ref(), |auth| strata_node::check_txn(auth, caller.as_ref(), &request), || self.node.txn_read(&request))
                .map_err(auth_status)?
                .map_err(kv_status)?
        } else {
            self.check_size(encoded_len)?;
            let caller = caller.map_err(auth_status)?;
            let WriteResponse::Txn(response) = self.write_as(WriteRequest::Txn(request), caller).await? else {
                unreachable!("the writer answers a txn with a txn")
            };
            response
        };
        let header = self.header(response.revision);
        Ok(Response::new(convert::txn_response(response, header)))
    }

    async fn compact(&self, request: Request<pb::CompactionRequest>) -> Result<Response<pb::CompactionResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        self.check_size(request.encoded_len())?;
        // etcd reads the token (refusing a bad one) but checks no permission.
        let caller = caller.map_err(auth_status)?;
        let WriteResponse::Compact(revision) =
            self.write_as(WriteRequest::Compact { revision: request.revision, physical: request.physical }, caller).await?
        else {
            unreachable!("the writer answers a compaction with a compaction")
        };
        Ok(Response::new(pb::CompactionResponse { header: Some(self.header(revision)) }))
    }
}

