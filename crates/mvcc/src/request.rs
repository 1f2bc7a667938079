//! The KV requests and responses the store understands: etcd's shapes in Strata's own types, so
//! that only `strata-etcd-api` knows etcd's protobuf. Byte strings are `Vec<u8>`; revisions `i64`.

use strata_types::Revision;

/// One key's visible version, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub value: Vec<u8>,
    pub lease: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub key: Vec<u8>,
    /// Empty: the single key. `[0]`: every key `>= key`. Otherwise the half-open `[key, range_end)`.
    pub range_end: Vec<u8>,
    pub limit: i64,
    /// 0 (or negative): the current revision.
    pub revision: Revision,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: Revision,
    pub max_mod_revision: Revision,
    pub min_create_revision: Revision,
    pub max_create_revision: Revision,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The header revision: the store's current revision when the range was served.
    pub revision: Revision,
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub lease: i64,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResponse {
    pub revision: Revision,
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeResponse {
    pub revision: Revision,
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompareResult {
    #[default]
    Equal,
    Greater,
    Less,
    NotEqual,
    /// A value etcd does not define: such a compare always holds, as in etcd.
    Unknown,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompareTarget {
    #[default]
    Version,
    Create,
    Mod,
    Value,
    Lease,
    /// A value etcd does not define: every key (and a missing one) compares as equal to the
    /// operand, as in etcd.
    Unknown,
}

/// The operand of a compare; which one is set may disagree with the target (etcd then compares
/// against zero or the empty value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CompareOperand {
    #[default]
    None,
    Version(i64),
    CreateRevision(Revision),
    ModRevision(Revision),
    Value(Vec<u8>),
    Lease(i64),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub operand: CompareOperand,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    /// An op with no request set; etcd rejects it with `key not found`.
    Empty,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// For the outermost txn: the revision after it. A nested txn's response carries 0, as etcd's
    /// does (its header is present but empty).
    pub revision: Revision,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

impl TxnRequest {
    /// Whether no op on any branch, nested ones included, writes.
    pub fn is_read_only(&self) -> bool {
        fn ops_read_only(ops: &[RequestOp]) -> bool {
            ops.iter().all(|op| match op {
                RequestOp::Range(_) | RequestOp::Empty => true,
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
                RequestOp::Txn(txn) => txn.is_read_only(),
            })
        }
        ops_read_only(&self.success) && ops_read_only(&self.failure)
    }
}
