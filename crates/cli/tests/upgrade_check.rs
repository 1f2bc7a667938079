//! `strata upgrade check` end to end, on data directories the real binary wrote (small segments,
//! automatic snapshots) and then damaged as a crash, a disk or a newer release would:
//! - healthy (with snapshots, and a log from index 1 without any): exit 0, every file ok;
//! - a torn tail after the last record of the last segment: exit 0, that file recoverable;
//! - a byte flipped inside a sealed segment: exit 1, that file's error names the damaged frame;
//! - a snapshot with format version 9: exit 1, naming version 9 and the supported version;
//! - a damaged newest snapshot with an older restore point: exit 0, the file an error, skipped;
//! - `--json` parses and says the same; a missing directory or a missing flag: exit 2.
//!
//! Every check must leave every file of the directory exactly as it was.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, start_strata, strata_binary, TempDir, names};

const SEGMENT_HEADER_BYTES: usize = 64;
const FRAME_HEADER_BYTES: usize = 16;
const SNAPSHOT_COUNT: u64 = 60;

fn files(directory: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

fn copy(from: &Path, to: &Path) {
    for (path, bytes) in files(from) {
        let target = to.join(path.strip_prefix(from).expect("inside"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `strata upgrade check`; asserts that no file of the directory changed. Returns the exit
/// code, stdout and stderr.
fn check(data_dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let before = files(data_dir);
    let output = std::process::Command::new(strata_binary())
        .args(["upgrade", "check", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("run strata upgrade check");
    assert_eq!(files(data_dir), before, "the check changed nothing in {}", data_dir.display());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    (output.status.code().expect("exit code"), stdout, stderr)
}

/// `--json`: the exit code and the parsed report, checked against the text report's facts.
fn check_json(data_dir: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = check(data_dir, &["--json"]);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}\n{stderr}"));
    let (text_code, text, _) = check(data_dir, &[]);
    assert_eq!(code, text_code);
    assert_eq!(report["servable"], Value::Bool(code == 0), "{report:#}");
    assert!(text.contains(&format!("verdict: {}", report["verdict"].as_str().expect("verdict"))), "{text}");
    for file in report["files"].as_array().expect("files") {
        let line = text.lines().find(|line| line.contains(&format!(" {}  ", file["path"].as_str().expect("path")))).expect("a line per file");
        assert!(line.starts_with(file["status"].as_str().expect("status")), "{line} vs {file}");
    }
    (code, report)
}

fn file<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["files"].as_array().expect("files").iter().find(|file| file["path"] == path).unwrap_or_else(|| panic!("{path} in {report:#}"))
}

/// The frames of a segment file: (offset, length with header), and where the records end.
fn frames(bytes: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut found = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset + FRAME_HEADER_BYTES <= bytes.len() && bytes[offset..offset + FRAME_HEADER_BYTES].iter().any(|byte| *byte != 0) {
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        found.push((offset, FRAME_HEADER_BYTES + length));
        offset += FRAME_HEADER_BYTES + length;
    }
    (found, offset)
}

/// Runs a node on `data_dir` with `arguments`, puts `count` keys with 150-byte values, waits for
/// `settled` and stops it with SIGTERM.
fn write_directory(data_dir: &Path, arguments: &[&str], count: usize, mut settled: impl FnMut() -> bool) {
    let mut server = start_strata(data_dir, arguments);
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..count {
            let request = pb::PutRequest { key: format!("key-{:02}", index % 50).into_bytes(), value: vec![b'v'; 150], ..Default::default() };
            clients.kv.put(request).await.expect("put");
        }
    });
    wait_until("the node settled", &mut settled);
    assert!(server.terminate().success(), "clean stop:\n{}", server.log());
}

#[test]
fn healthy_torn_corrupt_newer_and_skipped_directories() {
    let temp = TempDir::new("upgrade-check");

    // A log from index 1 and no snapshots.
    let log_only = temp.join("log-only");
    write_directory(&log_only, &["--log-segment-bytes=4096", "--snapshot-count=0"], 100, || true);
    let segments: Vec<String> = names(&log_only.join("log"));
    assert!(segments.len() >= 3, "small segments rotate: {segments:?}");
    assert!(names(&log_only.join("snap")).is_empty());

    // Small segments and automatic snapshots; retention deletes the log's head.
    let puts = 250;
    let with_snapshots = temp.join("snapshots");
    let snap = with_snapshots.join("snap");
    write_directory(&with_snapshots, &["--log-segment-bytes=4096", &format!("--snapshot-count={SNAPSHOT_COUNT}"), "--max-snapshots=2", "--snapshot-increments=2"], puts, || {
        // Only puts: revision = log index + 1. Settled: no snapshot being written and none due.
        let names = names(&snap);
        let snapshots = names.iter().filter(|name| !name.ends_with(".tmp")).count();
        let newest_log_index = names.iter().filter_map(|name| name.get(..20)?.parse::<u64>().ok()).max().unwrap_or(1) - 1;
        snapshots >= 2 && !names.iter().any(|name| name.ends_with(".tmp")) && (puts as u64) - newest_log_index < SNAPSHOT_COUNT
    });

    assert!(names(&with_snapshots.join("log"))[0] > segments[0], "retention deleted the log's head: {:?}", names(&with_snapshots.join("log")));

    // Healthy: every file ok.
    for data_dir in [&log_only, &with_snapshots] {
        let (code, report) = check_json(data_dir);
        assert_eq!(code, 0, "{report:#}");
        let files = report["files"].as_array().expect("files");
        assert_eq!(files[0]["kind"], "manifest");
        for file in files {
            assert_eq!(file["status"], "ok", "{file}");
            assert!(file["format_version"].as_u64().is_some_and(|version| version >= 1), "{file}");
        }
        let segment_count = files.iter().filter(|file| file["kind"] == "segment").count();
        assert_eq!(segment_count, names(&data_dir.join("log")).len());
        assert!(report["verdict"].as_str().expect("verdict").starts_with("this binary (strata "), "{report:#}");
        assert!(report["verdict"].as_str().expect("verdict").contains("can serve this data directory"), "{report:#}");
    }
    let (_, report) = check_json(&log_only);
    let first = file(&report, &format!("log/{}", segments[0]));
    assert_eq!((first["range"]["first_index"].as_u64(), first["range"]["first_revision"].as_i64()), (Some(1), Some(2)));
    let (_, report) = check_json(&with_snapshots);
    assert!(report["files"].as_array().expect("files").iter().any(|file| file["kind"] == "snapshot" && file["range"]["log_index"].as_u64().is_some()));

    // A torn tail: a frame cut short after the last record of the last segment, as a crash leaves.
    let torn = temp.join("torn");
    copy(&log_only, &torn);
    let last = torn.join("log").join(segments.last().expect("a segment"));
    let mut bytes = std::fs::read(&last).expect("read");
    let (_, records_end) = frames(&bytes);
    let mut partial = vec![100, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    partial.extend_from_slice(&101u64.to_le_bytes());
    partial.extend_from_slice(&[0xab; 30]);
    if bytes.len() < records_end + partial.len() {
        bytes.resize(records_end + partial.len(), 0);
    }
    bytes[records_end..records_end + partial.len()].copy_from_slice(&partial);
    std::fs::write(&last, &bytes).expect("write");
    let (code, report) = check_json(&torn);
    assert_eq!(code, 0, "{report:#}");
    let last_report = file(&report, &format!("log/{}", segments.last().expect("a segment")));
    assert_eq!(last_report["status"], "recoverable", "{last_report}");
    let reason = last_report["reason"].as_str().expect("reason");
    assert!(reason.contains(&format!("torn tail of {} bytes", partial.len())) && reason.contains(&format!("byte offset {records_end}")), "{reason}");
    assert!(report["verdict"].as_str().expect("verdict").contains("torn tail"), "{report:#}");

    // A byte flipped inside a sealed segment: the error names the frame that holds it.
    let corrupt = temp.join("corrupt");
    copy(&log_only, &corrupt);
    let victim = corrupt.join("log").join(&segments[1]);
    let mut bytes = std::fs::read(&victim).expect("read");
    let (victim_frames, _) = frames(&bytes);
    let flipped_at = victim_frames[2].0 + FRAME_HEADER_BYTES + 40;
    bytes[flipped_at] ^= 0x55;
    std::fs::write(&victim, &bytes).expect("write");
    let (code, report) = check_json(&corrupt);
    assert_eq!(code, 1, "{report:#}");
    let damaged = file(&report, &format!("log/{}", segments[1]));
    assert_eq!(damaged["status"], "error", "{damaged}");
    let offset = damaged["offset"].as_u64().expect("an offset") as usize;
    let (frame_start, frame_bytes) = *victim_frames.iter().find(|(start, _)| *start == offset).unwrap_or_else(|| panic!("{offset} starts a frame: {damaged}"));
    assert!(frame_start <= flipped_at && flipped_at < frame_start + frame_bytes, "byte {flipped_at} lies in the frame at {frame_start}");
    assert_eq!(damaged["records"], 2, "the two records before it verified");
    let verdict = report["verdict"].as_str().expect("verdict");
    assert!(verdict.contains("cannot serve") && verdict.contains(&format!("log/{} at byte offset {offset}", segments[1])), "{verdict}");
    let others_ok = report["files"].as_array().expect("files").iter().filter(|file| file["status"] == "ok").count();
    assert_eq!(others_ok, report["files"].as_array().expect("files").len() - 1, "every other file is still checked: {report:#}");
    let (_, text, _) = check(&corrupt, &[]);
    assert!(text.lines().any(|line| line.starts_with("error") && line.contains(&segments[1]) && line.contains(&format!("at byte offset {offset}"))), "{text}");

    // A snapshot written by a newer release (format version 9 in its prefix).
    let newer = temp.join("newer");
    copy(&with_snapshots, &newer);
    let full = names(&newer.join("snap")).into_iter().find(|name| name.ends_with(".snap")).expect("a full snapshot");
    let path = newer.join("snap").join(&full);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let (code, report) = check_json(&newer);
    assert_eq!(code, 1, "{report:#}");
    let newer_report = file(&report, &format!("snap/{full}"));
    assert_eq!((newer_report["status"].as_str(), newer_report["format_version"].as_u64(), newer_report["offset"].as_u64()), (Some("error"), Some(9), Some(8)));
    let reason = newer_report["reason"].as_str().expect("reason");
    assert!(reason.contains("version 9") && reason.contains("up to 1"), "{reason}");
    assert!(report["verdict"].as_str().expect("verdict").contains("version 9"), "{report:#}");

    // A damaged newest snapshot: start-up skips it and loads the older restore point.
    let skipped = temp.join("skipped");
    copy(&with_snapshots, &skipped);
    let newest = names(&skipped.join("snap")).into_iter().max_by_key(|name| name[..20].to_string()).expect("a snapshot");
    let path = skipped.join("snap").join(&newest);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");
    let (code, report) = check_json(&skipped);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(file(&report, &format!("snap/{newest}"))["status"], "error");
    assert!(report["verdict"].as_str().expect("verdict").contains("start-up skips it"), "{report:#}");

    // Usage errors and a directory that is not there.
    let (code, _, stderr) = check(&temp.join("nothing-here"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no such data directory"), "{stderr}");
    let output = std::process::Command::new(strata_binary()).args(["upgrade", "check"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
}
