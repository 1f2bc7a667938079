//! Side by side: a fresh etcd and a fresh Strata, each on loopback with a fresh data directory
//! and its default durability (fsync on), the same workload against each, alternating, several
//! runs each; medians and Strata/etcd ratios, and each server's CPU time per request and
//! resident memory (from `/proc`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;

use crate::report::Report;
use crate::runner::LoadOptions;
use crate::workload::{self, Workload};

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub runs: usize,
    pub etcd_binary: PathBuf,
    pub strata_binary: PathBuf,
    /// Where the servers' data directories and logs go (removed afterwards).
    pub work_directory: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Etcd,
    Strata,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Etcd => "etcd",
            Server::Strata => "strata",
        }
    }
}

/// One run's numbers.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub server: Server,
    pub report: Report,
    /// Server CPU time (user + system) during the run, per request, in microseconds.
    pub cpu_micros_per_request: f64,
    /// Server resident memory after the run, in bytes.
    pub resident_bytes: u64,
}

struct RunningServer {
    child: Child,
    endpoint: String,
    directory: PathBuf,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| format!("no free port: {error}"))?;
    Ok(listener.local_addr().map_err(|error| error.to_string())?.port())
}

fn start(server: Server, options: &CompareOptions, run: usize) -> Result<RunningServer, String> {
    let directory = options.work_directory.join(format!("{}-{run}", server.name()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).map_err(|error| format!("{}: {error}", directory.display()))?;
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let endpoint = format!("http://127.0.0.1:{client_port}");
    let data = directory.join("data");
    let log = std::fs::File::create(directory.join("server.log")).map_err(|error| error.to_string())?;
    let mut command = match server {
        Server::Etcd => {
            let peer = format!("http://127.0.0.1:{peer_port}");
            let mut command = Command::new(&options.etcd_binary);
            command.args(["--name", "bench", "--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer]);
            command.arg("--initial-cluster").arg(format!("bench={peer}"));
            command
        }
        Server::Strata => Command::new(&options.strata_binary),
    };
    command.arg("--data-dir").arg(&data).args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint]);
    command.stdin(Stdio::null()).stdout(log.try_clone().map_err(|error| error.to_string())?).stderr(log);
    let child = command.spawn().map_err(|error| format!("cannot start {}: {error}", server.name()))?;
    Ok(RunningServer { child, endpoint, directory })
}

async fn wait_until_serving(server: &mut RunningServer) -> Result<(), String> {
    let deadline = Instant::now() + SERVER_START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("server exited with {status}; see {}", server.directory.join("server.log").display()));
        }
        if let Ok(channel) = tonic::transport::Channel::from_shared(server.endpoint.clone()).expect("valid endpoint").connect().await {
            if pb::maintenance_client::MaintenanceClient::new(channel).status(pb::StatusRequest {}).await.is_ok() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("server did not serve within {SERVER_START_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// User + system CPU time of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kilobytes| kilobytes * 1024)
}

/// Clock ticks per second; Linux reports CPU times in units of 1/100 s on every platform we run.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

pub async fn compare(options: &CompareOptions, load: &LoadOptions, workload: &Workload) -> Result<Vec<Measurement>, String> {
    let mut measurements = Vec::new();
    for run in 0..options.runs {
        for server in [Server::Etcd, Server::Strata] {
            let mut running = start(server, options, run)?;
            wait_until_serving(&mut running).await?;
            let pid = running.child.id();
            let before = cpu_ticks(pid).unwrap_or(0);
            let load = LoadOptions { endpoints: vec![running.endpoint.clone()], progress: false, ..load.clone() };
            let report = workload::run(&load, workload).await?;
            let cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(before) as f64 / CLOCK_TICKS_PER_SECOND;
            let measurement = Measurement {
                server,
                cpu_micros_per_request: cpu * 1e6 / report.requests.max(1) as f64,
                resident_bytes: resident_bytes(pid),
                report,
            };
            eprintln!(
                "run {} {:>6}: {:>10.1} req/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {}  cpu {:>7.1} µs/req  rss {:>6.1} MiB",
                run + 1,
                server.name(),
                measurement.report.requests_per_second(),
                measurement.report.percentile_ms(50.0),
                measurement.report.percentile_ms(99.0),
                measurement.report.errors,
                measurement.cpu_micros_per_request,
                measurement.resident_bytes as f64 / (1024.0 * 1024.0)
            );
            measurements.push(measurement);
        }
    }
    Ok(measurements)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The medians per server and the Strata/etcd ratios, as a table and one JSON line.
pub fn summarize(workload: &str, measurements: &[Measurement]) -> String {
    let pick = |server: Server, metric: &dyn Fn(&Measurement) -> f64| {
        median(measurements.iter().filter(|m| m.server == server).map(metric).collect())
    };
    let metrics: [(&str, &dyn Fn(&Measurement) -> f64); 5] = [
        ("qps", &|m| m.report.requests_per_second()),
        ("p50_ms", &|m| m.report.percentile_ms(50.0)),
        ("p99_ms", &|m| m.report.percentile_ms(99.0)),
        ("cpu_us_per_request", &|m| m.cpu_micros_per_request),
        ("rss_mib", &|m| m.resident_bytes as f64 / (1024.0 * 1024.0)),
    ];
    let mut table = format!("\n{workload}: medians of {} runs each\n{:<20} {:>12} {:>12} {:>14}\n", measurements.len() / 2, "metric", "etcd", "strata", "strata/etcd");
    let mut json = Vec::new();
    for (name, metric) in metrics {
        let (etcd, strata) = (pick(Server::Etcd, metric), pick(Server::Strata, metric));
        let ratio = strata / etcd;
        table.push_str(&format!("{name:<20} {etcd:>12.3} {strata:>12.3} {ratio:>13.2}x\n"));
        json.push(format!("\"{name}\":{{\"etcd\":{etcd:.4},\"strata\":{strata:.4},\"ratio\":{ratio:.4}}}"));
    }
    table.push_str(&format!("{{\"comparison\":\"{workload}\",{}}}\n", json.join(",")));
    table
}

/// A fresh directory for a comparison's servers under the system temp directory.
pub fn work_directory() -> PathBuf {
    std::env::temp_dir().join(format!("strata-bench-compare-{}", std::process::id()))
}

pub fn remove_work_directory(directory: &Path) {
    let _ = std::fs::remove_dir_all(directory);
}
