//! OpenTelemetry trace exports (OTLP, protobuf or JSON) read and translated
//! into X-Ray segment documents, so that spans from any OpenTelemetry SDK
//! are stored, searched and drawn as the X-Ray SDKs' documents are.
//!
//! ```
//! let body = br#"{"resourceSpans": [{
//!     "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
//!     "scopeSpans": [{"spans": [{
//!         "traceId": "6744c0000123456789abcdef01234567", "spanId": "23d66e1a8b10714a",
//!         "name": "GET /orders/{id}", "kind": 2,
//!         "startTimeUnixNano": "1732558848000000000", "endTimeUnixNano": "1732558848250000000"
//!     }]}]
//! }]}"#;
//! let request = baton_otlp::decode_json(body).unwrap();
//! let translation = baton_otlp::Translator::default().translate(&request);
//! let document: serde_json::Value = serde_json::from_str(&translation.documents[0].text).unwrap();
//! assert_eq!(document["name"], "checkout");
//! assert_eq!(document["trace_id"], "1-6744c000-0123456789abcdef01234567");
//! ```
//!
//! The translation is a table in `docs/otlp.md`.

mod json;
mod object;
pub mod proto;
mod translate;

pub use translate::{Rejected, Translated, Translation, Translator};

use prost::Message;

use crate::proto::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse};

/// Why an export request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not an `ExportTraceServiceRequest` in protobuf.
    #[error("the body is not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body is not an `ExportTraceServiceRequest` in OTLP/JSON.
    #[error("the body is not an OTLP ExportTraceServiceRequest in JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a protobuf-encoded export request.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, Error> {
    Ok(ExportTraceServiceRequest::decode(body)?)
}

/// Reads an OTLP/JSON export request.
pub fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest, Error> {
    Ok(serde_json::from_slice(body)?)
}

/// The protobuf answer to an export: empty when nothing was rejected, else
/// a partial success with the count of rejected spans and why.
pub fn response_protobuf(rejected_spans: u64, error_message: &str) -> Vec<u8> {
    let partial_success = (rejected_spans > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected_spans).unwrap_or(i64::MAX),
        error_message: error_message.to_owned(),
    });
    ExportTraceServiceResponse { partial_success }.encode_to_vec()
}

/// The OTLP/JSON answer to an export, as [`response_protobuf`].
pub fn response_json(rejected_spans: u64, error_message: &str) -> String {
    if rejected_spans == 0 {
        return "{}".to_owned();
    }
    serde_json::json!({
        "partialSuccess": {"rejectedSpans": rejected_spans.to_string(), "errorMessage": error_message}
    })
    .to_string()
}

/// The number of spans in a request.
pub fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    let spans = request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).map(|scope| scope.spans.len());
    spans.sum::<usize>() as u64
}
