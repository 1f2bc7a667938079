//! A user's key permissions, merged from its roles as etcd's `getMergedPerms` merges them into
//! two interval sets (read and write), and etcd's two checks against them: a single key is
//! permitted when any interval holds it (`checkKeyPoint`), a range when the intervals cover it
//! without a gap (`checkKeyInterval`, the interval tree's `Contains`).
//!
//! Keys compare in etcd's affine byte order (`adt.BytesAffineComparable`): an empty byte string
//! is +infinity wherever it appears, as a begin or as an end. So a permission on key `""` grants
//! nothing, and a range end of `"\0"` (etcd's "from key on") becomes the empty end: +infinity.

use std::cmp::Ordering;

use crate::{Permission, PERMISSION_READ, PERMISSION_READWRITE, PERMISSION_WRITE};

/// `[begin, end)` in affine order (empty = +infinity).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Interval {
    begin: Vec<u8>,
    end: Vec<u8>,
}

/// etcd's `BytesAffineComparable.Compare`.
fn affine_compare(left: &[u8], right: &[u8]) -> Ordering {
    match (left.is_empty(), right.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => left.cmp(right),
    }
}

impl Interval {
    /// etcd's `NewBytesAffinePoint`: `[key, key + "\0")`.
    fn point(key: &[u8]) -> Interval {
        let mut end = Vec::with_capacity(key.len() + 1);
        end.extend_from_slice(key);
        end.push(0);
        Interval { begin: key.to_vec(), end }
    }

    /// etcd's `Interval.Compare(other) == 0`: the intervals overlap.
    fn overlaps(&self, other: &Interval) -> bool {
        let left_of = affine_compare(&self.begin, &other.begin) == Ordering::Less && affine_compare(&self.end, &other.begin) != Ordering::Greater;
        let right_of = affine_compare(&self.begin, &other.end) != Ordering::Less;
        !left_of && !right_of
    }
}

/// One user's merged permissions, sorted by begin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPermissions {
    read: Vec<Interval>,
    write: Vec<Interval>,
}

impl UserPermissions {
    /// Merges the permissions of a user's roles (etcd's `getMergedPerms`): a permission with an
    /// empty range end is its key alone, a range end of `"\0"` reaches +infinity; unknown
    /// permission types grant nothing.
    pub fn merge<'a>(permissions: impl IntoIterator<Item = &'a Permission>) -> UserPermissions {
        let mut merged = UserPermissions::default();
        for permission in permissions {
            let interval = if permission.range_end.is_empty() {
                Interval::point(&permission.key)
            } else {
                let end = if permission.range_end == [0] { Vec::new() } else { permission.range_end.clone() };
                Interval { begin: permission.key.clone(), end }
            };
            match permission.kind {
                PERMISSION_READWRITE => {
                    merged.read.push(interval.clone());
                    merged.write.push(interval);
                }
                PERMISSION_READ => merged.read.push(interval),
                PERMISSION_WRITE => merged.write.push(interval),
                _ => {}
            }
        }
        // The interval tree visits in begin order; ties in the order they were inserted.
        merged.read.sort_by(|left, right| affine_compare(&left.begin, &right.begin));
        merged.write.sort_by(|left, right| affine_compare(&left.begin, &right.begin));
        merged
    }

    /// Whether the user may read `[key, range_end)` (an empty `range_end`: the key alone).
    pub fn can_read(&self, key: &[u8], range_end: &[u8]) -> bool {
        check(&self.read, key, range_end)
    }

    /// Whether the user may write `[key, range_end)` (an empty `range_end`: the key alone).
    pub fn can_write(&self, key: &[u8], range_end: &[u8]) -> bool {
        check(&self.write, key, range_end)
    }
}

fn check(intervals: &[Interval], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        let point = Interval::point(key);
        return intervals.iter().any(|interval| point.overlaps(interval));
    }
    let end = if range_end == [0] { Vec::new() } else { range_end.to_vec() };
    contains(intervals, &Interval { begin: key.to_vec(), end })
}

/// etcd's `IntervalTree.Contains`: the intervals overlapping `query`, in begin order, form one
/// contiguous run that starts at or before the query's begin and ends at or after its end.
fn contains(intervals: &[Interval], query: &Interval) -> bool {
    let mut run: Option<(&[u8], &[u8])> = None;
    for interval in intervals.iter().filter(|interval| query.overlaps(interval)) {
        match &mut run {
            None => run = Some((&interval.begin, &interval.end)),
            Some((_, end)) => {
                if affine_compare(end, &interval.begin) == Ordering::Less {
                    return false;
                }
                if affine_compare(&interval.end, end) == Ordering::Greater {
                    *end = &interval.end;
                }
            }
        }
    }
    run.is_some_and(|(begin, end)| affine_compare(end, &query.end) != Ordering::Less && affine_compare(begin, &query.begin) != Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(kind: i32, key: &str, range_end: &[u8]) -> Permission {
        Permission { kind, key: key.as_bytes().to_vec(), range_end: range_end.to_vec() }
    }

    #[test]
    fn single_keys_and_ranges_are_checked_as_etcd_checks_them() {
        let merged = UserPermissions::merge(&[
            permission(PERMISSION_READ, "key", b""),
            permission(PERMISSION_READWRITE, "r/a", b"r/c"),
            permission(PERMISSION_READWRITE, "r/c", b"r/e"),
            permission(PERMISSION_READ, "r/g", b"r/k"),
            permission(PERMISSION_WRITE, "z", b"\0"),
        ]);
        assert!(merged.can_read(b"key", b""));
        assert!(!merged.can_write(b"key", b""));
        assert!(!merged.can_read(b"key0", b""));
        // A single-key permission covers the range holding that key alone.
        assert!(merged.can_read(b"key", b"key\0"));
        assert!(!merged.can_read(b"key", b"key\0\0"));
        // Adjacent grants cover a range together; a gap does not.
        assert!(merged.can_read(b"r/a", b"r/e"));
        assert!(merged.can_write(b"r/b", b"r/d"));
        assert!(!merged.can_read(b"r/a", b"r/h"));
        assert!(merged.can_read(b"r/h", b""));
        assert!(!merged.can_write(b"r/h", b""));
        // From a key on: "\0" as the end is +infinity, for grants and requests alike.
        assert!(merged.can_write(b"zz", b"\0"));
        assert!(merged.can_write(b"zzz", b""));
        assert!(!merged.can_write(b"y", b"\0"));
        assert!(!merged.can_read(b"z", b""));
    }

    #[test]
    fn an_empty_key_is_infinity_and_grants_nothing() {
        let merged = UserPermissions::merge(&[permission(PERMISSION_READWRITE, "", b"\0")]);
        assert!(!merged.can_read(b"a", b""));
        assert!(!merged.can_read(b"\0", b"\0"));
        let everything = UserPermissions::merge(&[permission(PERMISSION_READWRITE, "\0", b"\0")]);
        assert!(everything.can_read(b"a", b""));
        assert!(everything.can_write(b"\0", b"\0"));
        assert!(everything.can_read(b"a", b"b"));
    }

    #[test]
    fn unknown_types_grant_nothing_and_empty_requests_follow_the_tree() {
        let merged = UserPermissions::merge(&[permission(7, "a", b"z")]);
        assert!(!merged.can_read(b"b", b""));
        let merged = UserPermissions::merge(&[permission(PERMISSION_READ, "a", b"z")]);
        // etcd's interval comparison finds `[c, c)` overlapping `[a, z)`, which covers it.
        assert!(merged.can_read(b"c", b"c"));
        assert!(!merged.can_read(b"0", b"0"));
    }
}
