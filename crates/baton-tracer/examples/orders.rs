//! A Lambda function traced with baton-tracer: the Rust twin of the
//! Powertools example the end-to-end tests compare it with. `fetch_order`
//! annotates the invocation, calls the orders service over HTTP (a `remote`
//! subsegment, with the trace header propagated) and fails on request.
//!
//! Run it under a Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), with
//! `DOWNSTREAM_URL` the orders service and `POWERTOOLS_SERVICE_NAME=orders`.

use std::sync::LazyLock;

use baton_tracer::capture_method;
use baton_tracer::lambda::capture_lambda_handler;
use baton_tracer::reqwest::TracingMiddleware;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde::{Deserialize, Serialize};

static CLIENT: LazyLock<ClientWithMiddleware> =
    LazyLock::new(|| ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware).build());

#[derive(Deserialize)]
struct Request {
    order_id: String,
    #[serde(default)]
    fail: bool,
}

#[derive(Serialize)]
struct Order {
    order_id: String,
    downstream_status: u16,
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("order service exploded for {0}")]
    Exploded(String),
    #[error(transparent)]
    Http(#[from] reqwest_middleware::Error),
    #[error(transparent)]
    Tracer(#[from] baton_tracer::TracerError),
}

#[capture_method]
async fn fetch_order(request: &Request) -> Result<Order, OrderError> {
    baton_tracer::put_annotation("order_id", request.order_id.as_str())?;
    baton_tracer::put_annotation("priority", 2)?;
    baton_tracer::put_metadata(
        "order_request",
        &serde_json::json!({
            "order_id": request.order_id, "lines": [{"sku": "A", "qty": 2}]
        }),
    )?;
    let downstream = std::env::var("DOWNSTREAM_URL").unwrap_or_else(|_| "http://127.0.0.1:4301".into());
    let response = CLIENT.get(format!("{downstream}/orders/{}", request.order_id)).send().await?;
    if request.fail {
        return Err(OrderError::Exploded(request.order_id.clone()));
    }
    Ok(Order { order_id: request.order_id.clone(), downstream_status: response.status().as_u16() })
}

async fn handler(event: LambdaEvent<Request>) -> Result<Order, Error> {
    Ok(fetch_order(&event.payload).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(capture_lambda_handler(service_fn(handler))).await
}
