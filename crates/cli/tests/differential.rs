//! The differential test: the real `strata` binary and a real etcd, both started empty, get the same
//! sequence of KV requests over gRPC, and must answer each one identically, byte for byte in the
//! decoded protobuf, once the headers' `cluster_id`, `member_id` and `raft_term` (which identify the
//! server, not the data) are zeroed. Errors must agree on the gRPC code and the exact message.
//!
//! The steps are data: `(label, Request)` pairs run in order against both servers. Both data sets
//! evolve identically because both start at revision 1 with no keys. A few phases need a revision
//! observed by the previous phase (to build compare operands and compaction points); the revision
//! they receive is the one both servers just agreed on.
//!
//! Requests above gRPC's own receive limit are refused by the gRPC library, not by etcd; Strata
//! rewrites tonic's refusal into grpc-go's code and words, so those compare in full as well.
//! Maintenance.Status and Cluster.MemberList are compared by their headers only.

mod support;

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, etcd_binary, start_etcd, start_strata, Clients, TempDir};
use tonic::Code;

use pb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::range_request::{SortOrder, SortTarget};

// ------------------------------------------------------------------------------------- requests

#[derive(Clone, Debug)]
enum Request {
    Range(pb::RangeRequest),
    Put(pb::PutRequest),
    DeleteRange(pb::DeleteRangeRequest),
    Txn(pb::TxnRequest),
    Compact(pb::CompactionRequest),
    /// Maintenance.Status: only its header is compared (the rest describes the server).
    Status,
    /// Cluster.MemberList: only its header is compared (the rest names the member's URLs).
    MemberList,
}

struct Step {
    label: String,
    request: Request,
    /// Print both answers after the run, for the record.
    noted: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Range(pb::RangeResponse),
    Put(pb::PutResponse),
    DeleteRange(pb::DeleteRangeResponse),
    Txn(pb::TxnResponse),
    Compact(pb::CompactionResponse),
    Header(Option<pb::ResponseHeader>),
    Error { code: Code, message: String },
}

impl Outcome {
    fn revision(&self) -> Option<i64> {
        let header = match self {
            Outcome::Range(response) => response.header,
            Outcome::Put(response) => response.header,
            Outcome::DeleteRange(response) => response.header,
            Outcome::Txn(response) => response.header,
            Outcome::Compact(response) => response.header,
            // Status and MemberList say nothing new about the data (MemberList has no revision).
            Outcome::Header(_) | Outcome::Error { .. } => None,
        };
        header.map(|header| header.revision)
    }
}

/// Zeroes what identifies the server rather than the data, in every header, nested ones included.
fn normalize_header(header: &mut Option<pb::ResponseHeader>) {
    if let Some(header) = header {
        header.cluster_id = 0;
        header.member_id = 0;
        header.raft_term = 0;
    }
}

fn normalize_txn(response: &mut pb::TxnResponse) {
    use pb::response_op::Response;
    normalize_header(&mut response.header);
    for op in &mut response.responses {
        match &mut op.response {
            Some(Response::ResponseRange(range)) => normalize_header(&mut range.header),
            Some(Response::ResponsePut(put)) => normalize_header(&mut put.header),
            Some(Response::ResponseDeleteRange(delete)) => normalize_header(&mut delete.header),
            Some(Response::ResponseTxn(txn)) => normalize_txn(txn),
            None => {}
        }
    }
}

fn normalize(outcome: &mut Outcome) {
    match outcome {
        Outcome::Range(response) => normalize_header(&mut response.header),
        Outcome::Put(response) => normalize_header(&mut response.header),
        Outcome::DeleteRange(response) => normalize_header(&mut response.header),
        Outcome::Txn(response) => normalize_txn(response),
        Outcome::Compact(response) => normalize_header(&mut response.header),
        Outcome::Header(header) => normalize_header(header),
        Outcome::Error { .. } => {}
    }
}

async fn execute(clients: &mut Clients, request: &Request) -> Outcome {
    fn settle<T>(result: Result<tonic::Response<T>, tonic::Status>, wrap: fn(T) -> Outcome) -> Outcome {
        match result {
            Ok(response) => wrap(response.into_inner()),
            Err(status) => Outcome::Error { code: status.code(), message: status.message().to_string() },
        }
    }
    let kv = &mut clients.kv;
    let mut outcome = match request.clone() {
        Request::Range(request) => settle(kv.range(request).await, Outcome::Range),
        Request::Put(request) => settle(kv.put(request).await, Outcome::Put),
        Request::DeleteRange(request) => settle(kv.delete_range(request).await, Outcome::DeleteRange),
        Request::Txn(request) => settle(kv.txn(request).await, Outcome::Txn),
        Request::Compact(request) => settle(kv.compact(request).await, Outcome::Compact),
        Request::Status => settle(clients.maintenance.status(pb::StatusRequest {}).await, |response| Outcome::Header(response.header)),
        Request::MemberList => settle(clients.cluster.member_list(pb::MemberListRequest::default()).await, |response| Outcome::Header(response.header)),
    };
    normalize(&mut outcome);
    outcome
}

/// `{:?}`, cut short: oversized requests carry megabytes of value.
fn shown(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    if text.len() <= 3000 {
        return text;
    }
    let mut cut = 3000;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} more characters)", &text[..cut], text.len() - cut)
}

struct Runner {
    strata: Clients,
    etcd: Clients,
    compared: usize,
    mismatches: Vec<String>,
    /// The revision of the last successful response (both servers agreed on it).
    revision: i64,
    /// The answers of the `noted` steps: (label, strata's, etcd's).
    noted: Vec<(String, Outcome, Outcome)>,
}

impl Runner {
    async fn run(&mut self, steps: Vec<Step>) {
        for step in steps {
            let strata = execute(&mut self.strata, &step.request).await;
            let etcd = execute(&mut self.etcd, &step.request).await;
            self.compared += 1;
            if step.noted {
                self.noted.push((step.label.clone(), strata.clone(), etcd.clone()));
            }
            if strata != etcd {
                self.mismatches.push(format!(
                    "step {} `{}`\n  request: {}\n  strata:  {}\n  etcd:    {}",
                    self.compared,
                    step.label,
                    shown(&step.request),
                    shown(&strata),
                    shown(&etcd)
                ));
            }
            if let Some(revision) = etcd.revision() {
                self.revision = revision;
            }
        }
    }
}

// ------------------------------------------------------------------------------ request builders

