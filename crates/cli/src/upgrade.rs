//! `strata upgrade check --data-dir DIR [--json]`: can this binary serve that data directory? A
//! read-only check of every file (`strata_node::check`): the manifest, every segment and every
//! snapshot decoded and every checksum verified, one line per file (kind, format version, records,
//! range, ok / recoverable / the first error with its byte offset), then the verdict.
//!
//! Exit codes: 0 only when this binary can serve the directory, 1 when it cannot, 2 for a usage
//! error or a directory that cannot be read. `--json` prints the report as one JSON object on
//! stdout (its shape is documented in `strata_node::check`). A progress bar by bytes verified goes
//! to stderr when it is a terminal and the directory holds more than
//! [`PROGRESS_THRESHOLD_BYTES`]; never to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strata_node::check::{check_data_directory, CheckReport, FileRange, FileReport, FileStatus};

/// Directories smaller than this are checked without a progress bar.
pub const PROGRESS_THRESHOLD_BYTES: u64 = 64 * 1024 * 1024;
const MEBIBYTE: u64 = 1024 * 1024;

#[derive(Args, Debug, Clone)]
pub struct UpgradeArgs {
    #[command(subcommand)]
    pub action: UpgradeAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum UpgradeAction {
    /// Check, read-only, whether this binary can serve a data directory: every file's format version and checksums.
    Check {
        /// The data directory to check (nothing in it is modified).
        #[arg(long)]
        data_dir: PathBuf,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: UpgradeArgs) -> ExitCode {
    match args.action {
        UpgradeAction::Check { data_dir, json } => check(&data_dir, json),
    }
}

fn check(data_directory: &std::path::Path, json: bool) -> ExitCode {
    let file_system = strata_io::RealFileSystem::new();
    let mut progress = crate::snapshot::Progress::new("checking", "MiB");
    let report = check_data_directory(&file_system, data_directory, &mut |done, total| {
        if total > PROGRESS_THRESHOLD_BYTES {
            progress.update(done / MEBIBYTE, total / MEBIBYTE);
        }
    });
    progress.finish();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("strata: error: {error}");
            return ExitCode::from(2);
        }
    };
    let text = if json { format!("{}\n", report.to_json()) } else { report_text(&report) };
    // A reader that went away (`| head`) changes nothing about the verdict or the exit code.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if report.servable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One line per file, then the verdict.
fn report_text(report: &CheckReport) -> String {
    let mut text = format!("data directory {}\n", report.data_directory.display());
    for file in &report.files {
        text.push_str(&file_line(file));
        text.push('\n');
    }
    text.push_str(&format!("verdict: {}\n", report.verdict));
    text
}

/// `status  kind  version  path  bytes, records, range[: reason]`.
fn file_line(file: &FileReport) -> String {
    let version = file.format_version.map_or("-".to_string(), |version| format!("v{version}"));
    let mut details = vec![format!("{} bytes", file.bytes)];
    if let Some(records) = file.records {
        details.push(format!("{records} records"));
    }
    if let Some(range) = &file.range {
        details.push(range_text(range));
    }
    let mut line = format!("{:<11} {:<20} {:<4} {}  {}", file.status.name(), file.kind.name(), version, file.path.display(), details.join(", "));
    match &file.status {
        FileStatus::Ok => {}
        FileStatus::Recoverable { reason } => line.push_str(&format!(": {reason}")),
        FileStatus::Error { offset: Some(offset), reason } => line.push_str(&format!(": at byte offset {offset}: {reason}")),
        FileStatus::Error { offset: None, reason } => line.push_str(&format!(": {reason}")),
    }
    line
}

fn range_text(range: &FileRange) -> String {
    match range {
        FileRange::Manifest { cluster_id, member_id, name } => format!("member {member_id:x} ({name:?}) of cluster {cluster_id:x}"),
        FileRange::Segment { first_index, last_index: None, .. } => format!("no records (first index {first_index})"),
        FileRange::Segment { first_index, last_index: Some(last_index), first_revision, last_revision } => {
            let revisions = match (first_revision, last_revision) {
                (Some(first), Some(last)) => format!(", revisions {first}..{last}"),
                _ => String::new(),
            };
            format!("indexes {first_index}..{last_index}{revisions}")
        }
        FileRange::Snapshot { revision, log_index, base_revision, base_log_index, key_count } => {
            let base = match (base_revision, base_log_index) {
                (Some(revision), Some(log_index)) => format!(", on the snapshot at revision {revision} (log index {log_index})"),
                _ => String::new(),
            };
            format!("revision {revision}, log index {log_index}, {key_count} keys{base}")
        }
    }
}
