//! `/metrics` in Prometheus' text format, on every client URL and on `--listen-metrics-urls`, and
//! the gRPC request counters behind it: a tower layer (an axum middleware around the gRPC routes)
//! that counts, per etcd method, the calls started and handled (with their gRPC code) under
//! go-grpc-prometheus' names, as etcd does, and the message bytes each way
//! (`etcd_network_client_grpc_{received,sent}_bytes_total`). The same layer hands a TLS client's
//! verified certificate name to the services as [`CertificateUser`].
//!
//! Invariants: every etcd method has its counters from the start (etcd pre-registers them), so a
//! scrape lists every method × code; counting is relaxed atomic additions into a table fixed at
//! start (no lock per request); a call counts as handled exactly once, with the code its response
//! carries (in the headers or the trailers), or `Canceled` if its response is dropped unfinished.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{Buf, Bytes};
use http_body::Frame;
use strata_etcd_api::services::CertificateUser;
use strata_node::metrics::{Counter, MetricKind, MetricsText, TEXT_FORMAT_CONTENT_TYPE};
use strata_node::Node;

use crate::tls::ClientConnectInfo;

/// etcd's gRPC methods: service, method and go-grpc-prometheus' call type.
const GRPC_METHODS: &[(&str, &str, &str)] = &[
    ("etcdserverpb.KV", "Range", "unary"),
    ("etcdserverpb.KV", "Put", "unary"),
    ("etcdserverpb.KV", "DeleteRange", "unary"),
    ("etcdserverpb.KV", "Txn", "unary"),
    ("etcdserverpb.KV", "Compact", "unary"),
    ("etcdserverpb.Watch", "Watch", "bidi_stream"),
    ("etcdserverpb.Lease", "LeaseGrant", "unary"),
    ("etcdserverpb.Lease", "LeaseRevoke", "unary"),
    ("etcdserverpb.Lease", "LeaseKeepAlive", "bidi_stream"),
    ("etcdserverpb.Lease", "LeaseTimeToLive", "unary"),
    ("etcdserverpb.Lease", "LeaseLeases", "unary"),
    ("etcdserverpb.Cluster", "MemberAdd", "unary"),
    ("etcdserverpb.Cluster", "MemberRemove", "unary"),
    ("etcdserverpb.Cluster", "MemberUpdate", "unary"),
    ("etcdserverpb.Cluster", "MemberList", "unary"),
    ("etcdserverpb.Cluster", "MemberPromote", "unary"),
    ("etcdserverpb.Maintenance", "Alarm", "unary"),
    ("etcdserverpb.Maintenance", "Status", "unary"),
    ("etcdserverpb.Maintenance", "Defragment", "unary"),
    ("etcdserverpb.Maintenance", "Hash", "unary"),
    ("etcdserverpb.Maintenance", "HashKV", "unary"),
    ("etcdserverpb.Maintenance", "Snapshot", "server_stream"),
    ("etcdserverpb.Maintenance", "MoveLeader", "unary"),
    ("etcdserverpb.Maintenance", "Downgrade", "unary"),
    ("etcdserverpb.Auth", "AuthEnable", "unary"),
    ("etcdserverpb.Auth", "AuthDisable", "unary"),
    ("etcdserverpb.Auth", "AuthStatus", "unary"),
    ("etcdserverpb.Auth", "Authenticate", "unary"),
    ("etcdserverpb.Auth", "UserAdd", "unary"),
    ("etcdserverpb.Auth", "UserGet", "unary"),
    ("etcdserverpb.Auth", "UserList", "unary"),
    ("etcdserverpb.Auth", "UserDelete", "unary"),
    ("etcdserverpb.Auth", "UserChangePassword", "unary"),
    ("etcdserverpb.Auth", "UserGrantRole", "unary"),
    ("etcdserverpb.Auth", "UserRevokeRole", "unary"),
    ("etcdserverpb.Auth", "RoleAdd", "unary"),
    ("etcdserverpb.Auth", "RoleGet", "unary"),
    ("etcdserverpb.Auth", "RoleList", "unary"),
    ("etcdserverpb.Auth", "RoleDelete", "unary"),
    ("etcdserverpb.Auth", "RoleGrantPermission", "unary"),
    ("etcdserverpb.Auth", "RoleRevokePermission", "unary"),
];

/// gRPC's status codes by number, as go-grpc-prometheus names them.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const GRPC_CODE_CANCELED: usize = 1;
const GRPC_CODE_UNKNOWN: usize = 2;
/// The bytes before each gRPC message: a compression flag and a 4-byte length.
const GRPC_MESSAGE_PREFIX_BYTES: usize = 5;

/// The gRPC server's counters, one set per etcd method.
pub struct GrpcMetrics {
    /// `/etcdserverpb.KV/Range` → index into [`GRPC_METHODS`]; fixed at start, read without a lock.
    methods: HashMap<String, usize>,
    started: Box<[Counter]>,
    /// `method * GRPC_CODES.len() + code`.
    handled: Box<[Counter]>,
    messages_received: Box<[Counter]>,
    messages_sent: Box<[Counter]>,
    received_bytes: Counter,
    sent_bytes: Counter,
}

