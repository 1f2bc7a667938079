//! The error table: every client-visible error with etcd's gRPC code and exact message, as
//! etcd's `rpctypes` defines them. Clients match these strings, so they are kept verbatim.

use strata_auth::AuthError;
use strata_lease::LeaseError;
use strata_mvcc::KvError;
use strata_node::{ClusterError, NodeError, WatchError};
use tonic::codegen::http;
use tonic::{Code, Status};

/// etcd's errors that do not come from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The encoded request exceeds `--max-request-bytes`.
    RequestTooLarge,
    /// A feature the node does not serve yet.
    NotCapable,
    /// MemberAdd's peer URLs are missing or not `scheme://host:port`.
    MemberBadUrls,
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

/// The gRPC code and message etcd uses for each lease error.
pub fn lease_error(error: LeaseError) -> (Code, &'static str) {
    match error {
        LeaseError::NotFound => (Code::NotFound, "etcdserver: requested lease not found"),
        LeaseError::Exists => (Code::FailedPrecondition, "etcdserver: lease already exists"),
        LeaseError::TtlTooLarge => (Code::OutOfRange, "etcdserver: too large lease TTL"),
    }
}

/// The `cancel_reason` of a refused watch create, in etcd's (its mvcc package's) words; an auth
/// refusal as etcd's watch server words it: the gRPC error's Go text.
pub fn watch_cancel_reason(error: WatchError) -> &'static str {
    match error {
        WatchError::DuplicateId => "mvcc: duplicate watch ID provided on the WatchStream",
        WatchError::EmptyRange => "mvcc: watcher range is empty",
        WatchError::Auth(error) => auth_watch_cancel_reason(error),
    }
}

/// `rpc error: code = … desc = …` of each auth error, as Go prints etcd's gRPC error.
fn auth_watch_cancel_reason(error: AuthError) -> &'static str {
    match error {
        AuthError::RootUserNotExist => "rpc error: code = FailedPrecondition desc = etcdserver: root user does not exist",
        AuthError::RootRoleNotExist => "rpc error: code = FailedPrecondition desc = etcdserver: root user does not have root role",
        AuthError::UserAlreadyExists => "rpc error: code = FailedPrecondition desc = etcdserver: user name already exists",
        AuthError::UserEmpty => "rpc error: code = InvalidArgument desc = etcdserver: user name is empty",
        AuthError::UserNotFound => "rpc error: code = FailedPrecondition desc = etcdserver: user name not found",
        AuthError::RoleAlreadyExists => "rpc error: code = FailedPrecondition desc = etcdserver: role name already exists",
        AuthError::RoleNotFound => "rpc error: code = FailedPrecondition desc = etcdserver: role name not found",
        AuthError::RoleEmpty => "rpc error: code = InvalidArgument desc = etcdserver: role name is empty",
        AuthError::PermissionNotGiven => "rpc error: code = InvalidArgument desc = etcdserver: permission not given",
        AuthError::AuthFailed => "rpc error: code = InvalidArgument desc = etcdserver: authentication failed, invalid user ID or password",
        AuthError::NoPasswordUser => "auth: authentication failed, password was given for no password user",
        AuthError::PermissionDenied => "rpc error: code = PermissionDenied desc = etcdserver: permission denied",
        AuthError::RoleNotGranted => "rpc error: code = FailedPrecondition desc = etcdserver: role is not granted to the user",
        AuthError::PermissionNotGranted => "rpc error: code = FailedPrecondition desc = etcdserver: permission is not granted to the role",
        AuthError::AuthNotEnabled => "rpc error: code = FailedPrecondition desc = etcdserver: authentication is not enabled",
        AuthError::OldRevision => "rpc error: code = InvalidArgument desc = etcdserver: revision of auth store is old",
        AuthError::InvalidAuthToken => "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
        AuthError::InvalidAuthManagement => "rpc error: code = InvalidArgument desc = etcdserver: invalid auth management",
        AuthError::VerifyOnly => "auth: token signing attempted with verify-only key",
    }
}

