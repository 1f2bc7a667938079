//! Watch events: what a change to one key looks like to a watcher, as etcd's `mvccpb.Event`.
//!
//! Invariants:
//! - A PUT event carries the key's full new version; a DELETE event carries only the key and the
//!   revision of the delete (`mod_revision`), everything else zero, as etcd's tombstones do.
//! - Events are ordered by revision and, within one revision (one txn), in the order the request
//!   made its changes (the sub-revision).
//! - `prev_kv` is the key's visible version at revision − 1, absent when there was none or when
//!   revision − 1 is compacted (etcd reads it with a Range at that revision, which then fails).

use strata_types::Revision;

use crate::KeyValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// Filled only when asked for.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Whether `candidate` lies in the key range `key`..`range_end` as etcd reads ranges: an empty
/// `range_end` is the single key, `[0]` every key from `key` on, anything else the half-open
/// interval `[key, range_end)`.
pub fn range_contains(key: &[u8], range_end: &[u8], candidate: &[u8]) -> bool {
    match range_end {
        [] => candidate == key,
        [0] => candidate >= key,
        _ => key <= candidate && candidate < range_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_etcd_reads_them() {
        assert!(range_contains(b"a", b"", b"a"));
        assert!(!range_contains(b"a", b"", b"ab"));
        assert!(range_contains(b"a", &[0], b"zzz"));
        assert!(!range_contains(b"b", &[0], b"a"));
        assert!(range_contains(b"a", b"b", b"ab"));
        assert!(!range_contains(b"a", b"b", b"b"));
        assert!(!range_contains(b"b", b"a", b"b"));
    }
}
