//! TLS on `https://` client URLs, end to end: certificates are made here (rcgen): a CA, a server
//! certificate for 127.0.0.1 and localhost, a client certificate `alice`, a client certificate
//! `bob` that a CRL of the CA revokes, and a client certificate `mallory` from another CA.
//!
//! - etcdctl (`--cacert/--cert/--key`) puts, gets and reads endpoint status over TLS;
//! - with `--client-cert-auth`, a client without a certificate, with one from another CA, or with
//!   a revoked one is refused (probed with a raw TLS client: `GET /health` must not be answered);
//! - `--auto-tls` serves a self-signed certificate (etcdctl `--insecure-skip-tls-verify`);
//! - the `http://…` `:authority` repair still works on the decrypted stream (a raw HTTP/2 call);
//! - bad TLS flags stop start-up with a message naming the flag and the file or suite;
//! - differential: a real etcd 3.4 with the same certificates and flags gives the same outcome
//!   (served or refused) for every client, and for a TLS 1.2 client outside `--cipher-suites`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use support::{etcd_binary, etcdctl_binary, free_port, start_server_when, strata_binary, ServerProcess, TempDir};

/// How long a probe waits for the server's answer.
const PROBE_TIMEOUT_MILLIS: u64 = 5_000;

// ------------------------------------------------------------------------------- certificates

/// The certificates of one test, as PEM files in a temp directory.
struct Pki {
    directory: TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.directory.join(name).display().to_string()
    }

    fn generate() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
        };
        let directory = TempDir::new("tls-pki");
        let write = |name: &str, contents: &str| std::fs::write(directory.join(name), contents).expect("write PEM");
        let named = |common_name: &str, hosts: &[&str]| {
            let mut params = CertificateParams::new(hosts.iter().map(|host| host.to_string()).collect::<Vec<_>>()).expect("params");
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::OrganizationName, "strata tests");
            params.distinguished_name.push(DnType::CommonName, common_name);
            params
        };
        let authority = |common_name: &str| {
            let mut params = named(common_name, &[]);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            let key = KeyPair::generate().expect("CA key");
            let certificate = params.self_signed(&key).expect("CA certificate");
            (certificate.pem(), Issuer::new(params, key))
        };
        let (ca_pem, ca) = authority("strata test CA");
        let (other_ca_pem, other_ca) = authority("another CA");
        write("ca.pem", &ca_pem);
        write("other-ca.pem", &other_ca_pem);

        let issue = |name: &str, mut params: CertificateParams, usages: Vec<ExtendedKeyUsagePurpose>, serial: u64, issuer: &Issuer<'_, KeyPair>| {
            params.extended_key_usages = usages;
            params.serial_number = Some(SerialNumber::from(serial));
            let key = KeyPair::generate().expect("key");
            let certificate = params.signed_by(&key, issuer).expect("sign");
            write(&format!("{name}.pem"), &certificate.pem());
            write(&format!("{name}.key"), &key.serialize_pem());
        };
        let both = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        issue("server", named("strata test server", &["127.0.0.1", "localhost"]), both, 100, &ca);
        issue("alice", named("alice", &[]), vec![ExtendedKeyUsagePurpose::ClientAuth], 1001, &ca);
        issue("bob", named("bob", &[]), vec![ExtendedKeyUsagePurpose::ClientAuth], 2002, &ca);
        issue("mallory", named("mallory", &[]), vec![ExtendedKeyUsagePurpose::ClientAuth], 1001, &other_ca);

        let revocations = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2049, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(2002u64),
                revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        write("crl.pem", &revocations.signed_by(&ca).expect("sign CRL").pem().expect("CRL PEM"));
        Pki { directory }
    }
}

// ------------------------------------------------------------------------------------- probes

/// Accepts any server certificate (for `--auto-tls`), still checking the handshake signatures.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a raw TLS client connects: which CA it trusts (`None`: any server), which certificate it
/// presents, and, for TLS 1.2 only, the one cipher suite it offers.
#[derive(Clone, Default)]
struct Client {
    trusted_ca: Option<String>,
    certificate: Option<(String, String)>,
    tls12_suite: Option<rustls::CipherSuite>,
    alpn: Vec<Vec<u8>>,
}

