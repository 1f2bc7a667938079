//! etcd's own command-line client, unchanged, watching a Strata node: `etcdctl watch` with
//! `--rev`, `--prefix`, `--prev-kv`, and `--interactive` (watch, progress and an unsupported
//! cancel line on stdin). The same checks run against a real etcd when one is installed, so the
//! expected outputs are etcd's own.
//!
//! `etcdctl watch` runs until it is stopped: each run's output is awaited (with a deadline) until
//! it holds what is expected, then the process is killed by its pid.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{etcd_binary, start_etcd, start_strata, TempDir};

const OUTPUT_WAIT_MAX: Duration = Duration::from_secs(30);


/// A running `etcdctl watch`: its output lines arrive on a channel as it prints them.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    errors: mpsc::Receiver<String>,
    output: String,
    error_output: String,
}

impl Watching {
    fn start(binary: &std::path::Path, endpoint: &str, arguments: &[&str]) -> Watching {
        let mut child = Command::new(binary)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("watch")
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start etcdctl");
        let forward = |stream: Box<dyn std::io::Read + Send>| {
            let (sender, receiver) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
            receiver
        };
        let lines = forward(Box::new(child.stdout.take().expect("stdout")));
        let errors = forward(Box::new(child.stderr.take().expect("stderr")));
        Watching { child, lines, errors, output: String::new(), error_output: String::new() }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to etcdctl");
        stdin.flush().expect("flush");
    }

    /// Waits until stdout and stderr satisfy `done`; panics with both after the deadline.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + OUTPUT_WAIT_MAX;
        loop {
            while let Ok(line) = self.errors.try_recv() {
                self.error_output.push_str(&line);
                self.error_output.push('\n');
            }
            if done(&self.output, &self.error_output) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "etcdctl watch: {what} did not appear; stdout:\n{}\nstderr:\n{}", self.output, self.error_output);
            if let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                self.output.push_str(&line);
                self.output.push('\n');
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcdctl(binary: &std::path::Path, endpoint: &str, arguments: &[&str]) -> String {
    let output = Command::new(binary).env("ETCDCTL_API", "3").arg(format!("--endpoints={endpoint}")).args(arguments).output().expect("run etcdctl");
    assert!(output.status.success(), "etcdctl {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Runs every check against one server (started empty); returns the interactive watch, still open.
fn check(binary: &std::path::Path, endpoint: &str) -> Watching {
    for (key, value) in [("foo", "bar"), ("foo", "baz")] {
        etcdctl(binary, endpoint, &["put", key, value]);
    }
    etcdctl(binary, endpoint, &["del", "foo"]);
    etcdctl(binary, endpoint, &["put", "foo2", "x"]);
    let history = "PUT\nfoo\nbar\nPUT\nfoo\nbaz\nDELETE\nfoo\n\n";

    let mut single = Watching::start(binary, endpoint, &["--rev=2", "foo"]);
    single.wait_for("the history of foo", |output, _| output == history);

    let mut prefix = Watching::start(binary, endpoint, &["--prefix", "--rev=2", "foo"]);
    prefix.wait_for("the history of foo*", |output, _| output == format!("{history}PUT\nfoo2\nx\n"));

    let mut previous = Watching::start(binary, endpoint, &["--prev-kv", "--rev=3", "foo"]);
    previous.wait_for("events with previous values", |output, _| output == "PUT\nfoo\nbar\nfoo\nbaz\nDELETE\nfoo\nbaz\nfoo\n\n");

    // Live events: from the next revision, so the watch sees them however fast it starts.
    let next = format!("--rev={}", 6);
    let mut live = Watching::start(binary, endpoint, &["--prefix", "--prev-kv", &next, "live/"]);
    etcdctl(binary, endpoint, &["put", "live/a", "1"]);
    etcdctl(binary, endpoint, &["put", "live/a", "2"]);
    etcdctl(binary, endpoint, &["put", "other", "3"]);
    etcdctl(binary, endpoint, &["del", "live/", "--prefix"]);
    live.wait_for("live events", |output, _| output == "PUT\nlive/a\n1\nPUT\nlive/a\n1\nlive/a\n2\nDELETE\nlive/a\n2\nlive/a\n\n");

    let mut interactive = Watching::start(binary, endpoint, &["--interactive"]);
    interactive.type_line("watch --rev=2 foo");
    interactive.wait_for("the interactive watch's history", |output, _| output == history);
    interactive.type_line("progress");
    interactive.wait_for("a progress notification", |output, _| output.contains("progress notify: 9\n"));
    interactive.type_line("cancel 0");
    interactive.wait_for("etcdctl 3.4's answer to cancel", |_, errors| errors.contains("Invalid command cancel 0 (only support watch)"));
    interactive.type_line("watch --prefix live/");
    interactive.type_line("progress");
    interactive.wait_for("progress on both watchers", |output, _| output.matches("progress notify: 9\n").count() == 3);
    etcdctl(binary, endpoint, &["put", "live/b", "4"]);
    etcdctl(binary, endpoint, &["put", "foo", "5"]);
    interactive.wait_for("live events in interactive mode", |output, _| output.contains("PUT\nlive/b\n4\n") && output.contains("PUT\nfoo\n5\n"));
    interactive
}

#[test]
fn etcdctl_watch_works_unchanged() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let temp = TempDir::new("etcdctl-watch");
    let mut strata = start_strata(&temp.join("strata"), &["--name", "ctl"]);
    let _watching = check(&binary, &strata.endpoint);
    // Open watch streams must not hold up a clean stop.
    let status = strata.terminate();
    assert!(status.success(), "strata stopped with {status} while a watch was open; log:\n{}", strata.log());
    if let Some(etcd) = etcd_binary() {
        let etcd = start_etcd(&etcd, &temp.join("etcd"));
        check(&binary, &etcd.endpoint);
    }
}