fn step(label: impl Into<String>, request: Request) -> Step {
    Step { label: label.into(), request, noted: false }
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// The `range_end` that makes `[prefix, end)` the keys starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = bytes(prefix);
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn range(key: &str, end: &[u8]) -> pb::RangeRequest {
    pb::RangeRequest { key: bytes(key), range_end: end.to_vec(), ..Default::default() }
}

fn get(key: &str) -> pb::RangeRequest {
    range(key, b"")
}

fn put(key: &str, value: &str) -> pb::PutRequest {
    pb::PutRequest { key: bytes(key), value: bytes(value), ..Default::default() }
}

fn delete(key: &str, end: &[u8]) -> pb::DeleteRangeRequest {
    pb::DeleteRangeRequest { key: bytes(key), range_end: end.to_vec(), prev_kv: false }
}

/// A put of `key` whose encoding is exactly `encoded_len` bytes.
fn put_encoded_as(key: &str, encoded_len: usize) -> pb::PutRequest {
    use prost::Message;
    let mut request = put(key, "");
    let overhead = request.encoded_len() + 1 + prost::encoding::encoded_len_varint(encoded_len as u64);
    request.value = vec![b'e'; encoded_len - overhead];
    assert_eq!(request.encoded_len(), encoded_len);
    request
}

fn op_range(request: pb::RangeRequest) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestRange(request)) }
}

fn op_put(request: pb::PutRequest) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestPut(request)) }
}

fn op_delete(request: pb::DeleteRangeRequest) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestDeleteRange(request)) }
}

fn op_txn(request: pb::TxnRequest) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestTxn(request)) }
}

fn txn(compare: Vec<pb::Compare>, success: Vec<pb::RequestOp>, failure: Vec<pb::RequestOp>) -> pb::TxnRequest {
    pb::TxnRequest { compare, success, failure }
}

fn compare(key: &str, target: CompareTarget, result: CompareResult, operand: Option<TargetUnion>) -> pb::Compare {
    pb::Compare { result: result as i32, target: target as i32, key: bytes(key), range_end: Vec::new(), target_union: operand }
}

/// The operand that goes with `target`, from an integer (or, for VALUE, a string).
fn operand(target: CompareTarget, number: i64, value: &str) -> TargetUnion {
    match target {
        CompareTarget::Version => TargetUnion::Version(number),
        CompareTarget::Create => TargetUnion::CreateRevision(number),
        CompareTarget::Mod => TargetUnion::ModRevision(number),
        CompareTarget::Value => TargetUnion::Value(bytes(value)),
        CompareTarget::Lease => TargetUnion::Lease(number),
    }
}

const TARGETS: [CompareTarget; 5] = [CompareTarget::Version, CompareTarget::Create, CompareTarget::Mod, CompareTarget::Value, CompareTarget::Lease];
const RESULTS: [CompareResult; 4] = [CompareResult::Equal, CompareResult::Greater, CompareResult::Less, CompareResult::NotEqual];
const ORDERS: [SortOrder; 3] = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend];
const SORT_TARGETS: [SortTarget; 5] = [SortTarget::Key, SortTarget::Version, SortTarget::Create, SortTarget::Mod, SortTarget::Value];

/// Above etcd's default `--max-request-bytes` (1.5 MiB), below gRPC's limit (that + 512 KiB).
const TOO_LARGE: usize = 1_600_000;
/// etcd's default `--max-request-bytes`, Strata's too.
const REQUEST_BYTES_MAX: usize = 1536 * 1024;
/// Above gRPC's receive limit (1.5 MiB + 512 KiB = 2 MiB).
const ABOVE_GRPC_LIMIT: usize = 3_000_000;

// ------------------------------------------------------------------------------------------ plan

/// Puts that build the data set (revision 1 → 16), with every put option and error on the way.
/// The `s/` keys are the sort grid's: six keys whose versions, create and mod revisions and values
/// are all in different orders than the keys, with ties (which Go's insertion sort keeps stable).
fn puts() -> Vec<Step> {
    use Request::Put;
    vec![
        step("put s/c=3", Put(put("s/c", "3"))),
        step("put s/a=5", Put(put("s/a", "5"))),
        step("put s/e=1", Put(put("s/e", "1"))),
        step("put s/b=5 (same value as s/a)", Put(put("s/b", "5"))),
        step("put s/a=2 overwrite: version 2", Put(pb::PutRequest { prev_kv: true, ..put("s/a", "2") })),
        step("put s/f=4", Put(put("s/f", "4"))),
        step("put s/d empty value", Put(put("s/d", ""))),
        step("put s/c=9 overwrite with prev_kv", Put(pb::PutRequest { prev_kv: true, ..put("s/c", "9") })),
        step("put s/c=0 overwrite: version 3", Put(put("s/c", "0"))),
        step("put s/e=1 same value again", Put(pb::PutRequest { prev_kv: true, ..put("s/e", "1") })),
        step("put prev_kv on a missing key", Put(pb::PutRequest { prev_kv: true, ..put("p/1", "one") })),
        step("put p/2", Put(put("p/2", "two"))),
        step("put p/3", Put(put("p/3", "three"))),
        step("put ignore_value on an existing key", Put(pb::PutRequest { ignore_value: true, prev_kv: true, ..put("p/2", "") })),
        step("put ignore_value on a missing key", Put(pb::PutRequest { ignore_value: true, ..put("p/missing", "") })),
        step("put ignore_value with a value", Put(pb::PutRequest { ignore_value: true, ..put("p/2", "x") })),
        step("put ignore_value with a value, missing key", Put(pb::PutRequest { ignore_value: true, ..put("p/missing", "x") })),
        step("put ignore_lease on an existing key", Put(pb::PutRequest { ignore_lease: true, prev_kv: true, ..put("p/3", "drei") })),
        step("put ignore_lease on a missing key", Put(pb::PutRequest { ignore_lease: true, ..put("p/missing", "x") })),
        step("put ignore_lease with a lease", Put(pb::PutRequest { ignore_lease: true, lease: 7, ..put("p/3", "x") })),
        step("put ignore_value and ignore_lease", Put(pb::PutRequest { ignore_value: true, ignore_lease: true, ..put("p/1", "") })),
        step("put with a lease that does not exist", Put(pb::PutRequest { lease: 0x1234, ..put("p/4", "x") })),
        step("put with a lease that does not exist, ignore_value", Put(pb::PutRequest { lease: 0x1234, ignore_value: true, ..put("p/missing", "") })),
        step("put with a negative lease", Put(pb::PutRequest { lease: -1, ..put("p/4", "x") })),
        step("put empty key", Put(put("", "x"))),
        step("put empty key, ignore_value with a value", Put(pb::PutRequest { ignore_value: true, ..put("", "x") })),
        step("put key with a zero byte", Put(pb::PutRequest { key: b"z\0z".to_vec(), value: vec![0, 1, 2, 0xff], ..Default::default() })),
        step("put key 0xff 0xff", Put(pb::PutRequest { key: vec![0xff, 0xff], value: bytes("ff"), ..Default::default() })),
    ]
}

