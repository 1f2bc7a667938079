//! Corruption at rest, end to end: a byte flipped inside a sealed segment makes `strata` refuse to
//! start, naming the file and the byte offset, and every file of the data directory is left
//! exactly as it was.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, start_strata, TempDir};

const SEGMENT_BYTES: &str = "4096";
const HEADER_BYTES: u64 = 64;

fn files(directory: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_stops_start_up_and_changes_nothing() {
    let temp = TempDir::new("corruption");
    let data_dir = temp.join("data");
    let mut server = start_strata(&data_dir, &["--log-segment-bytes", SEGMENT_BYTES]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..100 {
            let request = pb::PutRequest { key: format!("key-{index}").into_bytes(), value: vec![b'v'; 200], ..Default::default() };
            clients.kv.put(request).await.unwrap();
        }
    });
    assert!(server.terminate().success());

    let segments: Vec<PathBuf> = {
        let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir.join("log")).unwrap().map(|entry| entry.unwrap().path()).collect();
        segments.sort();
        segments
    };
    assert!(segments.len() >= 3, "small segments rotate: {segments:?}");
    // The second segment is sealed; damage the payload of its first record.
    let victim = &segments[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let flipped_at = HEADER_BYTES + 16 + 10;
    bytes[flipped_at as usize] ^= 0x55;
    std::fs::write(victim, &bytes).unwrap();
    let before = files(&data_dir);

    let mut child = std::process::Command::new(support::strata_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen-client-urls")
        .arg(format!("http://127.0.0.1:{}", support::free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata kept running on a corrupt data directory");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "refused to start: {stderr}");
    let file_name = victim.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(file_name), "names the file: {stderr}");
    assert!(stderr.contains(&format!("offset {HEADER_BYTES}")), "names the damaged frame's offset: {stderr}");
    assert_eq!(files(&data_dir), before, "no file was modified");
}
