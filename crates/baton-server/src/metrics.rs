//! The collector's own telemetry: every event that changes a count is a type
//! whose `emit` logs and bumps exactly one counter, so "every drop is
//! counted" holds by construction. `/metrics` renders the counters in the
//! Prometheus text format.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use baton_model::ValidationErrorKind;
use baton_store::{BATCH_LATENCY_BUCKETS, WriterStats};

/// Where documents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The X-Ray daemon protocol over UDP.
    Udp,
    /// `PutTraceSegments` over HTTP.
    Http,
    /// Segment documents translated from OTLP spans (HTTP or gRPC).
    Otlp,
}

impl Protocol {
    const ALL: [Protocol; 3] = [Protocol::Udp, Protocol::Http, Protocol::Otlp];

    fn label(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Otlp => "otlp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a UDP datagram was rejected before its document was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatagramProblem {
    /// Nothing in the datagram.
    Empty,
    /// No `\n` after the header, or nothing after it.
    MissingHeader,
    /// The header is not `{"format":"json","version":1}`.
    InvalidHeader,
}

impl DatagramProblem {
    const ALL: [DatagramProblem; 3] =
        [DatagramProblem::Empty, DatagramProblem::MissingHeader, DatagramProblem::InvalidHeader];

    fn code(self) -> &'static str {
        match self {
            DatagramProblem::Empty => "EmptyDatagram",
            DatagramProblem::MissingHeader => "MissingHeader",
            DatagramProblem::InvalidHeader => "InvalidHeader",
        }
    }
}

/// A rejection reason: a datagram problem or an invalid document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// The datagram around the document was malformed.
    Datagram(DatagramProblem),
    /// The document itself was invalid.
    Document(ValidationErrorKind),
}

impl RejectReason {
    fn code(self) -> &'static str {
        match self {
            RejectReason::Datagram(problem) => problem.code(),
            RejectReason::Document(kind) => kind.code(),
        }
    }

    fn index(self) -> usize {
        match self {
            RejectReason::Datagram(problem) => problem as usize,
            RejectReason::Document(kind) => DatagramProblem::ALL.len() + kind as usize,
        }
    }

    fn all() -> impl Iterator<Item = RejectReason> {
        DatagramProblem::ALL
            .into_iter()
            .map(RejectReason::Datagram)
            .chain(ValidationErrorKind::ALL.into_iter().map(RejectReason::Document))
    }
}

const REASONS: usize = DatagramProblem::ALL.len() + ValidationErrorKind::ALL.len();
const PROTOCOLS: usize = Protocol::ALL.len();

/// The two OTLP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtlpTransport {
    /// OTLP/HTTP, `POST /v1/traces`.
    Http,
    /// OTLP/gRPC, `TraceService/Export`.
    Grpc,
}

impl OtlpTransport {
    const ALL: [OtlpTransport; 2] = [OtlpTransport::Http, OtlpTransport::Grpc];

    fn label(self) -> &'static str {
        match self {
            OtlpTransport::Http => "http",
            OtlpTransport::Grpc => "grpc",
        }
    }
}

/// How an OTLP export request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportOutcome {
    /// Every span was stored.
    Success,
    /// Some spans were rejected, the others stored.
    PartialSuccess,
    /// The request was refused as unreadable, too large or unsupported.
    Refused,
    /// The store could not take the spans now; the client may retry.
    Unavailable,
    /// Writing failed.
    Failed,
}

impl ExportOutcome {
    const ALL: [ExportOutcome; 5] = [
        ExportOutcome::Success,
        ExportOutcome::PartialSuccess,
        ExportOutcome::Refused,
        ExportOutcome::Unavailable,
        ExportOutcome::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            ExportOutcome::Success => "success",
            ExportOutcome::PartialSuccess => "partial_success",
            ExportOutcome::Refused => "refused",
            ExportOutcome::Unavailable => "unavailable",
            ExportOutcome::Failed => "failed",
        }
    }
}

/// Why OTLP spans were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanRejectReason {
    /// The span could not be translated (ids, times).
    InvalidSpan,
    /// The document the span was translated into failed validation.
    InvalidDocument,
}

impl SpanRejectReason {
    const ALL: [SpanRejectReason; 2] = [SpanRejectReason::InvalidSpan, SpanRejectReason::InvalidDocument];

    fn code(self) -> &'static str {
        match self {
            SpanRejectReason::InvalidSpan => "InvalidSpan",
            SpanRejectReason::InvalidDocument => "InvalidDocument",
        }
    }
}

