//! Golden files for every segment format version (`tests/fixtures/segment/format-v<N>/` at the
//! repository's root): today's code must read them, and writing the same records in that version
//! must produce them byte for byte. A change that breaks this test changes the on-disk format:
//! that needs a new format version (`strata_types::formats`), not new golden files. To create the
//! files of a NEW format version (only then): `STRATA_BLESS_GOLDEN=1 cargo test --test golden`;
//! existing files are never rewritten.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::RealFileSystem;
use strata_segment_log::{LogOptions, SegmentLog};

use strata_types::formats::{newest_version, FileKind, FORMAT_VERSIONS};

fn golden_directory(format_version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/fixtures/segment/format-v{format_version}"))
}

/// Fixed options: the writer version is pinned so the files do not change with the crate version.
fn golden_options(format_version: u32) -> LogOptions {
    LogOptions {
        node_id: 7,
        writer_version: 1_000,
        format_version,
        cluster_id: if format_version >= 2 { 0xC1 } else { 0 },
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
fn every_format_version_has_golden_files_that_are_read_and_reproduced() {
    let versions: Vec<u32> = FORMAT_VERSIONS.iter().filter(|entry| entry.kind == FileKind::Segment).map(|entry| entry.version).collect();
    assert_eq!(versions.last(), Some(&newest_version(FileKind::Segment)));
    for version in versions {
        golden_files_are_read_and_reproduced(version);
    }
}

fn golden_files_are_read_and_reproduced(format_version: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let scratch = ScratchDirectory(
        std::env::temp_dir().join(format!("strata-golden-{}-{nanos}-v{format_version}", std::process::id())),
    );
    let written = scratch.0.join("written");
    let mut log = SegmentLog::open(
        Arc::new(RealFileSystem::new()),
        &written,
        golden_options(format_version),
        &mut |_, _| Ok(()),
    )
    .unwrap()
    .log;
    for (revision, payload) in golden_records() {
        log.append(revision, &payload).unwrap();
    }
    log.sync().unwrap();
    drop(log);

    let golden = golden_directory(format_version);
    if std::env::var_os("STRATA_BLESS_GOLDEN").is_some() && !golden.exists() {
        std::fs::create_dir_all(&golden).unwrap();
        for (name, bytes) in files_of(&written) {
            std::fs::write(golden.join(name), bytes).unwrap();
        }
    }
    assert_eq!(
        files_of(&written),
        files_of(&golden),
        "writing the golden records no longer reproduces segment format v{format_version}"
    );

    // Read a copy (open may repair a torn tail; golden files have none, but never risk them).
    let copy = scratch.0.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for (name, bytes) in files_of(&golden) {
        std::fs::write(copy.join(name), bytes).unwrap();
    }
    let mut replayed = Vec::new();
    let recovered = SegmentLog::open(
        Arc::new(RealFileSystem::new()),
        &copy,
        golden_options(format_version),
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
        files_of(&golden),
        "reading must not modify the files"
    );
}
