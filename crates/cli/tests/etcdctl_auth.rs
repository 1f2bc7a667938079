//! etcd's own command-line client, unchanged, manages auth on a Strata node: `user
//! add/get/list/delete/passwd/grant-role/revoke-role`, `role
//! add/get/list/delete/grant-permission/revoke-permission` (single keys, ranges, `--prefix`,
//! `--from-key`), `auth enable/disable`, and `--user NAME:PASSWORD` on put and get. Each command
//! runs against Strata and against a real etcd 3.4, and the two must print the same (stdout,
//! stderr without the client's timestamped retry logs, and the exit status). etcdctl 3.4 has no
//! `auth status` (etcd 3.5's AuthStatus is covered by the gRPC differential test).
//!
//! Another test serves https with `--client-cert-auth` (certificates made in the test with
//! rcgen) and checks, against etcd too, that a verified client certificate's common name is the
//! user when a request carries no token, and that a token wins over it.
//!
//! A last test restarts Strata (SIGTERM, then SIGKILL) and checks that users, roles,
//! permissions and the enabled flag survive, while simple tokens do not (they live in memory,
//! as etcd's).

mod support;

use std::process::{Command, Output, Stdio};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{etcd_binary, start_etcd_with_args, start_strata, ServerProcess, TempDir};

/// Both servers hash with this bcrypt cost (etcd's `--bcrypt-cost`) to keep the test fast.
const BCRYPT_COST_FLAG: &str = "--bcrypt-cost=4";


/// What one etcdctl run printed.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    success: bool,
    stdout: String,
    /// Without the client library's JSON log lines (they carry timestamps).
    stderr: String,
}

struct Etcdctl {
    binary: std::path::PathBuf,
    endpoint: String,
    /// Given before the command's own arguments (`--cacert`, `--cert`, `--key`).
    tls: Vec<String>,
}

impl Etcdctl {
    fn run(&self, arguments: &[&str], stdin: Option<&str>) -> Printed {
        let mut command = Command::new(&self.binary);
        command.env("ETCDCTL_API", "3").arg(format!("--endpoints={}", self.endpoint)).arg("--dial-timeout=10s").args(&self.tls).args(arguments);
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start etcdctl");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(input.as_bytes()).expect("write etcdctl's stdin");
        }
        let output: Output = child.wait_with_output().expect("etcdctl output");
        let stderr = String::from_utf8_lossy(&output.stderr).lines().filter(|line| !line.starts_with("{\"level\"")).map(|line| format!("{line}\n")).collect();
        Printed { success: output.status.success(), stdout: String::from_utf8_lossy(&output.stdout).to_string(), stderr }
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, arguments: &[&str]) -> String {
        let printed = self.run(arguments, None);
        assert!(printed.success, "etcdctl {arguments:?} failed: {printed:?}");
        printed.stdout
    }

    /// Runs and requires failure; returns stderr.
    fn fails(&self, arguments: &[&str]) -> String {
        let printed = self.run(arguments, None);
        assert!(!printed.success, "etcdctl {arguments:?} succeeded: {printed:?}");
        printed.stderr
    }
}

/// One command of the script, with its stdin and, where the test pins it, the stdout expected.
struct Run {
    arguments: &'static [&'static str],
    stdin: Option<&'static str>,
    expected: Option<&'static str>,
}

fn run(arguments: &'static [&'static str]) -> Run {
    Run { arguments, stdin: None, expected: None }
}

fn run_printing(arguments: &'static [&'static str], expected: &'static str) -> Run {
    Run { arguments, stdin: None, expected: Some(expected) }
}

const ROOT: &str = "--user=root:rootpw";

