//! The Lambda handler wrapper: Powertools' `capture_lambda_handler` for the
//! `lambda_runtime` crate.
//!
//! ```no_run
//! use lambda_runtime::{Error, LambdaEvent, service_fn};
//! use serde_json::{Value, json};
//!
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     Ok(json!({ "order_id": event.payload["order_id"] }))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     lambda_runtime::run(baton_tracer::lambda::capture_lambda_handler(service_fn(handler))).await
//! }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use lambda_runtime::{LambdaEvent, Service};
use serde::Serialize;

use crate::config::tracer;
use crate::context::Instrumented;
use crate::entity::Subsegment;

/// True until the process's first invocation begins.
static COLD_START: AtomicBool = AtomicBool::new(true);

/// Wraps a handler service so each invocation is traced as the X-Ray SDK
/// does in Lambda: `## handler` hangs under the invocation's `Parent` (the
/// platform's segment, which the function never sends), with the
/// `ColdStart` and `Service` annotations, the response as metadata
/// `handler response`, or the error as `handler error` and a fault with its
/// cause. Every subsegment is sent before the response is returned;
/// `Sampled=0` sends nothing.
pub fn capture_lambda_handler<S>(handler: S) -> CaptureLambdaHandler<S> {
    CaptureLambdaHandler { handler }
}

/// A Lambda handler service traced by [`capture_lambda_handler`].
#[derive(Debug, Clone)]
pub struct CaptureLambdaHandler<S> {
    handler: S,
}

impl<E, S> Service<LambdaEvent<E>> for CaptureLambdaHandler<S>
where
    S: Service<LambdaEvent<E>>,
    S::Response: Serialize,
    S::Error: Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CapturedInvocation<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.handler.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<E>) -> Self::Future {
        let cold_start = COLD_START.swap(false, Ordering::Relaxed);
        let header = event.context.xray_trace_id.as_deref().and_then(|text| {
            text.parse().map_err(|error| tracing::debug!(%error, "baton-tracer: invalid Lambda trace id")).ok()
        });
        let subsegment = match &header {
            Some(header) => Subsegment::begin_remote("## handler", header),
            None => Subsegment::begin("## handler"),
        };
        // Fixed keys and valid values: these cannot be refused.
        let _ = subsegment.put_annotation("ColdStart", cold_start);
        let _ = subsegment.put_annotation("Service", tracer().config.service_name.as_str());
        let invocation = subsegment.in_scope(|| self.handler.call(event));
        CapturedInvocation { invocation: subsegment.instrument(invocation), ending: Some(Ending(subsegment)) }
    }
}

pin_project_lite::pin_project! {
    /// One invocation of a [`CaptureLambdaHandler`]: the handler's future with `## handler` current.
    pub struct CapturedInvocation<F> {
        #[pin]
        invocation: Instrumented<F>,
        ending: Option<Ending>,
    }
}

impl<F, R, Err> Future for CapturedInvocation<F>
where
    F: Future<Output = Result<R, Err>>,
    R: Serialize,
    Err: Display,
{
    type Output = Result<R, Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.invocation.poll(cx));
        if let Some(ending) = this.ending.take() {
            ending.record(&result);
        }
        Poll::Ready(result)
    }
}

/// Ends `## handler` and sends everything when dropped: after the handler
/// returns, or when it panics or its future is dropped.
struct Ending(Subsegment);

impl Ending {
    fn record<R: Serialize, Err: Display>(&self, result: &Result<R, Err>) {
        let config = &tracer().config;
        match result {
            Ok(response) if config.capture_response => {
                if let Err(error) = self.0.put_metadata("handler response", response) {
                    tracing::debug!(%error, "baton-tracer: the handler response is not recorded");
                }
            }
            Ok(_) => {}
            Err(error) => {
                let message = error.to_string();
                // As in Powertools, POWERTOOLS_TRACER_CAPTURE_ERROR=false keeps only the message out.
                if config.capture_error {
                    let _ = self.0.put_metadata("handler error", &message);
                }
                let type_name = crate::capture::short_type_name(std::any::type_name::<Err>());
                self.0.record_exception(&type_name, &message);
            }
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.record_exception("panic", crate::capture::PANIC_MESSAGE);
        }
        std::mem::replace(&mut self.0, Subsegment::off()).end();
        crate::flush();
    }
}
