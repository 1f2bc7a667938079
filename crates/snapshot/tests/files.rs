//! Snapshot files on the simulated and the real disk: what is written reads back record for record;
//! every flipped byte and every truncation is an error naming an offset; a newer format is refused;
//! a crash at any step of writing leaves either no snapshot or the complete one under its name; and
//! the format-version-1 golden file is read and reproduced byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::{CrashMode, FileSystem, RealFileSystem, SimulatedFileSystem};
use strata_snapshot::{
    snapshot_file_name, verify, AlarmRecord, KeyRecord, LeaseRecord, MemberRecord, Record, RemovedMemberRecord, SnapshotBase, SnapshotError, SnapshotHeader,
    SnapshotReader, SnapshotWriter, VersionRecord, KEY_RECORD_BYTES_TARGET,
};

fn header() -> SnapshotHeader {
    SnapshotHeader {
        format_version: 1,
        writer_version: 1_000,
        node_id: 7,
        cluster_id: 9,
        revision: 5,
        log_index: 6,
        compacted_revision: 2,
        hlc: 1 << 16,
        timeframe: BTreeMap::from([(7, 6)]),
        base: None,
        created_unix_millis: 1_700_000_000_000,
    }
}

fn version(mod_revision: i64, value: &[u8]) -> VersionRecord {
    VersionRecord {
        mod_revision,
        sub_revision: 0,
        create_revision: 2,
        version: mod_revision - 1,
        value: value.to_vec(),
        lease: 0,
        hlc: (mod_revision as u64) << 16,
        origin_node: 7,
        origin_sequence: mod_revision as u64,
    }
}

fn records() -> Vec<Record> {
    vec![
        Record::Key(KeyRecord { key: b"a".to_vec(), versions: vec![version(2, b"one"), version(3, b"two")] }),
        Record::Key(KeyRecord { key: b"b".to_vec(), versions: vec![version(4, b"")] }),
        Record::Key(KeyRecord { key: b"c".to_vec(), versions: vec![VersionRecord { version: 0, value: Vec::new(), ..version(5, b"") }] }),
        Record::Lease(LeaseRecord { id: 99, ttl_seconds: 60, keys: vec![b"b".to_vec()] }),
        Record::Member(MemberRecord { id: 7, peer_urls: vec!["http://127.0.0.1:2380".into()], is_learner: false }),
        Record::RemovedMember(RemovedMemberRecord { id: 3 }),
        Record::Alarm(AlarmRecord { member_id: 7, alarm: 1 }),
        Record::Auth(b"reserved".to_vec()),
    ]
}

fn write(file_system: Arc<dyn FileSystem>, directory: &Path, header: &SnapshotHeader, records: &[Record]) -> PathBuf {
    let name = snapshot_file_name(header.revision, header.base.map(|base| base.revision));
    let mut writer = SnapshotWriter::create(file_system, directory, &name, header).expect("create");
    for record in records {
        writer.append(record).expect("append");
    }
    let path = writer.path().to_path_buf();
    writer.finish().expect("finish");
    path
}

fn read_all(file_system: &dyn FileSystem, path: &Path) -> Result<(SnapshotHeader, Vec<Record>), SnapshotError> {
    let mut reader = SnapshotReader::open(file_system, path)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok((reader.header().clone(), records))
}