impl Client {
    fn new(pki: &Pki, certificate: Option<&str>) -> Client {
        Client {
            trusted_ca: Some(pki.path("ca.pem")),
            certificate: certificate.map(|name| (pki.path(&format!("{name}.pem")), pki.path(&format!("{name}.key")))),
            ..Client::default()
        }
    }

    fn config(&self) -> Arc<rustls::ClientConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        let versions: &[&rustls::SupportedProtocolVersion] = match self.tls12_suite {
            Some(suite) => {
                provider.cipher_suites.retain(|supported| supported.suite() == suite);
                &[&rustls::version::TLS12]
            }
            None => rustls::ALL_VERSIONS,
        };
        let provider = Arc::new(provider);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions).expect("versions");
        let builder = match &self.trusted_ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in CertificateDer::pem_file_iter(path).expect("CA file") {
                    roots.add(certificate.expect("CA certificate")).expect("add CA");
                }
                builder.with_root_certificates(roots)
            }
            None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider))),
        };
        let mut config = match &self.certificate {
            Some((certificate, key)) => {
                let chain = CertificateDer::pem_file_iter(certificate).expect("certificate").collect::<Result<Vec<_>, _>>().expect("chain");
                builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).expect("key")).expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Arc::new(config)
    }

    /// Connects to `endpoint` (`https://host:port`) and completes the handshake.
    fn connect(&self, endpoint: &str) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
        let address = endpoint.trim_start_matches("https://");
        let tcp = TcpStream::connect(address).map_err(|error| format!("connect: {error}"))?;
        tcp.set_read_timeout(Some(Duration::from_millis(PROBE_TIMEOUT_MILLIS))).expect("timeout");
        tcp.set_write_timeout(Some(Duration::from_millis(PROBE_TIMEOUT_MILLIS))).expect("timeout");
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let name = ServerName::try_from(host.to_string()).map_err(|error| format!("server name: {error}"))?;
        let connection = rustls::ClientConnection::new(self.config(), name).map_err(|error| format!("client: {error}"))?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|error| format!("handshake: {error}"))?;
        }
        Ok(stream)
    }

    /// `GET /health` over HTTP/1.1 on a fresh connection: the answer's status line, or why there
    /// was none (the handshake failed, or the server closed or reset the connection).
    fn health(&self, endpoint: &str) -> Result<String, String> {
        let mut stream = self.connect(endpoint)?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map_err(|error| format!("write: {error}"))?;
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).to_string();
        match (answer.lines().next(), read) {
            (Some(status), _) if status.starts_with("HTTP/1.1 ") => Ok(status.to_string()),
            (_, Err(error)) => Err(format!("read: {error}")),
            _ => Err(format!("no HTTP answer: {answer:?}")),
        }
    }

    fn served(&self, endpoint: &str) -> bool {
        self.health(endpoint).is_ok_and(|status| status.starts_with("HTTP/1.1 200"))
    }
}

// ------------------------------------------------------------------------------------ servers

fn https_endpoint() -> String {
    format!("https://127.0.0.1:{}", free_port())
}

/// Strata on a fresh https:// client URL with `tls_args`; ready once `probe` gets /health.
fn start_strata_tls(data_dir: &Path, tls_args: &[String], probe: &Client) -> ServerProcess {
    let endpoint = https_endpoint();
    let mut command = Command::new(strata_binary());
    command.arg("--data-dir").arg(data_dir).arg("--listen-client-urls").arg(&endpoint).arg("--advertise-client-urls").arg(&endpoint);
    command.args(tls_args);
    let ready_endpoint = endpoint.clone();
    start_server_when(command, endpoint, data_dir, || probe.served(&ready_endpoint))
}

