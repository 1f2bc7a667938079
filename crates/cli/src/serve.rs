//! `strata serve`: opens the data directory, serves etcd's gRPC services and the HTTP endpoints
//! (`/health`, `/version`, `/metrics`, the JSON gateway under `/v3/`) on every client URL (over
//! TLS for `https://` ones), `/metrics` and `/health` on `--listen-metrics-urls`, and shuts down cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use strata_etcd_api::pb::etcdserverpb as pb;
use strata_etcd_api::services::{Api, ServerInfo};
use strata_node::{Node, NodeConfig};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::authority::AuthorityStream;
use crate::flags::ServeArgs;

/// gRPC's own receive limit sits this far above `--max-request-bytes`, as in etcd.
const GRPC_OVERHEAD_BYTES: u64 = strata_types::limits::GRPC_OVERHEAD_BYTES;

pub fn run(args: ServeArgs) -> Result<(), String> {
    init_logging(&args.log_level)?;
    for warning in crate::flags::unknown_environment(std::env::vars()) {
        warn!("{warning}");
    }
    for flag in args.ignored_flags_given() {
        info!("{flag} is accepted for etcd compatibility and has no effect in this Strata release");
    }
    let members: Vec<&str> = args.initial_cluster.split(',').filter(|member| !member.is_empty()).collect();
    if members.len() > 1 {
        return Err(format!(
            "--initial-cluster names {} members; this Strata release runs single-member clusters only",
            members.len()
        ));
    }
    let listen_urls = split_urls(&args.listen_client_urls);
    let addresses = listen_urls.iter().map(|url| parse_http_url(url, "--listen-client-urls")).collect::<Result<Vec<_>, _>>()?;
    let metrics_urls = split_urls(&args.listen_metrics_urls);
    let metrics_addresses = metrics_urls.iter().map(|url| parse_http_url(url, "--listen-metrics-urls")).collect::<Result<Vec<_>, _>>()?;
    // TLS for https:// client and metrics URLs; the --peer-* files are checked here too.
    let client_tls = crate::tls::configure(&args, &listen_urls, &metrics_urls)?;
    let advertise_urls = if args.advertise_client_urls.is_empty() { listen_urls.clone() } else { split_urls(&args.advertise_client_urls) };
    let peer_urls = split_urls(&args.initial_advertise_peer_urls);
    let data_directory = if args.data_dir.is_empty() { format!("{}.strata", args.name) } else { args.data_dir.clone() };

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async move {
        let mut config = NodeConfig::new(&args.name, std::path::Path::new(&data_directory));
        config.initial_cluster_token = args.initial_cluster_token.clone();
        config.advertise_peer_urls = peer_urls.clone();
        config.segment_bytes_max = args.log_segment_bytes;
        config.quota_backend_bytes = strata_node::quota_bytes_from_flag(args.quota_backend_bytes);
        config.watch_progress_notify_interval = args.experimental_watch_progress_notify_interval.0;
        config.auth = auth_config(&args)?;
        config.snapshot = strata_node::SnapshotPolicy {
            entries: args.snapshot_count,
            log_bytes: args.snapshot_log_bytes,
            keep: usize::try_from(args.max_snapshots).unwrap_or(usize::MAX),
            increments_max: usize::try_from(args.snapshot_increments).unwrap_or(usize::MAX),
        };
        config.auto_compaction = crate::flags::auto_compaction(&args.auto_compaction_mode, &args.auto_compaction_retention)?;
        if args.storage_format != 0 {
            config.storage_format = args.storage_format;
        }
        let node = Arc::new(Node::open(config).map_err(|error| error.to_string())?);
        info!(data_dir = %data_directory, member_id = %format!("{:x}", node.member_id()), revision = node.revision(), "opened data directory");
        let info = ServerInfo {
            name: args.name.clone(),
            peer_urls,
            client_urls: advertise_urls,
            request_bytes_max: args.max_request_bytes,
            txn_ops_max: args.max_txn_ops as usize,
        };
        let api = Api::new(node.clone(), info);

        let mut listeners = Vec::new();
        for (url, address) in listen_urls.iter().zip(addresses) {
            let address = resolve(&address).await?;
            let listener = TcpListener::bind(address).await.map_err(|error| format!("cannot listen on {url} ({address}): {error}"))?;
            listeners.push((url.clone(), listener));
        }
        let mut metrics_listeners = Vec::new();
        for (url, address) in metrics_urls.iter().zip(metrics_addresses) {
            let address = resolve(&address).await?;
            let listener = TcpListener::bind(address).await.map_err(|error| format!("cannot listen on {url} ({address}): {error}"))?;
            metrics_listeners.push((url.clone(), listener));
        }
        let grpc_metrics = Arc::new(crate::metrics::GrpcMetrics::default());

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        for (url, listener) in listeners {
            let routes = crate::metrics::instrument(routes(&api, args.max_request_bytes + GRPC_OVERHEAD_BYTES), &node, &grpc_metrics);
            let tls = url.starts_with("https://").then(|| client_tls.clone()).flatten();
            if tls.is_some() {
                info!(address = %url, "serving client traffic securely");
            } else {
                info!(address = %url, "serving client traffic insecurely; this is strongly discouraged!");
            }
            servers.push(serve_listener(listener, tls, routes, stopped.clone()));
        }
        for (url, listener) in metrics_listeners {
            let health_node = node.clone();
            let health_routes = axum::Router::new().route("/health", axum::routing::get(move || health(health_node.clone())));
            let routes = crate::metrics::instrument(tonic::service::Routes::from(health_routes), &node, &grpc_metrics);
            let tls = url.starts_with("https://").then(|| client_tls.clone()).flatten();
            info!(address = %url, "serving /metrics and /health");
            servers.push(serve_listener(listener, tls, routes, stopped.clone()));
        }
        info!(cluster_version = "3.5", "enabled capabilities for version");
        info!(local_member_id = %format!("{:x}", node.member_id()), "published local member to cluster through raft");
        info!("ready to serve client requests");

        wait_for_signal().await;
        info!("received a stop signal; shutting down");
        let _ = stop.send(true);
        // Open watch streams never finish on their own: end them so the servers can stop.
        node.close_watches();
        for server in servers {
            if let Ok(Err(error)) = server.await {
                warn!(%error, "client server stopped with an error");
            }
        }
        node.shutdown().await;
        info!("stopped");
        Ok(())
    })
}