/// Every range option against the data `puts` built; `rev` is the current revision.
fn ranges(rev: i64) -> Vec<Step> {
    use Request::Range;
    let s = prefix_end("s/");
    let mut steps = vec![
        step("range single key", Range(get("s/a"))),
        step("range missing key", Range(get("s/zz"))),
        step("range empty key", Range(get(""))),
        step("range empty key with range_end", Range(range("", b"z"))),
        step("range [s/b, s/e)", Range(range("s/b", b"s/e"))),
        step("range prefix s/", Range(range("s/", &s))),
        step("range prefix p/", Range(range("p/", &prefix_end("p/")))),
        step("range prefix z (a key with a zero byte)", Range(range("z", &prefix_end("z")))),
        step("range [p/, \\0): every key >= p/", Range(range("p/", b"\0"))),
        step("range [\\0, \\0): everything", Range(range("\0", b"\0"))),
        step("range [0xff, \\0)", Range(pb::RangeRequest { key: vec![0xff], range_end: vec![0], ..Default::default() })),
        step("range range_end < key", Range(range("s/e", b"s/b"))),
        step("range range_end == key", Range(range("s/b", b"s/b"))),
        step("range prefix with no key", Range(range("q/", &prefix_end("q/")))),
        step("range key with a zero byte", Range(pb::RangeRequest { key: b"z\0z".to_vec(), ..Default::default() })),
        step("range [z, z\\0\\0)", Range(pb::RangeRequest { key: b"z".to_vec(), range_end: b"z\0\0".to_vec(), ..Default::default() })),
        step("range serializable", Range(pb::RangeRequest { serializable: true, ..range("s/", &s) })),
        step("range unknown sort order (no sort)", Range(pb::RangeRequest { sort_order: 9, limit: 2, ..range("s/", &s) })),
        step("range unknown sort order, sort by value", Range(pb::RangeRequest { sort_order: 9, sort_target: SortTarget::Value as i32, ..range("s/", &s) })),
        step("range serializable single key", Range(pb::RangeRequest { serializable: true, ..get("p/1") })),
    ];
    for limit in [-1, 0, 1, 2, 5, 6, 7, 100] {
        steps.push(step(format!("range prefix s/ limit {limit}"), Range(pb::RangeRequest { limit, ..range("s/", &s) })));
    }
    for limit in [0, 1, 3] {
        steps.push(step(format!("range everything limit {limit}"), Range(pb::RangeRequest { limit, ..range("\0", b"\0") })));
    }
    steps.push(step("range single key limit 1", Range(pb::RangeRequest { limit: 1, ..get("s/a") })));
    for revision in [-5, 1, 2, 3, 5, 9, rev - 1, rev] {
        steps.push(step(format!("range prefix s/ at revision {revision}"), Range(pb::RangeRequest { revision, ..range("s/", &s) })));
    }
    steps.push(step("range single key at revision 4 (before its overwrite)", Range(pb::RangeRequest { revision: 4, ..get("s/a") })));
    steps.push(step("range single key at revision 2 (before it existed)", Range(pb::RangeRequest { revision: 2, ..get("s/a") })));
    steps.push(step("range at the next revision (future)", Range(pb::RangeRequest { revision: rev + 1, ..get("s/a") })));
    steps.push(step("range at a far future revision", Range(pb::RangeRequest { revision: 1_000_000, ..range("s/", &s) })));
    steps.push(step("range empty key at a future revision", Range(pb::RangeRequest { revision: 1_000_000, ..get("") })));
    steps.push(step("range older revision with limit", Range(pb::RangeRequest { revision: 7, limit: 2, ..range("s/", &s) })));

    // The full sort grid over the six s/ keys, without and with a limit.
    for order in ORDERS {
        for target in SORT_TARGETS {
            for limit in [0, 4] {
                steps.push(step(
                    format!("range s/ sort {order:?} by {target:?} limit {limit}"),
                    Range(pb::RangeRequest { sort_order: order as i32, sort_target: target as i32, limit, ..range("s/", &s) }),
                ));
            }
        }
    }
    // Sorting everything (11 keys, still within Go's stable insertion sort).
    for (order, target) in [(SortOrder::Descend, SortTarget::Key), (SortOrder::Ascend, SortTarget::Value), (SortOrder::Descend, SortTarget::Version)] {
        steps.push(step(
            format!("range everything sort {order:?} by {target:?}"),
            Range(pb::RangeRequest { sort_order: order as i32, sort_target: target as i32, ..range("\0", b"\0") }),
        ));
    }

    let flags: Vec<(&str, pb::RangeRequest)> = vec![
        ("keys_only", pb::RangeRequest { keys_only: true, ..range("s/", &s) }),
        ("count_only", pb::RangeRequest { count_only: true, ..range("s/", &s) }),
        ("keys_only and count_only", pb::RangeRequest { keys_only: true, count_only: true, ..range("s/", &s) }),
        ("count_only limit 2", pb::RangeRequest { count_only: true, limit: 2, ..range("s/", &s) }),
        ("count_only missing key", pb::RangeRequest { count_only: true, ..get("s/zz") }),
        ("keys_only limit 2", pb::RangeRequest { keys_only: true, limit: 2, ..range("s/", &s) }),
        ("keys_only sort by value descend", pb::RangeRequest { keys_only: true, sort_order: SortOrder::Descend as i32, sort_target: SortTarget::Value as i32, ..range("s/", &s) }),
        ("keys_only sort by value limit 3", pb::RangeRequest { keys_only: true, sort_order: SortOrder::Ascend as i32, sort_target: SortTarget::Value as i32, limit: 3, ..range("s/", &s) }),
        ("count_only sort descend limit 1", pb::RangeRequest { count_only: true, sort_order: SortOrder::Descend as i32, limit: 1, ..range("s/", &s) }),
        ("keys_only at revision 5", pb::RangeRequest { keys_only: true, revision: 5, ..range("s/", &s) }),
        ("count_only at revision 5", pb::RangeRequest { count_only: true, revision: 5, ..range("s/", &s) }),
        ("min_mod_revision 6", pb::RangeRequest { min_mod_revision: 6, ..range("s/", &s) }),
        ("max_mod_revision 6", pb::RangeRequest { max_mod_revision: 6, ..range("s/", &s) }),
        ("min and max mod_revision 5..=9", pb::RangeRequest { min_mod_revision: 5, max_mod_revision: 9, ..range("s/", &s) }),
        ("min_mod_revision above every key", pb::RangeRequest { min_mod_revision: 1_000, ..range("s/", &s) }),
        ("min_create_revision 4", pb::RangeRequest { min_create_revision: 4, ..range("s/", &s) }),
        ("max_create_revision 4", pb::RangeRequest { max_create_revision: 4, ..range("s/", &s) }),
        ("min and max create_revision 3..=5", pb::RangeRequest { min_create_revision: 3, max_create_revision: 5, ..range("s/", &s) }),
        ("negative max_create_revision", pb::RangeRequest { max_create_revision: -1, ..range("s/", &s) }),
        ("min_mod_revision 6 limit 1", pb::RangeRequest { min_mod_revision: 6, limit: 1, ..range("s/", &s) }),
        ("min_mod_revision 6 limit 2", pb::RangeRequest { min_mod_revision: 6, limit: 2, ..range("s/", &s) }),
        ("min_mod_revision 6 limit 3", pb::RangeRequest { min_mod_revision: 6, limit: 3, ..range("s/", &s) }),
        ("max_mod_revision 6 limit 2 sort by mod descend", pb::RangeRequest { max_mod_revision: 6, limit: 2, sort_order: SortOrder::Descend as i32, sort_target: SortTarget::Mod as i32, ..range("s/", &s) }),
        ("min_create_revision 3 count_only", pb::RangeRequest { min_create_revision: 3, count_only: true, ..range("s/", &s) }),
        ("max_create_revision 5 keys_only limit 2", pb::RangeRequest { max_create_revision: 5, keys_only: true, limit: 2, ..range("s/", &s) }),
        ("min_mod_revision 6 at revision 8", pb::RangeRequest { min_mod_revision: 6, revision: 8, ..range("s/", &s) }),
        ("every filter, sort by create descend, limit 2", pb::RangeRequest {
            min_mod_revision: 2,
            max_mod_revision: 10,
            min_create_revision: 2,
            max_create_revision: 7,
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Create as i32,
            limit: 2,
            keys_only: true,
            ..range("s/", &s)
        }),
        ("serializable count_only", pb::RangeRequest { serializable: true, count_only: true, ..range("\0", b"\0") }),
        ("serializable at an older revision, sorted", pb::RangeRequest { serializable: true, revision: 6, sort_order: SortOrder::Descend as i32, ..range("s/", &s) }),
    ];
    steps.extend(flags.into_iter().map(|(label, request)| step(format!("range {label}"), Range(request))));
    steps
}