/// The gRPC code and message etcd uses for each auth error (its `rpctypes`). The two errors
/// etcd's table lacks reach clients with code `Unknown` and the auth package's words.
pub fn auth_error(error: AuthError) -> (Code, &'static str) {
    match error {
        AuthError::RootUserNotExist => (Code::FailedPrecondition, "etcdserver: root user does not exist"),
        AuthError::RootRoleNotExist => (Code::FailedPrecondition, "etcdserver: root user does not have root role"),
        AuthError::UserAlreadyExists => (Code::FailedPrecondition, "etcdserver: user name already exists"),
        AuthError::UserEmpty => (Code::InvalidArgument, "etcdserver: user name is empty"),
        AuthError::UserNotFound => (Code::FailedPrecondition, "etcdserver: user name not found"),
        AuthError::RoleAlreadyExists => (Code::FailedPrecondition, "etcdserver: role name already exists"),
        AuthError::RoleNotFound => (Code::FailedPrecondition, "etcdserver: role name not found"),
        AuthError::RoleEmpty => (Code::InvalidArgument, "etcdserver: role name is empty"),
        AuthError::PermissionNotGiven => (Code::InvalidArgument, "etcdserver: permission not given"),
        AuthError::AuthFailed => (Code::InvalidArgument, "etcdserver: authentication failed, invalid user ID or password"),
        AuthError::PermissionDenied => (Code::PermissionDenied, "etcdserver: permission denied"),
        AuthError::RoleNotGranted => (Code::FailedPrecondition, "etcdserver: role is not granted to the user"),
        AuthError::PermissionNotGranted => (Code::FailedPrecondition, "etcdserver: permission is not granted to the role"),
        AuthError::AuthNotEnabled => (Code::FailedPrecondition, "etcdserver: authentication is not enabled"),
        AuthError::OldRevision => (Code::InvalidArgument, "etcdserver: revision of auth store is old"),
        AuthError::InvalidAuthToken => (Code::Unauthenticated, "etcdserver: invalid auth token"),
        AuthError::InvalidAuthManagement => (Code::InvalidArgument, "etcdserver: invalid auth management"),
        AuthError::NoPasswordUser | AuthError::VerifyOnly => (Code::Unknown, error.message()),
    }
}

pub fn auth_status(error: AuthError) -> Status {
    let (code, message) = auth_error(error);
    Status::new(code, message)
}

/// An auth error as etcd's maintenance service returns it: not mapped to its gRPC table, so
/// clients see code `Unknown` and the auth package's words (`auth: permission denied`).
pub fn auth_status_unmapped(error: AuthError) -> Status {
    Status::new(Code::Unknown, error.message())
}

/// The gRPC code and message etcd uses for each membership and maintenance error. etcd 3.4 and
/// 3.5 map "not enough started members" to its client-side error type rather than a gRPC status,
/// so their clients see it with code `Unknown`.
pub fn cluster_error(error: ClusterError) -> (Code, &'static str) {
    let code = match error {
        ClusterError::MemberNotFound => Code::NotFound,
        ClusterError::NotEnoughStartedMembers => Code::Unknown,
        ClusterError::PeerUrlExists
        | ClusterError::MemberNotLearner
        | ClusterError::LearnerNotReady
        | ClusterError::TooManyLearners
        | ClusterError::BadLeaderTransferee => Code::FailedPrecondition,
    };
    let message = match error {
        ClusterError::MemberNotFound => "etcdserver: member not found",
        ClusterError::PeerUrlExists => "etcdserver: Peer URLs already exists",
        ClusterError::MemberNotLearner => "etcdserver: can only promote a learner member",
        ClusterError::LearnerNotReady => "etcdserver: can only promote a learner member which is in sync with leader",
        ClusterError::TooManyLearners => "etcdserver: too many learner members in cluster",
        ClusterError::NotEnoughStartedMembers => "etcdserver: re-configuration failed due to not enough started members",
        ClusterError::BadLeaderTransferee => "etcdserver: bad leader transferee",
    };
    (code, message)
}

pub fn cluster_status(error: ClusterError) -> Status {
    let (code, message) = cluster_error(error);
    Status::new(code, message)
}

pub fn api_error(error: ApiError) -> (Code, &'static str) {
    match error {
        ApiError::RequestTooLarge => (Code::InvalidArgument, "etcdserver: request is too large"),
        ApiError::NotCapable => (Code::Unavailable, "etcdserver: not capable"),
        ApiError::MemberBadUrls => (Code::InvalidArgument, "etcdserver: given member URLs are invalid"),
    }
}

pub fn kv_status(error: KvError) -> Status {
    let (code, message) = kv_error(error);
    Status::new(code, message)
}

