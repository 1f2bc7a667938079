//! The binary end to end: starts, serves KV through gRPC, answers /health and /version over
//! HTTP/1.1 on the client URL, logs the lines operators wait for, refuses a second process on the
//! same data directory, and stops cleanly on SIGTERM keeping every acknowledged write.

mod support;

use std::io::{Read, Write};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, start_strata, TempDir};

fn http_get(endpoint: &str, path: &str) -> String {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn serves_kv_health_and_version_and_restarts_with_the_data() {
    let temp = TempDir::new("smoke");
    let data_dir = temp.join("data");
    let mut server = start_strata(&data_dir, &["--name", "smoke"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        let put = clients.kv.put(pb::PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(put.header.unwrap().revision, 2);
        let members = clients.cluster.member_list(pb::MemberListRequest::default()).await.unwrap().into_inner();
        assert_eq!(members.members.len(), 1);
        assert_eq!(members.members[0].name, "smoke");
        assert_eq!(members.members[0].client_ur_ls, vec![server.endpoint.clone()]);
        let status = clients.maintenance.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.leader, status.header.unwrap().member_id);
        assert!(status.version.starts_with("3.5."), "{}", status.version);
    });

    let health = http_get(&server.endpoint, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with(r#"{"health":"true","reason":""}"#), "{health}");
    let version = http_get(&server.endpoint, "/version");
    assert!(version.contains(r#""etcdserver":"3.5."#) && version.contains(r#""etcdcluster":"3.5.0""#), "{version}");

    let log = server.log();
    assert!(log.contains("enabled capabilities for version"), "{log}");
    assert!(log.contains("published"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in the log:\n{log}");

    // A second process on the same data directory is refused with a clear message.
    let second = std::process::Command::new(support::strata_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen-client-urls")
        .arg(format!("http://127.0.0.1:{}", support::free_port()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("LOCK") || stderr.contains("another process"), "{stderr}");

    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}; log:\n{}", server.log());

    let server = start_strata(&data_dir, &["--name", "smoke"]);
    runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        let range = clients.kv.range(pb::RangeRequest { key: b"k".to_vec(), ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(range.kvs.len(), 1);
        assert_eq!(range.kvs[0].value, b"v");
        assert_eq!(range.header.unwrap().revision, 2);
    });
}

#[test]
fn unknown_flags_fail_naming_the_flag() {
    let output = std::process::Command::new(support::strata_binary()).arg("--no-such-flag=1").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-such-flag"));
}
