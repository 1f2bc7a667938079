//! etcd's own command-line client, unchanged, against a Strata node for maintenance and
//! membership: `endpoint status`, `endpoint hashkv`, `endpoint health`, `defrag`, `alarm list`,
//! `alarm disarm`, `move-leader`, `member list`, `member add --learner`, `member promote` and
//! `member remove`, with a small `--quota-backend-bytes` so that NOSPACE is raised, and restarts
//! in between: the alarm and the learner must survive them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{start_strata, ServerProcess, TempDir};

/// The quota the node runs with: etcd raises NOSPACE after 11 puts of 1000 bytes with it.
const QUOTA_FLAG: &str = "--quota-backend-bytes=53248";
/// Puts of 1000 bytes after which a node that never raised NOSPACE fails the test.
const QUOTA_PUTS_MAX: usize = 50;
/// The hash etcd answers for an empty key space: CRC-32C of its bucket name `key`.
const EMPTY_HASH: &str = "1084519789";


struct Etcdctl {
    binary: PathBuf,
    endpoint: String,
}

impl Etcdctl {
    fn run(&self, arguments: &[&str]) -> Output {
        let mut command = Command::new(&self.binary);
        command.env("ETCDCTL_API", "3").arg(format!("--endpoints={}", self.endpoint)).args(arguments);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.output().expect("run etcdctl")
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

/// The number after `"name":` in etcdctl's JSON output (ids are above `i64::MAX`).
fn json_number(json: &str, name: &str) -> i128 {
    let pattern = format!("\"{name}\":");
    let start = json.find(&pattern).unwrap_or_else(|| panic!("no {name} in {json}")) + pattern.len();
    let digits: String = json[start..].chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

fn start(data_dir: &Path) -> ServerProcess {
    start_strata(data_dir, &["--name", "ctl", QUOTA_FLAG])
}

fn restart(server: &mut ServerProcess, data_dir: &Path) -> (ServerProcess, String) {
    assert!(server.terminate().success(), "clean stop; log:\n{}", server.log());
    let server = start(data_dir);
    let endpoint = server.endpoint.clone();
    (server, endpoint)
}

#[test]
fn etcdctl_maintenance_works_unchanged() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let temp = TempDir::new("etcdctl-maintenance");
    let data_dir = temp.join("data");
    let mut server = start(&data_dir);
    let mut ctl = Etcdctl { binary, endpoint: server.endpoint.clone() };

    // An empty node: etcd's empty sizes and hash.
    let status = ctl.ok(&["endpoint", "status", "-w", "json"]);
    assert_eq!((json_number(&status, "dbSize"), json_number(&status, "dbSizeInUse")), (20480, 16384), "{status}");
    let member_id = json_number(&status, "member_id") as u64;
    let member_hex = format!("{member_id:x}");
    let table = ctl.ok(&["endpoint", "status"]);
    assert!(table.starts_with(&format!("{}, {member_hex}, 3.5.", ctl.endpoint)) && table.contains(", 20 kB, true, false, 2, "), "{table}");
    assert_eq!(ctl.ok(&["endpoint", "hashkv"]), format!("{}, {EMPTY_HASH}\n", ctl.endpoint));
    assert!(ctl.run(&["endpoint", "health"]).status.success());

    // Hashes at revisions, as etcd computes them (the numbers a real etcd 3.4 answered).
    for value in ["1", "2", "3", "4", "5"] {
        assert_eq!(ctl.ok(&["put", "a", value]), "OK\n");
    }
    assert_eq!(ctl.ok(&["compaction", "3"]), "compacted revision 3\n");
    assert_eq!(ctl.ok(&["endpoint", "hashkv", "--rev=4"]), format!("{}, 1619834972\n", ctl.endpoint));
    let hash = ctl.ok(&["endpoint", "hashkv", "-w", "json"]);
    assert_eq!((json_number(&hash, "hash"), json_number(&hash, "compact_revision"), json_number(&hash, "revision")), (3720613134, 3, 6), "{hash}");
    assert!(ctl.fails(&["endpoint", "hashkv", "--rev=3"]).contains("etcdserver: mvcc: required revision has been compacted"));
    assert!(ctl.fails(&["endpoint", "hashkv", "--rev=7"]).contains("etcdserver: mvcc: required revision is a future revision"));

    // Fill the quota: NOSPACE is raised, listed, shown in status, and refuses puts.
    let value = "v".repeat(1000);
    let mut puts = 0;
    loop {
        let output = ctl.run(&["put", &format!("fill/{puts:03}"), &value]);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("etcdserver: mvcc: database space exceeded"), "{stderr}");
            break;
        }
        puts += 1;
        assert!(puts < QUOTA_PUTS_MAX, "no NOSPACE after {puts} puts");
    }
    println!("NOSPACE after {puts} puts of 1000 bytes");
    let alarm = format!("memberID:{member_id} alarm:NOSPACE \n");
    assert_eq!(ctl.ok(&["alarm", "list"]), alarm);
    assert!(ctl.ok(&["endpoint", "status"]).contains("memberID:") && ctl.ok(&["endpoint", "status"]).contains("alarm:NOSPACE"));
    assert!(ctl.fails(&["put", "small", "x"]).contains("etcdserver: mvcc: database space exceeded"));
    assert_eq!(ctl.ok(&["get", "fill/000", "--print-value-only"]), format!("{value}\n"), "reads still work");
    assert_eq!(ctl.ok(&["del", "fill/001"]), "1\n", "deletes still work");