/// A real etcd on a fresh https:// client URL with `tls_args`; ready once `probe` gets /health.
fn start_etcd_tls(binary: &Path, data_dir: &Path, tls_args: &[String], probe: &Client) -> ServerProcess {
    let endpoint = https_endpoint();
    let peer = format!("http://127.0.0.1:{}", free_port());
    let mut command = Command::new(binary);
    command
        .args(["--name", "tls"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .arg(format!("--initial-cluster=tls={peer}"))
        .args(tls_args);
    let ready_endpoint = endpoint.clone();
    start_server_when(command, endpoint, data_dir, || probe.served(&ready_endpoint))
}

/// The flags of a server that requires client certificates signed by the test CA, not revoked.
fn client_auth_args(pki: &Pki) -> Vec<String> {
    vec![
        format!("--cert-file={}", pki.path("server.pem")),
        format!("--key-file={}", pki.path("server.key")),
        format!("--trusted-ca-file={}", pki.path("ca.pem")),
        "--client-cert-auth".to_string(),
        format!("--client-crl-file={}", pki.path("crl.pem")),
    ]
}

fn etcdctl(binary: &Path, endpoint: &str, tls_arguments: &[String], arguments: &[&str]) -> Output {
    Command::new(binary)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--dial-timeout=2s", "--command-timeout=3s"])
        .args(tls_arguments)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run etcdctl")
}

fn etcdctl_ok(binary: &Path, endpoint: &str, tls_arguments: &[String], arguments: &[&str]) -> String {
    let output = etcdctl(binary, endpoint, tls_arguments, arguments);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "etcdctl {arguments:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn certificate_arguments(pki: &Pki, name: &str) -> Vec<String> {
    vec![
        format!("--cacert={}", pki.path("ca.pem")),
        format!("--cert={}", pki.path(&format!("{name}.pem"))),
        format!("--key={}", pki.path(&format!("{name}.key"))),
    ]
}

// --------------------------------------------------------------------------------------- tests

#[test]
fn etcdctl_over_tls_and_client_certificates_checked_at_the_handshake() {
    let pki = Pki::generate();
    let temp = TempDir::new("tls");
    let alice = Client::new(&pki, Some("alice"));
    let server = start_strata_tls(&temp.join("data"), &client_auth_args(&pki), &alice);

    if let Some(binary) = etcdctl_binary() {
        let tls = certificate_arguments(&pki, "alice");
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["put", "greeting", "hello"]), "OK\n");
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["get", "greeting"]), "greeting\nhello\n");
        let status = etcdctl_ok(&binary, &server.endpoint, &tls, &["endpoint", "status", "-w", "json"]);
        assert!(status.contains(r#""revision":2"#) && status.contains(&server.endpoint), "{status}");
        // The same call by host:port (etcdctl then sends a bare authority).
        let host_port = server.endpoint.trim_start_matches("https://");
        let bare = etcdctl_ok(&binary, host_port, &tls, &["endpoint", "status", "-w", "json"]);
        assert_eq!(bare.replace(host_port, &server.endpoint), status);
        // No client certificate: refused.
        let refused = etcdctl(&binary, &server.endpoint, &[format!("--cacert={}", pki.path("ca.pem"))], &["get", "greeting"]);
        assert!(!refused.status.success(), "served without a client certificate");
    }

    assert_eq!(alice.health(&server.endpoint), Ok("HTTP/1.1 200 OK".to_string()));
    for (name, client) in [
        ("no certificate", Client::new(&pki, None)),
        ("a certificate from another CA", Client::new(&pki, Some("mallory"))),
        ("a revoked certificate", Client::new(&pki, Some("bob"))),
    ] {
        let outcome = client.health(&server.endpoint);
        assert!(outcome.is_err(), "a client with {name} was served: {outcome:?}");
    }
    let log = server.log();
    assert!(log.contains("rejected connection"), "refusals are logged:\n{log}");
    assert!(log.contains("serving client traffic securely"), "{log}");
    // Still serving the good client after the refusals.
    assert!(alice.served(&server.endpoint));
}

