//! The node's metrics: counters, gauges and histograms on atomics, the node's own set of them
//! ([`NodeMetrics`], kept in the shared state and moved by the writer and the read path), and
//! Prometheus' text exposition format 0.0.4 ([`MetricsText`]) that `/metrics` renders them in.
//! Metric names, help texts and types are etcd's where etcd has the metric (checked against a
//! scrape of etcd 3.4); Strata's own are named `strata_*`.
//!
//! Invariants:
//! - Updates are relaxed atomic additions: no lock, no allocation, on any request path.
//! - A histogram's `_count` is the sum of its buckets, read once per scrape, so a scrape always
//!   shows cumulative buckets ending in `+Inf` = `_count`, even while observations land.
//! - Each family is written whole (HELP, TYPE, then every sample) before the next one begins.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use strata_mvcc::{RequestOp, ResponseOp, TxnRequest, TxnResponse};

use crate::{Node, WriteRequest, WriteResponse};

/// etcd's buckets for its disk latency histograms (`prometheus.ExponentialBuckets(0.001, 2, 14)`):
/// 1 ms to 8.192 s.
pub const DISK_DURATION_BUCKETS_SECONDS: [f64; 14] = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
/// Buckets of `strata_writer_batch_requests`: powers of two up to the largest batch.
pub const BATCH_REQUESTS_BUCKETS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
/// The content type of the text format this module writes.
pub const TEXT_FORMAT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const NANOSECONDS_PER_SECOND: f64 = 1e9;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn increment(&self) {
        self.add(1);
    }

    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn add(&self, amount: i64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram over fixed upper bounds. Observations are whole units (nanoseconds, requests);
/// `unit` converts a unit into the rendered value (1e-9 for seconds from nanoseconds).
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in rendered values, ascending (`le`); `+Inf` is implicit.
    bounds: &'static [f64],
    unit: f64,
    /// One count per bound plus the overflow, not cumulative.
    buckets: Box<[AtomicU64]>,
    /// The sum of the observations, in units.
    sum_units: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64], unit: f64) -> Histogram {
        Histogram { bounds, unit, buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum_units: AtomicU64::new(0) }
    }

    /// A histogram of durations rendered in seconds.
    pub fn seconds(bounds: &'static [f64]) -> Histogram {
        Histogram::new(bounds, 1.0 / NANOSECONDS_PER_SECOND)
    }

    pub fn observe(&self, units: u64) {
        let value = units as f64 * self.unit;
        let index = self.bounds.partition_point(|bound| *bound < value);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_units.fetch_add(units, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, duration: Duration) {
        self.observe(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).sum()
    }
}

/// The kinds of metric families of the text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A page of Prometheus' text exposition format 0.0.4, written family by family.
#[derive(Debug, Default)]
pub struct MetricsText {
    text: String,
}

impl MetricsText {
    pub fn new() -> MetricsText {
        MetricsText::default()
    }

    /// Starts a family: its HELP and TYPE lines. Its samples must follow before the next family.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
    }

    /// One sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl SampleValue) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (position, (label, label_value)) in labels.iter().enumerate() {
                if position > 0 {
                    self.text.push(',');
                }
                let escaped = label_value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{label}=\"{escaped}\"");
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write_to(&mut self.text);
        self.text.push('\n');
    }

    /// A family with one unlabeled counter sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, MetricKind::Counter);
        self.sample(name, &[], value);
    }

    /// A family with one unlabeled gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: impl SampleValue) {
        self.family(name, help, MetricKind::Gauge);
        self.sample(name, &[], value);
    }

    /// A histogram family: cumulative `_bucket` samples, `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram) {
        self.family(name, help, MetricKind::Histogram);
        let bucket_name = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (index, bound) in histogram.bounds.iter().enumerate() {
            cumulative += histogram.buckets[index].load(Ordering::Relaxed);
            self.sample(&bucket_name, &[("le", &format_float(*bound))], cumulative);
        }
        cumulative += histogram.buckets[histogram.bounds.len()].load(Ordering::Relaxed);
        self.sample(&bucket_name, &[("le", "+Inf")], cumulative);
        let sum = histogram.sum_units.load(Ordering::Relaxed) as f64 * histogram.unit;
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], cumulative);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A sample's value as the text format writes it.
pub trait SampleValue {
    fn write_to(&self, text: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, text: &mut String) {
        let _ = write!(text, "{self}");
    }
}

