//! `strata inspect FILE [--from REV] [--to REV] [--json]`: an operator's dump of one data
//! directory file, told by its magic: a segment (its header, then one line per record: index,
//! revision, HLC as `millis.counter`, origin, and what the log entry does), a full or incremental
//! snapshot (its header, then the key records with each version, leases, members, alarms, auth),
//! or the manifest. `--from`/`--to` keep the records whose revision is in `[from, to]` (of a key
//! record, the versions in range; a snapshot's other records are the state at its revision). Keys
//! are printed escaped (`\xNN` for bytes that are not printable ASCII). `--json` prints one JSON
//! object per line: `{"type":"header",…}`, `{"type":"record",…}` and a last `{"type":"end",…}` or
//! `{"type":"error","offset":…,"reason":…}`.
//!
//! Read-only. Exit codes: 0 for an intact file; 1 when it is damaged (what was read is printed,
//! then the error with its byte offset); 2 for a usage error or a file that cannot be read or is
//! no Strata file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use strata_node::check::{decode_auth_record, escape_bytes, quoted, scan_segment, segment_header, Json, SegmentRecord};
use strata_node::{LogChangeKind, LogEntry, Manifest};
use strata_snapshot::{Record, SnapshotReader};
use strata_types::formats::FileKind;

/// Changes of one log entry listed on its line, at most (JSON lists them all).
const CHANGES_LISTED_MAX: usize = 20;

#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// A segment (log/*.seg), snapshot (snap/*.snap, snap/*.isnap) or manifest (STRATA) file; its kind is told by its magic.
    pub file: PathBuf,
    /// Only records at or after this revision (of a key record: its versions at or after it).
    #[arg(long)]
    pub from: Option<i64>,
    /// Only records at or before this revision (of a key record: its versions at or before it).
    #[arg(long)]
    pub to: Option<i64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where the dump goes: text lines or JSON lines, on stdout. A reader that goes away (`| head`)
/// ends the output quietly.
struct Output {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    closed: bool,
}

impl Output {
    fn new(json: bool) -> Output {
        Output { json, out: std::io::BufWriter::new(std::io::stdout()), closed: false }
    }

    fn line(&mut self, line: &str) {
        if !self.closed && writeln!(self.out, "{line}").is_err() {
            self.closed = true;
        }
    }

