//! etcd's HTTP/JSON gateway: the gRPC API as JSON over HTTP on the client URLs, as etcd 3.4's
//! grpc-gateway (v1) serves it: `POST /v3/kv/range`, `/v3/watch`, … and the same under `/v3beta/`.
//!
//! Each endpoint decodes its JSON body into the RPC's request, calls the same service method on
//! [`Api`] that gRPC calls (so validation, errors and auth are shared) and answers with the
//! response as JSON, using the mapping pbjson-build generates from the `.proto` files with
//! grpc-gateway's `JSONPb{OrigName: true}` options (proto field names, int64 as strings, bytes as
//! base64, enums by name, default values omitted; both name styles accepted on input).
//!
//! Invariants:
//! - The body is etcd's byte for byte: Go's escaping of `<`, `>`, `&`, U+2028/9, `\b` and `\f`
//!   ([`GoFormatter`]); errors are `{"error":M,"message":M,"code":C}` with grpc-gateway's HTTP
//!   status for the gRPC code; an unknown path is 404 and a known one with another method 405,
//!   in Go's plain-text words; every response carries etcd's CORS headers.
//! - Streams (`/v3/watch`, `/v3/lease/keepalive`, `/v3/maintenance/snapshot`) answer nothing
//!   until the first message, as grpc-gateway waits for the gRPC headers that etcd sends with it,
//!   then one `{"result":…}` line per message; an error ends the stream with `{"error":{…}}`.
//!   The request body of a bidirectional stream is a sequence of JSON requests; the stream's
//!   sending side closes when the body ends or stops parsing.
//! - The `Authorization` header reaches the service as the `token` metadata, `Grpc-Metadata-*`
//!   headers as metadata, so auth applies as on gRPC.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};
use tonic::{Code, Status};

use crate::errors::transport_status;
use crate::pb::etcdserverpb as pb;
use crate::services::Api;

/// A JSON body may be this many times the gRPC receive limit before the gateway refuses it
/// unread: base64 and field names make JSON several times larger than protobuf.
pub const JSON_BYTES_PER_MESSAGE_BYTE_MAX: usize = 16;

/// Requests of a bidirectional stream decoded ahead of the service.
const STREAM_REQUESTS_QUEUED_MAX: usize = 16;

/// gRPC's frame header: a compression flag and a 4-byte big-endian length.
const GRPC_FRAME_HEADER_BYTES: usize = 5;

/// The prefix etcd still accepts for the v3 API (its accessController rewrites it to `/v3/`).
const BETA_PREFIX: &str = "/v3beta/";

/// The RPCs the gateway serves, one per path (etcd 3.4's `google.api.http` annotations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Range,
    Put,
    DeleteRange,
    Txn,
    Compact,
    Watch,
    LeaseGrant,
    LeaseRevoke,
    LeaseKeepAlive,
    LeaseTimeToLive,
    LeaseLeases,
    MemberAdd,
    MemberRemove,
    MemberUpdate,
    MemberList,
    MemberPromote,
    Alarm,
    Status,
    Defragment,
    Hash,
    Snapshot,
    MoveLeader,
    Downgrade,
    AuthEnable,
    AuthDisable,
    AuthStatus,
    Authenticate,
    UserAdd,
    UserGet,
    UserList,
    UserDelete,
    UserChangePassword,
    UserGrantRole,
    UserRevokeRole,
    RoleAdd,
    RoleGet,
    RoleList,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
}

