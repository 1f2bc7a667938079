//! `strata snapshot save | restore | inspect`: the snapshot tools, in Strata's own snapshot format
//! (`docs/formats/snapshot.md`).
//!
//! - `save FILE --endpoints HOST:PORT`: streams a full snapshot from a running node through
//!   Strata's Admin service (writes go on meanwhile) into `FILE.part`, fsyncs it, verifies it and
//!   renames it to `FILE`, as etcdctl's `snapshot save` does with its `.part` file.
//! - `restore FILE --data-dir DIR`: a new data directory holding the snapshot's data, as a new
//!   member (new member and cluster ids, itself the only member), as etcdctl's `snapshot restore`.
//!   An etcd snapshot file (a bbolt file, told by its first bytes) is imported as
//!   `strata migrate from-etcd` imports it.
//! - `inspect FILE`: verifies the whole file and prints its header, revision, timeframe, key count
//!   and size.
//!
//! Long operations draw a progress bar on stderr when it is a terminal. Invariant: `save` never
//! leaves a partial snapshot under `FILE`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use strata_etcd_api::pb::strata as admin;

/// How often a progress bar is redrawn, at most.
const PROGRESS_REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// The width of a progress bar, in characters.
const PROGRESS_BAR_CHARACTERS: usize = 30;
/// The bytes read to tell an etcd snapshot (bbolt) from a Strata one.
const SNIFF_BYTES: usize = 64;

#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub action: SnapshotAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum SnapshotAction {
    /// Save a full snapshot of a running node to FILE (online: writes go on meanwhile).
    Save {
        file: PathBuf,
        /// The node to snapshot (one endpoint).
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoints: String,
    },
    /// Restore a full snapshot FILE into a new data directory, as a new member.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        member: crate::migrate::NewMemberArgs,
    },
    /// Verify a snapshot FILE and print its header, revision, timeframe, key count and size.
    Inspect { file: PathBuf },
}

pub fn run(args: SnapshotArgs) -> Result<(), String> {
    match args.action {
        SnapshotAction::Save { file, endpoints } => save(&file, &endpoints),
        SnapshotAction::Restore { file, member } => {
            let (data_directory, config) = member.config();
            if is_etcd_snapshot(&file)? {
                let (summary, report) = crate::migrate::import_etcd(&file, &config, false)?;
                crate::migrate::print_import(&file, &data_directory, &summary, &report);
                return Ok(());
            }
            let mut progress = Progress::new("restoring", "MiB");
            let report = strata_node::restore_snapshot(&file, &config, &mut |done, total| progress.update(mebibytes(done), mebibytes(total)))?;
            progress.finish();
            println!(
                "Restored snapshot {} at revision {} ({} keys) into {} as member {:x} of cluster {:x}",
                file.display(),
                report.revision,
                report.key_count,
                data_directory,
                report.member_id,
                report.cluster_id
            );
            Ok(())
        }
        SnapshotAction::Inspect { file } => inspect(&file),
    }
}

/// Whether `file` starts like a bbolt file: an etcd snapshot rather than a Strata one.
fn is_etcd_snapshot(file: &Path) -> Result<bool, String> {
    use std::io::Read;
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(file)
        .and_then(|opened| opened.take(SNIFF_BYTES as u64).read_to_end(&mut prefix))
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    Ok(strata_etcd_api::etcd_db::looks_like_etcd_db(&prefix))
}

