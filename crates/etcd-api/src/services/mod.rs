//! etcd's six gRPC services on top of a [`Node`], one file each. They share [`Api`]: the node, the
//! member's identity and the request limits. Calls Strata does not serve yet answer
//! `Unimplemented` with a message naming what is missing. Who a request is from comes from its
//! [`Credentials`] (a token, or a verified client certificate's [`CertificateUser`]), resolved
//! as etcd's `AuthInfoFromCtx` resolves them; each service applies etcd's checks for its RPCs.

use std::pin::Pin;
use std::sync::Arc;

use strata_auth::{AuthError, AuthInfo};
use strata_node::{Caller, Node, WriteRequest, WriteResponse};
use tokio_stream::Stream;
use tonic::Status;

use crate::errors::{api_status, node_status, ApiError};
use crate::pb::etcdserverpb as pb;

/// A single etcd member elects itself leader at term 2; clients only display it.
pub const RAFT_TERM: u64 = 2;

/// The gRPC metadata that carries an auth token (etcd's `rpctypes.TokenFieldNameGRPC`).
pub const TOKEN_METADATA: &str = "token";
/// The same from the HTTP/JSON gateway (etcd's `TokenFieldNameSwagger`).
pub const TOKEN_METADATA_GATEWAY: &str = "authorization";

/// The common name of the client certificate a TLS connection's handshake verified (with
/// `--client-cert-auth`). The listener puts it in each request's extensions; as in etcd, the auth
/// layer takes it as the user name when a request carries no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateUser(pub String);

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

    /// A client's write: the writer checks it against the auth state.
    async fn write_as(&self, request: WriteRequest, caller: Option<AuthInfo>) -> Result<WriteResponse, Status> {
        self.node.write_as(request, Caller::Client(caller)).await.map_err(node_status)
    }

    /// etcd's `AuthInfoFromCtx`: who a request is from (see [`Credentials`]).
    fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Option<AuthInfo>, AuthError> {
        self.resolve(&Credentials::of(request))
    }

    /// The user and auth revision credentials stand for now: a token through the token provider
    /// (or `invalid auth token`), else a verified certificate's common name, else nobody
    /// (`None`), which auth-enabled checks refuse.
    fn resolve(&self, credentials: &Credentials) -> Result<Option<AuthInfo>, AuthError> {
        match (&credentials.token, &credentials.certificate_user) {
            (Some(Some(token)), _) => self.node.auth_info_from_token(token).map(Some),
            (Some(None), _) => Err(AuthError::InvalidAuthToken),
            (None, Some(user)) => Ok(Some(self.node.auth_info_from_certificate(user))),
            (None, None) => Ok(None),
        }
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

/// What a request carries to say who it is from: its `token` (or the gateway's `authorization`)
/// metadata, and the common name of a verified client certificate the listener put in its
/// extensions. Kept as they came for a stream, whose creates are each checked when they arrive.
#[derive(Clone, Debug, Default)]
pub(crate) struct Credentials {
    /// `Some(None)`: a token that is not ASCII.
    token: Option<Option<String>>,
    certificate_user: Option<String>,
}

impl Credentials {
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Credentials {
        let metadata = request.metadata();
        let token = metadata.get(TOKEN_METADATA).or_else(|| metadata.get(TOKEN_METADATA_GATEWAY)).map(|token| token.to_str().ok().map(str::to_string));
        Credentials { token, certificate_user: request.extensions().get::<CertificateUser>().map(|user| user.0.clone()) }
    }
}

mod admin;
mod auth;
mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;
