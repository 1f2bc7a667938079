//! TLS on `https://` client URLs, as etcd's flags configure it: `--cert-file`/`--key-file` (or
//! `--auto-tls`, a self-signed certificate generated at start), `--trusted-ca-file` and
//! `--client-cert-auth` (either one makes a client certificate signed by the trusted CA a
//! condition of the handshake, as in etcd 3.4), `--client-crl-file` (revoked client certificates
//! are refused) and `--cipher-suites` (etcd's names for the TLS 1.2 suites; TLS 1.3 suites are
//! always on, as in Go). The `--peer-*` flags are only validated here and kept for replication.
//!
//! Each accepted TCP connection is handshaken on its own task (a slow or hostile client holds up
//! no other) and handed to the server as a [`ClientTlsStream`], which tells the server the
//! common name of a verified client certificate ([`ClientConnectInfo::certificate_user`]).
//!
//! Invariants: rustls with the *ring* provider only; a connection reaches the server only after a
//! complete handshake; a client certificate's name is reported only if the verifier checked it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CipherSuite, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::authority::AuthorityStream;
use crate::flags::ServeArgs;

/// A client must finish its TLS handshake within this time, or it is dropped.
pub const TLS_HANDSHAKE_TIMEOUT_MILLIS: u64 = 10_000;
/// Handshaken connections waiting for the server to take them.
pub const TLS_ACCEPTED_QUEUE_CONNECTIONS: usize = 128;
/// After a failed `accept` (e.g. out of file descriptors), wait this long before the next one.
pub const ACCEPT_RETRY_DELAY_MILLIS: u64 = 50;

/// etcd's (Go's) cipher suite names and the rustls suite each one is, if rustls implements it.
/// Go also takes the CHACHA20 names without `_SHA256`, and the TLS 1.3 names (always enabled).
const CIPHER_SUITE_NAMES: &[(&str, Option<CipherSuite>)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)),
    ("TLS_AES_128_GCM_SHA256", Some(CipherSuite::TLS13_AES_128_GCM_SHA256)),
    ("TLS_AES_256_GCM_SHA384", Some(CipherSuite::TLS13_AES_256_GCM_SHA384)),
    ("TLS_CHACHA20_POLY1305_SHA256", Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)),
    // etcd accepts these; rustls implements none of them (CBC, RC4, 3DES, RSA key exchange).
    ("TLS_RSA_WITH_RC4_128_SHA", None),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", None),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", None),
];

/// What `serve` needs before it listens: the TLS configuration if any client or metrics URL is
/// `https://`, after checking the `--peer-*` TLS flags (kept for replication, named in a notice).
pub fn configure(args: &ServeArgs, client_urls: &[String], metrics_urls: &[String]) -> Result<Option<Arc<ServerConfig>>, String> {
    let peer_flags = validate_peer_flags(args)?;
    if !peer_flags.is_empty() {
        info!("{} checked and kept for replication; this Strata release has no peer traffic, so they have no effect yet", peer_flags.join(", "));
    }
    let secure = client_urls.iter().chain(metrics_urls).any(|url| url.starts_with("https://"));
    if !secure {
        if !args.cert_file.is_empty() || args.auto_tls {
            warn!("TLS flags are given but no client URL is https://; serving without TLS");
        }
        return Ok(None);
    }
    client_server_config(args, &url_hosts(client_urls)).map(Some)
}