#[test]
fn trusted_ca_without_client_cert_auth_still_requires_a_certificate_as_etcd_3_4() {
    let pki = Pki::generate();
    let temp = TempDir::new("tls-ca-only");
    let args = vec![
        format!("--cert-file={}", pki.path("server.pem")),
        format!("--key-file={}", pki.path("server.key")),
        format!("--trusted-ca-file={}", pki.path("ca.pem")),
    ];
    let alice = Client::new(&pki, Some("alice"));
    let server = start_strata_tls(&temp.join("data"), &args, &alice);
    assert!(alice.served(&server.endpoint));
    // No CRL was given: bob's certificate is fine here.
    assert!(Client::new(&pki, Some("bob")).served(&server.endpoint));
    assert!(Client::new(&pki, None).health(&server.endpoint).is_err());
}

#[test]
fn server_only_tls_serves_clients_without_certificates() {
    let pki = Pki::generate();
    let temp = TempDir::new("tls-server-only");
    let args = vec![format!("--cert-file={}", pki.path("server.pem")), format!("--key-file={}", pki.path("server.key"))];
    let anonymous = Client::new(&pki, None);
    let server = start_strata_tls(&temp.join("data"), &args, &anonymous);
    assert!(Client::new(&pki, Some("mallory")).served(&server.endpoint), "an unrequested certificate is ignored");
    // A client that does not trust the server's CA refuses the server.
    let distrustful = Client { trusted_ca: Some(pki.path("other-ca.pem")), ..Client::default() };
    assert!(distrustful.health(&server.endpoint).is_err());
    if let Some(binary) = etcdctl_binary() {
        let tls = vec![format!("--cacert={}", pki.path("ca.pem"))];
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["put", "k", "v"]), "OK\n");
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["get", "k", "--print-value-only"]), "v\n");
    }
}

#[test]
fn auto_tls_serves_a_self_signed_certificate() {
    let pki = Pki::generate();
    let temp = TempDir::new("tls-auto");
    let any_server = Client { trusted_ca: None, ..Client::default() };
    let server = start_strata_tls(&temp.join("data"), &["--auto-tls".to_string()], &any_server);
    assert!(server.log().contains("--auto-tls"), "{}", server.log());
    // Not signed by the test CA.
    assert!(Client::new(&pki, None).health(&server.endpoint).is_err());
    if let Some(binary) = etcdctl_binary() {
        // Without a CA file etcdctl 3.4 speaks TLS only when told not to use plaintext.
        let insecure = vec!["--insecure-transport=false".to_string(), "--insecure-skip-tls-verify".to_string()];
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &insecure, &["put", "auto", "tls"]), "OK\n");
        assert_eq!(etcdctl_ok(&binary, &server.endpoint, &insecure, &["get", "auto", "--print-value-only"]), "tls\n");
        let checked = etcdctl(&binary, &server.endpoint, &[format!("--cacert={}", pki.path("ca.pem"))], &["get", "auto"]);
        assert!(!checked.status.success(), "etcdctl trusted a self-signed certificate");
    }
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn the_authority_repair_works_on_the_decrypted_stream() {
    use prost::Message;
    let pki = Pki::generate();
    let temp = TempDir::new("tls-authority");
    let alice = Client::new(&pki, Some("alice"));
    let server = start_strata_tls(&temp.join("data"), &client_auth_args(&pki), &alice);

    // A gRPC Range call whose :authority is a URL, as etcdctl's endpoint commands send it.
    let h2 = Client { alpn: vec![b"h2".to_vec()], ..alice.clone() };
    let mut stream = h2.connect(&server.endpoint).expect("TLS handshake");
    let mut encoder = loona_hpack::Encoder::new();
    let authority = server.endpoint.replace("https://", "http://");
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":path", b"/etcdserverpb.KV/Range"),
        (b":authority", authority.as_bytes()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ];
    let block = encoder.encode(headers);
    let request = strata_etcd_api::pb::etcdserverpb::RangeRequest { key: b"missing".to_vec(), ..Default::default() }.encode_to_vec();
    let mut message = vec![0];
    message.extend_from_slice(&(request.len() as u32).to_be_bytes());
    message.extend_from_slice(&request);
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    bytes.extend(frame(0x1, 0x4, 1, &block)); // HEADERS, END_HEADERS
    bytes.extend(frame(0x0, 0x1, 1, &message)); // DATA, END_STREAM
    stream.write_all(&bytes).expect("send the call");

    // Read frames until stream 1's first HEADERS (the answer) or its RST_STREAM (the refusal).
    let mut decoder = loona_hpack::Decoder::new();
    let mut received = Vec::new();
    let status = loop {
        let (kind, stream_id, payload) = read_frame(&mut stream, &mut received);
        match (kind, stream_id) {
            (0x3, 1) => panic!("the call was reset (RST_STREAM): the :authority was not repaired"),
            (0x1, 1) => {
                let fields = decoder.decode(&payload).expect("HPACK");
                break fields.into_iter().find(|(name, _)| name == b":status").map(|(_, value)| value);
            }
            (0x1, _) => {
                decoder.decode(&payload).expect("HPACK");
            }
            _ => {}
        }
    };
    assert_eq!(status.as_deref(), Some(&b"200"[..]));
}

