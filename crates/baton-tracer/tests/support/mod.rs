//! What the integration tests share: reading what the tracer sent to a UDP socket playing the daemon.

use std::net::UdpSocket;

use serde_json::Value;

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
