//! etcd's own command-line client, unchanged, against a Strata node: put, get, del, txn,
//! compaction, endpoint status, endpoint health and member list.

mod support;

use std::process::{Command, Output, Stdio};

use support::{start_strata, TempDir};


struct Etcdctl {
    binary: std::path::PathBuf,
    endpoint: String,
}

impl Etcdctl {
    fn run(&self, arguments: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(&self.binary);
        command.env("ETCDCTL_API", "3").arg(format!("--endpoints={}", self.endpoint)).args(arguments);
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start etcdctl");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("etcdctl output")
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, arguments: &[&str]) -> String {
        self.ok_with_input(arguments, None)
    }

    fn ok_with_input(&self, arguments: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(arguments, stdin);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "etcdctl {arguments:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }
}

#[test]
fn etcdctl_works_unchanged() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let temp = TempDir::new("etcdctl");
    let server = start_strata(&temp.join("data"), &["--name", "ctl"]);
    let ctl = Etcdctl { binary, endpoint: server.endpoint.clone() };
    // etcdctl 3.4's per-endpoint commands send the endpoint, scheme included, as HTTP/2
    // :authority; the server must take both forms (regression: PROTOCOL_ERROR on endpoint status).
    let host_port = Etcdctl { binary: ctl.binary.clone(), endpoint: server.endpoint.trim_start_matches("http://").to_string() };

    assert_eq!(ctl.ok(&["put", "foo", "bar"]), "OK\n");
    assert_eq!(ctl.ok(&["put", "foo2", "baz"]), "OK\n");
    assert_eq!(ctl.ok(&["get", "foo"]), "foo\nbar\n");
    assert_eq!(ctl.ok(&["get", "foo", "--prefix", "--keys-only"]), "foo\n\nfoo2\n\n");
    assert_eq!(ctl.ok(&["get", "foo", "--print-value-only"]), "bar\n");
    let json = ctl.ok(&["get", "foo", "-w", "json"]);
    assert!(json.contains(r#""revision":3"#) && json.contains(r#""create_revision":2"#), "{json}");

    let txn = "value(\"foo\") = \"bar\"\n\nput foo updated\nget foo2\n\nput foo failed\n\n";
    assert_eq!(ctl.ok_with_input(&["txn"], Some(txn)), "SUCCESS\n\nOK\n\nfoo2\nbaz\n");
    assert_eq!(ctl.ok(&["get", "foo", "--print-value-only"]), "updated\n");
    let txn = "version(\"foo\") = \"1\"\n\nput foo never\n\nput foo3 else\n\n";
    assert_eq!(ctl.ok_with_input(&["txn"], Some(txn)), "FAILURE\n\nOK\n");

    assert_eq!(ctl.ok(&["del", "foo2"]), "1\n");
    assert_eq!(ctl.ok(&["del", "nothing"]), "0\n");
    assert_eq!(ctl.ok(&["get", "foo", "--rev=2", "--print-value-only"]), "bar\n");

    assert_eq!(ctl.ok(&["compaction", "3"]), "compacted revision 3\n");
    let compacted = ctl.run(&["get", "foo", "--rev=2"], None);
    assert!(!compacted.status.success());
    assert!(String::from_utf8_lossy(&compacted.stderr).contains("etcdserver: mvcc: required revision has been compacted"));
    assert_eq!(ctl.ok(&["compaction", "--physical", "4"]), "compacted revision 4\n");

    let status = ctl.ok(&["endpoint", "status", "-w", "json"]);
    assert_eq!(host_port.ok(&["endpoint", "status", "-w", "json"]).replace(&host_port.endpoint, &ctl.endpoint), status);
    assert!(status.contains(r#""version":"3.5."#) && status.contains(r#""revision":6"#), "{status}");
    let health = ctl.run(&["endpoint", "health"], None);
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    let members = ctl.ok(&["member", "list"]);
    assert!(members.contains("started, ctl, http://localhost:2380, ") && members.contains(&server.endpoint), "{members}");
}
