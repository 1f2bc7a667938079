//! `strata bench`: runs a workload of `strata-bench` against endpoints, or with `--compare`
//! against a fresh etcd and a fresh Strata side by side.

use std::time::Duration;

use strata_bench::compare::{self, CompareOptions};
use strata_bench::{LoadOptions, Workload};

use crate::flags::{BenchArgs, BenchWorkload};

pub fn run(args: BenchArgs) -> Result<(), String> {
    let load = LoadOptions {
        endpoints: args.endpoints.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect(),
        conns: args.conns,
        clients: args.clients,
        total: args.total,
        duration: args.duration.map(Duration::from_secs_f64),
        rate: args.rate,
        progress: true,
    };
    if load.endpoints.is_empty() {
        return Err("--endpoints: no endpoint given".into());
    }
    let workload = match args.workload.clone() {
        BenchWorkload::Put { key_size, val_size, key_space_size, sequential_keys } => {
            Workload::Put { key_size, value_size: val_size, key_space_size, sequential_keys }
        }
        BenchWorkload::Range { key, end, consistency, limit, keys_only, count_only } => {
            let serializable = match consistency.as_str() {
                "l" => false,
                "s" => true,
                other => return Err(format!("--consistency: {other:?} is neither l nor s")),
            };
            let range_end = end.map(String::into_bytes).unwrap_or_default();
            Workload::Range { key: key.into_bytes(), range_end, serializable, limit, keys_only, count_only }
        }
        BenchWorkload::TxnPut { key_space_size, val_size } => Workload::TxnPut { key_space_size, value_size: val_size },
        BenchWorkload::WatchLatency { watchers, streams, val_size } => Workload::WatchLatency { watchers, streams, value_size: val_size },
        BenchWorkload::Mixed { key_space_size, val_size, list_limit } => Workload::Mixed { key_space_size, value_size: val_size, list_limit },
        BenchWorkload::Restart(restart) => return crate::bench_restart::run(&args.etcd_binary, &restart),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| error.to_string())?;
    runtime.block_on(async {
        if !args.compare {
            let report = strata_bench::workload::run(&load, &workload).await?;
            report.print();
            return Ok(());
        }
        let options = CompareOptions {
            runs: args.runs.max(1),
            etcd_binary: args.etcd_binary.clone().into(),
            strata_binary: std::env::current_exe().map_err(|error| format!("cannot find the strata binary: {error}"))?,
            work_directory: compare::work_directory(),
        };
        let result = compare::compare(&options, &load, &workload).await;
        compare::remove_work_directory(&options.work_directory);
        print!("{}", compare::summarize(workload.name(), &result?));
        Ok(())
    })
}