impl Default for GrpcMetrics {
    fn default() -> GrpcMetrics {
        let counters = |count: usize| (0..count).map(|_| Counter::new()).collect::<Box<[Counter]>>();
        GrpcMetrics {
            methods: GRPC_METHODS.iter().enumerate().map(|(index, (service, method, _))| (format!("/{service}/{method}"), index)).collect(),
            started: counters(GRPC_METHODS.len()),
            handled: counters(GRPC_METHODS.len() * GRPC_CODES.len()),
            messages_received: counters(GRPC_METHODS.len()),
            messages_sent: counters(GRPC_METHODS.len()),
            received_bytes: Counter::new(),
            sent_bytes: Counter::new(),
        }
    }
}

impl GrpcMetrics {
    fn handled(&self, method: usize, code: usize) {
        self.handled[method * GRPC_CODES.len() + code.min(GRPC_CODES.len() - 1)].increment();
    }

    /// Writes the gRPC families, every method (and code) included, labels in etcd's order.
    pub fn write(&self, text: &mut MetricsText) {
        text.counter("etcd_network_client_grpc_received_bytes_total", "The total number of bytes received from grpc clients.", self.received_bytes.get());
        text.counter("etcd_network_client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients.", self.sent_bytes.get());
        let per_method = |text: &mut MetricsText, name: &str, help: &str, counters: &[Counter]| {
            text.family(name, help, MetricKind::Counter);
            for ((service, method, kind), counter) in GRPC_METHODS.iter().zip(counters) {
                text.sample(name, &[("grpc_method", method), ("grpc_service", service), ("grpc_type", kind)], counter.get());
            }
        };
        per_method(text, "grpc_server_started_total", "Total number of RPCs started on the server.", &self.started);
        text.family("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", MetricKind::Counter);
        for (index, (service, method, kind)) in GRPC_METHODS.iter().enumerate() {
            for (code_index, code) in GRPC_CODES.iter().enumerate() {
                let count = self.handled[index * GRPC_CODES.len() + code_index].get();
                text.sample(
                    "grpc_server_handled_total",
                    &[("grpc_code", code), ("grpc_method", method), ("grpc_service", service), ("grpc_type", kind)],
                    count,
                );
            }
        }
        per_method(text, "grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", &self.messages_received);
        per_method(text, "grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", &self.messages_sent);
    }
}

/// `routes` with `/metrics` added and the gRPC counting layer around all of them.
pub fn instrument(routes: tonic::service::Routes, node: &Arc<Node>, grpc: &Arc<GrpcMetrics>) -> tonic::service::Routes {
    let (page_node, page_grpc, layer_grpc) = (node.clone(), grpc.clone(), grpc.clone());
    let router = routes
        .into_axum_router()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let (node, grpc) = (page_node.clone(), page_grpc.clone());
                async move { page(&node, &grpc) }
            }),
        )
        .layer(axum::middleware::from_fn(move |request, next| count_grpc(layer_grpc.clone(), request, next)));
    tonic::service::Routes::from(router)
}

/// The whole `/metrics` page: the node's families, then the gRPC server's.
pub fn page(node: &Node, grpc: &GrpcMetrics) -> ([(&'static str, &'static str); 1], String) {
    let mut text = MetricsText::new();
    node.write_metrics(&mut text);
    grpc.write(&mut text);
    ([("content-type", TEXT_FORMAT_CONTENT_TYPE)], text.finish())
}

/// The tower layer's work for one request: the client's certificate name for the services, and
/// the gRPC counters of an etcd method.
pub async fn count_grpc(metrics: Arc<GrpcMetrics>, mut request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if let Some(info) = request.extensions().get::<ClientConnectInfo>().cloned() {
        if let Some(user) = info.certificate_user {
            request.extensions_mut().insert(CertificateUser(user));
        }
        if let (Some(remote_addr), Some(local_addr)) = (info.remote_address, info.local_address) {
            // What tonic's `Request::remote_addr` reads, as over plain TCP.
            request.extensions_mut().insert(tonic::transport::server::TcpConnectInfo { local_addr: Some(local_addr), remote_addr: Some(remote_addr) });
        }
    }
    let Some(&method) = metrics.methods.get(request.uri().path()) else { return next.run(request).await };
    metrics.started[method].increment();
    let counting = metrics.clone();
    let request = request.map(move |body| Body::new(CountedBody::new(body, counting, method, Direction::Received)));
    let response = next.run(request).await;
    // A trailers-only response (every error tonic answers at once) has its code in the headers.
    let header_code = response.headers().get("grpc-status").map(|code| grpc_code_index(code.as_bytes()));
    response.map(move |body| {
        let mut counted = CountedBody::new(body, metrics, method, Direction::Sent);
        if let Some(code) = header_code {
            counted.metrics.handled(method, code);
            counted.handled = true;
        }
        Body::new(counted)
    })
}

