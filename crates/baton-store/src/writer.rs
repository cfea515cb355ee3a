//! The batching writer: one thread that takes documents from every listener,
//! groups them into batches and writes each batch with one [`Store::write`].
//!
//! Listeners that must not wait (UDP) use [`Writer::try_submit`], which drops
//! when the queue is full; listeners that answer only once documents are
//! durable (`PutTraceSegments`) use [`Writer::submit`] and await the [`Ack`].
//! The queue is bounded by bytes, so memory stays bounded under any load.
//!
//! When a write fails, the documents someone awaits fail their [`Ack`]
//! (the sender was not told they were taken, and may send them again); the
//! others are kept, still counted in the queue's bytes, and written again
//! first, after a growing pause, until they are written or have waited
//! [`WriterConfig::retry_for`]. So a store that is down for a while (a
//! ClickHouse server restarting) loses no document it was handed; the
//! queue filling meanwhile refuses new ones, which the listeners count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton_model::{Document, time};
use tokio::sync::oneshot;

use crate::{Durability, Error, Store};

/// The longest pause between attempts to write documents again.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// How long a stopping writer retries documents before it gives them up.
const STOP_RETRY_FOR: Duration = Duration::from_secs(10);

/// Upper bounds, in seconds, of the batch latency histogram.
pub const BATCH_LATENCY_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The most documents written in one batch; a larger single submission
    /// is written alone, not split.
    pub max_batch_documents: usize,
    /// The most bytes of parsed documents waiting in the queue (about twice
    /// their text); beyond, submissions are refused.
    pub max_queued_bytes: u64,
    /// How long a batch nobody awaits (UDP) waits for more documents
    /// before it is written: fewer, larger writes cost less per document.
    pub linger: Duration,
    /// How long data is kept; `None` keeps it forever.
    pub retention: Option<Duration>,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// The first pause before documents nobody awaits are written again
    /// after a failed write; it doubles at each failure, up to 5 s.
    pub retry_backoff: Duration,
    /// How long documents nobody awaits are written again after failed
    /// writes before they are given up (counted in
    /// [`WriterStats::documents_abandoned`]); zero gives them up at once.
    pub retry_for: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch_documents: 4096,
            max_queued_bytes: 32 << 20,
            linger: Duration::from_millis(10),
            retention: Some(Duration::from_secs(30 * 86_400)),
            retention_interval: Duration::from_secs(600),
            retry_backoff: Duration::from_millis(100),
            retry_for: Duration::from_secs(300),
        }
    }
}

/// Counters the writer keeps, read by `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Batches written.
    pub batches: AtomicU64,
    /// Documents written.
    pub documents_written: AtomicU64,
    /// Documents in batches that failed to write (each attempt counted).
    pub documents_failed: AtomicU64,
    /// Documents nobody awaits kept after a failed write, to write again
    /// (each failure counted).
    pub documents_retried: AtomicU64,
    /// Documents nobody awaits given up after failing for
    /// [`WriterConfig::retry_for`] (or at a stop, after 10 s).
    pub documents_abandoned: AtomicU64,
    /// Documents waiting in the queue.
    pub queued_documents: AtomicU64,
    /// Bytes of parsed documents waiting in the queue.
    pub queued_bytes: AtomicU64,
    /// Batch write latency, one counter per bucket of [`BATCH_LATENCY_BUCKETS`]
    /// (not cumulative), the last one for anything slower.
    pub batch_latency: [AtomicU64; BATCH_LATENCY_BUCKETS.len() + 1],
    /// Sum of batch write latencies, in microseconds.
    pub batch_latency_micros: AtomicU64,
    /// Partitions removed by retention.
    pub removed_partitions: AtomicU64,
}

impl WriterStats {
    fn observe_batch(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket =
            BATCH_LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BATCH_LATENCY_BUCKETS.len());
        self.batch_latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.batch_latency_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Documents handed to the writer, with an optional acknowledgement.
pub struct Submit {
    documents: Vec<Document>,
    bytes: u64,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

enum Message {
    Documents(Submit),
    Stop,
}

/// Resolves once the submitted documents are durable.
pub struct Ack(oneshot::Receiver<Result<(), String>>);

impl Ack {
    /// Waits for the batch holding the documents to be written.
    pub async fn wait(self) -> Result<(), Error> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Error::WriteFailed(message)),
            Err(_) => Err(Error::Stopped),
        }
    }
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

