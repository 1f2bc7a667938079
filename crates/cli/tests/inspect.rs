//! `strata inspect` end to end, on the files of a real run (small segments, a snapshot,
//! nothing deleted): every write shows up in the segments (puts with their value sizes, a delete,
//! a key with bytes that are not printable, a lease grant and a put on it, a compaction), the
//! snapshot shows the keys with their versions, `--from/--to` keep only the records in range,
//! `--json` lines parse and say the same, the manifest reads, a damaged segment prints what was
//! read and then the error with its offset (exit 1), and a file that is no Strata file exits 2.

mod support;


use serde_json::Value;
use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, connect_lease, start_strata, strata_binary, TempDir, names, create_snapshot};

const SEGMENT_HEADER_BYTES: usize = 64;
const FRAME_HEADER_BYTES: usize = 16;
const PUTS: usize = 60;
const VALUE_PADDING: usize = 100;

fn inspect(arguments: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(strata_binary()).arg("inspect").args(arguments).output().expect("run strata inspect");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    (output.status.code().expect("exit code"), stdout + &String::from_utf8_lossy(&output.stderr))
}

fn record_lines(output: &str) -> Vec<&str> {
    output.lines().filter(|line| line.starts_with("  ")).collect()
}

fn json_lines(output: &str) -> Vec<Value> {
    output.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))).collect()
}

fn value_of(index: usize) -> String {
    format!("value-{index}-{}", "p".repeat(VALUE_PADDING))
}

