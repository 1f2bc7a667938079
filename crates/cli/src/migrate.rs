//! `strata migrate from-etcd | to-etcd`: moving data between etcd and Strata, both ways, through
//! etcd's snapshot format (a bbolt file in etcd's bucket layout; the mapping is
//! `docs/formats/etcd-snapshot.md`, the code `strata_etcd_api::etcd_db`).
//!
//! - `from-etcd SOURCE --data-dir DIR`: SOURCE is an etcd snapshot file (`etcdctl snapshot save`,
//!   or Strata's own Maintenance.Snapshot) or an etcd 3.4/3.5 data directory (its
//!   `member/snap/db`; its WAL `member/wal/*.wal` must hold no change the database misses, see
//!   `etcd_db::wal`). Builds a new Strata data directory, as a new member, with every key and its
//!   history (create/mod revisions, versions, leases), the compaction, the leases and the auth
//!   state; prints a summary. `strata snapshot restore` takes an etcd snapshot file the same way.
//! - `to-etcd --data-dir DIR --out FILE`: writes an etcd snapshot file of a stopped node's data
//!   directory (its `LOCK` refuses a running server), the same bytes the online stream gives for
//!   the same state (`etcdctl snapshot save` against a running node), which `etcdctl snapshot
//!   restore` turns into an etcd data directory.
//!
//! Invariants: a refused import writes nothing (the input is read and checked whole first, the
//! directory is built under a temporary name next to the target and renamed into place at the
//! end); an export never leaves a partial FILE (`FILE.part`, fsync, rename).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use strata_etcd_api::etcd_db::{self, ImportSummary};
use strata_node::{NodeConfig, RestoreReport};

use crate::snapshot::Progress;

/// Where an etcd data directory keeps its backend database, and its WAL.
const ETCD_DB_PATH: [&str; 3] = ["member", "snap", "db"];
const ETCD_WAL_PATH: [&str; 2] = ["member", "wal"];
/// How many entries the WAL refusal names.
const UNAPPLIED_SHOWN_MAX: usize = 3;

#[derive(Args, Debug, Clone)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: MigrateAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum MigrateAction {
    /// Build a new Strata data directory from an etcd snapshot file or an etcd data directory.
    FromEtcd {
        /// An etcd snapshot file (etcdctl snapshot save) or an etcd 3.4/3.5 data directory.
        source: PathBuf,
        #[command(flatten)]
        member: NewMemberArgs,
        /// Import an etcd data directory's database even if its WAL holds changes it misses.
        #[arg(long)]
        skip_wal_check: bool,
    },
    /// Write an etcd snapshot file of a stopped Strata node's data directory.
    ToEtcd {
        /// The Strata data directory (no server may be running on it).
        #[arg(long)]
        data_dir: PathBuf,
        /// The etcd snapshot file to write.
        #[arg(long)]
        out: PathBuf,
        /// The node's name, as it runs.
        #[arg(long, default_value = "default")]
        name: String,
        /// The node's peer URLs as it runs (comma-separated): they are written in etcd's members bucket.
        #[arg(long, default_value = "http://localhost:2380")]
        initial_advertise_peer_urls: String,
    },
}

pub fn run(args: MigrateArgs) -> Result<(), String> {
    match args.action {
        MigrateAction::FromEtcd { source, member, skip_wal_check } => {
            let (data_directory, config) = member.config();
            let (summary, report) = import_etcd(&source, &config, skip_wal_check)?;
            print_import(&source, &data_directory, &summary, &report);
            Ok(())
        }
        MigrateAction::ToEtcd { data_dir, out, name, initial_advertise_peer_urls } => export_etcd(&data_dir, &out, &name, &initial_advertise_peer_urls),
    }
}

/// Who the member of a new data directory is (`strata snapshot restore`, `strata migrate from-etcd`).
#[derive(Args, Debug, Clone)]
pub struct NewMemberArgs {
    /// The data directory to create (default: NAME.strata); it must not exist or be empty.
    #[arg(long, default_value = "")]
    pub data_dir: String,
    /// The new member's name.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The new cluster's token, used to derive its ids.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// The new member's peer URLs (comma-separated).
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
}

impl NewMemberArgs {
    /// The data directory to create and the new member's configuration.
    pub fn config(self) -> (String, NodeConfig) {
        let data_directory = if self.data_dir.is_empty() { format!("{}.strata", self.name) } else { self.data_dir };
        let config = restore_config(&self.name, Path::new(&data_directory), self.initial_cluster_token, &self.initial_advertise_peer_urls);
        (data_directory, config)
    }
}

