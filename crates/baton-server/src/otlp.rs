//! The OpenTelemetry receivers, each on its own address as the OpenTelemetry
//! Collector listens: OTLP/HTTP (`POST /v1/traces`, protobuf or JSON) and
//! OTLP/gRPC (`TraceService/Export`). `baton_otlp` decodes an export and
//! translates its spans into segment documents; each document then takes the
//! path of every other document (`Document::parse`, then the store
//! [`Writer`]), and the export is answered once its documents are durable,
//! as `PutTraceSegments` is.
//!
//! The gRPC side is one unary method written directly on axum's HTTP/2 (h2c,
//! which gRPC clients speak with prior knowledge): one length-prefixed
//! message in, one out, the status in trailers. Tonic would bring code
//! generation and a second server stack for that one call.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt::Write;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use baton_model::Document;
use baton_otlp::Translator;
use baton_otlp::proto::ExportTraceServiceRequest;
use baton_store::{Error as StoreError, Writer};
use flate2::read::MultiGzDecoder;
use http_body::Frame;
use prost::Message;

use crate::http::MAX_BODY_BYTES;
use crate::metrics::{
    BytesReceived, DocumentRejectedError, DocumentsAccepted, DocumentsDroppedError, DocumentsReceived, ExportOutcome,
    ExportServed, Metrics, OtlpTransport, Protocol, RejectReason, SpanRejectReason, SpansAccepted, SpansDroppedError,
    SpansReceived, SpansRejectedError,
};

/// The OTLP/HTTP path of the traces signal.
const TRACES_PATH: &str = "/v1/traces";
/// The one gRPC method served.
const EXPORT_METHOD: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// A gRPC message's prefix: a compressed flag and a big-endian length.
const GRPC_PREFIX_BYTES: usize = 5;
/// How many rejections a partial success names; the rest are counted.
const NAMED_REJECTIONS: usize = 3;
/// The longest reason a partial success names, in bytes: a reason may quote
/// the span's input (an id of any length), which must not grow the answer.
const MAX_REASON_BYTES: usize = 300;

/// The gRPC status codes (`google.rpc.Code`) these receivers answer with.
mod code {
    pub(super) const OK: i32 = 0;
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(super) const UNIMPLEMENTED: i32 = 12;
    pub(super) const INTERNAL: i32 = 13;
    pub(super) const UNAVAILABLE: i32 = 14;
}

/// What both receivers share.
#[derive(Clone)]
pub(crate) struct OtlpState {
    writer: Writer,
    metrics: Arc<Metrics>,
    translator: Arc<Translator>,
}

impl OtlpState {
    /// Receivers writing through `writer`, recording the span attributes
    /// named in `annotation_keys` as annotations.
    pub(crate) fn new(writer: Writer, metrics: Arc<Metrics>, annotation_keys: Vec<String>) -> OtlpState {
        OtlpState { writer, metrics, translator: Arc::new(Translator::new(annotation_keys)) }
    }
}

/// The OTLP/HTTP listener's routes.
pub(crate) fn http_router(state: OtlpState) -> Router {
    Router::new()
        .route(TRACES_PATH, post(export_http).fallback(method_not_allowed))
        .fallback(unknown_path)
        .with_state(state)
}

/// The OTLP/gRPC listener's routes.
pub(crate) fn grpc_router(state: OtlpState) -> Router {
    Router::new().route(EXPORT_METHOD, post(export_grpc)).fallback(unknown_method).with_state(state)
}

/// Why an export failed as a whole; its spans were not stored.
#[derive(Debug, PartialEq)]
enum Failure {
    /// The request cannot be read (framing, compression, encoding).
    Invalid(String),
    /// The body, or what it decompresses to, is over the bound.
    TooLarge(String),
    /// A media type or compression these receivers do not speak.
    Unsupported(String),
    /// The store cannot take the spans now; the client may retry.
    Unavailable(String),
    /// Writing failed.
    Internal(String),
}

