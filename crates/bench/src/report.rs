//! What a run measured, printed as etcd's benchmark prints it plus one JSON line.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone, Debug)]
pub struct Report {
    pub workload: String,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// Workload-specific counters (e.g. txn-put's successes and conflicts).
    pub counters: Vec<(String, u64)>,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

impl Report {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in milliseconds.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }

    pub fn print(&self) {
        let ms = |micros: f64| micros / 1000.0;
        println!();
        println!("Summary ({}):", self.workload);
        println!("  Total:\t{:.4} secs.", self.elapsed.as_secs_f64());
        if !self.latency.is_empty() {
            println!("  Slowest:\t{:.4} ms.", ms(self.latency.max() as f64));
            println!("  Fastest:\t{:.4} ms.", ms(self.latency.min() as f64));
            println!("  Average:\t{:.4} ms.", ms(self.latency.mean()));
            println!("  Stddev:\t{:.4} ms.", ms(self.latency.stdev()));
        }
        println!("  Requests:\t{}", self.requests);
        println!("  Errors:\t{}", self.errors);
        println!("  Requests/sec:\t{:.2}", self.requests_per_second());
        for (name, value) in &self.counters {
            println!("  {name}:\t{value}");
        }
        if !self.latency.is_empty() {
            println!("\nLatency distribution:");
            for percentile in [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9] {
                println!("  {percentile}% in {:.4} ms.", self.percentile_ms(percentile));
            }
        }
        for sample in &self.error_samples {
            println!("  error: {sample}");
        }
        println!("{}", self.json());
    }

    /// One machine-readable line.
    pub fn json(&self) -> String {
        let counters: Vec<String> = self.counters.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
        format!(
            "{{\"workload\":\"{}\",\"requests\":{},\"errors\":{},\"seconds\":{:.6},\"qps\":{:.2},\"p50_ms\":{:.4},\"p90_ms\":{:.4},\"p99_ms\":{:.4},\"p999_ms\":{:.4},\"max_ms\":{:.4}{}{}}}",
            self.workload,
            self.requests,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.requests_per_second(),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(99.0),
            self.percentile_ms(99.9),
            self.latency.max() as f64 / 1000.0,
            if counters.is_empty() { "" } else { "," },
            counters.join(",")
        )
    }
}