/// The configuration of a new member restored from a snapshot (as `snapshot restore` takes it).
pub(crate) fn restore_config(name: &str, data_directory: &Path, initial_cluster_token: String, peer_urls: &str) -> NodeConfig {
    let mut config = NodeConfig::new(name, data_directory);
    config.initial_cluster_token = initial_cluster_token;
    config.advertise_peer_urls = peer_urls.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_string).collect();
    config
}

/// Prints an import's summary.
pub(crate) fn print_import(source: &Path, data_directory: &str, summary: &ImportSummary, report: &RestoreReport) {
    println!(
        "Imported etcd data {} at revision {} (compacted at {}) into {} as member {:x} of cluster {:x}",
        source.display(),
        summary.revision,
        summary.compacted_revision,
        data_directory,
        report.member_id,
        report.cluster_id
    );
    println!(
        "keys: {} ({} live), revisions: {}, leases: {}, users: {}, roles: {}, auth: {}",
        summary.keys,
        summary.live_keys,
        summary.versions,
        summary.leases,
        summary.users,
        summary.roles,
        if summary.auth_enabled { "enabled" } else { "disabled" }
    );
    if summary.leases_with_remaining_ttl > 0 {
        println!("note: {} leases had a checkpointed remaining TTL; they get their full TTL when the node starts", summary.leases_with_remaining_ttl);
    }
    if summary.keys_with_missing_lease > 0 {
        println!("note: {} keys name a lease the snapshot does not hold; they are kept, attached to none (as etcd keeps them)", summary.keys_with_missing_lease);
    }
}

/// Imports an etcd snapshot file or data directory into the new data directory of `config`
/// (see the module documentation); nothing is written unless the whole input maps.
pub(crate) fn import_etcd(source: &Path, config: &NodeConfig, skip_wal_check: bool) -> Result<(ImportSummary, RestoreReport), String> {
    let target = config.data_directory.clone();
    if target.exists() && std::fs::read_dir(&target).map_err(|error| format!("{}: {error}", target.display()))?.next().is_some() {
        return Err(format!("data-dir {:?} exists and is not empty; nothing was written", target.display().to_string()));
    }
    let is_directory = source.is_dir();
    let database_path = if is_directory { ETCD_DB_PATH.iter().fold(source.to_path_buf(), |path, part| path.join(part)) } else { source.to_path_buf() };
    if is_directory && !database_path.is_file() {
        return Err(format!("{} is a directory without member/snap/db: not an etcd data directory; nothing was written", source.display()));
    }
    let bytes = std::fs::read(&database_path).map_err(|error| format!("cannot read {}: {error}", database_path.display()))?;
    let refused = |reason: String| format!("{}: {reason}; nothing was written", database_path.display());
    let state = etcd_db::decode_etcd_db(&bytes).map_err(|error| refused(error.to_string()))?;
    drop(bytes);
    if is_directory && !skip_wal_check {
        check_wal(source, &state)?;
    }
    let summary = state.summary.clone();
    let report = restore_beside(&target, config, &mut state.into_source())?;
    Ok((summary, report))
}

/// Refuses an etcd data directory whose WAL holds changes its database misses.
fn check_wal(source: &Path, state: &etcd_db::EtcdState) -> Result<(), String> {
    let wal_directory = ETCD_WAL_PATH.iter().fold(source.to_path_buf(), |path, part| path.join(part));
    let Ok(entries) = std::fs::read_dir(&wal_directory) else { return Ok(()) };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.extension().is_some_and(|ext| ext == "wal")).collect();
    files.sort();
    let mut scan = etcd_db::wal::WalScan::new(state.consistent_index);
    for file in &files {
        let bytes = std::fs::read(file).map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        scan.read_file(&bytes);
    }
    let unapplied = etcd_db::wal::unapplied(&scan, state);
    if unapplied.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = unapplied.iter().take(UNAPPLIED_SHOWN_MAX).map(|entry| format!("index {}: {}", entry.index, entry.change)).collect();
    Err(format!(
        "{}: etcd's WAL holds {} {} after the database's consistent index {} whose changes the database does not have ({}{}): \
         etcd stopped before applying them (was it killed?) and would replay them at start-up. Start that etcd once and stop it cleanly, \
         or save a snapshot from it (etcdctl snapshot save) and import that file; --skip-wal-check imports the database as it is. Nothing was written",
        wal_directory.display(),
        unapplied.len(),
        if unapplied.len() == 1 { "entry" } else { "entries" },
        state.consistent_index,
        shown.join("; "),
        if unapplied.len() > UNAPPLIED_SHOWN_MAX { "; …" } else { "" }
    ))
}