struct Shared {
    stats: WriterStats,
    config: WriterConfig,
    stopped: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<dyn Store>, config: WriterConfig) -> Writer {
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            stats: WriterStats::default(),
            config,
            stopped: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("baton-writer".into())
            .spawn(move || run(store, receiver, thread_shared))
            .expect("spawning the writer thread");
        *shared.thread.lock().expect("writer thread handle poisoned") = Some(thread);
        Writer { sender, shared }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Queues documents without waiting; [`Error::Full`] when the queue is
    /// full (the documents are dropped), [`Error::Stopped`] after [`Writer::stop`].
    pub fn try_submit(&self, documents: Vec<Document>) -> Result<(), Error> {
        self.enqueue(documents, None)
    }

    /// Queues documents; the returned [`Ack`] resolves when they are durable.
    pub fn submit(&self, documents: Vec<Document>) -> Result<Ack, Error> {
        let (sender, receiver) = oneshot::channel();
        self.enqueue(documents, Some(sender))?;
        Ok(Ack(receiver))
    }

    fn enqueue(&self, documents: Vec<Document>, ack: Option<oneshot::Sender<Result<(), String>>>) -> Result<(), Error> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        let stats = &self.shared.stats;
        // A parsed document costs about twice its text: the text plus its facts.
        let bytes: u64 = documents.iter().map(|document| 2 * document.json.len() as u64).sum();
        let queued = stats.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if queued + bytes > self.shared.config.max_queued_bytes && queued > 0 {
            stats.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Error::Full);
        }
        stats.queued_documents.fetch_add(documents.len() as u64, Ordering::Relaxed);
        let count = documents.len() as u64;
        self.sender.send(Message::Documents(Submit { documents, bytes, ack })).map_err(|_| {
            stats.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            stats.queued_documents.fetch_sub(count, Ordering::Relaxed);
            Error::Stopped
        })
    }

    /// Refuses new documents, writes everything already queued, and waits for
    /// the writer thread to finish.
    pub fn stop(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.sender.send(Message::Stop);
        let thread = self.shared.thread.lock().expect("writer thread handle poisoned").take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(store: Arc<dyn Store>, receiver: mpsc::Receiver<Message>, shared: Arc<Shared>) {
    let config = &shared.config;
    let mut next_retention = Instant::now();
    let mut stopping = false;
    // A submission that did not fit in the previous batch.
    let mut carried: Option<Submit> = None;
    // Documents nobody awaits from a failed write, to write again first.
    let mut retry = Retry { retained: None, at: Instant::now(), backoff: config.retry_backoff, failing_since: None };
    loop {
        if let Some(retention) = config.retention.filter(|_| !stopping)
            && Instant::now() >= next_retention
        {
            next_retention = Instant::now() + config.retention_interval;
            let cutoff = time::now() - retention.as_secs_f64();
            match store.remove_before(cutoff) {
                Ok(removed) => {
                    if removed.partitions > 0 {
                        tracing::info!(partitions = removed.partitions, "retention removed old data");
                    }
                    shared.stats.removed_partitions.fetch_add(removed.partitions, Ordering::Relaxed);
                }
                Err(error) => tracing::error!(%error, "retention failed"),
            }
        }
        let first = match retry.retained.take().or_else(|| carried.take()) {
            Some(submit) => {
                if submit.ack.is_none()
                    && let Some(pause) = retry.at.checked_duration_since(Instant::now())
                {
                    std::thread::sleep(pause);
                }
                submit
            }
            // Stopping: write what was queued before the stop, then end.
            None if stopping => match receiver.try_recv() {
                Ok(Message::Documents(submit)) => submit,
                _ => break,
            },
            None => match receiver.recv_timeout(config.retention_interval.min(Duration::from_secs(60))) {
                Ok(Message::Documents(submit)) => submit,
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    stopping = true;
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => continue,
            },
        };
        let mut count = first.documents.len();
        let linger_until = Instant::now() + config.linger;
        let mut awaited = first.ack.is_some();
        let mut submits = vec![first];
        // Group commit: take whatever else is already waiting, up to the cap;
        // while nobody awaits the batch, wait a little for more.
        while count < config.max_batch_documents {
            let next = match linger_until.checked_duration_since(Instant::now()) {
                Some(left) if !awaited && !stopping => receiver.recv_timeout(left).map_err(|_| ()),
                _ => receiver.try_recv().map_err(|_| ()),
            };
            match next {
                Ok(Message::Documents(submit)) if count + submit.documents.len() > config.max_batch_documents => {
                    carried = Some(submit);
                    break;
                }
                Ok(Message::Documents(submit)) => {
                    count += submit.documents.len();
                    awaited |= submit.ack.is_some();
                    submits.push(submit);
                }
                Ok(Message::Stop) => stopping = true,
                Err(()) => break,
            }
        }
        let failed = write_batch(&*store, submits, &shared.stats);
        retry.after_write(failed, config, stopping, &shared.stats);
    }
}

/// The writer's state between a failed write and the next success.
struct Retry {
    /// Documents nobody awaits from the failed write; their bytes are still
    /// counted in the queue.
    retained: Option<Submit>,
    /// When to write them again.
    at: Instant,
    /// The pause after the next failure.
    backoff: Duration,
    /// When writes started failing.
    failing_since: Option<Instant>,
}

impl Retry {
    /// Keeps the documents of a failed write (`failed`) for another attempt,
    /// or gives them up once they have been failing for too long.
    fn after_write(&mut self, failed: Option<Submit>, config: &WriterConfig, stopping: bool, stats: &WriterStats) {
        let Some(failed) = failed else {
            self.failing_since = None;
            self.backoff = config.retry_backoff;
            return;
        };
        let now = Instant::now();
        let since = *self.failing_since.get_or_insert(now);
        let count = failed.documents.len() as u64;
        let limit = if stopping { config.retry_for.min(STOP_RETRY_FOR) } else { config.retry_for };
        if now.duration_since(since) >= limit {
            tracing::error!(documents = count, "documents nobody awaits given up after failing writes");
            stats.documents_abandoned.fetch_add(count, Ordering::Relaxed);
            stats.queued_bytes.fetch_sub(failed.bytes, Ordering::AcqRel);
            stats.queued_documents.fetch_sub(count, Ordering::Relaxed);
            return;
        }
        tracing::warn!(documents = count, pause = ?self.backoff, "write failed; documents nobody awaits kept to write again");
        stats.documents_retried.fetch_add(count, Ordering::Relaxed);
        self.retained = Some(failed);
        self.at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_RETRY_BACKOFF);
    }
}

