//! `strata bench restart`: the restart benchmark of snapshots (issue 5). It
//! 1. builds a Strata data directory through the node library: `--keys` keys of `--val-size`-byte
//!    values, then overwrites until `--writes` puts in all (`Node::write`, 1024 puts in flight so
//!    the writer commits batches of up to 1024 puts per fsync), compacting to the current revision
//!    every `--keys` writes as etcd's auto-compaction would and at the end;
//! 2. measures restarts of the `strata` binary with snapshots disabled (a full replay of the log),
//!    from spawn until it answers Status;
//! 3. measures the latency of puts at a steady `--latency-rate`: `--latency-rounds` windows of
//!    `--latency-seconds` without a snapshot, each followed by a full snapshot of the data taken
//!    under the same load (Admin.CreateSnapshot; the first also deletes the log segments it
//!    covers), and compares the p99 of the puts sent during the snapshots with the p99 without;
//! 4. measures restarts with the snapshot (load it, replay the tail);
//! 5. loads a real etcd through its gRPC API with the same keys and values (`--etcd-writes` puts,
//!    compacting likewise) and measures its restarts the same way.
//!
//! Nothing here is a test: it prints the numbers (README.md records them). The data directories
//! live under `--work-dir` (removed at the end unless `--keep`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use strata_etcd_api::pb::etcdserverpb as pb;
use strata_etcd_api::pb::strata as admin;
use tonic::transport::Channel;

/// Puts in flight while building through the library (the writer batches up to 1024).
const BUILD_IN_FLIGHT: u64 = 1024;
/// Puts in flight while loading etcd over gRPC, and the connections they share.
const ETCD_LOAD_IN_FLIGHT: u64 = 512;
const ETCD_LOAD_CONNECTIONS: usize = 8;
/// Clients the latency load is spread over.
const LATENCY_CLIENTS: usize = 32;
/// Load before the latency windows start (not measured).
const LATENCY_WARM_UP: Duration = Duration::from_secs(2);
/// Pause after each snapshot before the next window without one.
const LATENCY_SETTLE: Duration = Duration::from_secs(1);
/// How long a server may take to start serving before the benchmark gives up.
const SERVE_TIMEOUT: Duration = Duration::from_secs(600);
/// Polling interval while waiting for a server to serve.
const SERVE_POLL_INTERVAL: Duration = Duration::from_millis(5);

#[derive(Args, Debug, Clone)]
pub struct RestartArgs {
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Puts in all (the first `--keys` create the keys, the rest overwrite them).
    #[arg(long, default_value_t = 10_000_000)]
    pub writes: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Puts loaded into etcd over gRPC (0: skip etcd).
    #[arg(long, default_value_t = 10_000_000)]
    pub etcd_writes: u64,
    /// Restarts measured per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub restarts: usize,
    /// Puts per second during the latency measurements.
    #[arg(long, default_value_t = 2000.0)]
    pub latency_rate: f64,
    /// Length of each latency window without a snapshot.
    #[arg(long, default_value_t = 10.0)]
    pub latency_seconds: f64,
    /// Windows without a snapshot, each followed by a full snapshot under the same load.
    #[arg(long, default_value_t = 3)]
    pub latency_rounds: usize,
    /// Where the data directories go.
    #[arg(long, default_value = "/tmp/strata-bench-restart")]
    pub work_dir: PathBuf,
    /// Reuse a Strata data directory built by an earlier run (with --keep) instead of building.
    #[arg(long)]
    pub reuse: bool,
    /// Keep the data directories.
    #[arg(long)]
    pub keep: bool,
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGTERM and wait for a clean exit.
    fn stop(mut self) -> Result<(), String> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().map_err(|error| error.to_string())?;
        Ok(())
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    Ok(listener.local_addr().map_err(|error| error.to_string())?.port())
}