/// Every path and its RPC. HashKV shares `/v3/maintenance/hash` with Hash in etcd's annotations;
/// grpc-gateway takes the first registered, Hash, so HashKV is not reachable over JSON, as in
/// etcd. `auth/status` and `maintenance/downgrade` are etcd 3.5's, whose API Strata reports.
const ENDPOINTS: &[(&str, Endpoint)] = &[
    ("/v3/kv/range", Endpoint::Range),
    ("/v3/kv/put", Endpoint::Put),
    ("/v3/kv/deleterange", Endpoint::DeleteRange),
    ("/v3/kv/txn", Endpoint::Txn),
    ("/v3/kv/compaction", Endpoint::Compact),
    ("/v3/watch", Endpoint::Watch),
    ("/v3/lease/grant", Endpoint::LeaseGrant),
    ("/v3/lease/revoke", Endpoint::LeaseRevoke),
    ("/v3/kv/lease/revoke", Endpoint::LeaseRevoke),
    ("/v3/lease/keepalive", Endpoint::LeaseKeepAlive),
    ("/v3/lease/timetolive", Endpoint::LeaseTimeToLive),
    ("/v3/kv/lease/timetolive", Endpoint::LeaseTimeToLive),
    ("/v3/lease/leases", Endpoint::LeaseLeases),
    ("/v3/kv/lease/leases", Endpoint::LeaseLeases),
    ("/v3/cluster/member/add", Endpoint::MemberAdd),
    ("/v3/cluster/member/remove", Endpoint::MemberRemove),
    ("/v3/cluster/member/update", Endpoint::MemberUpdate),
    ("/v3/cluster/member/list", Endpoint::MemberList),
    ("/v3/cluster/member/promote", Endpoint::MemberPromote),
    ("/v3/maintenance/alarm", Endpoint::Alarm),
    ("/v3/maintenance/status", Endpoint::Status),
    ("/v3/maintenance/defragment", Endpoint::Defragment),
    ("/v3/maintenance/hash", Endpoint::Hash),
    ("/v3/maintenance/snapshot", Endpoint::Snapshot),
    ("/v3/maintenance/transfer-leadership", Endpoint::MoveLeader),
    ("/v3/maintenance/downgrade", Endpoint::Downgrade),
    ("/v3/auth/enable", Endpoint::AuthEnable),
    ("/v3/auth/disable", Endpoint::AuthDisable),
    ("/v3/auth/status", Endpoint::AuthStatus),
    ("/v3/auth/authenticate", Endpoint::Authenticate),
    ("/v3/auth/user/add", Endpoint::UserAdd),
    ("/v3/auth/user/get", Endpoint::UserGet),
    ("/v3/auth/user/list", Endpoint::UserList),
    ("/v3/auth/user/delete", Endpoint::UserDelete),
    ("/v3/auth/user/changepw", Endpoint::UserChangePassword),
    ("/v3/auth/user/grant", Endpoint::UserGrantRole),
    ("/v3/auth/user/revoke", Endpoint::UserRevokeRole),
    ("/v3/auth/role/add", Endpoint::RoleAdd),
    ("/v3/auth/role/get", Endpoint::RoleGet),
    ("/v3/auth/role/list", Endpoint::RoleList),
    ("/v3/auth/role/delete", Endpoint::RoleDelete),
    ("/v3/auth/role/grant", Endpoint::RoleGrantPermission),
    ("/v3/auth/role/revoke", Endpoint::RoleRevokePermission),
];

/// The gateway's routes (`/v3/…` and `/v3beta/…`), to be merged into the client URL's router.
/// `grpc_bytes_max` is the gRPC receive limit (`--max-request-bytes` plus gRPC's overhead): a
/// decoded request above it is refused as gRPC refuses it.
pub fn router(api: Api, grpc_bytes_max: u64) -> axum::Router {
    let gateway = Gateway { api, grpc_bytes_max: usize::try_from(grpc_bytes_max).unwrap_or(usize::MAX) };
    let handler = move |request: Request| {
        let gateway = gateway.clone();
        async move { with_cors(gateway.serve(request).await) }
    };
    ["/v3/", "/v3/{*path}", "/v3beta/", "/v3beta/{*path}"]
        .into_iter()
        .fold(axum::Router::new(), |router, path| router.route(path, axum::routing::any(handler.clone())))
}

#[derive(Clone)]
struct Gateway {
    api: Api,
    grpc_bytes_max: usize,
}

/// Calls one unary RPC of a service trait on the gateway's [`Api`].
macro_rules! unary {
    ($gateway:ident, $body:ident, $metadata:ident, $service:path, $method:ident) => {
        $gateway.unary($body, $metadata, |api, request| async move { <Api as $service>::$method(&api, request).await }).await
    };
}