impl Failure {
    /// The HTTP status, the gRPC code and the message.
    fn parts(&self) -> (StatusCode, i32, &str) {
        match self {
            Failure::Invalid(message) => (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, message),
            Failure::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, code::RESOURCE_EXHAUSTED, message),
            Failure::Unsupported(message) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, code::UNIMPLEMENTED, message),
            Failure::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message),
            Failure::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, message),
        }
    }

    fn outcome(&self) -> ExportOutcome {
        match self {
            Failure::Invalid(_) | Failure::TooLarge(_) | Failure::Unsupported(_) => ExportOutcome::Refused,
            Failure::Unavailable(_) => ExportOutcome::Unavailable,
            Failure::Internal(_) => ExportOutcome::Failed,
        }
    }

    fn from_store(error: StoreError) -> Failure {
        match error {
            StoreError::Full => Failure::Unavailable("the store is behind; retry later".into()),
            StoreError::Stopped => Failure::Unavailable("the server is shutting down".into()),
            other => Failure::Internal(other.to_string()),
        }
    }
}

/// An export whose stored spans are durable: how many spans it rejected, and
/// why, for the partial success.
#[derive(Debug, Default, PartialEq)]
struct Exported {
    rejected_spans: u64,
    /// The first few reasons, named.
    reasons: Vec<String>,
    /// How many more rejections there were.
    unnamed: usize,
}

impl Exported {
    fn reject(&mut self, spans: u64, mut reason: String) {
        self.rejected_spans += spans;
        if self.reasons.len() < NAMED_REJECTIONS {
            if reason.len() > MAX_REASON_BYTES {
                reason.truncate(reason.floor_char_boundary(MAX_REASON_BYTES));
                reason.push('…');
            }
            self.reasons.push(reason);
        } else {
            self.unnamed += 1;
        }
    }

    /// The partial success's `error_message`.
    fn message(&self) -> String {
        let mut message = self.reasons.join("; ");
        if self.unnamed > 0 {
            let _ = write!(message, "; and {} more", self.unnamed);
        }
        message
    }

    fn outcome(&self) -> ExportOutcome {
        if self.rejected_spans == 0 { ExportOutcome::Success } else { ExportOutcome::PartialSuccess }
    }
}

fn outcome(result: &Result<Exported, Failure>) -> ExportOutcome {
    result.as_ref().map_or_else(Failure::outcome, Exported::outcome)
}

/// Translates an export, validates each document and stores the valid ones,
/// waiting until they are durable. A span or document that fails is
/// rejected alone; its neighbours are stored.
async fn export(state: &OtlpState, request: &ExportTraceServiceRequest) -> Result<Exported, Failure> {
    let metrics = &state.metrics;
    SpansReceived { count: baton_otlp::span_count(request) }.emit(metrics);
    let translation = state.translator.translate(request);
    let mut exported = Exported::default();
    for rejected in translation.rejected {
        let reason = format!("span {}: {}", rejected.span_id, rejected.reason);
        SpansRejectedError { reason: SpanRejectReason::InvalidSpan, count: 1, message: &reason }.emit(metrics);
        exported.reject(1, reason);
    }
    DocumentsReceived { protocol: Protocol::Otlp, count: translation.documents.len() }.emit(metrics);
    let mut documents = Vec::with_capacity(translation.documents.len());
    let mut spans = 0;
    for translated in translation.documents {
        match Document::parse(translated.text.as_bytes()) {
            Ok(document) => {
                documents.push(document);
                spans += translated.spans;
            }
            Err(error) => {
                DocumentRejectedError {
                    protocol: Protocol::Otlp,
                    reason: RejectReason::Document(error.kind),
                    message: &error.message,
                    peer: None,
                }
                .emit(metrics);
                let id = error.id.as_deref().unwrap_or("?");
                let reason = format!("document {id} ({} spans): {}", translated.spans, error.message);
                SpansRejectedError {
                    reason: SpanRejectReason::InvalidDocument,
                    count: translated.spans,
                    message: &reason,
                }
                .emit(metrics);
                exported.reject(translated.spans, reason);
            }
        }
    }
    if documents.is_empty() {
        return Ok(exported);
    }
    let count = documents.len();
    let stored = match state.writer.submit(documents) {
        Ok(ack) => ack.wait().await,
        Err(error) => Err(error),
    };
    if let Err(error) = stored {
        if matches!(error, StoreError::Full) {
            DocumentsDroppedError { protocol: Protocol::Otlp, count }.emit(metrics);
        }
        let failure = Failure::from_store(error);
        SpansDroppedError { count: spans, message: failure.parts().2 }.emit(metrics);
        return Err(failure);
    }
    DocumentsAccepted { protocol: Protocol::Otlp, count }.emit(metrics);
    SpansAccepted { count: spans }.emit(metrics);
    Ok(exported)
}

