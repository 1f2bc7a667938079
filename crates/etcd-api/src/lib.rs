//! etcd's v3 wire API and its services; the only crate that knows etcd's protobuf.
//!
//! - [`pb`]: the message types and gRPC service stubs, generated at build time from the `.proto`
//!   files under `proto/` (written in this repository from etcd's published API reference).
//! - [`errors`]: the one table from Strata's errors to etcd's gRPC codes and exact messages.
//! - [`convert`]: etcd's messages to and from the store's own request types.
//! - [`services`]: the six etcd services on top of a [`strata_node::Node`].
//! - [`gateway`]: etcd's HTTP/JSON gateway (`POST /v3/kv/range`, …) over the same services.
//! - [`etcd_db`]: etcd's backend database (bbolt, etcd's buckets) to and from Strata's snapshot
//!   records: Maintenance.Snapshot, `strata migrate`, and the import's fuzz target [`fuzz_import`].
//!
//! Invariant: a request is validated here exactly as etcd's `v3rpc` layer validates it, before it
//! reaches the node; every error a client sees comes from [`errors`].

pub mod convert;
pub mod errors;
pub mod etcd_db;
pub mod gateway;
pub mod pb;
pub mod services;

pub use etcd_db::fuzz_import;