    // The alarm survives a restart.
    let (restarted, endpoint) = restart(&mut server, &data_dir);
    server = restarted;
    ctl.endpoint = endpoint;
    assert_eq!(ctl.ok(&["alarm", "list"]), alarm);
    assert!(ctl.fails(&["put", "small", "x"]).contains("etcdserver: mvcc: database space exceeded"));

    // Compaction and defragment free space; only disarming lets writes in again.
    let before = ctl.ok(&["endpoint", "status", "-w", "json"]);
    let revision = json_number(&before, "revision");
    assert_eq!(ctl.ok(&["compaction", "--physical", &revision.to_string()]), format!("compacted revision {revision}\n"));
    assert_eq!(ctl.ok(&["defrag"]), format!("Finished defragmenting etcd member[{}]\n", ctl.endpoint));
    let after = ctl.ok(&["endpoint", "status", "-w", "json"]);
    assert!(json_number(&after, "dbSize") < json_number(&before, "dbSize"), "defragment shrinks the size:\n{before}\n{after}");
    assert!(ctl.fails(&["put", "small", "x"]).contains("etcdserver: mvcc: database space exceeded"));
    assert_eq!(ctl.ok(&["alarm", "disarm"]), alarm);
    assert_eq!(ctl.ok(&["alarm", "list"]), "");
    assert_eq!(ctl.ok(&["put", "small", "x"]), "OK\n");
    assert!(!ctl.ok(&["endpoint", "status"]).contains("alarm:"));

    // The leader moves to itself only.
    assert_eq!(ctl.ok(&["move-leader", &member_hex]), format!("Leadership transferred from {member_hex} to {member_hex}\n"));
    assert!(ctl.fails(&["move-leader", "1234"]).contains("etcdserver: bad leader transferee"));

    // Membership: a learner can be added, listed, not promoted, and removed; a voter is refused.
    let members = ctl.ok(&["member", "list"]);
    assert_eq!(members, format!("{member_hex}, started, ctl, http://localhost:2380, {}, false\n", ctl.endpoint));
    let added = ctl.ok(&["member", "add", "learner", "--learner", "--peer-urls=http://127.0.0.1:24001"]);
    // etcdctl prints the id with Go's `%16x`: padded with spaces to 16 characters.
    let learner_hex = added
        .strip_prefix("Member ")
        .and_then(|rest| rest.trim_start().split_once(' '))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no member id in {added}"));
    assert!(added.contains(" added to cluster ") && added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), "{added}");
    let learner_line = format!("{learner_hex}, unstarted, , http://127.0.0.1:24001, , true\n");
    assert!(ctl.ok(&["member", "list"]).contains(&learner_line));
    let refused = ctl.fails(&["member", "add", "voter", "--peer-urls=http://127.0.0.1:24002"]);
    assert!(refused.contains("etcdserver: re-configuration failed due to not enough started members"), "{refused}");
    let refused = ctl.fails(&["member", "add", "second", "--learner", "--peer-urls=http://127.0.0.1:24003"]);
    assert!(refused.contains("etcdserver: too many learner members in cluster"), "{refused}");
    let refused = ctl.fails(&["member", "promote", &learner_hex]);
    assert!(refused.contains("etcdserver: can only promote a learner member which is in sync with leader"), "{refused}");

    // The learner survives a restart.
    let (restarted, endpoint) = restart(&mut server, &data_dir);
    server = restarted;
    ctl.endpoint = endpoint;
    assert!(ctl.ok(&["member", "list"]).contains(&learner_line));

    let removed = ctl.ok(&["member", "remove", &learner_hex]);
    assert!(removed.starts_with(&format!("Member {learner_hex:>16} removed from cluster ")), "{removed}");
    assert_eq!(ctl.ok(&["member", "list"]).lines().count(), 1);
    assert!(ctl.fails(&["member", "remove", &learner_hex]).contains("etcdserver: member not found"));
    assert!(ctl.fails(&["member", "remove", &member_hex]).contains("etcdserver: re-configuration failed due to not enough started members"));
    assert!(ctl.run(&["endpoint", "health"]).status.success());
    drop(server);
}