/// The server side of TLS for every `https://` client (and metrics) URL.
pub fn client_server_config(args: &ServeArgs, hosts: &[String]) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(crypto_provider(&args.cipher_suites)?);
    let (chain, key) = if !args.cert_file.is_empty() || !args.key_file.is_empty() {
        if args.auto_tls {
            warn!("ignoring --auto-tls since --cert-file and --key-file are given");
        }
        (read_certificates("--cert-file", &args.cert_file)?, read_private_key("--key-file", &args.key_file)?)
    } else if args.auto_tls {
        let (chain, key) = self_signed_certificate(hosts)?;
        info!(hosts = ?hosts, "--auto-tls: serving client URLs with a self-signed certificate generated at start");
        (chain, key)
    } else {
        return Err("TLS key/cert (--cert-file, --key-file) must be provided for https:// client URLs (or use --auto-tls)".to_string());
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|error| format!("--cipher-suites: {error}"))?;
    let verifies_clients = args.client_cert_auth || !args.trusted_ca_file.is_empty();
    let builder = if verifies_clients {
        if args.trusted_ca_file.is_empty() {
            return Err("--client-cert-auth needs --trusted-ca-file, the CA that signs client certificates".to_string());
        }
        let mut roots = RootCertStore::empty();
        for certificate in read_certificates("--trusted-ca-file", &args.trusted_ca_file)? {
            roots.add(certificate).map_err(|error| format!("--trusted-ca-file: {}: {error}", args.trusted_ca_file))?;
        }
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if !args.client_crl_file.is_empty() {
            // As etcd: only the client's own certificate is looked up in the list, and a
            // certificate the list does not cover is not refused.
            verifier = verifier
                .with_crls(read_revocation_lists("--client-crl-file", &args.client_crl_file)?)
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        let verifier = verifier.build().map_err(|error| format!("--trusted-ca-file: {}: {error}", args.trusted_ca_file))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        if !args.client_crl_file.is_empty() {
            warn!("--client-crl-file has no effect without --client-cert-auth and --trusted-ca-file");
        }
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| format!("--cert-file/--key-file: {error}"))?;
    // gRPC over HTTP/2, and HTTP/1.1 for /health, /version and /metrics.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The ring provider, its TLS 1.2 suites cut to `--cipher-suites` (empty: all of them).
fn crypto_provider(cipher_suites: &str) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let names: Vec<&str> = cipher_suites.split(',').map(str::trim).filter(|name| !name.is_empty()).collect();
    if names.is_empty() {
        return Ok(provider);
    }
    let mut chosen: Vec<CipherSuite> = Vec::new();
    for name in &names {
        match CIPHER_SUITE_NAMES.iter().find(|(known, _)| known == name) {
            None => {
                return Err(format!("--cipher-suites: unexpected TLS cipher suite {name:?} (use etcd's names, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)"))
            }
            Some((_, None)) => warn!("--cipher-suites: {name} is not implemented by Strata's TLS library (rustls); ignored"),
            Some((_, Some(suite))) => chosen.push(*suite),
        }
    }
    let is_tls13 = |suite: &SupportedCipherSuite| matches!(suite, SupportedCipherSuite::Tls13(_));
    provider.cipher_suites.retain(|suite| is_tls13(suite) || chosen.contains(&suite.suite()));
    if !provider.cipher_suites.iter().any(|suite| !is_tls13(suite)) {
        warn!("--cipher-suites names no TLS 1.2 suite that Strata implements: only TLS 1.3 clients can connect");
    }
    Ok(provider)
}

/// `--auto-tls`: an ECDSA P-256 certificate for the client URLs' hosts, signed by its own key.
fn self_signed_certificate(hosts: &[String]) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key = rcgen::KeyPair::generate().map_err(|error| format!("--auto-tls: cannot generate a key: {error}"))?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(|error| format!("--auto-tls: {error}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "etcd");
    params.distinguished_name.push(rcgen::DnType::CommonName, "strata");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = params.self_signed(&key).map_err(|error| format!("--auto-tls: cannot sign the certificate: {error}"))?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|error| format!("--auto-tls: {error}"))?;
    Ok((vec![certificate.der().clone()], key))
}

/// The hosts of the client URLs, for `--auto-tls`'s certificate (`[::1]` → `::1`).
pub fn url_hosts(urls: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .filter_map(|url| url.split_once("://").map(|(_, rest)| rest))
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .map(|host_port| host_port.rsplit_once(':').map_or(host_port, |(host, _)| host))
        .map(|host| host.trim_start_matches('[').trim_end_matches(']').to_string())
        .filter(|host| !host.is_empty())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn read_file(flag: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|error| format!("{flag}: cannot read {path}: {error}"))
}

fn read_certificates(flag: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(flag, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{flag}: {path}: not a PEM certificate file: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("{flag}: {path}: no PEM certificate found"));
    }
    Ok(certificates)
}

fn read_private_key(flag: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(flag, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| format!("{flag}: {path}: no PEM private key found: {error}"))
}

/// A CRL file, PEM (any number of lists) or DER (one), as Go's `x509.ParseCRL` takes it.
fn read_revocation_lists(flag: &str, path: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = read_file(flag, path)?;
    let lists = if bytes.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("{flag}: {path}: not a PEM revocation list: {error}"))?
    } else {
        vec![CertificateRevocationListDer::from(bytes)]
    };
    // A file that is no list at all stops start-up (the verifier parses the rest at start too).
    for list in &lists {
        check_revocation_list(list).map_err(|error| format!("{flag}: {path}: not a certificate revocation list: {error}"))?;
    }
    if lists.is_empty() {
        return Err(format!("{flag}: {path}: no revocation list found"));
    }
    Ok(lists)
}