/// DeleteRange in every shape. Ends with the data set rebuilt under `d/` and `t/`.
fn deletes() -> Vec<Step> {
    use Request::{DeleteRange, Put, Range};
    let mut steps = Vec::new();
    for key in ["d/a", "d/b", "d/c", "d/d", "d/e", "e/a", "e/b", "f/a"] {
        steps.push(step(format!("put {key}"), Put(put(key, key))));
    }
    steps.extend([
        step("delete single key", DeleteRange(delete("d/a", b""))),
        step("delete the same key again (missing: no revision bump)", DeleteRange(delete("d/a", b""))),
        step("delete missing key with prev_kv", DeleteRange(pb::DeleteRangeRequest { prev_kv: true, ..delete("d/zz", b"") })),
        step("delete single key with prev_kv", DeleteRange(pb::DeleteRangeRequest { prev_kv: true, ..delete("d/b", b"") })),
        step("delete range [d/c, d/e) with prev_kv", DeleteRange(pb::DeleteRangeRequest { prev_kv: true, ..delete("d/c", b"d/e") })),
        step("delete range_end < key", DeleteRange(delete("d/e", b"d/a"))),
        step("delete empty range [d/0, d/1)", DeleteRange(delete("d/0", b"d/1"))),
        step("range d/ after the deletes", Range(range("d/", &prefix_end("d/")))),
        step("delete prefix e/", DeleteRange(delete("e/", &prefix_end("e/")))),
        step("range e/ after the delete", Range(range("e/", &prefix_end("e/")))),
        step("delete empty key", DeleteRange(delete("", b""))),
        step("delete empty key with range_end", DeleteRange(delete("", b"\0"))),
        step("recreate d/a: version restarts at 1", Put(pb::PutRequest { prev_kv: true, ..put("d/a", "again") })),
        step("delete [f/, \\0) with prev_kv: every key >= f/", DeleteRange(pb::DeleteRangeRequest { prev_kv: true, ..delete("f/", b"\0") })),
        step("range everything after deleting >= f/", Range(range("\0", b"\0"))),
        step("delete [\\0, \\0): everything", DeleteRange(pb::DeleteRangeRequest { prev_kv: true, ..delete("\0", b"\0") })),
        step("delete everything again (nothing left)", DeleteRange(delete("\0", b"\0"))),
        step("range everything when empty", Range(range("\0", b"\0"))),
        step("range everything count_only when empty", Range(pb::RangeRequest { count_only: true, ..range("\0", b"\0") })),
    ]);
    steps
}

/// Sets up the txn phase's keys: `t/x` (created then modified: version 2) and `t/y`.
fn txn_setup() -> Vec<Step> {
    use Request::Put;
    vec![
        step("put t/x=l", Put(put("t/x", "l"))),
        step("put t/x=m", Put(put("t/x", "m"))),
        step("put t/y=m", Put(put("t/y", "m"))),
    ]
}