fn script() -> Vec<Run> {
    vec![
        run_printing(&["user", "add", "root", "--new-user-password=rootpw"], "User root created\n"),
        run_printing(&["user", "add", "alice:alicepw"], "User alice created\n"),
        run(&["user", "add", "carol", "--no-password"]),
        run(&["user", "add", "alice:again"]),
        run_printing(&["user", "list"], "alice\ncarol\nroot\n"),
        run_printing(&["role", "add", "reader"], "Role reader created\n"),
        run(&["role", "add", "writer"]),
        run(&["role", "add", "reader"]),
        run_printing(&["role", "list"], "reader\nwriter\n"),
        run(&["role", "grant-permission", "reader", "read", "foo"]),
        run(&["role", "grant-permission", "reader", "read", "pre/", "--prefix"]),
        run(&["role", "grant-permission", "reader", "readwrite", "a", "b"]),
        run(&["role", "grant-permission", "writer", "readwrite", "z", "--from-key"]),
        run(&["role", "grant-permission", "writer", "write", "w/", "--prefix"]),
        run(&["role", "grant-permission", "nobody", "read", "foo"]),
        run(&["role", "get", "reader"]),
        run(&["role", "get", "writer"]),
        run(&["role", "get", "nobody"]),
        run(&["user", "grant-role", "alice", "reader"]),
        run(&["user", "grant-role", "alice", "writer"]),
        run(&["user", "grant-role", "alice", "nobody"]),
        run_printing(&["user", "get", "alice"], "User: alice\nRoles: reader writer\n"),
        run(&["user", "get", "alice", "--detail"]),
        run(&["user", "revoke-role", "alice", "writer"]),
        run(&["user", "revoke-role", "alice", "writer"]),
        run(&["user", "get", "alice"]),
        run(&["role", "revoke-permission", "reader", "a", "b"]),
        run(&["role", "revoke-permission", "reader", "pre/", "--prefix"]),
        run(&["role", "revoke-permission", "reader", "nothing"]),
        run_printing(&["role", "get", "reader"], "Role reader\nKV Read:\n\tfoo\nKV Write:\n"),
        Run { arguments: &["user", "passwd", "alice", "--interactive=false"], stdin: Some("newpw\n"), expected: Some("Password updated\n") },
        run(&["user", "passwd", "nobody", "--interactive=false"]),
        run(&["put", "foo", "before"]),
        // etcdctl adds the root role and grants it when root lacks it, then enables.
        run_printing(&["auth", "enable"], "Authentication Enabled\n"),
        run(&["role", "list"]),
        run(&["put", "foo", "bar"]),
        run(&["get", "foo"]),
        run_printing(&[ROOT, "put", "foo", "bar"], "OK\n"),
        run_printing(&[ROOT, "get", "foo"], "foo\nbar\n"),
        run_printing(&["--user=alice:newpw", "get", "foo"], "foo\nbar\n"),
        run(&["--user=alice:newpw", "put", "foo", "x"]),
        run(&["--user=alice:alicepw", "get", "foo"]),
        run(&["--user=alice:newpw", "user", "list"]),
        run(&["--user=alice:newpw", "user", "get", "alice"]),
        run(&[ROOT, "user", "list"]),
        run(&[ROOT, "user", "delete", "root"]),
        run(&[ROOT, "role", "delete", "writer"]),
        run(&[ROOT, "role", "list"]),
        run(&[ROOT, "user", "delete", "carol"]),
        run(&[ROOT, "user", "delete", "carol"]),
        run(&[ROOT, "user", "list"]),
        run_printing(&[ROOT, "auth", "disable"], "Authentication Disabled\n"),
        run_printing(&["get", "foo"], "foo\nbar\n"),
        run(&["role", "delete", "reader"]),
        run(&["user", "get", "alice"]),
        run(&["user", "delete", "alice"]),
        run(&["user", "list"]),
    ]
}

