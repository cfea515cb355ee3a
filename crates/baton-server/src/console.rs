//! The web console's routes: the pages `baton-console` renders, from the
//! store's data, and its stylesheet and script.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use baton_console::{TimeWindow, TracesView, WindowError};
use baton_model::{TraceId, assemble, time};
use baton_query::summarize_texts;
use baton_store::{SummaryQuery, TimeRange};

use crate::http::{AppState, decode_cursor, encode_cursor, filter_matcher};

/// Traces listed per page of the search.
const TRACES_PER_PAGE: usize = 50;
/// The most matching traces whose response times the search's chart shows.
const CHART_TRACES: usize = 10_000;

type Params = Query<HashMap<String, String>>;

/// The window the query parameters ask for.
fn window(params: &HashMap<String, String>) -> Result<TimeWindow, WindowError> {
    let get = |name: &str| params.get(name).map(String::as_str);
    TimeWindow::from_query(get("range"), get("start"), get("end"), time::now())
}

/// `/`: the service map of a window, a node or edge possibly selected.
#[tracing::instrument(skip_all)]
pub(crate) async fn map(State(state): State<AppState>, Query(params): Params) -> Response {
    let window = match window(&params) {
        Ok(window) => window,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let store = Arc::clone(&state.store);
    let rendered = tokio::task::spawn_blocking(move || {
        let periods = store.graph((window.start, window.end), None).map_err(|error| error.to_string())?;
        let elements = periods.into_iter().next().map(|period| period.elements).unwrap_or_default();
        Ok(baton_console::map_page(&window, &elements, params.get("select").map(String::as_str)))
    })
    .await;
    page(rendered.map_err(|error| error.to_string()).and_then(|result| result))
}

/// `/traces`: the search; with `id`, straight to that trace.
#[tracing::instrument(skip_all)]
pub(crate) async fn traces(State(state): State<AppState>, Query(params): Params) -> Response {
    if let Some(id) = params.get("id").map(|id| id.trim()).filter(|id| !id.is_empty()) {
        // Only an id's characters go into the path: the rest of the text
        // cannot be one, and must not steer the redirect.
        let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let target = if safe.is_empty() { "/traces".to_owned() } else { format!("/traces/{safe}") };
        return Redirect::to(&target).into_response();
    }
    let window = match window(&params) {
        Ok(window) => window,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let filter = params.get("filter").cloned().unwrap_or_default();
    let (matcher, error) = if filter.trim().is_empty() {
        (None, None)
    } else {
        match filter_matcher(&state, &filter).await {
            Ok(Ok(matcher)) => (Some(matcher), None),
            Ok(Err(error)) => (None, Some(error)),
            Err(error) => return error.into_response(),
        }
    };
    let mut view = TracesView {
        window,
        filter,
        error,
        summaries: Vec::new(),
        response_times: Vec::new(),
        response_times_capped: false,
        next: None,
    };
    if view.error.is_none() {
        let after = params.get("next").and_then(|token| decode_cursor(token));
        let query = SummaryQuery {
            start: view.window.start,
            end: view.window.end,
            time_range: TimeRange::Event,
            after,
            limit: TRACES_PER_PAGE,
            filter: matcher,
        };
        let store = Arc::clone(&state.store);
        let found = tokio::task::spawn_blocking(move || {
            let page = store.summaries(&query)?;
            // The chart shows the whole search, not this page: the first
            // matches from the window's newest end.
            let mut chart = SummaryQuery { after: None, limit: 1_000, ..query };
            let mut response_times = Vec::new();
            loop {
                let matches = store.summaries(&chart)?;
                response_times.extend(matches.summaries.iter().filter_map(|summary| summary.response_time));
                match matches.next {
                    Some(cursor) if response_times.len() < CHART_TRACES => chart.after = Some(cursor),
                    rest => return Ok::<_, baton_store::Error>((page, response_times, rest.is_some())),
                }
            }
        })
        .await;
        match found {
            Ok(Ok((page, response_times, capped))) => {
                view.summaries = page.summaries;
                view.next = page.next.map(encode_cursor);
                view.response_times = response_times;
                view.response_times_capped = capped;
            }
            Ok(Err(error)) => return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
            Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        }
    }
    page(Ok(baton_console::traces_page(&view)))
}

/// The console's stylesheet.
pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", baton_console::STYLESHEET)
}

/// The console's script.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", baton_console::SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Part of the binary: a new one may bring new assets, so only briefly.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    response
}

/// A rendered page, or the plain-text reason it could not be.
fn page(result: Result<String, String>) -> Response {
    match result {
        Ok(html) => {
            let mut response = html.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

/// `/traces/{id}`: one trace, its timeline and its segments. A W3C trace
/// id leads to the page of its X-Ray form.
#[tracing::instrument(skip_all)]
pub(crate) async fn trace(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if let Ok(trace_id) = TraceId::from_w3c(id.trim()) {
        return Redirect::to(&format!("/traces/{trace_id}")).into_response();
    }
    let store = Arc::clone(&state.store);
    let rendered = tokio::task::spawn_blocking(move || {
        let Ok(trace_id) = id.trim().parse::<TraceId>() else {
            return Ok(baton_console::trace_page(&id, &[], None, &[]));
        };
        let stored = store.traces(&[trace_id]).map_err(|error| error.to_string())?;
        let Some(trace) = stored.first() else {
            return Ok(baton_console::trace_page(&id, &[], None, &[]));
        };
        let summary = summarize_texts(trace.documents.iter().map(String::as_str));
        let assembled = assemble(trace_id, trace.documents.iter().map(String::as_str));
        let documents: Vec<serde_json::Value> =
            assembled.segments.iter().filter_map(|segment| serde_json::from_str(&segment.document).ok()).collect();
        let logs = store.logs(trace_id).map_err(|error| error.to_string())?;
        Ok(baton_console::trace_page(&id, &documents, Some(&summary), &logs))
    })
    .await;
    page(rendered.map_err(|error| error.to_string()).and_then(|result| result))
}