/// Txns. `rev` is the revision after `txn_setup`: `t/x` was created at `rev - 2`, modified at
/// `rev - 1` (version 2, value "m"), `t/y` created at `rev` (version 1, value "m").
fn txns(rev: i64) -> Vec<Step> {
    use Request::Txn;
    let (x_create, x_mod) = (rev - 2, rev - 1);
    let mut steps = Vec::new();

    // The compare grid: every target × result, against an existing key with operands below,
    // equal to and above its attribute, and against a missing key. Read-only: the branches tell
    // which was taken.
    let success = || vec![op_range(get("t/x"))];
    let failure = || vec![op_range(pb::RangeRequest { count_only: true, ..get("t/y") })];
    for target in TARGETS {
        let actual = match target {
            CompareTarget::Version => 2,
            CompareTarget::Create => x_create,
            CompareTarget::Mod => x_mod,
            CompareTarget::Value | CompareTarget::Lease => 0,
        };
        for result in RESULTS {
            for (delta, value) in [(-1, "l"), (0, "m"), (1, "n")] {
                steps.push(step(
                    format!("txn {target:?} {result:?} existing key, operand {delta:+}"),
                    Txn(txn(vec![compare("t/x", target, result, Some(operand(target, actual + delta, value)))], success(), failure())),
                ));
            }
            for (number, value) in [(0, ""), (1, "a")] {
                steps.push(step(
                    format!("txn {target:?} {result:?} missing key, operand {number}/{value:?}"),
                    Txn(txn(vec![compare("t/missing", target, result, Some(operand(target, number, value)))], success(), failure())),
                ));
            }
        }
    }
    // Compares whose operand is absent or of another kind than the target compare against zero.
    for (label, cmp) in [
        ("no operand, version equal", compare("t/x", CompareTarget::Version, CompareResult::Equal, None)),
        ("no operand, version greater", compare("t/x", CompareTarget::Version, CompareResult::Greater, None)),
        ("no operand, value greater", compare("t/x", CompareTarget::Value, CompareResult::Greater, None)),
        ("no operand, value equal, missing key", compare("t/missing", CompareTarget::Value, CompareResult::Equal, None)),
        ("version target with a mod operand", compare("t/x", CompareTarget::Version, CompareResult::Equal, Some(TargetUnion::ModRevision(2)))),
        ("value target with a version operand", compare("t/x", CompareTarget::Value, CompareResult::Greater, Some(TargetUnion::Version(0)))),
        // Values outside etcd's enums: an unknown result always holds; an unknown target
        // compares as equal.
        ("unknown result", pb::Compare { result: 9, ..compare("t/x", CompareTarget::Version, CompareResult::Equal, Some(TargetUnion::Version(7))) }),
        ("unknown target, equal", pb::Compare { target: 9, ..compare("t/x", CompareTarget::Version, CompareResult::Equal, Some(TargetUnion::Version(7))) }),
        ("unknown target, greater", pb::Compare { target: 9, ..compare("t/x", CompareTarget::Version, CompareResult::Greater, Some(TargetUnion::Version(0))) }),
        ("unknown target, missing key", pb::Compare { target: 9, ..compare("t/missing", CompareTarget::Version, CompareResult::Equal, None) }),
    ] {
        steps.push(step(format!("txn compare: {label}"), Txn(txn(vec![cmp], success(), failure()))));
    }
    // Compares over a range: all keys must satisfy.
    let with_end = |end: &[u8], target, result, operand| pb::Compare { range_end: end.to_vec(), ..compare("t/", target, result, Some(operand)) };
    let t_end = prefix_end("t/");
    for (label, cmp) in [
        ("range t/ value equal m (both are)", with_end(&t_end, CompareTarget::Value, CompareResult::Equal, TargetUnion::Value(bytes("m")))),
        ("range t/ version equal 2 (only t/x)", with_end(&t_end, CompareTarget::Version, CompareResult::Equal, TargetUnion::Version(2))),
        ("range t/ version greater 0", with_end(&t_end, CompareTarget::Version, CompareResult::Greater, TargetUnion::Version(0))),
        ("range t/ mod less than rev + 1", with_end(&t_end, CompareTarget::Mod, CompareResult::Less, TargetUnion::ModRevision(rev + 1))),
        ("range t/ create not equal t/x's", with_end(&t_end, CompareTarget::Create, CompareResult::NotEqual, TargetUnion::CreateRevision(x_create))),
        ("range [\\0, \\0) version greater 0", pb::Compare { key: vec![0], ..with_end(b"\0", CompareTarget::Version, CompareResult::Greater, TargetUnion::Version(0)) }),
        ("range [t/, \\0) lease equal 0", with_end(b"\0", CompareTarget::Lease, CompareResult::Equal, TargetUnion::Lease(0))),
        ("empty range [u/, v/) version equal 0", pb::Compare { key: bytes("u/"), ..with_end(b"v/", CompareTarget::Version, CompareResult::Equal, TargetUnion::Version(0)) }),
        ("empty range [u/, v/) value equal empty", pb::Compare { key: bytes("u/"), ..with_end(b"v/", CompareTarget::Value, CompareResult::Equal, TargetUnion::Value(Vec::new())) }),
        ("range_end < key", pb::Compare { key: bytes("t/y"), ..with_end(b"t/a", CompareTarget::Version, CompareResult::Equal, TargetUnion::Version(0)) }),
    ] {
        steps.push(step(format!("txn compare {label}"), Txn(txn(vec![cmp], success(), failure()))));
    }
    let x_version = |result, version| compare("t/x", CompareTarget::Version, result, Some(TargetUnion::Version(version)));
    steps.push(step(
        "txn two compares, both hold",
        Txn(txn(vec![x_version(CompareResult::Equal, 2), compare("t/y", CompareTarget::Value, CompareResult::Equal, Some(TargetUnion::Value(bytes("m"))))], success(), failure())),
    ));
    steps.push(step(
        "txn two compares, the second fails",
        Txn(txn(vec![x_version(CompareResult::Equal, 2), compare("t/y", CompareTarget::Version, CompareResult::Greater, Some(TargetUnion::Version(1)))], success(), failure())),
    ));
    steps.push(step("txn with no compare and no ops", Txn(txn(vec![], vec![], vec![]))));
    steps.push(step("txn with no compare: success branch", Txn(txn(vec![], success(), failure()))));

    // Branches that write.
    steps.extend([
        step(
            "txn success: put, get, delete",
            Txn(txn(
                vec![x_version(CompareResult::Equal, 2)],
                vec![
                    op_put(pb::PutRequest { prev_kv: true, ..put("t/x", "n") }),
                    op_range(get("t/x")),
                    op_delete(pb::DeleteRangeRequest { prev_kv: true, ..delete("t/y", b"") }),
                    op_range(range("t/", &t_end)),
                ],
                vec![op_put(put("t/failure", "f"))],
            )),
        ),
        step(
            "txn failure: put, get, delete",
            Txn(txn(
                vec![x_version(CompareResult::Equal, 2)],
                vec![op_put(put("t/success", "s"))],
                vec![
                    op_range(range("t/", &t_end)),
                    op_put(pb::PutRequest { prev_kv: true, ..put("t/y", "again") }),
                    op_put(put("t/z", "z")),
                    op_delete(pb::DeleteRangeRequest { prev_kv: true, ..delete("t/x", b"") }),
                    op_range(pb::RangeRequest { sort_order: SortOrder::Descend as i32, ..range("t/", &t_end) }),
                ],
            )),
        ),
        step(
            "txn that changes nothing: delete of a missing key (no revision bump)",
            Txn(txn(vec![], vec![op_delete(delete("t/missing", b"")), op_range(get("t/y"))], vec![])),
        ),
        step(
            "txn: a delete of nothing after a put reports the put's revision",
            Txn(txn(vec![], vec![op_put(put("t/w", "w")), op_delete(delete("t/missing", b"")), op_range(range("t/", &t_end))], vec![])),
        ),
        step(
            "txn: range before and after a put of the same key",
            Txn(txn(vec![], vec![op_range(get("t/v")), op_put(put("t/v", "v")), op_range(get("t/v")), op_range(pb::RangeRequest { revision: rev, ..get("t/v") })], vec![])),
        ),
        step(
            "txn: delete a range then put outside it, range everything",
            Txn(txn(vec![], vec![op_delete(delete("t/v", b"t/x")), op_put(put("t/x", "x")), op_range(range("t/", &t_end))], vec![])),
        ),
        step(
            "txn: put with ignore_value, ignore_lease and prev_kv",
            Txn(txn(
                vec![],
                vec![op_put(pb::PutRequest { ignore_value: true, prev_kv: true, ..put("t/x", "") }), op_put(pb::PutRequest { ignore_lease: true, ..put("t/y", "y") })],
                vec![],
            )),
        ),
        step(
            "txn: put ignore_value on a missing key",
            Txn(txn(vec![], vec![op_put(pb::PutRequest { ignore_value: true, ..put("t/missing", "") })], vec![])),
        ),
        step(
            "txn: put ignore_value on a missing key in the branch not taken",
            Txn(txn(vec![], vec![op_put(put("t/a", "a"))], vec![op_put(pb::PutRequest { ignore_value: true, ..put("t/missing", "") })])),
        ),
        step(
            "txn: put with a lease that does not exist",
            Txn(txn(vec![], vec![op_put(put("t/a", "a")), op_put(pb::PutRequest { lease: 99, ..put("t/b", "b") })], vec![])),
        ),
        step(
            "txn: put ignore_value on a key a previous op of the txn creates",
            Txn(txn(vec![], vec![op_put(put("t/new", "n")), op_put(pb::PutRequest { ignore_value: true, ..put("t/new2", "") })], vec![])),
        ),
        step("txn: delete [t/, \\0) with prev_kv", Txn(txn(vec![], vec![op_delete(pb::DeleteRangeRequest { prev_kv: true, ..delete("t/", b"\0") })], vec![]))),
        step("txn: put t/x back", Txn(txn(vec![], vec![op_put(put("t/x", "m")), op_put(put("t/y", "m"))], vec![]))),
    ]);

    // Nested txns, two levels, the inner compares evaluated before anything applies.
    let inner = |then_key: &str, else_key: &str, cmp: pb::Compare| {
        op_txn(txn(
            vec![cmp],
            vec![op_put(put(then_key, "then")), op_range(range("t/", &t_end))],
            vec![op_put(put(else_key, "else")), op_range(pb::RangeRequest { count_only: true, ..range("t/", &t_end) })],
        ))
    };
    let x_missing = compare("t/x", CompareTarget::Version, CompareResult::Equal, Some(TargetUnion::Version(0)));
    let x_exists = compare("t/x", CompareTarget::Version, CompareResult::Greater, Some(TargetUnion::Version(0)));
    steps.extend([
        step(
            "nested txn: outer success, inner success",
            Txn(txn(vec![x_exists.clone()], vec![op_put(put("t/n1", "o")), inner("t/n2", "t/n3", x_exists.clone())], vec![])),
        ),
        step(
            "nested txn: outer success, inner failure: inner compares see the state before the outer delete",
            Txn(txn(vec![x_exists.clone()], vec![op_delete(delete("t/x", b"")), inner("t/n4", "t/n5", x_missing.clone()), op_range(get("t/x"))], vec![])),
        ),
        step(
            "nested txn: outer failure, inner in the failure branch",
            Txn(txn(vec![x_exists.clone()], vec![op_range(get("t/x"))], vec![inner("t/x", "t/n6", x_missing.clone()), op_put(put("t/n7", "o"))])),
        ),
        step(
            "nested txn: read-only, both levels",
            Txn(txn(vec![], vec![op_range(get("t/x")), op_txn(txn(vec![x_exists.clone()], vec![op_range(range("t/", &t_end))], vec![]))], vec![])),
        ),
        step(
            "nested txn: empty inner txn",
            Txn(txn(vec![], vec![op_txn(txn(vec![], vec![], vec![]))], vec![])),
        ),
        step(
            "nested txn: the same key in the inner then and else branches",
            Txn(txn(vec![], vec![op_txn(txn(vec![x_missing.clone()], vec![op_put(put("t/k", "then"))], vec![op_put(put("t/k", "else"))]))], vec![])),
        ),
        step(
            "nested txn: three levels",
            Txn(txn(
                vec![],
                vec![op_txn(txn(vec![], vec![op_txn(txn(vec![x_exists.clone()], vec![op_put(put("t/deep", "3"))], vec![])), op_range(get("t/deep"))], vec![]))],
                vec![],
            )),
        ),
    ]);

    // Errors found before the txn runs.
    let puts_of = |count: usize, prefix: &str| (0..count).map(|i| op_put(put(&format!("{prefix}{i:03}"), "v"))).collect::<Vec<_>>();
    let gets_of = |count: usize| (0..count).map(|i| op_range(get(&format!("t/g{i:03}")))).collect::<Vec<_>>();
    let compares_of = |count: usize| (0..count).map(|_| x_exists.clone()).collect::<Vec<_>>();
    steps.extend([
        step("txn: two puts of one key", Txn(txn(vec![], vec![op_put(put("t/d", "1")), op_put(put("t/d", "2"))], vec![]))),
        step("txn: two puts of one key in the failure branch", Txn(txn(vec![], vec![], vec![op_put(put("t/d", "1")), op_put(put("t/d", "2"))]))),
        step("txn: the same key in success and failure is fine", Txn(txn(vec![], vec![op_put(put("t/d", "1"))], vec![op_put(put("t/d", "2"))]))),
        step("txn: put inside a deleted range", Txn(txn(vec![], vec![op_delete(delete("t/a", b"t/z")), op_put(put("t/d", "2"))], vec![]))),
        step("txn: put before a delete of its key", Txn(txn(vec![], vec![op_put(put("t/d", "2")), op_delete(delete("t/d", b""))], vec![]))),
        step("txn: put at a deleted range's end is fine", Txn(txn(vec![], vec![op_delete(delete("t/a", b"t/d")), op_put(put("t/d", "3"))], vec![]))),
        step("txn: put under a [key, \\0) delete (taken literally)", Txn(txn(vec![], vec![op_delete(delete("t/e", b"\0")), op_put(put("t/f", "f"))], vec![]))),
        step("txn: two deletes of one key are fine", Txn(txn(vec![], vec![op_delete(delete("t/f", b"")), op_delete(delete("t/f", b""))], vec![]))),
        step(
            "txn: nested put vs outer put of one key",
            Txn(txn(vec![], vec![op_txn(txn(vec![], vec![op_put(put("t/d", "inner"))], vec![])), op_put(put("t/d", "outer"))], vec![])),
        ),
        step(
            "txn: nested else put vs outer put of one key",
            Txn(txn(vec![], vec![op_put(put("t/d", "outer")), op_txn(txn(vec![], vec![], vec![op_put(put("t/d", "inner"))]))], vec![])),
        ),
        step(
            "txn: nested put vs outer delete",
            Txn(txn(vec![], vec![op_delete(delete("t/c", b"t/e")), op_txn(txn(vec![], vec![op_put(put("t/d", "inner"))], vec![]))], vec![])),
        ),
        step(
            "txn: outer put vs nested delete",
            Txn(txn(vec![], vec![op_txn(txn(vec![], vec![op_delete(delete("t/d", b""))], vec![])), op_put(put("t/d", "outer"))], vec![])),
        ),
        step(
            "txn: puts of one key in two nested txns",
            Txn(txn(vec![], vec![op_txn(txn(vec![], vec![op_put(put("t/d", "1"))], vec![])), op_txn(txn(vec![], vec![op_put(put("t/d", "2"))], vec![]))], vec![])),
        ),
        step("txn: 128 puts (the limit)", Txn(txn(vec![], puts_of(128, "t/m"), vec![]))),
        step("txn: 129 puts", Txn(txn(vec![], puts_of(129, "t/m"), vec![]))),
        step("txn: 129 ranges in the failure branch", Txn(txn(vec![], vec![], gets_of(129)))),
        step("txn: 129 compares", Txn(txn(compares_of(129), vec![], vec![]))),
        step("txn: 128 compares, 128 ranges", Txn(txn(compares_of(128), gets_of(128), vec![]))),
        step(
            "txn: 100 ops with a nested txn of 29 ops",
            Txn(txn(vec![], [gets_of(99), vec![op_txn(txn(vec![], gets_of(29), vec![]))]].concat(), vec![])),
        ),
        step(
            "txn: 100 ops with a nested txn of 28 ops",
            Txn(txn(vec![], [gets_of(99), vec![op_txn(txn(vec![], gets_of(28), vec![]))]].concat(), vec![])),
        ),
        step("txn: an empty request op", Txn(txn(vec![], vec![pb::RequestOp { request: None }], vec![]))),
        step("txn: an empty request op in the failure branch", Txn(txn(vec![], vec![op_put(put("t/q", "q"))], vec![pb::RequestOp { request: None }]))),
        step("txn: an empty request op in a nested txn", Txn(txn(vec![], vec![op_txn(txn(vec![], vec![], vec![pb::RequestOp { request: None }]))], vec![]))),
        step("txn: empty compare key", Txn(txn(vec![compare("", CompareTarget::Version, CompareResult::Equal, None)], vec![], vec![]))),
        step(
            "txn: empty compare key after a valid one",
            Txn(txn(vec![x_exists.clone(), compare("", CompareTarget::Value, CompareResult::Equal, None)], vec![op_range(get("t/x"))], vec![])),
        ),
        step("txn: empty range key", Txn(txn(vec![], vec![op_range(get(""))], vec![]))),
        step("txn: empty put key", Txn(txn(vec![], vec![op_put(put("", "x"))], vec![]))),
        step("txn: empty delete key", Txn(txn(vec![], vec![], vec![op_delete(delete("", b""))]))),
        step("txn: put with ignore_value and a value", Txn(txn(vec![], vec![op_put(pb::PutRequest { ignore_value: true, ..put("t/x", "v") })], vec![]))),
        step("txn: put with ignore_lease and a lease", Txn(txn(vec![], vec![op_put(pb::PutRequest { ignore_lease: true, lease: 1, ..put("t/x", "") })], vec![]))),
        step("txn: empty compare key and too many ops (count first)", Txn(txn(vec![compare("", CompareTarget::Version, CompareResult::Equal, None)], gets_of(129), vec![]))),
        step("txn: duplicate key and an empty key (validation first)", Txn(txn(vec![], vec![op_put(put("t/d", "1")), op_put(put("t/d", "2")), op_put(put("", "3"))], vec![]))),
        step("txn: range at a future revision", Txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: 1_000_000, ..get("t/x") })], vec![]))),
        step(
            "txn: range at a future revision in a writing txn",
            Txn(txn(vec![], vec![op_put(put("t/r", "r")), op_range(pb::RangeRequest { revision: 1_000_000, ..get("t/x") })], vec![])),
        ),
        step(
            "txn: range at a future revision in the branch not taken",
            Txn(txn(vec![], vec![op_range(get("t/x"))], vec![op_range(pb::RangeRequest { revision: 1_000_000, ..get("t/x") })])),
        ),
        step(
            "txn: range at a future revision in a nested txn",
            Txn(txn(vec![], vec![op_txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: 1_000_000, ..get("t/x") })], vec![]))], vec![])),
        ),
        step(
            "txn: range at a future revision in the branch taken, a put in the other",
            Txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: 1_000_000, ..get("t/x") })], vec![op_put(put("t/r", "r"))])),
        ),
        step(
            "txn: put with a missing lease in the branch not taken",
            Txn(txn(vec![x_missing.clone()], vec![op_put(pb::PutRequest { lease: 99, ..put("t/l", "l") })], vec![op_put(put("t/l", "l"))])),
        ),
        step("txn: failing compare, empty failure branch", Txn(txn(vec![x_missing.clone()], vec![op_put(put("t/l", "l2"))], vec![]))),
        step("txn: range at an older revision", Txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: rev, ..range("t/", &t_end) })], vec![]))),
        step("range t/ after the txns", Request::Range(range("t/", &t_end))),
    ]);
    steps
}