/// Writes one batch and answers its acks; on failure returns the documents
/// nobody awaits, their bytes still counted in the queue.
fn write_batch(store: &dyn Store, submits: Vec<Submit>, stats: &WriterStats) -> Option<Submit> {
    let mut documents = Vec::with_capacity(submits.iter().map(|submit| submit.documents.len()).sum());
    let mut acks = Vec::new();
    // Per submission: its documents and bytes, and whether it is awaited.
    let mut parts = Vec::with_capacity(submits.len());
    // Only documents whose sender awaits an answer need the disk sync.
    let durability =
        if submits.iter().any(|submit| submit.ack.is_some()) { Durability::Synced } else { Durability::Buffered };
    for submit in submits {
        parts.push((submit.documents.len(), submit.bytes, submit.ack.is_some()));
        documents.extend(submit.documents);
        acks.extend(submit.ack);
    }
    let started = Instant::now();
    let result = store.write(&documents, durability);
    stats.observe_batch(started.elapsed());
    stats.batches.fetch_add(1, Ordering::Relaxed);
    // What leaves the queue now: everything, or on failure what was awaited.
    let (mut bytes, mut count) = (0, 0);
    let mut kept = Submit { documents: Vec::new(), bytes: 0, ack: None };
    let outcome = match result {
        Ok(()) => {
            stats.documents_written.fetch_add(documents.len() as u64, Ordering::Relaxed);
            bytes = parts.iter().map(|(_, bytes, _)| bytes).sum();
            count = documents.len();
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, documents = documents.len(), "batch write failed");
            stats.documents_failed.fetch_add(documents.len() as u64, Ordering::Relaxed);
            let mut documents = documents.into_iter();
            for (length, part_bytes, awaited) in parts {
                let part = documents.by_ref().take(length);
                if awaited {
                    part.for_each(drop);
                    (bytes, count) = (bytes + part_bytes, count + length);
                } else {
                    kept.documents.extend(part);
                    kept.bytes += part_bytes;
                }
            }
            Err(error.to_string())
        }
    };
    stats.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    stats.queued_documents.fetch_sub(count as u64, Ordering::Relaxed);
    for ack in acks {
        let _ = ack.send(outcome.clone());
    }
    (!kept.documents.is_empty()).then_some(kept)
}