impl SampleValue for i64 {
    fn write_to(&self, text: &mut String) {
        let _ = write!(text, "{self}");
    }
}

impl SampleValue for f64 {
    fn write_to(&self, text: &mut String) {
        text.push_str(&format_float(*self));
    }
}

/// Go's spellings of the special values; finite values in Rust's shortest round-trip form.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{value}")
    }
}

/// The counters and histograms a node moves as it serves; the rest of its metrics are read from
/// its state at scrape time ([`Node::write_metrics`]).
#[derive(Debug)]
pub(crate) struct NodeMetrics {
    pub(crate) proposals_committed: Counter,
    pub(crate) proposals_applied: Counter,
    pub(crate) proposals_failed: Counter,
    /// Writes queued for the writer or being made durable.
    pub(crate) proposals_pending: Gauge,
    pub(crate) puts: Counter,
    pub(crate) deletes: Counter,
    pub(crate) ranges: Counter,
    pub(crate) txns: Counter,
    pub(crate) leases_granted: Counter,
    pub(crate) leases_revoked: Counter,
    /// The one `fdatasync` of each batch that appended records.
    pub(crate) wal_fsync: Histogram,
    /// A batch from its first evaluation to durable: evaluate, append, sync.
    pub(crate) backend_commit: Histogram,
    pub(crate) batch_requests: Histogram,
    pub(crate) log_segments: Gauge,
}

impl Default for NodeMetrics {
    fn default() -> NodeMetrics {
        NodeMetrics {
            proposals_committed: Counter::new(),
            proposals_applied: Counter::new(),
            proposals_failed: Counter::new(),
            proposals_pending: Gauge::new(),
            puts: Counter::new(),
            deletes: Counter::new(),
            ranges: Counter::new(),
            txns: Counter::new(),
            leases_granted: Counter::new(),
            leases_revoked: Counter::new(),
            wal_fsync: Histogram::seconds(&DISK_DURATION_BUCKETS_SECONDS),
            backend_commit: Histogram::seconds(&DISK_DURATION_BUCKETS_SECONDS),
            batch_requests: Histogram::new(&BATCH_REQUESTS_BUCKETS, 1.0),
            log_segments: Gauge::new(),
        }
    }
}

impl NodeMetrics {
    /// Counts a durable batch: its requests (see [`BatchTally`]), its size, how long it took from
    /// its first evaluation (if it wrote to the log) and the log's segment files after it.
    pub(crate) fn batch_durable(&self, tally: &BatchTally, elapsed: Duration, logged: bool, segment_count: usize) {
        self.add_batch(tally);
        self.batch_requests.observe(tally.requests);
        if logged {
            self.backend_commit.observe_duration(elapsed);
        }
        self.log_segments.set(i64::try_from(segment_count).unwrap_or(i64::MAX));
    }

    fn add_batch(&self, tally: &BatchTally) {
        self.proposals_committed.add(tally.requests);
        self.proposals_applied.add(tally.requests);
        self.puts.add(tally.operations.puts);
        self.deletes.add(tally.operations.deletes);
        self.ranges.add(tally.operations.ranges);
        self.txns.add(tally.txns);
        self.leases_granted.add(tally.leases_granted);
        self.leases_revoked.add(tally.leases_revoked);
    }

    /// Counts a read-only txn served at the durable revision.
    pub(crate) fn add_read_txn(&self, request: &TxnRequest, response: &TxnResponse) {
        let operations = OperationCounts::of_txn(request, response);
        self.ranges.add(operations.ranges);
        if operations.total() > 1 {
            self.txns.increment();
        }
    }
}

/// The key operations a request performed, counted as etcd's mvcc counts them: each range, put
/// and delete of the branch a txn took, nested txns included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OperationCounts {
    pub(crate) ranges: u64,
    pub(crate) puts: u64,
    pub(crate) deletes: u64,
}

impl OperationCounts {
    fn total(&self) -> u64 {
        self.ranges + self.puts + self.deletes
    }

    fn of_txn(request: &TxnRequest, response: &TxnResponse) -> OperationCounts {
        let mut counts = OperationCounts::default();
        counts.add_txn(request, response);
        counts
    }

