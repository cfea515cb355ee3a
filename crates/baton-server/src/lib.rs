//! Baton's listeners. One address serves both of the X-Ray daemon's
//! protocols: UDP datagrams of segment documents, and HTTP on TCP for the
//! X-Ray REST API (`PutTraceSegments`, `BatchGetTraces`,
//! `GetTraceSummaries`, and the group operations) and `/metrics`. Two more
//! receive OpenTelemetry spans: OTLP/HTTP and OTLP/gRPC.
//!
//! Every document, whatever its source, takes one path: decode, validate
//! ([`baton_model::Document::parse`]), then the store [`Writer`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use baton_server::{Config, OtlpConfig, Server};
//! use baton_store::{SqliteStore, Store, Writer, WriterConfig};
//!
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open("baton-data".as_ref())?);
//! let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
//! let otlp = OtlpConfig {
//!     http: "127.0.0.1:4318".parse()?,
//!     grpc: "127.0.0.1:4317".parse()?,
//!     annotation_keys: vec!["order.id".into()],
//! };
//! let config = Config { listen: "127.0.0.1:2000".parse()?, otlp };
//! let server = Server::bind(&config, store, writer.clone()).await?;
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! writer.stop();
//! # Ok(()) }
//! ```

mod console;
mod error;
mod graph;
mod http;
mod metrics;
mod otlp;
mod sampling;
mod udp;
mod xray;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::serve::ListenerExt;
use baton_store::{Store, Writer};

pub use error::Error;
pub use metrics::Metrics;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP and TCP on this one address, like the X-Ray daemon.
    pub listen: SocketAddr,
    /// The OpenTelemetry receivers.
    pub otlp: OtlpConfig,
}

/// Where the OpenTelemetry (OTLP) receivers listen, and what they index.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// OTLP/HTTP (`POST /v1/traces`) on this address.
    pub http: SocketAddr,
    /// OTLP/gRPC (`TraceService/Export`) on this address.
    pub grpc: SocketAddr,
    /// Span attribute keys recorded as annotations (so that filters can
    /// search them), besides those a span lists in `aws.xray.annotations`.
    pub annotation_keys: Vec<String>,
}

/// Bound listeners, ready to run.
pub struct Server {
    udp: std::net::UdpSocket,
    tcp: tokio::net::TcpListener,
    local_addr: SocketAddr,
    state: http::AppState,
    otlp_http: tokio::net::TcpListener,
    otlp_grpc: tokio::net::TcpListener,
    otlp: otlp::OtlpState,
}

/// How often a port picked by the system for TCP is tried for UDP too.
const SHARED_PORT_ATTEMPTS: usize = 20;

impl Server {
    /// Binds UDP and TCP on `config.listen` (with port 0, one port free for
    /// both), and the OTLP receivers' addresses.
    pub async fn bind(config: &Config, store: Arc<dyn Store>, writer: Writer) -> Result<Server, Error> {
        let otlp_http = bind_tcp("otlp/http (tcp)", config.otlp.http).await?;
        let otlp_grpc = bind_tcp("otlp/grpc (tcp)", config.otlp.grpc).await?;
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
                    let metrics = Arc::new(Metrics::default());
                    let otlp =
                        otlp::OtlpState::new(writer.clone(), Arc::clone(&metrics), config.otlp.annotation_keys.clone());
                    let state = http::AppState {
                        store,
                        writer,
                        metrics,
                        group_changes: Arc::default(),
                        sampling: Arc::new(sampling::Sampling::new()),
                    };
                    return Ok(Server { udp, tcp, local_addr, state, otlp_http, otlp_grpc, otlp });
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

    /// The address the OTLP/HTTP receiver is bound to.
    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http.local_addr().expect("a bound listener has an address")
    }

    /// The address the OTLP/gRPC receiver is bound to.
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc.local_addr().expect("a bound listener has an address")
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
        // One shutdown signal, handed to each TCP listener.
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let signal = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        // Answers go out whole: an answer's last frame (gRPC's trailers) must
        // not wait for the client to acknowledge its first (measured: gRPC
        // exports waited on delayed acknowledgements without it).
        let no_delay = |listener: tokio::net::TcpListener| {
            listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            })
        };
        let api = axum::serve(no_delay(self.tcp), http::router(self.state))
            .with_graceful_shutdown(until_stopped(stopped.clone()));
        let otlp_http = axum::serve(no_delay(self.otlp_http), otlp::http_router(self.otlp.clone()))
            .with_graceful_shutdown(until_stopped(stopped.clone()));
        let otlp_grpc = axum::serve(no_delay(self.otlp_grpc), otlp::grpc_router(self.otlp))
            .with_graceful_shutdown(until_stopped(stopped));
        let ((), api, otlp_http, otlp_grpc) =
            tokio::join!(signal, api.into_future(), otlp_http.into_future(), otlp_grpc.into_future());
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || udp_thread.join()).await;
        api.and(otlp_http).and(otlp_grpc).map_err(Error::Io)
    }
}

async fn bind_tcp(protocol: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { protocol, addr, source })
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
