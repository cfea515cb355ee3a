//! `baton serve`: open the store, start the writer and the listeners, and
//! shut down cleanly on SIGTERM or SIGINT.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use baton_server::{Config, Server};
use baton_store::{SqliteStore, Store, Writer, WriterConfig};
use tracing_subscriber::EnvFilter;

use crate::cli::ServeSettings;

pub(crate) fn run(settings: ServeSettings) -> anyhow::Result<ExitCode> {
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&settings.log)).context("--log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&settings.data_dir)
            .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?,
    );
    let writer = Writer::start(Arc::clone(&store), WriterConfig { retention: Some(settings.retention), ..WriterConfig::default() });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let server = Server::bind(&Config { listen: settings.listen }, store, writer.clone()).await?;
        let addr = server.local_addr();
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening udp {addr} (X-Ray daemon protocol)")?;
        writeln!(stdout, "listening http {addr} (X-Ray API, /metrics)")?;
        stdout.flush()?;
        drop(stdout);
        tracing::info!(%addr, data_dir = %settings.data_dir.display(), "baton serving");
        server.run(shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // Whatever happened, write what was received before exiting.
    writer.stop();
    served?;
    tracing::info!("baton stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
