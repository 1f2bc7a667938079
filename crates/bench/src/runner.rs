//! Runs a workload's requests from many clients over a few connections: tickets from one shared
//! counter bound the run by `--total` or `--duration`, an optional pacer holds it to `--rate`, and
//! each client keeps its own histogram (merged at the end, so recording takes no lock).

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::report::{new_histogram, Report};

/// Error messages kept as samples, at most.
const ERROR_SAMPLES_MAX: usize = 5;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub endpoints: Vec<String>,
    /// gRPC connections, spread over the endpoints.
    pub conns: usize,
    /// Concurrent clients, spread over the connections.
    pub clients: usize,
    /// Requests in all (unless `duration` ends the run first).
    pub total: u64,
    pub duration: Option<Duration>,
    /// Requests per second over all clients; 0 = as fast as they go.
    pub rate: f64,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Holds a run to a rate: ticket `n` may start at `start + n / rate`.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    start: Instant,
    rate: f64,
}

impl Pacer {
    pub fn new(rate: f64) -> Pacer {
        Pacer { start: Instant::now(), rate }
    }

    pub async fn wait(&self, ticket: u64) {
        if self.rate > 0.0 {
            let due = self.start + Duration::from_secs_f64(ticket as f64 / self.rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// What one request did, beyond its latency: optionally a named counter to bump.
pub type Outcome = Result<Option<&'static str>, String>;

/// `conns` channels, round robin over the endpoints.
pub async fn connect(options: &LoadOptions) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(options.conns.max(1));
    for index in 0..options.conns.max(1) {
        let endpoint = &options.endpoints[index % options.endpoints.len()];
        let url = if endpoint.contains("://") { endpoint.clone() } else { format!("http://{endpoint}") };
        let channel = Channel::from_shared(url.clone())
            .map_err(|error| format!("bad endpoint {url}: {error}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|error| format!("cannot connect to {url}: {error}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Runs `operation(client, ticket)` from `options.clients` clients until the run is over.
pub async fn drive<F, Fut>(options: &LoadOptions, workload: &str, operation: F) -> Report
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let operation = Arc::new(operation);
    let tickets = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let pacer = Pacer::new(options.rate);
    let start = Instant::now();
    let deadline = options.duration.map(|duration| start + duration);
    let total = if deadline.is_some() && options.total == 0 { u64::MAX } else { options.total };

    let progress = options.progress.then(|| {
        let (done, finished) = (done.clone(), finished.clone());
        let duration = options.duration;
        tokio::spawn(async move {
            while !finished.load(Ordering::Relaxed) {
                tokio::time::sleep(PROGRESS_INTERVAL).await;
                let fraction = match duration {
                    Some(duration) => start.elapsed().as_secs_f64() / duration.as_secs_f64(),
                    None => done.load(Ordering::Relaxed) as f64 / total.max(1) as f64,
                }
                .min(1.0);
                let width = 40;
                let filled = (fraction * width as f64) as usize;
                eprint!("\r [{}{}] {:>3.0}% {} requests", "=".repeat(filled), " ".repeat(width - filled), fraction * 100.0, done.load(Ordering::Relaxed));
                let _ = std::io::stderr().flush();
            }
            eprintln!();
        })
    });

    let mut clients = Vec::with_capacity(options.clients);
    for client in 0..options.clients.max(1) {
        let (operation, tickets, done) = (operation.clone(), tickets.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut latency = new_histogram();
            let mut errors = 0u64;
            let mut error_samples: Vec<String> = Vec::new();
            let mut counters: Vec<(&'static str, u64)> = Vec::new();
            loop {
                let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                if ticket >= total || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    break;
                }
                pacer.wait(ticket).await;
                let sent = Instant::now();
                match operation(client, ticket).await {
                    Ok(counter) => {
                        let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
                        if let Some(name) = counter {
                            match counters.iter_mut().find(|(existing, _)| *existing == name) {
                                Some((_, count)) => *count += 1,
                                None => counters.push((name, 1)),
                            }
                        }
                    }
                    Err(error) => {
                        errors += 1;
                        if error_samples.len() < ERROR_SAMPLES_MAX && !error_samples.contains(&error) {
                            error_samples.push(error);
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (latency, errors, error_samples, counters)
        }));
    }

    let mut report = Report {
        workload: workload.to_string(),
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: new_histogram(),
        counters: Vec::new(),
        error_samples: Vec::new(),
    };
    for client in clients {
        let Ok((latency, errors, error_samples, counters)) = client.await else { continue };
        report.latency.add(&latency).expect("same histogram bounds");
        report.errors += errors;
        for sample in error_samples {
            if report.error_samples.len() < ERROR_SAMPLES_MAX && !report.error_samples.contains(&sample) {
                report.error_samples.push(sample);
            }
        }
        for (name, count) in counters {
            match report.counters.iter_mut().find(|(existing, _)| existing == name) {
                Some((_, total)) => *total += count,
                None => report.counters.push((name.to_string(), count)),
            }
        }
    }
    report.elapsed = start.elapsed();
    report.requests = report.latency.len();
    finished.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    report
}
