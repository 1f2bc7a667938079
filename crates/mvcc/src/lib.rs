//! The MVCC key space: every key's versions by revision, and etcd's KV semantics over them
//! (Range, Put, DeleteRange, Txn, Compact). Pure: requests in, responses and changes out; no IO,
//! no clock, no locks. The node's writer task owns the one mutable [`Store`]; readers read it at the
//! durable revision.
//!
//! Invariants:
//! - The revision grows by exactly one per request that changes something; all changes of one
//!   request (a txn) share that revision. A request that changes nothing does not bump it.
//! - A key's versions are kept in ascending `mod_revision` order; the visible version at revision
//!   `r` is the last one with `mod_revision <= r`, absent if that is a tombstone.
//! - Applying the same [`Change`]s at the same revisions to the same state gives the same state:
//!   the log stores changes (effects), and replay calls [`Store::apply`].
//! - Every version remembers its sub-revision (its place among its request's changes), and the
//!   store indexes which keys changed at each revision not yet compacted, so watch events can be
//!   read back in etcd's order ([`Store::events`]).

mod auto_compaction;
mod event;
mod request;
mod space;
mod store;
mod validate;

pub use auto_compaction::{AutoCompaction, AutoCompactor, PERIODIC_COMPACT_INTERVAL_MAX_MILLIS, PERIODIC_RETRY_DIVISOR, REVISION_CHECK_INTERVAL_MILLIS};
pub use event::{range_contains, Event, EventKind};
pub use request::*;
pub use space::{version_footprint_bytes, SpaceUsage};
pub use store::{Change, ChangeKind, KeyImage, KvHash, Stamp, Store, VersionImage, SUB_REVISION_MAX};
pub use validate::{validate_delete_range, validate_put, validate_range, validate_txn};

/// Errors of KV requests. Each maps to one etcd gRPC error (see `strata-etcd-api`'s error table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvError {
    /// `etcdserver: key is not provided`
    EmptyKey,
    /// `etcdserver: key not found` (ignore_value / ignore_lease without an existing key, or an
    /// empty request op in a txn)
    KeyNotFound,
    /// `etcdserver: value is provided`
    ValueProvided,
    /// `etcdserver: lease is provided`
    LeaseProvided,
    /// `etcdserver: too many operations in txn request`
    TooManyOps,
    /// `etcdserver: duplicate key given in txn request`
    DuplicateKey,
    /// `etcdserver: mvcc: required revision has been compacted`
    Compacted,
    /// `etcdserver: mvcc: required revision is a future revision`
    FutureRevision,
    /// `etcdserver: requested lease not found`
    LeaseNotFound,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KvError::EmptyKey => "etcdserver: key is not provided",
            KvError::KeyNotFound => "etcdserver: key not found",
            KvError::ValueProvided => "etcdserver: value is provided",
            KvError::LeaseProvided => "etcdserver: lease is provided",
            KvError::TooManyOps => "etcdserver: too many operations in txn request",
            KvError::DuplicateKey => "etcdserver: duplicate key given in txn request",
            KvError::Compacted => "etcdserver: mvcc: required revision has been compacted",
            KvError::FutureRevision => "etcdserver: mvcc: required revision is a future revision",
            KvError::LeaseNotFound => "etcdserver: requested lease not found",
        })
    }
}

impl std::error::Error for KvError {}
