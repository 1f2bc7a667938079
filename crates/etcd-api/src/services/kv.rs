//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact, validated as etcd's `v3rpc` does.

use prost::Message;
use strata_node::{WriteRequest, WriteResponse};
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;
use crate::errors::kv_status;
use crate::pb::etcdserverpb as pb;

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

