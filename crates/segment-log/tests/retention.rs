//! Opening after an index (a snapshot holds what came before) and segment retention, on the
//! simulated disk: only records after the index are replayed and covered segments are not read;
//! retention deletes exactly the segments whose records are all covered, never the last one; a
//! crash at any point of the deletion leaves a log that opens after the index with every record
//! after it; a log that ends before the index continues after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::{CrashMode, FileSystem, SimulatedFileSystem};
use strata_segment_log::{LogError, LogOptions, SegmentLog};

const RECORD_COUNT: u64 = 60;

fn directory() -> PathBuf {
    PathBuf::from("/data/log")
}

fn options() -> LogOptions {
    LogOptions { node_id: 1, segment_bytes_max: 200, ..LogOptions::default() }
}

fn payload(index: u64) -> Vec<u8> {
    format!("record-{index}").into_bytes()
}

/// A log of `RECORD_COUNT` synced records over many small segments.
fn filled_disk() -> SimulatedFileSystem {
    let disk = SimulatedFileSystem::new();
    let mut log = SegmentLog::open(Arc::new(disk.clone()), &directory(), options(), &mut |_, _| Ok(())).expect("open").log;
    for index in 1..=RECORD_COUNT {
        assert_eq!(log.append(index as i64, &payload(index)).expect("append"), index);
        if index % 3 == 0 {
            log.sync().expect("sync");
        }
    }
    log.sync().expect("sync");
    disk
}

/// Opens after `start_after`; returns the log and the indexes replayed (checking the payloads).
fn open_after(disk: &SimulatedFileSystem, start_after: u64) -> Result<(SegmentLog, Vec<u64>), LogError> {
    let mut replayed = Vec::new();
    let recovered = SegmentLog::open_after(Arc::new(disk.clone()), &directory(), options(), start_after, &mut |index, bytes| {
        assert_eq!(bytes, payload(index), "record {index}");
        replayed.push(index);
        Ok(())
    })?;
    Ok((recovered.log, replayed))
}

fn first_indexes(disk: &SimulatedFileSystem) -> Vec<u64> {
    SegmentLog::segment_first_indexes(disk, &directory()).expect("list")
}

#[test]
fn opening_after_an_index_replays_only_what_follows_and_reads_no_covered_segment() {
    let disk = filled_disk();
    let firsts = first_indexes(&disk);
    assert!(firsts.len() > 5, "small segments: {firsts:?}");
    for start_after in [0, 1, 7, firsts[3] - 1, firsts[3], RECORD_COUNT - 1, RECORD_COUNT] {
        let (log, replayed) = open_after(&disk, start_after).expect("open after");
        assert_eq!(replayed, (start_after + 1..=RECORD_COUNT).collect::<Vec<_>>(), "after {start_after}");
        assert_eq!(log.last_index(), RECORD_COUNT);
    }
    // A covered segment is not even read: damage in it goes unnoticed.
    let covered = directory().join(strata_segment_log::segment_file_name(firsts[1]));
    disk.flip_byte(&covered, 70).expect("flip");
    open_after(&disk, firsts[2] - 1).expect("the damaged segment is covered");
    assert!(matches!(open_after(&disk, 0), Err(LogError::Corrupt { .. })));
}

#[test]
fn retention_deletes_exactly_the_covered_segments_and_never_the_last() {
    let disk = filled_disk();
    let firsts = first_indexes(&disk);
    let covered_through = firsts[4] + 1;
    let removed = SegmentLog::remove_segments_through(&disk, &directory(), covered_through).expect("remove");
    assert_eq!(removed, firsts[..4].iter().map(|first| directory().join(strata_segment_log::segment_file_name(*first))).collect::<Vec<_>>());
    assert_eq!(first_indexes(&disk), firsts[4..].to_vec());
    let (_, replayed) = open_after(&disk, covered_through).expect("open after");
    assert_eq!(replayed.first(), Some(&(covered_through + 1)));
    assert!(matches!(open_after(&disk, firsts[2]), Err(LogError::Corrupt { .. })), "records the caller needs are gone");
    SegmentLog::remove_segments_through(&disk, &directory(), u64::MAX - 1).expect("remove all");
    assert_eq!(first_indexes(&disk), vec![*firsts.last().expect("a segment")], "the last segment stays");
    let (mut log, replayed) = open_after(&disk, RECORD_COUNT).expect("open after everything");
    assert!(replayed.is_empty());
    assert_eq!(log.append(0, &payload(RECORD_COUNT + 1)).expect("append"), RECORD_COUNT + 1);
}