/// Reads one HTTP/2 frame (type, stream id, payload), buffering what follows it in `received`.
fn read_frame(stream: &mut impl Read, received: &mut Vec<u8>) -> (u8, u32, Vec<u8>) {
    loop {
        if received.len() >= 9 {
            let length = usize::from(received[0]) << 16 | usize::from(received[1]) << 8 | usize::from(received[2]);
            if received.len() >= 9 + length {
                let frame: Vec<u8> = received.drain(..9 + length).collect();
                let stream_id = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
                return (frame[3], stream_id, frame[9..].to_vec());
            }
        }
        let mut chunk = [0u8; 16384];
        let count = stream.read(&mut chunk).expect("read from the server");
        assert!(count > 0, "the server closed the connection");
        received.extend_from_slice(&chunk[..count]);
    }
}

#[test]
fn differential_the_same_clients_are_served_and_refused_as_by_etcd() {
    let Some(etcd_path) = etcd_binary() else { return };
    let pki = Pki::generate();
    let temp = TempDir::new("tls-differential");
    let mut args = client_auth_args(&pki);
    args.push("--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string());
    let alice = Client::new(&pki, Some("alice"));
    let strata = start_strata_tls(&temp.join("strata"), &args, &alice);
    let etcd = start_etcd_tls(&etcd_path, &temp.join("etcd"), &args, &alice);

    let tls12 = |suite| Client { tls12_suite: Some(suite), ..alice.clone() };
    let cases = [
        ("alice", alice.clone(), true),
        ("no certificate", Client::new(&pki, None), false),
        ("a certificate from another CA", Client::new(&pki, Some("mallory")), false),
        ("a revoked certificate", Client::new(&pki, Some("bob")), false),
        ("TLS 1.2 with a listed suite", tls12(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), true),
        ("TLS 1.2 with an unlisted suite", tls12(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), false),
        ("a client that does not trust the server's CA", Client { trusted_ca: Some(pki.path("other-ca.pem")), ..alice.clone() }, false),
    ];
    for (name, client, expected) in cases {
        let (on_strata, on_etcd) = (client.health(&strata.endpoint), client.health(&etcd.endpoint));
        println!("{name}: strata {on_strata:?}, etcd {on_etcd:?}");
        assert_eq!(on_etcd.is_ok(), expected, "etcd and {name}: {on_etcd:?}");
        assert_eq!(on_strata.is_ok(), expected, "Strata and {name}: {on_strata:?}");
        if let (Ok(strata_status), Ok(etcd_status)) = (&on_strata, &on_etcd) {
            assert_eq!(strata_status, etcd_status, "{name}");
        }
    }

    if let Some(binary) = etcdctl_binary() {
        let tls = certificate_arguments(&pki, "alice");
        for server in [&strata, &etcd] {
            assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["put", "k", "v"]), "OK\n");
            assert_eq!(etcdctl_ok(&binary, &server.endpoint, &tls, &["get", "k"]), "k\nv\n");
            let revoked = etcdctl(&binary, &server.endpoint, &certificate_arguments(&pki, "bob"), &["get", "k"]);
            assert!(!revoked.status.success(), "{} served a revoked certificate", server.endpoint);
        }
    }
}

