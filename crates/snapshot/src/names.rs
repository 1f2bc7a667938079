//! Snapshot file names in a data directory's `snap/` folder: `<revision>.snap` for a full snapshot
//! and `<revision>.<base revision>.isnap` for an incremental one, revisions as 20 zero-padded
//! decimal digits (so names sort by revision), and `<name>.tmp` while one is being written.

/// The data directory's folder of snapshots.
pub const SNAPSHOT_DIRECTORY_NAME: &str = "snap";

const FULL_SUFFIX: &str = ".snap";
const INCREMENTAL_SUFFIX: &str = ".isnap";
const TEMPORARY_SUFFIX: &str = ".tmp";
const REVISION_DIGITS: usize = 20;

/// What a snapshot file's name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotName {
    pub revision: i64,
    /// The base's revision, for an incremental snapshot.
    pub base_revision: Option<i64>,
}

/// `<revision>.snap` or `<revision>.<base>.isnap`.
pub fn snapshot_file_name(revision: i64, base_revision: Option<i64>) -> String {
    let width = REVISION_DIGITS;
    match base_revision {
        None => format!("{revision:0width$}{FULL_SUFFIX}"),
        Some(base) => format!("{revision:0width$}.{base:0width$}{INCREMENTAL_SUFFIX}"),
    }
}

/// The name a snapshot has while it is being written.
pub fn temporary_file_name(file_name: &str) -> String {
    format!("{file_name}{TEMPORARY_SUFFIX}")
}

/// Whether `name` is a snapshot being written (or left behind by a crash).
pub fn is_temporary_file_name(name: &str) -> bool {
    name.strip_suffix(TEMPORARY_SUFFIX).is_some_and(|snapshot| parse_snapshot_file_name(snapshot).is_some())
}

/// What a snapshot file's name says, if `name` is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<SnapshotName> {
    if let Some(revision) = name.strip_suffix(FULL_SUFFIX) {
        return Some(SnapshotName { revision: parse_revision(revision)?, base_revision: None });
    }
    let (revision, base) = name.strip_suffix(INCREMENTAL_SUFFIX)?.split_once('.')?;
    Some(SnapshotName { revision: parse_revision(revision)?, base_revision: Some(parse_revision(base)?) })
}

fn parse_revision(digits: &str) -> Option<i64> {
    if digits.len() != REVISION_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_revision() {
        assert_eq!(snapshot_file_name(42, None), "00000000000000000042.snap");
        assert_eq!(snapshot_file_name(42, Some(7)), "00000000000000000042.00000000000000000007.isnap");
        for (revision, base) in [(42, None), (42, Some(7)), (i64::MAX, Some(1))] {
            assert_eq!(parse_snapshot_file_name(&snapshot_file_name(revision, base)), Some(SnapshotName { revision, base_revision: base }));
        }
        assert!(snapshot_file_name(9, None) < snapshot_file_name(10, None));
        assert_eq!(parse_snapshot_file_name("42.snap"), None);
        assert_eq!(parse_snapshot_file_name("00000000000000000042.snap.tmp"), None);
        assert!(is_temporary_file_name("00000000000000000042.snap.tmp"));
        assert!(!is_temporary_file_name("other.tmp"));
        assert_eq!(parse_snapshot_file_name("00000000000000000042.x.isnap"), None);
    }
}