/// Compaction and what it does to later reads. `rev` is the current revision.
fn compactions(rev: i64) -> Vec<Step> {
    use Request::{Compact, Range, Txn};
    let c = rev - 10;
    let everything = || range("\0", b"\0");
    vec![
        step(
            "txn: put, then a range at the revision the put creates (future before the txn)",
            Txn(txn(vec![], vec![op_put(put("t/r", "r")), op_range(pb::RangeRequest { revision: rev + 1, ..get("t/r") })], vec![])),
        ),
        step("compact at a future revision", Compact(pb::CompactionRequest { revision: rev + 1, physical: false })),
        step("compact at a far future revision", Compact(pb::CompactionRequest { revision: 1_000_000, physical: true })),
        step("compact at revision 0", Compact(pb::CompactionRequest { revision: 0, physical: false })),
        step("compact at revision 0 again", Compact(pb::CompactionRequest { revision: 0, physical: false })),
        step("range at revision 1 after compacting 0", Range(pb::RangeRequest { revision: 1, ..everything() })),
        step("compact at revision 3", Compact(pb::CompactionRequest { revision: 3, physical: false })),
        step("range at revision 2 (compacted)", Range(pb::RangeRequest { revision: 2, ..everything() })),
        step("range at revision 3 (the compaction point)", Range(pb::RangeRequest { revision: 3, ..everything() })),
        step("compact at revision 3 again", Compact(pb::CompactionRequest { revision: 3, physical: false })),
        step("compact at revision 2 (lower)", Compact(pb::CompactionRequest { revision: 2, physical: false })),
        step("compact at a negative revision", Compact(pb::CompactionRequest { revision: -1, physical: false })),
        step(format!("compact physical at rev - 10 = {c}"), Compact(pb::CompactionRequest { revision: c, physical: true })),
        step("range below the compaction", Range(pb::RangeRequest { revision: c - 1, ..everything() })),
        step("range far below the compaction", Range(pb::RangeRequest { revision: 1, ..get("t/x") })),
        step("range count_only below the compaction", Range(pb::RangeRequest { revision: c - 1, count_only: true, ..everything() })),
        step("range at the compaction revision", Range(pb::RangeRequest { revision: c, ..everything() })),
        step("range just above the compaction revision", Range(pb::RangeRequest { revision: c + 1, ..everything() })),
        step("range at the current revision", Range(pb::RangeRequest { revision: rev, ..everything() })),
        step("range latest after compaction", Range(everything())),
        step("range sorted by create, descending, after compaction", Range(pb::RangeRequest { sort_order: SortOrder::Descend as i32, sort_target: SortTarget::Create as i32, ..everything() })),
        step("range above the current revision after compaction", Range(pb::RangeRequest { revision: rev + 1, ..everything() })),
        step("txn range below the compaction", Txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: c - 1, ..get("t/x") })], vec![]))),
        step(
            "txn writing, range below the compaction",
            Txn(txn(vec![], vec![op_put(put("t/c1", "c")), op_range(pb::RangeRequest { revision: 2, ..get("t/x") })], vec![])),
        ),
        step("txn range at the compaction revision", Txn(txn(vec![], vec![op_range(pb::RangeRequest { revision: c, ..get("t/x") })], vec![]))),
        step(
            "txn compare on history-free state after compaction",
            Txn(txn(vec![compare("t/x", CompareTarget::Version, CompareResult::Greater, Some(TargetUnion::Version(0)))], vec![op_range(get("t/x"))], vec![])),
        ),
        step(format!("compact at {c} again"), Compact(pb::CompactionRequest { revision: c, physical: false })),
        step(format!("compact at {} (lower)", c - 1), Compact(pb::CompactionRequest { revision: c - 1, physical: true })),
        step("compact at the current revision", Compact(pb::CompactionRequest { revision: rev, physical: false })),
        step("range at the current revision after compacting it", Range(pb::RangeRequest { revision: rev, ..everything() })),
        step("range just below the current revision after compacting it", Range(pb::RangeRequest { revision: rev - 1, ..everything() })),
        step("put after compacting everything", Request::Put(put("t/after", "compaction"))),
        step("range after a put after compaction", Range(pb::RangeRequest { revision: rev, ..everything() })),
    ]
}

