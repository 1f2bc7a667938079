//! A load generator for etcd's v3 gRPC API, with etcd benchmark's flag names, that drives any
//! endpoint (Strata or etcd) with the same requests; and the side-by-side comparison that starts a
//! fresh etcd and a fresh Strata and runs the same workload against each, alternating.
//!
//! Invariants: a latency is measured from just before a request is sent to just after its answer
//! arrived (for watch-latency: from the put being sent to the event arriving); errors are counted,
//! never recorded as latencies; every run is bounded by `--total` or `--duration`.

pub mod compare;
pub mod report;
pub mod runner;
pub mod workload;

pub use report::Report;
pub use runner::{LoadOptions, Pacer};
pub use workload::Workload;
