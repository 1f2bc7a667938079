//! etcd's six gRPC services on top of a [`Node`], one file each. They share [`Api`]: the node, the
//! member's identity and the request limits. Calls Strata does not serve yet answer
//! `Unimplemented` with a message naming what is missing.

use std::pin::Pin;
use std::sync::Arc;

use strata_node::{Node, WriteRequest, WriteResponse};
use tokio_stream::Stream;
use tonic::Status;

use crate::errors::{api_status, node_status, ApiError};
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

pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

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

mod auth;
mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;
