//! `/metrics`, end to end: scraped over the client URL and over `--listen-metrics-urls`, parsed
//! strictly as Prometheus' text format 0.0.4 (every sample `name{labels} value`, HELP and TYPE
//! before a family's samples, each family once, histogram buckets cumulative with `+Inf` equal to
//! `_count`), and checked to move as requests are served: puts raise the put total and the WAL
//! fsync histogram, a range raises the range total and `grpc_server_handled_total` for Range with
//! code OK, a failed request counts under its code, leases and watchers are counted. A real etcd's
//! scrape has every `etcd_*`/`grpc_*` family Strata writes, with the same type and help.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, etcd_binary, free_port, start_etcd_with_args, start_server_when, strata_binary, TempDir};

/// How long a scrape may take.
const SCRAPE_TIMEOUT_MILLIS: u64 = 10_000;

// -------------------------------------------------------------------------------------- parse

/// One family: its type, help, and samples by name and labels (labels sorted, `le` included).
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

/// A parsed page: families by name.
#[derive(Debug, Default)]
struct Page {
    families: BTreeMap<String, Family>,
}

impl Page {
    /// The value of the sample `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut key_labels: Vec<(String, String)> = labels.iter().map(|(label, value)| (label.to_string(), value.to_string())).collect();
        key_labels.sort();
        self.families
            .values()
            .find_map(|family| family.samples.get(&(name.to_string(), key_labels.clone())))
            .copied()
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    fn grpc_handled(&self, method: &str, code: &str) -> f64 {
        let service = if method == "Watch" { "etcdserverpb.Watch" } else { "etcdserverpb.KV" };
        let kind = if method == "Watch" { "bidi_stream" } else { "unary" };
        self.value("grpc_server_handled_total", &[("grpc_code", code), ("grpc_method", method), ("grpc_service", service), ("grpc_type", kind)])
    }

    fn grpc_handled_all_codes(&self, method: &str) -> f64 {
        self.families["grpc_server_handled_total"]
            .samples
            .iter()
            .filter(|((_, labels), _)| labels.iter().any(|(label, value)| label == "grpc_method" && value == method))
            .map(|(_, value)| value)
            .sum()
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_' || character == ':')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse::<f64>().map_err(|_| format!("bad value {text:?}")),
    }
}

/// `{a="x",b="y\"z"}` (the text after the name) into labels and the rest of the line.
fn parse_labels(text: &str) -> Result<(Vec<(String, String)>, &str), String> {
    let Some(mut rest) = text.strip_prefix('{') else { return Ok((Vec::new(), text)) };
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (label, after) = rest.split_once("=\"").ok_or_else(|| format!("bad label in {text:?}"))?;
        if !valid_metric_name(label) || label.contains(':') {
            return Err(format!("bad label name {label:?}"));
        }
        let mut value = String::new();
        let mut characters = after.char_indices();
        let end = loop {
            match characters.next() {
                Some((_, '\\')) => match characters.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape {other:?} in {text:?}")),
                },
                Some((index, '"')) => break index,
                Some((_, character)) => value.push(character),
                None => return Err(format!("unterminated label value in {text:?}")),
            }
        };
        if labels.iter().any(|(existing, _): &(String, String)| existing == label) {
            return Err(format!("label {label} twice in {text:?}"));
        }
        labels.push((label.to_string(), value));
        rest = &after[end + 1..];
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} in {text:?}"));
        }
    }
}

