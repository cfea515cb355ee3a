//! A [`reqwest_middleware`] middleware: every request made through the
//! client becomes a `remote` subsegment of the caller's current subsegment,
//! named after the host, with its `http` block, and carries the trace headers
//! (`X-Amzn-Trace-Id` and W3C `traceparent`) so the service it calls,
//! X-Ray-instrumented or OpenTelemetry-instrumented, continues the trace.
//!
//! ```no_run
//! use baton_tracer::reqwest::TracingMiddleware;
//! use reqwest_middleware::ClientBuilder;
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware).build();
//! let response = client.get("http://orders.internal/orders/42").send().await?;
//! # Ok(())
//! # }
//! ```

use ::reqwest::header::{CONTENT_LENGTH, HeaderValue};
use ::reqwest::{Request, Response};
use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use crate::entity::{HttpRequest, Namespace, Subsegment};

/// Records each request as a `remote` subsegment and propagates the trace headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingMiddleware;

/// Ends the subsegment however the request finishes, including when the
/// caller drops the request future (a timeout), so the parent still embeds it.
struct EndOnDrop(Subsegment);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        std::mem::replace(&mut self.0, Subsegment::off()).end();
    }
}

#[async_trait::async_trait]
impl Middleware for TracingMiddleware {
    async fn handle(&self, mut request: Request, extensions: &mut Extensions, next: Next<'_>) -> Result<Response> {
        let mut url = request.url().clone();
        // Credentials in the URL must not end up in a trace; the query string
        // is removed by `HttpRequest::new`.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let subsegment = Subsegment::begin(url.host_str().unwrap_or(url.as_str()).to_owned());
        let _end = EndOnDrop(subsegment.clone());
        subsegment.set_namespace(Namespace::Remote);
        subsegment.set_http_request(HttpRequest::new(request.method().as_str(), url.as_str()));
        // Also for an unsampled trace: the callee then gets `Sampled=0` and records nothing either.
        for (name, value) in subsegment.outgoing_headers() {
            if let Ok(value) = HeaderValue::try_from(value) {
                request.headers_mut().insert(name, value);
            }
        }
        let result = next.run(request, extensions).await;
        match &result {
            Ok(response) => {
                let content_length =
                    response.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
                subsegment.set_http_response(response.status().as_u16(), content_length);
            }
            Err(error) => subsegment.record_error(error),
        }
        result
    }
}
