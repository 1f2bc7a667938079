//! etcd's protobuf messages to and from the store's own types. Nested responses carry a header
//! with only the revision set (a nested txn's header is present but empty), exactly as etcd's.

use strata_mvcc as mvcc;

use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;

pub fn key_value(kv: mvcc::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub fn range_request(request: pb::RangeRequest) -> mvcc::RangeRequest {
    use pb::range_request::{SortOrder, SortTarget};
    let sort_target = match SortTarget::try_from(request.sort_target) {
        Ok(SortTarget::Version) => mvcc::SortTarget::Version,
        Ok(SortTarget::Create) => mvcc::SortTarget::Create,
        Ok(SortTarget::Mod) => mvcc::SortTarget::Mod,
        Ok(SortTarget::Value) => mvcc::SortTarget::Value,
        _ => mvcc::SortTarget::Key,
    };
    let (sort_order, sort_target) = match SortOrder::try_from(request.sort_order) {
        Ok(SortOrder::None) => (mvcc::SortOrder::None, sort_target),
        Ok(SortOrder::Ascend) => (mvcc::SortOrder::Ascend, sort_target),
        Ok(SortOrder::Descend) => (mvcc::SortOrder::Descend, sort_target),
        // etcd sorts only in the orders it knows: an unknown one leaves key order, whatever the
        // target (a known target with no order sorts ascending).
        Err(_) => (mvcc::SortOrder::None, mvcc::SortTarget::Key),
    };
    mvcc::RangeRequest {
        key: request.key,
        range_end: request.range_end,
        limit: request.limit,
        revision: request.revision,
        sort_order,
        sort_target,
        keys_only: request.keys_only,
        count_only: request.count_only,
        min_mod_revision: request.min_mod_revision,
        max_mod_revision: request.max_mod_revision,
        min_create_revision: request.min_create_revision,
        max_create_revision: request.max_create_revision,
    }
}

pub fn put_request(request: pb::PutRequest) -> mvcc::PutRequest {
    mvcc::PutRequest {
        key: request.key,
        value: request.value,
        lease: request.lease,
        prev_kv: request.prev_kv,
        ignore_value: request.ignore_value,
        ignore_lease: request.ignore_lease,
    }
}

pub fn delete_range_request(request: pb::DeleteRangeRequest) -> mvcc::DeleteRangeRequest {
    mvcc::DeleteRangeRequest { key: request.key, range_end: request.range_end, prev_kv: request.prev_kv }
}

pub fn compare(compare: pb::Compare) -> mvcc::Compare {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    mvcc::Compare {
        result: match CompareResult::try_from(compare.result) {
            Ok(CompareResult::Equal) => mvcc::CompareResult::Equal,
            Ok(CompareResult::Greater) => mvcc::CompareResult::Greater,
            Ok(CompareResult::Less) => mvcc::CompareResult::Less,
            Ok(CompareResult::NotEqual) => mvcc::CompareResult::NotEqual,
            Err(_) => mvcc::CompareResult::Unknown,
        },
        target: match CompareTarget::try_from(compare.target) {
            Ok(CompareTarget::Create) => mvcc::CompareTarget::Create,
            Ok(CompareTarget::Mod) => mvcc::CompareTarget::Mod,
            Ok(CompareTarget::Value) => mvcc::CompareTarget::Value,
            Ok(CompareTarget::Lease) => mvcc::CompareTarget::Lease,
            Ok(CompareTarget::Version) => mvcc::CompareTarget::Version,
            Err(_) => mvcc::CompareTarget::Unknown,
        },
        key: compare.key,
        range_end: compare.range_end,
        operand: match compare.target_union {
            None => mvcc::CompareOperand::None,
            Some(TargetUnion::Version(version)) => mvcc::CompareOperand::Version(version),
            Some(TargetUnion::CreateRevision(revision)) => mvcc::CompareOperand::CreateRevision(revision),
            Some(TargetUnion::ModRevision(revision)) => mvcc::CompareOperand::ModRevision(revision),
            Some(TargetUnion::Value(value)) => mvcc::CompareOperand::Value(value),
            Some(TargetUnion::Lease(lease)) => mvcc::CompareOperand::Lease(lease),
        },
    }
}

pub fn txn_request(request: pb::TxnRequest) -> mvcc::TxnRequest {
    mvcc::TxnRequest {
        compare: request.compare.into_iter().map(compare).collect(),
        success: request.success.into_iter().map(request_op).collect(),
        failure: request.failure.into_iter().map(request_op).collect(),
    }
}

fn request_op(op: pb::RequestOp) -> mvcc::RequestOp {
    use pb::request_op::Request;
    match op.request {
        Some(Request::RequestRange(range)) => mvcc::RequestOp::Range(range_request(range)),
        Some(Request::RequestPut(put)) => mvcc::RequestOp::Put(put_request(put)),
        Some(Request::RequestDeleteRange(delete)) => mvcc::RequestOp::DeleteRange(delete_range_request(delete)),
        Some(Request::RequestTxn(txn)) => mvcc::RequestOp::Txn(txn_request(txn)),
        None => mvcc::RequestOp::Empty,
    }
}

/// A header with only the revision: what etcd puts in responses nested in a txn.
fn revision_header(revision: i64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { revision, ..Default::default() })
}