/// Restores `source` into a temporary directory next to `target`, then renames it into place, so
/// that a failure leaves nothing at `target` (and removes the temporary directory).
fn restore_beside(target: &Path, config: &NodeConfig, source: &mut dyn strata_node::RestoreSource) -> Result<RestoreReport, String> {
    let name = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "data".to_string());
    let temporary = target.with_file_name(format!(".{name}.importing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temporary);
    let building = NodeConfig { data_directory: temporary.clone(), ..config.clone() };
    let mut progress = Progress::new("importing", "records");
    let restored = strata_node::restore_from(source, &building, &mut |done, total| progress.update(done, total));
    progress.finish();
    let placed = restored.and_then(|report| {
        if target.exists() {
            // Checked empty above: a directory made ready for the import.
            std::fs::remove_dir(target).map_err(|error| format!("cannot replace the empty {}: {error}", target.display()))?;
        }
        std::fs::rename(&temporary, target).map_err(|error| format!("cannot rename {} to {}: {error}", temporary.display(), target.display()))?;
        sync_parent(target)?;
        Ok(RestoreReport { path: target.join(report.path.strip_prefix(&temporary).unwrap_or(&report.path)), ..report })
    });
    if placed.is_err() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    placed
}

fn sync_parent(path: &Path) -> Result<(), String> {
    match path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(parent) => std::fs::File::open(parent).and_then(|directory| directory.sync_all()).map_err(|error| format!("cannot fsync {}: {error}", parent.display())),
        None => Ok(()),
    }
}

/// `to-etcd`: opens the node on `data_dir` (its `LOCK` refuses a running server), builds etcd's
/// database with the code the online stream uses, and writes it with its SHA-256 to `out`.
fn export_etcd(data_dir: &Path, out: &Path, name: &str, peer_urls: &str) -> Result<(), String> {
    if !data_dir.join(strata_node::MANIFEST_FILE_NAME).is_file() {
        return Err(format!("{} is not a Strata data directory (it has no {})", data_dir.display(), strata_node::MANIFEST_FILE_NAME));
    }
    let mut config = restore_config(name, data_dir, "etcd-cluster".to_string(), peer_urls);
    // Read only: no automatic snapshot into the directory while it is open.
    config.snapshot.entries = 0;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| error.to_string())?;
    let node = strata_node::Node::open(config).map_err(|error| format!("cannot open {}: {error}", data_dir.display()))?;
    let revision = node.revision();
    let database = etcd_db::etcd_db_of(&node, &|| false);
    runtime.block_on(node.shutdown());
    let mut bytes = database?;
    let digest = etcd_db::sha256(&bytes);
    bytes.extend_from_slice(&digest);
    let partial = PathBuf::from(format!("{}.part", out.display()));
    let written = std::fs::File::create(&partial)
        .and_then(|mut file| {
            use std::io::Write;
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .map_err(|error| format!("cannot write {}: {error}", partial.display()))
        .and_then(|()| std::fs::rename(&partial, out).map_err(|error| format!("cannot rename {} to {}: {error}", partial.display(), out.display())));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    sync_parent(out)?;
    println!("Snapshot saved at {} (revision {revision}, {} bytes)", out.display(), bytes.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::flags::{Cli, Command};

    fn action(arguments: &[&str]) -> Result<MigrateAction, clap::Error> {
        Cli::try_parse_from(arguments).map(|cli| match cli.command {
            Some(Command::Migrate(migrate)) => migrate.action,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn migrate_takes_its_subcommands_and_flags() {
        let MigrateAction::FromEtcd { source, member: NewMemberArgs { data_dir, name, .. }, skip_wal_check } =
            action(&["strata", "migrate", "from-etcd", "backup.db", "--data-dir", "imported", "--skip-wal-check"]).expect("from-etcd")
        else {
            panic!("from-etcd")
        };
        assert_eq!((source, data_dir.as_str(), name.as_str(), skip_wal_check), (PathBuf::from("backup.db"), "imported", "default", true));
        let MigrateAction::ToEtcd { data_dir, out, .. } = action(&["strata", "migrate", "to-etcd", "--data-dir", "node", "--out", "etcd.db"]).expect("to-etcd")
        else {
            panic!("to-etcd")
        };
        assert_eq!((data_dir, out), (PathBuf::from("node"), PathBuf::from("etcd.db")));
        assert!(action(&["strata", "migrate", "to-etcd", "--data-dir", "node"]).is_err(), "--out is required");
        assert!(action(&["strata", "migrate", "from-etcd"]).is_err(), "the source is required");
    }
}