/// The collector's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    received: [AtomicU64; PROTOCOLS],
    bytes: [AtomicU64; PROTOCOLS],
    accepted: [AtomicU64; PROTOCOLS],
    rejected: [[AtomicU64; REASONS]; PROTOCOLS],
    dropped: [AtomicU64; PROTOCOLS],
    api_requests: AtomicU64,
    api_errors: AtomicU64,
    otlp_requests: [[AtomicU64; ExportOutcome::ALL.len()]; OtlpTransport::ALL.len()],
    spans_received: AtomicU64,
    spans_accepted: AtomicU64,
    spans_rejected: [AtomicU64; SpanRejectReason::ALL.len()],
    spans_dropped: AtomicU64,
}

/// One datagram or request body arrived.
pub(crate) struct BytesReceived {
    /// Its protocol.
    pub(crate) protocol: Protocol,
    /// Its size.
    pub(crate) bytes: usize,
}

impl BytesReceived {
    /// Counts the bytes.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.bytes[self.protocol.index()].fetch_add(self.bytes as u64, Ordering::Relaxed);
    }
}

/// Documents were read from the wire, valid or not.
pub(crate) struct DocumentsReceived {
    /// Their protocol.
    pub(crate) protocol: Protocol,
    /// How many.
    pub(crate) count: usize,
}

impl DocumentsReceived {
    /// Counts them.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.received[self.protocol.index()].fetch_add(self.count as u64, Ordering::Relaxed);
    }
}

/// Valid documents were handed to the store writer.
pub(crate) struct DocumentsAccepted {
    /// Their protocol.
    pub(crate) protocol: Protocol,
    /// How many.
    pub(crate) count: usize,
}

impl DocumentsAccepted {
    /// Counts them.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.accepted[self.protocol.index()].fetch_add(self.count as u64, Ordering::Relaxed);
    }
}

/// A document (or datagram) was rejected as malformed.
pub(crate) struct DocumentRejectedError<'a> {
    /// Its protocol.
    pub(crate) protocol: Protocol,
    /// The class of problem.
    pub(crate) reason: RejectReason,
    /// The precise message.
    pub(crate) message: &'a str,
    /// The sender, when known.
    pub(crate) peer: Option<SocketAddr>,
}

impl DocumentRejectedError<'_> {
    /// Logs the rejection and counts it under its reason.
    pub(crate) fn emit(self, metrics: &Metrics) {
        // debug, not warn: a flood of bad datagrams must not become a flood of
        // log lines; the counter shows it.
        tracing::debug!(
            error = self.message,
            reason = self.reason.code(),
            protocol = self.protocol.label(),
            peer = ?self.peer,
            "document rejected"
        );
        metrics.rejected[self.protocol.index()][self.reason.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Valid documents were dropped because the store writer's queue was full.
pub(crate) struct DocumentsDroppedError {
    /// Their protocol.
    pub(crate) protocol: Protocol,
    /// How many.
    pub(crate) count: usize,
}

impl DocumentsDroppedError {
    /// Logs and counts the drop.
    pub(crate) fn emit(self, metrics: &Metrics) {
        tracing::debug!(count = self.count, protocol = self.protocol.label(), "documents dropped: store queue full");
        metrics.dropped[self.protocol.index()].fetch_add(self.count as u64, Ordering::Relaxed);
    }
}

/// An X-Ray API request was answered.
pub(crate) struct ApiRequestServed {
    /// Whether the answer was an error.
    pub(crate) failed: bool,
}

impl ApiRequestServed {
    /// Counts the request.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.api_requests.fetch_add(1, Ordering::Relaxed);
        if self.failed {
            metrics.api_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// OTLP spans were read from an export request.
pub(crate) struct SpansReceived {
    /// How many.
    pub(crate) count: u64,
}

impl SpansReceived {
    /// Counts them.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.spans_received.fetch_add(self.count, Ordering::Relaxed);
    }
}

/// OTLP spans were stored durably.
pub(crate) struct SpansAccepted {
    /// How many.
    pub(crate) count: u64,
}

impl SpansAccepted {
    /// Counts them.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.spans_accepted.fetch_add(self.count, Ordering::Relaxed);
    }
}

/// OTLP spans were rejected; the client is told so by a partial success.
pub(crate) struct SpansRejectedError<'a> {
    /// The class of problem.
    pub(crate) reason: SpanRejectReason,
    /// How many spans.
    pub(crate) count: u64,
    /// The precise message.
    pub(crate) message: &'a str,
}

impl SpansRejectedError<'_> {
    /// Logs the rejection and counts the spans under its reason.
    pub(crate) fn emit(self, metrics: &Metrics) {
        // debug, as for documents: the counter shows a flood.
        tracing::debug!(error = self.message, reason = self.reason.code(), spans = self.count, "otlp spans rejected");
        metrics.spans_rejected[self.reason as usize].fetch_add(self.count, Ordering::Relaxed);
    }
}