    /// A block of `name: value` lines, or one JSON object of `kind`.
    fn block(&mut self, kind: &'static str, fields: Vec<(&'static str, Json, String)>) {
        if self.json {
            let mut object = vec![("type", Json::from(kind))];
            object.extend(fields.into_iter().map(|(name, value, _)| (name, value)));
            self.line(&Json::Object(object).to_string());
        } else {
            for (name, _, text) in fields {
                self.line(&format!("{:<22}{text}", format!("{}:", name.replace('_', " "))));
            }
        }
    }

    /// One record: a JSON object of `type` record, or one text line.
    fn record(&mut self, fields: Vec<(&'static str, Json)>, text: String) {
        if self.json {
            let mut object = vec![("type", Json::from("record"))];
            object.extend(fields);
            self.line(&Json::Object(object).to_string());
        } else {
            self.line(&format!("  {text}"));
        }
    }

    /// Text only: a line that introduces the records.
    fn heading(&mut self, text: &str) {
        if !self.json {
            self.line(text);
        }
    }

    /// The damage found: printed after what was read.
    fn error(&mut self, offset: Option<u64>, reason: &str) -> ExitCode {
        if self.json {
            self.line(&Json::Object(vec![("type", Json::from("error")), ("offset", Json::from(offset)), ("reason", Json::from(reason))]).to_string());
        } else {
            match offset {
                Some(offset) => self.line(&format!("error: at byte offset {offset}: {reason}")),
                None => self.line(&format!("error: {reason}")),
            }
        }
        ExitCode::FAILURE
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// The revisions kept: `[from, to]`.
#[derive(Clone, Copy)]
struct Filter {
    from: i64,
    to: i64,
}

impl Filter {
    fn keeps(self, revision: i64) -> bool {
        (self.from..=self.to).contains(&revision)
    }

    /// `n`, or `n (revisions a..b)` under a filter.
    fn shown(self, shown: u64) -> String {
        match (self.from, self.to) {
            (i64::MIN, i64::MAX) => shown.to_string(),
            (from, i64::MAX) => format!("{shown} (revisions {from} on)"),
            (i64::MIN, to) => format!("{shown} (revisions up to {to})"),
            (from, to) => format!("{shown} (revisions {from}..{to})"),
        }
    }
}

pub fn run(args: InspectArgs) -> ExitCode {
    let mut output = Output::new(args.json);
    let filter = Filter { from: args.from.unwrap_or(i64::MIN), to: args.to.unwrap_or(i64::MAX) };
    if filter.from > filter.to {
        eprintln!("strata: error: --from {} is after --to {}: no revision is in that range", filter.from, filter.to);
        return ExitCode::from(2);
    }
    let kind = match kind_by_magic(&args.file) {
        Ok(kind) => kind,
        Err(error) => {
            eprintln!("strata: error: {error}");
            return ExitCode::from(2);
        }
    };
    match kind {
        FileKind::Manifest => inspect_manifest(&args.file, &mut output),
        FileKind::Segment => inspect_segment(&args.file, filter, &mut output),
        FileKind::Snapshot | FileKind::IncrementalSnapshot => inspect_snapshot(&args.file, filter, &mut output),
    }
}

/// The file's kind by its first 8 bytes.
fn kind_by_magic(file: &Path) -> Result<FileKind, String> {
    let mut magic = Vec::with_capacity(8);
    std::fs::File::open(file)
        .and_then(|opened| opened.take(8).read_to_end(&mut magic))
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    [FileKind::Manifest, FileKind::Segment, FileKind::Snapshot]
        .into_iter()
        .find(|kind| magic.as_slice() == strata_node::directory::magic_of(*kind))
        .ok_or_else(|| {
            format!(
                "{} is not a file strata inspect reads: it starts with {} where a manifest, segment or snapshot starts with \
                 \"STRATAMF\", \"STRATSEG\" or \"STRATSNP\"",
                file.display(),
                quoted(&magic)
            )
        })
}

fn read_whole(file: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(file).map_err(|error| {
        eprintln!("strata: error: cannot read {}: {error}", file.display());
        ExitCode::from(2)
    })
}

fn text(value: impl ToString) -> String {
    value.to_string()
}

/// A writer version (`major * 1_000_000 + minor * 1_000 + patch`) as `major.minor.patch`.
fn release(writer_version: u32) -> String {
    format!("{}.{}.{}", writer_version / 1_000_000, writer_version / 1_000 % 1_000, writer_version % 1_000)
}

/// An HLC stamp as `millis.counter`.
fn hlc_text(hlc: u64) -> String {
    format!("{}.{}", hlc >> 16, hlc & 0xffff)
}

fn hex(value: u64) -> (Json, String) {
    (Json::from(format!("{value:x}")), format!("{value:x}"))
}

// ------------------------------------------------------------------------------ manifest

fn inspect_manifest(file: &Path, output: &mut Output) -> ExitCode {
    let bytes = match read_whole(file) {
        Ok(bytes) => bytes,
        Err(code) => return code,
    };
    let version = bytes.get(8..12).map(|field| u32::from_le_bytes([field[0], field[1], field[2], field[3]]));
    let manifest = Manifest::decode_file(file, &bytes);
    let mut fields = vec![
        ("file", Json::from(file.display().to_string()), file.display().to_string()),
        ("kind", Json::from("manifest"), "manifest".to_string()),
        ("format_version", Json::from(version), version.map_or("-".to_string(), text)),
    ];
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(error) => {
            output.block("header", fields);
            return output.error(None, &error);
        }
    };
    let (cluster_json, cluster_text) = hex(manifest.cluster_id);
    let (member_json, member_text) = hex(manifest.node_id);
    fields.extend([
        ("format_family", Json::from(manifest.format_family.as_str()), manifest.format_family.clone()),
        ("cluster_id", cluster_json, cluster_text),
        ("member_id", member_json, member_text),
        ("name", Json::from(manifest.name.as_str()), manifest.name.clone()),
        ("cluster_version", Json::from(manifest.cluster_version.as_str()), manifest.cluster_version.clone()),
        ("writer_version", Json::from(manifest.writer_version.as_str()), manifest.writer_version.clone()),
        ("verified", Json::from("ok"), "ok (magic, format version and the payload's CRC32C)".to_string()),
    ]);
    output.block("header", fields);
    ExitCode::SUCCESS
}

// ------------------------------------------------------------------------------ segments

fn inspect_segment(file: &Path, filter: Filter, output: &mut Output) -> ExitCode {
    let bytes = match read_whole(file) {
        Ok(bytes) => bytes,
        Err(code) => return code,
    };
    let sealed = is_sealed(file);
    let mut fields = vec![
        ("file", Json::from(file.display().to_string()), file.display().to_string()),
        (
            "kind",
            Json::from("segment"),
            if sealed { "segment (sealed: a later segment follows it)".to_string() } else { "segment (the last of its log: a torn tail is allowed)".to_string() },
        ),
        ("sealed", Json::Bool(sealed), text(sealed)),
    ];
    let header = match segment_header(file, &bytes) {
        Ok(header) => header,
        Err((offset, reason)) => {
            output.block("header", fields);
            return output.error(offset, &reason);
        }
    };
    let (member_json, member_text) = hex(header.node_id);
    let (cluster_json, cluster_text) = hex(header.cluster_id);
    fields.extend([
        ("format_version", Json::from(header.format_version), text(header.format_version)),
        ("writer_version", Json::from(release(header.writer_version)), release(header.writer_version)),
        ("member_id", member_json, member_text),
        (
            "cluster_id",
            cluster_json,
            if header.format_version >= 2 { cluster_text } else { "(none: format version 1 does not record it)".to_string() },
        ),
        ("first_index", Json::from(header.first_index), text(header.first_index)),
        ("first_revision", Json::from(header.first_revision), text(header.first_revision)),
        ("term", Json::from(header.term), text(header.term)),
    ]);
    output.block("header", fields);
    output.heading("records:");
    let mut shown = 0u64;
    let scan = scan_segment(file, &bytes, !sealed, &mut |record| {
        if filter.keeps(record.entry.revision) {
            shown += 1;
            let (fields, line) = segment_record(record);
            output.record(fields, line);
        }
    });
    let range = match (scan.records, scan.last_index, scan.first_revision, scan.last_revision) {
        (0, ..) => "none".to_string(),
        (count, Some(last), Some(first_revision), Some(last_revision)) => {
            format!("{count} (indexes {}..{last}, revisions {first_revision}..{last_revision})", header.first_index)
        }
        (count, ..) => count.to_string(),
    };
    if let Some((offset, reason)) = &scan.problem {
        summary(output, vec![("records", Json::from(scan.records), range), ("shown", Json::from(shown), text(shown))]);
        return output.error(*offset, reason);
    }
    let torn = if scan.torn_tail_bytes > 0 {
        format!(
            "{} bytes after the last record (byte offset {}): start-up cuts them; those writes were never acknowledged",
            scan.torn_tail_bytes, scan.records_end
        )
    } else {
        "none".to_string()
    };
    summary(
        output,
        vec![
            ("records", Json::from(scan.records), range),
            ("shown", Json::from(shown), filter.shown(shown)),
            ("records_end", Json::from(scan.records_end), text(scan.records_end)),
            ("torn_tail_bytes", Json::from(scan.torn_tail_bytes), torn),
            ("verified", Json::from("ok"), "ok (the header's and every frame's CRC32C, every log entry decoded)".to_string()),
        ],
    );
    ExitCode::SUCCESS
}

fn summary(output: &mut Output, fields: Vec<(&'static str, Json, String)>) {
    output.block("end", fields);
}

/// Whether a later segment follows `file` in its folder (the log's segments are named by their
/// first index, 20 digits, so names sort as indexes do).
fn is_sealed(file: &Path) -> bool {
    let (Some(folder), Some(name)) = (file.parent(), file.file_name().and_then(|name| name.to_str())) else { return false };
    let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
    let Ok(entries) = std::fs::read_dir(folder) else { return false };
    entries.filter_map(Result::ok).filter_map(|entry| entry.file_name().into_string().ok()).any(|other| {
        other.as_str() > name && matches!(strata_node::directory::kind_by_name(strata_node::directory::LOG_DIRECTORY_NAME, &other), strata_node::directory::EntryKind::Versioned(FileKind::Segment))
    })
}

fn segment_record(record: &SegmentRecord<'_>) -> (Vec<(&'static str, Json)>, String) {
    let entry = record.entry;
    let (what, description, changes) = describe_entry(entry);
    let origin = format!("{:x}:{}", entry.origin_node, entry.origin_sequence);
    let fields = vec![
        ("offset", Json::from(record.offset)),
        ("index", Json::from(record.index)),
        ("revision", Json::from(entry.revision)),
        ("hlc", Json::from(hlc_text(entry.hlc))),
        ("origin", Json::from(origin.as_str())),
        ("payload_bytes", Json::from(record.payload_bytes)),
        ("what", Json::from(what)),
        ("description", Json::from(description.as_str())),
        ("changes", Json::Array(changes)),
    ];
    let line = format!("index {}  revision {}  hlc {}  origin {origin}  {description}", record.index, entry.revision, hlc_text(entry.hlc));
    (fields, line)
}

/// What a log entry does: a short name, a sentence, and its key changes as JSON.
fn describe_entry(entry: &LogEntry) -> (&'static str, String, Vec<Json>) {
    let changes: Vec<Json> = entry
        .changes
        .iter()
        .map(|change| {
            let put = change.kind == LogChangeKind::Put as i32;
            Json::Object(vec![
                ("op", Json::from(if put { "put" } else { "delete" })),
                ("key", Json::from(escape_bytes(&change.key))),
                ("value_bytes", if put { Json::from(change.value.len() as u64) } else { Json::Null }),
                ("lease", if put && change.lease != 0 { Json::from(format!("{:x}", change.lease)) } else { Json::Null }),
            ])
        })
        .collect();
    let listed = || {
        let mut parts: Vec<String> = entry
            .changes
            .iter()
            .take(CHANGES_LISTED_MAX)
            .map(|change| match LogChangeKind::try_from(change.kind) {
                Ok(LogChangeKind::Put) if change.lease != 0 => format!("put {} ({} bytes, lease {:x})", quoted(&change.key), change.value.len(), change.lease),
                Ok(LogChangeKind::Put) => format!("put {} ({} bytes)", quoted(&change.key), change.value.len()),
                Ok(LogChangeKind::Delete) => format!("delete {}", quoted(&change.key)),
                Err(_) => format!("change of unknown kind {} to {}", change.kind, quoted(&change.key)),
            })
            .collect();
        if entry.changes.len() > CHANGES_LISTED_MAX {
            parts.push(format!("… and {} more", entry.changes.len() - CHANGES_LISTED_MAX));
        }
        parts.join(", ")
    };
    if let Some(revision) = entry.compact_revision {
        return ("compact", format!("compact to revision {revision}"), changes);
    }
    if let Some(grant) = &entry.lease_grant {
        return ("lease-grant", format!("lease grant {:x}, TTL {} s", grant.id, grant.ttl), changes);
    }
    if let Some(id) = entry.lease_revoke {
        let deleted = if entry.changes.is_empty() { " (no keys attached)".to_string() } else { format!(": {}", listed()) };
        return ("lease-revoke", format!("lease revoke {id:x}{deleted}"), changes);
    }
    if let Some(change) = &entry.cluster {
        return ("cluster", describe_cluster(change), changes);
    }
    if let Some(change) = &entry.auth {
        return ("auth", describe_auth(change), changes);
    }
    match entry.changes.len() {
        0 => ("none", "no change".to_string(), changes),
        1 if entry.changes[0].kind == LogChangeKind::Put as i32 => ("put", listed(), changes),
        1 => ("delete", listed(), changes),
        count => ("txn", format!("{count} changes in one revision (a txn or a range delete): {}", listed()), changes),
    }
}

fn member_text(member: &strata_node::LogMember) -> String {
    format!("{:x} (peer URLs {}){}", member.id, member.peer_urls.join(","), if member.is_learner { ", learner" } else { "" })
}

fn alarm_name(alarm: i32) -> String {
    match alarm {
        strata_node::ALARM_NONE => "NONE".to_string(),
        strata_node::ALARM_NOSPACE => "NOSPACE".to_string(),
        strata_node::ALARM_CORRUPT => "CORRUPT".to_string(),
        other => format!("alarm type {other}"),
    }
}

fn describe_cluster(change: &strata_node::LogClusterChange) -> String {
    let mut parts = Vec::new();
    if let Some(member) = &change.member_add {
        parts.push(format!("member add {}", member_text(member)));
    }
    if let Some(id) = change.member_remove {
        parts.push(format!("member remove {id:x}"));
    }
    if let Some(member) = &change.member_update {
        parts.push(format!("member update {}", member_text(member)));
    }
    if let Some(alarm) = &change.alarm_activate {
        parts.push(format!("alarm {} raised for member {:x}", alarm_name(alarm.alarm), alarm.member_id));
    }
    if let Some(alarm) = &change.alarm_deactivate {
        parts.push(format!("alarm {} disarmed for member {:x}", alarm_name(alarm.alarm), alarm.member_id));
    }
    if parts.is_empty() {
        "a membership or alarm change of a kind this release does not know".to_string()
    } else {
        parts.join(", ")
    }
}

fn permission_kind(kind: i32) -> String {
    match kind {
        0 => "read".to_string(),
        1 => "write".to_string(),
        2 => "readwrite".to_string(),
        other => format!("permission type {other}"),
    }
}

fn key_range(key: &[u8], range_end: &[u8]) -> String {
    match range_end {
        [] => quoted(key),
        [0] => format!("{}.. (from key)", quoted(key)),
        end => format!("{}..{}", quoted(key), quoted(end)),
    }
}

fn describe_auth(change: &strata_node::LogAuthChange) -> String {
    let mut parts = Vec::new();
    if change.enable.is_some() {
        parts.push("auth enable".to_string());
    }
    if change.disable.is_some() {
        parts.push("auth disable".to_string());
    }
    if let Some(user) = &change.user_add {
        parts.push(format!("user add {:?}{}", user.name, if user.no_password { " (no password)" } else { "" }));
    }
    if let Some(name) = &change.user_delete {
        parts.push(format!("user delete {name:?}"));
    }
    if let Some(user) = &change.user_change_password {
        parts.push(format!("user {:?} changes password", user.name));
    }
    if let Some(grant) = &change.user_grant_role {
        parts.push(format!("user {:?} granted role {:?}", grant.user, grant.role));
    }
    if let Some(revoke) = &change.user_revoke_role {
        parts.push(format!("user {:?} revoked role {:?}", revoke.user, revoke.role));
    }
    if let Some(name) = &change.role_add {
        parts.push(format!("role add {name:?}"));
    }
    if let Some(name) = &change.role_delete {
        parts.push(format!("role delete {name:?}"));
    }
    if let Some(permission) = &change.role_grant_permission {
        parts.push(format!(
            "role {:?} granted {} on {}",
            permission.role,
            permission_kind(permission.kind),
            key_range(&permission.key, &permission.range_end)
        ));
    }
    if let Some(permission) = &change.role_revoke_permission {
        parts.push(format!("role {:?} revoked permission on {}", permission.role, key_range(&permission.key, &permission.range_end)));
    }
    if parts.is_empty() {
        "an auth change of a kind this release does not know".to_string()
    } else {
        parts.join(", ")
    }
}

// ------------------------------------------------------------------------------ snapshots

fn inspect_snapshot(file: &Path, filter: Filter, output: &mut Output) -> ExitCode {
    let file_system = strata_io::RealFileSystem::new();
    let mut fields = vec![("file", Json::from(file.display().to_string()), file.display().to_string())];
    let mut reader = match SnapshotReader::open(&file_system, file) {
        Ok(reader) => reader,
        Err(error) => {
            output.block("header", fields);
            let (offset, reason) = snapshot_error(error);
            return output.error(offset, &reason);
        }
    };
    let header = reader.header().clone();
    let kind = match header.base {
        None => ("snapshot", "full snapshot".to_string()),
        Some(base) => ("incremental-snapshot", format!("incremental snapshot, on the snapshot at revision {} (log index {})", base.revision, base.log_index)),
    };
    let timeframe: Vec<String> = header.timeframe.iter().map(|(origin, sequence)| format!("{origin:x}:{sequence}")).collect();
    let (member_json, member_text) = hex(header.node_id);
    let (cluster_json, cluster_text) = hex(header.cluster_id);
    fields.extend([
        ("kind", Json::from(kind.0), kind.1),
        ("format_version", Json::from(header.format_version), text(header.format_version)),
        ("writer_version", Json::from(release(header.writer_version)), release(header.writer_version)),
        ("member_id", member_json, member_text),
        ("cluster_id", cluster_json, cluster_text),
        ("revision", Json::from(header.revision), text(header.revision)),
        ("compacted_revision", Json::from(header.compacted_revision), text(header.compacted_revision)),
        ("log_index", Json::from(header.log_index), text(header.log_index)),
        ("base_revision", Json::from(header.base.map(|base| base.revision)), header.base.map_or("none (full)".to_string(), |base| text(base.revision))),
        ("base_log_index", Json::from(header.base.map(|base| base.log_index)), header.base.map_or("none (full)".to_string(), |base| text(base.log_index))),
        ("hlc", Json::from(hlc_text(header.hlc)), hlc_text(header.hlc)),
        (
            "timeframe",
            Json::Array(timeframe.iter().map(|entry| Json::from(entry.as_str())).collect()),
            if timeframe.is_empty() { "(empty)".to_string() } else { timeframe.join(", ") },
        ),
        ("created_unix_millis", Json::from(header.created_unix_millis), text(header.created_unix_millis)),
    ]);
    output.block("header", fields);
    output.heading("records:");
    // Records other than keys are the state at the snapshot's revision.
    let state_shown = filter.keeps(header.revision);
    let (mut records, mut shown) = (0u64, 0u64);
    loop {
        let offset = reader.position();
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => {
                summary(output, vec![("records", Json::from(records), text(records)), ("shown", Json::from(shown), text(shown))]);
                let (offset, reason) = snapshot_error(error);
                return output.error(offset, &reason);
            }
        };
        records += 1;
        let described = match &record {
            Record::Key(key) => describe_key(key, filter, state_shown),
            _ if !state_shown => None,
            other => Some(describe_state_record(other)),
        };
        if let Some((mut fields, line)) = described {
            shown += 1;
            fields.insert(0, ("offset", Json::from(offset)));
            output.record(fields, line);
        }
    }
    summary(
        output,
        vec![
            ("records", Json::from(records), text(records)),
            ("keys", Json::from(reader.key_count()), text(reader.key_count())),
            ("shown", Json::from(shown), filter.shown(shown)),
            ("bytes", Json::from(reader.file_length()), text(reader.file_length())),
            ("verified", Json::from("ok"), "ok (every record's and the file's CRC32C)".to_string()),
        ],
    );
    ExitCode::SUCCESS
}

