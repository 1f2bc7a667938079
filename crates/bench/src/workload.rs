//! The workloads, as etcd's benchmark names them: put, range, txn-put (Kubernetes' optimistic
//! update), watch-latency and mixed (70% lists, 30% optimistic updates).

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use tonic::transport::Channel;

use crate::report::{new_histogram, Report};
use crate::runner::{connect, drive, LoadOptions, Outcome};

type Kv = pb::kv_client::KvClient<Channel>;

/// Retries of one optimistic update before it counts as an error.
const OPTIMISTIC_RETRIES_MAX: usize = 100;
/// How long watch-latency waits for the last events after the last put.
const WATCH_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub enum Workload {
    Put { key_size: usize, value_size: usize, key_space_size: u64, sequential_keys: bool },
    Range { key: Vec<u8>, range_end: Vec<u8>, serializable: bool, limit: i64, keys_only: bool, count_only: bool },
    TxnPut { key_space_size: u64, value_size: usize },
    WatchLatency { watchers: usize, streams: usize, value_size: usize },
    Mixed { key_space_size: u64, value_size: usize, list_limit: i64 },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put { .. } => "put",
            Workload::Range { .. } => "range",
            Workload::TxnPut { .. } => "txn-put",
            Workload::WatchLatency { .. } => "watch-latency",
            Workload::Mixed { .. } => "mixed",
        }
    }
}

/// splitmix64: spreads ticket numbers over the key space, the same on every run.
fn spread(ticket: u64) -> u64 {
    let mut z = ticket.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `prefix` then the key number, zero-padded to `key_size` bytes (at least the digits needed).
fn key(prefix: &str, number: u64, key_size: usize) -> Vec<u8> {
    let digits = key_size.saturating_sub(prefix.len()).max(1);
    format!("{prefix}{number:0digits$}").into_bytes()
}

fn kv_clients(channels: &[Channel], clients: usize) -> Arc<Vec<Kv>> {
    Arc::new(
        (0..clients.max(1))
            .map(|client| pb::kv_client::KvClient::new(channels[client % channels.len()].clone()).max_decoding_message_size(usize::MAX))
            .collect(),
    )
}

fn status_text(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

pub async fn run(options: &LoadOptions, workload: &Workload) -> Result<Report, String> {
    let channels = connect(options).await?;
    let kvs = kv_clients(&channels, options.clients);
    let name = workload.name();
    Ok(match workload.clone() {
        Workload::Put { key_size, value_size, key_space_size, sequential_keys } => {
            let value = Arc::new(vec![b'v'; value_size]);
            drive(options, name, move |client, ticket| {
                let mut kv = kvs[client].clone();
                let value = value.clone();
                async move {
                    let number = if sequential_keys { ticket % key_space_size.max(1) } else { spread(ticket) % key_space_size.max(1) };
                    let request = pb::PutRequest { key: key("", number, key_size), value: value.to_vec(), ..Default::default() };
                    kv.put(request).await.map(|_| None).map_err(status_text)
                }
            })
            .await
        }
        Workload::Range { key, range_end, serializable, limit, keys_only, count_only } => {
            let request = pb::RangeRequest { key, range_end, serializable, limit, keys_only, count_only, ..Default::default() };
            drive(options, name, move |client, _| {
                let mut kv = kvs[client].clone();
                let request = request.clone();
                async move { kv.range(request).await.map(|_| None).map_err(status_text) }
            })
            .await
        }
        Workload::TxnPut { key_space_size, value_size } => {
            let value = Arc::new(vec![b'u'; value_size]);
            drive(options, name, move |client, ticket| {
                let kv = kvs[client].clone();
                let value = value.clone();
                async move { optimistic_update(kv, key("txn-put/", spread(ticket) % key_space_size.max(1), 16), &value).await }
            })
            .await
        }
        Workload::Mixed { key_space_size, value_size, list_limit } => {
            preload(&kvs[0], "mixed/", key_space_size, value_size).await?;
            let value = Arc::new(vec![b'm'; value_size]);
            drive(options, name, move |client, ticket| {
                let mut kv = kvs[client].clone();
                let value = value.clone();
                async move {
                    if spread(ticket) % 10 < 7 {
                        let request = pb::RangeRequest { key: b"mixed/".to_vec(), range_end: b"mixed0".to_vec(), limit: list_limit, ..Default::default() };
                        kv.range(request).await.map(|_| Some("lists")).map_err(status_text)
                    } else {
                        optimistic_update(kv, key("mixed/", spread(ticket ^ 0xABCD) % key_space_size.max(1), 16), &value).await
                    }
                }
            })
            .await
        }
        Workload::WatchLatency { watchers, streams, value_size } => watch_latency(options, &channels, kvs, watchers, streams, value_size).await?,
    })
}

/// Kubernetes' update: read the object, write it back if nobody changed it since, else re-read.
async fn optimistic_update(mut kv: Kv, key: Vec<u8>, value: &[u8]) -> Outcome {
    let range = kv.range(pb::RangeRequest { key: key.clone(), ..Default::default() }).await.map_err(status_text)?.into_inner();
    let mut mod_revision = range.kvs.first().map_or(0, |kv| kv.mod_revision);
    for _ in 0..OPTIMISTIC_RETRIES_MAX {
        use pb::compare::{CompareResult, CompareTarget, TargetUnion};
        let request = pb::TxnRequest {
            compare: vec![pb::Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: key.clone(),
                target_union: Some(TargetUnion::ModRevision(mod_revision)),
                ..Default::default()
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest { key: key.clone(), value: value.to_vec(), ..Default::default() })),
            }],
            failure: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest { key: key.clone(), ..Default::default() })),
            }],
        };
        let response = kv.txn(request).await.map_err(status_text)?.into_inner();
        if response.succeeded {
            return Ok(Some("successes"));
        }
        // Conflict: the failure branch read the current version; retry on it.
        mod_revision = response
            .responses
            .first()
            .and_then(|op| match &op.response {
                Some(pb::response_op::Response::ResponseRange(range)) => range.kvs.first().map(|kv| kv.mod_revision),
                _ => None,
            })
            .unwrap_or(0);
    }
    Err(format!("optimistic update of {} gave up after {OPTIMISTIC_RETRIES_MAX} conflicts", String::from_utf8_lossy(&key)))
}