impl Gateway {
    async fn serve(&self, request: Request) -> Response {
        let path = request.uri().path();
        let path = match path.strip_prefix(BETA_PREFIX) {
            Some(rest) => format!("/v3/{rest}"),
            None => path.to_string(),
        };
        if request.method() == Method::OPTIONS {
            return plain(StatusCode::OK, "");
        }
        let Some(&(_, endpoint)) = ENDPOINTS.iter().find(|(known, _)| *known == path) else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        if request.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        }
        let (parts, body) = request.into_parts();
        let metadata = metadata(&parts.headers);
        use pb::auth_server::Auth;
        use pb::cluster_server::Cluster;
        use pb::kv_server::Kv;
        use pb::lease_server::Lease;
        use pb::maintenance_server::Maintenance;
        match endpoint {
            Endpoint::Range => unary!(self, body, metadata, Kv, range),
            Endpoint::Put => unary!(self, body, metadata, Kv, put),
            Endpoint::DeleteRange => unary!(self, body, metadata, Kv, delete_range),
            Endpoint::Txn => unary!(self, body, metadata, Kv, txn),
            Endpoint::Compact => unary!(self, body, metadata, Kv, compact),
            Endpoint::Watch => {
                self.bidirectional(body, metadata, |api, request| async move { <Api as pb::watch_server::Watch>::watch(&api, request).await }).await
            }
            Endpoint::LeaseGrant => unary!(self, body, metadata, Lease, lease_grant),
            Endpoint::LeaseRevoke => unary!(self, body, metadata, Lease, lease_revoke),
            Endpoint::LeaseKeepAlive => {
                self.bidirectional(body, metadata, |api, request| async move { <Api as Lease>::lease_keep_alive(&api, request).await }).await
            }
            Endpoint::LeaseTimeToLive => unary!(self, body, metadata, Lease, lease_time_to_live),
            Endpoint::LeaseLeases => unary!(self, body, metadata, Lease, lease_leases),
            Endpoint::MemberAdd => unary!(self, body, metadata, Cluster, member_add),
            Endpoint::MemberRemove => unary!(self, body, metadata, Cluster, member_remove),
            Endpoint::MemberUpdate => unary!(self, body, metadata, Cluster, member_update),
            Endpoint::MemberList => unary!(self, body, metadata, Cluster, member_list),
            Endpoint::MemberPromote => unary!(self, body, metadata, Cluster, member_promote),
            Endpoint::Alarm => unary!(self, body, metadata, Maintenance, alarm),
            Endpoint::Status => unary!(self, body, metadata, Maintenance, status),
            Endpoint::Defragment => unary!(self, body, metadata, Maintenance, defragment),
            Endpoint::Hash => unary!(self, body, metadata, Maintenance, hash),
            Endpoint::Snapshot => {
                self.server_streaming(body, metadata, |api, request| async move { <Api as Maintenance>::snapshot(&api, request).await }).await
            }
            Endpoint::MoveLeader => unary!(self, body, metadata, Maintenance, move_leader),
            Endpoint::Downgrade => unary!(self, body, metadata, Maintenance, downgrade),
            Endpoint::AuthEnable => unary!(self, body, metadata, Auth, auth_enable),
            Endpoint::AuthDisable => unary!(self, body, metadata, Auth, auth_disable),
            Endpoint::AuthStatus => unary!(self, body, metadata, Auth, auth_status),
            Endpoint::Authenticate => unary!(self, body, metadata, Auth, authenticate),
            Endpoint::UserAdd => unary!(self, body, metadata, Auth, user_add),
            Endpoint::UserGet => unary!(self, body, metadata, Auth, user_get),
            Endpoint::UserList => unary!(self, body, metadata, Auth, user_list),
            Endpoint::UserDelete => unary!(self, body, metadata, Auth, user_delete),
            Endpoint::UserChangePassword => unary!(self, body, metadata, Auth, user_change_password),
            Endpoint::UserGrantRole => unary!(self, body, metadata, Auth, user_grant_role),
            Endpoint::UserRevokeRole => unary!(self, body, metadata, Auth, user_revoke_role),
            Endpoint::RoleAdd => unary!(self, body, metadata, Auth, role_add),
            Endpoint::RoleGet => unary!(self, body, metadata, Auth, role_get),
            Endpoint::RoleList => unary!(self, body, metadata, Auth, role_list),
            Endpoint::RoleDelete => unary!(self, body, metadata, Auth, role_delete),
            Endpoint::RoleGrantPermission => unary!(self, body, metadata, Auth, role_grant_permission),
            Endpoint::RoleRevokePermission => unary!(self, body, metadata, Auth, role_revoke_permission),
        }
    }

    fn body_bytes_max(&self) -> usize {
        self.grpc_bytes_max.saturating_mul(JSON_BYTES_PER_MESSAGE_BYTE_MAX)
    }

    /// The request as the gRPC service would receive it, or its refusal: grpc-gateway answers a
    /// body it cannot decode with `InvalidArgument`, and gRPC refuses a message above its limit.
    async fn unary_request<Q>(&self, body: Body) -> Result<Q, Status>
    where
        Q: DeserializeOwned + prost::Message + Default,
    {
        let body_bytes_max = self.body_bytes_max();
        let bytes = axum::body::to_bytes(body, body_bytes_max).await.map_err(|_| body_too_large(body_bytes_max))?;
        let mut values = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
        let request = match values.next() {
            None => Q::default(),
            Some(Ok(value)) => decode(value).map_err(Status::invalid_argument)?,
            Some(Err(error)) => return Err(Status::invalid_argument(json_error(&error))),
        };
        self.check_size(&request)?;
        Ok(request)
    }

    fn check_size(&self, request: &impl prost::Message) -> Result<(), Status> {
        let encoded_len = request.encoded_len();
        if encoded_len > self.grpc_bytes_max {
            return Err(Status::resource_exhausted(format!("grpc: received message larger than max ({encoded_len} vs. {})", self.grpc_bytes_max)));
        }
        Ok(())
    }

    async fn unary<Q, P, F, Fut>(&self, body: Body, metadata: MetadataMap, call: F) -> Response
    where
        Q: DeserializeOwned + prost::Message + Default,
        P: Serialize,
        F: FnOnce(Api, tonic::Request<Q>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<P>, Status>>,
    {
        let request = match self.unary_request::<Q>(body).await {
            Ok(request) => request,
            Err(status) => return error_response(&status),
        };
        match call(self.api.clone(), tonic::Request::from_parts(metadata, Default::default(), request)).await {
            Ok(response) => {
                let (response_metadata, message, _) = response.into_parts();
                let mut http = json_response(StatusCode::OK, to_json(&message));
                forward_metadata(&response_metadata, http.headers_mut());
                http
            }
            Err(status) => error_response(&status),
        }
    }

    /// A server-streaming RPC (Snapshot): a unary request, a stream of responses.
    async fn server_streaming<Q, P, S, F, Fut>(&self, body: Body, metadata: MetadataMap, call: F) -> Response
    where
        Q: DeserializeOwned + prost::Message + Default,
        P: Serialize + Unpin + Send + 'static,
        S: Stream<Item = Result<P, Status>> + Unpin + Send + 'static,
        F: FnOnce(Api, tonic::Request<Q>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, Status>>,
    {
        let request = match self.unary_request::<Q>(body).await {
            Ok(request) => request,
            Err(status) => return error_response(&status),
        };
        match call(self.api.clone(), tonic::Request::from_parts(metadata, Default::default(), request)).await {
            Ok(response) => stream_response(response).await,
            Err(status) => error_response(&status),
        }
    }

    /// A bidirectional RPC (Watch, LeaseKeepAlive): the body's JSON requests become the gRPC
    /// request stream. As grpc-gateway: a first request that does not decode is an error
    /// (`Unknown`, its text); a later one, like the body's end, closes the sending side.
    async fn bidirectional<Q, P, S, F, Fut>(&self, body: Body, metadata: MetadataMap, call: F) -> Response
    where
        Q: DeserializeOwned + prost::Message + Default + Send + 'static,
        P: Serialize + Unpin + Send + 'static,
        S: Stream<Item = Result<P, Status>> + Unpin + Send + 'static,
        F: FnOnce(Api, tonic::Request<tonic::Streaming<Q>>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, Status>>,
    {
        let mut requests = JsonValues::new(body, self.body_bytes_max());
        let first = match requests.next().await {
            None => None,
            Some(Ok(value)) => match decode::<Q>(value) {
                Ok(request) => Some(request),
                Err(message) => return error_response(&Status::unknown(message)),
            },
            Some(Err(message)) => return error_response(&Status::unknown(message)),
        };
        let (frames, frames_received) = mpsc::channel::<Bytes>(STREAM_REQUESTS_QUEUED_MAX);
        // Dropping the sender ends the request stream: the client's CloseSend.
        match first {
            None => drop(frames),
            Some(first) => {
                let _ = frames.try_send(grpc_frame(&first));
                tokio::spawn(async move {
                    while let Some(Ok(value)) = requests.next().await {
                        let Ok(request) = decode::<Q>(value) else { break };
                        if frames.send(grpc_frame(&request)).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
        let frames_body = Body::from_stream(ReceiverStream::new(frames_received).map(Ok::<Bytes, Infallible>));
        let decoder = tonic_prost::ProstDecoder::<Q>::default();
        let streaming = tonic::Streaming::new_request(decoder, frames_body, None, Some(self.grpc_bytes_max));
        match call(self.api.clone(), tonic::Request::from_parts(metadata, Default::default(), streaming)).await {
            Ok(response) => stream_response(response).await,
            Err(status) => error_response(&status),
        }
    }
}

/// Forwards a response stream as grpc-gateway does: nothing until the first message (the gRPC
/// headers come with it); a stream that fails first is a plain error response, one that ends
/// first an empty 200.
async fn stream_response<P, S>(response: tonic::Response<S>) -> Response
where
    P: Serialize + Unpin + Send + 'static,
    S: Stream<Item = Result<P, Status>> + Unpin + Send + 'static,
{
    let (response_metadata, mut stream, _) = response.into_parts();
    let first = match stream.next().await {
        None => return chunked_json(Body::empty()),
        Some(Err(status)) => return error_response(&status),
        Some(Ok(first)) => first,
    };
    let chunks = Chunks { first: Some(first), stream, done: false };
    let mut http = chunked_json(Body::from_stream(chunks));
    forward_metadata(&response_metadata, http.headers_mut());
    http
}

/// The lines of a streamed response: `{"result":…}\n` per message, then `{"error":{…}}` if the
/// stream fails, and nothing after that.
struct Chunks<P, S> {
    first: Option<P>,
    stream: S,
    done: bool,
}

impl<P, S> Stream for Chunks<P, S>
where
    P: Serialize + Unpin,
    S: Stream<Item = Result<P, Status>> + Unpin,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(result_chunk(&first))));
        }
        match Pin::new(&mut self.stream).poll_next(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(message))) => Poll::Ready(Some(Ok(result_chunk(&message)))),
            Poll::Ready(Some(Err(status))) => {
                self.done = true;
                Poll::Ready(Some(Ok(stream_error_chunk(&status))))
            }
        }
    }
}

