//! etcd's command-line flags and `ETCD_*` variables, as the `serve` subcommand accepts them. The
//! only module that knows etcd's flag names. Flags Strata has no use for yet are accepted and
//! named in a one-line notice; unknown flags are an error naming the flag; unknown `ETCD_*`
//! variables only warn, as etcd does.

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "strata", version, about = "Strata: a key-value database that speaks etcd's v3 API", args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Load-generate against any etcd v3 endpoint (Strata or etcd), or compare the two side by side.
    Bench(BenchArgs),
    /// Save a running node's snapshot, restore one into a new data directory, or inspect one.
    Snapshot(crate::snapshot::SnapshotArgs),
    /// Move data between etcd and Strata: from an etcd snapshot or data directory, or to an etcd snapshot file.
    Migrate(crate::migrate::MigrateArgs),
    /// Check, read-only, whether this binary can serve a data directory (`upgrade check`).
    Upgrade(crate::upgrade::UpgradeArgs),
    /// Print a segment's, snapshot's or manifest's header and records, for operators.
    Inspect(crate::inspect::InspectArgs),
}

/// `strata bench`: etcd benchmark's flag names.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Endpoints to load (comma-separated).
    #[arg(long, default_value = "127.0.0.1:2379", global = true)]
    pub endpoints: String,
    /// gRPC connections.
    #[arg(long, default_value_t = 1, global = true)]
    pub conns: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1, global = true)]
    pub clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 10_000, global = true)]
    pub total: u64,
    /// Run for this many seconds instead of --total requests.
    #[arg(long, global = true)]
    pub duration: Option<f64>,
    /// Requests per second over all clients (0: unlimited).
    #[arg(long, default_value_t = 0.0, global = true)]
    pub rate: f64,
    /// Start a fresh etcd and a fresh Strata and run the workload against each, alternating.
    #[arg(long, global = true)]
    pub compare: bool,
    /// Runs per server with --compare.
    #[arg(long, default_value_t = 3, global = true)]
    pub runs: usize,
    /// The etcd binary for --compare.
    #[arg(long, default_value = "etcd", global = true)]
    pub etcd_binary: String,
    #[command(subcommand)]
    pub workload: BenchWorkload,
}

#[derive(Subcommand, Debug, Clone)]
pub enum BenchWorkload {
    /// Puts of --val-size values to keys of --key-size over --key-space-size keys.
    Put {
        #[arg(long, default_value_t = 8)]
        key_size: usize,
        #[arg(long, default_value_t = 8)]
        val_size: usize,
        #[arg(long, default_value_t = 1)]
        key_space_size: u64,
        #[arg(long)]
        sequential_keys: bool,
    },
    /// Ranges over KEY (to END).
    Range {
        key: String,
        end: Option<String>,
        /// l (linearizable) or s (serializable).
        #[arg(long, default_value = "l")]
        consistency: String,
        #[arg(long, default_value_t = 0)]
        limit: i64,
        #[arg(long)]
        keys_only: bool,
        #[arg(long)]
        count_only: bool,
    },
    /// Kubernetes' optimistic update: get, then txn on mod_revision, retried on conflict.
    TxnPut {
        #[arg(long, default_value_t = 1000)]
        key_space_size: u64,
        #[arg(long, default_value_t = 256)]
        val_size: usize,
    },
    /// Watchers on a prefix and a writer at --rate; put-to-event latency.
    WatchLatency {
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        #[arg(long, default_value_t = 10)]
        streams: usize,
        #[arg(long, default_value_t = 32)]
        val_size: usize,
    },
    /// Restart time with snapshots, without (full replay) and of etcd, and put latency during a snapshot.
    Restart(crate::bench_restart::RestartArgs),
    /// 70% lists (limit --list-limit over a prefix), 30% optimistic updates.
    Mixed {
        #[arg(long, default_value_t = 1000)]
        key_space_size: u64,
        #[arg(long, default_value_t = 256)]
        val_size: usize,
        #[arg(long, default_value_t = 100)]
        list_limit: i64,
    },
}

/// Go's `strconv.ParseBool`, which etcd's boolean flags use.
fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("invalid boolean value {other:?} (use true or false)")),
    }
}