#[test]
fn etcdctl_manages_auth_as_on_etcd() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("etcdctl-auth");
    let strata = start_strata(&temp.join("strata"), &["--name", "ctl-auth", BCRYPT_COST_FLAG]);
    let etcd = start_etcd_with_args(&etcd, &temp.join("etcd"), &[BCRYPT_COST_FLAG]);
    let on_strata = Etcdctl { binary: binary.clone(), endpoint: strata.endpoint.clone(), tls: Vec::new() };
    let on_etcd = Etcdctl { binary, endpoint: etcd.endpoint.clone(), tls: Vec::new() };
    let mut differences = Vec::new();
    let script = script();
    for command in &script {
        let strata = on_strata.run(command.arguments, command.stdin);
        let etcd = on_etcd.run(command.arguments, command.stdin);
        if let Some(expected) = command.expected {
            assert!(strata.success && strata.stdout == expected, "etcdctl {:?} on Strata: {strata:?}, expected {expected:?}", command.arguments);
        }
        if strata != etcd {
            differences.push(format!("etcdctl {:?}\n  strata: {strata:?}\n  etcd:   {etcd:?}", command.arguments));
        }
    }
    assert!(differences.is_empty(), "{} of {} commands differ:\n{}", differences.len(), script.len(), differences.join("\n"));
}

async fn connect(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect")
}

/// Authenticates over gRPC; the simple token.
async fn token(endpoint: &str, name: &str, password: &str) -> String {
    let mut auth = pb::auth_client::AuthClient::new(connect(endpoint).await);
    let request = pb::AuthenticateRequest { name: name.into(), password: password.into() };
    auth.authenticate(request).await.expect("authenticate").into_inner().token
}

/// A Range of `key` with `token`: its error message, or `ok`.
async fn get_with_token(endpoint: &str, key: &str, token: &str) -> String {
    let mut kv = pb::kv_client::KvClient::new(connect(endpoint).await);
    let mut request = tonic::Request::new(pb::RangeRequest { key: key.as_bytes().to_vec(), ..Default::default() });
    request.metadata_mut().insert("token", token.parse().expect("an ASCII token"));
    match kv.range(request).await {
        Ok(_) => "ok".into(),
        Err(status) => status.message().to_string(),
    }
}

/// What the auth state looks like through etcdctl, as root.
fn auth_listing(ctl: &Etcdctl) -> String {
    [
        ctl.ok(&[ROOT, "user", "list"]),
        ctl.ok(&[ROOT, "role", "list"]),
        ctl.ok(&[ROOT, "user", "get", "alice", "--detail"]),
        ctl.ok(&[ROOT, "role", "get", "reader"]),
        ctl.ok(&[ROOT, "get", "", "--prefix"]),
    ]
    .concat()
}

fn restart(server: &mut ServerProcess, kill: bool) -> ServerProcess {
    if kill {
        server.kill();
    } else {
        assert!(server.terminate().success(), "a clean stop on SIGTERM; log:\n{}", server.log());
    }
    start_strata(&server.data_dir, &["--name", "ctl-auth", BCRYPT_COST_FLAG])
}

#[test]
fn auth_state_survives_restarts() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let temp = TempDir::new("etcdctl-auth-restart");
    let mut server = start_strata(&temp.join("data"), &["--name", "ctl-auth", BCRYPT_COST_FLAG]);
    let mut ctl = Etcdctl { binary, endpoint: server.endpoint.clone(), tls: Vec::new() };
    for arguments in [
        &["user", "add", "root:rootpw"][..],
        &["user", "add", "alice:alicepw"],
        &["role", "add", "reader"],
        &["role", "grant-permission", "reader", "read", "pre/", "--prefix"],
        &["role", "grant-permission", "reader", "readwrite", "zz", "--from-key"],
        &["user", "grant-role", "alice", "reader"],
        &["put", "pre/a", "1"],
        &["auth", "enable"],
    ] {
        ctl.ok(arguments);
    }
    let before = auth_listing(&ctl);
    // Worker threads close the test's connections when they are dropped, so a SIGTERM'd server
    // is not left waiting for them.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let old_token = runtime.block_on(token(&server.endpoint, "alice", "alicepw"));
    assert_eq!(runtime.block_on(get_with_token(&server.endpoint, "pre/a", &old_token)), "ok");

    for kill in [false, true] {
        server = restart(&mut server, kill);
        ctl.endpoint = server.endpoint.clone();
        assert_eq!(auth_listing(&ctl), before, "the auth state after a restart (kill: {kill})");
        assert!(ctl.fails(&["get", "pre/a"]).contains("etcdserver: user name is empty"), "auth is still enabled");
        assert_eq!(ctl.ok(&["--user=alice:alicepw", "get", "pre/a"]), "pre/a\n1\n");
        assert!(ctl.fails(&["--user=alice:alicepw", "put", "pre/a", "2"]).contains("etcdserver: permission denied"));
        assert_eq!(
            runtime.block_on(get_with_token(&server.endpoint, "pre/a", &old_token)),
            "etcdserver: invalid auth token",
            "simple tokens live in memory only"
        );
    }

    // A change made just before a SIGKILL survives it too, and a restart drops no later token.
    ctl.ok(&[ROOT, "role", "revoke-permission", "reader", "pre/", "--prefix"]);
    ctl.ok(&[ROOT, "user", "delete", "alice"]);
    let after = auth_listing_without_alice(&ctl);
    server = restart(&mut server, true);
    ctl.endpoint = server.endpoint.clone();
    assert_eq!(auth_listing_without_alice(&ctl), after);
    assert!(ctl.fails(&["--user=alice:alicepw", "get", "pre/a"]).contains("etcdserver: authentication failed, invalid user ID or password"));
    let fresh = runtime.block_on(token(&server.endpoint, "root", "rootpw"));
    assert_eq!(runtime.block_on(get_with_token(&server.endpoint, "pre/a", &fresh)), "ok");
    assert!(server.terminate().success());
}

