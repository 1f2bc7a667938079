//! The `strata` binary: `serve` (the default) runs a node where an `etcd` binary would run, with
//! etcd's flags. The only crate that parses arguments.

mod authority;
mod bench;
mod bench_restart;
mod flags;
mod inspect;
mod metrics;
mod migrate;
mod serve;
mod snapshot;
mod tls;
mod upgrade;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let arguments = flags::normalize_arguments(std::env::args().collect());
    let cli = flags::Cli::parse_from(arguments);
    let result = match cli.command {
        Some(flags::Command::Serve(serve)) => serve::run(serve),
        Some(flags::Command::Bench(bench)) => bench::run(bench),
        Some(flags::Command::Snapshot(snapshot)) => snapshot::run(snapshot),
        Some(flags::Command::Migrate(migrate)) => migrate::run(migrate),
        // Their own exit codes: 1 for a directory or file found wanting, 2 for one that cannot be read.
        Some(flags::Command::Upgrade(upgrade)) => return upgrade::run(upgrade),
        Some(flags::Command::Inspect(inspect)) => return inspect::run(inspect),
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