/// OTLP spans were not stored because the store could not take them (queue
/// full, shutting down, write failed); the request failed as a whole.
pub(crate) struct SpansDroppedError<'a> {
    /// How many.
    pub(crate) count: u64,
    /// Why.
    pub(crate) message: &'a str,
}

impl SpansDroppedError<'_> {
    /// Logs and counts the drop.
    pub(crate) fn emit(self, metrics: &Metrics) {
        tracing::debug!(error = self.message, spans = self.count, "otlp spans not stored");
        metrics.spans_dropped.fetch_add(self.count, Ordering::Relaxed);
    }
}

/// An OTLP export request was answered.
pub(crate) struct ExportServed {
    /// Over which transport.
    pub(crate) transport: OtlpTransport,
    /// How.
    pub(crate) outcome: ExportOutcome,
}

impl ExportServed {
    /// Counts the request under its transport and outcome.
    pub(crate) fn emit(self, metrics: &Metrics) {
        metrics.otlp_requests[self.transport as usize][self.outcome as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// How many documents of `protocol` were rejected for `reason`.
    pub(crate) fn rejected(&self, protocol: Protocol, reason: RejectReason) -> u64 {
        self.rejected[protocol.index()][reason.index()].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of these counters and the writer's.
    pub fn render(&self, writer: &WriterStats) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let per_protocol = |out: &mut String, name: &str, counters: &[AtomicU64; PROTOCOLS]| {
            for protocol in Protocol::ALL {
                let _ =
                    writeln!(out, "{name}{{protocol=\"{}\"}} {}", protocol.label(), load(&counters[protocol.index()]));
            }
        };
        family(&mut out, "baton_bytes_received_total", "counter", "Bytes of datagrams and request bodies received.");
        per_protocol(&mut out, "baton_bytes_received_total", &self.bytes);
        family(&mut out, "baton_documents_received_total", "counter", "Documents received, valid or not.");
        per_protocol(&mut out, "baton_documents_received_total", &self.received);
        family(&mut out, "baton_documents_accepted_total", "counter", "Valid documents handed to the store writer.");
        per_protocol(&mut out, "baton_documents_accepted_total", &self.accepted);
        family(&mut out, "baton_documents_rejected_total", "counter", "Malformed documents or datagrams, by reason.");
        for protocol in Protocol::ALL {
            for reason in RejectReason::all() {
                if protocol != Protocol::Udp && matches!(reason, RejectReason::Datagram(_)) {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "baton_documents_rejected_total{{protocol=\"{}\",reason=\"{}\"}} {}",
                    protocol.label(),
                    reason.code(),
                    self.rejected(protocol, reason)
                );
            }
        }
        family(
            &mut out,
            "baton_documents_dropped_total",
            "counter",
            "Valid documents dropped because the store queue was full.",
        );
        for protocol in Protocol::ALL {
            let _ = writeln!(
                out,
                "baton_documents_dropped_total{{protocol=\"{}\",reason=\"queue_full\"}} {}",
                protocol.label(),
                load(&self.dropped[protocol.index()])
            );
        }
        family(&mut out, "baton_api_requests_total", "counter", "X-Ray API requests answered.");
        let _ = writeln!(out, "baton_api_requests_total {}", load(&self.api_requests));
        family(&mut out, "baton_api_errors_total", "counter", "X-Ray API requests answered with an error.");
        let _ = writeln!(out, "baton_api_errors_total {}", load(&self.api_errors));
        family(
            &mut out,
            "baton_otlp_requests_total",
            "counter",
            "OTLP export requests answered, by transport and outcome.",
        );
        for transport in OtlpTransport::ALL {
            for outcome in ExportOutcome::ALL {
                let _ = writeln!(
                    out,
                    "baton_otlp_requests_total{{transport=\"{}\",outcome=\"{}\"}} {}",
                    transport.label(),
                    outcome.label(),
                    load(&self.otlp_requests[transport as usize][outcome as usize])
                );
            }
        }
        family(&mut out, "baton_otlp_spans_received_total", "counter", "OTLP spans in decoded export requests.");
        let _ = writeln!(out, "baton_otlp_spans_received_total {}", load(&self.spans_received));
        family(&mut out, "baton_otlp_spans_accepted_total", "counter", "OTLP spans stored durably.");
        let _ = writeln!(out, "baton_otlp_spans_accepted_total {}", load(&self.spans_accepted));
        family(&mut out, "baton_otlp_spans_rejected_total", "counter", "OTLP spans rejected, by reason.");
        for reason in SpanRejectReason::ALL {
            let _ = writeln!(
                out,
                "baton_otlp_spans_rejected_total{{reason=\"{}\"}} {}",
                reason.code(),
                load(&self.spans_rejected[reason as usize])
            );
        }
        family(
            &mut out,
            "baton_otlp_spans_dropped_total",
            "counter",
            "OTLP spans not stored because the store could not take them; their request failed.",
        );
        let _ = writeln!(out, "baton_otlp_spans_dropped_total {}", load(&self.spans_dropped));
        family(&mut out, "baton_store_documents_written_total", "counter", "Documents written durably by the store.");
        let _ = writeln!(out, "baton_store_documents_written_total {}", load(&writer.documents_written));
        family(
            &mut out,
            "baton_store_documents_failed_total",
            "counter",
            "Documents in store batches that failed to write (each attempt counted).",
        );
        let _ = writeln!(out, "baton_store_documents_failed_total {}", load(&writer.documents_failed));
        family(
            &mut out,
            "baton_store_documents_retried_total",
            "counter",
            "Documents nobody awaits (UDP) kept after a failed write to be written again (each failure counted).",
        );
        let _ = writeln!(out, "baton_store_documents_retried_total {}", load(&writer.documents_retried));
        family(
            &mut out,
            "baton_store_documents_abandoned_total",
            "counter",
            "Documents nobody awaits given up after their writes failed for the retry period.",
        );
        let _ = writeln!(out, "baton_store_documents_abandoned_total {}", load(&writer.documents_abandoned));
        family(&mut out, "baton_store_queue_documents", "gauge", "Documents waiting for the store writer.");
        let _ = writeln!(out, "baton_store_queue_documents {}", load(&writer.queued_documents));
        family(&mut out, "baton_store_queue_bytes", "gauge", "Bytes of documents waiting for the store writer.");
        let _ = writeln!(out, "baton_store_queue_bytes {}", load(&writer.queued_bytes));
        family(&mut out, "baton_store_removed_partitions_total", "counter", "Partitions removed by retention.");
        let _ = writeln!(out, "baton_store_removed_partitions_total {}", load(&writer.removed_partitions));
        family(&mut out, "baton_store_batch_seconds", "histogram", "Time to write one batch durably.");
        let mut cumulative = 0;
        for (bound, counter) in BATCH_LATENCY_BUCKETS.iter().zip(&writer.batch_latency) {
            cumulative += load(counter);
            let _ = writeln!(out, "baton_store_batch_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += load(&writer.batch_latency[BATCH_LATENCY_BUCKETS.len()]);
        let _ = writeln!(out, "baton_store_batch_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "baton_store_batch_seconds_sum {}", load(&writer.batch_latency_micros) as f64 / 1e6);
        let _ = writeln!(out, "baton_store_batch_seconds_count {}", load(&writer.batches));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_reason_and_the_histogram() {
        let metrics = Metrics::default();
        DocumentRejectedError {
            protocol: Protocol::Udp,
            reason: RejectReason::Document(ValidationErrorKind::InvalidTraceId),
            message: "bad",
            peer: None,
        }
        .emit(&metrics);
        DocumentsReceived { protocol: Protocol::Http, count: 3 }.emit(&metrics);
        let writer = WriterStats::default();
        writer.documents_retried.store(5, std::sync::atomic::Ordering::Relaxed);
        writer.documents_abandoned.store(2, std::sync::atomic::Ordering::Relaxed);
        let text = metrics.render(&writer);
        assert!(text.contains("baton_store_documents_retried_total 5\n"));
        assert!(text.contains("baton_store_documents_abandoned_total 2\n"));
        assert!(text.contains("baton_documents_rejected_total{protocol=\"udp\",reason=\"InvalidTraceId\"} 1\n"));
        assert!(text.contains("baton_documents_rejected_total{protocol=\"udp\",reason=\"InvalidHeader\"} 0\n"));
        assert!(!text.contains("protocol=\"http\",reason=\"InvalidHeader\""));
        assert!(!text.contains("protocol=\"otlp\",reason=\"InvalidHeader\""));
        assert!(text.contains("baton_documents_received_total{protocol=\"http\"} 3\n"));
        assert!(text.contains("baton_store_batch_seconds_bucket{le=\"+Inf\"} 0\n"));
    }
}