fn auth_listing_without_alice(ctl: &Etcdctl) -> String {
    [ctl.ok(&[ROOT, "user", "list"]), ctl.ok(&[ROOT, "role", "get", "reader"])].concat()
}

// ------------------------------------------------------------------------- certificate users

/// A CA, a server certificate for 127.0.0.1 and client certificates named `root` and `alice`,
/// as PEM files in `directory`.
fn write_certificates(directory: &TempDir) {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let write = |name: &str, contents: &str| std::fs::write(directory.join(name), contents).expect("write PEM");
    let named = |common_name: &str, hosts: &[&str]| {
        let mut params = CertificateParams::new(hosts.iter().map(|host| host.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params
    };
    let mut authority = named("strata auth test CA", &[]);
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    authority.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let authority_key = KeyPair::generate().expect("CA key");
    write("ca.pem", &authority.self_signed(&authority_key).expect("CA certificate").pem());
    let issuer = Issuer::new(authority, authority_key);
    for (name, hosts, usage) in [
        ("server", &["127.0.0.1", "localhost"][..], ExtendedKeyUsagePurpose::ServerAuth),
        ("root", &[], ExtendedKeyUsagePurpose::ClientAuth),
        ("alice", &[], ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let mut params = named(name, hosts);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        write(&format!("{name}.pem"), &params.signed_by(&key, &issuer).expect("sign").pem());
        write(&format!("{name}.key"), &key.serialize_pem());
    }
}

/// A server (`program` with `arguments`) on an https client URL that requires client
/// certificates of the test CA; ready once etcdctl, as `root`'s certificate, finds it healthy.
fn start_with_client_certificates(
    program: &std::path::Path,
    arguments: &[String],
    certificates: &TempDir,
    data_dir: &std::path::Path,
    ctl: &std::path::Path,
) -> ServerProcess {
    let endpoint = format!("https://127.0.0.1:{}", support::free_port());
    let path = |name: &str| certificates.join(name).display().to_string();
    let mut command = Command::new(program);
    command.arg("--data-dir").arg(data_dir).args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint]).args(arguments).args([
        format!("--cert-file={}", path("server.pem")),
        format!("--key-file={}", path("server.key")),
        format!("--trusted-ca-file={}", path("ca.pem")),
        "--client-cert-auth".to_string(),
        BCRYPT_COST_FLAG.to_string(),
    ]);
    let probe = Etcdctl { binary: ctl.to_path_buf(), endpoint: endpoint.clone(), tls: certificate_arguments(certificates, "root") };
    support::start_server_when(command, endpoint, data_dir, || probe.run(&["--dial-timeout=1s", "endpoint", "health"], None).success)
}

fn certificate_arguments(certificates: &TempDir, user: &str) -> Vec<String> {
    let path = |name: String| certificates.join(&name).display().to_string();
    vec![format!("--cacert={}", path("ca.pem".into())), format!("--cert={}", path(format!("{user}.pem"))), format!("--key={}", path(format!("{user}.key")))]
}

#[test]
fn a_verified_client_certificate_names_the_user_as_on_etcd() {
    let Some(binary) = support::etcdctl_binary() else { return };
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("etcdctl-auth-cn");
    let certificates = TempDir::new("etcdctl-auth-cn-pki");
    write_certificates(&certificates);
    let strata = start_with_client_certificates(&support::strata_binary(), &["--name".into(), "cn".into()], &certificates, &temp.join("strata"), &binary);
    let peer = format!("http://127.0.0.1:{}", support::free_port());
    let etcd_arguments = [
        "--name".to_string(),
        "cn".into(),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=cn={peer}"),
    ];
    let etcd = start_with_client_certificates(&etcd, &etcd_arguments, &certificates, &temp.join("etcd"), &binary);
    let as_user = |server: &ServerProcess, user: &str| Etcdctl {
        binary: binary.clone(),
        endpoint: server.endpoint.clone(),
        tls: certificate_arguments(&certificates, user),
    };
    // What Strata must print: Ok(stdout), or Err(a line of stderr); None: as etcd, whatever.
    let script: Vec<(&str, &[&str], Option<Result<&str, &str>>)> = vec![
        ("root", &["user", "add", "root", "--new-user-password=rootpw"], Some(Ok("User root created\n"))),
        ("root", &["user", "add", "alice", "--no-password"], None),
        ("root", &["role", "add", "reader"], None),
        ("root", &["role", "grant-permission", "reader", "read", "k"], None),
        ("root", &["user", "grant-role", "alice", "reader"], None),
        ("root", &["put", "k", "v"], None),
        ("root", &["auth", "enable"], Some(Ok("Authentication Enabled\n"))),
        // No token: the certificate's common name is the user.
        ("alice", &["get", "k"], Some(Ok("k\nv\n"))),
        ("alice", &["put", "k", "x"], Some(Err("Error: etcdserver: permission denied\n"))),
        ("alice", &["user", "list"], Some(Err("Error: etcdserver: permission denied\n"))),
        ("alice", &["user", "get", "alice"], Some(Ok("User: alice\nRoles: reader\n"))),
        ("root", &["put", "k", "w"], Some(Ok("OK\n"))),
        ("root", &["user", "list"], Some(Ok("alice\nroot\n"))),
        // A token wins over the certificate.
        ("alice", &["--user=root:rootpw", "put", "k", "z"], Some(Ok("OK\n"))),
        ("root", &["--user=alice:anything", "get", "k"], None),
        ("root", &["auth", "disable"], Some(Ok("Authentication Disabled\n"))),
        ("alice", &["put", "k", "after"], Some(Ok("OK\n"))),
    ];
    let mut differences = Vec::new();
    for (user, arguments, expected) in &script {
        let on_strata = as_user(&strata, user).run(arguments, None);
        let on_etcd = as_user(&etcd, user).run(arguments, None);
        match expected {
            Some(Ok(stdout)) => {
                assert!(on_strata.success && on_strata.stdout == *stdout, "etcdctl {arguments:?} as {user} on Strata: {on_strata:?}, expected {stdout:?}")
            }
            Some(Err(stderr)) => {
                assert!(!on_strata.success && on_strata.stderr == *stderr, "etcdctl {arguments:?} as {user} on Strata: {on_strata:?}, expected {stderr:?}")
            }
            None => {}
        }
        if on_strata != on_etcd {
            differences.push(format!("etcdctl {arguments:?} as {user}\n  strata: {on_strata:?}\n  etcd:   {on_etcd:?}"));
        }
    }
    assert!(differences.is_empty(), "{} of {} commands differ:\n{}", differences.len(), script.len(), differences.join("\n"));
}
