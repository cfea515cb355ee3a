//! The `baton` binary: thin glue over the library crates.
//!
//! Exit codes: 0 success, 1 a runtime error (printed on stderr), 2 a usage
//! error (from clap).

mod cli;
mod client;
mod serve;

use std::process::ExitCode;

use clap::Parser;

// Allocation-heavy work (parsed documents, summaries) runs on a busy writer
// thread: mimalloc ingests 14 % more UDP documents a second than glibc's
// allocator at saturation (benches/ingest.rs, 80k vs 70k docs/s).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("baton: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: cli::Args) -> anyhow::Result<ExitCode> {
    match args.command {
        cli::Command::Serve(serve) => serve::run(serve.validate()?),
        cli::Command::Traces(traces) => client::list_traces(&traces),
        cli::Command::Trace(trace) => client::show_trace(&trace),
    }
}