    fn add_txn(&mut self, request: &TxnRequest, response: &TxnResponse) {
        let branch = if response.succeeded { &request.success } else { &request.failure };
        for (operation, result) in branch.iter().zip(&response.responses) {
            match (operation, result) {
                (RequestOp::Range(_), _) => self.ranges += 1,
                (RequestOp::Put(_), _) => self.puts += 1,
                (RequestOp::DeleteRange(_), _) => self.deletes += 1,
                (RequestOp::Txn(nested), ResponseOp::Txn(nested_response)) => self.add_txn(nested, nested_response),
                _ => {}
            }
        }
    }
}

/// What one batch did, counted as the writer evaluates it and added to [`NodeMetrics`] only once
/// the batch is durable (a failed batch counts as failed proposals instead).
#[derive(Debug, Default)]
pub(crate) struct BatchTally {
    pub(crate) requests: u64,
    pub(crate) operations: OperationCounts,
    /// Txns of more than one key operation, as etcd counts them.
    pub(crate) txns: u64,
    pub(crate) leases_granted: u64,
    pub(crate) leases_revoked: u64,
}

impl BatchTally {
    pub(crate) fn count<E>(&mut self, request: &WriteRequest, result: &Result<WriteResponse, E>) {
        self.requests += 1;
        let Ok(response) = result else { return };
        match (request, response) {
            (WriteRequest::Put(_), _) => self.operations.puts += 1,
            (WriteRequest::DeleteRange(_), _) => self.operations.deletes += 1,
            (WriteRequest::Txn(request), WriteResponse::Txn(response)) => {
                let operations = OperationCounts::of_txn(request, response);
                self.operations.ranges += operations.ranges;
                self.operations.puts += operations.puts;
                self.operations.deletes += operations.deletes;
                if operations.total() > 1 {
                    self.txns += 1;
                }
            }
            (WriteRequest::LeaseGrant { .. }, _) => self.leases_granted += 1,
            (WriteRequest::LeaseRevoke { .. }, _) => self.leases_revoked += 1,
            _ => {}
        }
    }
}

/// Counts a write as pending from when it is queued until it is answered or abandoned.
pub(crate) struct PendingProposal<'a>(&'a Gauge);