async fn preload(kv: &Kv, prefix: &str, key_space_size: u64, value_size: usize) -> Result<(), String> {
    let value = vec![b'p'; value_size];
    let mut tasks = Vec::new();
    for chunk in 0..16u64 {
        let mut kv = kv.clone();
        let (prefix, value) = (prefix.to_string(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut number = chunk;
            while number < key_space_size {
                kv.put(pb::PutRequest { key: key(&prefix, number, 16), value: value.clone(), ..Default::default() }).await.map_err(status_text)?;
                number += 16;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|error| error.to_string())??;
    }
    Ok(())
}

/// Watchers on a prefix and one writer at `--rate`; a put's value carries its send time, and each
/// event's latency is its arrival time minus that.
async fn watch_latency(
    options: &LoadOptions,
    channels: &[Channel],
    kvs: Arc<Vec<Kv>>,
    watchers: usize,
    streams: usize,
    value_size: usize,
) -> Result<Report, String> {
    let prefix = b"watch-latency/".to_vec();
    let start = Instant::now();
    let streams = streams.clamp(1, watchers.max(1));
    let mut receivers = Vec::new();
    for stream_index in 0..streams {
        let mut client = pb::watch_client::WatchClient::new(channels[stream_index % channels.len()].clone());
        let (sender, requests) = tokio::sync::mpsc::channel(watchers.max(1));
        let on_this_stream = watchers / streams + usize::from(stream_index < watchers % streams);
        for _ in 0..on_this_stream {
            let create = pb::WatchCreateRequest { key: prefix.clone(), range_end: b"watch-latency0".to_vec(), ..Default::default() };
            sender
                .send(pb::WatchRequest { request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)) })
                .await
                .map_err(|_| "watch request stream closed".to_string())?;
        }
        let mut responses = client.watch(tokio_stream::wrappers::ReceiverStream::new(requests)).await.map_err(status_text)?.into_inner();
        let mut created = 0;
        while created < on_this_stream {
            let response = responses.message().await.map_err(status_text)?.ok_or("watch stream ended")?;
            created += usize::from(response.created);
        }
        receivers.push((responses, sender, on_this_stream));
    }

    // Each listener stops once it has every event of every put (known when the writer is done),
    // or when the drain timeout passes after that.
    let (target_sender, target) = tokio::sync::watch::channel(u64::MAX);
    let mut listeners = Vec::new();
    for (mut responses, sender, watchers_here) in receivers {
        let mut target = target.clone();
        listeners.push(tokio::spawn(async move {
            let _keep_open = sender;
            let mut latency = new_histogram();
            let mut events = 0u64;
            let mut drain_deadline: Option<tokio::time::Instant> = None;
            loop {
                let puts = *target.borrow();
                if puts != u64::MAX {
                    if events >= puts * watchers_here as u64 {
                        break;
                    }
                    let deadline = *drain_deadline.get_or_insert_with(|| tokio::time::Instant::now() + WATCH_DRAIN_TIMEOUT);
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
                tokio::select! {
                    message = responses.message() => {
                        let Ok(Some(response)) = message else { break };
                        let now = start.elapsed().as_micros() as u64;
                        for event in response.events {
                            let value = event.kv.as_ref().map(|kv| kv.value.as_slice()).unwrap_or_default();
                            let sent = value.get(..16).and_then(|bytes| std::str::from_utf8(bytes).ok()?.parse::<u64>().ok());
                            if let Some(sent) = sent {
                                let _ = latency.record(now.saturating_sub(sent).max(1));
                            }
                            events += 1;
                        }
                    }
                    _ = target.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            (latency, events)
        }));
    }

    let writer_options = LoadOptions { clients: 1, progress: options.progress, ..options.clone() };
    let padding = value_size.saturating_sub(16);
    let puts = drive(&writer_options, "watch-latency", move |_, ticket| {
        let mut kv = kvs[0].clone();
        async move {
            let mut value = format!("{:016}", start.elapsed().as_micros()).into_bytes();
            value.resize(16 + padding, b'w');
            let request = pb::PutRequest { key: key("watch-latency/", ticket % 1000, 20), value, ..Default::default() };
            kv.put(request).await.map(|_| None).map_err(status_text)
        }
    })
    .await;
    let _ = target_sender.send(puts.requests);

    let mut report = Report { latency: new_histogram(), ..puts };
    let mut events_total = 0;
    for listener in listeners {
        if let Ok((latency, events)) = listener.await {
            report.latency.add(&latency).expect("same histogram bounds");
            events_total += events;
        }
    }
    report.counters.push(("events".into(), events_total));
    report.counters.push(("events_expected".into(), report.requests * watchers as u64));
    Ok(report)
}
