//! The gateway differential test: the real `strata` binary and a real etcd 3.4, both started empty,
//! get the same HTTP/1.1 requests on their client URLs' JSON gateway (`POST /v3/kv/put`, …, as
//! `curl -X POST -d '{…}'` sends them, over a plain `TcpStream`) and must answer each identically:
//! the same HTTP status, the same values of the headers a client reads (content type, CORS,
//! `Grpc-Metadata-Content-Type`) and the same body byte for byte, once the headers' `cluster_id`,
//! `member_id` and `raft_term` (which identify the server, not the data) are masked.
//!
//! Exceptions, each compared as closely as it can be:
//! - bodies that are not valid JSON for the message: etcd answers with Go's decoder's words; the
//!   HTTP status and the gRPC code must agree, not the text.
//! - TimeToLive's remaining TTL is wall-clock time and may be a second apart.
//! - Maintenance.Status, Hash and Cluster.MemberList describe the server: compared by shape (the
//!   same fields with the same JSON types), and each member's `clientURLs` is its own endpoint.
//! - Alarm: Strata answers as etcd 3.5 (the API it reports), with a header 3.4's answer lacks.
//!
//! Streams (watch, lease keep-alive) are read line by line with a deadline and each line compared.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use support::{etcd_binary, start_etcd, start_strata, ServerProcess, TempDir};

/// How long one response (or one line of a stream) may take.
const RESPONSE_DEADLINE_SECONDS: u64 = 10;

/// The response headers whose values must agree (absent on both counts as agreeing).
const COMPARED_HEADERS: &[&str] = &[
    "content-type",
    "grpc-metadata-content-type",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "x-content-type-options",
];

/// The header fields that identify the server rather than the data.
const SERVER_FIELDS: &[&str] = &["cluster_id", "member_id", "raft_term"];

// ---------------------------------------------------------------------------------- HTTP client

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    /// What must agree between the servers.
    fn compared(&self) -> (u16, Vec<(&str, Option<&str>)>, String) {
        let headers = COMPARED_HEADERS.iter().map(|name| (*name, self.header(name))).collect();
        (self.status, headers, mask_server_fields(&self.text()))
    }
}

fn host(endpoint: &str) -> &str {
    endpoint.strip_prefix("http://").expect("an http:// endpoint")
}

