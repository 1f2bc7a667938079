//! The error table: every client-visible error with etcd's gRPC code and exact message, as
//! etcd's `rpctypes` defines them. Clients match these strings, so they are kept verbatim.

use strata_mvcc::KvError;
use strata_node::NodeError;
use tonic::codegen::http;
use tonic::{Code, Status};

/// etcd's errors that do not come from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The encoded request exceeds `--max-request-bytes`.
    RequestTooLarge,
    /// A feature the node does not serve yet.
    NotCapable,
}

/// The gRPC code and message etcd uses for each store error.
pub fn kv_error(error: KvError) -> (Code, &'static str) {
    let code = match error {
        KvError::EmptyKey
        | KvError::KeyNotFound
        | KvError::ValueProvided
        | KvError::LeaseProvided
        | KvError::TooManyOps
        | KvError::DuplicateKey => Code::InvalidArgument,
        KvError::Compacted | KvError::FutureRevision => Code::OutOfRange,
        KvError::LeaseNotFound => Code::NotFound,
    };
    let message = match error {
        KvError::EmptyKey => "etcdserver: key is not provided",
        KvError::KeyNotFound => "etcdserver: key not found",
        KvError::ValueProvided => "etcdserver: value is provided",
        KvError::LeaseProvided => "etcdserver: lease is provided",
        KvError::TooManyOps => "etcdserver: too many operations in txn request",
        KvError::DuplicateKey => "etcdserver: duplicate key given in txn request",
        KvError::Compacted => "etcdserver: mvcc: required revision has been compacted",
        KvError::FutureRevision => "etcdserver: mvcc: required revision is a future revision",
        KvError::LeaseNotFound => "etcdserver: requested lease not found",
    };
    (code, message)
}

pub fn api_error(error: ApiError) -> (Code, &'static str) {
    match error {
        ApiError::RequestTooLarge => (Code::InvalidArgument, "etcdserver: request is too large"),
        ApiError::NotCapable => (Code::Unavailable, "etcdserver: not capable"),
    }
}

pub fn kv_status(error: KvError) -> Status {
    let (code, message) = kv_error(error);
    Status::new(code, message)
}

pub fn api_status(error: ApiError) -> Status {
    let (code, message) = api_error(error);
    Status::new(code, message)
}

pub fn node_status(error: NodeError) -> Status {
    match error {
        NodeError::Kv(error) => kv_status(error),
        NodeError::Stopped => Status::new(Code::Unavailable, "etcdserver: server stopped"),
        NodeError::Storage(_) => Status::new(Code::Unavailable, error.to_string()),
    }
}

/// gRPC's own refusal of a message above its receive limit (`--max-request-bytes` + 512 KiB), as
/// grpc-go and so etcd word it. tonic refuses such a message before any service sees it, with
/// `OutOfRange` "Error, decoded message length too large: found N bytes, the limit is: M bytes";
/// etcd's clients get `ResourceExhausted` "grpc: received message larger than max (N vs. M)".
pub fn transport_status(status: &Status) -> Option<Status> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    let rest = status.message().strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some(Status::new(Code::ResourceExhausted, format!("grpc: received message larger than max ({found} vs. {limit})")))
}

/// Rewrites a gRPC response that carries one of tonic's own transport errors (always a
/// trailers-only response: the status is in the headers) into etcd's error; see
/// [`transport_status`]. Every other response passes unchanged.
pub fn etcd_transport_errors<B>(mut response: http::Response<B>) -> http::Response<B> {
    if response.headers().get(Status::GRPC_STATUS).is_none_or(|code| Code::from_bytes(code.as_bytes()) != Code::OutOfRange) {
        return response;
    }
    let Some(status) = Status::from_header_map(response.headers()).as_ref().and_then(transport_status) else { return response };
    if status.add_header(response.headers_mut()).is_ok() {
        response.extensions_mut().insert(status);
    }
    response
}

/// A service Strata does not offer yet: refused with a message that says so.
pub fn not_yet(what: &str) -> Status {
    Status::new(Code::Unimplemented, format!("strata: {what} is not supported by this release yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_etcd_rpctypes() {
        for (error, code, message) in [
            (KvError::EmptyKey, Code::InvalidArgument, "etcdserver: key is not provided"),
            (KvError::Compacted, Code::OutOfRange, "etcdserver: mvcc: required revision has been compacted"),
            (KvError::FutureRevision, Code::OutOfRange, "etcdserver: mvcc: required revision is a future revision"),
            (KvError::DuplicateKey, Code::InvalidArgument, "etcdserver: duplicate key given in txn request"),
            (KvError::TooManyOps, Code::InvalidArgument, "etcdserver: too many operations in txn request"),
            (KvError::LeaseNotFound, Code::NotFound, "etcdserver: requested lease not found"),
        ] {
            let status = kv_status(error);
            assert_eq!((status.code(), status.message()), (code, message));
            // The store's own Display agrees with the table.
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(api_status(ApiError::RequestTooLarge).message(), "etcdserver: request is too large");
    }

    #[test]
    fn grpc_limit_errors_are_worded_as_grpc_go_words_them() {
        let tonic = Status::out_of_range("Error, decoded message length too large: found 3000013 bytes, the limit is: 2097152 bytes");
        let response = etcd_transport_errors::<()>(tonic.into_http());
        let status = Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(
            (status.code(), status.message()),
            (Code::ResourceExhausted, "grpc: received message larger than max (3000013 vs. 2097152)")
        );
        // etcd's own OutOfRange errors are left alone.
        let compacted = kv_status(KvError::Compacted);
        assert!(transport_status(&compacted).is_none());
        let response = etcd_transport_errors::<()>(compacted.into_http());
        assert_eq!(Status::from_header_map(response.headers()).expect("a status").message(), KvError::Compacted.to_string());
    }
}