fn result_chunk(message: &impl Serialize) -> Bytes {
    let mut chunk = b"{\"result\":".to_vec();
    chunk.extend_from_slice(&to_json(message));
    chunk.extend_from_slice(b"}\n");
    Bytes::from(chunk)
}

/// grpc-gateway's `StreamError` (fields `grpc_code`, `http_code`, `message`, `http_status`).
#[derive(Serialize)]
struct StreamError<'a> {
    grpc_code: i32,
    http_code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    http_status: &'a str,
}

fn stream_error_chunk(status: &Status) -> Bytes {
    let status = transport_status(status).unwrap_or_else(|| status.clone());
    let http_status = http_status(status.code());
    let error = StreamError {
        grpc_code: status.code() as i32,
        http_code: http_status.as_u16(),
        message: status.message(),
        http_status: http_status.canonical_reason().unwrap_or(""),
    };
    let mut chunk = b"{\"error\":".to_vec();
    chunk.extend_from_slice(&to_json(&error));
    chunk.push(b'}');
    Bytes::from(chunk)
}

/// grpc-gateway's error body. The code is never OK here, so never omitted.
#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    code: i32,
}

fn error_response(status: &Status) -> Response {
    let status = transport_status(status).unwrap_or_else(|| status.clone());
    let body = ErrorBody { error: status.message(), message: status.message(), code: status.code() as i32 };
    json_response(http_status(status.code()), to_json(&body))
}