/// Requests too large for etcd (refused with its own error) and too large for gRPC.
fn oversized() -> Vec<Step> {
    use Request::{DeleteRange, Put, Range, Txn};
    let big = || String::from_utf8(vec![b'v'; TOO_LARGE]).expect("ascii");
    let huge = || String::from_utf8(vec![b'v'; ABOVE_GRPC_LIMIT]).expect("ascii");
    vec![
        step("put of a 1.6 MB value", Put(put("o/big", &big()))),
        step("put of a 1.6 MB key", Put(put(&big(), "v"))),
        step("put of a 1.6 MB value with an empty key", Put(put("", &big()))),
        step("put of a 1.6 MB value with ignore_value", Put(pb::PutRequest { ignore_value: true, ..put("o/big", &big()) })),
        step("txn with a 1.6 MB put", Txn(txn(vec![], vec![op_put(put("o/big", &big()))], vec![]))),
        step("txn with a 1.6 MB put in the branch not taken", Txn(txn(vec![], vec![op_range(get("o/big"))], vec![op_put(put("o/big", &big()))]))),
        step("txn with a 1.6 MB put and two puts of one key", Txn(txn(vec![], vec![op_put(put("o/big", &big())), op_put(put("o/big", "v"))], vec![]))),
        step("read-only txn with a 1.6 MB compare value", Txn(txn(vec![compare("o/big", CompareTarget::Value, CompareResult::Equal, Some(TargetUnion::Value(big().into_bytes())))], vec![op_range(get("o/big"))], vec![]))),
        step("range with a 1.6 MB key", Range(get(&big()))),
        step("delete with a 1.6 MB key", DeleteRange(delete(&big(), b""))),
        step("delete with an empty key and a 1.6 MB range_end", DeleteRange(pb::DeleteRangeRequest { range_end: big().into_bytes(), ..delete("", b"") })),
        // Refused by the gRPC library before etcd sees it: grpc-go's ResourceExhausted "grpc:
        // received message larger than max (N vs. M)". Strata rewrites tonic's own refusal
        // (OutOfRange, other words) into exactly that, so these compare in full too.
        Step { label: "put of a 3 MB value (above gRPC's limit)".into(), request: Put(put("o/huge", &huge())), noted: true },
        Step { label: "txn with a 3 MB put (above gRPC's limit)".into(), request: Txn(txn(vec![], vec![op_put(put("o/huge", &huge()))], vec![])), noted: true },
        Step { label: "range with a 3 MB key (above gRPC's limit)".into(), request: Range(get(&huge())), noted: true },
        step("range o/ after the oversized requests", Range(range("o/", &prefix_end("o/")))),
        step("put of 1 MB", Put(put("o/ok", &String::from_utf8(vec![b'v'; 1_000_000]).expect("ascii")))),
        // etcd measures its whole raft proposal (the put plus a header of ~20 bytes whose size
        // depends on the member id); Strata measures the put. Either side of that margin agrees.
        step("put encoded 64 bytes below --max-request-bytes", Put(put_encoded_as("o/edge", REQUEST_BYTES_MAX - 64))),
        step("put encoded 1 byte above --max-request-bytes", Put(put_encoded_as("o/edge", REQUEST_BYTES_MAX + 1))),
        step("range o/ keys_only", Range(pb::RangeRequest { keys_only: true, ..range("o/", &prefix_end("o/")) })),
    ]
}