fn routes(api: &Api, grpc_bytes_max: u64) -> tonic::service::Routes {
    let limit = usize::try_from(grpc_bytes_max).unwrap_or(usize::MAX);
    let mut builder = tonic::service::Routes::builder();
    builder
        .add_service(pb::kv_server::KvServer::new(api.clone()).max_decoding_message_size(limit).max_encoding_message_size(usize::MAX))
        .add_service(pb::watch_server::WatchServer::new(api.clone()).max_decoding_message_size(limit))
        .add_service(pb::lease_server::LeaseServer::new(api.clone()).max_decoding_message_size(limit))
        .add_service(pb::cluster_server::ClusterServer::new(api.clone()).max_decoding_message_size(limit))
        .add_service(pb::maintenance_server::MaintenanceServer::new(api.clone()).max_decoding_message_size(limit))
        .add_service(pb::auth_server::AuthServer::new(api.clone()).max_decoding_message_size(limit))
        .add_service(strata_etcd_api::pb::strata::admin_server::AdminServer::new(api.clone()).max_decoding_message_size(limit));
    let node = api.node().clone();
    let router = builder
        .routes()
        .into_axum_router()
        // gRPC's receive-limit refusal in grpc-go's (etcd's) code and words, not tonic's.
        .layer(axum::middleware::map_response(|response: axum::response::Response| async move {
            strata_etcd_api::errors::etcd_transport_errors(response)
        }))
        .route("/health", axum::routing::get(move || health(node.clone())))
        .route(
            "/version",
            axum::routing::get(|| async {
                json(format!(
                    r#"{{"etcdserver":"{}","etcdcluster":"{}"}}"#,
                    strata_node::ETCD_API_VERSION,
                    strata_node::ETCD_CLUSTER_VERSION
                ))
            }),
        )
        // etcd's HTTP/JSON gateway (`POST /v3/kv/range`, …) over the same services.
        .merge(strata_etcd_api::gateway::router(api.clone(), grpc_bytes_max));
    tonic::service::Routes::from(router)
}

/// `/health`, on client and metrics URLs.
async fn health(node: Arc<Node>) -> ([(&'static str, &'static str); 1], String) {
    // A node that can read its store at the durable revision is healthy.
    let _ = node.revision();
    json(r#"{"health":"true","reason":""}"#.to_string())
}

/// Serves `routes` on `listener`, over TLS with `tls`, until `stopped` turns true.
fn serve_listener(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    routes: tonic::service::Routes,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), tonic::transport::Error>> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let server = tonic::transport::Server::builder().accept_http1(true).add_routes(routes);
        match tls {
            Some(config) => server.serve_with_incoming_shutdown(crate::tls::incoming(listener, config), shutdown).await,
            None => {
                let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |stream| {
                    stream.map(|stream| {
                        // Small responses must not wait for Nagle's algorithm.
                        let _ = stream.set_nodelay(true);
                        AuthorityStream::new(stream)
                    })
                });
                server.serve_with_incoming_shutdown(incoming, shutdown).await
            }
        }
    })
}

fn json(body: String) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "application/json")], body)
}

/// `--auth-token`, `--auth-token-ttl` and `--bcrypt-cost`, the JWT key files read.
fn auth_config(args: &ServeArgs) -> Result<strata_node::AuthConfig, String> {
    let read_file = |path: &str| std::fs::read(path).map_err(|error| error.to_string());
    let simple_ttl = std::time::Duration::from_secs(args.auth_token_ttl);
    let token = strata_node::TokenConfig::parse(&args.auth_token, simple_ttl, &read_file)?;
    if matches!(token, strata_node::TokenConfig::Simple { .. }) {
        warn!("simple token is not cryptographically signed");
    }
    Ok(strata_node::AuthConfig { token, bcrypt_cost: args.bcrypt_cost })
}

fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_string).collect()
}

/// `http://host:port` or `https://host:port` (served with TLS) to `host:port`.
fn parse_http_url(url: &str, flag: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let rest = rest.ok_or_else(|| format!("{flag}: {url}: URL scheme must be http or https"))?;
    let host_port = rest.trim_end_matches('/');
    if host_port.contains('/') || !host_port.contains(':') {
        return Err(format!("{flag}: {url}: expected http://host:port or https://host:port"));
    }
    Ok(host_port.to_string())
}

async fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(host_port)
        .await
        .map_err(|error| format!("cannot resolve {host_port}: {error}"))?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}

fn init_logging(level: &str) -> Result<(), String> {
    let level = match level {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" | "dpanic" | "panic" | "fatal" => tracing::Level::ERROR,
        other => return Err(format!("--log-level: unknown level {other:?} (debug, info, warn, error, panic, fatal)")),
    };
    tracing_subscriber::fmt().with_max_level(level).with_ansi(false).with_writer(std::io::stderr).with_target(false).init();
    Ok(())
}
