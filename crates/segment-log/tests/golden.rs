//! Golden files for segment format version 1 (`tests/golden/format-v1/`): today's code must read
//! them, and writing the same records must produce them byte for byte. A change that breaks this
//! test changes the on-disk format: that needs a new format version, not a new golden file.
//! To create the files for a NEW format version: `STRATA_BLESS_GOLDEN=1 cargo test --test golden`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::RealFileSystem;
use strata_segment_log::{LogOptions, SegmentLog};

fn golden_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/format-v1")
}

/// Fixed options: the writer version is pinned so the files do not change with the crate version.
fn golden_options() -> LogOptions {
    LogOptions {
        node_id: 7,
        writer_version: 1_000,
        segment_bytes_max: 200,
    }
}

/// `(revision, payload)` of the golden records, indexes 1..=5.
fn golden_records() -> Vec<(i64, Vec<u8>)> {
    vec![
        (2, Vec::new()),
        (3, b"hi".to_vec()),
        (4, (0..100u8).collect()),
        (5, b"strata".to_vec()),
        (6, vec![0xEE; 30]),
    ]
}

struct ScratchDirectory(PathBuf);

impl Drop for ScratchDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_of(directory: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn format_version_1_golden_files_are_read_and_reproduced() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let scratch = ScratchDirectory(
        std::env::temp_dir().join(format!("strata-golden-{}-{nanos}", std::process::id())),
    );
    let written = scratch.0.join("written");
    let mut log = SegmentLog::open(
        Arc::new(RealFileSystem::new()),
        &written,
        golden_options(),
        &mut |_, _| Ok(()),
    )
    .unwrap()
    .log;
    for (revision, payload) in golden_records() {
        log.append(revision, &payload).unwrap();
    }
    log.sync().unwrap();
    drop(log);

    if std::env::var_os("STRATA_BLESS_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_directory()).unwrap();
        for (name, bytes) in files_of(&written) {
            std::fs::write(golden_directory().join(name), bytes).unwrap();
        }
    }
    assert_eq!(
        files_of(&written),
        files_of(&golden_directory()),
        "writing the golden records no longer reproduces format v1"
    );

    // Read a copy (open may repair a torn tail; golden files have none, but never risk them).
    let copy = scratch.0.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for (name, bytes) in files_of(&golden_directory()) {
        std::fs::write(copy.join(name), bytes).unwrap();
    }
    let mut replayed = Vec::new();
    let recovered = SegmentLog::open(
        Arc::new(RealFileSystem::new()),
        &copy,
        golden_options(),
        &mut |index, payload| {
            replayed.push((index, payload.to_vec()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(recovered.truncated_tail_bytes, 0);
    let expected: Vec<(u64, Vec<u8>)> = golden_records()
        .into_iter()
        .enumerate()
        .map(|(position, (_, payload))| (position as u64 + 1, payload))
        .collect();
    assert_eq!(replayed, expected);
    assert_eq!(
        files_of(&copy),
        files_of(&golden_directory()),
        "reading must not modify the files"
    );
}