/// Parses a page strictly; any deviation from the text format is an error naming the line.
fn parse_page(text: &str) -> Result<Page, String> {
    let mut page = Page::default();
    let mut current: Option<String> = None;
    let mut pending_help: Option<(String, String)> = None;
    if !text.ends_with('\n') {
        return Err("the page does not end with a newline".to_string());
    }
    for (number, line) in text.lines().enumerate() {
        let error = |message: String| format!("line {}: {message}: {line:?}", number + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(|| error("HELP without text".into()))?;
            if !valid_metric_name(name) || page.families.contains_key(name) {
                return Err(error("bad or repeated family".into()));
            }
            pending_help = Some((name.to_string(), help.to_string()));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| error("TYPE without a type".into()))?;
            let Some((help_name, help)) = pending_help.take() else { return Err(error("TYPE without HELP before it".into())) };
            if help_name != name || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(error("TYPE does not follow its HELP or names an unknown type".into()));
            }
            page.families.insert(name.to_string(), Family { kind: kind.to_string(), help, samples: BTreeMap::new() });
            current = Some(name.to_string());
        } else if line.starts_with('#') || line.is_empty() {
            return Err(error("unexpected comment or blank line".into()));
        } else {
            if pending_help.is_some() {
                return Err(error("sample between HELP and TYPE".into()));
            }
            let family_name = current.as_ref().ok_or_else(|| error("sample before any TYPE".into()))?;
            let name_end = line.find(['{', ' ']).ok_or_else(|| error("no value".into()))?;
            let name = &line[..name_end];
            let (labels, rest) = parse_labels(&line[name_end..]).map_err(|message| error(message))?;
            let value = rest.strip_prefix(' ').ok_or_else(|| error("no space before the value".into()))?;
            if value.contains(' ') {
                return Err(error("timestamps or trailing text".into()));
            }
            let value = parse_value(value).map_err(|message| error(message))?;
            let family = page.families.get_mut(family_name).expect("current family");
            let belongs = match family.kind.as_str() {
                "histogram" => [format!("{family_name}_bucket"), format!("{family_name}_sum"), format!("{family_name}_count")].contains(&name.to_string()),
                "summary" => [family_name.clone(), format!("{family_name}_sum"), format!("{family_name}_count")].contains(&name.to_string()),
                _ => name == family_name,
            };
            if !valid_metric_name(name) || !belongs {
                return Err(error(format!("sample outside its family {family_name}")));
            }
            if family.kind == "counter" && !(value >= 0.0) {
                return Err(error("negative counter".into()));
            }
            let mut labels = labels;
            labels.sort();
            if family.samples.insert((name.to_string(), labels), value).is_some() {
                return Err(error("repeated sample".into()));
            }
        }
    }
    for (name, family) in &page.families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(page)
}

/// Buckets ascending in `le`, cumulative, `+Inf` last and equal to `_count`; `_sum` present.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let mut series: HashMap<Vec<(String, String)>, Vec<(f64, f64)>> = HashMap::new();
    for ((sample, labels), value) in &family.samples {
        if sample.ends_with("_bucket") {
            let le = labels.iter().find(|(label, _)| label == "le").ok_or(format!("{name}: bucket without le"))?;
            let rest: Vec<(String, String)> = labels.iter().filter(|(label, _)| label != "le").cloned().collect();
            series.entry(rest).or_default().push((parse_value(&le.1)?, *value));
        }
    }
    if series.is_empty() {
        return Err(format!("{name}: no buckets"));
    }
    for (labels, mut buckets) in series {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if buckets.windows(2).any(|pair| pair[1].1 < pair[0].1) {
            return Err(format!("{name}{labels:?}: buckets not cumulative: {buckets:?}"));
        }
        let last = buckets.last().expect("buckets");
        if last.0 != f64::INFINITY {
            return Err(format!("{name}{labels:?}: no +Inf bucket"));
        }
        let count = family.samples.get(&(format!("{name}_count"), labels.clone())).ok_or(format!("{name}{labels:?}: no _count"))?;
        if *count != last.1 {
            return Err(format!("{name}{labels:?}: +Inf bucket {} but _count {count}", last.1));
        }
        family.samples.get(&(format!("{name}_sum"), labels.clone())).ok_or(format!("{name}{labels:?}: no _sum"))?;
    }
    Ok(())
}

#[test]
fn the_parser_refuses_format_errors() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
    assert!(parse_page(good).is_ok());
    for bad in [
        "a_total 1\n",                                                                                          // no TYPE
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 2\n",                                        // unterminated label
        "# HELP a_total A.\n# TYPE a_total counter\na_total 2 3 4\n",                                           // trailing text
        "# HELP a_total A.\n# TYPE a_total counter\nb_total 2\n",                                               // outside its family
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",                                              // negative counter
        "# HELP h A.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# HELP h A.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", // +Inf != count
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",                                                 // no final newline
    ] {
        assert!(parse_page(bad).is_err(), "accepted {bad:?}");
    }
}