/// Runs `strata` with `args` until it exits (it must, within 30 s).
fn run_until_exit(args: &[String]) -> Output {
    let temp = TempDir::new("tls-flags");
    let mut child = Command::new(strata_binary())
        .arg("--data-dir")
        .arg(temp.join("data"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn bad_tls_flags_stop_start_up_naming_the_flag_and_the_file() {
    let pki = Pki::generate();
    let https = format!("--listen-client-urls={}", https_endpoint());
    let cert = format!("--cert-file={}", pki.path("server.pem"));
    let key = format!("--key-file={}", pki.path("server.key"));
    let missing = pki.path("missing.pem");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![https.clone()], "--cert-file, --key-file".to_string()),
        (vec![https.clone(), format!("--cert-file={missing}"), key.clone()], format!("--cert-file: cannot read {missing}")),
        (vec![https.clone(), cert.clone(), format!("--key-file={}", pki.path("server.pem"))], format!("--key-file: {}", pki.path("server.pem"))),
        (
            vec![https.clone(), cert.clone(), key.clone(), "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_NO_SUCH_SUITE".to_string()],
            "unexpected TLS cipher suite \"TLS_NO_SUCH_SUITE\"".to_string(),
        ),
        (
            vec![
                https.clone(),
                cert.clone(),
                key.clone(),
                format!("--trusted-ca-file={}", pki.path("ca.pem")),
                format!("--client-crl-file={}", pki.path("ca.pem")),
            ],
            format!("--client-crl-file: {}", pki.path("ca.pem")),
        ),
        (vec![https.clone(), cert.clone(), key.clone(), "--client-cert-auth".to_string()], "--client-cert-auth needs --trusted-ca-file".to_string()),
        (
            vec![format!("--peer-cert-file={}", pki.path("server.key")), key.replace("--key", "--peer-key")],
            format!("--peer-cert-file: {}", pki.path("server.key")),
        ),
        (vec![format!("--peer-trusted-ca-file={missing}")], format!("--peer-trusted-ca-file: cannot read {missing}")),
        (vec![format!("--peer-crl-file={}", pki.path("server.pem"))], format!("--peer-crl-file: {}", pki.path("server.pem"))),
        (vec![format!("--peer-key-file={}", pki.path("server.key"))], "--peer-cert-file and --peer-key-file must be given together".to_string()),
    ];
    for (args, expected) in cases {
        let output = run_until_exit(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "strata {args:?} started");
        assert!(stderr.contains(&expected), "strata {args:?}: expected {expected:?} in:\n{stderr}");
    }
}

#[test]
fn valid_peer_tls_flags_are_kept_with_a_notice() {
    let pki = Pki::generate();
    let temp = TempDir::new("tls-peer");
    let anonymous = Client::new(&pki, None);
    let args = vec![
        format!("--cert-file={}", pki.path("server.pem")),
        format!("--key-file={}", pki.path("server.key")),
        format!("--peer-cert-file={}", pki.path("server.pem")),
        format!("--peer-key-file={}", pki.path("server.key")),
        format!("--peer-trusted-ca-file={}", pki.path("ca.pem")),
        format!("--peer-crl-file={}", pki.path("crl.pem")),
        "--peer-client-cert-auth".to_string(),
    ];
    let server = start_strata_tls(&temp.join("data"), &args, &anonymous);
    let log = server.log();
    assert!(
        log.contains("--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-crl-file, --peer-client-cert-auth checked and kept for replication"),
        "{log}"
    );
}