fn snapshot_error(error: strata_snapshot::SnapshotError) -> (Option<u64>, String) {
    match &error {
        strata_snapshot::SnapshotError::Corrupt { offset, reason, .. } => (Some(*offset), reason.clone()),
        strata_snapshot::SnapshotError::BadMagic { .. } => (Some(0), error.to_string()),
        strata_snapshot::SnapshotError::UnsupportedFormat { .. } => (Some(8), error.to_string()),
        strata_snapshot::SnapshotError::Io { .. } => (None, error.to_string()),
    }
}

/// A key record with its versions in the filter's range; `None` when none is (a removed key of an
/// incremental snapshot is shown with the state records).
fn describe_key(key: &strata_snapshot::KeyRecord, filter: Filter, state_shown: bool) -> Option<(Vec<(&'static str, Json)>, String)> {
    let versions: Vec<&strata_snapshot::VersionRecord> = key.versions.iter().filter(|version| filter.keeps(version.mod_revision)).collect();
    if key.versions.is_empty() {
        if !state_shown {
            return None;
        }
        let fields = vec![("what", Json::from("removed-key")), ("key", Json::from(escape_bytes(&key.key))), ("versions", Json::Array(Vec::new()))];
        return Some((fields, format!("key {}: removed since the base snapshot", quoted(&key.key))));
    }
    if versions.is_empty() {
        return None;
    }
    let texts: Vec<String> = versions
        .iter()
        .map(|version| {
            let modified = if version.sub_revision > 0 { format!("{}.{}", version.mod_revision, version.sub_revision) } else { version.mod_revision.to_string() };
            if version.version == 0 {
                return format!("mod {modified} tombstone");
            }
            let lease = if version.lease != 0 { format!(", lease {:x}", version.lease) } else { String::new() };
            format!("mod {modified} create {} version {} value {} bytes{lease}", version.create_revision, version.version, version.value.len())
        })
        .collect();
    let json_versions = versions
        .iter()
        .map(|version| {
            Json::Object(vec![
                ("mod_revision", Json::from(version.mod_revision)),
                ("sub_revision", Json::from(version.sub_revision)),
                ("create_revision", Json::from(version.create_revision)),
                ("version", Json::from(version.version)),
                ("value_bytes", Json::from(version.value.len() as u64)),
                ("lease", if version.lease != 0 { Json::from(format!("{:x}", version.lease)) } else { Json::Null }),
                ("tombstone", Json::Bool(version.version == 0)),
                ("hlc", Json::from(hlc_text(version.hlc))),
            ])
        })
        .collect();
    let fields = vec![("what", Json::from("key")), ("key", Json::from(escape_bytes(&key.key))), ("versions", Json::Array(json_versions))];
    let count = if versions.len() == 1 { "1 version".to_string() } else { format!("{} versions", versions.len()) };
    Some((fields, format!("key {} ({count}): {}", quoted(&key.key), texts.join("; "))))
}

fn describe_state_record(record: &Record) -> (Vec<(&'static str, Json)>, String) {
    match record {
        Record::Lease(lease) => {
            let keys: Vec<String> = lease.keys.iter().map(|key| quoted(key)).collect();
            let fields = vec![
                ("what", Json::from("lease")),
                ("id", Json::from(format!("{:x}", lease.id))),
                ("ttl_seconds", Json::from(lease.ttl_seconds)),
                ("keys", Json::Array(lease.keys.iter().map(|key| Json::from(escape_bytes(key))).collect())),
            ];
            let attached = if keys.is_empty() { "no keys".to_string() } else { format!("keys {}", keys.join(", ")) };
            (fields, format!("lease {:x}, TTL {} s, {attached}", lease.id, lease.ttl_seconds))
        }
        Record::Member(member) => {
            let fields = vec![
                ("what", Json::from("member")),
                ("id", Json::from(format!("{:x}", member.id))),
                ("peer_urls", Json::Array(member.peer_urls.iter().map(|url| Json::from(url.as_str())).collect())),
                ("is_learner", Json::Bool(member.is_learner)),
            ];
            let learner = if member.is_learner { ", learner" } else { "" };
            (fields, format!("member {:x} (peer URLs {}){learner}", member.id, member.peer_urls.join(",")))
        }
        Record::RemovedMember(removed) => {
            (vec![("what", Json::from("removed-member")), ("id", Json::from(format!("{:x}", removed.id)))], format!("removed member {:x}", removed.id))
        }
        Record::Alarm(alarm) => (
            vec![("what", Json::from("alarm")), ("member_id", Json::from(format!("{:x}", alarm.member_id))), ("alarm", Json::from(alarm_name(alarm.alarm)))],
            format!("alarm {} on member {:x}", alarm_name(alarm.alarm), alarm.member_id),
        ),
        Record::Auth(payload) => describe_auth_record(payload),
        Record::Key(_) => (vec![("what", Json::from("key"))], "key".to_string()),
    }
}

fn describe_auth_record(payload: &[u8]) -> (Vec<(&'static str, Json)>, String) {
    let auth = match decode_auth_record(payload) {
        Ok(auth) => auth,
        Err(error) => return (vec![("what", Json::from("auth")), ("error", Json::from(error.as_str()))], format!("auth: {error}")),
    };
    let users: Vec<String> = auth
        .users
        .iter()
        .map(|user| {
            let password = if user.no_password { ", no password" } else { "" };
            format!("{:?} (roles {}{password})", user.name, if user.roles.is_empty() { "none".to_string() } else { user.roles.join(",") })
        })
        .collect();
    let roles: Vec<String> = auth
        .roles
        .iter()
        .map(|role| {
            let permissions: Vec<String> =
                role.permissions.iter().map(|permission| format!("{} {}", permission_kind(permission.kind), key_range(&permission.key, &permission.range_end))).collect();
            format!("{:?} [{}]", role.name, permissions.join(", "))
        })
        .collect();
    let fields = vec![
        ("what", Json::from("auth")),
        ("enabled", Json::Bool(auth.enabled)),
        ("auth_revision", Json::from(auth.revision)),
        ("users", Json::Array(auth.users.iter().map(|user| Json::from(user.name.as_str())).collect())),
        ("roles", Json::Array(auth.roles.iter().map(|role| Json::from(role.name.as_str())).collect())),
    ];
    let line = format!(
        "auth {}, auth revision {}, users: {}; roles: {}",
        if auth.enabled { "enabled" } else { "disabled" },
        auth.revision,
        if users.is_empty() { "none".to_string() } else { users.join(", ") },
        if roles.is_empty() { "none".to_string() } else { roles.join(", ") }
    );
    (fields, line)
}