macro_rules! serve_args {
    (
        used { $( $(#[doc = $udoc:literal])* $uname:ident : $utype:ty = $udefault:literal, $uenv:literal; )* }
        bools_used { $( $(#[doc = $bdoc:literal])* $bname:ident = $bdefault:literal, $benv:literal; )* }
        ignored { $( $iname:ident, $ienv:literal; )* }
        ignored_bools { $( $ibname:ident, $ibenv:literal; )* }
    ) => {
        /// The flags of `strata serve`, named and defaulted as etcd's.
        #[derive(Args, Debug, Clone)]
        pub struct ServeArgs {
            $( $(#[doc = $udoc])* #[arg(long, env = $uenv, default_value = $udefault)] pub $uname: $utype, )*
            $( $(#[doc = $bdoc])* #[arg(long, env = $benv, default_value = $bdefault, num_args = 0..=1, require_equals = true,
                      default_missing_value = "true", value_parser = go_bool)] pub $bname: bool, )*
            $( #[arg(long, env = $ienv, hide = true)] pub $iname: Option<String>, )*
            $( #[arg(long, env = $ibenv, hide = true, num_args = 0..=1, require_equals = true,
                      default_missing_value = "true", value_parser = go_bool)] pub $ibname: Option<bool>, )*
        }

        impl ServeArgs {
            /// The `ETCD_*` variables this binary understands.
            pub fn known_environment() -> &'static [&'static str] {
                &[$($uenv,)* $($benv,)* $($ienv,)* $($ibenv,)*]
            }

            /// The flags that were given but have no effect in this release.
            pub fn ignored_flags_given(&self) -> Vec<String> {
                let mut given = Vec::new();
                $( if self.$iname.is_some() { given.push(flag_name(stringify!($iname))); } )*
                $( if self.$ibname.is_some() { given.push(flag_name(stringify!($ibname))); } )*
                given
            }
        }
    };
}

/// A positive Go `time.Duration`, as etcd's duration flags take it: `10m`, `1h30m`, `1.5s`, `250ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration(pub std::time::Duration);

/// Go's `time.ParseDuration` (units ns, us, µs, ms, s, m, h; decimal fractions), positive only.
impl std::str::FromStr for GoDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<GoDuration, String> {
        let invalid = || format!("invalid duration {text:?} (a positive Go duration, e.g. 10m, 1h30m, 500ms)");
        let mut rest = text.strip_prefix('+').unwrap_or(text);
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut total_nanos: u128 = 0;
        while !rest.is_empty() {
            let number_length = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let (number, after) = rest.split_at(number_length);
            let unit_length = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_length);
            rest = after;
            let unit_nanos: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60 * 1_000_000_000,
                "h" => 3600 * 1_000_000_000,
                _ => return Err(invalid()),
            };
            let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
            if whole.is_empty() && fraction.is_empty() || fraction.len() > 18 {
                return Err(invalid());
            }
            let digits = |part: &str| if part.is_empty() { Ok(0) } else { part.parse::<u128>().map_err(|_| invalid()) };
            let fraction_nanos = digits(fraction)? * unit_nanos / 10u128.pow(fraction.len() as u32);
            let nanos = digits(whole)?.checked_mul(unit_nanos).and_then(|nanos| nanos.checked_add(fraction_nanos)).ok_or_else(invalid)?;
            total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        }
        match u64::try_from(total_nanos) {
            Ok(nanos) if nanos > 0 => Ok(GoDuration(std::time::Duration::from_nanos(nanos))),
            _ => Err(invalid()),
        }
    }
}

/// etcd's `--auto-compaction-mode` and `--auto-compaction-retention` (embed's
/// `parseCompactionRetention`): a whole number is hours in periodic mode and revisions in revision
/// mode, anything else a Go duration; retention 0 disables automatic compaction.
pub fn auto_compaction(mode: &str, retention: &str) -> Result<Option<strata_node::AutoCompaction>, String> {
    use strata_node::AutoCompaction;
    if !matches!(mode, "periodic" | "revision" | "") {
        return Err(format!("unknown auto-compaction-mode {mode:?}"));
    }
    let amount = match retention.parse::<i64>() {
        Ok(whole) if whole >= 0 => match mode {
            "revision" => whole as u128,
            _ => whole as u128 * 3600 * 1_000_000_000,
        },
        _ => retention.parse::<GoDuration>().map_err(|error| format!("error parsing CompactionRetention: {error}"))?.0.as_nanos(),
    };
    if amount == 0 || mode.is_empty() {
        return Ok(None);
    }
    Ok(Some(match mode {
        "revision" => AutoCompaction::Revision {
            retention: i64::try_from(amount).unwrap_or(i64::MAX),
            check_interval_millis: strata_node::REVISION_CHECK_INTERVAL_MILLIS,
        },
        _ => AutoCompaction::Periodic { period_millis: u64::try_from(amount / 1_000_000).unwrap_or(u64::MAX).max(1) },
    }))
}

fn flag_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

serve_args! {
    used {
        /// Human-readable name for this member.
        name: String = "default", "ETCD_NAME";
        /// Path to the data directory (default: NAME.strata).
        data_dir: String = "", "ETCD_DATA_DIR";
        /// URLs to listen on for client traffic (comma-separated).
        listen_client_urls: String = "http://127.0.0.1:2379", "ETCD_LISTEN_CLIENT_URLS";
        /// Client URLs of this member to advertise (default: the listen URLs).
        advertise_client_urls: String = "", "ETCD_ADVERTISE_CLIENT_URLS";
        /// URLs to listen on for peer traffic.
        listen_peer_urls: String = "http://localhost:2380", "ETCD_LISTEN_PEER_URLS";
        /// Peer URLs of this member to advertise.
        initial_advertise_peer_urls: String = "http://localhost:2380", "ETCD_INITIAL_ADVERTISE_PEER_URLS";
        /// Initial cluster configuration (name=peer-url,...).
        initial_cluster: String = "", "ETCD_INITIAL_CLUSTER";
        /// new or existing.
        initial_cluster_state: String = "new", "ETCD_INITIAL_CLUSTER_STATE";
        /// Initial cluster token, used to derive ids.
        initial_cluster_token: String = "etcd-cluster", "ETCD_INITIAL_CLUSTER_TOKEN";
        /// Maximum client request size in bytes the server accepts.
        max_request_bytes: u64 = "1572864", "ETCD_MAX_REQUEST_BYTES";
        /// Maximum number of operations in one txn.
        max_txn_ops: u64 = "128", "ETCD_MAX_TXN_OPS";
        /// debug, info, warn, error, panic or fatal.
        log_level: String = "info", "ETCD_LOG_LEVEL";
        /// Strata's own: the size at which a log segment is sealed and the next one begins.
        log_segment_bytes: u64 = "67108864", "STRATA_LOG_SEGMENT_BYTES";
        /// Raise the NOSPACE alarm when the backend size would exceed this (0: 2 GiB; negative: no quota).
        quota_backend_bytes: i64 = "0", "ETCD_QUOTA_BACKEND_BYTES";
        /// Number of log entries that trigger a snapshot to disk (etcd 3.6's default; 0: no automatic snapshots).
        snapshot_count: u64 = "10000", "ETCD_SNAPSHOT_COUNT";
        /// Maximum number of snapshots to retain (0 is unlimited); log segments they all cover are deleted.
        max_snapshots: u64 = "5", "ETCD_MAX_SNAPSHOTS";
        /// Interpret --auto-compaction-retention as hours or a duration ("periodic") or as revisions ("revision").
        auto_compaction_mode: String = "periodic", "ETCD_AUTO_COMPACTION_MODE";
        /// Auto compaction retention: hours or a Go duration (periodic), a revision count (revision); 0 disables.
        auto_compaction_retention: String = "0", "ETCD_AUTO_COMPACTION_RETENTION";
        /// Strata's own: a snapshot also after this many log bytes since the last one (0: only --snapshot-count).
        snapshot_log_bytes: u64 = "268435456", "STRATA_SNAPSHOT_LOG_BYTES";
        /// Strata's own: incremental snapshots between two full ones (0: always full).
        snapshot_increments: u64 = "16", "STRATA_SNAPSHOT_INCREMENTS";
        /// Strata's own: the storage format new files are written in (0: the newest this binary writes; an older one keeps the data directory readable by the older release it came with). See `strata upgrade check`.
        storage_format: u32 = "0", "STRATA_STORAGE_FORMAT";
        /// Auth tokens: simple, or jwt,pub-key=PATH,priv-key=PATH,sign-method=METHOD[,ttl=DURATION].
        auth_token: String = "simple", "ETCD_AUTH_TOKEN";
        /// Seconds a simple token lives after its last use.
        auth_token_ttl: u64 = "300", "ETCD_AUTH_TOKEN_TTL";
        /// The bcrypt cost of auth password hashes (4 to 31).
        bcrypt_cost: u32 = "10", "ETCD_BCRYPT_COST";
        /// How often watchers that asked for progress notifications get one (a Go duration).
        experimental_watch_progress_notify_interval: GoDuration = "10m", "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL";
        /// Path to the client server TLS cert file (for https:// client URLs).
        cert_file: String = "", "ETCD_CERT_FILE";
        /// Path to the client server TLS key file.
        key_file: String = "", "ETCD_KEY_FILE";
        /// Path to the client server TLS trusted CA cert file; clients must present a certificate it signed.
        trusted_ca_file: String = "", "ETCD_TRUSTED_CA_FILE";
        /// Path to the client certificate revocation list file (PEM or DER).
        client_crl_file: String = "", "ETCD_CLIENT_CRL_FILE";
        /// Comma-separated TLS 1.2 cipher suites, by etcd's (Go's) names (empty: the defaults).
        cipher_suites: String = "", "ETCD_CIPHER_SUITES";
        /// Peer TLS cert file (validated; kept for replication).
        peer_cert_file: String = "", "ETCD_PEER_CERT_FILE";
        /// Peer TLS key file (validated; kept for replication).
        peer_key_file: String = "", "ETCD_PEER_KEY_FILE";
        /// Peer TLS trusted CA file (validated; kept for replication).
        peer_trusted_ca_file: String = "", "ETCD_PEER_TRUSTED_CA_FILE";
        /// Peer certificate revocation list file (validated; kept for replication).
        peer_crl_file: String = "", "ETCD_PEER_CRL_FILE";
        /// URLs to listen on for the /metrics and /health endpoints (comma-separated).
        listen_metrics_urls: String = "", "ETCD_LISTEN_METRICS_URLS";
    }
    bools_used {
        /// Require a client certificate signed by --trusted-ca-file.
        client_cert_auth = "false", "ETCD_CLIENT_CERT_AUTH";
        /// Serve https:// client URLs with a self-signed certificate generated at start.
        auto_tls = "false", "ETCD_AUTO_TLS";
        /// Peer client certificate authentication (validated; kept for replication).
        peer_client_cert_auth = "false", "ETCD_PEER_CLIENT_CERT_AUTH";
        /// Peer TLS with generated certificates (validated; kept for replication).
        peer_auto_tls = "false", "ETCD_PEER_AUTO_TLS";
    }
    ignored {
        heartbeat_interval, "ETCD_HEARTBEAT_INTERVAL";
        election_timeout, "ETCD_ELECTION_TIMEOUT";
        logger, "ETCD_LOGGER";
        log_outputs, "ETCD_LOG_OUTPUTS";
        wal_dir, "ETCD_WAL_DIR";
        max_wals, "ETCD_MAX_WALS";
        discovery, "ETCD_DISCOVERY";
        discovery_srv, "ETCD_DISCOVERY_SRV";
        cors, "ETCD_CORS";
        host_whitelist, "ETCD_HOST_WHITELIST";
        metrics, "ETCD_METRICS";
        grpc_keepalive_min_time, "ETCD_GRPC_KEEPALIVE_MIN_TIME";
        grpc_keepalive_interval, "ETCD_GRPC_KEEPALIVE_INTERVAL";
        grpc_keepalive_timeout, "ETCD_GRPC_KEEPALIVE_TIMEOUT";
        backend_batch_interval, "ETCD_BACKEND_BATCH_INTERVAL";
        backend_batch_limit, "ETCD_BACKEND_BATCH_LIMIT";
        experimental_corrupt_check_time, "ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME";
    }
    ignored_bools {
        strict_reconfig_check, "ETCD_STRICT_RECONFIG_CHECK";
        experimental_initial_corrupt_check, "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK";
        experimental_enable_lease_checkpoint, "ETCD_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT";
        experimental_compact_hash_check_enabled, "ETCD_EXPERIMENTAL_COMPACT_HASH_CHECK_ENABLED";
        enable_v2, "ETCD_ENABLE_V2";
        enable_pprof, "ETCD_ENABLE_PPROF";
        enable_grpc_gateway, "ETCD_ENABLE_GRPC_GATEWAY";
        debug, "ETCD_DEBUG";
        force_new_cluster, "ETCD_FORCE_NEW_CLUSTER";
        pre_vote, "ETCD_PRE_VOTE";
        unsafe_no_fsync, "ETCD_UNSAFE_NO_FSYNC";
        socket_reuse_port, "ETCD_SOCKET_REUSE_PORT";
        socket_reuse_address, "ETCD_SOCKET_REUSE_ADDRESS";
    }
}

/// etcd (Go's `flag` package) also takes `-flag value`: rewrite a single-dash known flag to the
/// double-dash form clap parses. Anything else is left alone.
pub fn normalize_arguments(arguments: Vec<String>) -> Vec<String> {
    let command = Cli::command();
    let longs: Vec<String> = command.get_arguments().filter_map(|argument| argument.get_long().map(str::to_string)).collect();
    arguments
        .into_iter()
        .map(|argument| {
            let Some(rest) = argument.strip_prefix('-') else { return argument };
            if rest.starts_with('-') {
                return argument;
            }
            let name = rest.split('=').next().unwrap_or_default();
            if longs.iter().any(|long| long == name) { format!("-{argument}") } else { argument }
        })
        .collect()
}

/// The `ETCD_*` variables of `environment` this binary does not know, as etcd's warning says.
pub fn unknown_environment(environment: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let known = ServeArgs::known_environment();
    environment
        .filter(|(name, _)| name.starts_with("ETCD_") && !known.contains(&name.as_str()))
        // etcdctl's own variables are not the server's business.
        .filter(|(name, _)| !name.starts_with("ETCDCTL_"))
        .map(|(name, value)| format!("unrecognized environment variable {name}={value}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<ServeArgs, clap::Error> {
        let arguments = normalize_arguments(arguments.iter().map(|argument| argument.to_string()).collect());
        Cli::try_parse_from(arguments).map(|cli| match cli.command {
            Some(Command::Serve(serve)) => serve,
            Some(Command::Bench(_)) => panic!("parsed as bench"),
            Some(Command::Snapshot(_)) => panic!("parsed as snapshot"),
            Some(Command::Migrate(_)) => panic!("parsed as migrate"),
            Some(Command::Upgrade(_)) => panic!("parsed as upgrade"),
            Some(Command::Inspect(_)) => panic!("parsed as inspect"),
            None => cli.serve,
        })
    }

    #[test]
    fn bench_takes_etcd_benchmark_flags_before_and_after_the_workload() {
        let cli = Cli::try_parse_from(["strata", "bench", "--conns", "10", "put", "--val-size", "256", "--clients=100"]).unwrap();
        let Some(Command::Bench(bench)) = cli.command else { panic!("bench") };
        assert_eq!((bench.conns, bench.clients), (10, 100));
        assert!(matches!(bench.workload, BenchWorkload::Put { val_size: 256, .. }));
    }

    #[test]
    fn both_flag_forms_and_single_dash_are_accepted() {
        let args = parse(&["strata", "--name", "n1", "--data-dir=/tmp/d", "-max-txn-ops", "7", "-log-level=debug"]).unwrap();
        assert_eq!((args.name.as_str(), args.data_dir.as_str(), args.max_txn_ops, args.log_level.as_str()), ("n1", "/tmp/d", 7, "debug"));
        let args = parse(&["strata", "serve", "--name=n2"]).unwrap();
        assert_eq!(args.name, "n2");
    }

    #[test]
    fn go_style_booleans_take_no_value_or_an_equals_value() {
        let args = parse(&["strata", "--strict-reconfig-check", "--enable-pprof=false"]).unwrap();
        assert_eq!((args.strict_reconfig_check, args.enable_pprof), (Some(true), Some(false)));
        assert_eq!(args.ignored_flags_given(), vec!["--strict-reconfig-check", "--enable-pprof"]);
        let args = parse(&["strata", "--client-cert-auth", "--auto-tls=false", "--peer-auto-tls=true"]).unwrap();
        assert_eq!((args.client_cert_auth, args.auto_tls, args.peer_auto_tls, args.peer_client_cert_auth), (true, false, true, false));
    }

    #[test]
    fn durations_are_read_as_go_reads_them() {
        use std::time::Duration;
        for (text, expected) in [
            ("10m", Duration::from_secs(600)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5s", Duration::from_millis(1500)),
            ("250ms", Duration::from_millis(250)),
            ("100us", Duration::from_micros(100)),
            (".5m", Duration::from_secs(30)),
        ] {
            assert_eq!(text.parse::<GoDuration>(), Ok(GoDuration(expected)), "{text}");
        }
        for text in ["", "10", "1x", "-1s", "0", "0s", "m", "1.s5"] {
            assert!(text.parse::<GoDuration>().is_err(), "{text}");
        }
        let args = parse(&["strata", "--experimental-watch-progress-notify-interval=200ms"]).unwrap();
        assert_eq!(args.experimental_watch_progress_notify_interval, GoDuration(Duration::from_millis(200)));
        assert!(args.ignored_flags_given().is_empty());
    }

    #[test]
    fn unknown_flags_are_an_error_naming_the_flag() {
        let error = parse(&["strata", "--no-such-flag", "1"]).unwrap_err().to_string();
        assert!(error.contains("--no-such-flag"), "{error}");
    }

    #[test]
    fn the_quota_is_etcds_flag_with_its_default_and_negative_values() {
        assert_eq!(parse(&["strata"]).unwrap().quota_backend_bytes, 0);
        assert_eq!(parse(&["strata", "--quota-backend-bytes=53248"]).unwrap().quota_backend_bytes, 53248);
        assert_eq!(parse(&["strata", "--quota-backend-bytes=-1"]).unwrap().quota_backend_bytes, -1);
        assert!(parse(&["strata", "--quota-backend-bytes=53248"]).unwrap().ignored_flags_given().is_empty());
    }

    #[test]
    fn auth_flags_are_etcds_with_etcds_defaults() {
        let args = parse(&["strata"]).unwrap();
        assert_eq!((args.auth_token.as_str(), args.auth_token_ttl, args.bcrypt_cost), ("simple", 300, 10));
        let args = parse(&["strata", "--auth-token=jwt,sign-method=RS256,priv-key=k", "--auth-token-ttl", "5", "-bcrypt-cost=4"]).unwrap();
        assert_eq!((args.auth_token.as_str(), args.auth_token_ttl, args.bcrypt_cost), ("jwt,sign-method=RS256,priv-key=k", 5, 4));
        assert!(args.ignored_flags_given().is_empty());
    }

    #[test]
    fn snapshot_and_compaction_flags_are_etcds_with_etcd_3_6s_defaults() {
        use strata_node::AutoCompaction;
        let args = parse(&["strata"]).unwrap();
        assert_eq!(
            (args.snapshot_count, args.max_snapshots, args.auto_compaction_mode.as_str(), args.auto_compaction_retention.as_str()),
            (10_000, 5, "periodic", "0")
        );
        let args =
            parse(&["strata", "--snapshot-count=100", "--max-snapshots", "2", "--auto-compaction-mode=revision", "--auto-compaction-retention=1000"]).unwrap();
        assert_eq!((args.snapshot_count, args.max_snapshots), (100, 2));
        assert!(args.ignored_flags_given().is_empty());
        assert_eq!(auto_compaction("periodic", "0"), Ok(None));
        assert_eq!(auto_compaction("periodic", "1"), Ok(Some(AutoCompaction::Periodic { period_millis: 3_600_000 })));
        assert_eq!(auto_compaction("periodic", "30m"), Ok(Some(AutoCompaction::Periodic { period_millis: 1_800_000 })));
        assert_eq!(auto_compaction("revision", "1000"), Ok(Some(AutoCompaction::Revision { retention: 1000, check_interval_millis: 300_000 })));
        assert_eq!(auto_compaction("daily", "1"), Err("unknown auto-compaction-mode \"daily\"".to_string()));
        assert!(auto_compaction("periodic", "soon").unwrap_err().contains("error parsing CompactionRetention"));
        let cli = Cli::try_parse_from(["strata", "snapshot", "save", "backup.snap", "--endpoints", "127.0.0.1:2379"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Snapshot(_))));
    }

    #[test]
    fn unknown_etcd_variables_only_warn() {
        let environment = vec![
            ("ETCD_NAME".to_string(), "x".to_string()),
            ("ETCD_BOGUS".to_string(), "1".to_string()),
            ("ETCDCTL_API".to_string(), "3".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        assert_eq!(unknown_environment(environment.into_iter()), vec!["unrecognized environment variable ETCD_BOGUS=1"]);
    }
}