pub fn lease_status(error: LeaseError) -> Status {
    let (code, message) = lease_error(error);
    Status::new(code, message)
}

pub fn api_status(error: ApiError) -> Status {
    let (code, message) = api_error(error);
    Status::new(code, message)
}

pub fn node_status(error: NodeError) -> Status {
    match error {
        NodeError::Kv(error) => kv_status(error),
        NodeError::Lease(error) => lease_status(error),
        NodeError::Cluster(error) => cluster_status(error),
        NodeError::Auth(error) => auth_status(error),
        NodeError::NoSpace => Status::new(Code::ResourceExhausted, "etcdserver: mvcc: database space exceeded"),
        NodeError::Corrupt => Status::new(Code::DataLoss, "etcdserver: corrupt cluster"),
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
        for (error, code, message) in [
            (LeaseError::NotFound, Code::NotFound, "etcdserver: requested lease not found"),
            (LeaseError::Exists, Code::FailedPrecondition, "etcdserver: lease already exists"),
            (LeaseError::TtlTooLarge, Code::OutOfRange, "etcdserver: too large lease TTL"),
        ] {
            let status = lease_status(error);
            assert_eq!((status.code(), status.message()), (code, message));
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn auth_errors_match_etcd_rpctypes() {
        // Codes and messages as etcd 3.4 answers them (see the auth differential test).
        for (error, code, message) in [
            (AuthError::UserEmpty, Code::InvalidArgument, "etcdserver: user name is empty"),
            (AuthError::PermissionDenied, Code::PermissionDenied, "etcdserver: permission denied"),
            (AuthError::InvalidAuthToken, Code::Unauthenticated, "etcdserver: invalid auth token"),
            (AuthError::RootUserNotExist, Code::FailedPrecondition, "etcdserver: root user does not exist"),
            (AuthError::NoPasswordUser, Code::Unknown, "auth: authentication failed, password was given for no password user"),
        ] {
            let status = auth_status(error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
        let unmapped = auth_status_unmapped(AuthError::PermissionDenied);
        assert_eq!((unmapped.code(), unmapped.message()), (Code::Unknown, "auth: permission denied"));
        // A watch refused by auth names the gRPC error as Go prints it.
        for error in [AuthError::PermissionDenied, AuthError::UserEmpty, AuthError::InvalidAuthToken, AuthError::OldRevision] {
            let (code, message) = auth_error(error);
            assert_eq!(watch_cancel_reason(WatchError::Auth(error)), format!("rpc error: code = {code:?} desc = {message}"));
        }
    }

    #[test]
    fn watch_cancel_reasons_match_etcd_mvcc() {
        for (error, reason) in [
            (WatchError::DuplicateId, "mvcc: duplicate watch ID provided on the WatchStream"),
            (WatchError::EmptyRange, "mvcc: watcher range is empty"),
        ] {
            assert_eq!(watch_cancel_reason(error), reason);
            assert_eq!(error.to_string(), reason);
        }
    }

    #[test]
    fn maintenance_messages_match_etcd_rpctypes() {
        for error in [
            ClusterError::MemberNotFound,
            ClusterError::PeerUrlExists,
            ClusterError::MemberNotLearner,
            ClusterError::LearnerNotReady,
            ClusterError::TooManyLearners,
            ClusterError::NotEnoughStartedMembers,
            ClusterError::BadLeaderTransferee,
        ] {
            // The node's own Display agrees with the table.
            assert_eq!(cluster_status(error).message(), error.to_string());
        }
        assert_eq!(cluster_status(ClusterError::MemberNotFound).code(), Code::NotFound);
        assert_eq!(cluster_status(ClusterError::BadLeaderTransferee).code(), Code::FailedPrecondition);
        let no_space = node_status(NodeError::NoSpace);
        assert_eq!((no_space.code(), no_space.message()), (Code::ResourceExhausted, "etcdserver: mvcc: database space exceeded"));
        assert_eq!(no_space.message(), NodeError::NoSpace.to_string());
        let corrupt = node_status(NodeError::Corrupt);
        assert_eq!((corrupt.code(), corrupt.message()), (Code::DataLoss, "etcdserver: corrupt cluster"));
        assert_eq!(corrupt.message(), NodeError::Corrupt.to_string());
        assert_eq!(api_status(ApiError::MemberBadUrls).code(), Code::InvalidArgument);
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
