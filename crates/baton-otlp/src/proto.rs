//! The messages of OTLP's trace export (`opentelemetry/proto/collector/trace/v1`
//! and the `trace`, `resource` and `common` packages it uses), declared for
//! prost by hand: the few messages Baton reads do not justify a build step
//! with `protoc`. Field numbers follow the published `.proto` files; fields
//! Baton never reads are left out, which decoding skips. The same types
//! read OTLP/JSON: `json.rs` holds the encodings JSON differs in (hex ids,
//! integers as strings, enum names).

use crate::json;

/// The body of an OTLP trace export (HTTP `/v1/traces` or gRPC `Export`).
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportTraceServiceRequest {
    /// Spans grouped by the resource that produced them.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// The answer to an export; empty when every span was accepted.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    /// Set when some spans were rejected.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// How many spans an export rejected, and why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    /// The number of rejected spans.
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    /// A human-readable reason.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// The spans of one resource (one process, function or service instance).
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceSpans {
    /// The resource; absent means no attributes.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// The spans, grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

/// A resource's attributes (`service.name`, `cloud.*`, `faas.*` …).
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    /// The attributes.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// The spans one instrumentation scope (library) produced.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeSpans {
    /// The instrumentation scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

/// The library that produced spans.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstrumentationScope {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// One span.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Span {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    #[serde(deserialize_with = "json::hex")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(deserialize_with = "json::hex")]
    pub span_id: Vec<u8>,
    /// 8 bytes, or empty for a root span.
    #[prost(bytes = "vec", tag = "4")]
    #[serde(deserialize_with = "json::hex")]
    pub parent_span_id: Vec<u8>,
    /// The span's name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// A [`SpanKind`] number.
    #[prost(int32, tag = "6")]
    #[serde(deserialize_with = "json::span_kind")]
    pub kind: i32,
    /// Start, nanoseconds since the epoch.
    #[prost(fixed64, tag = "7")]
    #[serde(deserialize_with = "json::unsigned")]
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the epoch.
    #[prost(fixed64, tag = "8")]
    #[serde(deserialize_with = "json::unsigned")]
    pub end_time_unix_nano: u64,
    /// The span's attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Timed events (`exception` among them).
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    /// Links to other spans.
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<Link>,
    /// The span's status.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// W3C trace flags in the low byte; bits 8 and 9 say whether the parent
    /// is remote.
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

/// A timed event of a span.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    /// When, nanoseconds since the epoch.
    #[prost(fixed64, tag = "1")]
    #[serde(deserialize_with = "json::unsigned")]
    pub time_unix_nano: u64,
    /// Its name (`exception` for a recorded exception).
    #[prost(string, tag = "2")]
    pub name: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// A link from a span to another span, maybe of another trace.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Link {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    #[serde(deserialize_with = "json::hex")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(deserialize_with = "json::hex")]
    pub span_id: Vec<u8>,
    /// Its attributes.
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
}

/// A span's outcome.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    /// A description, set with an error.
    #[prost(string, tag = "2")]
    pub message: String,
    /// A [`StatusCode`] number.
    #[prost(int32, tag = "3")]
    #[serde(deserialize_with = "json::status_code")]
    pub code: i32,
}

/// An attribute.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValue {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Its value; absent means empty.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// An attribute value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; absent means empty.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// The kinds of attribute value.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// A string.
    #[prost(string, tag = "1")]
    String(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// A 64-bit integer.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// A double.
    #[prost(double, tag = "4")]
    Double(f64),
    /// An array.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// A list of key-value pairs.
    #[prost(message, tag = "6")]
    KeyValueList(KeyValueList),
    /// Bytes.
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

/// An array of values.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArrayValue {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// A list of key-value pairs.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValueList {
    /// The pairs.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `Span.kind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Not set; treated as internal.
    Unspecified = 0,
    /// An operation inside a service.
    Internal = 1,
    /// The handling of a synchronous request from a remote client.
    Server = 2,
    /// A synchronous request to a remote service.
    Client = 3,
    /// The sending of a message to a broker.
    Producer = 4,
    /// The handling of a message from a broker.
    Consumer = 5,
}

impl SpanKind {
    /// The kind's name without its prefix, as `SPAN_KIND_SERVER` is written
    /// in OTLP/JSON: `SERVER`.
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }

    /// The kind of a `Span.kind` number; unknown numbers are unspecified.
    pub fn from_number(number: i32) -> SpanKind {
        match number {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// `Status.code` values.
pub mod status_code {
    /// No status set.
    pub const UNSET: i32 = 0;
    /// Explicitly successful.
    pub const OK: i32 = 1;
    /// Failed.
    pub const ERROR: i32 = 2;
}
