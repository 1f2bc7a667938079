//! Group-commit benchmark on the real disk: appends 256-byte payloads with one `sync` (one
//! fdatasync) per batch, at batch sizes 1, 100 and 1000, and prints records/s and syncs/s for each,
//! one line per batch size and then one JSON line.
//!
//! Run: `cargo run --release -p strata-segment-log --example group_commit_bench -- [--dir DIR] [--records N]`
//! Each batch size writes into a fresh directory under DIR (default: the system temp dir), removed
//! afterwards. Batch size 1 writes N/10 records (at least 100) so the run stays short on slow disks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_io::RealFileSystem;
use strata_segment_log::{LogOptions, SegmentLog};

const PAYLOAD_BYTES: usize = 256;
const BATCH_SIZES: [u64; 3] = [1, 100, 1000];
const RECORDS_DEFAULT: u64 = 20_000;

struct Arguments {
    directory: PathBuf,
    records: u64,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut arguments = Arguments {
        directory: std::env::temp_dir(),
        records: RECORDS_DEFAULT,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--dir" => {
                arguments.directory = PathBuf::from(words.next().ok_or("--dir needs a directory")?)
            }
            "--records" => {
                let value = words.next().ok_or("--records needs a number")?;
                arguments.records = value
                    .parse()
                    .map_err(|_| format!("--records: not a number: {value}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: group_commit_bench [--dir DIR] [--records N]"
                ))
            }
        }
    }
    Ok(arguments)
}

struct Measurement {
    batch_size: u64,
    records: u64,
    syncs: u64,
    seconds: f64,
}

fn measure(arguments: &Arguments, batch_size: u64) -> Result<Measurement, String> {
    let records = if batch_size == 1 {
        (arguments.records / 10).max(100)
    } else {
        arguments.records
    };
    let directory = arguments.directory.join(format!(
        "strata-group-commit-bench-{}-{batch_size}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&directory);
    let file_system = Arc::new(RealFileSystem::new());
    let mut log = SegmentLog::open(
        file_system,
        &directory,
        LogOptions::default(),
        &mut |_, _| Ok(()),
    )
    .map_err(|error| error.to_string())?
    .log;
    let payload = [0x5Au8; PAYLOAD_BYTES];
    // Create the first segment outside the measurement: that cost is paid once per 64 MiB.
    log.append(0, &payload).map_err(|error| error.to_string())?;
    log.sync().map_err(|error| error.to_string())?;

    let started = Instant::now();
    let mut syncs = 0;
    let mut written = 0;
    while written < records {
        let batch = batch_size.min(records - written);
        for _ in 0..batch {
            log.append(written as i64, &payload)
                .map_err(|error| error.to_string())?;
            written += 1;
        }
        log.sync().map_err(|error| error.to_string())?;
        syncs += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(log);
    std::fs::remove_dir_all(&directory)
        .map_err(|error| format!("cannot remove {}: {error}", directory.display()))?;
    Ok(Measurement {
        batch_size,
        records,
        syncs,
        seconds,
    })
}

fn main() {
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    for batch_size in BATCH_SIZES {
        match measure(&arguments, batch_size) {
            Ok(measurement) => {
                println!(
                    "batch_size={:<5} records={:<7} syncs={:<7} seconds={:.3} records_per_second={:.0} syncs_per_second={:.0}",
                    measurement.batch_size,
                    measurement.records,
                    measurement.syncs,
                    measurement.seconds,
                    measurement.records as f64 / measurement.seconds,
                    measurement.syncs as f64 / measurement.seconds
                );
                results.push(measurement);
            }
            Err(message) => {
                eprintln!("batch size {batch_size}: {message}");
                std::process::exit(1);
            }
        }
    }
    let entries: Vec<String> = results
        .iter()
        .map(|measurement| {
            format!(
                "{{\"batch_size\":{},\"records\":{},\"syncs\":{},\"seconds\":{:.6},\"records_per_second\":{:.1},\"syncs_per_second\":{:.1}}}",
                measurement.batch_size,
                measurement.records,
                measurement.syncs,
                measurement.seconds,
                measurement.records as f64 / measurement.seconds,
                measurement.syncs as f64 / measurement.seconds
            )
        })
        .collect();
    println!(
        "{{\"benchmark\":\"segment_log_group_commit\",\"payload_bytes\":{PAYLOAD_BYTES},\"directory\":\"{}\",\"results\":[{}]}}",
        arguments.directory.display().to_string().replace('\\', "\\\\").replace('"', "\\\""),
        entries.join(",")
    );
}