/// grpc-gateway v1's `HTTPStatusFromCode`.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn body_too_large(body_bytes_max: usize) -> Status {
    Status::resource_exhausted(format!("strata: gateway request body larger than max ({body_bytes_max} bytes)"))
}

/// The gRPC metadata grpc-gateway makes of the HTTP headers that matter to etcd: the
/// `Authorization` header (etcd's auth token) as `token`, and `Grpc-Metadata-<key>` as `<key>`.
fn metadata(headers: &HeaderMap) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (name, value) in headers {
        let Ok(value) = AsciiMetadataValue::try_from(value.as_bytes()) else { continue };
        if name == header::AUTHORIZATION {
            metadata.append("token", value);
        } else if let Some(key) = name.as_str().strip_prefix("grpc-metadata-") {
            if let Ok(key) = MetadataKey::from_bytes(key.as_bytes()) {
                metadata.append(key, value);
            }
        }
    }
    metadata
}

/// The service's response metadata as `Grpc-Metadata-<key>` headers, with the `content-type`
/// every grpc-go response carries.
fn forward_metadata(metadata: &MetadataMap, headers: &mut HeaderMap) {
    headers.insert("grpc-metadata-content-type", HeaderValue::from_static("application/grpc"));
    for entry in metadata.iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
            if let Ok(name) = header::HeaderName::from_bytes(format!("grpc-metadata-{}", key.as_str()).as_bytes()) {
                if let Ok(value) = HeaderValue::from_bytes(value.as_encoded_bytes()) {
                    headers.append(name, value);
                }
            }
        }
    }
}

fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("access-control-allow-methods", HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"));
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert("access-control-allow-headers", HeaderValue::from_static("accept, content-type, authorization"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    if !text.is_empty() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    }
    response
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn chunked_json(body: Body) -> Response {
    json_response(StatusCode::OK, Vec::new()).map(|_| body)
}

/// One message as a gRPC frame, uncompressed.
fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut frame = Vec::with_capacity(GRPC_FRAME_HEADER_BYTES + length);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
    message.encode(&mut frame).unwrap_or_default();
    Bytes::from(frame)
}

/// One JSON request into its message, as Go's jsonpb reads it: `null` (the whole request or a
/// field) means the default, and only an object is a message.
fn decode<Q: DeserializeOwned + Default>(mut value: Value) -> Result<Q, String> {
    let kind = match &value {
        Value::Null => return Ok(Q::default()),
        Value::Object(_) => None,
        Value::Array(_) => Some("array"),
        Value::String(_) => Some("string"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("bool"),
    };
    if let Some(kind) = kind {
        return Err(format!("json: cannot unmarshal {kind} into Go value of type map[string]json.RawMessage"));
    }
    remove_nulls(&mut value);
    serde_json::from_value(value).map_err(|error| error.to_string())
}

fn remove_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(remove_nulls);
        }
        Value::Array(elements) => elements.iter_mut().for_each(remove_nulls),
        _ => {}
    }
}

/// A JSON syntax error in Go's words where they differ in kind: a body that ends inside a value.
fn json_error(error: &serde_json::Error) -> String {
    if error.is_eof() {
        "unexpected EOF".to_string()
    } else {
        error.to_string()
    }
}

