//! Code generated from etcd's v3 `.proto` files (see `proto/` and `build.rs`).
//!
//! The module tree mirrors the protobuf packages, so the generated
//! `super::mvccpb` / `super::authpb` references inside `etcdserverpb` resolve.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]

/// Package `mvccpb`: `KeyValue` and `Event`.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// Package `authpb`: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// Package `etcdserverpb`: the KV, Watch, Lease, Cluster, Maintenance and
/// Auth services with their request and response messages.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
