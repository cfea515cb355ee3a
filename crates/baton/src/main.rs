//! The `baton` binary: thin glue over the library crates.
//!
//! Exit codes: 0 success, 1 a runtime error (printed on stderr), 2 a usage
//! error (from clap, or from checking the arguments clap parsed).

mod cli;
mod client;
mod lambda;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
        cli::Command::Serve(serve) => match serve.validate() {
            Ok(settings) => serve::run(settings),
            Err(error) => {
                eprintln!("baton serve: {error:#}");
                Ok(ExitCode::from(2))
            }
        },
        cli::Command::Traces(traces) => client::list_traces(&traces),
        cli::Command::Trace(trace) => client::show_trace(&trace),
        cli::Command::Invoke(invoke) => lambda::invoke(&invoke),
        cli::Command::Lambda { command: cli::LambdaCommand::Serve(serve) } => lambda::serve(&serve),
    }
}

/// Logs to stderr with `default` as the filter, unless RUST_LOG gives one.
fn init_logging(default: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(default))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}