pub fn range_response(response: mvcc::RangeResponse, header: pb::ResponseHeader) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(header),
        kvs: response.kvs.into_iter().map(key_value).collect(),
        more: response.more,
        count: response.count,
    }
}

pub fn put_response(response: mvcc::PutResponse, header: pb::ResponseHeader) -> pb::PutResponse {
    pb::PutResponse { header: Some(header), prev_kv: response.prev_kv.map(key_value) }
}

pub fn delete_range_response(response: mvcc::DeleteRangeResponse, header: pb::ResponseHeader) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(header),
        deleted: response.deleted,
        prev_kvs: response.prev_kvs.into_iter().map(key_value).collect(),
    }
}

pub fn txn_response(response: mvcc::TxnResponse, header: pb::ResponseHeader) -> pb::TxnResponse {
    pb::TxnResponse {
        header: Some(header),
        succeeded: response.succeeded,
        responses: response.responses.into_iter().map(response_op).collect(),
    }
}

fn response_op(op: mvcc::ResponseOp) -> pb::ResponseOp {
    use pb::response_op::Response;
    let response = match op {
        mvcc::ResponseOp::Range(range) => {
            let header = revision_header(range.revision);
            Response::ResponseRange(pb::RangeResponse { header, ..range_response(range, Default::default()) })
        }
        mvcc::ResponseOp::Put(put) => {
            let header = revision_header(put.revision);
            Response::ResponsePut(pb::PutResponse { header, ..put_response(put, Default::default()) })
        }
        mvcc::ResponseOp::DeleteRange(delete) => {
            let header = revision_header(delete.revision);
            Response::ResponseDeleteRange(pb::DeleteRangeResponse { header, ..delete_range_response(delete, Default::default()) })
        }
        mvcc::ResponseOp::Txn(txn) => Response::ResponseTxn(txn_response(txn, pb::ResponseHeader::default())),
    };
    pb::ResponseOp { response: Some(response) }
}

pub fn lease_time_to_live_response(shown: strata_lease::TimeToLive, header: pb::ResponseHeader) -> pb::LeaseTimeToLiveResponse {
    pb::LeaseTimeToLiveResponse {
        header: Some(header),
        id: shown.id,
        ttl: shown.remaining_seconds,
        granted_ttl: shown.granted_ttl_seconds,
        keys: shown.keys,
    }
}

/// etcd's TimeToLive of a lease it does not know (never granted, revoked or expired): TTL -1.
pub fn lease_time_to_live_unknown(id: i64, header: pb::ResponseHeader) -> pb::LeaseTimeToLiveResponse {
    pb::LeaseTimeToLiveResponse { header: Some(header), id, ttl: -1, granted_ttl: 0, keys: Vec::new() }
}

pub fn lease_leases_response(ids: Vec<i64>, header: pb::ResponseHeader) -> pb::LeaseLeasesResponse {
    pb::LeaseLeasesResponse { header: Some(header), leases: ids.into_iter().map(|id| pb::LeaseStatus { id }).collect() }
}

/// etcd's `WatchCreateRequest` as the hub takes it, normalized as etcd's watch server does: an
/// empty key is `[0]` (the smallest key); unknown filter values are ignored.
pub fn watch_create(request: pb::WatchCreateRequest) -> strata_node::WatchCreate {
    use pb::watch_create_request::FilterType;
    let filtered = |wanted: FilterType| request.filters.iter().any(|filter| FilterType::try_from(*filter) == Ok(wanted));
    strata_node::WatchCreate {
        no_put: filtered(FilterType::Noput),
        no_delete: filtered(FilterType::Nodelete),
        key: if request.key.is_empty() { vec![0] } else { request.key },
        range_end: request.range_end,
        start_revision: request.start_revision,
        progress_notify: request.progress_notify,
        prev_kv: request.prev_kv,
        watch_id: request.watch_id,
        fragment: request.fragment,
    }
}

/// A watch event; `prev_kv` only for a watcher that asked for it.
pub fn event(event: &mvcc::Event, prev_kv: bool) -> mvccpb::Event {
    use mvccpb::event::EventType;
    let kind = match event.kind {
        mvcc::EventKind::Put => EventType::Put,
        mvcc::EventKind::Delete => EventType::Delete,
    };
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(key_value(event.kv.clone())),
        prev_kv: if prev_kv { event.prev_kv.clone().map(key_value) } else { None },
    }
}

pub fn watch_response(response: strata_node::WatchResponse, header: pb::ResponseHeader) -> pb::WatchResponse {
    pb::WatchResponse {
        header: Some(header),
        watch_id: response.watch_id,
        created: response.created,
        canceled: response.canceled,
        compact_revision: response.compact_revision,
        cancel_reason: response.cancel_reason.map(crate::errors::watch_cancel_reason).unwrap_or_default().to_string(),
        fragment: false,
        events: response.events.iter().map(|watched| event(watched, response.prev_kv)).collect(),
    }
}
