//! The HTTP side of the listener: the X-Ray REST API (every operation a
//! `POST` with a JSON body, as botocore sends it) and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_model::{Document, TraceId, assemble, time};
use baton_query::Matcher;
use baton_query::filter::{self, Expr, ExprKind, FilterError, GroupRef};
use baton_store::{Cursor, Error as StoreError, Store, SummaryQuery, TimeRange, Writer};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::metrics::{
    ApiRequestServed, BytesReceived, DocumentRejectedError, DocumentsAccepted, DocumentsDroppedError,
    DocumentsReceived, Metrics, Protocol, RejectReason,
};
use crate::xray;

/// The largest request body taken, in bytes.
const MAX_BODY_BYTES: usize = 8 << 20;
/// The most trace ids one `BatchGetTraces` takes.
const MAX_BATCH_TRACE_IDS: usize = 100;
/// Trace summaries per `GetTraceSummaries` page.
const SUMMARIES_PER_PAGE: usize = 100;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) writer: Writer,
    pub(crate) metrics: Arc<Metrics>,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/TraceSegments", post(put_trace_segments))
        .route("/Traces", post(batch_get_traces))
        .route("/TraceSummaries", post(get_trace_summaries))
        .route("/metrics", get(metrics))
        .fallback(unknown_operation)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error as botocore parses it: status, `x-amzn-ErrorType`, `{"message"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "InvalidRequestException", message: message.into() }
    }
}

/// Maps store failures to API errors, in one place.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Full => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "ThrottledException",
                message: "the store is behind; retry later".into(),
            },
            StoreError::Stopped => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "ServiceUnavailable",
                message: "the server is shutting down".into(),
            },
            other => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "InternalFailure",
                message: other.to_string(),
            },
        }
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

fn request_id() -> HeaderValue {
    let sequence = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let started = (time::now() * 1000.0) as u64;
    HeaderValue::from_str(&format!("{started:012x}-{sequence:08x}")).expect("hex is a valid header value")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(code = self.code, error = %self.message, "api request failed");
        let body = serde_json::json!({ "message": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        headers.insert("x-amzn-RequestId", request_id());
        response
    }
}

struct ApiJson<T>(T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => {
                let mut response = (StatusCode::OK, body).into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert("x-amzn-RequestId", request_id());
                response
            }
            Err(error) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "InternalFailure",
                message: error.to_string(),
            }
            .into_response(),
        }
    }
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("request body does not fit the operation: {error}")))
}

fn served<T>(metrics: &Metrics, result: Result<T, ApiError>) -> Result<T, ApiError> {
    ApiRequestServed { failed: result.is_err() }.emit(metrics);
    result
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(error) => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: error.to_string(),
        }),
    }
}

// === PutTraceSegments ===

#[tracing::instrument(skip_all)]
async fn put_trace_segments(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<xray::PutTraceSegmentsResult>, ApiError> {
    let result = put_trace_segments_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn put_trace_segments_inner(state: &AppState, body: &[u8]) -> Result<xray::PutTraceSegmentsResult, ApiError> {
    let metrics = &state.metrics;
    BytesReceived { protocol: Protocol::Http, bytes: body.len() }.emit(metrics);
    let request: xray::PutTraceSegmentsRequest = parse_body(body)?;
    DocumentsReceived { protocol: Protocol::Http, count: request.trace_segment_documents.len() }.emit(metrics);
    let mut documents = Vec::with_capacity(request.trace_segment_documents.len());
    let mut unprocessed = Vec::new();
    for text in &request.trace_segment_documents {
        match Document::parse(text.as_bytes()) {
            Ok(document) => documents.push(document),
            Err(error) => {
                DocumentRejectedError {
                    protocol: Protocol::Http,
                    reason: RejectReason::Document(error.kind),
                    message: &error.message,
                    peer: None,
                }
                .emit(metrics);
                unprocessed.push(xray::UnprocessedTraceSegment {
                    id: error.id,
                    error_code: error.kind.code().to_owned(),
                    message: error.message,
                });
            }
        }
    }
    if !documents.is_empty() {
        let count = documents.len();
        let ack = state.writer.submit(documents).inspect_err(|error| {
            if matches!(error, StoreError::Full) {
                DocumentsDroppedError { protocol: Protocol::Http, count }.emit(metrics);
            }
        })?;
        ack.wait().await?;
        DocumentsAccepted { protocol: Protocol::Http, count }.emit(metrics);
    }
    Ok(xray::PutTraceSegmentsResult { unprocessed_trace_segments: unprocessed })
}

// === BatchGetTraces ===

#[tracing::instrument(skip_all)]
async fn batch_get_traces(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<xray::BatchGetTracesResult>, ApiError> {
    let result = batch_get_traces_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn batch_get_traces_inner(state: &AppState, body: &[u8]) -> Result<xray::BatchGetTracesResult, ApiError> {
    let request: xray::BatchGetTracesRequest = parse_body(body)?;
    if request.trace_ids.len() > MAX_BATCH_TRACE_IDS {
        return Err(ApiError::invalid(format!(
            "TraceIds holds {} ids; at most {MAX_BATCH_TRACE_IDS} are taken per call",
            request.trace_ids.len()
        )));
    }
    let mut unprocessed = Vec::new();
    let mut ids = Vec::new();
    for text in &request.trace_ids {
        match text.parse::<TraceId>() {
            Ok(id) => ids.push(id),
            Err(_) => unprocessed.push(text.clone()),
        }
    }
    let store = Arc::clone(&state.store);
    let wanted = ids.clone();
    // Reading and assembling are both blocking work: one trip to the pool.
    let traces = blocking(move || {
        let assembled = store.traces(&wanted)?.into_iter().map(|trace| {
            let assembled = assemble(trace.id, trace.documents.iter().map(String::as_str));
            xray::Trace {
                id: trace.id.to_string(),
                duration: assembled.duration,
                limit_exceeded: trace.limit_exceeded,
                segments: assembled
                    .segments
                    .into_iter()
                    .map(|segment| xray::Segment { id: segment.id, document: segment.document })
                    .collect(),
            }
        });
        Ok(assembled.collect::<Vec<_>>())
    })
    .await?;
    for id in &ids {
        let text = id.to_string();
        if !traces.iter().any(|trace| trace.id == text) && !unprocessed.contains(&text) {
            unprocessed.push(text);
        }
    }
    Ok(xray::BatchGetTracesResult { traces, unprocessed_trace_ids: unprocessed })
}

// === GetTraceSummaries ===

#[tracing::instrument(skip_all)]
async fn get_trace_summaries(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<xray::GetTraceSummariesResult>, ApiError> {
    let result = get_trace_summaries_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

fn encode_cursor(cursor: Cursor) -> String {
    format!("{:016x}.{}", cursor.start_time.to_bits(), cursor.id)
}

fn decode_cursor(token: &str) -> Option<Cursor> {
    let (bits, id) = token.split_once('.')?;
    let start_time = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
    Some(Cursor { start_time, id: id.parse().ok()? })
}

/// Whether a trace falls in a fixed-rate sample: decided by the trace id's
/// random bits, so every page and every call agree.
fn in_sample(id: TraceId, rate: f64) -> bool {
    let bytes = id.to_bytes();
    let random = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    (random as f64 / u64::MAX as f64) < rate
}

async fn get_trace_summaries_inner(state: &AppState, body: &[u8]) -> Result<xray::GetTraceSummariesResult, ApiError> {
    let request: xray::GetTraceSummariesRequest = parse_body(body)?;
    let filter = match request.filter_expression.as_deref().filter(|filter| !filter.trim().is_empty()) {
        None => None,
        Some(expression) => Some(matcher(state, expression).await?),
    };
    let time_range = match request.time_range_type.as_deref() {
        // A trace's services all record their times in its documents, so
        // the service time range is the event one.
        None | Some("Event") | Some("Service") => TimeRange::Event,
        Some("TraceId") => TimeRange::TraceId,
        Some(other) => {
            return Err(ApiError::invalid(format!("TimeRangeType must be TraceId, Event or Service, got {other:?}")));
        }
    };
    let (start, end) = (request.start_time.0, request.end_time.0);
    if end < start {
        return Err(ApiError::invalid("EndTime is before StartTime"));
    }
    let after = match request.next_token.as_deref() {
        None | Some("") => None,
        Some(token) => {
            Some(decode_cursor(token).ok_or_else(|| ApiError::invalid("NextToken is not one this server issued"))?)
        }
    };
    let sample_rate = match (request.sampling, request.sampling_strategy) {
        (Some(true), Some(xray::SamplingStrategy { name: Some(name), value: Some(rate) })) if name == "FixedRate" => {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ApiError::invalid("SamplingStrategy FixedRate Value must be between 0 and 1"));
            }
            Some(rate)
        }
        _ => None,
    };
    let query = SummaryQuery { start, end, time_range, after, limit: SUMMARIES_PER_PAGE, filter };
    let store = Arc::clone(&state.store);
    let page = blocking(move || store.summaries(&query)).await?;
    let trace_summaries = page
        .summaries
        .iter()
        .filter(|summary| sample_rate.is_none_or(|rate| in_sample(summary.id, rate)))
        .map(xray::WireTraceSummary::from)
        .collect();
    Ok(xray::GetTraceSummariesResult {
        trace_summaries,
        approximate_time: time::now(),
        traces_processed_count: page.scanned,
        next_token: page.next.map(encode_cursor),
    })
}

/// Parses a filter expression, substituting stored groups for `group.name`
/// and `group.arn`.
async fn matcher(state: &AppState, expression: &str) -> Result<Matcher, ApiError> {
    let invalid = |error: FilterError| ApiError::invalid(format!("FilterExpression: {error}"));
    let parsed = filter::parse(expression).map_err(invalid)?;
    let parsed = if parsed.group_refs().is_empty() {
        parsed
    } else {
        let store = Arc::clone(&state.store);
        let groups = blocking(move || store.groups()).await?;
        parsed
            .resolve_groups(|reference| {
                let group = groups.iter().find(|group| match reference {
                    GroupRef::Name(name) => group.name == *name,
                    GroupRef::Arn(arn) => group.arn == *arn,
                })?;
                match group.filter_expression.as_deref() {
                    Some(expression) => filter::parse(expression).ok(),
                    // A group without a filter selects every trace: an empty AND.
                    None => Some(Expr { position: 0, kind: ExprKind::And(Vec::new()) }),
                }
            })
            .map_err(invalid)?
    };
    Matcher::new(parsed).map_err(invalid)
}

// === the rest ===

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.writer.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn unknown_operation(State(state): State<AppState>, request: axum::extract::Request) -> ApiError {
    ApiRequestServed { failed: true }.emit(&state.metrics);
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "UnknownOperationException",
        message: format!("{} {} is not an operation this server provides", request.method(), request.uri().path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_next_token() {
        let cursor =
            Cursor { start_time: 1_795_416_221.584_088, id: "1-6b03e09d-0dcda7ecd820021bca1dccee".parse().unwrap() };
        assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        assert_eq!(decode_cursor("page-2-token"), None);
    }

    #[test]
    fn fixed_rate_sampling_keeps_about_the_rate() {
        let kept = (0..10_000u64)
            .filter(|n| {
                let mut bytes = [0u8; 16];
                bytes[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
                in_sample(TraceId::from_bytes(bytes), 0.25)
            })
            .count();
        assert!((2_300..2_700).contains(&kept), "{kept}");
    }
}