/// Checks that `list` has a DER certificate revocation list's outer structure: a SEQUENCE that
/// holds the TBSCertList SEQUENCE (its entries and signature are the verifier's to judge).
fn check_revocation_list(list: &CertificateRevocationListDer<'_>) -> Result<(), String> {
    let (tag, content, rest) = der_element(list).ok_or("not DER")?;
    if tag != DER_SEQUENCE || !rest.is_empty() {
        return Err("not a DER SEQUENCE".to_string());
    }
    let (tag, _, _) = der_element(content).ok_or("truncated")?;
    if tag != DER_SEQUENCE {
        return Err("no TBSCertList".to_string());
    }
    Ok(())
}

/// Validates the `--peer-*` TLS flags (every file is read and parsed; errors name the flag and the
/// file) and returns the ones given, for the notice that they are kept for replication.
pub fn validate_peer_flags(args: &ServeArgs) -> Result<Vec<&'static str>, String> {
    let mut given = Vec::new();
    if !args.peer_cert_file.is_empty() {
        read_certificates("--peer-cert-file", &args.peer_cert_file)?;
        given.push("--peer-cert-file");
    }
    if !args.peer_key_file.is_empty() {
        read_private_key("--peer-key-file", &args.peer_key_file)?;
        given.push("--peer-key-file");
    }
    if !args.peer_trusted_ca_file.is_empty() {
        let mut roots = RootCertStore::empty();
        for certificate in read_certificates("--peer-trusted-ca-file", &args.peer_trusted_ca_file)? {
            roots.add(certificate).map_err(|error| format!("--peer-trusted-ca-file: {}: {error}", args.peer_trusted_ca_file))?;
        }
        given.push("--peer-trusted-ca-file");
    }
    if !args.peer_crl_file.is_empty() {
        read_revocation_lists("--peer-crl-file", &args.peer_crl_file)?;
        given.push("--peer-crl-file");
    }
    if args.peer_cert_file.is_empty() != args.peer_key_file.is_empty() {
        return Err("--peer-cert-file and --peer-key-file must be given together".to_string());
    }
    if args.peer_client_cert_auth {
        given.push("--peer-client-cert-auth");
    }
    if args.peer_auto_tls {
        given.push("--peer-auto-tls");
    }
    Ok(given)
}

/// What the server learns about a TLS client connection; tonic puts it in every request's
/// extensions.
#[derive(Clone, Debug)]
pub struct ClientConnectInfo {
    pub remote_address: Option<SocketAddr>,
    pub local_address: Option<SocketAddr>,
    /// The common name of the client's certificate, if the handshake verified one.
    pub certificate_user: Option<String>,
}

/// A client connection after its TLS handshake.
pub struct ClientTlsStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    connect_info: ClientConnectInfo,
}

impl AsyncRead for ClientTlsStream {
    fn poll_read(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for ClientTlsStream {
    fn poll_write(mut self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, context: &mut Context<'_>, buffers: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for ClientTlsStream {
    type ConnectInfo = ClientConnectInfo;

    fn connect_info(&self) -> ClientConnectInfo {
        self.connect_info.clone()
    }
}

/// The connections of `listener`, each handshaken on its own task; refused handshakes are logged
/// as etcd logs them and never reach the server. The accept loop ends with the returned stream.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<Result<AuthorityStream<ClientTlsStream>, io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(TLS_ACCEPTED_QUEUE_CONNECTIONS);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = sender.closed() => return,
            };
            let (stream, remote_address) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "cannot accept a client connection");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MILLIS)).await;
                    continue;
                }
            };
            // Small responses must not wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            let local_address = stream.local_addr().ok();
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MILLIS), acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => return warn!(remote_addr = %remote_address, %error, "rejected connection"),
                    Err(_) => return warn!(remote_addr = %remote_address, "rejected connection: the TLS handshake timed out"),
                };
                let certificate_user = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(|certificate| common_name(certificate));
                let connect_info = ClientConnectInfo { remote_address: Some(remote_address), local_address, certificate_user };
                let _ = sender.send(Ok(AuthorityStream::new(ClientTlsStream { inner: stream, connect_info }))).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