impl<'a> PendingProposal<'a> {
    pub(crate) fn start(gauge: &'a Gauge) -> PendingProposal<'a> {
        gauge.add(1);
        PendingProposal(gauge)
    }
}

impl Drop for PendingProposal<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl Node {
    /// Writes the node's metrics: etcd's server, mvcc, disk and lease families, and Strata's
    /// writer and log ones. A single member is always its own leader.
    pub fn write_metrics(&self, text: &mut MetricsText) {
        let metrics = &self.shared.metrics;
        let (revision, compacted_revision, key_count, space) = {
            let store = self.shared.store.read().expect("store lock poisoned");
            (store.durable_revision(), store.compacted_revision(), store.key_count(), store.space())
        };
        let watchers = self.shared.watches.watcher_count();

        text.gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", 1i64);
        text.gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", 1i64);
        text.gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", 0i64);
        text.counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", 1);
        text.family("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", MetricKind::Gauge);
        text.sample("etcd_server_id", &[("server_id", &format!("{:x}", self.member_id()))], 1i64);
        text.family("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", MetricKind::Gauge);
        text.sample("etcd_server_version", &[("server_version", crate::ETCD_API_VERSION)], 1i64);
        text.gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", metrics.proposals_committed.get());
        text.gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", metrics.proposals_applied.get());
        text.gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.", metrics.proposals_pending.get());
        text.counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", metrics.proposals_failed.get());
        text.gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", self.shared.cluster.quota_bytes());

        text.gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", space.size_bytes);
        text.gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", space.in_use_bytes);
        text.counter("etcd_mvcc_put_total", "Total number of puts seen by this member.", metrics.puts.get());
        text.counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", metrics.deletes.get());
        text.counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.", metrics.ranges.get());
        text.counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.", metrics.txns.get());
        text.gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", key_count as u64);
        text.gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.", revision);
        // etcd reports -1 until the first compaction.
        let compacted_revision = if compacted_revision == 0 { -1 } else { compacted_revision };
        text.gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.", compacted_revision);
        text.gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", watchers as u64);
        text.counter("etcd_debugging_lease_granted_total", "The total number of granted leases.", metrics.leases_granted.get());
        text.counter("etcd_debugging_lease_revoked_total", "The total number of revoked leases.", metrics.leases_revoked.get());

        text.histogram("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.", &metrics.wal_fsync);
        text.histogram("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend.", &metrics.backend_commit);

        text.histogram("strata_writer_batch_requests", "Requests the writer evaluated and made durable together, per batch.", &metrics.batch_requests);
        text.gauge("strata_log_segments", "Segment files of the log, the active one included.", metrics.log_segments.get());
        text.gauge(
            "strata_log_bytes",
            "Bytes of log entries written since the log began (as replayed at start, plus appended since).",
            self.shared.log_bytes.load(Ordering::Relaxed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_every_observation() {
        let histogram = Histogram::seconds(&DISK_DURATION_BUCKETS_SECONDS);
        histogram.observe_duration(Duration::from_micros(500)); // le 0.001
        histogram.observe_duration(Duration::from_millis(1)); // exactly on a bound: le 0.001
        histogram.observe_duration(Duration::from_millis(3)); // le 0.004
        histogram.observe_duration(Duration::from_secs(10)); // +Inf only
        let mut text = MetricsText::new();
        text.histogram("fsync_seconds", "Help with a \\ and\na newline.", &histogram);
        let text = text.finish();
        assert!(text.starts_with("# HELP fsync_seconds Help with a \\\\ and\\na newline.\n# TYPE fsync_seconds histogram\n"), "{text}");
        assert!(text.contains("fsync_seconds_bucket{le=\"0.001\"} 2\n"), "{text}");
        assert!(text.contains("fsync_seconds_bucket{le=\"0.002\"} 2\n"), "{text}");
        assert!(text.contains("fsync_seconds_bucket{le=\"0.004\"} 3\n"), "{text}");
        assert!(text.contains("fsync_seconds_bucket{le=\"8.192\"} 3\n"), "{text}");
        assert!(text.contains("fsync_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("fsync_seconds_sum 10.0045\n"), "{text}");
        assert!(text.ends_with("fsync_seconds_count 4\n"), "{text}");
        assert_eq!(histogram.count(), 4);
    }

    #[test]
    fn labels_are_escaped() {
        let mut text = MetricsText::new();
        text.family("requests_total", "Requests.", MetricKind::Counter);
        text.sample("requests_total", &[("code", "OK"), ("path", "a\"b\\c\nd")], 3u64);
        assert_eq!(text.finish(), "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{code=\"OK\",path=\"a\\\"b\\\\c\\nd\"} 3\n");
    }

    #[test]
    fn txns_count_the_operations_of_the_branch_taken() {
        use strata_mvcc::{PutRequest, RangeRequest, RangeResponse};
        let put = || RequestOp::Put(PutRequest::default());
        let range = || RequestOp::Range(RangeRequest::default());
        let nested = TxnRequest { success: vec![range(), range()], ..TxnRequest::default() };
        let request = TxnRequest { success: vec![put(), RequestOp::Txn(nested)], failure: vec![range()], ..TxnRequest::default() };
        let nested_response = TxnResponse {
            succeeded: true,
            responses: vec![ResponseOp::Range(RangeResponse::default()), ResponseOp::Range(RangeResponse::default())],
            ..TxnResponse::default()
        };
        let succeeded = TxnResponse {
            succeeded: true,
            responses: vec![ResponseOp::Put(strata_mvcc::PutResponse::default()), ResponseOp::Txn(nested_response)],
            ..TxnResponse::default()
        };
        assert_eq!(OperationCounts::of_txn(&request, &succeeded), OperationCounts { ranges: 2, puts: 1, deletes: 0 });
        let failed = TxnResponse { succeeded: false, responses: vec![ResponseOp::Range(RangeResponse::default())], ..TxnResponse::default() };
        assert_eq!(OperationCounts::of_txn(&request, &failed), OperationCounts { ranges: 1, puts: 0, deletes: 0 });

        let mut tally = BatchTally::default();
        tally.count::<()>(&WriteRequest::Txn(request.clone()), &Ok(WriteResponse::Txn(succeeded)));
        tally.count::<()>(&WriteRequest::Txn(request), &Ok(WriteResponse::Txn(failed)));
        tally.count(&WriteRequest::LeaseGrant { id: 0, ttl: 5 }, &Err(()));
        assert_eq!((tally.requests, tally.txns, tally.operations.ranges, tally.operations.puts, tally.leases_granted), (3, 1, 3, 1, 0));
    }
}