// ------------------------------------------------------------------------------------- scrape

/// `GET path` over HTTP/1.1 on `address` (`host:port`): the status line, headers and body.
fn http_get(address: &str, path: &str) -> Result<(String, String, String), String> {
    let mut stream = std::net::TcpStream::connect(address).map_err(|error| format!("connect {address}: {error}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(SCRAPE_TIMEOUT_MILLIS))).map_err(|error| error.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").map_err(|error| format!("write: {error}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|error| format!("read: {error}"))?;
    let answer = String::from_utf8(answer).map_err(|_| "the answer is not UTF-8".to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no header end")?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let headers = headers.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") { dechunk(body)? } else { body.to_string() };
    Ok((status.to_string(), headers, body))
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("short chunk")?);
        body = rest.get(size + 2..).ok_or("short chunk")?;
    }
}

/// Scrapes and parses `/metrics` at `address`, checking the status and content type.
fn scrape(address: &str) -> Page {
    let (status, headers, body) = http_get(address, "/metrics").unwrap_or_else(|error| panic!("scrape {address}: {error}"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(headers.contains("content-type: text/plain; version=0.0.4"), "{headers}");
    parse_page(&body).unwrap_or_else(|error| panic!("{address}/metrics: {error}\n{body}"))
}

/// Strata with `--listen-metrics-urls`; returns it and the metrics address.
fn start_with_metrics_url(temp: &TempDir) -> (support::ServerProcess, String) {
    let (client, metrics) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let mut command = Command::new(strata_binary());
    command
        .arg("--data-dir")
        .arg(temp.join("data"))
        .arg(format!("--listen-client-urls=http://{client}"))
        .arg(format!("--advertise-client-urls=http://{client}"))
        .arg(format!("--listen-metrics-urls=http://{metrics}"));
    let probe = metrics.clone();
    let server = start_server_when(command, format!("http://{client}"), &temp.join("data"), || {
        http_get(&probe, "/health").is_ok_and(|(status, _, _)| status == "HTTP/1.1 200 OK")
    });
    (server, metrics)
}

// --------------------------------------------------------------------------------------- tests

#[test]
fn metrics_move_as_requests_are_served() {
    let temp = TempDir::new("metrics");
    let (server, metrics_address) = start_with_metrics_url(&temp);
    let client_address = server.endpoint.trim_start_matches("http://").to_string();
    let (status, _, body) = http_get(&metrics_address, "/health").expect("health on the metrics URL");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", r#"{"health":"true","reason":""}"#));

    let before = scrape(&metrics_address);
    let on_client_url = scrape(&client_address);
    assert_eq!(before.families.keys().collect::<Vec<_>>(), on_client_url.families.keys().collect::<Vec<_>>(), "the same families on both URLs");
    for (name, kind) in [
        ("etcd_server_has_leader", "gauge"),
        ("etcd_server_is_leader", "gauge"),
        ("etcd_server_leader_changes_seen_total", "counter"),
        ("etcd_server_proposals_committed_total", "gauge"),
        ("etcd_server_proposals_applied_total", "gauge"),
        ("etcd_server_proposals_pending", "gauge"),
        ("etcd_server_proposals_failed_total", "counter"),
        ("etcd_mvcc_db_total_size_in_bytes", "gauge"),
        ("etcd_mvcc_db_total_size_in_use_in_bytes", "gauge"),
        ("etcd_debugging_mvcc_keys_total", "gauge"),
        ("etcd_mvcc_put_total", "counter"),
        ("etcd_mvcc_delete_total", "counter"),
        ("etcd_mvcc_range_total", "counter"),
        ("etcd_mvcc_txn_total", "counter"),
        ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
        ("etcd_disk_backend_commit_duration_seconds", "histogram"),
        ("etcd_server_quota_backend_bytes", "gauge"),
        ("etcd_debugging_mvcc_current_revision", "gauge"),
        ("etcd_debugging_mvcc_compact_revision", "gauge"),
        ("etcd_debugging_mvcc_watcher_total", "gauge"),
        ("etcd_debugging_lease_granted_total", "counter"),
        ("etcd_debugging_lease_revoked_total", "counter"),
        ("etcd_network_client_grpc_received_bytes_total", "counter"),
        ("etcd_network_client_grpc_sent_bytes_total", "counter"),
        ("grpc_server_started_total", "counter"),
        ("grpc_server_handled_total", "counter"),
        ("strata_writer_batch_requests", "histogram"),
        ("strata_log_segments", "gauge"),
    ] {
        let family = before.families.get(name).unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(family.kind, kind, "{name}");
    }
    assert_eq!(before.value("etcd_server_has_leader", &[]), 1.0);
    assert_eq!(before.value("etcd_server_is_leader", &[]), 1.0);
    assert_eq!(before.value("etcd_debugging_mvcc_current_revision", &[]), 1.0);
    assert_eq!(before.value("etcd_debugging_mvcc_compact_revision", &[]), -1.0);
    assert_eq!(before.value("etcd_server_quota_backend_bytes", &[]), 2147483648.0);
    assert_eq!(
        before.value("etcd_disk_wal_fsync_duration_seconds_bucket", &[("le", "8.192")]),
        before.value("etcd_disk_wal_fsync_duration_seconds_count", &[])
    );

    const PUTS: usize = 5;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let revision = runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..PUTS {
            let put = pb::PutRequest { key: format!("key{index}").into_bytes(), value: b"value".to_vec(), ..Default::default() };
            clients.kv.put(put).await.expect("put");
        }
        let range = pb::RangeRequest { key: b"key".to_vec(), range_end: b"kez".to_vec(), ..Default::default() };
        assert_eq!(clients.kv.range(range).await.expect("range").into_inner().count, PUTS as i64);
        let future = pb::RangeRequest { key: b"key0".to_vec(), revision: 1_000_000, ..Default::default() };
        assert_eq!(clients.kv.range(future).await.expect_err("a future revision").code(), tonic::Code::OutOfRange);
        // A txn of two puts: two puts and one txn, as etcd counts them.
        let put_op = |key: &str| pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest { key: key.into(), value: b"t".to_vec(), ..Default::default() })),
        };
        let txn = pb::TxnRequest { success: vec![put_op("txn1"), put_op("txn2")], ..Default::default() };
        let revision = clients.kv.txn(txn).await.expect("txn").into_inner().header.expect("header").revision;
        let mut lease = support::connect_lease(&server.endpoint).await;
        let granted = lease.lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 0 }).await.expect("grant").into_inner();
        lease.lease_revoke(pb::LeaseRevokeRequest { id: granted.id }).await.expect("revoke");
        revision
    });

    let after = scrape(&metrics_address);
    let delta = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
    assert_eq!(delta("etcd_mvcc_put_total", &[]), (PUTS + 2) as f64);
    assert_eq!(delta("etcd_mvcc_txn_total", &[]), 1.0);
    assert!(delta("etcd_mvcc_range_total", &[]) >= 1.0);
    // Each put was awaited before the next: one batch, one fsync each (the txn and the lease too).
    assert!(delta("etcd_disk_wal_fsync_duration_seconds_count", &[]) >= (PUTS + 1) as f64);
    assert!(delta("etcd_disk_backend_commit_duration_seconds_count", &[]) >= (PUTS + 1) as f64);
    assert!(delta("strata_writer_batch_requests_count", &[]) >= (PUTS + 1) as f64);
    assert!(delta("etcd_server_proposals_committed_total", &[]) >= (PUTS + 3) as f64);
    assert_eq!(after.value("etcd_server_proposals_pending", &[]), 0.0);
    assert_eq!(after.value("strata_log_segments", &[]), 1.0);
    assert_eq!(after.value("etcd_debugging_mvcc_current_revision", &[]), revision as f64);
    assert_eq!(after.value("etcd_debugging_mvcc_keys_total", &[]), (PUTS + 2) as f64);
    assert!(after.value("etcd_mvcc_db_total_size_in_bytes", &[]) >= after.value("etcd_mvcc_db_total_size_in_use_in_bytes", &[]));
    assert_eq!(delta("etcd_debugging_lease_granted_total", &[]), 1.0);
    assert_eq!(delta("etcd_debugging_lease_revoked_total", &[]), 1.0);
    assert_eq!(
        delta("grpc_server_handled_total", &[("grpc_code", "OK"), ("grpc_method", "Range"), ("grpc_service", "etcdserverpb.KV"), ("grpc_type", "unary")]),
        1.0
    );
    assert_eq!(after.grpc_handled("Range", "OutOfRange") - before.grpc_handled("Range", "OutOfRange"), 1.0);
    assert_eq!(after.grpc_handled("Put", "OK") - before.grpc_handled("Put", "OK"), PUTS as f64);
    let started =
        |page: &Page| page.value("grpc_server_started_total", &[("grpc_method", "Range"), ("grpc_service", "etcdserverpb.KV"), ("grpc_type", "unary")]);
    assert_eq!(started(&after) - started(&before), 2.0);
    // Message bytes: at least the payloads of the puts' keys and values, in and out.
    assert!(delta("etcd_network_client_grpc_received_bytes_total", &[]) >= (PUTS * "key0value".len()) as f64);
    assert!(delta("etcd_network_client_grpc_sent_bytes_total", &[]) > 0.0);
    assert_eq!(delta("grpc_server_msg_received_total", &[("grpc_method", "Put"), ("grpc_service", "etcdserverpb.KV"), ("grpc_type", "unary")]), PUTS as f64);

    // A watch stream: one watcher while it is open; handled (with some code) once it is gone.
    runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(server.endpoint.clone()).expect("endpoint").connect().await.expect("connect");
        let mut watch = pb::watch_client::WatchClient::new(channel);
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let create = pb::WatchCreateRequest { key: b"key".to_vec(), range_end: b"kez".to_vec(), ..Default::default() };
        sender.send(pb::WatchRequest { request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)) }).await.expect("send");
        let mut responses = watch.watch(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.expect("watch").into_inner();
        assert!(responses.message().await.expect("created").expect("a response").created);
        assert_eq!(scrape(&metrics_address).value("etcd_debugging_mvcc_watcher_total", &[]), 1.0);
        drop(sender);
        drop(responses);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(&metrics_address);
        if page.grpc_handled_all_codes("Watch") == 1.0 && page.value("etcd_debugging_mvcc_watcher_total", &[]) == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the closed watch stream was never counted as handled and its watcher removed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_families_strata_shares_with_etcd_have_etcds_type_and_help() {
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("metrics-etcd");
    let etcd = start_etcd_with_args(&etcd, &temp.join("etcd"), &[]);
    let strata = support::start_strata(&temp.join("strata"), &[]);
    let etcd_page = scrape(etcd.endpoint.trim_start_matches("http://"));
    let strata_page = scrape(strata.endpoint.trim_start_matches("http://"));
    let mut compared = 0;
    for (name, family) in &strata_page.families {
        if name.starts_with("strata_") {
            continue;
        }
        let theirs = etcd_page.families.get(name).unwrap_or_else(|| panic!("etcd has no family {name}"));
        assert_eq!((&family.kind, &family.help), (&theirs.kind, &theirs.help), "{name}");
        compared += 1;
    }
    assert!(compared >= 28, "only {compared} families compared");
    // etcd's gRPC families list every method with every code from the start, as Strata's do.
    let labels_of = |page: &Page, method: &str| -> Vec<Vec<(String, String)>> {
        page.families["grpc_server_handled_total"]
            .samples
            .keys()
            .filter(|(_, labels)| labels.iter().any(|(label, value)| label == "grpc_method" && value == method))
            // etcd also serves grpc.health.v1.Health (whose Watch shares the method name); Strata does not.
            .filter(|(_, labels)| labels.iter().any(|(label, value)| label == "grpc_service" && value.starts_with("etcdserverpb.")))
            .map(|(_, labels)| labels.clone())
            .collect()
    };
    for method in ["Range", "Put", "Txn", "Watch", "LeaseKeepAlive", "Snapshot", "MemberList", "UserAdd"] {
        assert_eq!(labels_of(&strata_page, method), labels_of(&etcd_page, method), "{method}");
    }
}
