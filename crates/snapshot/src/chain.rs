//! Which snapshots make a restore point, and which snapshots and log segments retention may
//! delete. Pure: headers in, decisions out.
//!
//! A *restore point* is a full snapshot, or an incremental one whose chain of bases down to a full
//! snapshot is complete (each base found by its revision and log index). Loading a restore point
//! applies its chain in order; start-up then replays the log after its log index.
//!
//! Retention keeps the newest `keep` restore points (by log index) and every snapshot their chains
//! need (with `keep` ≥ 2, when they all rest on one full snapshot, also the newest restore point
//! of an older chain, so that one damaged full snapshot never leaves nothing to fall back to),
//! deletes the other snapshots, and lets the log drop segments whose records are all at or below
//! the oldest kept restore point's log index: whichever kept restore point start-up ends up
//! loading (a newer one may turn out damaged), the log still holds everything after it.

use crate::format::SnapshotHeader;

/// A snapshot file and its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    pub file_name: String,
    pub header: SnapshotHeader,
}

/// A snapshot that can be loaded: the positions (in the list given) of its chain, base first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorePoint {
    pub chain: Vec<usize>,
    pub revision: i64,
    pub log_index: u64,
}

/// What retention keeps and deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Positions of the snapshots to delete.
    pub delete: Vec<usize>,
    /// Log segments whose records are all at or below this index may be deleted (none when `None`).
    pub log_covered_through: Option<u64>,
}

/// Every restore point among `files`, newest (highest log index, then revision, then shortest
/// chain) first.
pub fn restore_points(files: &[SnapshotFile]) -> Vec<RestorePoint> {
    let mut points: Vec<RestorePoint> = (0..files.len())
        .filter_map(|position| {
            let chain = chain_of(files, position)?;
            let header = &files[position].header;
            Some(RestorePoint { chain, revision: header.revision, log_index: header.log_index })
        })
        .collect();
    points.sort_by(|a, b| (b.log_index, b.revision, a.chain.len()).cmp(&(a.log_index, a.revision, b.chain.len())));
    points
}

/// The chain of `position`, base first, if every base is there.
fn chain_of(files: &[SnapshotFile], position: usize) -> Option<Vec<usize>> {
    let mut chain = vec![position];
    let mut current = position;
    while let Some(base) = files[current].header.base {
        let revision = files[current].header.revision;
        let found = files
            .iter()
            .position(|file| file.header.revision == base.revision && file.header.log_index == base.log_index && file.header.revision < revision)?;
        if chain.len() > files.len() {
            return None;
        }
        chain.push(found);
        current = found;
    }
    chain.reverse();
    Some(chain)
}

/// Keeps the newest `keep` restore points (every one when `keep` is 0, as etcd's
/// `--max-snapshots=0` keeps every snapshot) and what they need; see the module documentation.
pub fn retention_plan(files: &[SnapshotFile], keep: usize) -> RetentionPlan {
    let points = restore_points(files);
    if points.is_empty() {
        return RetentionPlan::default();
    }
    let mut kept: Vec<&RestorePoint> = if keep == 0 { points.iter().collect() } else { points.iter().take(keep).collect() };
    if keep >= 2 && kept.iter().all(|point| point.chain[0] == kept[0].chain[0]) {
        kept.extend(points.iter().find(|point| point.chain[0] != kept[0].chain[0]));
    }
    let mut needed = vec![false; files.len()];
    for point in &kept {
        for &position in &point.chain {
            needed[position] = true;
        }
    }
    let delete = (0..files.len()).filter(|&position| !needed[position]).collect();
    let log_covered_through = if keep == 0 { None } else { kept.iter().map(|point| point.log_index).min() };
    RetentionPlan { delete, log_covered_through }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::SnapshotBase;

    fn file(revision: i64, log_index: u64, base: Option<(i64, u64)>) -> SnapshotFile {
        let base = base.map(|(revision, log_index)| SnapshotBase { revision, log_index });
        SnapshotFile {
            file_name: crate::names::snapshot_file_name(revision, base.map(|base| base.revision)),
            header: SnapshotHeader { revision, log_index, base, ..SnapshotHeader::default() },
        }
    }

    #[test]
    fn chains_need_every_base_and_the_newest_comes_first() {
        let files = vec![file(10, 12, None), file(20, 22, Some((10, 12))), file(30, 33, Some((20, 22))), file(40, 44, Some((35, 36)))];
        let points = restore_points(&files);
        assert_eq!(points.iter().map(|point| point.chain.clone()).collect::<Vec<_>>(), vec![vec![0, 1, 2], vec![0, 1], vec![0]]);
        assert_eq!(points[0].log_index, 33);
        // A base with the right revision but another log index is not the base.
        let files = vec![file(10, 11, None), file(20, 22, Some((10, 12)))];
        assert_eq!(restore_points(&files).len(), 1);
    }

    #[test]
    fn retention_keeps_the_newest_restore_points_and_their_bases() {
        let files = vec![file(10, 12, None), file(20, 22, Some((10, 12))), file(30, 33, Some((20, 22))), file(40, 44, None), file(50, 55, Some((40, 44)))];
        let plan = retention_plan(&files, 1);
        assert_eq!(plan, RetentionPlan { delete: vec![0, 1, 2], log_covered_through: Some(55) });
        // Two points on one full snapshot: the newest point of the older chain stays too.
        let plan = retention_plan(&files, 2);
        assert_eq!(plan, RetentionPlan { delete: vec![], log_covered_through: Some(33) });
        let plan = retention_plan(&files, 3);
        assert_eq!(plan, RetentionPlan { delete: vec![], log_covered_through: Some(33) });
        assert_eq!(retention_plan(&files, 0), RetentionPlan { delete: vec![], log_covered_through: None });
        assert_eq!(retention_plan(&[], 5), RetentionPlan::default());
    }
}