#[test]
fn a_crash_at_any_point_of_retention_leaves_a_log_that_opens_after_the_index() {
    let reference = filled_disk();
    let firsts = first_indexes(&reference);
    let covered_through = firsts[firsts.len() - 2];
    for operations in 0u64.. {
        let mut finished = false;
        for mode in [CrashMode::LoseUnsynced, CrashMode::TornTail { seed: operations }] {
            let disk = filled_disk();
            disk.fail_operations_after(operations);
            finished |= SegmentLog::remove_segments_through(&disk, &directory(), covered_through).is_ok();
            disk.crash(mode);
            disk.clear_faults();
            let (_, replayed) = open_after(&disk, covered_through).unwrap_or_else(|error| panic!("after {operations} operations: {error}"));
            assert_eq!(replayed, (covered_through + 1..=RECORD_COUNT).collect::<Vec<_>>());
            assert!(files(&disk).iter().all(|name| !name.ends_with(".tmp")), "open removed the leftovers");
        }
        if finished {
            assert!(operations as usize > 2 * (firsts.len() - 2), "every rename, removal and fsync was a crash point");
            return;
        }
    }
}

#[test]
fn large_segments_are_freed_a_step_at_a_time() {
    let disk = SimulatedFileSystem::new();
    let options = LogOptions { node_id: 1, segment_bytes_max: 20 * 1024 * 1024, ..LogOptions::default() };
    let mut log = SegmentLog::open(Arc::new(disk.clone()), &directory(), options.clone(), &mut |_, _| Ok(())).expect("open").log;
    let record = vec![7u8; 9 * 1024 * 1024];
    for index in 1..=5 {
        log.append(index, &record).expect("append");
        log.sync().expect("sync");
    }
    drop(log);
    assert!(first_indexes(&disk).len() >= 3);
    let syncs_before = disk.statistics().data_syncs;
    let removed = SegmentLog::remove_segments_through(&disk, &directory(), 4).expect("remove");
    assert!(!removed.is_empty());
    let steps = disk.statistics().data_syncs - syncs_before;
    assert!(steps as usize >= 2 * removed.len(), "{steps} shrinking steps for {} segments of 18 MiB", removed.len());
    let mut replayed = Vec::new();
    SegmentLog::open_after(Arc::new(disk.clone()), &directory(), options, 4, &mut |index, _| {
        replayed.push(index);
        Ok(())
    })
    .expect("open after");
    assert_eq!(replayed, vec![5]);
}

fn files(disk: &SimulatedFileSystem) -> Vec<String> {
    disk.list(&directory()).expect("list").iter().map(|path| path.file_name().expect("name").to_string_lossy().into_owned()).collect()
}

#[test]
fn a_log_that_ends_before_the_index_continues_after_it() {
    let disk = SimulatedFileSystem::new();
    let (mut log, replayed) = open_after(&disk, 41).expect("open an empty log after 41");
    assert!(replayed.is_empty());
    assert_eq!(log.last_index(), 41);
    assert_eq!(log.append(42, &payload(42)).expect("append"), 42);
    log.sync().expect("sync");
    drop(log);
    assert_eq!(first_indexes(&disk), vec![42]);
    let (_, replayed) = open_after(&disk, 41).expect("reopen");
    assert_eq!(replayed, vec![42]);
    assert!(disk.exists(Path::new("/data/log")).expect("exists"));
}
