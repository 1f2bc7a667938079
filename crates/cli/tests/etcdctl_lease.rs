//! etcd's own command-line client, unchanged, drives leases on a Strata node: `lease grant`,
//! `put --lease`, `lease timetolive --keys`, `lease list`, `lease keep-alive --once` and
//! `lease revoke`, with etcdctl's exact output (the form etcd 3.4 answers with).

mod support;

use std::process::{Command, Output, Stdio};

use support::{start_strata, TempDir};


struct Etcdctl {
    binary: std::path::PathBuf,
    endpoint: String,
}

impl Etcdctl {
    fn run(&self, arguments: &[&str]) -> Output {
        Command::new(&self.binary)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .expect("run etcdctl")
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, arguments: &[&str]) -> String {
        let output = self.run(arguments);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "etcdctl {arguments:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    /// Runs and requires failure; returns stderr.
    fn fails(&self, arguments: &[&str]) -> String {
        let output = self.run(arguments);
        assert!(!output.status.success(), "etcdctl {arguments:?} succeeded:\n{}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).to_string()
    }
}

/// The lease id etcdctl printed in `lease <id> granted with TTL(<ttl>s)`.
fn granted_id(output: &str, ttl: u64) -> String {
    let id = output.strip_prefix("lease ").and_then(|rest| rest.strip_suffix(&format!(" granted with TTL({ttl}s)\n")));
    let id = id.unwrap_or_else(|| panic!("unexpected grant output: {output:?}"));
    assert!(id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()), "etcdctl prints ids as 16 hex digits: {id}");
    id.to_string()
}

#[test]
fn etcdctl_manages_leases_unchanged() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let temp = TempDir::new("etcdctl-lease");
    let server = start_strata(&temp.join("data"), &["--name", "ctl-lease"]);
    let ctl = Etcdctl { binary, endpoint: server.endpoint.clone() };

    // A TTL below etcd's minimum is raised to it; the lease may expire any moment, so it goes.
    let short = granted_id(&ctl.ok(&["lease", "grant", "1"]), 2);
    let revoked = ctl.run(&["lease", "revoke", &short]);
    assert!(revoked.status.success() || String::from_utf8_lossy(&revoked.stderr).contains("etcdserver: requested lease not found"));

    let id = granted_id(&ctl.ok(&["lease", "grant", "100"]), 100);
    let other = granted_id(&ctl.ok(&["lease", "grant", "200"]), 200);
    assert!(id != short && id != other && short != other);
    assert_eq!(ctl.ok(&["put", "--lease", &id, "b", "2"]), "OK\n");
    assert_eq!(ctl.ok(&["put", &format!("--lease={id}"), "a", "1"]), "OK\n");
    assert!(ctl.fails(&["put", "--lease=1234", "c", "3"]).contains("etcdserver: requested lease not found"));

    // Within the first second after the grant, etcd shows 99 s left; a slow machine may show less.
    let shown = ctl.ok(&["lease", "timetolive", "--keys", &id]);
    let remaining = shown
        .strip_prefix(&format!("lease {id} granted with TTL(100s), remaining("))
        .and_then(|rest| rest.strip_suffix("s), attached keys([a b])\n"))
        .unwrap_or_else(|| panic!("unexpected timetolive output: {shown:?}"));
    let remaining: u64 = remaining.parse().expect("remaining seconds");
    assert!((90..=99).contains(&remaining), "{shown}");
    assert!(ctl.ok(&["lease", "timetolive", &id]).ends_with(&format!("s)\n")));
    assert_eq!(ctl.ok(&["lease", "timetolive", "1234"]), "lease 0000000000001234 already expired\n");

    let listed = ctl.ok(&["lease", "list"]);
    let mut ids: Vec<&str> = listed.lines().skip(1).collect();
    ids.sort_unstable();
    let mut expected = vec![id.as_str(), other.as_str()];
    expected.sort_unstable();
    assert_eq!((listed.lines().next(), ids), (Some("found 2 leases"), expected), "{listed}");

    assert_eq!(ctl.ok(&["lease", "keep-alive", "--once", &id]), format!("lease {id} keepalived with TTL(100)\n"));
    let json = ctl.ok(&["-w", "json", "lease", "keep-alive", "--once", &id]);
    assert!(json.contains(r#""revision":3"#) && json.contains(r#""TTL":100"#), "{json}");
    assert!(ctl.fails(&["lease", "keep-alive", "--once", "1234"]).contains("etcdserver: requested lease not found"));

    assert_eq!(ctl.ok(&["lease", "revoke", &id]), format!("lease {id} revoked\n"));
    assert_eq!(ctl.ok(&["get", "", "--prefix"]), "");
    // Both keys went in one revision.
    assert!(ctl.ok(&["get", "a", "-w", "json"]).contains(r#""revision":4"#));
    assert!(ctl.fails(&["lease", "revoke", &id]).contains("etcdserver: requested lease not found"));
    assert_eq!(ctl.ok(&["lease", "list"]), format!("found 1 leases\n{other}\n"));
    assert_eq!(ctl.ok(&["lease", "revoke", &other]), format!("lease {other} revoked\n"));
    assert_eq!(ctl.ok(&["lease", "list"]), "found 0 leases\n");
}