// ------------------------------------------------------------------------------------------ test

#[test]
fn strata_answers_every_kv_request_as_etcd_does() {
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("differential");
    let strata_server = start_strata(&temp.join("strata"), &["--name", "differential"]);
    let etcd_server = start_etcd(&etcd, &temp.join("etcd"));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (compared, mismatches, noted) = runtime.block_on(async {
        let mut runner = Runner {
            strata: connect(&strata_server.endpoint).await,
            etcd: connect(&etcd_server.endpoint).await,
            compared: 0,
            mismatches: Vec::new(),
            revision: 1,
            noted: Vec::new(),
        };
        runner.run(puts()).await;
        let revision = runner.revision;
        runner.run(ranges(revision)).await;
        runner.run(deletes()).await;
        runner.run(txn_setup()).await;
        let revision = runner.revision;
        runner.run(txns(revision)).await;
        let revision = runner.revision;
        runner.run(compactions(revision)).await;
        runner.run(oversized()).await;
        runner.run(vec![step("status header", Request::Status), step("member list header", Request::MemberList)]).await;
        (runner.compared, runner.mismatches, runner.noted)
    });

    for (label, strata, etcd) in &noted {
        println!("`{label}`:\n  strata: {}\n  etcd:   {}", shown(strata), shown(etcd));
    }
    println!("differential: compared {compared} requests, {} differed", mismatches.len());
    assert!(compared >= 200, "only {compared} requests were compared");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} requests got different answers from strata and etcd:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}
