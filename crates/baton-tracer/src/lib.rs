//! The tracer for Rust functions and services: what Powertools Tracer is for
//! Python. It records X-Ray segments and subsegments (annotations, metadata,
//! http/aws/sql blocks, errors) and sends them to Baton or to the AWS X-Ray
//! daemon over UDP, or, with the `otlp` feature, to any OpenTelemetry backend.
//!
//! ```
//! use baton_tracer::{Segment, capture_method};
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("no price for {0}")]
//! struct NoPrice(String);
//!
//! // A subsegment named `## <module>::price`: the response becomes metadata,
//! // an `Err` a fault with its cause.
//! #[capture_method]
//! fn price(order_id: &str) -> Result<u32, NoPrice> {
//!     baton_tracer::put_annotation("order_id", order_id).unwrap(); // indexed, searchable
//!     baton_tracer::put_metadata("request", &[order_id]).unwrap(); // not indexed
//!     order_id.strip_prefix("o-").and_then(|n| n.parse().ok()).ok_or_else(|| NoPrice(order_id.into()))
//! }
//!
//! // Outside Lambda tracing is on when AWS_XRAY_DAEMON_ADDRESS is set; otherwise all of this costs nothing.
//! let segment = Segment::builder("orders").begin();
//! let total = segment.in_scope(|| price("o-42"));
//! segment.end();
//! baton_tracer::flush();
//! assert_eq!(total.unwrap(), 42);
//! ```
//!
//! In a Lambda function, wrap the handler with
//! `lambda::capture_lambda_handler` (feature `lambda`): it creates
//! `## handler` with the `ColdStart` and `Service` annotations under the
//! invocation's trace header, and sends every subsegment before the response
//! is returned. Context follows `.await`: a future wrapped with
//! [`Subsegment::instrument`] (or, for a spawned task,
//! [`FutureExt::in_current_subsegment`]) runs with its subsegment current.

#[cfg(feature = "aws-sdk")]
pub mod aws;
mod capture;
mod clock;
mod config;
mod context;
mod emit;
mod entity;
mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "tracing-layer")]
pub mod layer;
#[cfg(feature = "otlp")]
mod otlp;
mod pool;
mod render;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod sampling;

#[doc(hidden)]
pub mod __private {
    pub use crate::capture::*;
}

pub use baton_model::{SegmentId, TraceHeader, TraceId, TraceParent};
pub use baton_tracer_macros::capture_method;
pub use config::{Config, DaemonAddress, Exporter, config, init};
pub use context::{FutureExt, Instrumented, current_subsegment};
pub use entity::{Annotation, HttpRequest, Namespace, Segment, SegmentBuilder, Sql, Subsegment};
pub use error::TracerError;
pub use sampling::{Sampler, SamplingRequest};

/// Adds an annotation to the current subsegment (indexed, searchable).
pub fn put_annotation<'a>(
    key: impl Into<std::borrow::Cow<'static, str>>,
    value: impl Into<Annotation<'a>>,
) -> Result<(), TracerError> {
    current_subsegment().put_annotation(key, value)
}

/// Adds metadata to the current subsegment, under the service's namespace.
pub fn put_metadata(key: &str, value: &(impl serde::Serialize + ?Sized)) -> Result<(), TracerError> {
    current_subsegment().put_metadata(key, value)
}

/// Adds metadata to the current subsegment, under `namespace`.
pub fn put_metadata_in(
    namespace: &str,
    key: &str,
    value: &(impl serde::Serialize + ?Sized),
) -> Result<(), TracerError> {
    current_subsegment().put_metadata_in(namespace, key, value)
}

/// Waits until every document ended so far has been sent (at most 5 s);
/// call it before a process exits.
pub fn flush() {
    if let Some(sender) = &config::tracer().sender {
        sender.flush();
    }
}

/// How many closed segments and subsegments were dropped because the sender could not keep up.
pub fn dropped_documents() -> u64 {
    config::tracer().sender.as_ref().map_or(0, emit::Sender::dropped)
}