fn real_directory(label: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("strata-snapshot-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    directory
}

#[test]
fn what_is_written_reads_back_on_both_disks() {
    let disk = SimulatedFileSystem::new();
    let path = write(Arc::new(disk.clone()), Path::new("/data/snap"), &header(), &records());
    assert_eq!(read_all(&disk, &path).expect("read"), (header(), records()));
    let statistics = verify(&disk, &path, &mut |_, _| {}).expect("verify");
    assert_eq!((statistics.key_count, statistics.version_count, statistics.lease_count, statistics.record_count), (3, 4, 1, 8));

    let directory = real_directory("round-trip");
    let incremental = SnapshotHeader { base: Some(SnapshotBase { revision: 3, log_index: 4 }), ..header() };
    let path = write(Arc::new(RealFileSystem::new()), &directory, &incremental, &records());
    assert!(path.file_name().is_some_and(|name| name.to_string_lossy().ends_with(".isnap")));
    assert_eq!(read_all(&RealFileSystem::new(), &path).expect("read"), (incremental, records()));
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_long_history_is_split_into_runs_and_read_back_whole() {
    let disk = SimulatedFileSystem::new();
    let value = vec![0xAB; 1024 * 1024];
    let versions: Vec<VersionRecord> = (2..14).map(|revision| version(revision, &value)).collect();
    let record = Record::Key(KeyRecord { key: b"hot".to_vec(), versions: versions.clone() });
    let path = write(Arc::new(disk.clone()), Path::new("/snap"), &header(), &[record]);
    let (_, records) = read_all(&disk, &path).expect("read");
    assert!(records.len() >= 12 * 1024 * 1024 / KEY_RECORD_BYTES_TARGET, "split into {} records", records.len());
    let mut joined = Vec::new();
    for record in records {
        let Record::Key(key) = record else { panic!("only key records") };
        assert_eq!(key.key, b"hot");
        joined.extend(key.versions);
    }
    assert_eq!(joined, versions);
    assert_eq!(verify(&disk, &path, &mut |_, _| {}).expect("verify").key_count, 1);
}

#[test]
fn every_flipped_byte_and_every_truncation_is_an_error_with_an_offset() {
    let disk = SimulatedFileSystem::new();
    let path = write(Arc::new(disk.clone()), Path::new("/snap"), &header(), &records());
    let intact = disk.contents(&path).expect("contents");
    for offset in 0..intact.len() {
        let damaged_path = PathBuf::from(format!("/damaged/{offset}.snap"));
        disk.create_dir_all(Path::new("/damaged")).expect("dir");
        let mut flipped = intact.clone();
        flipped[offset] ^= 0x55;
        let mut file = disk.create(&damaged_path).expect("create");
        file.write_all_at(0, &flipped).expect("write");
        let error = read_all(&disk, &damaged_path).expect_err("a flipped byte must not go unnoticed");
        assert!(error.is_corruption() || matches!(error, SnapshotError::UnsupportedFormat { .. }), "byte {offset}: {error}");
        assert!(error.to_string().contains(&damaged_path.display().to_string()), "{error}");
        disk.remove(&damaged_path).expect("remove");
    }
    for length in 0..intact.len() {
        let truncated_path = PathBuf::from(format!("/damaged/cut-{length}.snap"));
        let mut file = disk.create(&truncated_path).expect("create");
        file.write_all_at(0, &intact[..length]).expect("write");
        let error = read_all(&disk, &truncated_path).expect_err("a truncated file must not go unnoticed");
        assert!(error.is_corruption(), "length {length}: {error}");
        disk.remove(&truncated_path).expect("remove");
    }
    let newer = PathBuf::from("/damaged/newer.snap");
    let mut bytes = intact.clone();
    bytes[8] = 2;
    disk.create(&newer).expect("create").write_all_at(0, &bytes).expect("write");
    let error = read_all(&disk, &newer).expect_err("newer");
    assert!(matches!(error, SnapshotError::UnsupportedFormat { found_version: 2, .. }), "{error}");
    assert!(error.to_string().contains("format version 2") && error.to_string().contains("up to 1"), "{error}");
}

#[test]
fn a_crash_at_any_step_of_writing_leaves_no_snapshot_or_the_whole_one() {
    let directory = Path::new("/data/snap");
    let mut steps = 0;
    for operations in 0.. {
        for mode in [CrashMode::LoseUnsynced, CrashMode::TornTail { seed: operations }] {
            let disk = SimulatedFileSystem::new();
            disk.fail_operations_after(operations);
            let name = snapshot_file_name(5, None);
            let finished = SnapshotWriter::create(Arc::new(disk.clone()), directory, &name, &header()).and_then(|mut writer| {
                for record in records() {
                    writer.append(&record)?;
                }
                writer.finish()
            });
            disk.crash(mode);
            disk.clear_faults();
            let path = directory.join(&name);
            if disk.exists(&path).expect("exists") {
                assert_eq!(read_all(&disk, &path).expect("a snapshot under its name is complete"), (header(), records()));
            }
            if finished.is_ok() {
                assert!(disk.exists(&path).expect("exists"), "a finished snapshot is durable");
                assert!(steps >= 4, "temp file, write, fsync, rename and directory fsync were each crashed");
                return;
            }
        }
        steps += 1;
    }
}

/// The golden file of format version 1: today's code reads it and writes it again byte for byte.
/// A change that breaks this test changes the format: that needs a new format version. To create
/// the file for a new version: `STRATA_BLESS_GOLDEN=1 cargo test -p strata-snapshot --test files`.
#[test]
fn format_version_1_golden_file_is_read_and_reproduced() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snapshot/format-v1").join(snapshot_file_name(5, None));
    let disk = SimulatedFileSystem::new();
    let written = write(Arc::new(disk.clone()), Path::new("/snap"), &header(), &records());
    let bytes = disk.contents(&written).expect("contents");
    if std::env::var("STRATA_BLESS_GOLDEN").is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("create golden directory");
        std::fs::write(&golden, &bytes).expect("write golden file");
    }
    let expected = std::fs::read(&golden).expect("golden file (bless with STRATA_BLESS_GOLDEN=1)");
    assert_eq!(bytes, expected, "the encoder no longer writes format version 1's bytes");
    assert_eq!(read_all(&RealFileSystem::new(), &golden).expect("read golden"), (header(), records()));
}