fn grpc_code_index(code: &[u8]) -> usize {
    std::str::from_utf8(code).ok().and_then(|code| code.parse::<usize>().ok()).filter(|code| *code < GRPC_CODES.len()).unwrap_or(GRPC_CODE_UNKNOWN)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Received,
    Sent,
}

/// Counts whole gRPC messages in a byte stream cut anywhere: their number and payload bytes.
#[derive(Default)]
struct MessageCounter {
    prefix: [u8; GRPC_MESSAGE_PREFIX_BYTES],
    prefix_filled: usize,
    payload_remaining: u64,
}

impl MessageCounter {
    /// Returns the messages begun and the payload bytes in `bytes`.
    fn feed(&mut self, mut bytes: &[u8]) -> (u64, u64) {
        let (mut messages, mut payload_bytes) = (0u64, 0u64);
        while !bytes.is_empty() {
            if self.payload_remaining > 0 {
                let taken = self.payload_remaining.min(bytes.len() as u64);
                self.payload_remaining -= taken;
                payload_bytes += taken;
                bytes = &bytes[taken as usize..];
                continue;
            }
            let taken = (GRPC_MESSAGE_PREFIX_BYTES - self.prefix_filled).min(bytes.len());
            self.prefix[self.prefix_filled..self.prefix_filled + taken].copy_from_slice(&bytes[..taken]);
            self.prefix_filled += taken;
            bytes = &bytes[taken..];
            if self.prefix_filled == GRPC_MESSAGE_PREFIX_BYTES {
                self.prefix_filled = 0;
                self.payload_remaining = u64::from(u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]));
                messages += 1;
            }
        }
        (messages, payload_bytes)
    }
}

/// A request or response body whose gRPC messages (and, for a response, final code) are counted
/// as they pass.
struct CountedBody {
    inner: Body,
    metrics: Arc<GrpcMetrics>,
    method: usize,
    direction: Direction,
    messages: MessageCounter,
    /// Whether the call was counted as handled (responses only).
    handled: bool,
}

impl CountedBody {
    fn new(inner: Body, metrics: Arc<GrpcMetrics>, method: usize, direction: Direction) -> CountedBody {
        CountedBody { inner, metrics, method, direction, messages: MessageCounter::default(), handled: false }
    }

    fn observe(&mut self, frame: &Frame<Bytes>) {
        if let Some(data) = frame.data_ref() {
            let (messages, bytes) = self.messages.feed(data.chunk());
            let (message_counters, byte_counter) = match self.direction {
                Direction::Received => (&self.metrics.messages_received, &self.metrics.received_bytes),
                Direction::Sent => (&self.metrics.messages_sent, &self.metrics.sent_bytes),
            };
            message_counters[self.method].add(messages);
            byte_counter.add(bytes);
        } else if let Some(trailers) = frame.trailers_ref() {
            if self.direction == Direction::Sent && !self.handled {
                let code = trailers.get("grpc-status").map_or(GRPC_CODE_UNKNOWN, |code| grpc_code_index(code.as_bytes()));
                self.metrics.handled(self.method, code);
                self.handled = true;
            }
        }
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            self.observe(frame);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if self.direction == Direction::Sent && !self.handled {
            // The client went away (or the server stopped) before the call finished.
            self.metrics.handled(self.method, GRPC_CODE_CANCELED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_counted_across_any_cut() {
        let mut stream = Vec::new();
        for payload in [&b"abc"[..], b"", &[7u8; 300]] {
            stream.push(0);
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        for cut in 1..stream.len() {
            let mut counter = MessageCounter::default();
            let (first_messages, first_bytes) = counter.feed(&stream[..cut]);
            let (second_messages, second_bytes) = counter.feed(&stream[cut..]);
            assert_eq!((first_messages + second_messages, first_bytes + second_bytes), (3, 303), "cut at {cut}");
        }
    }

    #[test]
    fn every_method_and_code_is_listed() {
        let metrics = GrpcMetrics::default();
        let range = metrics.methods["/etcdserverpb.KV/Range"];
        metrics.started[range].increment();
        metrics.handled(range, 0);
        metrics.handled(range, grpc_code_index(b"11"));
        metrics.handled(range, grpc_code_index(b"99"));
        let mut text = MetricsText::new();
        metrics.write(&mut text);
        let text = text.finish();
        assert_eq!(text.lines().filter(|line| line.starts_with("grpc_server_handled_total{")).count(), GRPC_METHODS.len() * GRPC_CODES.len());
        assert!(text.contains("grpc_server_started_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1\n"), "{text}");
        for code in ["OK", "OutOfRange", "Unknown"] {
            let line =
                format!("grpc_server_handled_total{{grpc_code=\"{code}\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}} 1\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("grpc_type=\"bidi_stream\""), "{text}");
    }
}
