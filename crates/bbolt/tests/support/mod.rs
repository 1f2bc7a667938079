//! What this crate's tests share: a seeded random source, temp directories that remove
//! themselves, and a real etcd (started on free loopback ports, killed by pid on drop, readiness
//! awaited by polling `etcdctl endpoint health`, never by a fixed sleep) driven with `etcdctl`.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use strata_bbolt::Bucket;

/// SplitMix64: a small seeded generator, so a failing case replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next_u64() as u8).collect()
    }
}

/// `count` distinct random keys of 1..=`key_bytes_max` bytes with random values of
/// 0..=`value_bytes_max` bytes, sorted: a bucket's entries.
pub fn random_entries(rng: &mut Rng, count: usize, key_bytes_max: usize, value_bytes_max: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut entries = BTreeMap::new();
    while entries.len() < count {
        let key_bytes = 1 + rng.below(key_bytes_max as u64) as usize;
        let value_bytes = rng.below(value_bytes_max as u64 + 1) as usize;
        let key = rng.bytes(key_bytes);
        entries.insert(key, rng.bytes(value_bytes));
    }
    entries.into_iter().collect()
}

/// A database of `buckets` random buckets with up to `keys_max` keys each.
pub fn random_database(rng: &mut Rng, buckets: usize, keys_max: usize) -> BTreeMap<Vec<u8>, Bucket> {
    let mut database = BTreeMap::new();
    while database.len() < buckets {
        let name_bytes = 1 + rng.below(20) as usize;
        let name = rng.bytes(name_bytes);
        let count = rng.below(keys_max as u64 + 1) as usize;
        let entries = random_entries(rng, count, 40, 300);
        database.insert(name, Bucket { sequence: rng.below(1000), entries });
    }
    database
}

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strata-bbolt-{label}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local addr").port()
}

/// `/usr/bin/<name>` (or `<name>` on PATH), if installed. Under CI (`CI=true`) a missing binary is
/// a failure; elsewhere the caller skips with the printed notice.
pub fn installed(name: &str) -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>()).map(|directory| directory.join(name));
    let found = std::iter::once(PathBuf::from("/usr/bin").join(name)).chain(on_path).find(|candidate| candidate.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{name} is not installed but CI=true: .ci/run installs Debian's etcd-server and etcd-client; these tests cannot be skipped in CI");
        }
        eprintln!("NOTICE: {name} not found in /usr/bin or on PATH; skipping this test (apt-get install etcd-server etcd-client to run it)");
    }
    found
}

/// Both etcd binaries, or `None` (after the notice) when either is missing.
pub fn etcd_binaries() -> Option<(PathBuf, PathBuf)> {
    Some((installed("etcd")?, installed("etcdctl")?))
}

/// A real etcd on fresh loopback ports, killed (SIGKILL, by pid) and reaped when dropped.
pub struct Etcd {
    child: Option<Child>,
    pub endpoint: String,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    etcdctl: PathBuf,
}

impl Etcd {
    /// Starts etcd with `data_dir` (new, or restored by `etcdctl snapshot restore` with the same
    /// name and peer URL) and waits until `etcdctl endpoint health` succeeds.
    pub fn start(binaries: &(PathBuf, PathBuf), data_dir: &Path, peer_port: u16) -> Etcd {
        let endpoint = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("create etcd log");
        let mut command = Command::new(&binaries.0);
        command
            .args(["--name", "bbolt"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .arg("--initial-cluster")
            .arg(format!("bbolt={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", binaries.0.display()));
        let mut etcd = Etcd { child: Some(child), endpoint, data_dir: data_dir.to_path_buf(), log_path, etcdctl: binaries.1.clone() };
        etcd.wait_until_healthy();
        etcd
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait().expect("try_wait") {
                panic!("etcd exited with {status} before serving; log:\n{}", self.log());
            }
            if self.etcdctl_output(&["endpoint", "health", "--command-timeout=2s"]).status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "etcd did not become healthy within 60 s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs `etcdctl --endpoints <this etcd> <args>` with the v3 API.
    pub fn etcdctl_output(&self, args: &[&str]) -> Output {
        Command::new(&self.etcdctl)
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run etcdctl")
    }

    /// [`Etcd::etcdctl_output`] that must succeed; returns stdout.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let output = self.etcdctl_output(args);
        assert!(output.status.success(), "etcdctl {args:?} failed: {}\n{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// SIGKILL by pid, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs an `etcdctl` that talks to no server (`snapshot status`, `snapshot restore`); returns the
/// whole output for the caller to judge.
pub fn etcdctl_offline(etcdctl: &Path, args: &[&str]) -> Output {
    Command::new(etcdctl).env("ETCDCTL_API", "3").args(args).stdin(Stdio::null()).output().expect("run etcdctl")
}

/// etcd's revision key: 8-byte big-endian main revision, `_`, 8-byte big-endian sub revision.
pub fn revision_key(main: i64, sub: i64) -> Vec<u8> {
    let mut key = main.to_be_bytes().to_vec();
    key.push(b'_');
    key.extend_from_slice(&sub.to_be_bytes());
    key
}

/// The main revision of an etcd revision key (17 bytes, or 18 with a tombstone's `t`).
pub fn main_revision(key: &[u8]) -> i64 {
    assert!(key.len() == 17 || (key.len() == 18 && key[17] == b't'), "not a revision key: {key:?}");
    assert_eq!(key[8], b'_', "not a revision key: {key:?}");
    i64::from_be_bytes(key[..8].try_into().expect("8 bytes"))
}

/// mvccpb.KeyValue, hand-encoded: key = 1, create_revision = 2, mod_revision = 3, version = 4,
/// value = 5, lease = 6 (zero fields omitted, as protobuf does).
pub fn encode_key_value(key: &[u8], create_revision: i64, mod_revision: i64, version: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes_field = |out: &mut Vec<u8>, tag: u8, bytes: &[u8]| {
        out.push(tag);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    };
    bytes_field(&mut out, 0x0A, key);
    for (tag, number) in [(0x10u8, create_revision), (0x18, mod_revision), (0x20, version)] {
        if number != 0 {
            out.push(tag);
            varint(&mut out, number as u64);
        }
    }
    if !value.is_empty() {
        bytes_field(&mut out, 0x2A, value);
    }
    out
}

fn varint(out: &mut Vec<u8>, mut number: u64) {
    while number >= 0x80 {
        out.push((number as u8) | 0x80);
        number >>= 7;
    }
    out.push(number as u8);
}

/// The `key` (field 1) and `value` (field 5) of an encoded mvccpb.KeyValue; other fields skipped.
pub fn decode_key_value(mut bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut key, mut value) = (Vec::new(), Vec::new());
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        match tag & 7 {
            0 => {
                let (_, rest) = read_varint(bytes);
                bytes = rest;
            }
            2 => {
                let (length, rest) = read_varint(bytes);
                let (field, rest) = rest.split_at(length as usize);
                match tag >> 3 {
                    1 => key = field.to_vec(),
                    5 => value = field.to_vec(),
                    _ => {}
                }
                bytes = rest;
            }
            wire => panic!("unexpected wire type {wire} in a KeyValue"),
        }
    }
    (key, value)
}

fn read_varint(bytes: &[u8]) -> (u64, &[u8]) {
    let mut number = 0u64;
    for (index, &byte) in bytes.iter().enumerate() {
        number |= u64::from(byte & 0x7F) << (7 * index);
        if byte < 0x80 {
            return (number, &bytes[index + 1..]);
        }
    }
    panic!("truncated varint");
}