#[test]
fn segments_snapshots_and_the_manifest_of_a_real_run() {
    let temp = TempDir::new("inspect");
    let data_dir = temp.join("node");
    let mut server = start_strata(&data_dir, &["--log-segment-bytes=4096", "--snapshot-count=0", "--max-snapshots=0", "--snapshot-increments=0"]);
    let lease = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..PUTS {
            let request = pb::PutRequest { key: format!("alpha/{index:02}").into_bytes(), value: value_of(index).into_bytes(), ..Default::default() };
            let revision = clients.kv.put(request).await.expect("put").into_inner().header.expect("header").revision;
            assert_eq!(revision, index as i64 + 2, "alpha/{index:02} is at revision {}", index + 2);
        }
        clients.kv.put(pb::PutRequest { key: b"bin\x00\xff".to_vec(), value: b"x".to_vec(), ..Default::default() }).await.expect("put");
        clients.kv.delete_range(pb::DeleteRangeRequest { key: b"alpha/03".to_vec(), ..Default::default() }).await.expect("delete");
        let lease = connect_lease(&server.endpoint).await.lease_grant(pb::LeaseGrantRequest { ttl: 600, id: 0 }).await.expect("grant").into_inner().id;
        clients.kv.put(pb::PutRequest { key: b"leased".to_vec(), value: b"l".to_vec(), lease, ..Default::default() }).await.expect("put");
        clients.kv.compact(pb::CompactionRequest { revision: 10, physical: true }).await.expect("compact");
        create_snapshot(&server.endpoint, true).await;
        lease
    });
    let snap = data_dir.join("snap");
    assert!(server.terminate().success());

    // Segments: every write, in order, with its revision.
    let log = data_dir.join("log");
    let segments = names(&log);
    assert!(segments.len() >= 3 && segments[0] == "00000000000000000001.seg", "{segments:?}");
    let mut all = String::new();
    for (position, segment) in segments.iter().enumerate() {
        let (code, output) = inspect(&[log.join(segment).to_str().expect("path")]);
        assert_eq!(code, 0, "{output}");
        assert!(output.contains("format version:       2") && output.contains("verified:             ok"), "{output}");
        assert_eq!(output.contains("sealed:               true"), position + 1 < segments.len(), "{output}");
        all.push_str(&output);
    }
    for index in 0..PUTS {
        let line = format!("revision {}  hlc ", index + 2);
        let expected = format!("put \"alpha/{index:02}\" ({} bytes)", value_of(index).len());
        assert!(record_lines(&all).iter().any(|record| record.contains(&line) && record.ends_with(&expected)), "{expected} at {line}:\n{all}");
    }
    for expected in ["put \"bin\\x00\\xff\" (1 bytes)", "delete \"alpha/03\"", &format!("lease grant {lease:x}, TTL 600 s"), &format!("put \"leased\" (1 bytes, lease {lease:x})"), "compact to revision 10"] {
        assert!(all.contains(expected), "{expected} in:\n{all}");
    }

    // --from/--to on the first segment: only the records of those revisions.
    let first = log.join(&segments[0]);
    let (code, output) = inspect(&[first.to_str().expect("path"), "--from", "5", "--to", "7"]);
    assert_eq!(code, 0, "{output}");
    let records = record_lines(&output);
    assert_eq!(records.len(), 3, "{output}");
    for (record, index) in records.iter().zip(3..=5) {
        assert!(record.contains(&format!("revision {}  ", index + 2)) && record.contains(&format!("\"alpha/{index:02}\"")), "{record}");
    }
    assert!(output.contains("shown:                3 (revisions 5..7)"), "{output}");
    let (code, output) = inspect(&[first.to_str().expect("path"), "--from", "5", "--to", "7", "--json"]);
    assert_eq!(code, 0, "{output}");
    let lines = json_lines(&output);
    assert_eq!((lines[0]["type"].as_str(), lines[0]["kind"].as_str(), lines[0]["first_index"].as_u64()), (Some("header"), Some("segment"), Some(1)));
    let records: Vec<&Value> = lines.iter().filter(|line| line["type"] == "record").collect();
    assert_eq!(records.iter().map(|record| record["revision"].as_i64().expect("revision")).collect::<Vec<_>>(), vec![5, 6, 7]);
    assert_eq!(records[0]["changes"][0]["key"], "alpha/03");
    assert_eq!(records[0]["changes"][0]["value_bytes"].as_u64(), Some(value_of(3).len() as u64));
    assert_eq!(lines.last().expect("end")["type"], "end");

    // The snapshot: the header, then every key with its versions.
    let snapshot_name = names(&snap).into_iter().find(|name| name.ends_with(".snap")).expect("a snapshot");
    let snapshot_revision: i64 = snapshot_name[..20].parse().expect("revision");
    let snapshot = snap.join(&snapshot_name);
    let (code, output) = inspect(&[snapshot.to_str().expect("path")]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("kind:                 full snapshot") && output.contains(&format!("revision:             {snapshot_revision}\n")), "{output}");
    assert!(output.contains("member ") && output.contains("auth disabled"), "{output}");
    for index in (0..PUTS).filter(|index| (*index as i64 + 2) <= snapshot_revision && *index != 3) {
        let revision = index + 2;
        let expected = format!("key \"alpha/{index:02}\" (1 version): mod {revision} create {revision} version 1 value {} bytes", value_of(index).len());
        assert!(output.contains(&expected), "{expected} in:\n{output}");
    }
    let (code, output) = inspect(&[snapshot.to_str().expect("path"), "--from", "7", "--to", "8"]);
    assert_eq!(code, 0, "{output}");
    let records = record_lines(&output);
    assert_eq!(records.len(), 2, "only the keys with versions in range, not the state at {snapshot_revision}:\n{output}");
    assert!(records[0].contains("\"alpha/05\"") && records[1].contains("\"alpha/06\""), "{output}");
    let (code, output) = inspect(&[snapshot.to_str().expect("path"), "--json", "--from", "7", "--to", "7"]);
    assert_eq!(code, 0, "{output}");
    let lines = json_lines(&output);
    assert_eq!((lines[0]["type"].as_str(), lines[0]["revision"].as_i64()), (Some("header"), Some(snapshot_revision)));
    let records: Vec<&Value> = lines.iter().filter(|line| line["type"] == "record").collect();
    assert_eq!(records.len(), 1, "{output}");
    assert_eq!((records[0]["what"].as_str(), records[0]["key"].as_str()), (Some("key"), Some("alpha/05")));
    assert_eq!(records[0]["versions"][0]["mod_revision"].as_i64(), Some(7));
    assert_eq!(lines.last().expect("end")["verified"], "ok");

    // The manifest.
    let (code, output) = inspect(&[data_dir.join("STRATA").to_str().expect("path")]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("kind:                 manifest") && output.contains("name:                 default"), "{output}");

    // Damage: what was read, then the error naming the damaged frame; exit 1.
    let mut bytes = std::fs::read(&first).expect("read");
    let second_frame = SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + u32::from_le_bytes(bytes[64..68].try_into().expect("4 bytes")) as usize;
    bytes[second_frame + FRAME_HEADER_BYTES + 3] ^= 0x55;
    std::fs::write(&first, &bytes).expect("write");
    let (code, output) = inspect(&[first.to_str().expect("path")]);
    assert_eq!(code, 1, "{output}");
    assert_eq!(record_lines(&output).len(), 1, "{output}");
    assert!(output.trim_end().ends_with(&format!("(sealed segment, {} bytes)", bytes.len())), "{output}");
    assert!(output.contains(&format!("error: at byte offset {second_frame}: frame CRC32C mismatch")), "{output}");
    let (code, output) = inspect(&[first.to_str().expect("path"), "--json"]);
    assert_eq!(code, 1, "{output}");
    let last = json_lines(&output).pop().expect("a line");
    assert_eq!((last["type"].as_str(), last["offset"].as_u64()), (Some("error"), Some(second_frame as u64)));

    // Not a Strata file.
    let (code, output) = inspect(&[data_dir.join("LOCK").to_str().expect("path")]);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("not a file strata inspect reads"), "{output}");
}