fn mebibytes(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

fn save(file: &Path, endpoints: &str) -> Result<(), String> {
    let endpoints: Vec<&str> = endpoints.split(',').map(str::trim).filter(|endpoint| !endpoint.is_empty()).collect();
    let [endpoint] = endpoints.as_slice() else {
        return Err(format!("snapshot must be requested from one node, not {} (--endpoints)", endpoints.len()));
    };
    let url = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    let partial = PathBuf::from(format!("{}.part", file.display()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| error.to_string())?;
    let (revision, bytes) = runtime
        .block_on(async {
            let channel = tonic::transport::Channel::from_shared(url.clone())
                .map_err(|error| format!("bad endpoint {url}: {error}"))?
                .connect()
                .await
                .map_err(|error| format!("cannot connect to {url}: {error}"))?;
            let mut client = admin::admin_client::AdminClient::new(channel);
            let mut stream = client.snapshot(admin::SnapshotRequest {}).await.map_err(|status| status.message().to_string())?.into_inner();
            let mut output = std::fs::File::create(&partial).map_err(|error| format!("cannot create {}: {error}", partial.display()))?;
            let mut progress = Progress::new("saving", "keys");
            let (mut revision, mut bytes) = (0, 0u64);
            let received = async {
                while let Some(chunk) = stream.message().await.map_err(|status| status.message().to_string())? {
                    output.write_all(&chunk.blob).map_err(|error| format!("cannot write {}: {error}", partial.display()))?;
                    bytes += chunk.blob.len() as u64;
                    revision = chunk.revision;
                    progress.update(chunk.keys_done, chunk.keys_total);
                }
                output.sync_all().map_err(|error| format!("cannot fsync {}: {error}", partial.display()))
            };
            let result = received.await;
            progress.finish();
            result.map(|()| (revision, bytes))
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
    let file_system = strata_io::RealFileSystem::new();
    if let Err(error) = strata_snapshot::verify(&file_system, &partial, &mut |_, _| {}) {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("the snapshot received does not verify: {error}"));
    }
    std::fs::rename(&partial, file).map_err(|error| format!("cannot rename {} to {}: {error}", partial.display(), file.display()))?;
    if let Some(parent) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(parent).and_then(|directory| directory.sync_all()).map_err(|error| format!("cannot fsync {}: {error}", parent.display()))?;
    }
    println!("Snapshot saved at {} (revision {revision}, {bytes} bytes)", file.display());
    Ok(())
}

fn inspect(file: &Path) -> Result<(), String> {
    let file_system = strata_io::RealFileSystem::new();
    let mut progress = Progress::new("verifying", "MiB");
    let statistics = strata_snapshot::verify(&file_system, file, &mut |done, total| progress.update(mebibytes(done), mebibytes(total)));
    progress.finish();
    let statistics = statistics.map_err(|error| error.to_string())?;
    let header = &statistics.header;
    let writer = header.writer_version;
    let kind = match header.base {
        None => "full".to_string(),
        Some(base) => format!("incremental, on the snapshot at revision {} (log index {})", base.revision, base.log_index),
    };
    let timeframe: Vec<String> = header.timeframe.iter().map(|(origin, sequence)| format!("{origin:x}:{sequence}")).collect();
    let lines = [
        ("file", file.display().to_string()),
        ("format version", header.format_version.to_string()),
        ("writer version", format!("{}.{}.{}", writer / 1_000_000, writer / 1_000 % 1_000, writer % 1_000)),
        ("kind", kind),
        ("member id", format!("{:x}", header.node_id)),
        ("cluster id", format!("{:x}", header.cluster_id)),
        ("revision", header.revision.to_string()),
        ("compacted revision", header.compacted_revision.to_string()),
        ("log index", header.log_index.to_string()),
        ("hlc", format!("{} ms + {}", header.hlc >> 16, header.hlc & 0xffff)),
        ("timeframe", if timeframe.is_empty() { "(empty)".to_string() } else { timeframe.join(", ") }),
        ("created (unix ms)", header.created_unix_millis.to_string()),
        ("keys", statistics.key_count.to_string()),
        ("versions", statistics.version_count.to_string()),
        ("removed keys", statistics.removed_key_count.to_string()),
        ("leases", statistics.lease_count.to_string()),
        ("members", statistics.member_count.to_string()),
        ("alarms", statistics.alarm_count.to_string()),
        ("auth records", statistics.auth_record_count.to_string()),
        ("size", format!("{} bytes", statistics.bytes)),
        ("verified", "ok (every record's and the file's CRC32C)".to_string()),
    ];
    for (name, value) in lines {
        println!("{:<20}{value}", format!("{name}:"));
    }
    Ok(())
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub(crate) struct Progress {
    label: &'static str,
    unit: &'static str,
    enabled: bool,
    drawn: Option<Instant>,
}

impl Progress {
    pub(crate) fn new(label: &'static str, unit: &'static str) -> Progress {
        Progress { label, unit, enabled: std::io::stderr().is_terminal(), drawn: None }
    }

    pub(crate) fn update(&mut self, done: u64, total: u64) {
        if !self.enabled || self.drawn.is_some_and(|drawn| drawn.elapsed() < PROGRESS_REDRAW_INTERVAL) {
            return;
        }
        self.drawn = Some(Instant::now());
        let fraction = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
        let filled = (fraction * PROGRESS_BAR_CHARACTERS as f64) as usize;
        eprint!(
            "\r{} [{}{}] {:>3.0}% {done}/{total} {}",
            self.label,
            "=".repeat(filled),
            " ".repeat(PROGRESS_BAR_CHARACTERS - filled),
            fraction * 100.0,
            self.unit
        );
    }

    pub(crate) fn finish(&mut self) {
        if self.enabled && self.drawn.is_some() {
            eprintln!();
        }
    }
}
