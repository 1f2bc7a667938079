//! Request checks that etcd makes before a request reaches the store (etcd's `v3rpc` checks):
//! empty keys, options that contradict each other, txn size and overlapping writes in one txn.
//! They depend only on the request, never on the data.

use std::collections::HashSet;

use crate::{DeleteRangeRequest, KvError, PutRequest, RangeRequest, RequestOp, TxnRequest};

pub fn validate_range(request: &RangeRequest) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

pub fn validate_put(request: &PutRequest) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(KvError::ValueProvided);
    }
    if request.ignore_lease && request.lease != 0 {
        return Err(KvError::LeaseProvided);
    }
    Ok(())
}

pub fn validate_delete_range(request: &DeleteRangeRequest) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

/// etcd's txn checks, in etcd's order: op count against `txn_ops_max` (nested txns get what the
/// outer one leaves), empty compare keys, each op, then overlapping puts and deletes per branch.
pub fn validate_txn(request: &TxnRequest, txn_ops_max: usize) -> Result<(), KvError> {
    validate_txn_ops(request, txn_ops_max as i64)?;
    write_sets(&request.success)?;
    write_sets(&request.failure)?;
    Ok(())
}

fn validate_txn_ops(request: &TxnRequest, txn_ops_max: i64) -> Result<(), KvError> {
    let ops = request.compare.len().max(request.success.len()).max(request.failure.len()) as i64;
    if ops > txn_ops_max {
        return Err(KvError::TooManyOps);
    }
    if request.compare.iter().any(|compare| compare.key.is_empty()) {
        return Err(KvError::EmptyKey);
    }
    for op in request.success.iter().chain(&request.failure) {
        match op {
            RequestOp::Range(range) => validate_range(range)?,
            RequestOp::Put(put) => validate_put(put)?,
            RequestOp::DeleteRange(delete) => validate_delete_range(delete)?,
            RequestOp::Txn(txn) => validate_txn_ops(txn, txn_ops_max - ops)?,
            RequestOp::Empty => return Err(KvError::KeyNotFound),
        }
    }
    Ok(())
}

/// A deleted interval: `[start, end)`, or the single key `start` when `end` is `None`.
/// As in etcd, an `end` of `"\0"` is taken literally here (so it covers no key).
struct DeletedInterval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl DeletedInterval {
    fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            None => self.start == key,
            Some(end) => self.start.as_slice() <= key && key < end.as_slice(),
        }
    }
}

/// etcd's `checkIntervals`: within one branch, no key is put twice and no put falls in a deleted
/// interval, counting nested txns (whose then/else branches may put the same key).
fn write_sets(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<DeletedInterval>), KvError> {
    let mut deletes: Vec<DeletedInterval> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(delete) => Some(DeletedInterval {
                start: delete.key.clone(),
                end: (!delete.range_end.is_empty()).then(|| delete.range_end.clone()),
            }),
            _ => None,
        })
        .collect();
    let deleted = |deletes: &[DeletedInterval], key: &[u8]| deletes.iter().any(|d| d.contains(key));

    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in ops {
        let RequestOp::Txn(txn) = op else { continue };
        let (puts_then, deletes_then) = write_sets(&txn.success)?;
        let (puts_else, deletes_else) = write_sets(&txn.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&deletes, key) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in &puts_else {
            if (puts.contains(key) && !puts_then.contains(key)) || deleted(&deletes, key) {
                return Err(KvError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        deletes.extend(deletes_then);
        deletes.extend(deletes_else);
    }
    for op in ops {
        let RequestOp::Put(put) = op else { continue };
        if puts.contains(&put.key) || deleted(&deletes, &put.key) {
            return Err(KvError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, deletes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> RequestOp {
        RequestOp::Put(PutRequest { key: key.into(), ..Default::default() })
    }
    fn delete(key: &str, end: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest { key: key.into(), range_end: end.into(), prev_kv: false })
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest { compare: vec![], success, failure }
    }

    #[test]
    fn overlapping_writes_in_one_branch_are_duplicates() {
        let check = |t: TxnRequest| validate_txn(&t, 128);
        assert_eq!(check(txn(vec![put("a"), put("a")], vec![])), Err(KvError::DuplicateKey));
        assert_eq!(check(txn(vec![put("a")], vec![put("a")])), Ok(()));
        assert_eq!(check(txn(vec![delete("a", "c"), put("b")], vec![])), Err(KvError::DuplicateKey));
        assert_eq!(check(txn(vec![delete("a", "c"), put("c")], vec![])), Ok(()));
        assert_eq!(check(txn(vec![delete("a", ""), delete("a", "")], vec![])), Ok(()));
        // etcd takes a "\0" range end literally here: it covers no key.
        assert_eq!(check(txn(vec![delete("a", "\0"), put("b")], vec![])), Ok(()));
        // then/else of a nested txn may put the same key; an outer put may not.
        let nested = RequestOp::Txn(txn(vec![put("k")], vec![put("k")]));
        assert_eq!(check(txn(vec![nested.clone()], vec![])), Ok(()));
        assert_eq!(check(txn(vec![nested.clone(), put("k")], vec![])), Err(KvError::DuplicateKey));
        let nested_delete = RequestOp::Txn(txn(vec![delete("k", "")], vec![]));
        assert_eq!(check(txn(vec![nested_delete, put("k")], vec![])), Err(KvError::DuplicateKey));
    }

    #[test]
    fn op_count_and_empty_ops_are_checked() {
        let many: Vec<RequestOp> = (0..3).map(|i| put(&format!("k{i}"))).collect();
        assert_eq!(validate_txn(&txn(many.clone(), vec![]), 2), Err(KvError::TooManyOps));
        assert_eq!(validate_txn(&txn(many, vec![]), 3), Ok(()));
        assert_eq!(validate_txn(&txn(vec![RequestOp::Empty], vec![]), 3), Err(KvError::KeyNotFound));
        assert_eq!(validate_txn(&txn(vec![put("")], vec![]), 3), Err(KvError::EmptyKey));
    }
}
