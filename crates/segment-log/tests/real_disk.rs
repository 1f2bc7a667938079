//! The segment log on the real disk: round trips, rotation, sealing, torn tails, and corruption
//! that must be refused with the file and byte offset named and every file left untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::{FileSystem, RealFileSystem};
use strata_segment_log::{
    segment_file_name, LogError, LogOptions, SegmentLog, FORMAT_VERSION_CURRENT,
    FRAME_HEADER_BYTES, HEADER_BYTES, RECORD_BYTES_MAX,
};

/// A fresh directory under the system temp dir, removed on drop.
struct ScratchDirectory(PathBuf);

impl ScratchDirectory {
    fn new(name: &str) -> ScratchDirectory {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "strata-segment-log-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        ScratchDirectory(path)
    }

    fn log_directory(&self) -> PathBuf {
        self.0.join("log")
    }
}

impl Drop for ScratchDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn real_disk() -> Arc<dyn FileSystem> {
    Arc::new(RealFileSystem::new())
}

fn options(segment_bytes_max: u64) -> LogOptions {
    LogOptions {
        node_id: 7,
        segment_bytes_max,
        ..LogOptions::default()
    }
}

/// Replayed records: `(index, payload)`.
type Replayed = Vec<(u64, Vec<u8>)>;

/// Opens the log, returning it, the replayed records and the cut torn-tail bytes.
fn open(directory: &Path, options: LogOptions) -> Result<(SegmentLog, Replayed, u64), LogError> {
    let mut records = Vec::new();
    let recovered = SegmentLog::open(real_disk(), directory, options, &mut |index, payload| {
        records.push((index, payload.to_vec()));
        Ok(())
    })?;
    Ok((recovered.log, records, recovered.truncated_tail_bytes))
}

/// Payload of record `index`: `size` bytes derived from the index.
fn payload(index: u64, size: usize) -> Vec<u8> {
    (0..size)
        .map(|position| (index as usize * 31 + position * 7) as u8)
        .collect()
}

/// Writes `count` records of `size` bytes, synced in batches of `batch`.
fn write_records(
    directory: &Path,
    options: LogOptions,
    count: u64,
    size: usize,
    batch: u64,
) -> Vec<(u64, Vec<u8>)> {
    let (mut log, _, _) = open(directory, options).unwrap();
    let mut written = Vec::new();
    for index in 1..=count {
        let bytes = payload(index, size);
        assert_eq!(log.append(index as i64 + 100, &bytes).unwrap(), index);
        written.push((index, bytes));
        if index % batch == 0 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    written
}

/// A CRC32C and length of every file in `directory`: the "nothing was modified" witness.
fn fingerprints(directory: &Path) -> BTreeMap<PathBuf, (u64, u32)> {
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, (bytes.len() as u64, crc32c::crc32c(&bytes)))
        })
        .collect()
}

fn xor_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0xFF;
    std::fs::write(path, bytes).unwrap();
}

