//! The HTTP side of the listener: the X-Ray REST API (every operation a
//! `POST` with a JSON body, as botocore sends it) and `/metrics`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_model::{Document, InvocationLog, TraceId, assemble, time};
use baton_query::Matcher;
use baton_query::filter::{self, Expr, ExprKind, FilterError, GroupRef};
use baton_query::graph::{self as rollups, Element, Stats, contributions};
use baton_query::summarize_texts;
use baton_store::{Cursor, Error as StoreError, GraphPeriod, Group, Store, SummaryQuery, TimeRange, Writer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::console;
use crate::graph::{self, Selector};
use crate::metrics::{
    ApiRequestServed, BytesReceived, DocumentRejectedError, DocumentsAccepted, DocumentsDroppedError,
    DocumentsReceived, Metrics, Protocol, RejectReason,
};
use crate::{sampling, xray};

/// The largest request body taken, in bytes.
pub(crate) const MAX_BODY_BYTES: usize = 8 << 20;
/// The most trace ids one `BatchGetTraces` takes.
const MAX_BATCH_TRACE_IDS: usize = 100;
/// Trace summaries per `GetTraceSummaries` page.
const SUMMARIES_PER_PAGE: usize = 100;
/// Groups per `GetGroups` page.
const GROUPS_PER_PAGE: usize = 50;
/// The most traces a group's service graph is computed from; a group's
/// graph is summed from its traces, not kept as rollups.
const MAX_GROUP_GRAPH_TRACES: u64 = 1_000_000;
/// The most periods one `GetTimeSeriesServiceStatistics` answers.
const MAX_PERIODS: f64 = 10_000.0;
/// The longest group name X-Ray takes.
const MAX_GROUP_NAME_CHARS: usize = 32;
/// The group X-Ray itself keeps in every account: no one may create it.
const RESERVED_GROUP_NAME: &str = "Default";

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) writer: Writer,
    pub(crate) metrics: Arc<Metrics>,
    /// Held by every group change, so that checking a group and then
    /// writing it is one atomic step.
    pub(crate) group_changes: Arc<Mutex<()>>,
    /// Sampling rule changes, targets and statistics.
    pub(crate) sampling: Arc<sampling::Sampling>,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/TraceSegments", post(put_trace_segments))
        .route("/Traces", post(batch_get_traces))
        .route("/TraceSummaries", post(get_trace_summaries))
        .route("/ServiceGraph", post(get_service_graph))
        .route("/TraceGraph", post(get_trace_graph))
        .route("/TimeSeriesServiceStatistics", post(get_time_series_service_statistics))
        .route("/CreateGroup", post(create_group))
        .route("/GetGroup", post(get_group))
        .route("/Groups", post(get_groups))
        .route("/UpdateGroup", post(update_group))
        .route("/DeleteGroup", post(delete_group))
        .route("/FunctionLogs", post(put_function_logs))
        .merge(sampling::routes())
        .route("/metrics", get(metrics))
        .route("/", get(console::map))
        .route("/traces", get(console::traces))
        .route("/traces/{id}", get(console::trace))
        .route("/console/baton.css", get(console::stylesheet))
        .route("/console/baton.js", get(console::script))
        .fallback(unknown_operation)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error as botocore parses it: status, `x-amzn-ErrorType`, `{"message"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
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

pub(crate) struct ApiJson<T>(pub(crate) T);

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

pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("request body does not fit the operation: {error}")))
}

pub(crate) fn served<T>(metrics: &Metrics, result: Result<T, ApiError>) -> Result<T, ApiError> {
    ApiRequestServed { failed: result.is_err() }.emit(metrics);
    result
}

pub(crate) async fn blocking<T: Send + 'static>(
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

fn check_trace_id_count(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_BATCH_TRACE_IDS {
        return Err(ApiError::invalid(format!(
            "TraceIds holds {} ids; at most {MAX_BATCH_TRACE_IDS} are taken per call",
            ids.len()
        )));
    }
    Ok(())
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

// === FunctionLogs (Baton's own: the local Lambda runtime's invocation logs) ===

async fn put_function_logs(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let result = put_function_logs_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn put_function_logs_inner(state: &AppState, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let request: PutFunctionLogsRequest = parse_body(body)?;
    if request.logs.len() > MAX_FUNCTION_LOGS {
        return Err(ApiError::invalid(format!("at most {MAX_FUNCTION_LOGS} logs per request")));
    }
    let logs = request.logs.into_iter().map(WireFunctionLog::into_log).collect::<Result<Vec<_>, _>>()?;
    let store = Arc::clone(&state.store);
    blocking(move || store.put_logs(&logs)).await?;
    Ok(serde_json::json!({}))
}

/// The most invocation logs one `FunctionLogs` request carries.
const MAX_FUNCTION_LOGS: usize = 100;
/// The most lines one invocation log keeps.
const MAX_LOG_LINES: usize = 10_000;

/// `{"Logs": [{"TraceId", "RequestId", "FunctionName", "Time", "Lines"}]}`, in the API's own style.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutFunctionLogsRequest {
    logs: Vec<WireFunctionLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireFunctionLog {
    trace_id: String,
    request_id: String,
    function_name: String,
    time: f64,
    lines: Vec<String>,
}

impl WireFunctionLog {
    fn into_log(self) -> Result<InvocationLog, ApiError> {
        let trace_id = self
            .trace_id
            .parse()
            .map_err(|error| ApiError::invalid(format!("TraceId {:?}: {error}", self.trace_id)))?;
        if self.lines.len() > MAX_LOG_LINES {
            return Err(ApiError::invalid(format!("at most {MAX_LOG_LINES} lines per log")));
        }
        if !self.time.is_finite() {
            return Err(ApiError::invalid("Time must be a number of epoch seconds"));
        }
        Ok(InvocationLog {
            trace_id,
            request_id: self.request_id,
            function: self.function_name,
            time: self.time,
            lines: self.lines,
        })
    }
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
    check_trace_id_count(&request.trace_ids)?;
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

pub(crate) fn encode_cursor(cursor: Cursor) -> String {
    format!("{:016x}.{}", cursor.start_time.to_bits(), cursor.id)
}

pub(crate) fn decode_cursor(token: &str) -> Option<Cursor> {
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
    filter_matcher(state, expression).await?.map_err(|error| ApiError::invalid(format!("FilterExpression: {error}")))
}

/// A filter expression made ready to run, or the positioned reason it
/// cannot be; `Err` only when the stored groups cannot be read.
pub(crate) async fn filter_matcher(
    state: &AppState,
    expression: &str,
) -> Result<Result<Matcher, FilterError>, ApiError> {
    let parsed = match filter::parse(expression) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Err(error)),
    };
    let parsed = if parsed.group_refs().is_empty() {
        Ok(parsed)
    } else {
        let store = Arc::clone(&state.store);
        let groups = blocking(move || store.groups()).await?;
        parsed.resolve_groups(|reference| {
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
    };
    Ok(parsed.and_then(Matcher::new))
}

// === Service graph ===

#[tracing::instrument(skip_all)]
async fn get_service_graph(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<graph::GetServiceGraphResult>, ApiError> {
    let result = get_service_graph_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn get_service_graph_inner(state: &AppState, body: &[u8]) -> Result<graph::GetServiceGraphResult, ApiError> {
    let request: graph::GetServiceGraphRequest = parse_body(body)?;
    let range = time_range(&request.start_time, &request.end_time)?;
    let periods = group_graph(state, &request.group, range, None).await?;
    let elements = periods.into_iter().next().map(|period| period.elements).unwrap_or_default();
    Ok(graph::GetServiceGraphResult {
        start_time: range.0,
        end_time: range.1,
        services: graph::services(&elements, range),
        contains_old_group_versions: false,
    })
}

#[tracing::instrument(skip_all)]
async fn get_time_series_service_statistics(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<graph::GetTimeSeriesServiceStatisticsResult>, ApiError> {
    let result = get_time_series_service_statistics_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn get_time_series_service_statistics_inner(
    state: &AppState,
    body: &[u8],
) -> Result<graph::GetTimeSeriesServiceStatisticsResult, ApiError> {
    let request: graph::GetTimeSeriesServiceStatisticsRequest = parse_body(body)?;
    let range = time_range(&request.start_time, &request.end_time)?;
    let period = request.period.unwrap_or(60);
    if period == 0 || !period.is_multiple_of(60) {
        return Err(ApiError::invalid(format!("Period must be a positive multiple of 60 seconds, got {period}")));
    }
    if (range.1 - range.0) / period as f64 > MAX_PERIODS {
        return Err(ApiError::invalid(format!("the range holds more than {MAX_PERIODS} periods of {period} seconds")));
    }
    let selector = match request.entity_selector_expression.as_deref().filter(|text| !text.trim().is_empty()) {
        None => Selector::Entry,
        Some(text) => {
            let parsed =
                filter::parse(text).map_err(|error| ApiError::invalid(format!("EntitySelectorExpression: {error}")))?;
            Selector::of(parsed).ok_or_else(|| {
                ApiError::invalid("EntitySelectorExpression must be service(…) or edge(…, …), without braces")
            })?
        }
    };
    let periods = group_graph(state, &request.group, range, Some(period)).await?;
    Ok(graph::GetTimeSeriesServiceStatisticsResult {
        time_series_service_statistics: periods
            .iter()
            .map(|period| selector.point(period.start, &period.elements))
            .collect(),
        contains_old_group_versions: false,
    })
}

#[tracing::instrument(skip_all)]
async fn get_trace_graph(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<graph::GetTraceGraphResult>, ApiError> {
    let result = get_trace_graph_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn get_trace_graph_inner(state: &AppState, body: &[u8]) -> Result<graph::GetTraceGraphResult, ApiError> {
    let request: graph::GetTraceGraphRequest = parse_body(body)?;
    check_trace_id_count(&request.trace_ids)?;
    let ids: Vec<TraceId> = request.trace_ids.iter().filter_map(|text| text.parse().ok()).collect();
    let store = Arc::clone(&state.store);
    let summaries = blocking(move || {
        let traces = store.traces(&ids)?;
        Ok(traces.iter().map(|trace| summarize_texts(trace.documents.iter().map(String::as_str))).collect::<Vec<_>>())
    })
    .await?;
    let mut elements: BTreeMap<Element, Stats> = BTreeMap::new();
    for summary in &summaries {
        add_contributions(&mut elements, summary);
    }
    let start = summaries.iter().map(|summary| summary.start_time).fold(f64::INFINITY, f64::min);
    let end = summaries
        .iter()
        .map(|summary| summary.start_time + summary.duration.unwrap_or(0.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let range = if summaries.is_empty() { (0.0, 0.0) } else { (start, end) };
    Ok(graph::GetTraceGraphResult { services: graph::services(&elements, range) })
}

fn add_contributions(elements: &mut BTreeMap<Element, Stats>, summary: &baton_query::TraceSummary) {
    for (element, stats) in contributions(summary) {
        elements.entry(element).or_default().merge(&stats, 1);
    }
}

fn time_range(start: &xray::Timestamp, end: &xray::Timestamp) -> Result<(f64, f64), ApiError> {
    if end.0 < start.0 {
        return Err(ApiError::invalid("EndTime is before StartTime"));
    }
    Ok((start.0, end.0))
}

/// The graph of a group's traces over a range, by periods: the store's
/// rollups for the default group (and a group without a filter), else the
/// sum over the traces the group's filter matches.
async fn group_graph(
    state: &AppState,
    key: &xray::GroupKey,
    range: (f64, f64),
    period: Option<u64>,
) -> Result<Vec<GraphPeriod>, ApiError> {
    let default = key.group_arn.is_none() && key.group_name.as_deref().is_none_or(|name| name == RESERVED_GROUP_NAME);
    let expression = if default { None } else { find_group(state, key).await?.filter_expression };
    let Some(expression) = expression else {
        let store = Arc::clone(&state.store);
        return blocking(move || store.graph(range, period)).await;
    };
    let filter = matcher(state, &expression).await?;
    let mut periods: Vec<GraphPeriod> = rollups::periods(range, period)
        .into_iter()
        .map(|(start, end)| GraphPeriod { start, end, elements: BTreeMap::new() })
        .collect();
    let (first, last) = (periods[0].start, periods[periods.len() - 1].end);
    let mut query = SummaryQuery {
        start: first,
        end: last,
        time_range: TimeRange::Event,
        after: None,
        limit: 1000,
        filter: Some(filter),
    };
    let mut scanned = 0;
    loop {
        let store = Arc::clone(&state.store);
        let asked = query.clone();
        let page = blocking(move || store.summaries(&asked)).await?;
        scanned += page.scanned;
        for summary in &page.summaries {
            // The periods cover the range in whole minutes, as the rollups do.
            if let Some(period) =
                periods.iter_mut().find(|period| (period.start..period.end).contains(&summary.start_time))
            {
                add_contributions(&mut period.elements, summary);
            }
        }
        match page.next {
            None => break,
            Some(_) if scanned > MAX_GROUP_GRAPH_TRACES => {
                return Err(ApiError::invalid(format!(
                    "the group's graph over this range needs more than {MAX_GROUP_GRAPH_TRACES} traces; narrow the range"
                )));
            }
            Some(cursor) => query.after = Some(cursor),
        }
    }
    for period in &mut periods {
        period.elements.retain(|_, stats| !stats.is_empty());
    }
    Ok(periods)
}

// === Groups ===

#[tracing::instrument(skip_all)]
async fn create_group(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<xray::GroupResult>, ApiError> {
    let result = create_group_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn create_group_inner(state: &AppState, body: &[u8]) -> Result<xray::GroupResult, ApiError> {
    let request: xray::CreateGroupRequest = parse_body(body)?;
    check_group_name(&request.group_name)?;
    let filter_expression = checked_filter(request.filter_expression)?;
    let insights = request.insights_configuration.unwrap_or_default();
    let group = Group {
        arn: group_arn(&request.group_name),
        name: request.group_name,
        filter_expression,
        insights_enabled: insights.insights_enabled.unwrap_or(false),
        notifications_enabled: insights.notifications_enabled.unwrap_or(false),
    };
    check_insights(&group)?;
    let _changing = state.group_changes.lock().await;
    let store = Arc::clone(&state.store);
    let name = group.name.clone();
    if blocking(move || store.groups()).await?.iter().any(|existing| existing.name == name) {
        return Err(ApiError::invalid(format!("group {} already exists", group.name)));
    }
    put_group(state, group).await
}

#[tracing::instrument(skip_all)]
async fn get_group(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<xray::GroupResult>, ApiError> {
    let result = get_group_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn get_group_inner(state: &AppState, body: &[u8]) -> Result<xray::GroupResult, ApiError> {
    let key: xray::GroupKey = parse_body(body)?;
    let group = find_group(state, &key).await?;
    Ok(xray::GroupResult { group: xray::WireGroup::from(&group) })
}

#[tracing::instrument(skip_all)]
async fn get_groups(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<xray::GetGroupsResult>, ApiError> {
    let result = get_groups_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

/// Pages through the groups in name order; a `NextToken` is the name of
/// the last group of the page before.
async fn get_groups_inner(state: &AppState, body: &[u8]) -> Result<xray::GetGroupsResult, ApiError> {
    let request: xray::GetGroupsRequest = parse_body(body)?;
    let after = request.next_token.filter(|token| !token.is_empty());
    if after.as_deref().is_some_and(|token| check_group_name(token).is_err()) {
        return Err(ApiError::invalid("NextToken is not one this server issued"));
    }
    let store = Arc::clone(&state.store);
    let groups = blocking(move || store.groups()).await?;
    let mut page: Vec<&Group> =
        groups.iter().filter(|group| after.as_deref().is_none_or(|after| group.name.as_str() > after)).collect();
    let next_token = if page.len() > GROUPS_PER_PAGE {
        page.truncate(GROUPS_PER_PAGE);
        page.last().map(|group| group.name.clone())
    } else {
        None
    };
    Ok(xray::GetGroupsResult { groups: page.into_iter().map(xray::WireGroup::from).collect(), next_token })
}

#[tracing::instrument(skip_all)]
async fn update_group(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<xray::GroupResult>, ApiError> {
    let result = update_group_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn update_group_inner(state: &AppState, body: &[u8]) -> Result<xray::GroupResult, ApiError> {
    let request: xray::UpdateGroupRequest = parse_body(body)?;
    // An empty expression clears the filter; a left-out one keeps it.
    let filter_expression = match request.filter_expression {
        None => None,
        Some(expression) => Some(checked_filter(Some(expression))?),
    };
    let _changing = state.group_changes.lock().await;
    let mut group = find_group(state, &request.key).await?;
    if let Some(filter_expression) = filter_expression {
        group.filter_expression = filter_expression;
    }
    if let Some(insights) = request.insights_configuration {
        group.insights_enabled = insights.insights_enabled.unwrap_or(group.insights_enabled);
        group.notifications_enabled = insights.notifications_enabled.unwrap_or(group.notifications_enabled);
    }
    check_insights(&group)?;
    put_group(state, group).await
}

#[tracing::instrument(skip_all)]
async fn delete_group(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<xray::DeleteGroupResult>, ApiError> {
    let result = delete_group_inner(&state, &body).await;
    served(&state.metrics, result).map(ApiJson)
}

async fn delete_group_inner(state: &AppState, body: &[u8]) -> Result<xray::DeleteGroupResult, ApiError> {
    let key: xray::GroupKey = parse_body(body)?;
    let _changing = state.group_changes.lock().await;
    let group = find_group(state, &key).await?;
    let store = Arc::clone(&state.store);
    blocking(move || store.remove_group(&group.name)).await?;
    Ok(xray::DeleteGroupResult {})
}

async fn put_group(state: &AppState, group: Group) -> Result<xray::GroupResult, ApiError> {
    let store = Arc::clone(&state.store);
    let wire = xray::WireGroup::from(&group);
    blocking(move || store.put_group(&group)).await?;
    Ok(xray::GroupResult { group: wire })
}

/// The stored group a request names, by `GroupName` or `GroupARN` (both
/// given must name the same group).
async fn find_group(state: &AppState, key: &xray::GroupKey) -> Result<Group, ApiError> {
    if key.group_name.is_none() && key.group_arn.is_none() {
        return Err(ApiError::invalid("GroupName or GroupARN is required"));
    }
    let store = Arc::clone(&state.store);
    let groups = blocking(move || store.groups()).await?;
    groups
        .into_iter()
        .find(|group| {
            key.group_name.as_ref().is_none_or(|name| *name == group.name)
                && key.group_arn.as_ref().is_none_or(|arn| *arn == group.arn)
        })
        .ok_or_else(|| {
            let named = key.group_name.as_ref().or(key.group_arn.as_ref()).expect("one key is given");
            ApiError::invalid(format!("group {named} not found"))
        })
}

/// 1 to 32 letters, digits, `.`, `-` or `_`, and not X-Ray's own group.
fn check_group_name(name: &str) -> Result<(), ApiError> {
    let length = name.chars().count();
    if !(1..=MAX_GROUP_NAME_CHARS).contains(&length) {
        return Err(ApiError::invalid(format!(
            "GroupName must be 1 to {MAX_GROUP_NAME_CHARS} characters, got {length}"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Err(ApiError::invalid(format!(
            "GroupName may hold only letters, digits, '.', '-' and '_', got {bad:?}"
        )));
    }
    if name == RESERVED_GROUP_NAME {
        return Err(ApiError::invalid(format!("GroupName {RESERVED_GROUP_NAME} is reserved")));
    }
    Ok(())
}

/// A group's filter, checked: valid, and not built on other groups (which
/// are resolved one level deep). A blank expression is no filter.
fn checked_filter(expression: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(expression) = expression.filter(|expression| !expression.trim().is_empty()) else {
        return Ok(None);
    };
    let parsed = filter::parse(&expression).map_err(|error| ApiError::invalid(format!("FilterExpression: {error}")))?;
    if !parsed.group_refs().is_empty() {
        return Err(ApiError::invalid("FilterExpression: a group's filter may not refer to a group"));
    }
    Ok(Some(expression))
}

/// X-Ray sends insights notifications only for groups with insights on.
fn check_insights(group: &Group) -> Result<(), ApiError> {
    if group.notifications_enabled && !group.insights_enabled {
        return Err(ApiError::invalid("NotificationsEnabled requires InsightsEnabled"));
    }
    Ok(())
}

static GROUP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An ARN in X-Ray's form for a new group, under a local region and
/// account. Its last part, 26 characters of Crockford base32, is a hash of
/// the time and a counter, so that a group recreated under the same name
/// gets a new ARN.
fn group_arn(name: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let sequence = GROUP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    // RandomState's keys are random per process: two servers started at the
    // same instant still derive different ids.
    let hasher = RandomState::new();
    let high = hasher.hash_one((nanos, sequence, 0u8));
    let low = hasher.hash_one((nanos, sequence, 1u8));
    let mut bits = (u128::from(high) << 64) | u128::from(low);
    let mut id = [0u8; 26];
    for slot in id.iter_mut().rev() {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    let id = std::str::from_utf8(&id).expect("the alphabet is ascii");
    format!("arn:aws:xray:local:000000000000:group/{name}/{id}")
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

    fn message<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
        let error = result.unwrap_err();
        assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, "InvalidRequestException"));
        error.message
    }

    #[test]
    fn group_names_are_short_plain_and_not_reserved() {
        for name in ["slow", "a", "api.v2-errors_5xx", &"x".repeat(32)] {
            assert!(check_group_name(name).is_ok(), "{name}");
        }
        assert_eq!(message(check_group_name("")), "GroupName must be 1 to 32 characters, got 0");
        assert_eq!(message(check_group_name(&"x".repeat(33))), "GroupName must be 1 to 32 characters, got 33");
        assert_eq!(
            message(check_group_name("slow calls")),
            "GroupName may hold only letters, digits, '.', '-' and '_', got ' '"
        );
        assert_eq!(message(check_group_name("Default")), "GroupName Default is reserved");
        assert!(check_group_name("default").is_ok());
    }

    #[test]
    fn group_filters_are_checked_and_blank_means_none() {
        assert_eq!(checked_filter(None).unwrap(), None);
        assert_eq!(checked_filter(Some("  ".into())).unwrap(), None);
        assert_eq!(checked_filter(Some("duration > 2".into())).unwrap().as_deref(), Some("duration > 2"));
        assert!(message(checked_filter(Some("duration >".into()))).starts_with("FilterExpression: "));
        assert_eq!(
            message(checked_filter(Some("fault OR group.name = \"slow\"".into()))),
            "FilterExpression: a group's filter may not refer to a group"
        );
    }

    #[test]
    fn notifications_need_insights() {
        let group = |insights_enabled, notifications_enabled| Group {
            name: "slow".into(),
            arn: group_arn("slow"),
            filter_expression: None,
            insights_enabled,
            notifications_enabled,
        };
        assert!(check_insights(&group(true, true)).is_ok());
        assert!(check_insights(&group(false, false)).is_ok());
        assert_eq!(message(check_insights(&group(false, true))), "NotificationsEnabled requires InsightsEnabled");
    }

    #[test]
    fn group_arns_have_xrays_form_and_differ() {
        let arn = group_arn("slow");
        let id = arn.strip_prefix("arn:aws:xray:local:000000000000:group/slow/").expect(&arn);
        assert_eq!(id.len(), 26, "{arn}");
        assert!(id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()), "{arn}");
        assert_ne!(group_arn("slow"), group_arn("slow"));
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
