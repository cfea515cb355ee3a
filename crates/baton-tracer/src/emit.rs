//! The background sender: closed entities are handed over a bounded queue
//! to a thread that writes their documents and sends them, so a handler
//! never waits on JSON or on a socket.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use baton_model::DAEMON_HEADER;

use crate::config::{Config, Exporter};
use crate::entity::Node;
use crate::error::TracerError;

/// How many closed entities may wait for the sender before new ones are dropped.
const QUEUE_ENTITIES: usize = 8192;
/// How many waiting entities wake the sender before its next round: a
/// quarter of the queue, since each wake costs the handler microseconds and
/// the rest of the queue leaves the sender room to catch up.
const WAKE_AT: usize = 2048;
/// The longest a closed entity waits for the sender when nobody flushes.
const ROUND: Duration = Duration::from_millis(100);
/// How long a flush waits for the sender.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a background sender delivers rendered documents.
pub(crate) trait Transport: Send + 'static {
    /// Takes one X-Ray segment document (JSON text, at most 64 KB).
    fn send(&mut self, document: &str);
    /// Delivers whatever is buffered; called at the end of every round of the sender.
    fn flush(&mut self);
}

/// What the handler threads and the sender thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The sender waits on it between rounds.
    wake: Condvar,
    /// Flushing threads wait on it for their request to be done.
    flushed: Condvar,
}

#[derive(Default)]
struct Queue {
    entities: Vec<Arc<Node>>,
    flushes_requested: u64,
    flushes_done: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The handle to the sender thread. Handing over an entity takes a lock and
/// a push; the sender is woken only by a full batch or a flush, never by
/// each entity, since waking a thread costs microseconds.
pub(crate) struct Sender {
    shared: Arc<Shared>,
    dropped: AtomicU64,
}

impl Sender {
    /// Starts the sender thread for the configured exporter.
    pub(crate) fn start(config: &Config) -> Result<Sender, TracerError> {
        let transport: Box<dyn Transport> = match &config.exporter {
            Exporter::Udp(address) => Box::new(UdpTransport::connect(*address)?),
            #[cfg(feature = "otlp")]
            Exporter::Otlp(endpoint) => Box::new(crate::otlp::OtlpTransport::new(endpoint, &config.service_name)),
        };
        // Takes the clock's anchor now, so that no handler's first subsegment reads sysfs.
        crate::clock::calibrate();
        let shared = Arc::new(Shared::default());
        let sender_side = shared.clone();
        std::thread::Builder::new()
            .name("baton-tracer".into())
            .spawn(move || run(&sender_side, transport))
            .map_err(|error| TracerError::Config(format!("cannot start the sender thread: {error}")))?;
        Ok(Sender { shared, dropped: AtomicU64::new(0) })
    }

    /// Queues closed entities (with their embedded children), each to be sent
    /// as its own document; when the queue is full they are dropped and counted.
    pub(crate) fn send(&self, entities: impl ExactSizeIterator<Item = Arc<Node>>) {
        let count = entities.len();
        let mut queue = self.shared.lock();
        if queue.entities.len() + count > QUEUE_ENTITIES {
            drop(queue);
            let count = count as u64;
            let dropped = self.dropped.fetch_add(count, Ordering::Relaxed) + count;
            // Logged each time the count doubles, so a flood gives a few lines.
            if (dropped - count).leading_zeros() != dropped.leading_zeros() {
                tracing::warn!(dropped, "baton-tracer: the send queue is full, documents dropped");
            }
            return;
        }
        queue.entities.extend(entities);
        let wake = queue.entities.len() >= WAKE_AT;
        drop(queue);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Waits until every entity queued so far has been handed to the transport.
    pub(crate) fn flush(&self) {
        let mut queue = self.shared.lock();
        queue.flushes_requested += 1;
        let ticket = queue.flushes_requested;
        self.shared.wake.notify_one();
        let (_queue, waited) = self
            .shared
            .flushed
            .wait_timeout_while(queue, FLUSH_TIMEOUT, |queue| queue.flushes_done < ticket)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if waited.timed_out() {
            tracing::warn!("baton-tracer: flush timed out");
        }
    }

    /// How many entities were dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The sender thread: every round (a full batch, a flush, or [`ROUND`]
/// elapsed) writes the queued entities' documents and sends them.
fn run(shared: &Shared, mut transport: Box<dyn Transport>) {
    // Swapped with the queue's, so neither thread allocates a new one each round.
    let mut entities = Vec::new();
    loop {
        let ticket = {
            let queue = shared.lock();
            let (mut queue, _) = shared
                .wake
                .wait_timeout_while(queue, ROUND, |queue| {
                    queue.entities.len() < WAKE_AT && queue.flushes_requested == queue.flushes_done
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::swap(&mut queue.entities, &mut entities);
            queue.flushes_requested
        };
        crate::clock::calibrate();
        for document in entities.iter().flat_map(|entity| crate::render::documents(entity)) {
            transport.send(&document);
        }
        crate::pool::give_back(entities.drain(..));
        transport.flush();
        let mut queue = shared.lock();
        if queue.flushes_done < ticket {
            queue.flushes_done = ticket;
            shared.flushed.notify_all();
        }
    }
}

/// The X-Ray daemon protocol: the header line and one document per datagram.
struct UdpTransport {
    socket: UdpSocket,
    datagram: Vec<u8>,
}

impl UdpTransport {
    fn connect(address: SocketAddr) -> Result<UdpTransport, TracerError> {
        let local: SocketAddr = if address.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)
            .and_then(|socket| socket.connect(address).map(|()| socket))
            .map_err(|error| TracerError::Config(format!("cannot open a UDP socket to {address}: {error}")))?;
        Ok(UdpTransport { socket, datagram: Vec::with_capacity(64 * 1024) })
    }
}

impl Transport for UdpTransport {
    fn send(&mut self, document: &str) {
        self.datagram.clear();
        self.datagram.extend_from_slice(DAEMON_HEADER.as_bytes());
        self.datagram.extend_from_slice(document.as_bytes());
        // UDP is best effort, as with the daemon: a refused or failed send loses only this document.
        if let Err(error) = self.socket.send(&self.datagram) {
            tracing::debug!(%error, "baton-tracer: UDP send failed");
        }
    }

    fn flush(&mut self) {}
}

/// The largest document that fits one datagram after the header line.
pub(crate) const MAX_DOCUMENT: usize = 65_507 - DAEMON_HEADER.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_datagrams_carry_the_header_and_one_document() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut transport = UdpTransport::connect(receiver.local_addr().unwrap()).unwrap();
        transport.send("{\"id\":\"1\"}");
        transport.send("{\"id\":\"2\"}");
        let mut buffer = [0u8; 100];
        let size = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..size], b"{\"format\":\"json\",\"version\":1}\n{\"id\":\"1\"}");
        let size = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..size], b"{\"format\":\"json\",\"version\":1}\n{\"id\":\"2\"}");
    }
}
