//! What the end-to-end tests share: temp directories that remove themselves, free loopback ports,
//! server processes (the real `strata` binary, and Debian's `etcd` for differential tests) that are
//! killed by pid when dropped, and gRPC clients. Readiness is awaited by polling the server's
//! Status RPC, never by a fixed sleep.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use tonic::transport::Channel;

/// A directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strata-test-{label}-{}-{unique}", std::process::id()));
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

/// A server process, killed (SIGKILL, by pid) and reaped when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    pub endpoint: String,
    pub log_path: PathBuf,
    pub data_dir: PathBuf,
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: the crash tests' power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn strata_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strata"))
}

/// Starts `strata` on a fresh loopback port with `data_dir`, and waits until it serves.
pub fn start_strata(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(strata_binary());
    command.arg("--data-dir").arg(data_dir).arg("--listen-client-urls").arg(&endpoint).arg("--advertise-client-urls").arg(&endpoint).args(extra_args);
    spawn_and_wait(command, endpoint, data_dir)
}

/// The `etcd` binary, if installed. Under CI (`CI=true`) a missing etcd is a failure; on a
/// developer's machine the caller skips with a printed notice.
pub fn etcd_binary() -> Option<PathBuf> {
    installed("etcd", "etcd-server")
}

/// `name` from PATH, or `None` with a printed notice; under CI a missing one is a failure, since
/// `.ci/run` installs Debian's `package`.
fn installed(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{name} is not installed but CI=true: .ci/run installs Debian's {package}; these tests cannot be skipped in CI");
        }
        eprintln!("NOTICE: {name} not found on PATH; skipping this test (apt-get install {package} to run it)");
    }
    found
}

/// Starts a real etcd on fresh loopback ports with `data_dir`, and waits until it serves.
pub fn start_etcd(binary: &Path, data_dir: &Path) -> ServerProcess {
    let (client_port, peer_port) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut command = Command::new(binary);
    command
        .arg("--name")
        .arg("diff")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen-client-urls")
        .arg(&endpoint)
        .arg("--advertise-client-urls")
        .arg(&endpoint)
        .arg("--listen-peer-urls")
        .arg(&peer)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer)
        .arg("--initial-cluster")
        .arg(format!("diff={peer}"));
    spawn_and_wait(command, endpoint, data_dir)
}

fn spawn_and_wait(mut command: Command, endpoint: String, data_dir: &Path) -> ServerProcess {
    let log_path = data_dir.with_extension("log");
    let log = std::fs::File::create(&log_path).expect("create server log");
    command.stdin(Stdio::null()).stdout(log.try_clone().expect("clone log handle")).stderr(log);
    let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {:?}: {error}", command.get_program()));
    let mut server = ServerProcess { child: Some(child), endpoint, log_path, data_dir: data_dir.to_path_buf() };
    wait_until_serving(&mut server);
    server
}

/// Polls the Status RPC until it answers; fails with the server's log if it exits or takes > 60 s.
fn wait_until_serving(server: &mut ServerProcess) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.as_mut().expect("running").try_wait().expect("try_wait") {
            panic!("server exited with {status} before serving; log:\n{}", server.log());
        }
        let ready = runtime.block_on(async {
            let Ok(channel) = Channel::from_shared(server.endpoint.clone()).expect("endpoint").connect().await else { return false };
            let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel);
            maintenance.status(pb::StatusRequest {}).await.is_ok()
        });
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "server did not serve within 60 s; log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// gRPC clients for one endpoint.
#[derive(Clone)]
pub struct Clients {
    pub kv: pb::kv_client::KvClient<Channel>,
    pub maintenance: pb::maintenance_client::MaintenanceClient<Channel>,
    pub cluster: pb::cluster_client::ClusterClient<Channel>,
}

pub async fn connect(endpoint: &str) -> Clients {
    let channel = Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect");
    Clients {
        kv: pb::kv_client::KvClient::new(channel.clone()).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX),
        maintenance: pb::maintenance_client::MaintenanceClient::new(channel.clone()),
        cluster: pb::cluster_client::ClusterClient::new(channel),
    }
}

/// [`start_etcd`] with extra flags (e.g. `--quota-backend-bytes=53248`) after the usual ones.
pub fn start_etcd_with_args(binary: &Path, data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
    let (client_port, peer_port) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut command = Command::new(binary);
    command
        .arg("--name")
        .arg("diff")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen-client-urls")
        .arg(&endpoint)
        .arg("--advertise-client-urls")
        .arg(&endpoint)
        .arg("--listen-peer-urls")
        .arg(&peer)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer)
        .arg("--initial-cluster")
        .arg(format!("diff={peer}"))
        .args(extra_args);
    spawn_and_wait(command, endpoint, data_dir)
}

/// A Lease client for one endpoint.
pub async fn connect_lease(endpoint: &str) -> pb::lease_client::LeaseClient<Channel> {
    let channel = Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect");
    pb::lease_client::LeaseClient::new(channel)
}

pub mod watch;

/// Starts `command`, a server whose clients use `endpoint` (any scheme, e.g. `https://`), and
/// waits until `ready()` says it serves; fails with the server's log if it exits first or takes
/// more than 60 s. For servers the plaintext Status probe of [`start_strata`] cannot reach.
pub fn start_server_when(mut command: Command, endpoint: String, data_dir: &Path, mut ready: impl FnMut() -> bool) -> ServerProcess {
    let log_path = data_dir.with_extension("log");
    let log = std::fs::File::create(&log_path).expect("create server log");
    command.stdin(Stdio::null()).stdout(log.try_clone().expect("clone log handle")).stderr(log);
    let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {:?}: {error}", command.get_program()));
    let mut server = ServerProcess { child: Some(child), endpoint, log_path, data_dir: data_dir.to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.as_mut().expect("running").try_wait().expect("try_wait") {
            panic!("server exited with {status} before serving; log:\n{}", server.log());
        }
        if ready() {
            return server;
        }
        assert!(Instant::now() < deadline, "server did not serve within 60 s; log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `etcdctl` binary, if installed (under CI a missing one is a failure; elsewhere the caller
/// skips with a printed notice).
pub fn etcdctl_binary() -> Option<PathBuf> {
    installed("etcdctl", "etcd-client")
}

/// The names of the entries of `directory`, sorted (none if it does not exist).
pub fn names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| entries.map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Takes a snapshot into the node's data directory now through Strata's Admin service (with
/// retention after it), and returns when it is durable: what a test awaits instead of watching
/// the directory for an automatic one.
pub async fn create_snapshot(endpoint: &str, full: bool) -> strata_etcd_api::pb::strata::CreateSnapshotResponse {
    let channel = Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect");
    let mut admin = strata_etcd_api::pb::strata::admin_client::AdminClient::new(channel);
    admin.create_snapshot(strata_etcd_api::pb::strata::CreateSnapshotRequest { full }).await.expect("create snapshot").into_inner()
}
