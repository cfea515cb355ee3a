//! The X-Ray daemon protocol: one datagram is a header line
//! `{"format":"json","version":1}`, a `\n`, and one segment document.
//!
//! A dedicated thread reads the socket: parsing is CPU work that must never
//! wait behind async tasks, and a blocking `recv` is the cheapest way to
//! drain a busy socket. Valid documents go to the store writer in small
//! groups; nothing here waits for the store, so when it falls behind the
//! writer refuses and the documents are counted as dropped.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton_model::Document;
use baton_store::Writer;
use serde::Deserialize;

use crate::metrics::{
    BytesReceived, DatagramProblem, DocumentRejectedError, DocumentsAccepted, DocumentsDroppedError, DocumentsReceived,
    Metrics, Protocol, RejectReason,
};

/// The largest UDP payload over IPv4.
pub(crate) const MAX_DATAGRAM_BYTES: usize = 65_507;
/// The header every current SDK writes, checked without a JSON parse.
const CANONICAL_HEADER: &[u8] = br#"{"format":"json","version":1}"#;
/// Documents handed to the writer at once.
const GROUP_SIZE: usize = 256;
/// The longest a valid document waits in this thread before the writer.
const GROUP_DELAY: Duration = Duration::from_millis(20);

#[derive(Deserialize)]
struct DaemonHeader {
    format: String,
    version: serde_json::Number,
}

/// Splits a datagram into its document, checking the header as the X-Ray
/// daemon does: JSON, `format` "json" in any case, `version` 1.
pub(crate) fn split_datagram(datagram: &[u8]) -> Result<&[u8], (DatagramProblem, &'static str)> {
    if datagram.is_empty() {
        return Err((DatagramProblem::Empty, "datagram is empty"));
    }
    let Some(newline) = datagram.iter().position(|byte| *byte == b'\n') else {
        return Err((DatagramProblem::MissingHeader, "datagram has no header line"));
    };
    let (header, document) = (&datagram[..newline], &datagram[newline + 1..]);
    if header != CANONICAL_HEADER {
        let valid = serde_json::from_slice::<DaemonHeader>(header)
            .is_ok_and(|header| header.format.eq_ignore_ascii_case("json") && header.version.as_f64() == Some(1.0));
        if !valid {
            return Err((DatagramProblem::InvalidHeader, "header must be {\"format\":\"json\",\"version\":1}"));
        }
    }
    Ok(document)
}

/// Starts the thread reading `socket` until `stop` is set.
pub(crate) fn spawn(
    socket: UdpSocket,
    writer: Writer,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    std::thread::Builder::new().name("baton-udp".into()).spawn(move || receive(socket, writer, metrics, stop))
}

fn receive(socket: UdpSocket, writer: Writer, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    // One byte more than the largest datagram, so an oversize one is visible.
    let mut buffer = vec![0u8; MAX_DATAGRAM_BYTES + 1];
    let mut group: Vec<Document> = Vec::with_capacity(GROUP_SIZE);
    let mut group_started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buffer) {
            Ok((length, peer)) => {
                if group.is_empty() {
                    group_started = Instant::now();
                }
                read_datagram(&buffer[..length], peer, &metrics, &mut group);
                if group.len() >= GROUP_SIZE || (!group.is_empty() && group_started.elapsed() >= GROUP_DELAY) {
                    hand_over(&writer, &metrics, &mut group);
                }
            }
            Err(error)
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) =>
            {
                hand_over(&writer, &metrics, &mut group);
            }
            Err(error) => {
                tracing::error!(%error, "udp receive failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    // Stopping: what the kernel already holds was sent before the stop.
    if socket.set_nonblocking(true).is_ok() {
        while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            read_datagram(&buffer[..length], peer, &metrics, &mut group);
            if group.len() >= GROUP_SIZE {
                hand_over(&writer, &metrics, &mut group);
            }
        }
    }
    hand_over(&writer, &metrics, &mut group);
}

/// Counts one datagram and adds its document to `group` if it is valid.
fn read_datagram(datagram: &[u8], peer: SocketAddr, metrics: &Metrics, group: &mut Vec<Document>) {
    BytesReceived { protocol: Protocol::Udp, bytes: datagram.len() }.emit(metrics);
    // Every datagram counts as one document received, so that received =
    // accepted + rejected + dropped.
    DocumentsReceived { protocol: Protocol::Udp, count: 1 }.emit(metrics);
    let parsed = match split_datagram(datagram) {
        Err((problem, message)) => Err((RejectReason::Datagram(problem), message.to_owned())),
        Ok(document) => Document::parse(document).map_err(|error| (RejectReason::Document(error.kind), error.message)),
    };
    match parsed {
        Ok(document) => group.push(document),
        Err((reason, message)) => {
            DocumentRejectedError { protocol: Protocol::Udp, reason, message: &message, peer: Some(peer) }
                .emit(metrics);
        }
    }
}

fn hand_over(writer: &Writer, metrics: &Metrics, group: &mut Vec<Document>) {
    if group.is_empty() {
        return;
    }
    let documents = std::mem::replace(group, Vec::with_capacity(GROUP_SIZE));
    let count = documents.len();
    match writer.try_submit(documents) {
        Ok(()) => DocumentsAccepted { protocol: Protocol::Udp, count }.emit(metrics),
        Err(_) => {
            DocumentsDroppedError { protocol: Protocol::Udp, count }.emit(metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(datagram: &[u8]) -> DatagramProblem {
        split_datagram(datagram).unwrap_err().0
    }

    #[test]
    fn accepts_the_header_in_every_spelling_the_daemon_does() {
        for header in [
            r#"{"format":"json","version":1}"#,
            r#"{"format": "json", "version": 1}"#,
            r#"{"format": "JSON", "version": 1}"#,
            r#" { "version" : 1 , "format" : "Json" } "#,
        ] {
            let datagram = format!("{header}\n{{}}");
            assert_eq!(split_datagram(datagram.as_bytes()).unwrap(), b"{}", "{header}");
        }
    }

    #[test]
    fn names_what_is_wrong_with_a_datagram() {
        assert_eq!(problem(b""), DatagramProblem::Empty);
        assert_eq!(problem(br#"{"format":"json","version":1}"#), DatagramProblem::MissingHeader);
        assert_eq!(problem(br#"{"id":"1"}"#), DatagramProblem::MissingHeader);
        assert_eq!(problem(b"{\"format\":\"xml\",\"version\":1}\n{}"), DatagramProblem::InvalidHeader);
        assert_eq!(problem(b"{\"format\":\"json\",\"version\":2}\n{}"), DatagramProblem::InvalidHeader);
        assert_eq!(problem(b"{\"format\":\"json\"}\n{}"), DatagramProblem::InvalidHeader);
        assert_eq!(problem(b"not json\n{}"), DatagramProblem::InvalidHeader);
        assert_eq!(problem(b"\n{}"), DatagramProblem::InvalidHeader);
    }

    #[test]
    fn the_document_after_the_header_is_returned_untouched() {
        let datagram = b"{\"format\":\"json\",\"version\":1}\n{\"a\": \"line\\nbreak\"}\n";
        assert_eq!(split_datagram(datagram).unwrap(), b"{\"a\": \"line\\nbreak\"}\n");
    }
}
