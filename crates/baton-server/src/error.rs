use std::net::SocketAddr;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not bind its address.
    #[error("cannot listen on {protocol} {addr}: {source}")]
    Bind {
        /// `udp`, `tcp`, `otlp/http (tcp)` or `otlp/grpc (tcp)`.
        protocol: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("i/o: {0}")]
    Io(std::io::Error),
}
