//! `baton serve`: open the store, start the writer and the listeners, and
//! shut down cleanly on SIGTERM or SIGINT.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use baton_server::{Config, Server};
use baton_store::{ClickHouseStore, SqliteStore, Store, Writer, WriterConfig};

use crate::cli::{ServeSettings, StoreSettings};

pub(crate) fn run(settings: ServeSettings) -> anyhow::Result<ExitCode> {
    crate::init_logging(&settings.log).context("--log")?;

    let store = open_store(&settings.store)?;
    let writer = Writer::start(
        Arc::clone(&store),
        WriterConfig { retention: Some(settings.retention), ..WriterConfig::default() },
    );
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let config = Config { listen: settings.listen, otlp: settings.otlp.clone() };
        let server = Server::bind(&config, store, writer.clone()).await?;
        // Handlers first: a signal right after the ready lines must stop the
        // server cleanly, not kill it.
        let shutdown = shutdown_signal()?;
        let addr = server.local_addr();
        announce(&[
            format!("listening udp {addr} (X-Ray daemon protocol)"),
            format!("listening http {addr} (X-Ray API, /metrics)"),
            format!("listening otlp-http {} (OTLP/HTTP, POST /v1/traces)", server.otlp_http_addr()),
            format!("listening otlp-grpc {} (OTLP/gRPC, TraceService/Export)", server.otlp_grpc_addr()),
        ]);
        tracing::info!(%addr, store = %describe(&settings.store), "baton serving");
        server.run(shutdown).await?;
        anyhow::Ok(())
    });
    // Whatever happened, write what was received before exiting.
    writer.stop();
    served?;
    tracing::info!("baton stopped");
    Ok(ExitCode::SUCCESS)
}

fn open_store(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match settings {
        StoreSettings::Sqlite { data_dir } => Arc::new(
            SqliteStore::open(data_dir).with_context(|| format!("opening the store in {}", data_dir.display()))?,
        ),
        StoreSettings::ClickHouse(config) => Arc::new(
            ClickHouseStore::open(config)
                .with_context(|| format!("opening the ClickHouse store at {}", describe(settings)))?,
        ),
    })
}

/// Where the store is, for messages (never the password).
fn describe(settings: &StoreSettings) -> String {
    match settings {
        StoreSettings::Sqlite { data_dir } => data_dir.display().to_string(),
        StoreSettings::ClickHouse(config) => {
            let cluster = config.cluster.as_ref().map(|cluster| format!(" on cluster {cluster}")).unwrap_or_default();
            format!("{} database {}{cluster}", config.url, config.database)
        }
    }
}

/// Prints the ready lines. A closed stdout (say, `| head -1`) must not stop
/// the server, so a failed write is only logged.
pub(crate) fn announce(lines: &[String]) {
    let mut stdout = std::io::stdout().lock();
    let written = lines.iter().try_for_each(|line| writeln!(stdout, "{line}")).and_then(|()| stdout.flush());
    if let Err(error) = written {
        tracing::warn!(%error, "cannot print the listening lines");
    }
}

/// Registers the SIGTERM and SIGINT handlers now; the future resolves on
/// the first of them.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