const DER_SEQUENCE: u8 = 0x30;
const DER_SET: u8 = 0x31;
const DER_OBJECT_IDENTIFIER: u8 = 0x06;
const DER_CONTEXT_0: u8 = 0xa0;
const DER_UTF8_STRING: u8 = 0x0c;
const DER_PRINTABLE_STRING: u8 = 0x13;
const DER_TELETEX_STRING: u8 = 0x14;
const DER_IA5_STRING: u8 = 0x16;
const DER_BMP_STRING: u8 = 0x1e;
/// id-at-commonName, 2.5.4.3.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// One DER element: its tag, its content, and what follows it. Only the short tag form.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let length_bytes = usize::from(first & 0x7f);
        if length_bytes == 0 || length_bytes > std::mem::size_of::<usize>() || rest.len() < length_bytes {
            return None;
        }
        let (length, after) = rest.split_at(length_bytes);
        rest = after;
        length.iter().fold(0usize, |total, byte| total << 8 | usize::from(*byte))
    };
    if rest.len() < length {
        return None;
    }
    let (content, after) = rest.split_at(length);
    Some((tag, content, after))
}

/// The subject common name of a DER certificate (the last one, as Go reads it), if it has one.
pub fn common_name(certificate: &[u8]) -> Option<String> {
    let (DER_SEQUENCE, certificate, _) = der_element(certificate)? else { return None };
    let (DER_SEQUENCE, tbs, _) = der_element(certificate)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = der_element(rest)?;
    if tag == DER_CONTEXT_0 {
        rest = after; // the version
    }
    // serialNumber, signature, issuer, validity: then the subject.
    for _ in 0..4 {
        rest = der_element(rest)?.2;
    }
    let (DER_SEQUENCE, mut names, _) = der_element(rest)? else { return None };
    let mut found = None;
    while !names.is_empty() {
        let (tag, set, after) = der_element(names)?;
        names = after;
        if tag != DER_SET {
            return None;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (DER_SEQUENCE, attribute, after) = der_element(attributes)? else { return None };
            attributes = after;
            let (DER_OBJECT_IDENTIFIER, oid, value) = der_element(attribute)? else { return None };
            if oid != OID_COMMON_NAME {
                continue;
            }
            let (tag, value, _) = der_element(value)?;
            found = match tag {
                DER_UTF8_STRING | DER_PRINTABLE_STRING | DER_TELETEX_STRING | DER_IA5_STRING => Some(String::from_utf8_lossy(value).into_owned()),
                DER_BMP_STRING => {
                    let units: Vec<u16> = value.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
                    Some(String::from_utf16_lossy(&units))
                }
                _ => found,
            };
        }
    }
    found.filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(common_name: Option<&str>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "strata tests");
        if let Some(name) = common_name {
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_common_name_is_read_from_the_subject() {
        assert_eq!(common_name(&certificate(Some("alice"))), Some("alice".to_string()));
        assert_eq!(common_name(&certificate(Some("bøb with spaces"))), Some("bøb with spaces".to_string()));
        assert_eq!(common_name(&certificate(None)), None);
    }

    #[test]
    fn malformed_certificates_have_no_common_name() {
        let good = certificate(Some("alice"));
        for length in 0..good.len() {
            // Every truncation either fails or, at most, still finds a name in what is left.
            let _ = common_name(&good[..length]);
        }
        assert_eq!(common_name(b""), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]), None);
    }

    #[test]
    fn cipher_suites_take_etcds_names() {
        let tls12 = |provider: &CryptoProvider| {
            provider.cipher_suites.iter().filter(|suite| matches!(suite, SupportedCipherSuite::Tls12(_))).map(|suite| suite.suite()).collect::<Vec<_>>()
        };
        assert_eq!(tls12(&crypto_provider("").unwrap()).len(), 6);
        let provider = crypto_provider("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305").unwrap();
        let mut chosen = tls12(&provider);
        chosen.sort_by_key(|suite| u16::from(*suite));
        assert_eq!(chosen, vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]);
        assert_eq!(provider.cipher_suites.len(), 5, "the three TLS 1.3 suites stay");
        // Known to etcd but not implemented: ignored with a warning.
        assert_eq!(tls12(&crypto_provider("TLS_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").unwrap()).len(), 1);
        let error = crypto_provider("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_BOGUS").unwrap_err();
        assert!(error.contains("unexpected TLS cipher suite \"TLS_BOGUS\""), "{error}");
    }

    #[test]
    fn auto_tls_hosts_come_from_the_urls() {
        let urls = vec!["https://127.0.0.1:2379".to_string(), "https://localhost:2380/".to_string(), "https://[::1]:2379".to_string()];
        assert_eq!(url_hosts(&urls), vec!["127.0.0.1", "::1", "localhost"]);
        let (chain, _) = self_signed_certificate(&url_hosts(&urls)).unwrap();
        assert_eq!(common_name(&chain[0]), Some("strata".to_string()));
    }
}