/// Spawns a server and returns it with the time until its Status RPC answered.
async fn spawn_and_time(mut command: Command, endpoint: String, log: &Path) -> Result<(Server, Duration), String> {
    let log_file = std::fs::File::create(log).map_err(|error| format!("{}: {error}", log.display()))?;
    command.stdin(Stdio::null()).stdout(log_file.try_clone().map_err(|error| error.to_string())?).stderr(log_file);
    let started = Instant::now();
    let child = command.spawn().map_err(|error| format!("cannot start {:?}: {error}", command.get_program()))?;
    let mut server = Server { child };
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{:?} exited with {status}; see {}", command.get_program(), log.display()));
        }
        if let Ok(channel) = Channel::from_shared(endpoint.clone()).map_err(|error| error.to_string())?.connect().await {
            if pb::maintenance_client::MaintenanceClient::new(channel).status(pb::StatusRequest {}).await.is_ok() {
                return Ok((server, started.elapsed()));
            }
        }
        if started.elapsed() > SERVE_TIMEOUT {
            let _ = server.child.kill();
            return Err(format!("{endpoint} did not serve within {SERVE_TIMEOUT:?}"));
        }
        tokio::time::sleep(SERVE_POLL_INTERVAL).await;
    }
}

fn strata_command(data_dir: &Path, endpoint: &str, extra: &[&str]) -> Result<Command, String> {
    let mut command = Command::new(std::env::current_exe().map_err(|error| format!("cannot find the strata binary: {error}"))?);
    command.arg("--data-dir").arg(data_dir).arg("--listen-client-urls").arg(endpoint).arg("--advertise-client-urls").arg(endpoint).args(extra);
    Ok(command)
}

fn etcd_command(binary: &str, data_dir: &Path, endpoint: &str) -> Result<Command, String> {
    let peer = format!("http://127.0.0.1:{}", free_port()?);
    let mut command = Command::new(binary);
    command
        .args(["--name", "bench", "--data-dir"])
        .arg(data_dir)
        .args(["--listen-client-urls", endpoint, "--advertise-client-urls", endpoint])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .arg("--initial-cluster")
        .arg(format!("bench={peer}"))
        .args(["--quota-backend-bytes", "8589934592"]);
    Ok(command)
}

fn key(index: u64) -> Vec<u8> {
    format!("key-{index:012}").into_bytes()
}

fn value(write: u64, size: usize) -> Vec<u8> {
    let mut value = format!("{write:016x}").into_bytes();
    value.resize(size, b'v');
    value
}

/// The key of the `write`-th put: every key once, then a fixed pseudo-random order.
fn key_of_write(write: u64, keys: u64) -> u64 {
    if write < keys {
        write
    } else {
        write.wrapping_mul(0x9e37_79b9_7f4a_7c15) % keys
    }
}

fn directory_bytes(directory: &Path) -> u64 {
    std::fs::read_dir(directory).map(|entries| entries.filter_map(|entry| entry.ok()?.metadata().ok()).map(|metadata| metadata.len()).sum()).unwrap_or(0)
}

fn progress(label: &str, done: u64, total: u64, started: Instant) {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
    eprint!("\r{label}: {done}/{total} ({rate:.0}/s)        ");
}

