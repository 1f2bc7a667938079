//! The segment log on the simulated disk: crashes at every kind of moment, torn tails, a full disk
//! and failing fsyncs. The promise checked (DESIGN.md, promise 2 "Nothing acknowledged is lost"):
//! after any crash, the log holds every record whose `sync` returned `Ok`, and what it holds is a
//! prefix of the appended sequence (dense indexes, identical payloads, no garbage).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::{CrashMode, FileSystem, SeededRandom, SimulatedFileSystem};
use strata_segment_log::{LogError, LogOptions, SegmentLog, SEGMENT_BYTES_MIN};

/// Seeds per test run; `STRATA_SIMULATION_SEEDS=N` runs more (or replays from 0 to N).
const SEED_COUNT_DEFAULT: u64 = 1000;
const ROUNDS_PER_SEED: u64 = 5;

fn seed_count() -> u64 {
    std::env::var("STRATA_SIMULATION_SEEDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(SEED_COUNT_DEFAULT)
}

fn log_directory() -> PathBuf {
    PathBuf::from("/data/log")
}

fn open(
    disk: &SimulatedFileSystem,
    options: LogOptions,
) -> Result<(SegmentLog, Vec<Vec<u8>>, u64), LogError> {
    let mut records = Vec::new();
    let recovered = SegmentLog::open(
        Arc::new(disk.clone()),
        &log_directory(),
        options,
        &mut |index, payload| {
            assert_eq!(
                index,
                records.len() as u64 + 1,
                "replayed indexes are dense from 1"
            );
            records.push(payload.to_vec());
            Ok(())
        },
    )?;
    Ok((recovered.log, records, recovered.truncated_tail_bytes))
}

/// What the test knows about the log: every record appended (in index order) and how many of them
/// a successful `sync` acknowledged.
#[derive(Default)]
struct Model {
    appended: Vec<Vec<u8>>,
    acknowledged: usize,
}

impl Model {
    /// Checks recovered records against the model, then forgets what the crash took.
    fn check_recovery(&mut self, recovered: &[Vec<u8>], context: &str) {
        assert!(
            recovered.len() >= self.acknowledged,
            "{context}: {} records recovered but {} were acknowledged",
            recovered.len(),
            self.acknowledged
        );
        assert!(
            recovered.len() <= self.appended.len(),
            "{context}: more records recovered ({}) than appended ({})",
            recovered.len(),
            self.appended.len()
        );
        for (position, payload) in recovered.iter().enumerate() {
            assert_eq!(
                payload,
                &self.appended[position],
                "{context}: record {} differs from what was appended",
                position + 1
            );
        }
        self.appended.truncate(recovered.len());
        self.acknowledged = recovered.len();
    }
}

fn random_payload(random: &mut SeededRandom, segment_bytes_max: u64) -> Vec<u8> {
    let size = match random.below(20) {
        0 => 0,
        1 => random.between(segment_bytes_max, segment_bytes_max * 2), // its own segment
        _ => random.between(1, 120),
    };
    let mut payload = vec![0; size as usize];
    random.fill(&mut payload);
    payload
}

fn random_crash(random: &mut SeededRandom) -> CrashMode {
    if random.chance(1, 3) {
        CrashMode::LoseUnsynced
    } else {
        CrashMode::TornTail {
            seed: random.next_u64(),
        }
    }
}

/// Arms one random fault (or none) on the disk.
fn arm_random_fault(random: &mut SeededRandom, disk: &SimulatedFileSystem) {
    match random.below(5) {
        0 => {}
        1 | 2 => disk.fail_operations_after(random.below(40)),
        3 => disk.fail_writes_after(random.below(4000)),
        _ => disk.fail_syncs(true),
    }
}

/// Appends random batches, syncing most of them, until the batches run out or the log fails.
fn run_workload(
    random: &mut SeededRandom,
    log: &mut SegmentLog,
    model: &mut Model,
    segment_bytes_max: u64,
) {
    for _ in 0..random.between(1, 12) {
        for _ in 0..random.between(1, 8) {
            let payload = random_payload(random, segment_bytes_max);
            let revision = model.appended.len() as i64 + 2;
            match log.append(revision, &payload) {
                Ok(index) => {
                    assert_eq!(
                        index,
                        model.appended.len() as u64 + 1,
                        "append returns the next dense index"
                    );
                    model.appended.push(payload);
                }
                Err(LogError::Halted { .. }) => return,
                Err(other) => panic!("unexpected append error: {other}"),
            }
        }
        if random.chance(3, 4) {
            match log.sync() {
                Ok(()) => model.acknowledged = model.appended.len(),
                Err(_) => {
                    assert!(
                        matches!(log.sync(), Err(LogError::Halted { .. })),
                        "a failed sync halts the log"
                    );
                    assert!(matches!(log.append(0, b"x"), Err(LogError::Halted { .. })));
                    return;
                }
            }
        }
    }
}

#[test]
fn acknowledged_records_survive_every_simulated_crash() {
    let mut torn_tails_cut = 0;
    let seed_count = seed_count();
    for seed in 0..seed_count {
        let mut random = SeededRandom::new(seed);
        let disk = SimulatedFileSystem::new();
        let segment_bytes_max = random.between(SEGMENT_BYTES_MIN, 1500);
        let options = LogOptions {
            node_id: seed,
            segment_bytes_max,
            ..LogOptions::default()
        };
        let mut model = Model::default();
        for round in 0..ROUNDS_PER_SEED {
            let context =
                format!("seed {seed} round {round} (segment_bytes_max {segment_bytes_max})");
            // Sometimes the crash comes during recovery itself.
            if random.chance(1, 6) {
                disk.fail_operations_after(random.below(6));
            }
            let (mut log, recovered, cut) = match open(&disk, options.clone()) {
                Ok(opened) => opened,
                Err(LogError::Io { .. }) => {
                    disk.crash(random_crash(&mut random));
                    disk.clear_faults();
                    continue;
                }
                Err(other) => panic!("{context}: open failed: {other}"),
            };
            disk.clear_faults();
            if cut > 0 {
                torn_tails_cut += 1;
            }
            model.check_recovery(&recovered, &context);
            assert_eq!(log.last_index(), recovered.len() as u64, "{context}");
            arm_random_fault(&mut random, &disk);
            run_workload(&mut random, &mut log, &mut model, segment_bytes_max);
            drop(log);
            disk.crash(random_crash(&mut random));
            disk.clear_faults();
        }
        let (mut log, recovered, _) = open(&disk, options.clone())
            .unwrap_or_else(|error| panic!("seed {seed}: final open failed: {error}"));
        model.check_recovery(&recovered, &format!("seed {seed} final"));
        // Appending after all that recovery works and survives one more crash.
        log.append(0, b"after recovery").unwrap();
        log.sync().unwrap();
        drop(log);
        disk.crash(CrashMode::TornTail { seed });
        let (_, recovered, _) = open(&disk, options).unwrap();
        assert_eq!(recovered.len(), model.appended.len() + 1, "seed {seed}");
        assert_eq!(recovered.last().unwrap(), b"after recovery", "seed {seed}");
    }
    assert!(
        torn_tails_cut > seed_count / 10,
        "the simulation should produce torn tails often, got {torn_tails_cut}"
    );
}

fn synced_log(
    disk: &SimulatedFileSystem,
    options: &LogOptions,
    count: u64,
) -> (SegmentLog, Vec<Vec<u8>>) {
    let (mut log, _, _) = open(disk, options.clone()).unwrap();
    let payloads: Vec<Vec<u8>> = (1..=count)
        .map(|index| format!("record {index}").into_bytes())
        .collect();
    for (position, payload) in payloads.iter().enumerate() {
        log.append(position as i64, payload).unwrap();
        if position % 3 == 2 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    (log, payloads)
}

#[test]
fn a_full_disk_fails_sync_halts_the_log_and_keeps_synced_records() {
    for write_budget in [0, 1, 15, 16, 40, 100, 500] {
        let disk = SimulatedFileSystem::new();
        let options = LogOptions {
            segment_bytes_max: 300,
            ..LogOptions::default()
        };
        let (mut log, mut synced) = synced_log(&disk, &options, 20);
        disk.fail_writes_after(write_budget);
        let mut failure = None;
        for index in 0..40 {
            let payload = format!("late record {index}").into_bytes();
            log.append(0, &payload).unwrap();
            match log.sync() {
                Ok(()) => synced.push(payload),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let failure = failure.expect("the disk fills up");
        assert!(
            matches!(&failure, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
            "budget {write_budget}: {failure}"
        );
        disk.clear_faults();
        assert!(
            matches!(log.append(0, b"more"), Err(LogError::Halted { .. })),
            "budget {write_budget}"
        );
        assert!(
            matches!(log.sync(), Err(LogError::Halted { .. })),
            "budget {write_budget}"
        );
        drop(log);

        // A restart without power loss may find part of the failed batch (never acknowledged).
        let (_, recovered, _) = open(&disk, options.clone()).unwrap();
        assert!(
            recovered.len() >= synced.len() && recovered[..synced.len()] == synced[..],
            "budget {write_budget}"
        );
        // After a power loss, exactly the acknowledged records.
        disk.crash(CrashMode::LoseUnsynced);
        let (_, recovered, _) = open(&disk, options).unwrap();
        assert_eq!(recovered, synced, "budget {write_budget}");
    }
}

#[test]
fn a_failed_fsync_is_never_reported_as_success() {
    let disk = SimulatedFileSystem::new();
    let options = LogOptions {
        segment_bytes_max: 300,
        ..LogOptions::default()
    };
    let (mut log, synced) = synced_log(&disk, &options, 7);
    log.append(0, b"unlucky").unwrap();
    disk.fail_syncs(true);
    assert!(matches!(log.sync(), Err(LogError::Io { .. })));
    disk.fail_syncs(false);
    // The disk works again, but the log must not pretend the lost batch is durable.
    assert!(matches!(log.sync(), Err(LogError::Halted { .. })));
    let halted = log.append(0, b"later").unwrap_err();
    assert!(halted.to_string().contains("refuses writes"), "{halted}");
    drop(log);
    disk.crash(CrashMode::LoseUnsynced);
    let (_, recovered, _) = open(&disk, options).unwrap();
    assert_eq!(recovered, synced);
}

#[test]
fn a_batch_costs_one_write_and_one_fdatasync() {
    let disk = SimulatedFileSystem::new();
    let (mut log, _, _) = open(
        &disk,
        LogOptions {
            segment_bytes_max: 1 << 20,
            ..LogOptions::default()
        },
    )
    .unwrap();
    log.append(1, b"first").unwrap();
    log.sync().unwrap(); // creates the first segment
    let before = disk.statistics();
    for batch in 0..10 {
        for record in 0..50 {
            log.append(batch * 50 + record, &[7; 100]).unwrap();
        }
        log.sync().unwrap();
    }
    let after = disk.statistics();
    assert_eq!(after.data_syncs - before.data_syncs, 10);
    assert_eq!(after.write_calls - before.write_calls, 10);
    assert_eq!(after.full_syncs, before.full_syncs);
    assert_eq!(after.directory_syncs, before.directory_syncs);
}

#[test]
fn rotation_seals_before_the_next_segment_exists() {
    let disk = SimulatedFileSystem::new();
    let options = LogOptions {
        segment_bytes_max: 200,
        ..LogOptions::default()
    };
    let (mut log, _, _) = open(&disk, options.clone()).unwrap();
    for index in 0..20 {
        log.append(index, &[index as u8; 50]).unwrap();
    }
    log.sync().unwrap();
    let paths = log.segment_paths();
    assert!(paths.len() > 3);
    for path in &paths[..paths.len() - 1] {
        let durable = disk.durable_contents(path).unwrap();
        assert_eq!(
            durable.len() as u64,
            64 + 2 * 66,
            "{} is sealed to its two records",
            path.display()
        );
    }
    assert_eq!(
        disk.durable_contents(paths.last().unwrap()).unwrap().len(),
        200
    );
    drop(log);
    let (_, recovered, cut) = open(&disk, options).unwrap();
    assert_eq!((recovered.len(), cut), (20, 0));
}

#[test]
fn an_empty_last_segment_left_by_a_crash_is_replaced() {
    let disk = SimulatedFileSystem::new();
    let options = LogOptions {
        segment_bytes_max: 200,
        ..LogOptions::default()
    };
    let (mut log, _, _) = open(&disk, options.clone()).unwrap();
    for index in 0..2 {
        log.append(index, &[1; 50]).unwrap();
    }
    log.sync().unwrap();
    // The third record rotates: seal, create segment 3, then the crash point before its write.
    log.append(2, &[2; 50]).unwrap();
    disk.fail_operations_after(7); // set_len, sync_all, create, write, set_len, sync_all, rename
    assert!(log.sync().is_err());
    drop(log);
    disk.clear_faults();
    disk.crash(CrashMode::LoseUnsynced);
    assert!(
        !disk
            .exists(Path::new("/data/log/00000000000000000003.seg"))
            .unwrap(),
        "the rename was never synced"
    );
    let (mut log, recovered, _) = open(&disk, options.clone()).unwrap();
    assert_eq!(recovered.len(), 2);
    drop(log);

    // Now with the directory synced: segment 3 exists but holds no record.
    let (mut log2, _, _) = open(&disk, options.clone()).unwrap();
    log2.append(2, &[2; 50]).unwrap();
    disk.fail_operations_after(8); // ... rename, sync_dir, then the record write fails
    assert!(log2.sync().is_err());
    drop(log2);
    disk.clear_faults();
    disk.crash(CrashMode::LoseUnsynced);
    let empty_segment = Path::new("/data/log/00000000000000000003.seg");
    assert!(disk.exists(empty_segment).unwrap());
    log = open(&disk, options.clone()).unwrap().0;
    assert_eq!(log.last_index(), 2);
    log.append(33, &[3; 50]).unwrap();
    log.sync().unwrap();
    let header = disk.durable_contents(empty_segment).unwrap();
    assert_eq!(
        i64::from_le_bytes(header[32..40].try_into().unwrap()),
        33,
        "the replacement's header names its real first record"
    );
    drop(log);
    let (_, recovered, _) = open(&disk, options).unwrap();
    assert_eq!(recovered.len(), 3);
}
