//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! so that `aws lambda invoke --endpoint-url …` and boto3's `lambda` client
//! run local functions unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::function::{Function, Invocation, Request};
use crate::runtime_api::MAX_PAYLOAD;

/// How much of the log `X-Amz-Log-Type: Tail` returns, as Lambda does.
const LOG_TAIL: usize = 4096;

/// Called with each finished invocation and its function's name.
pub type OnInvocation = Arc<dyn Fn(&str, &Invocation) + Send + Sync>;

struct Api {
    functions: BTreeMap<String, Arc<Function>>,
    on_invocation: OnInvocation,
}

/// The Invoke API over `functions`, calling `on_invocation` after each invocation.
pub fn router(functions: BTreeMap<String, Arc<Function>>, on_invocation: OnInvocation) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        // One byte over Lambda's limit, so that the handler sees an oversized payload and answers as Lambda does.
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD + 1))
        .with_state(Arc::new(Api { functions, on_invocation }))
}

async fn invoke(State(api): State<Arc<Api>>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(function) = api.functions.get(function_name(&name)) else {
        let message = format!("Function not found: {name}");
        return error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &message);
    };
    if body.len() > MAX_PAYLOAD {
        let message = format!(
            "{} byte payload is too large for the RequestResponse invocation type (limit {MAX_PAYLOAD} bytes)",
            body.len()
        );
        return error(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", &message);
    }
    // Lambda hands a function `{}` for an empty payload.
    let payload = if body.is_empty() { Bytes::from_static(b"{}") } else { body };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let client_context = match header("x-amz-client-context").map(|text| BASE64.decode(text)) {
        None => None,
        Some(Ok(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "Client context must be valid base64",
            );
        }
    };
    let request = Request {
        payload,
        trace_header: header("x-amzn-trace-id").and_then(|text| text.parse().ok()),
        client_context,
        cognito_identity: None,
    };
    let tail = header("x-amz-log-type").is_some_and(|kind| kind.eq_ignore_ascii_case("Tail"));
    match header("x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => {}
        "Event" => {
            let function = Arc::clone(function);
            tokio::spawn(async move { run(&api, &function, request).await });
            return StatusCode::ACCEPTED.into_response();
        }
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            let message = format!("Invalid invocation type {other:?}: use RequestResponse, Event or DryRun");
            return error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", &message);
        }
    }
    let invocation = match run(&api, function, request).await {
        Some(invocation) => invocation,
        None => {
            return error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                "the function's process could not be started; see baton's log",
            );
        }
    };
    let mut response = (StatusCode::OK, invocation.payload.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", "application/json".parse().expect("a valid header"));
    headers.insert("x-amz-executed-version", "$LATEST".parse().expect("a valid header"));
    if invocation.function_error {
        headers.insert("x-amz-function-error", "Unhandled".parse().expect("a valid header"));
    }
    if tail && let Ok(value) = BASE64.encode(log_tail(&invocation.log)).parse() {
        headers.insert("x-amz-log-result", value);
    }
    response
}

async fn run(api: &Api, function: &Function, request: Request) -> Option<Invocation> {
    match function.invoke(request).await {
        Ok(invocation) => {
            (api.on_invocation)(&function.config().name, &invocation);
            Some(invocation)
        }
        Err(error) => {
            tracing::error!(function = %function.config().name, %error, "invocation failed");
            None
        }
    }
}

/// The function's name from a name, a `name:qualifier` or an ARN.
fn function_name(given: &str) -> &str {
    let name = given.rsplit_once(":function:").map_or(given, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}

/// The last 4 KB of the log, starting at a whole character.
fn log_tail(lines: &[String]) -> Vec<u8> {
    let text: String = lines.iter().flat_map(|line| [line.as_str(), "\n"]).collect();
    let start = text.ceil_char_boundary(text.len().saturating_sub(LOG_TAIL));
    text.as_bytes()[start..].to_vec()
}

fn error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = serde_json::json!({"Type": "User", "message": message}).to_string();
    (status, [("x-amzn-errortype", error_type), ("content-type", "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_named_by_name_qualified_name_or_arn() {
        assert_eq!(function_name("orders"), "orders");
        assert_eq!(function_name("orders:$LATEST"), "orders");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:orders"), "orders");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:orders:prod"), "orders");
    }

    #[test]
    fn the_log_tail_is_the_last_4_kb_on_a_character_boundary() {
        let lines = vec!["é".repeat(3000), "REPORT RequestId: r".into()];
        let tail = log_tail(&lines);
        assert!(tail.len() <= LOG_TAIL && tail.len() > LOG_TAIL - 2);
        assert!(String::from_utf8(tail).unwrap().ends_with("REPORT RequestId: r\n"));
    }
}