/// The JSON values of a request body, read as they arrive (a client may stream requests).
struct JsonValues {
    body: axum::body::BodyDataStream,
    buffer: Vec<u8>,
    ended: bool,
    buffer_bytes_max: usize,
}

impl JsonValues {
    fn new(body: Body, buffer_bytes_max: usize) -> JsonValues {
        JsonValues { body: body.into_data_stream(), buffer: Vec::new(), ended: false, buffer_bytes_max }
    }

    /// The next value; `None` at the body's end; an error for bytes that are not JSON (after
    /// which the caller stops reading).
    async fn next(&mut self) -> Option<Result<Value, String>> {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buffer).into_iter::<Value>();
            match values.next() {
                Some(Ok(value)) => {
                    let used = values.byte_offset();
                    self.buffer.drain(..used);
                    return Some(Ok(value));
                }
                Some(Err(error)) if !error.is_eof() || self.ended => return Some(Err(json_error(&error))),
                None if self.ended => return None,
                // Only whitespace so far, or a value that continues in the next chunk.
                _ => {}
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buffer.extend_from_slice(&chunk);
                    if self.buffer.len() > self.buffer_bytes_max {
                        return Some(Err(body_too_large(self.buffer_bytes_max).message().to_string()));
                    }
                }
                Some(Err(error)) => return Some(Err(error.to_string())),
                None => self.ended = true,
            }
        }
    }
}

/// A message as JSON text, escaped as Go's `encoding/json` escapes (which etcd's jsonpb uses).
fn to_json(message: &impl Serialize) -> Vec<u8> {
    let mut json = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut json, GoFormatter);
    if message.serialize(&mut serializer).is_err() {
        // The generated mappings only fail on values JSON cannot hold, which messages never have.
        return b"{}".to_vec();
    }
    json
}