/// Reads a request body of at most `limit` bytes, whether it came with a
/// `Content-Length`, chunked, or as HTTP/2 frames; a larger one is refused
/// once its first byte past the bound arrives.
async fn read_body(mut body: Body, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|error| Failure::Invalid(format!("reading the request body: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(Failure::TooLarge(format!("the request body is over {limit} bytes")));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// Decompresses a gzip body (one or more members) into at most `limit`
/// bytes: a small body that inflates past the bound (a gzip bomb) is
/// refused having used no more than that.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| Failure::Invalid(format!("the gzip body is corrupt: {error}")))?;
    if bytes.len() > limit {
        return Err(Failure::TooLarge(format!("the body decompresses to over {limit} bytes")));
    }
    Ok(bytes)
}

/// Whether the named header (`Content-Encoding`, `grpc-encoding`) says gzip;
/// absent or `identity` is no compression, anything else unsupported.
fn is_gzip(headers: &HeaderMap, name: &HeaderName) -> Result<bool, Failure> {
    let Some(value) = headers.get(name) else { return Ok(false) };
    let value = value.to_str().unwrap_or("").trim();
    if value.eq_ignore_ascii_case("gzip") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else {
        Err(Failure::Unsupported(format!("{name} {value:?} is not supported; send gzip or identity")))
    }
}

// === OTLP/HTTP ===

/// The two encodings of OTLP/HTTP; the answer is in the request's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset`
    /// aside), if OTLP has it.
    fn of(headers: &HeaderMap) -> Option<Encoding> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    fn decode(self, body: &[u8]) -> Result<ExportTraceServiceRequest, Failure> {
        let decoded = match self {
            Encoding::Protobuf => baton_otlp::decode_protobuf(body),
            Encoding::Json => baton_otlp::decode_json(body),
        };
        decoded.map_err(|error| Failure::Invalid(error.to_string()))
    }

    /// The `ExportTraceServiceResponse`.
    fn response(self, exported: &Exported) -> Vec<u8> {
        match self {
            Encoding::Protobuf => baton_otlp::response_protobuf(exported.rejected_spans, &exported.message()),
            Encoding::Json => baton_otlp::response_json(exported.rejected_spans, &exported.message()).into_bytes(),
        }
    }

    /// A `google.rpc.Status`.
    fn status(self, code: i32, message: &str) -> Vec<u8> {
        match self {
            Encoding::Protobuf => RpcStatus { code, message: message.to_owned() }.encode_to_vec(),
            Encoding::Json => serde_json::json!({ "code": code, "message": message }).to_string().into_bytes(),
        }
    }
}

/// An error answer with a `google.rpc.Status` body.
fn status_response(status: StatusCode, encoding: Encoding, code: i32, message: &str) -> Response {
    tracing::debug!(%status, error = message, "otlp export failed");
    let mut response =
        (status, [(header::CONTENT_TYPE, encoding.content_type())], encoding.status(code, message)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // OTLP clients retry a 503 after the time it names, else with backoff.
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[tracing::instrument(skip_all)]
async fn export_http(State(state): State<OtlpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let encoding = Encoding::of(&parts.headers);
    let result = match encoding {
        Some(encoding) => receive_http(&state, &parts.headers, body, encoding).await,
        None => Err(Failure::Unsupported("Content-Type must be application/x-protobuf or application/json".into())),
    };
    ExportServed { transport: OtlpTransport::Http, outcome: outcome(&result) }.emit(&state.metrics);
    // A request in no known encoding is answered in JSON, which people read.
    let encoding = encoding.unwrap_or(Encoding::Json);
    match result {
        Ok(exported) => {
            ([(header::CONTENT_TYPE, encoding.content_type())], encoding.response(&exported)).into_response()
        }
        Err(failure) => {
            let (status, code, message) = failure.parts();
            status_response(status, encoding, code, message)
        }
    }
}

async fn receive_http(
    state: &OtlpState,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Exported, Failure> {
    let gzip = is_gzip(headers, &header::CONTENT_ENCODING)?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    BytesReceived { protocol: Protocol::Otlp, bytes: body.len() }.emit(&state.metrics);
    let body = if gzip { Cow::Owned(gunzip(&body, MAX_BODY_BYTES)?) } else { Cow::Borrowed(&body[..]) };
    let request = encoding.decode(&body)?;
    export(state, &request).await
}

async fn method_not_allowed(State(state): State<OtlpState>, headers: HeaderMap) -> Response {
    ExportServed { transport: OtlpTransport::Http, outcome: ExportOutcome::Refused }.emit(&state.metrics);
    let encoding = Encoding::of(&headers).unwrap_or(Encoding::Json);
    let mut response =
        status_response(StatusCode::METHOD_NOT_ALLOWED, encoding, code::UNIMPLEMENTED, "traces are exported by POST");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn unknown_path(State(state): State<OtlpState>, request: Request) -> Response {
    ExportServed { transport: OtlpTransport::Http, outcome: ExportOutcome::Refused }.emit(&state.metrics);
    let encoding = Encoding::of(request.headers()).unwrap_or(Encoding::Json);
    let message = format!("{} is not served here; traces are exported to {TRACES_PATH}", request.uri().path());
    status_response(StatusCode::NOT_FOUND, encoding, code::UNIMPLEMENTED, &message)
}

// === OTLP/gRPC ===

#[tracing::instrument(skip_all)]
async fn export_grpc(State(state): State<OtlpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/grpc") {
        // What the gRPC protocol asks of a server for a request that is not gRPC.
        ExportServed { transport: OtlpTransport::Grpc, outcome: ExportOutcome::Refused }.emit(&state.metrics);
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/grpc").into_response();
    }
    let result = receive_grpc(&state, &parts.headers, body).await;
    ExportServed { transport: OtlpTransport::Grpc, outcome: outcome(&result) }.emit(&state.metrics);
    match result {
        Ok(exported) => grpc_response(
            Some(baton_otlp::response_protobuf(exported.rejected_spans, &exported.message())),
            code::OK,
            "",
        ),
        Err(failure) => {
            let (_, code, message) = failure.parts();
            tracing::debug!(code, error = message, "otlp export failed");
            grpc_response(None, code, message)
        }
    }
}

async fn receive_grpc(state: &OtlpState, headers: &HeaderMap, body: Body) -> Result<Exported, Failure> {
    let body = read_body(body, GRPC_PREFIX_BYTES + MAX_BODY_BYTES).await?;
    BytesReceived { protocol: Protocol::Otlp, bytes: body.len() }.emit(&state.metrics);
    let (compressed, message) = unframe(&body)?;
    let message = match compressed {
        false => Cow::Borrowed(message),
        true if is_gzip(headers, &HeaderName::from_static("grpc-encoding"))? => {
            Cow::Owned(gunzip(message, MAX_BODY_BYTES)?)
        }
        true => return Err(Failure::Invalid("the message is flagged compressed but grpc-encoding names none".into())),
    };
    let request = baton_otlp::decode_protobuf(&message).map_err(|error| Failure::Invalid(error.to_string()))?;
    export(state, &request).await
}

/// The one message of a unary call: whether it is compressed, and its bytes.
fn unframe(body: &[u8]) -> Result<(bool, &[u8]), Failure> {
    let Some((prefix, message)) = body.split_first_chunk::<GRPC_PREFIX_BYTES>() else {
        return Err(Failure::Invalid(format!("the request holds no message, only {} bytes", body.len())));
    };
    let compressed = match prefix[0] {
        0 => false,
        1 => true,
        flag => return Err(Failure::Invalid(format!("unknown compressed flag {flag}"))),
    };
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    match message.len() {
        found if found < length => {
            Err(Failure::Invalid(format!("the message is cut short: {found} of {length} bytes")))
        }
        found if found > length => Err(Failure::Invalid("a unary call takes one message; more bytes followed".into())),
        _ => Ok((compressed, message)),
    }
}

/// A gRPC answer: the message, if any, length-prefixed and uncompressed, and
/// the status in trailers.
fn grpc_response(message: Option<Vec<u8>>, code: i32, text: &str) -> Response {
    let message = message.map(|message| {
        let mut framed = Vec::with_capacity(GRPC_PREFIX_BYTES + message.len());
        framed.push(0);
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        Bytes::from(framed)
    });
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if !text.is_empty() {
        let text = HeaderValue::from_str(&percent_encode(text)).expect("percent-encoded text is a valid header value");
        trailers.insert("grpc-message", text);
    }
    let mut response = Response::new(Body::new(GrpcBody { message, trailers: Some(trailers) }));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip"));
    response
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII,
/// and `%` itself.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

async fn unknown_method(State(state): State<OtlpState>, request: Request) -> Response {
    ExportServed { transport: OtlpTransport::Grpc, outcome: ExportOutcome::Refused }.emit(&state.metrics);
    grpc_response(None, code::UNIMPLEMENTED, &format!("unknown method {}", request.uri().path()))
}

/// A unary gRPC answer's body: at most one data frame, then the trailers
/// frame that carries the status.
struct GrpcBody {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl HttpBody for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match (self.message.take(), self.trailers.take()) {
            (Some(message), trailers) => {
                self.trailers = trailers;
                Frame::data(message)
            }
            (None, Some(trailers)) => Frame::trailers(trailers),
            (None, None) => return Poll::Ready(None),
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use axum::http::Request as HttpRequest;
    use baton_model::TraceId;
    use baton_otlp::proto::{
        AnyValue, ExportTraceServiceResponse, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Value,
    };
    use baton_store::{SqliteStore, Store, WriterConfig};
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    const TRACE: [u8; 16] = [0x67, 0x44, 0xc0, 0, 1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 1, 0x23, 0x45, 0x67];

    /// Receivers over a fresh store.
    struct Harness {
        store: Arc<dyn Store>,
        state: OtlpState,
        _dir: tempfile::TempDir,
    }

    impl Harness {
        fn new() -> Harness {
            let dir = tempfile::tempdir().expect("temp dir");
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("store"));
            let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
            let state = OtlpState::new(writer, Arc::default(), Vec::new());
            Harness { store, state, _dir: dir }
        }

        fn stored_documents(&self) -> Vec<String> {
            let id = TraceId::from_bytes(TRACE);
            self.store.traces(&[id]).expect("read").into_iter().flat_map(|trace| trace.documents).collect()
        }

        fn metric(&self, line_start: &str) -> String {
            let text = self.state.metrics.render(self.state.writer.stats());
            text.lines().find(|line| line.starts_with(line_start)).expect(line_start).to_owned()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.state.writer.stop();
        }
    }

    /// A span of `TRACE`, 250 ms long.
    fn span(id: &[u8], parent: &[u8], kind: i32, name: &str) -> Span {
        Span {
            trace_id: TRACE.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: parent.to_vec(),
            name: name.into(),
            kind,
            start_time_unix_nano: 1_732_558_848_000_000_000,
            end_time_unix_nano: 1_732_558_848_250_000_000,
            ..Span::default()
        }
    }

    /// A SERVER span with an INTERNAL child, and a span whose id is 3 bytes.
    fn spans_with_one_invalid() -> ExportTraceServiceRequest {
        let root = [0x23, 0xd6, 0x6e, 0x1a, 0x8b, 0x10, 0x71, 0x4a];
        request(vec![
            span(&root, &[], 2, "GET /orders/{id}"),
            span(&[0x2e, 0x6e, 0xa5, 0xe3, 0x8a, 0xd1, 0x43, 0x94], &root, 1, "validate"),
            span(&[0x0a, 0x0b, 0x0c], &root, 1, "broken"),
        ])
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        let service = KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(Value::String("checkout".into())) }),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: vec![service] }),
                scope_spans: vec![ScopeSpans { scope: None, spans }],
            }],
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut body = vec![flag];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        body
    }

    /// What a router answered: status, headers, body and trailers.
    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        trailers: Option<HeaderMap>,
    }

    impl Answer {
        fn grpc_status(&self) -> (&str, &str) {
            let trailers = self.trailers.as_ref().expect("trailers");
            let field = |name: &str| trailers.get(name).map_or("", |value| value.to_str().expect("ascii"));
            (field("grpc-status"), field("grpc-message"))
        }
    }

    async fn send(router: Router, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let mut request = HttpRequest::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router.oneshot(request.body(Body::from(body)).expect("request")).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("body");
        let trailers = collected.trailers().cloned();
        Answer { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers }
    }

    async fn post_http(harness: &Harness, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        send(http_router(harness.state.clone()), "POST", TRACES_PATH, headers, body).await
    }

    async fn post_grpc(harness: &Harness, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let headers = [&[("content-type", "application/grpc")], headers].concat();
        send(grpc_router(harness.state.clone()), "POST", EXPORT_METHOD, &headers, body).await
    }

    const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

    #[test]
    fn a_unary_call_holds_exactly_one_message() {
        assert_eq!(unframe(&framed(0, b"abc")), Ok((false, &b"abc"[..])));
        assert_eq!(unframe(&framed(1, b"")), Ok((true, &b""[..])));
        let invalid = |body: &[u8]| match unframe(body) {
            Err(Failure::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(invalid(&[0, 0, 0]), "the request holds no message, only 3 bytes");
        assert_eq!(invalid(&framed(0, b"abc")[..6]), "the message is cut short: 1 of 3 bytes");
        assert_eq!(
            invalid(&[framed(0, b"abc"), framed(0, b"d")].concat()),
            "a unary call takes one message; more bytes followed"
        );
        assert_eq!(invalid(&framed(2, b"abc")), "unknown compressed flag 2");
    }

    #[test]
    fn gzip_bodies_inflate_within_the_bound() {
        let text = b"spans ".repeat(1000);
        assert_eq!(gunzip(&gzip(&text), text.len()).expect("inflates"), text);
        // Two members, as a streaming compressor may write.
        assert_eq!(gunzip(&[gzip(b"ab"), gzip(b"cd")].concat(), 10).expect("inflates"), b"abcd");
        // 64 MB of zeros is 64 KB of gzip: refused after the bound, not held.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0; 64 << 20]).expect("gzip");
        let bomb = encoder.finish().expect("gzip");
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_eq!(
            gunzip(&bomb, 1 << 20),
            Err(Failure::TooLarge("the body decompresses to over 1048576 bytes".into()))
        );
        assert!(matches!(gunzip(b"not gzip", 100), Err(Failure::Invalid(_))));
    }

    #[test]
    fn content_types_and_encodings_are_read_leniently() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            pairs.iter().map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value))).collect()
        };
        let of = |value| Encoding::of(&headers(&[("content-type", value)]));
        assert_eq!(of("application/x-protobuf"), Some(Encoding::Protobuf));
        assert_eq!(of("Application/JSON; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(of("application/grpc"), None);
        assert_eq!(Encoding::of(&HeaderMap::new()), None);
        let gzip = |value| is_gzip(&headers(&[("content-encoding", value)]), &header::CONTENT_ENCODING);
        assert_eq!(gzip("gzip"), Ok(true));
        assert_eq!(gzip("GZIP"), Ok(true));
        assert_eq!(gzip("identity"), Ok(false));
        assert_eq!(is_gzip(&HeaderMap::new(), &header::CONTENT_ENCODING), Ok(false));
        assert!(matches!(gzip("br"), Err(Failure::Unsupported(_))));
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("span 0a0b0c: 100% bad\névé"), "span 0a0b0c: 100%25 bad%0A%C3%A9v%C3%A9");
    }

    #[tokio::test]
    async fn protobuf_json_and_gzip_exports_are_stored() {
        let harness = Harness::new();
        let root = [0x23, 0xd6, 0x6e, 0x1a, 0x8b, 0x10, 0x71, 0x4a];
        let body = request(vec![span(&root, &[], 2, "GET /orders/{id}")]).encode_to_vec();
        let answer = post_http(&harness, &[PROTOBUF], body.clone()).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/x-protobuf");
        assert_eq!(&answer.body[..], b"", "an empty ExportTraceServiceResponse");

        let answer = post_http(&harness, &[PROTOBUF, ("content-encoding", "gzip")], gzip(&body)).await;
        assert_eq!(answer.status, StatusCode::OK);

        let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"6744c0000123456789abcdef01234567",
            "spanId":"53995c3f42cd8ad8","name":"GET","kind":2,
            "startTimeUnixNano":"1732558848000000000","endTimeUnixNano":"1732558848100000000"}]}]}]}"#;
        let answer = post_http(&harness, &[("content-type", "application/json")], json.into()).await;
        assert_eq!((answer.status, &answer.body[..]), (StatusCode::OK, &b"{}"[..]));
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");

        // The gzip export sent the first span again: one document per id.
        let documents = harness.stored_documents();
        assert_eq!(documents.len(), 2, "{documents:?}");
        assert!(documents.iter().any(|text| text.contains(r#""id":"23d66e1a8b10714a""#)), "{documents:?}");
        assert!(documents.iter().any(|text| text.contains(r#""id":"53995c3f42cd8ad8""#)), "{documents:?}");
        assert_eq!(harness.metric("baton_otlp_spans_accepted_total"), "baton_otlp_spans_accepted_total 3");
        assert_eq!(
            harness.metric("baton_otlp_requests_total{transport=\"http\",outcome=\"success\"}"),
            "baton_otlp_requests_total{transport=\"http\",outcome=\"success\"} 3"
        );
    }

    #[tokio::test]
    async fn an_invalid_span_is_a_partial_success_and_its_neighbours_are_stored() {
        let harness = Harness::new();
        let answer = post_http(&harness, &[PROTOBUF], spans_with_one_invalid().encode_to_vec()).await;
        assert_eq!(answer.status, StatusCode::OK);
        let response = ExportTraceServiceResponse::decode(answer.body).expect("a response");
        let partial = response.partial_success.expect("a partial success");
        assert_eq!(partial.rejected_spans, 1);
        assert_eq!(partial.error_message, "span 0a0b0c: span id must be 8 bytes, not all zero, got \"0a0b0c\"");
        let documents = harness.stored_documents();
        assert_eq!(documents.len(), 1, "one segment with its subsegment embedded: {documents:?}");
        assert!(documents[0].contains(r#""id":"2e6ea5e38ad14394""#), "{documents:?}");
        assert_eq!(harness.metric("baton_otlp_spans_received_total"), "baton_otlp_spans_received_total 3");
        assert_eq!(harness.metric("baton_otlp_spans_accepted_total"), "baton_otlp_spans_accepted_total 2");
        assert_eq!(
            harness.metric("baton_otlp_spans_rejected_total{reason=\"InvalidSpan\"}"),
            "baton_otlp_spans_rejected_total{reason=\"InvalidSpan\"} 1"
        );

        // The same in JSON: rejectedSpans is an int64, a string in OTLP/JSON.
        let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"6744c0000123456789abcdef01234567","spanId":"0a0b0c","name":"broken","kind":1,
             "startTimeUnixNano":"1732558848000000000","endTimeUnixNano":"1732558848100000000"}]}]}]}"#;
        let answer = post_http(&harness, &[("content-type", "application/json")], json.into()).await;
        assert_eq!(answer.status, StatusCode::OK);
        let response: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(response["partialSuccess"]["rejectedSpans"], "1");
    }

    #[test]
    fn a_partial_success_names_the_first_rejections_and_counts_the_rest() {
        let mut exported = Exported::default();
        for n in 0..5 {
            exported.reject(2, format!("span {n}: bad"));
        }
        assert_eq!(exported.rejected_spans, 10);
        assert_eq!(exported.message(), "span 0: bad; span 1: bad; span 2: bad; and 2 more");

        let mut exported = Exported::default();
        exported.reject(1, format!("span {}: bad", "é".repeat(1000)));
        assert_eq!(exported.message(), format!("span {}…", "é".repeat((MAX_REASON_BYTES - 5) / 2)));
    }

    #[tokio::test]
    async fn unreadable_unsupported_and_oversized_requests_are_refused() {
        let harness = Harness::new();
        let answer = post_http(&harness, &[PROTOBUF], b"\xff\xff\xff".to_vec()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let status = RpcStatus::decode(answer.body).expect("a google.rpc.Status");
        assert_eq!(status.code, code::INVALID_ARGUMENT);
        assert!(
            status.message.starts_with("the body is not an OTLP ExportTraceServiceRequest in protobuf"),
            "{status:?}"
        );

        let answer = post_http(&harness, &[("content-type", "text/plain")], b"spans".to_vec()).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let status: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(status["code"], code::UNIMPLEMENTED);

        let answer = post_http(&harness, &[PROTOBUF, ("content-encoding", "br")], b"spans".to_vec()).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let answer = post_http(&harness, &[PROTOBUF], vec![0; MAX_BODY_BYTES + 1]).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);

        let router = http_router(harness.state.clone());
        let answer = send(router.clone(), "GET", TRACES_PATH, &[], Vec::new()).await;
        assert_eq!(
            (answer.status, answer.headers[header::ALLOW].as_bytes()),
            (StatusCode::METHOD_NOT_ALLOWED, &b"POST"[..])
        );
        let answer = send(router, "POST", "/v1/metrics", &[PROTOBUF], Vec::new()).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);

        assert_eq!(
            harness.metric("baton_otlp_requests_total{transport=\"http\",outcome=\"refused\"}"),
            "baton_otlp_requests_total{transport=\"http\",outcome=\"refused\"} 6"
        );
        assert!(harness.stored_documents().is_empty());
    }

    #[tokio::test]
    async fn grpc_answers_a_framed_message_and_the_status_in_trailers() {
        let harness = Harness::new();
        let message = spans_with_one_invalid().encode_to_vec();
        let answer = post_grpc(&harness, &[], framed(0, &message)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(answer.grpc_status().0, "0");
        let (prefix, message) = answer.body.split_at(GRPC_PREFIX_BYTES);
        assert_eq!(prefix, [0, 0, 0, 0, message.len() as u8]);
        let partial = ExportTraceServiceResponse::decode(message).expect("a response").partial_success;
        assert_eq!(partial.expect("a partial success").rejected_spans, 1);

        let answer = post_grpc(&harness, &[("grpc-encoding", "gzip")], framed(1, &gzip(&message_of_one_span()))).await;
        assert_eq!((answer.grpc_status(), &answer.body[..]), (("0", ""), &[0, 0, 0, 0, 0][..]));
        assert_eq!(harness.stored_documents().len(), 2);
    }

    fn message_of_one_span() -> Vec<u8> {
        request(vec![span(&[0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8], &[], 2, "GET")]).encode_to_vec()
    }

    #[tokio::test]
    async fn grpc_errors_are_statuses_in_trailers() {
        let harness = Harness::new();
        let answer = post_grpc(&harness, &[], framed(0, b"\xff\xff\xff")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.body.is_empty());
        let (status, message) = answer.grpc_status();
        assert_eq!(status, "3");
        assert!(message.starts_with("the body is not an OTLP ExportTraceServiceRequest"), "{message}");

        let answer = post_grpc(&harness, &[("grpc-encoding", "snappy")], framed(1, b"xx")).await;
        assert_eq!(answer.grpc_status().0, "12");
        let answer = post_grpc(&harness, &[], framed(1, &gzip(&message_of_one_span()))).await;
        assert_eq!(answer.grpc_status().0, "3", "compressed without grpc-encoding");

        let router = grpc_router(harness.state.clone());
        let grpc = [("content-type", "application/grpc")];
        let answer = send(
            router.clone(),
            "POST",
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            &grpc,
            framed(0, b""),
        )
        .await;
        assert_eq!(
            answer.grpc_status(),
            ("12", "unknown method /opentelemetry.proto.collector.logs.v1.LogsService/Export")
        );
        let answer = send(router, "POST", EXPORT_METHOD, &[PROTOBUF], framed(0, b"")).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(harness.stored_documents().is_empty());
    }

    #[tokio::test]
    async fn a_store_that_takes_nothing_now_asks_for_a_retry() {
        let harness = Harness::new();
        harness.state.writer.stop();
        let body = message_of_one_span();
        let answer = post_http(&harness, &[PROTOBUF], body.clone()).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");
        assert_eq!(RpcStatus::decode(answer.body).expect("a status").code, code::UNAVAILABLE);
        let answer = post_grpc(&harness, &[], framed(0, &body)).await;
        assert_eq!(answer.grpc_status(), ("14", "the server is shutting down"));
        assert_eq!(harness.metric("baton_otlp_spans_dropped_total"), "baton_otlp_spans_dropped_total 2");
        assert_eq!(
            harness.metric("baton_otlp_requests_total{transport=\"grpc\",outcome=\"unavailable\"}"),
            "baton_otlp_requests_total{transport=\"grpc\",outcome=\"unavailable\"} 1"
        );
    }
}
