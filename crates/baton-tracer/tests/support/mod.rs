//! What the integration tests share: a UDP socket playing the daemon, and reading what the tracer sent to it.

use std::net::UdpSocket;
use std::time::Duration;

use baton_tracer::{Config, Exporter, Sampler};
use serde_json::Value;

/// Starts the process's tracer as `service_name`, sending to a new socket that it returns
/// (reads on it wait 500 ms at most). The tracer starts once per process: one test per file.
pub(crate) fn trace_to_local_daemon(service_name: &str, sampler: Sampler) -> UdpSocket {
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    baton_tracer::init(Config {
        service_name: service_name.into(),
        enabled: true,
        capture_response: true,
        capture_error: true,
        in_lambda: false,
        exporter: Exporter::Udp(daemon.local_addr().unwrap()),
        sampler,
    })
    .unwrap();
    daemon
}

/// Every document the tracer sent to `daemon` until its read timeout, without the daemon protocol's header line.
pub(crate) fn documents(daemon: &UdpSocket) -> Vec<Value> {
    let mut documents = Vec::new();
    let mut buffer = vec![0; 65536];
    while let Ok(length) = daemon.recv(&mut buffer) {
        let text = std::str::from_utf8(&buffer[..length]).unwrap();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        documents.push(serde_json::from_str(document).unwrap());
    }
    documents
}