/// Opens a damaged log, expects `Corrupt` at `offset` in `damaged`, and checks nothing changed.
fn assert_refused_as_corrupt(directory: &Path, damaged: &Path, offset: u64) {
    let before = fingerprints(directory);
    let error = open(directory, options(1024)).unwrap_err();
    let message = error.to_string();
    match &error {
        LogError::Corrupt {
            path,
            offset: reported,
            ..
        } => {
            assert_eq!(path, damaged, "{message}");
            assert_eq!(*reported, offset, "{message}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let file_name = damaged.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(file_name), "{message}");
    assert!(
        message.contains(&format!("byte offset {offset}")),
        "{message}"
    );
    assert!(message.contains("left untouched"), "{message}");
    assert_eq!(
        fingerprints(directory),
        before,
        "a refused open must not modify any file"
    );
}

#[test]
fn append_sync_reopen_yields_the_same_records() {
    let scratch = ScratchDirectory::new("round-trip");
    let directory = scratch.log_directory();
    let (mut log, records, cut) = open(&directory, LogOptions::default()).unwrap();
    assert!(records.is_empty());
    assert_eq!(cut, 0);
    assert_eq!(log.last_index(), 0);
    log.sync().unwrap(); // nothing buffered: nothing to do
    let payloads: Vec<Vec<u8>> = vec![
        b"first".to_vec(),
        Vec::new(),
        payload(3, 5000),
        b"last".to_vec(),
    ];
    for (position, bytes) in payloads.iter().enumerate() {
        assert_eq!(
            log.append(position as i64 + 2, bytes).unwrap(),
            position as u64 + 1
        );
    }
    log.sync().unwrap();
    assert_eq!(log.last_index(), 4);
    drop(log);

    let (mut log, records, cut) = open(&directory, LogOptions::default()).unwrap();
    assert_eq!(cut, 0);
    assert_eq!(
        records,
        payloads
            .iter()
            .cloned()
            .enumerate()
            .map(|(position, bytes)| (position as u64 + 1, bytes))
            .collect::<Vec<_>>()
    );
    assert_eq!(log.last_index(), 4);
    assert_eq!(log.append(6, b"after reopen").unwrap(), 5);
    log.sync().unwrap();
    drop(log);
    let (_, records, _) = open(&directory, LogOptions::default()).unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(records[4], (5, b"after reopen".to_vec()));
}

#[test]
fn rotation_spreads_records_over_sealed_segments_truncated_to_size() {
    let scratch = ScratchDirectory::new("rotation");
    let directory = scratch.log_directory();
    let segment_bytes_max = 1024;
    let frame_bytes = FRAME_HEADER_BYTES + 100;
    let frames_per_segment = (segment_bytes_max - HEADER_BYTES) / frame_bytes; // 8
    let written = write_records(&directory, options(segment_bytes_max), 50, 100, 3);

    let (log, records, cut) = open(&directory, options(segment_bytes_max)).unwrap();
    assert_eq!(records, written);
    assert_eq!(cut, 0);
    let paths = log.segment_paths();
    assert_eq!(paths.len() as u64, 50_u64.div_ceil(frames_per_segment));
    for (position, path) in paths.iter().enumerate() {
        let first_index = position as u64 * frames_per_segment + 1;
        assert_eq!(path, &directory.join(segment_file_name(first_index)));
        let file_len = std::fs::metadata(path).unwrap().len();
        if position + 1 < paths.len() {
            assert_eq!(
                file_len,
                HEADER_BYTES + frames_per_segment * frame_bytes,
                "sealed segment {} keeps its preallocation",
                path.display()
            );
        } else {
            assert_eq!(
                file_len, segment_bytes_max,
                "the active segment stays preallocated"
            );
        }
    }
    let listed: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        listed.len(),
        paths.len(),
        "no temp files stay behind: {listed:?}"
    );
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let scratch = ScratchDirectory::new("oversized");
    let directory = scratch.log_directory();
    let (mut log, _, _) = open(&directory, options(256)).unwrap();
    log.append(1, b"small").unwrap();
    log.append(2, &payload(2, 1000)).unwrap();
    log.append(3, b"small again").unwrap();
    log.sync().unwrap();
    let paths = log.segment_paths();
    assert_eq!(paths.len(), 3);
    assert_eq!(
        std::fs::metadata(&paths[1]).unwrap().len(),
        HEADER_BYTES + FRAME_HEADER_BYTES + 1000
    );
    drop(log);
    let (_, records, _) = open(&directory, options(256)).unwrap();
    assert_eq!(
        records.iter().map(|(index, _)| *index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(records[1].1, payload(2, 1000));
}

#[test]
fn a_record_over_the_record_limit_is_refused_without_halting() {
    let scratch = ScratchDirectory::new("too-large");
    let (mut log, _, _) = open(&scratch.log_directory(), LogOptions::default()).unwrap();
    let huge = vec![0u8; RECORD_BYTES_MAX as usize + 1];
    match log.append(1, &huge).unwrap_err() {
        LogError::RecordTooLarge { bytes, limit } => {
            assert_eq!((bytes, limit), (RECORD_BYTES_MAX + 1, RECORD_BYTES_MAX))
        }
        other => panic!("expected RecordTooLarge, got {other}"),
    }
    assert_eq!(log.append(1, b"fine").unwrap(), 1);
    log.sync().unwrap();
}

#[test]
fn torn_tail_of_the_last_segment_is_cut_and_appending_continues() {
    let scratch = ScratchDirectory::new("torn");
    let directory = scratch.log_directory();
    let written = write_records(&directory, options(4096), 5, 50, 5);
    let segment = directory.join(segment_file_name(1));
    let records_end = HEADER_BYTES + 5 * (FRAME_HEADER_BYTES + 50);
    // Half a frame, as a crash in the middle of a write leaves it.
    let mut torn_frame = Vec::new();
    torn_frame.extend_from_slice(&50u32.to_le_bytes());
    torn_frame.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    torn_frame.extend_from_slice(&6u64.to_le_bytes());
    torn_frame.extend_from_slice(&[0xAB; 20]);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[records_end as usize..records_end as usize + torn_frame.len()]
        .copy_from_slice(&torn_frame);
    std::fs::write(&segment, &bytes).unwrap();
    // A leftover temp file from a crash during segment creation.
    std::fs::write(
        directory.join(format!("{}.tmp", segment_file_name(6))),
        b"partial",
    )
    .unwrap();

    let (mut log, records, cut) = open(&directory, options(4096)).unwrap();
    assert_eq!(records, written);
    assert_eq!(cut, torn_frame.len() as u64);
    assert!(std::fs::read(&segment).unwrap()[records_end as usize..]
        .iter()
        .all(|byte| *byte == 0));
    assert_eq!(
        std::fs::read_dir(&directory).unwrap().count(),
        1,
        "the temp file is removed"
    );
    assert_eq!(log.append(0, b"six").unwrap(), 6);
    log.sync().unwrap();
    drop(log);
    let (_, records, cut) = open(&directory, options(4096)).unwrap();
    assert_eq!(cut, 0);
    assert_eq!(records.last().unwrap(), &(6, b"six".to_vec()));
}

/// Three sealed segments of 8 records (100-byte payloads) and an active one with 2.
fn four_segments(scratch: &ScratchDirectory) -> PathBuf {
    let directory = scratch.log_directory();
    write_records(&directory, options(1024), 26, 100, 4);
    directory
}

const FRAME_100_BYTES: u64 = FRAME_HEADER_BYTES + 100;

#[test]
fn a_flipped_payload_byte_in_a_sealed_segment_is_refused() {
    let scratch = ScratchDirectory::new("corrupt-payload");
    let directory = four_segments(&scratch);
    let damaged = directory.join(segment_file_name(9));
    let frame_offset = HEADER_BYTES + 3 * FRAME_100_BYTES; // the fourth record, index 12
    xor_byte(&damaged, frame_offset + FRAME_HEADER_BYTES + 40);
    assert_refused_as_corrupt(&directory, &damaged, frame_offset);
}

#[test]
fn a_flipped_length_byte_in_a_sealed_segment_is_refused() {
    let scratch = ScratchDirectory::new("corrupt-length");
    let directory = four_segments(&scratch);
    let damaged = directory.join(segment_file_name(1));
    let frame_offset = HEADER_BYTES + 5 * FRAME_100_BYTES;
    xor_byte(&damaged, frame_offset);
    assert_refused_as_corrupt(&directory, &damaged, frame_offset);
}

#[test]
fn a_flipped_byte_in_the_active_segment_before_valid_records_is_refused() {
    let scratch = ScratchDirectory::new("corrupt-active");
    let directory = scratch.log_directory();
    write_records(&directory, options(4096), 10, 100, 10);
    let damaged = directory.join(segment_file_name(1));
    let frame_offset = HEADER_BYTES + 4 * FRAME_100_BYTES; // records 6..=10 follow it
    xor_byte(&damaged, frame_offset + FRAME_HEADER_BYTES + 99);
    assert_refused_as_corrupt(&directory, &damaged, frame_offset);
    // The same in a length field.
    xor_byte(&damaged, frame_offset + FRAME_HEADER_BYTES + 99);
    xor_byte(&damaged, frame_offset + 1);
    assert_refused_as_corrupt(&directory, &damaged, frame_offset);
}

#[test]
fn a_broken_segment_chain_is_refused() {
    let scratch = ScratchDirectory::new("chain");
    let directory = four_segments(&scratch);
    std::fs::remove_file(directory.join(segment_file_name(9))).unwrap();
    assert_refused_as_corrupt(&directory, &directory.join(segment_file_name(17)), 24);
}

#[test]
fn a_bad_magic_is_refused_and_nothing_is_modified() {
    let scratch = ScratchDirectory::new("magic");
    let directory = four_segments(&scratch);
    let foreign = directory.join(segment_file_name(17));
    xor_byte(&foreign, 0);
    std::fs::write(directory.join("00000000000000000099.seg.tmp"), b"leftover").unwrap();
    let before = fingerprints(&directory);
    let error = open(&directory, options(1024)).unwrap_err();
    assert!(
        matches!(&error, LogError::BadMagic { path } if path == &foreign),
        "{error}"
    );
    assert!(
        error.to_string().contains(&segment_file_name(17)),
        "{error}"
    );
    assert_eq!(
        fingerprints(&directory),
        before,
        "not even the temp file may be removed"
    );
}

#[test]
fn a_newer_format_version_is_refused_naming_both_versions() {
    let scratch = ScratchDirectory::new("version");
    let directory = four_segments(&scratch);
    let newer = directory.join(segment_file_name(25));
    let mut bytes = std::fs::read(&newer).unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION_CURRENT + 1).to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..48]);
    bytes[48..52].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&newer, &bytes).unwrap();
    let before = fingerprints(&directory);
    let error = open(&directory, options(1024)).unwrap_err();
    match &error {
        LogError::UnsupportedFormat {
            path,
            found_version,
            supported_version,
        } => {
            assert_eq!(path, &newer);
            assert_eq!(
                (*found_version, *supported_version),
                (FORMAT_VERSION_CURRENT + 1, FORMAT_VERSION_CURRENT)
            );
        }
        other => panic!("expected UnsupportedFormat, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&format!("format version {}", FORMAT_VERSION_CURRENT + 1))
            && message.contains(&format!("up to {FORMAT_VERSION_CURRENT}")),
        "{message}"
    );
    assert!(message.contains(&segment_file_name(25)), "{message}");
    assert_eq!(fingerprints(&directory), before);
}
