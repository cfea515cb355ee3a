//! Baton's listeners. One address serves both of the X-Ray daemon's
//! protocols: UDP datagrams of segment documents, and HTTP on TCP for the
//! X-Ray REST API (`PutTraceSegments`, `BatchGetTraces`,
//! `GetTraceSummaries`, and the group operations) and `/metrics`.
//!
//! Every document, whatever its source, takes one path: decode, validate
//! ([`baton_model::Document::parse`]), then the store [`Writer`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use baton_server::{Config, Server};
//! use baton_store::{SqliteStore, Store, Writer, WriterConfig};
//!
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open("baton-data".as_ref())?);
//! let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
//! let server = Server::bind(&Config { listen: "127.0.0.1:2000".parse()? }, store, writer.clone()).await?;
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! writer.stop();
//! # Ok(()) }
//! ```

mod console;
mod error;
mod graph;
mod http;
mod metrics;
mod sampling;
mod udp;
mod xray;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use baton_store::{Store, Writer};

pub use error::Error;
pub use metrics::Metrics;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP and TCP on this one address, like the X-Ray daemon.
    pub listen: SocketAddr,
}

/// Bound listeners, ready to run.
pub struct Server {
    udp: std::net::UdpSocket,
    tcp: tokio::net::TcpListener,
    local_addr: SocketAddr,
    state: http::AppState,
}

/// How often a port picked by the system for TCP is tried for UDP too.
const SHARED_PORT_ATTEMPTS: usize = 20;

impl Server {
    /// Binds UDP and TCP on `config.listen`. With port 0, picks one port free
    /// for both.
    pub async fn bind(config: &Config, store: Arc<dyn Store>, writer: Writer) -> Result<Server, Error> {
        let attempts = if config.listen.port() == 0 { SHARED_PORT_ATTEMPTS } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            let tcp = tokio::net::TcpListener::bind(config.listen).await.map_err(|source| Error::Bind {
                protocol: "tcp",
                addr: config.listen,
                source,
            })?;
            let local_addr = tcp.local_addr().map_err(Error::Io)?;
            match bind_udp(local_addr) {
                Ok(udp) => {
                    let state = http::AppState {
                        store,
                        writer,
                        metrics: Arc::new(Metrics::default()),
                        group_changes: Arc::default(),
                        sampling: Arc::new(sampling::Sampling::new()),
                    };
                    return Ok(Server { udp, tcp, local_addr, state });
                }
                Err(source) => last_error = Some(Error::Bind { protocol: "udp", addr: local_addr, source }),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// The address both listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The collector's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// Serves until `shutdown` resolves, then stops taking data, finishes the
    /// requests under way and hands every received datagram to the writer.
    /// The caller then stops the writer, which writes what it holds.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let udp_thread =
            udp::spawn(self.udp, self.state.writer.clone(), Arc::clone(&self.state.metrics), Arc::clone(&stop))
                .map_err(Error::Io)?;
        let served = axum::serve(self.tcp, http::router(self.state)).with_graceful_shutdown(shutdown).await;
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || udp_thread.join()).await;
        served.map_err(Error::Io)
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    /// Absorbs bursts while the receive thread is busy; the kernel may cap it.
    const RECEIVE_BUFFER_BYTES: usize = 16 << 20;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES) {
        tracing::warn!(%error, "cannot enlarge the udp receive buffer");
    }
    socket.bind(&addr.into())?;
    tracing::debug!(bytes = socket.recv_buffer_size().unwrap_or(0), "udp receive buffer");
    Ok(socket.into())
}
