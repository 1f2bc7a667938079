//! Every storage format stays readable, end to end with the real binary:
//! - the golden data directories under `tests/fixtures/data-dirs/` (one per storage format, and one
//!   mixed directory whose older files are format 1 and newer ones format 2) are served by today's
//!   binary with exactly the contents recorded when they were made, `strata upgrade check` finds
//!   every file ok, and serving them changes none of their files;
//! - a directory written pinned to storage format 1, then served unpinned, keeps its old segments
//!   and snapshots byte for byte while new segments are written in segment format 2;
//! - a newer-format, foreign or unknown file makes the node refuse to start, naming the file and
//!   both versions, and modifies nothing (checksums of every file before and after).
//!
//! The golden directories are made once per storage format by
//! `STRATA_BLESS_GOLDEN=1 cargo test -p strata --test storage_formats -- --ignored generate`,
//! which never overwrites an existing one.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_etcd_api::pb::etcdserverpb as pb;
use strata_types::formats::{STORAGE_FORMATS, STORAGE_FORMAT_NEWEST};
use support::{connect, free_port, start_strata, strata_binary, TempDir, create_snapshot};

/// Small segments, frequent snapshots (full and incremental), nothing deleted: every file kind
/// appears in a small directory.
const FIXTURE_FLAGS: &[&str] = &["--log-segment-bytes=2048", "--snapshot-count=25", "--snapshot-increments=2", "--max-snapshots=0"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data-dirs")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Every file under `directory` (relative path → bytes).
fn files(directory: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, directory: &Path, found: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(directory) else { return };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                found.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(directory, directory, &mut found);
    found
}

fn copy_directory(from: &Path, to: &Path) {
    for (relative, bytes) in files(from) {
        let target = to.join(&relative);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
}

/// Asserts that every file in `before` is unchanged in `directory` and that no file appeared but
/// the lock file.
fn assert_unchanged(directory: &Path, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    let after = files(directory);
    for (name, bytes) in before {
        assert!(after.get(name) == Some(bytes), "{what}: {name} was modified or removed");
    }
    for name in after.keys() {
        assert!(before.contains_key(name) || name == "LOCK", "{what}: {name} appeared");
    }
}

/// The segment format version in a segment file's header.
fn header_version(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[8..12].try_into().expect("four bytes"))
}

/// Every key with its revisions, version, lease and value, one line each, and the revision: what
/// a golden directory must hold.
async fn contents(endpoint: &str) -> String {
    let mut clients = connect(endpoint).await;
    let range = pb::RangeRequest { key: vec![0], range_end: vec![0], ..pb::RangeRequest::default() };
    let response = clients.kv.range(range).await.expect("range").into_inner();
    let mut text = format!("revision {}\n", response.header.expect("header").revision);
    for kv in response.kvs {
        text.push_str(&format!(
            "{} create={} mod={} version={} lease={} value={}\n",
            String::from_utf8_lossy(&kv.key),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease,
            String::from_utf8_lossy(&kv.value)
        ));
    }
    text
}

/// The writes of a golden directory: puts, overwrites, deletes and a lease, `round` telling runs apart.
async fn workload(endpoint: &str, round: u32) {
    let mut clients = connect(endpoint).await;
    let channel = tonic::transport::Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect");
    let mut leases = pb::lease_client::LeaseClient::new(channel);
    let lease = leases.lease_grant(pb::LeaseGrantRequest { ttl: 1_000_000, id: 0 }).await.expect("grant").into_inner().id;
    for step in 0..60u32 {
        let key = format!("round{round}/key{:02}", step % 17);
        let value = format!("value {step} of round {round}");
        let lease = if step % 13 == 0 { lease } else { 0 };
        clients.kv.put(pb::PutRequest { key: key.into(), value: value.into(), lease, ..pb::PutRequest::default() }).await.expect("put");
        if step % 11 == 10 {
            let key = format!("round{round}/key{:02}", (step + 3) % 17);
            clients.kv.delete_range(pb::DeleteRangeRequest { key: key.into(), ..pb::DeleteRangeRequest::default() }).await.expect("delete");
        }
    }
}

fn snapshot_names(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("snap"))
        .map(|entries| entries.map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Takes a full snapshot, writes a little more and takes an incremental one on top of it, each
/// awaited through the Admin service: every file kind is then in the directory.
async fn take_snapshots(endpoint: &str, round: u32) {
    create_snapshot(endpoint, true).await;
    let mut clients = connect(endpoint).await;
    for step in 0..3u32 {
        let request = pb::PutRequest { key: format!("round{round}/after-snapshot").into(), value: step.to_string().into(), ..pb::PutRequest::default() };
        clients.kv.put(request).await.expect("put");
    }
    let incremental = create_snapshot(endpoint, false).await;
    assert!(incremental.base_revision > 0, "an incremental snapshot: {incremental:?}");
}

/// Writes a directory: one workload round per storage format in `formats`, each in a run of the
/// binary pinned to that format; returns its contents.
fn write_directory(data_dir: &Path, formats: &[u32]) -> String {
    let mut contents_text = String::new();
    for (round, format) in formats.iter().enumerate() {
        let pin = format!("--storage-format={format}");
        let mut flags = FIXTURE_FLAGS.to_vec();
        flags.push(&pin);
        let mut server = start_strata(data_dir, &flags);
        runtime().block_on(async {
            workload(&server.endpoint, round as u32).await;
            take_snapshots(&server.endpoint, round as u32).await;
        });
        contents_text = runtime().block_on(contents(&server.endpoint));
        assert!(server.terminate().success(), "clean stop; log:\n{}", server.log());
    }
    contents_text
}

/// The golden directories: name → the storage formats of its runs.
fn golden_directories() -> Vec<(String, Vec<u32>)> {
    let mut all: Vec<(String, Vec<u32>)> = STORAGE_FORMATS.iter().map(|format| (format!("storage-format-{}", format.number), vec![format.number])).collect();
    all.push(("mixed-1-2".to_string(), vec![1, 2]));
    all
}

#[test]
#[ignore = "makes the golden data directories of a new storage format; run with STRATA_BLESS_GOLDEN=1"]
fn generate() {
    assert!(std::env::var_os("STRATA_BLESS_GOLDEN").is_some(), "set STRATA_BLESS_GOLDEN=1 to make golden data directories");
    for (name, formats) in golden_directories() {
        let target = fixtures().join(&name);
        if target.exists() {
            continue;
        }
        let scratch = TempDir::new("golden-data-dir");
        let data_dir = scratch.join("data");
        let expected = write_directory(&data_dir, &formats);
        let _ = std::fs::remove_file(data_dir.join("LOCK"));
        copy_directory(&data_dir, &target);
        std::fs::write(fixtures().join(format!("{name}.expected")), expected).expect("write expected contents");
    }
}

#[test]
fn golden_data_directories_of_every_storage_format_are_served_unchanged() {
    for (name, formats) in golden_directories() {
        let golden = fixtures().join(&name);
        assert!(golden.is_dir(), "{} is missing: make it with the ignored `generate` test (see this file's documentation)", golden.display());
        let expected = std::fs::read_to_string(fixtures().join(format!("{name}.expected"))).expect("expected contents");
        let segment_versions: std::collections::BTreeSet<u32> =
            files(&golden).iter().filter(|(path, _)| path.ends_with(".seg")).map(|(_, bytes)| header_version(bytes)).collect();
        let expected_versions: std::collections::BTreeSet<u32> =
            formats.iter().map(|number| strata_types::formats::storage_format(*number).expect("known").segment).collect();
        assert_eq!(segment_versions, expected_versions, "{name}: segment format versions");
        assert!(snapshot_names(&golden).iter().any(|name| name.ends_with(".isnap")), "{name}: holds an incremental snapshot");

        let scratch = TempDir::new("golden-serve");
        let data_dir = scratch.join("data");
        copy_directory(&golden, &data_dir);
        let before = files(&data_dir);
        let check = std::process::Command::new(strata_binary()).args(["upgrade", "check", "--data-dir"]).arg(&data_dir).output().expect("upgrade check");
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{name}: upgrade check says this binary cannot serve it:\n{report}");
        assert_eq!(report.lines().filter(|line| line.starts_with("ok ")).count(), before.len(), "{name}: every file checked ok:\n{report}");
        let mut server = start_strata(&data_dir, &[]);
        let served = runtime().block_on(contents(&server.endpoint));
        assert_eq!(served, expected, "{name}: contents served by this binary");
        assert!(server.terminate().success());
        assert_unchanged(&data_dir, &before, &name);
    }
}

#[test]
fn old_files_stay_as_they_are_while_new_segments_use_the_new_format() {
    let scratch = TempDir::new("mixed-live");
    let data_dir = scratch.join("data");
    write_directory(&data_dir, &[1]);
    let old = files(&data_dir);
    let old_segments: Vec<&String> = old.keys().filter(|name| name.ends_with(".seg")).collect();
    assert!(old_segments.len() >= 3, "several segments: {old_segments:?}");
    assert!(old_segments.iter().all(|name| header_version(&old[*name]) == 1));

    let mut flags = FIXTURE_FLAGS.to_vec();
    let newest = format!("--storage-format={STORAGE_FORMAT_NEWEST}");
    flags.push(&newest);
    let mut server = start_strata(&data_dir, &flags);
    runtime().block_on(workload(&server.endpoint, 1));
    let expected = runtime().block_on(contents(&server.endpoint));
    assert!(server.terminate().success());

    let now = files(&data_dir);
    let last_old_segment = old_segments.last().expect("a segment");
    for (name, bytes) in &old {
        if name == *last_old_segment || name == "LOCK" {
            continue; // the last segment takes appends until it is full, in its own format
        }
        assert!(now.get(name) == Some(bytes), "{name}: an old file was modified or removed");
    }
    let new_segments: Vec<&String> = now.keys().filter(|name| name.ends_with(".seg") && !old.contains_key(*name)).collect();
    assert!(!new_segments.is_empty(), "the second run wrote new segments");
    for name in &new_segments {
        assert_eq!(header_version(&now[*name]), 2, "{name}");
    }

    // Served again, unpinned and pinned to format 1 (as before a downgrade): the same contents.
    for flags in [&[][..], &["--storage-format=1"][..]] {
        let mut server = start_strata(&data_dir, flags);
        assert_eq!(runtime().block_on(contents(&server.endpoint)), expected);
        assert!(server.terminate().success());
    }
}

/// Starts the binary on `data_dir` and expects it to refuse; returns its stderr.
fn refused_start(data_dir: &Path) -> String {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let child = std::process::Command::new(strata_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen-client-urls")
        .arg(&endpoint)
        .arg("--advertise-client-urls")
        .arg(&endpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn strata");
    // The exit is awaited on a thread; if it does not come, the server is killed by its pid.
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("strata started on {} instead of refusing", data_dir.display());
        }
    };
    assert!(!output.status.success(), "a refusal exits non-zero");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn set_format_version(path: &Path, version: u32) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    std::fs::write(path, bytes).expect("write");
}

fn first_with_suffix(directory: &Path, suffix: &str) -> PathBuf {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(directory).expect("list").map(|entry| entry.expect("entry").path()).filter(|path| path.to_string_lossy().ends_with(suffix)).collect();
    names.sort();
    names.into_iter().next().unwrap_or_else(|| panic!("no *{suffix} in {}", directory.display()))
}

#[test]
fn newer_foreign_and_unknown_files_are_refused_and_nothing_is_modified() {
    type Damage = fn(&Path) -> (String, Vec<String>);
    let cases: Vec<(&str, Damage)> = vec![
        ("newer segment", |data_dir| {
            let path = first_with_suffix(&data_dir.join("log"), ".seg");
            set_format_version(&path, 9);
            (path.file_name().unwrap().to_string_lossy().into_owned(), vec!["segment format version 9".into(), "up to 2".into()])
        }),
        ("newer snapshot", |data_dir| {
            let path = first_with_suffix(&data_dir.join("snap"), ".snap");
            set_format_version(&path, 9);
            (path.file_name().unwrap().to_string_lossy().into_owned(), vec!["snapshot format version 9".into(), "up to 1".into()])
        }),
        ("newer incremental snapshot", |data_dir| {
            let path = first_with_suffix(&data_dir.join("snap"), ".isnap");
            set_format_version(&path, 9);
            (path.file_name().unwrap().to_string_lossy().into_owned(), vec!["incremental-snapshot format version 9".into(), "up to 1".into()])
        }),
        ("newer manifest", |data_dir| {
            set_format_version(&data_dir.join("STRATA"), 9);
            ("STRATA".into(), vec!["manifest format version 9".into(), "up to 1".into()])
        }),
        ("unknown file kind", |data_dir| {
            std::fs::write(data_dir.join("snap/db"), b"bbolt?").expect("write");
            ("db".into(), vec!["unknown file kind".into()])
        }),
        ("bad magic", |data_dir| {
            let path = first_with_suffix(&data_dir.join("log"), ".seg");
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[0..8].copy_from_slice(b"NOTASEG!");
            std::fs::write(&path, bytes).expect("write");
            (path.file_name().unwrap().to_string_lossy().into_owned(), vec!["bad magic".into()])
        }),
    ];
    let golden = fixtures().join(format!("storage-format-{STORAGE_FORMAT_NEWEST}"));
    for (what, damage) in cases {
        let scratch = TempDir::new("refusal");
        let data_dir = scratch.join("data");
        copy_directory(&golden, &data_dir);
        let (file, expected) = damage(&data_dir);
        let before = files(&data_dir);
        let stderr = refused_start(&data_dir);
        assert!(stderr.contains(&file), "{what}: the message names {file}: {stderr}");
        for text in expected {
            assert!(stderr.contains(&text), "{what}: the message says {text:?}: {stderr}");
        }
        assert!(stderr.contains("nothing was modified"), "{what}: {stderr}");
        assert_unchanged(&data_dir, &before, what);
    }
}
