//! The `strata` binary: `serve` (the default) runs a node where an `etcd` binary would run, with
//! etcd's flags. The only crate that parses arguments.

mod authority;
mod bench;
mod bench_restart;
mod flags;
mod metrics;
mod serve;
mod snapshot;
mod tls;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let arguments = flags::normalize_arguments(std::env::args().collect());
    let cli = flags::Cli::parse_from(arguments);
    let result = match cli.command {
        Some(flags::Command::Serve(serve)) => serve::run(serve),
        Some(flags::Command::Bench(bench)) => bench::run(bench),
        Some(flags::Command::Snapshot(snapshot)) => snapshot::run(snapshot),
        None => serve::run(cli.serve),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("strata: error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