/// Builds the Strata data directory through the node library.
async fn build_strata(args: &RestartArgs, data_dir: &Path) -> Result<Duration, String> {
    let mut config = strata_node::NodeConfig::new("bench", data_dir);
    config.snapshot.entries = 0;
    let node = Arc::new(strata_node::Node::open(config).map_err(|error| error.to_string())?);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut compacted_at = 0;
    while next.load(Ordering::Relaxed) < args.writes {
        let round_end = (compacted_at + args.keys).min(args.writes);
        let mut tasks = Vec::new();
        for _ in 0..BUILD_IN_FLIGHT {
            let (node, next, value_size, keys) = (node.clone(), next.clone(), args.val_size, args.keys);
            tasks.push(tokio::spawn(async move {
                loop {
                    let write = next.fetch_add(1, Ordering::Relaxed);
                    if write >= round_end {
                        next.fetch_min(round_end, Ordering::Relaxed);
                        return Ok::<(), String>(());
                    }
                    let put = pb::PutRequest { key: key(key_of_write(write, keys)), value: value(write, value_size), ..Default::default() };
                    let put = strata_node::WriteRequest::Put(strata_etcd_api::convert::put_request(put));
                    node.write(put).await.map_err(|error| error.to_string())?;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|error| error.to_string())??;
        }
        compacted_at = round_end;
        progress("building (library)", round_end, args.writes, started);
        // As etcd's auto-compaction would: keep memory to the live keys.
        let revision = node.revision();
        node.write(strata_node::WriteRequest::Compact { revision, physical: round_end == args.writes }).await.map_err(|error| error.to_string())?;
    }
    eprintln!();
    node.shutdown().await;
    Ok(started.elapsed())
}

/// Loads etcd over gRPC with the same puts (and compactions every `--keys` puts).
async fn load_etcd(args: &RestartArgs, endpoint: &str) -> Result<Duration, String> {
    let mut channels = Vec::new();
    for _ in 0..ETCD_LOAD_CONNECTIONS {
        channels.push(Channel::from_shared(endpoint.to_string()).map_err(|error| error.to_string())?.connect().await.map_err(|error| error.to_string())?);
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut compacted_at = 0;
    while next.load(Ordering::Relaxed) < args.etcd_writes {
        let round_end = (compacted_at + args.keys).min(args.etcd_writes);
        let mut tasks = Vec::new();
        for client in 0..ETCD_LOAD_IN_FLIGHT {
            let mut kv = pb::kv_client::KvClient::new(channels[client as usize % channels.len()].clone());
            let (next, value_size, keys) = (next.clone(), args.val_size, args.keys);
            tasks.push(tokio::spawn(async move {
                loop {
                    let write = next.fetch_add(1, Ordering::Relaxed);
                    if write >= round_end {
                        next.fetch_min(round_end, Ordering::Relaxed);
                        return Ok::<(), String>(());
                    }
                    let put = pb::PutRequest { key: key(key_of_write(write, keys)), value: value(write, value_size), ..Default::default() };
                    kv.put(put).await.map_err(|status| status.message().to_string())?;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|error| error.to_string())??;
        }
        compacted_at = round_end;
        progress("loading etcd (gRPC)", round_end, args.etcd_writes, started);
        let mut kv = pb::kv_client::KvClient::new(channels[0].clone());
        let revision = kv.range(pb::RangeRequest { key: b"key-".to_vec(), ..Default::default() }).await.map_err(|status| status.message().to_string())?;
        let revision = revision.into_inner().header.map_or(0, |header| header.revision);
        kv.compact(pb::CompactionRequest { revision, physical: round_end == args.etcd_writes }).await.map_err(|status| status.message().to_string())?;
    }
    eprintln!();
    Ok(started.elapsed())
}

/// Median restart time of `command()`, `restarts` times (each stopped with SIGTERM).
async fn restarts(label: &str, count: usize, log: &Path, command: impl Fn(&str) -> Result<Command, String>) -> Result<Vec<Duration>, String> {
    let mut times = Vec::new();
    for round in 0..count.max(1) {
        let endpoint = format!("http://127.0.0.1:{}", free_port()?);
        let (server, elapsed) = spawn_and_time(command(&endpoint)?, endpoint, log).await?;
        eprintln!("{label}: restart {} served after {:.3} s", round + 1, elapsed.as_secs_f64());
        times.push(elapsed);
        server.stop()?;
    }
    times.sort();
    Ok(times)
}

/// Puts at `rate` from `LATENCY_CLIENTS` clients until `stop` says so; returns each put's send
/// time and latency.
async fn latency_load(endpoint: &str, args: &RestartArgs, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<Vec<(Instant, Duration)>, String> {
    let channel = Channel::from_shared(endpoint.to_string()).map_err(|error| error.to_string())?.connect().await.map_err(|error| error.to_string())?;
    let started = Instant::now();
    let ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..LATENCY_CLIENTS {
        let mut kv = pb::kv_client::KvClient::new(channel.clone());
        let (ticket, stop, rate, keys, value_size) = (ticket.clone(), stop.clone(), args.latency_rate, args.keys, args.val_size);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let number = ticket.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep_until((started + Duration::from_secs_f64(number as f64 / rate)).into()).await;
                let sent = Instant::now();
                let put = pb::PutRequest { key: key(key_of_write(number, keys)), value: value(number, value_size), ..Default::default() };
                kv.put(put).await.map_err(|status| status.message().to_string())?;
                samples.push((sent, sent.elapsed()));
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.map_err(|error| error.to_string())??);
    }
    Ok(samples)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    debug_assert!(sorted.windows(2).all(|pair| pair[0] <= pair[1]));
    sorted[((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn describe(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "{} puts, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        percentile(latencies, 0.999).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    )
}

fn seconds(times: &[Duration]) -> String {
    let all: Vec<String> = times.iter().map(|time| format!("{:.3}", time.as_secs_f64())).collect();
    format!("median {:.3} s (runs: {} s)", times[times.len() / 2].as_secs_f64(), all.join(", "))
}

pub fn run(etcd_binary: &str, args: &RestartArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| error.to_string())?;
    let result = runtime.block_on(measure(etcd_binary, args));
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.work_dir);
    }
    print!("{}", result?);
    Ok(())
}

async fn measure(etcd_binary: &str, args: &RestartArgs) -> Result<String, String> {
    if args.keys == 0 || args.writes < args.keys {
        return Err("--writes must be at least --keys, and --keys positive".into());
    }
    let strata_dir = args.work_dir.join("strata");
    let mut report = format!(
        "restart benchmark: {} keys of {}-byte values after {} puts (compacted every {} puts and at the end)\n",
        args.keys, args.val_size, args.writes, args.keys
    );
    if !args.reuse {
        let _ = std::fs::remove_dir_all(&args.work_dir);
        std::fs::create_dir_all(&args.work_dir).map_err(|error| error.to_string())?;
        let built = build_strata(args, &strata_dir).await?;
        report += &format!("strata: built through the node library in {:.1} s\n", built.as_secs_f64());
    }
    report += &format!("strata: log {:.0} MiB before the snapshot\n", directory_bytes(&strata_dir.join("log")) as f64 / 1048576.0);
    let log = args.work_dir.join("strata.log");

    let full_replay = restarts("strata, full replay", args.restarts, &log, |endpoint| strata_command(&strata_dir, endpoint, &["--snapshot-count=0"])).await?;
    report += &format!("strata restart, snapshots disabled (full replay of the log): {}\n", seconds(&full_replay));

    // Latency: one steady load; windows without a snapshot alternate with full snapshots taken
    // under it (automatic snapshots off, so none interferes). The first snapshot also deletes the
    // log segments it covers.
    let endpoint = format!("http://127.0.0.1:{}", free_port()?);
    let (server, _) = spawn_and_time(strata_command(&strata_dir, &endpoint, &["--snapshot-count=0"])?, endpoint.clone(), &log).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn({
        let (endpoint, args, stop) = (endpoint.clone(), args.clone(), stop.clone());
        async move { latency_load(&endpoint, &args, stop).await }
    });
    tokio::time::sleep(LATENCY_WARM_UP).await;
    let channel = Channel::from_shared(endpoint.clone()).map_err(|error| error.to_string())?.connect().await.map_err(|error| error.to_string())?;
    let (mut quiet_windows, mut snapshot_windows, mut snapshots) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.latency_rounds.max(1) {
        let quiet_started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(args.latency_seconds)).await;
        quiet_windows.push((quiet_started, Instant::now()));
        let snapshot_started = Instant::now();
        let created = admin::admin_client::AdminClient::new(channel.clone())
            .create_snapshot(admin::CreateSnapshotRequest { full: true })
            .await
            .map_err(|status| status.message().to_string())?
            .into_inner();
        snapshot_windows.push((snapshot_started, Instant::now()));
        snapshots.push(created);
        tokio::time::sleep(LATENCY_SETTLE).await;
    }
    stop.store(true, Ordering::Relaxed);
    let samples = load.await.map_err(|error| error.to_string())??;
    let within = |windows: &[(Instant, Instant)]| -> Vec<Duration> {
        samples.iter().filter(|(sent, _)| windows.iter().any(|(from, to)| sent >= from && sent <= to)).map(|(_, latency)| *latency).collect()
    };
    let (mut without, mut during) = (within(&quiet_windows), within(&snapshot_windows));
    for created in &snapshots {
        report += &format!(
            "strata snapshot: {} keys, {:.0} MiB, taken in {:.2} s under the load; {} log segments deleted\n",
            created.key_count,
            created.bytes as f64 / 1048576.0,
            created.duration_micros as f64 / 1e6,
            created.segments_removed
        );
    }
    report += &format!(
        "strata put latency at {} puts/s, no snapshot running ({} windows of {} s): {}\n",
        args.latency_rate,
        quiet_windows.len(),
        args.latency_seconds,
        describe(&mut without)
    );
    report += &format!("strata put latency at {} puts/s, during the {} snapshots: {}\n", args.latency_rate, snapshots.len(), describe(&mut during));
    report += &format!(
        "strata: p99 during a snapshot / p99 without: {:.2}\n",
        percentile(&during, 0.99).as_secs_f64() / percentile(&without, 0.99).as_secs_f64().max(1e-9)
    );
    let status =
        pb::maintenance_client::MaintenanceClient::new(channel).status(pb::StatusRequest {}).await.map_err(|status| status.message().to_string())?.into_inner();
    server.stop()?;
    let last_snapshot_index = snapshots.last().map_or(0, |created| created.log_index);
    report += &format!(
        "strata: log tail after the last snapshot: {} entries; log {:.0} MiB, snapshots {:.0} MiB\n",
        status.raft_index.saturating_sub(last_snapshot_index),
        directory_bytes(&strata_dir.join("log")) as f64 / 1048576.0,
        directory_bytes(&strata_dir.join("snap")) as f64 / 1048576.0
    );

    let with_snapshot =
        restarts("strata, with snapshot", args.restarts, &log, |endpoint| strata_command(&strata_dir, endpoint, &["--snapshot-count=0"])).await?;
    report += &format!("strata restart with the snapshot (load it, replay the tail): {}\n", seconds(&with_snapshot));
    let speedup = full_replay[full_replay.len() / 2].as_secs_f64() / with_snapshot[with_snapshot.len() / 2].as_secs_f64().max(1e-9);
    report += &format!("strata: restart with the snapshot is {speedup:.1}x faster than a full replay\n");

    if args.etcd_writes > 0 {
        let etcd_dir = args.work_dir.join("etcd");
        let etcd_log = args.work_dir.join("etcd.log");
        let endpoint = format!("http://127.0.0.1:{}", free_port()?);
        let (server, _) = spawn_and_time(etcd_command(etcd_binary, &etcd_dir, &endpoint)?, endpoint.clone(), &etcd_log).await?;
        let loaded = load_etcd(args, &endpoint).await?;
        server.stop()?;
        report += &format!(
            "etcd: loaded {} keys with {} puts over gRPC in {:.1} s (compacted every {} puts and at the end); data dir {:.0} MiB\n",
            args.keys,
            args.etcd_writes,
            loaded.as_secs_f64(),
            args.keys,
            (directory_bytes(&etcd_dir.join("member/snap")) + directory_bytes(&etcd_dir.join("member/wal"))) as f64 / 1048576.0
        );
        let etcd_restarts = restarts("etcd", args.restarts, &etcd_log, |endpoint| etcd_command(etcd_binary, &etcd_dir, endpoint)).await?;
        report += &format!("etcd restart: {}\n", seconds(&etcd_restarts));
    }
    Ok(report)
}