/// serde_json's compact output with Go's string escapes: `<`, `>`, `&`, U+2028 and U+2029 as
/// `\u` escapes (Go's HTML-safe default), and `\b`, `\f` as `\u0008`, `\u000c`.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut start = 0;
        for (index, character) in fragment.char_indices() {
            let escape = match character {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..index])?;
            writer.write_all(escape.as_bytes())?;
            start = index + character.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, escape: serde_json::ser::CharEscape) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::AsciiControl(byte) => {
                const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
                let escaped = [b'\\', b'u', b'0', b'0', HEX_DIGITS[usize::from(byte >> 4)], HEX_DIGITS[usize::from(byte & 0xf)]];
                return writer.write_all(&escaped);
            }
        };
        writer.write_all(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::mvccpb;

    fn json(message: &impl Serialize) -> String {
        String::from_utf8(to_json(message)).expect("utf-8")
    }

    #[test]
    fn messages_map_as_grpc_gateway_maps_them() {
        let response = pb::RangeResponse {
            header: Some(pb::ResponseHeader { cluster_id: 14841639068965178418, member_id: 1, revision: 2, raft_term: 2 }),
            kvs: vec![mvccpb::KeyValue { key: b"foo".to_vec(), create_revision: 2, mod_revision: 2, version: 1, value: b"bar".to_vec(), lease: 0 }],
            more: false,
            count: 1,
        };
        assert_eq!(
            json(&response),
            r#"{"header":{"cluster_id":"14841639068965178418","member_id":"1","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}"#
        );
        // Proto names as written in the .proto (etcd's own mixed styles), enums by name, PUT (0) omitted.
        let member = pb::Member { id: 7, name: "n".into(), peer_ur_ls: vec!["http://a:1".into()], client_ur_ls: vec![], is_learner: true };
        assert_eq!(json(&member), r#"{"ID":"7","name":"n","peerURLs":["http://a:1"],"isLearner":true}"#);
        let event = mvccpb::Event { r#type: mvccpb::event::EventType::Delete as i32, kv: Some(mvccpb::KeyValue::default()), prev_kv: None };
        assert_eq!(json(&event), r#"{"type":"DELETE","kv":{}}"#);
        assert_eq!(json(&pb::HashResponse { header: None, hash: 17 }), r#"{"hash":17}"#);
    }

    #[test]
    fn requests_decode_as_jsonpb_decodes_them() {
        let both: pb::RangeRequest =
            decode(serde_json::json!({"key": "Zm9v", "range_end": "Zm9w", "sortOrder": "DESCEND", "limit": "5", "ignored": 1})).expect("decodes");
        assert_eq!((both.key.as_slice(), both.range_end.as_slice(), both.sort_order, both.limit), (&b"foo"[..], &b"fop"[..], 2, 5));
        let numbers: pb::RangeRequest = decode(serde_json::json!({"sort_order": 1, "limit": 5, "revision": null})).expect("decodes");
        assert_eq!((numbers.sort_order, numbers.limit, numbers.revision), (1, 5, 0));
        let watch: pb::WatchRequest =
            decode(serde_json::json!({"create_request": {"key": "YQ==", "filters": ["NODELETE"], "prev_kv": true}})).expect("decodes");
        let Some(pb::watch_request::RequestUnion::CreateRequest(create)) = watch.request_union else { panic!("a create request") };
        assert_eq!((create.key.as_slice(), create.filters.as_slice(), create.prev_kv), (&b"a"[..], &[1][..], true));
        assert_eq!(decode::<pb::RangeRequest>(Value::Null).expect("decodes"), pb::RangeRequest::default());
        assert_eq!(
            decode::<pb::RangeRequest>(serde_json::json!([])).expect_err("not an object"),
            "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"
        );
        assert!(decode::<pb::RangeRequest>(serde_json::json!({"sort_order": "BOGUS"})).is_err());
        assert!(decode::<pb::RangeRequest>(serde_json::json!({"count_only": "true"})).is_err());
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let error = ErrorBody { error: "<a&b>\u{2028}\u{8}\u{c}\n\u{1}é\"\\", message: "m", code: 3 };
        assert_eq!(json(&error), r#"{"error":"\u003ca\u0026b\u003e\u2028\u0008\u000c\n\u0001é\"\\","message":"m","code":3}"#);
    }

    #[test]
    fn errors_take_grpc_gateway_statuses() {
        let response = error_response(&Status::out_of_range("etcdserver: mvcc: required revision is a future revision"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::FailedPrecondition), StatusCode::PRECONDITION_FAILED);
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            stream_error_chunk(&Status::unavailable("etcdserver: server stopped")),
            Bytes::from_static(br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: server stopped","http_status":"Service Unavailable"}}"#)
        );
    }

    #[test]
    fn headers_become_metadata() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("token.1"));
        headers.insert("grpc-metadata-hasleader", HeaderValue::from_static("true"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let metadata = metadata(&headers);
        assert_eq!(metadata.get("token").and_then(|value| value.to_str().ok()), Some("token.1"));
        assert_eq!(metadata.get("hasleader").and_then(|value| value.to_str().ok()), Some("true"));
        assert_eq!(metadata.len(), 2);
    }

    #[tokio::test]
    async fn streamed_bodies_yield_each_value() {
        let chunks = vec![Ok::<_, Infallible>(Bytes::from_static(b" {\"ID\":1}{\"I")), Ok(Bytes::from_static(b"D\":\"2\"} \n")), Ok(Bytes::from_static(b"x"))];
        let mut values = JsonValues::new(Body::from_stream(tokio_stream::iter(chunks)), 1024);
        assert_eq!(values.next().await, Some(Ok(serde_json::json!({"ID": 1}))));
        assert_eq!(values.next().await, Some(Ok(serde_json::json!({"ID": "2"}))));
        assert!(matches!(values.next().await, Some(Err(_))));
        let mut empty = JsonValues::new(Body::from(" \n"), 1024);
        assert_eq!(empty.next().await, None);
        let mut cut = JsonValues::new(Body::from("{\"ID\""), 1024);
        assert_eq!(cut.next().await, Some(Err("unexpected EOF".to_string())));
    }
}
