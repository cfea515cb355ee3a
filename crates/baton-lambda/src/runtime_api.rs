//! The Lambda Runtime API (2018-06-01) served to one function process: the
//! process long-polls `next` for an invocation and posts its response or
//! error; each call becomes a [`RuntimeEvent`] for the invocation driver.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::LambdaError;

/// Lambda's limit on a synchronous response (and request) payload: 6 MB.
pub(crate) const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// An invocation waiting for the process to ask for it.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_header: String,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
}

/// An error the process reported, for an invocation or for its initialisation.
#[derive(Debug, Clone)]
pub(crate) struct PostedError {
    /// The body as posted: by convention `{"errorMessage", "errorType", "stackTrace"}`.
    pub(crate) body: Bytes,
    /// `Lambda-Runtime-Function-Error-Type`.
    pub(crate) error_type: Option<String>,
    /// `Lambda-Runtime-Function-XRay-Error-Cause`: an X-Ray `cause` object, as JSON.
    pub(crate) xray_cause: Option<String>,
}

/// What the process did, in the order it did it.
#[derive(Debug)]
pub(crate) enum RuntimeEvent {
    /// The process asks for its next invocation: it is initialised, or done with the last one.
    Next,
    /// The invocation's result.
    Response { request_id: String, payload: Bytes },
    /// The invocation failed.
    Error { request_id: String, error: PostedError },
    /// Initialisation failed; the process will exit.
    InitError(PostedError),
}

/// The driver's side of a served Runtime API.
pub(crate) struct RuntimeChannels {
    pub(crate) events: mpsc::UnboundedReceiver<RuntimeEvent>,
    pub(crate) invocations: mpsc::Sender<Pending>,
}

struct Api {
    events: mpsc::UnboundedSender<RuntimeEvent>,
    invocations: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// The invocation handed out and not yet answered.
    current: Mutex<Option<String>>,
}

/// Serves the Runtime API on `listener` until the returned task is aborted.
pub(crate) fn serve(listener: TcpListener) -> (RuntimeChannels, tokio::task::JoinHandle<()>) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (invocations, invocations_rx) = mpsc::channel(1);
    let api = Arc::new(Api {
        events: events_tx,
        invocations: tokio::sync::Mutex::new(invocations_rx),
        current: Mutex::new(None),
    });
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(api);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "the Runtime API stopped");
        }
    });
    (RuntimeChannels { events, invocations }, task)
}

async fn next(State(api): State<Arc<Api>>) -> Response {
    let _ = api.events.send(RuntimeEvent::Next);
    // One poller at a time, as Lambda allows one invocation per process.
    let pending = api.invocations.lock().await.recv().await;
    let Some(pending) = pending else {
        return runtime_error(StatusCode::GONE, "ShuttingDown", "the function instance is shutting down");
    };
    *api.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(pending.request_id.clone());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &pending.request_id);
    set("lambda-runtime-deadline-ms", &pending.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &pending.function_arn);
    set("lambda-runtime-trace-id", &pending.trace_header);
    if let Some(context) = &pending.client_context {
        set("lambda-runtime-client-context", context);
    }
    if let Some(identity) = &pending.cognito_identity {
        set("lambda-runtime-cognito-identity", identity);
    }
    (StatusCode::OK, headers, pending.payload).into_response()
}

async fn response(State(api): State<Arc<Api>>, Path(request_id): Path<String>, payload: Bytes) -> Response {
    answer(&api, request_id, |request_id| RuntimeEvent::Response { request_id, payload })
}

async fn error(
    State(api): State<Arc<Api>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = posted_error(&headers, body);
    answer(&api, request_id, |request_id| RuntimeEvent::Error { request_id, error })
}

async fn init_error(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let _ = api.events.send(RuntimeEvent::InitError(posted_error(&headers, body)));
    accepted()
}

/// Takes the answer to the invocation handed out, or refuses one for any other id.
fn answer(api: &Api, request_id: String, event: impl FnOnce(String) -> RuntimeEvent) -> Response {
    let mut current = api.current.lock().unwrap_or_else(PoisonError::into_inner);
    if current.as_deref() != Some(request_id.as_str()) {
        return runtime_error(StatusCode::BAD_REQUEST, "InvalidRequestID", "Invalid request ID");
    }
    *current = None;
    let _ = api.events.send(event(request_id));
    accepted()
}

fn posted_error(headers: &HeaderMap, body: Bytes) -> PostedError {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    PostedError {
        body,
        error_type: header("lambda-runtime-function-error-type"),
        xray_cause: header("lambda-runtime-function-xray-error-cause"),
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [("content-type", "application/json")], "{\"status\":\"OK\"}").into_response()
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

/// Binds a loopback port for one process's Runtime API.
pub(crate) async fn bind() -> Result<TcpListener, LambdaError> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| LambdaError::Io(format!("cannot bind the Runtime API on loopback: {error}")))
}