/// Writes one request (`Connection: close`) and returns the connection to read the answer from.
fn send(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> BufReader<TcpStream> {
    let host = host(endpoint);
    let mut stream = TcpStream::connect(host).unwrap_or_else(|error| panic!("connect to {host}: {error}"));
    stream.set_read_timeout(Some(Duration::from_secs(RESPONSE_DEADLINE_SECONDS))).expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n");
    if method == "POST" {
        head.push_str(&format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("write the request head");
    stream.write_all(body).expect("write the request body");
    BufReader::new(stream)
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or_else(|error| panic!("no response line within {RESPONSE_DEADLINE_SECONDS} s: {error}"));
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// The status and the headers (names in lower case).
fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let status_line = read_line(reader);
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader);
        if line.is_empty() {
            return (status, headers);
        }
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// One chunk of a chunked body; `None` after the last (its trailers are read and dropped).
fn read_chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let size_line = read_line(reader);
    let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
    if size == 0 {
        while !read_line(reader).is_empty() {}
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).unwrap_or_else(|error| panic!("chunk of {size} bytes not read within {RESPONSE_DEADLINE_SECONDS} s: {error}"));
    chunk.truncate(size);
    Some(chunk)
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, value)| name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked"))
}

fn request(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut reader = send(endpoint, method, path, headers, body);
    let (status, response_headers) = read_head(&mut reader);
    let mut body = Vec::new();
    if is_chunked(&response_headers) {
        while let Some(chunk) = read_chunk(&mut reader) {
            body.extend_from_slice(&chunk);
        }
    } else if let Some((_, length)) = response_headers.iter().find(|(name, _)| name == "content-length") {
        body.resize(length.parse().expect("a content length"), 0);
        reader.read_exact(&mut body).expect("the body");
    } else {
        reader.read_to_end(&mut body).expect("the body");
    }
    HttpResponse { status, headers: response_headers, body }
}

/// A streamed response, read one `\n`-terminated JSON line at a time.
struct JsonLines {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    pending: Vec<u8>,
    ended: bool,
}

impl JsonLines {
    fn open(endpoint: &str, path: &str, body: &str) -> JsonLines {
        let mut reader = send(endpoint, "POST", path, &[], body.as_bytes());
        let (status, headers) = read_head(&mut reader);
        let mut lines = JsonLines { reader, status, headers, pending: Vec::new(), ended: false };
        if !is_chunked(&lines.headers) {
            lines.reader.read_to_end(&mut lines.pending).expect("the body");
            lines.ended = true;
        }
        lines
    }

    /// The next line (a last one may lack its `\n`), or `None` once the body ended.
    fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.ended {
                return (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned());
            }
            match read_chunk(&mut self.reader) {
                Some(chunk) => self.pending.extend_from_slice(&chunk),
                None => self.ended = true,
            }
        }
    }

    fn lines(&mut self, count: usize) -> Vec<String> {
        (0..count).map(|index| self.next_line().unwrap_or_else(|| panic!("the stream ended before line {}", index + 1))).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Replaces the values of the server-identifying header fields with `*`.
fn mask_server_fields(text: &str) -> String {
    let mut masked = text.to_string();
    for field in SERVER_FIELDS {
        let marker = format!("\"{field}\":\"");
        let mut result = String::new();
        let mut rest = masked.as_str();
        while let Some(at) = rest.find(&marker) {
            result.push_str(&rest[..at + marker.len()]);
            rest = &rest[at + marker.len()..];
            result.push('*');
            rest = &rest[rest.find('"').unwrap_or(rest.len())..];
        }
        result.push_str(rest);
        masked = result;
    }
    masked
}

/// A value's shape: every leaf replaced by its JSON type's name.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(members.iter().map(|(key, member)| (key.clone(), shape(member))).collect()),
        Value::Array(elements) => Value::Array(elements.iter().map(shape).collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for group in bytes.chunks(3) {
        let value = group.iter().enumerate().fold(0u32, |value, (index, byte)| value | u32::from(*byte) << (16 - 8 * index));
        for index in 0..4 {
            if index <= group.len() {
                text.push(char::from(ALPHABET[(value >> (18 - 6 * index) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

// ----------------------------------------------------------------------------------- the pair

struct Pair {
    strata: ServerProcess,
    etcd: ServerProcess,
    _directory: TempDir,
}

impl Pair {
    fn start(label: &str) -> Option<Pair> {
        let binary = etcd_binary()?;
        let directory = TempDir::new(label);
        let strata = start_strata(&directory.join("strata"), &[]);
        let etcd = start_etcd(&binary, &directory.join("etcd"));
        Some(Pair { strata, etcd, _directory: directory })
    }

    fn both(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (HttpResponse, HttpResponse) {
        (request(&self.strata.endpoint, method, path, headers, body.as_bytes()), request(&self.etcd.endpoint, method, path, headers, body.as_bytes()))
    }

    /// Sends a request to both; asserts status, compared headers and masked body agree.
    fn same_with(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let (strata, etcd) = self.both(method, path, headers, body);
        assert_eq!(strata.compared(), etcd.compared(), "{method} {path} {body}\nstrata: {}\netcd:   {}", strata.text(), etcd.text());
        strata
    }

    fn same(&self, path: &str, body: &str) -> HttpResponse {
        self.same_with("POST", path, &[], body)
    }

    /// For bodies etcd's Go decoder refuses in its own words: the status and the gRPC code agree.
    fn same_refusal(&self, path: &str, body: &str) {
        let (strata, etcd) = self.both("POST", path, &[], body);
        assert_eq!(strata.status, etcd.status, "{path} {body}\nstrata: {}\netcd:   {}", strata.text(), etcd.text());
        assert_eq!(strata.json()["code"], etcd.json()["code"], "{path} {body}\nstrata: {}\netcd:   {}", strata.text(), etcd.text());
        let strata_json = strata.json();
        assert_eq!(strata_json["error"], strata_json["message"], "error and message are the same text");
    }

    /// Responses that describe the server: the same shape.
    fn same_shape(&self, path: &str, body: &str) -> (Value, Value) {
        let (strata, etcd) = self.both("POST", path, &[], body);
        assert_eq!((strata.status, strata.header("content-type")), (etcd.status, etcd.header("content-type")), "{path}");
        let (strata, etcd) = (strata.json(), etcd.json());
        assert_eq!(shape(&strata), shape(&etcd), "{path}\nstrata: {strata}\netcd:   {etcd}");
        (strata, etcd)
    }

    fn open_streams(&self, path: &str, body: &str) -> (JsonLines, JsonLines) {
        (JsonLines::open(&self.strata.endpoint, path, body), JsonLines::open(&self.etcd.endpoint, path, body))
    }
}

/// The next `count` lines of both streams, which must agree once masked.
fn same_lines(label: &str, streams: &mut (JsonLines, JsonLines), count: usize) -> Vec<String> {
    let strata: Vec<String> = streams.0.lines(count).iter().map(|line| mask_server_fields(line)).collect();
    let etcd: Vec<String> = streams.1.lines(count).iter().map(|line| mask_server_fields(line)).collect();
    assert_eq!(strata, etcd, "{label}");
    strata
}

fn same_stream_head(label: &str, streams: &(JsonLines, JsonLines)) {
    for name in COMPARED_HEADERS {
        assert_eq!(streams.0.header(name), streams.1.header(name), "{label}: header {name}");
    }
    assert_eq!(streams.0.status, streams.1.status, "{label}: status");
}

// ----------------------------------------------------------------------------------- the tests

#[test]
fn kv_requests_and_errors_match_etcd() {
    let Some(pair) = Pair::start("gateway-kv") else { return };
    let (foo, bar, baz) = (base64(b"foo"), base64(b"bar"), base64(b"baz"));

    // Puts, in both name styles, with and without prev_kv.
    let put = pair.same("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{bar}"}}"#));
    assert_eq!(put.status, 200);
    assert!(put.text().contains(r#""revision":"2""#), "{}", put.text());
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{baz}","prev_kv":true}}"#));
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{bar}","prevKv":true,"ignored_field":[1]}}"#, base64(b"foo/1")));
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{}","value":""}}"#, base64(b"foo/2")));
    pair.same("/v3beta/kv/put", &format!(r#"{{"key":"{}","value":"{}"}}"#, base64(b"a\x00\xff"), base64(&[0, 1, 2, 250, 251, 252])));

    // Ranges: single key, prefix, sorted, limited, counted, keys only, at an old revision.
    pair.same("/v3/kv/range", &format!(r#"{{"key":"{foo}"}}"#));
    let prefix = format!(r#""key":"{foo}","range_end":"{}""#, base64(b"fop"));
    pair.same("/v3/kv/range", &format!("{{{prefix}}}"));
    pair.same("/v3/kv/range", &format!(r#"{{{prefix},"sort_order":"DESCEND","sort_target":"MOD"}}"#));
    pair.same("/v3/kv/range", &format!(r#"{{{prefix},"sortOrder":2,"limit":"1"}}"#));
    pair.same("/v3/kv/range", &format!(r#"{{{prefix},"limit":2,"keys_only":true}}"#));
    pair.same("/v3/kv/range", &format!(r#"{{{prefix},"count_only":true}}"#));
    pair.same("/v3/kv/range", r#"{"key":"AA==","range_end":"AA==","serializable":true}"#);
    pair.same("/v3/kv/range", &format!(r#"{{"key":"{foo}","revision":"2"}}"#));
    pair.same("/v3/kv/range", &format!(r#"{{"key":"{foo}","revision":null,"min_mod_revision":"3"}}"#));
    pair.same("/v3beta/kv/range", &format!(r#"{{"key":"{}"}}"#, base64(b"nothing")));

    // Deletes.
    pair.same("/v3/kv/deleterange", &format!(r#"{{"key":"{}","prev_kv":true}}"#, base64(b"foo/2")));
    pair.same("/v3/kv/deleterange", &format!(r#"{{"key":"{}"}}"#, base64(b"nothing")));

    // Transactions: compares on value, version and revision; every kind of operation; nested.
    let txn = format!(
        r#"{{"compare":[{{"result":"EQUAL","target":"VALUE","key":"{foo}","value":"{baz}"}},{{"result":"GREATER","target":"VERSION","key":"{foo}","version":"1"}}],
            "success":[{{"request_put":{{"key":"{}","value":"{bar}","prev_kv":true}}}},{{"request_range":{{"key":"{foo}"}}}},{{"request_delete_range":{{"key":"{}"}}}}],
            "failure":[{{"request_range":{{"key":"{foo}"}}}}]}}"#,
        base64(b"txn"),
        base64(b"foo/1")
    );
    pair.same("/v3/kv/txn", &txn);
    pair.same("/v3/kv/txn", &txn);
    pair.same(
        "/v3/kv/txn",
        &format!(r#"{{"compare":[{{"result":"LESS","target":"MOD","key":"{foo}","mod_revision":"2"}}],"failure":[{{"request_range":{{"key":"{foo}"}}}},{{"request_txn":{{}}}}]}}"#),
    );
    pair.same("/v3/kv/txn", "{}");

    // Compaction, and what it leaves readable.
    pair.same("/v3/kv/compaction", r#"{"revision":"3"}"#);
    pair.same("/v3/kv/compaction", r#"{"revision":"4","physical":true}"#);
    pair.same("/v3/kv/range", &format!(r#"{{"key":"{foo}","revision":"2"}}"#));
    pair.same("/v3/kv/compaction", r#"{"revision":"2"}"#);
    pair.same("/v3/kv/compaction", r#"{"revision":"1000"}"#);

    // etcd's errors, with grpc-gateway's statuses.
    for (path, body) in [
        ("/v3/kv/range", String::new()),
        ("/v3/kv/range", "null".to_string()),
        ("/v3/kv/range", r#"{"key":""}"#.to_string()),
        ("/v3/kv/range", format!(r#"{{"key":"{foo}","revision":"1000"}}"#)),
        ("/v3/kv/put", format!(r#"{{"key":"{foo}","value":"{bar}","lease":"99"}}"#)),
        ("/v3/kv/put", format!(r#"{{"key":"{foo}","ignore_value":true,"value":"{bar}"}}"#)),
        ("/v3/kv/put", format!(r#"{{"key":"{}","ignore_value":true}}"#, base64(b"absent"))),
        ("/v3/kv/txn", format!(r#"{{"success":[{{"request_put":{{"key":"{foo}"}}}},{{"request_delete_range":{{"key":"{foo}"}}}}]}}"#)),
        ("/v3/kv/range", "[]".to_string()),
        ("/v3/kv/range", "5".to_string()),
        ("/v3/cluster/member/remove", r#"{"ID":"12345"}"#.to_string()),
        ("/v3/maintenance/transfer-leadership", r#"{"targetID":"5"}"#.to_string()),
    ] {
        let response = pair.same(path, &body);
        assert!(response.status >= 400, "{path} {body}: {}", response.text());
    }

    // Bodies etcd's decoder refuses: the same status (400) and code (InvalidArgument).
    for body in ["{", r#"{"key":5}"#, r#"{"key":"!!"}"#, r#"{"key":"Zm9v","sort_order":"BOGUS"}"#, r#"{"key":"Zm9v","count_only":"true"}"#, r#"{"limit":"x"}"#]
    {
        pair.same_refusal("/v3/kv/range", body);
    }

    // Requests over etcd's size limits: --max-request-bytes, then gRPC's own receive limit.
    for value_bytes in [1_600 * 1024, 2_200 * 1024] {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(b"big"), base64(&vec![b'x'; value_bytes]));
        let response = pair.same("/v3/kv/put", &body);
        assert!(response.status >= 400, "{value_bytes} bytes: {}", response.text());
    }

    // Paths and methods the gateway does not serve, CORS pre-flight, the /v3beta/ prefix.
    for (method, path) in [
        ("POST", "/v3/kv/nothing"),
        ("POST", "/v3/kv/range/"),
        ("POST", "/v3beta/nothing"),
        ("POST", "/v3/"),
        ("POST", "/v3/maintenance/hashkv"),
        ("GET", "/v3/kv/range"),
        ("PUT", "/v3/watch"),
        ("OPTIONS", "/v3/kv/put"),
    ] {
        pair.same_with(method, path, &[], "");
    }

    // Maintenance and cluster: etcd's answers where they are about the data, shapes where not.
    // Alarm answers as etcd 3.5 (whose API Strata reports) with a header, which 3.4's lacks.
    for body in ["{}", r#"{"action":"GET"}"#] {
        let (strata, etcd) = pair.both("POST", "/v3/maintenance/alarm", &[], body);
        let (mut strata_json, etcd_json) = (strata.json(), etcd.json());
        assert!(strata_json.as_object_mut().and_then(|members| members.remove("header")).is_some(), "{}", strata.text());
        assert_eq!((strata.status, strata_json), (etcd.status, etcd_json));
    }
    pair.same("/v3/maintenance/defragment", "");
    pair.same_shape("/v3/maintenance/hash", "{}");
    let (strata, etcd) = pair.same_shape("/v3/maintenance/status", "{}");
    assert_eq!(strata["header"]["revision"], etcd["header"]["revision"]);
    let (strata, etcd) = pair.same_shape("/v3beta/cluster/member/list", "{}");
    for (members, endpoint) in [(&strata, &pair.strata.endpoint), (&etcd, &pair.etcd.endpoint)] {
        assert_eq!(members["members"][0]["clientURLs"], serde_json::json!([endpoint]), "{members}");
    }
}

#[test]
fn lease_requests_and_keep_alive_streams_match_etcd() {
    let Some(pair) = Pair::start("gateway-lease") else { return };
    pair.same("/v3/lease/grant", r#"{"TTL":60,"ID":1000}"#);
    pair.same("/v3/lease/grant", r#"{"TTL":"60","ID":"1000"}"#);
    pair.same("/v3/lease/grant", r#"{"TTL":"9000000001","ID":"1001"}"#);
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{}","value":"","lease":"1000"}}"#, base64(b"leased")));
    pair.same("/v3/lease/leases", "{}");
    pair.same("/v3/kv/lease/leases", "");

    // TimeToLive: the remaining TTL may be a second apart.
    for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
        let (strata, etcd) = pair.both("POST", path, &[], r#"{"ID":"1000","keys":true}"#);
        assert_eq!((strata.status, strata.header("content-type")), (etcd.status, etcd.header("content-type")));
        let (mut strata, mut etcd) = (strata.json(), etcd.json());
        let remaining = |value: &Value| value["TTL"].as_str().and_then(|ttl| ttl.parse::<i64>().ok()).expect("a TTL");
        assert!((remaining(&strata) - remaining(&etcd)).abs() <= 1, "strata: {strata}\netcd:   {etcd}");
        for answer in [&mut strata, &mut etcd] {
            answer["TTL"] = Value::from("*");
            answer["header"] = Value::from("*");
        }
        assert_eq!(strata, etcd);
    }
    pair.same("/v3/lease/timetolive", r#"{"ID":"99"}"#);

    // Keep-alives: one line per request; the stream ends with the body.
    let mut streams = pair.open_streams("/v3/lease/keepalive", r#"{"ID":"1000"} {"ID":1000}{"ID":"99"}"#);
    same_stream_head("keep-alive", &streams);
    same_lines("keep-alive", &mut streams, 3);
    assert_eq!((streams.0.next_line(), streams.1.next_line()), (None, None), "the streams end with the body");
    // A later request that does not decode ends the stream like the body's end.
    let mut streams = pair.open_streams("/v3/lease/keepalive", r#"{"ID":"1000"}{"ID":"x"}"#);
    same_lines("keep-alive, then garbage", &mut streams, 1);
    assert_eq!((streams.0.next_line(), streams.1.next_line()), (None, None));
    // No request: an empty answer.
    let mut streams = pair.open_streams("/v3/lease/keepalive", "");
    same_stream_head("keep-alive without requests", &streams);
    assert_eq!((streams.0.next_line(), streams.1.next_line()), (None, None));
    // A first request that does not decode: an error answer (Unknown, 500), in Go's words on etcd.
    let (strata, etcd) = pair.both("POST", "/v3/lease/keepalive", &[], r#"{"ID":"x"}"#);
    assert_eq!((strata.status, strata.json()["code"].clone()), (etcd.status, etcd.json()["code"].clone()), "{}\n{}", strata.text(), etcd.text());

    // Revokes, through both paths, and what they leave.
    pair.same("/v3/lease/revoke", r#"{"ID":"1000"}"#);
    pair.same("/v3/kv/range", &format!(r#"{{"key":"{}"}}"#, base64(b"leased")));
    pair.same("/v3/kv/lease/revoke", r#"{"ID":"1000"}"#);
    pair.same("/v3/kv/lease/revoke", r#"{"ID":"1001"}"#);
    pair.same("/v3/lease/timetolive", r#"{"ID":"1000"}"#);
    pair.same("/v3beta/lease/leases", "{}");
}

#[test]
fn watch_streams_match_etcd() {
    let Some(pair) = Pair::start("gateway-watch") else { return };
    let (foo, a1, a2) = (base64(b"foo"), base64(b"a1"), base64(b"a2"));
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{}"}}"#, base64(b"v1")));

    // One watcher with prev_kv; two on one stream (a range; every key but puts, with its own
    // id); one created and canceled in the same body.
    let mut single = pair.open_streams("/v3/watch", &format!(r#"{{"create_request":{{"key":"{foo}","prev_kv":true}}}}"#));
    same_stream_head("watch", &single);
    same_lines("single: created", &mut single, 1);
    let mut double = pair.open_streams(
        "/v3beta/watch",
        &format!(
            r#"{{"create_request":{{"key":"{}","range_end":"{}"}}}}
               {{"createRequest":{{"key":"AA==","rangeEnd":"AA==","filters":["NOPUT"],"watch_id":"7"}}}}"#,
            base64(b"a"),
            base64(b"b")
        ),
    );
    same_lines("double: created", &mut double, 2);
    let mut canceled = pair.open_streams("/v3/watch", &format!(r#"{{"create_request":{{"key":"{foo}"}}}}{{"cancel_request":{{"watch_id":"0"}}}}"#));
    same_lines("created, then canceled", &mut canceled, 2);

    // Writes, each acknowledged before the next, so each stream's lines are in revision order.
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{}"}}"#, base64(b"v2")));
    pair.same("/v3/kv/put", &format!(r#"{{"key":"{a1}","value":"{}"}}"#, base64(b"x")));
    pair.same("/v3/kv/deleterange", &format!(r#"{{"key":"{foo}"}}"#));
    pair.same(
        "/v3/kv/txn",
        &format!(
            r#"{{"success":[{{"request_put":{{"key":"{a2}","value":"{}"}}}},{{"request_put":{{"key":"{foo}","value":"{}"}}}}]}}"#,
            base64(b"y"),
            base64(b"v3")
        ),
    );
    let lines = same_lines("single: put, delete, put", &mut single, 3);
    assert!(lines[1].contains(r#""type":"DELETE""#) && lines[1].contains(r#""prev_kv""#), "{lines:?}");
    same_lines("double: a1, the delete, a2", &mut double, 3);

    // A watcher from revision 1 gets the history in one response.
    let mut history = pair.open_streams("/v3/watch", r#"{"create_request":{"key":"AA==","range_end":"AA==","start_revision":"1"}}"#);
    same_lines("history", &mut history, 2);
    // A progress request, and a first request that does not decode.
    let mut progress = pair.open_streams("/v3/watch", &format!(r#"{{"create_request":{{"key":"{foo}"}}}}{{"progress_request":{{}}}}"#));
    same_lines("progress", &mut progress, 2);
    let (strata, etcd) = pair.both("POST", "/v3/watch", &[], r#"{"create_request":{"key":7}}"#);
    assert_eq!((strata.status, strata.json()["code"].clone()), (etcd.status, etcd.json()["code"].clone()), "{}\n{}", strata.text(), etcd.text());
}

/// The token header reaches the Auth service, and names with characters Go escapes come back
/// escaped as etcd escapes them.
#[test]
fn auth_token_header_and_escaping_match_etcd() {
    let Some(pair) = Pair::start("gateway-auth") else { return };
    pair.same_with("POST", "/v3/kv/range", &[("Authorization", "not-a-token")], &format!(r#"{{"key":"{}"}}"#, base64(b"foo")));
    pair.same("/v3/auth/user/add", r#"{"name":"a<b>&\u2028","password":"secret"}"#);
    pair.same("/v3/auth/user/list", "{}");
    pair.same("/v3/auth/authenticate", r#"{"name":"root","password":"x"}"#);
}
