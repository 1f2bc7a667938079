//! Format versions in one log: segments of an older version are read and kept as they are while
//! new segments are written in the newer one; a segment of another cluster or of a newer version
//! is refused, naming the file, with nothing modified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::RealFileSystem;
use strata_segment_log::{verify_segment, LogError, LogOptions, SegmentLog};

struct ScratchDirectory(PathBuf);

impl ScratchDirectory {
    fn new(name: &str) -> ScratchDirectory {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        ScratchDirectory(std::env::temp_dir().join(format!("strata-versions-{name}-{}-{nanos}", std::process::id())))
    }
}

impl Drop for ScratchDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_of(directory: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect()
}

fn options(format_version: u32, cluster_id: u64) -> LogOptions {
    LogOptions { node_id: 3, format_version, cluster_id, segment_bytes_max: 256, ..LogOptions::default() }
}

/// Opens the log and returns it with every replayed payload.
fn open(directory: &Path, options: LogOptions) -> Result<(SegmentLog, Vec<Vec<u8>>), LogError> {
    let mut payloads = Vec::new();
    let recovered = SegmentLog::open(Arc::new(RealFileSystem::new()), directory, options, &mut |_, payload| {
        payloads.push(payload.to_vec());
        Ok(())
    })?;
    Ok((recovered.log, payloads))
}

fn append(log: &mut SegmentLog, payloads: &mut Vec<Vec<u8>>, count: usize) {
    for _ in 0..count {
        let payload = format!("record {}", payloads.len() + 1).into_bytes();
        log.append(payloads.len() as i64 + 2, &payload).unwrap();
        payloads.push(payload);
    }
    log.sync().unwrap();
}

fn header_version(path: &Path) -> (u32, u64) {
    let bytes = std::fs::read(path).unwrap();
    let summary = verify_segment(path, &bytes, true, &mut |_, _| Ok(())).unwrap();
    (summary.header.format_version, summary.header.cluster_id)
}

#[test]
fn version_1_segments_stay_as_they_are_while_new_ones_are_version_2() {
    let scratch = ScratchDirectory::new("mixed");
    let (mut log, mut written) = open(&scratch.0, options(1, 0)).unwrap();
    append(&mut log, &mut written, 20);
    drop(log);
    let old_files = files_of(&scratch.0);
    assert!(old_files.len() >= 3, "several version 1 segments: {:?}", old_files.keys());
    let old_sealed: Vec<&String> = old_files.keys().take(old_files.len() - 1).collect();

    let (mut log, replayed) = open(&scratch.0, options(2, 0xAB)).unwrap();
    assert_eq!(replayed, written);
    append(&mut log, &mut written, 20);
    drop(log);

    let files = files_of(&scratch.0);
    for name in &old_sealed {
        assert_eq!(files[*name], old_files[*name], "{name}: a sealed version 1 segment was rewritten");
    }
    let new_names: Vec<&String> = files.keys().filter(|name| !old_files.contains_key(*name)).collect();
    assert!(!new_names.is_empty());
    for name in files.keys() {
        let (version, cluster_id) = header_version(&scratch.0.join(name));
        if old_files.contains_key(name) {
            assert_eq!((version, cluster_id), (1, 0), "{name}");
        } else {
            assert_eq!((version, cluster_id), (2, 0xAB), "{name}");
        }
    }
    let (_, replayed) = open(&scratch.0, options(2, 0xAB)).unwrap();
    assert_eq!(replayed, written);
    // A binary pinned to version 1 (for a later downgrade) still reads the version 2 segments.
    let (_, replayed) = open(&scratch.0, options(1, 0xAB)).unwrap();
    assert_eq!(replayed, written);
}

#[test]
fn a_segment_of_another_cluster_is_refused_untouched() {
    let scratch = ScratchDirectory::new("foreign");
    let (mut log, mut written) = open(&scratch.0, options(2, 0xAB)).unwrap();
    append(&mut log, &mut written, 10);
    drop(log);
    let before = files_of(&scratch.0);
    let error = open(&scratch.0, options(2, 0xCD)).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, LogError::ForeignSegment { found_cluster_id: 0xAB, expected_cluster_id: 0xCD, .. }), "{message}");
    assert!(message.contains("00000000000000000001.seg") && message.contains("ab") && message.contains("cd"), "{message}");
    assert_eq!(files_of(&scratch.0), before);
}

#[test]
fn a_segment_of_a_newer_format_is_refused_untouched() {
    let scratch = ScratchDirectory::new("newer");
    let (mut log, mut written) = open(&scratch.0, options(2, 0xAB)).unwrap();
    append(&mut log, &mut written, 10);
    drop(log);
    let last = files_of(&scratch.0).keys().last().unwrap().clone();
    let path = scratch.0.join(&last);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let before = files_of(&scratch.0);
    let error = open(&scratch.0, options(2, 0xAB)).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, LogError::UnsupportedFormat { found_version: 9, supported_version: 2, .. }), "{message}");
    assert!(message.contains(&last) && message.contains("version 9") && message.contains("up to 2"), "{message}");
    assert_eq!(files_of(&scratch.0), before);
}

#[test]
fn options_with_an_unknown_format_version_are_refused() {
    let scratch = ScratchDirectory::new("options");
    for version in [0, 3] {
        let error = open(&scratch.0, options(version, 0)).unwrap_err();
        assert!(matches!(error, LogError::InvalidOptions { .. }), "{error}");
    }
}
