//! Segment documents: parse, validate, and keep the original text.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::id::{SegmentId, TraceId};

/// The largest document X-Ray accepts, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The X-Ray daemon protocol's header line, before the document in every datagram.
pub const DAEMON_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";
/// The longest segment name X-Ray accepts, in characters.
pub const MAX_SEGMENT_NAME: usize = 200;
/// The longest subsegment name X-Ray accepts, in characters.
pub const MAX_SUBSEGMENT_NAME: usize = 250;
/// The longest annotation key X-Ray accepts, in characters.
const MAX_ANNOTATION_KEY: usize = 500;
/// The longest string annotation value X-Ray accepts, in characters.
const MAX_ANNOTATION_STRING: usize = 1000;

/// A validated segment document: the typed fields Baton indexes, and the
/// document exactly as it was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// What Baton reads from the document.
    pub info: SegmentInfo,
    /// The original JSON text, unchanged.
    pub json: Box<str>,
}

/// Whether a document is a segment or an independent subsegment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A segment: the work one service did for a request.
    Segment,
    /// A subsegment sent on its own (`"type": "subsegment"`), to be merged
    /// under its `parent_id`.
    Subsegment,
}

/// The typed part of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    /// The trace the document belongs to.
    pub trace_id: TraceId,
    /// The document's own id.
    pub id: SegmentId,
    /// The caller's id (segments continuing a trace) or the enclosing
    /// (sub)segment's id (independent subsegments).
    pub parent_id: Option<SegmentId>,
    /// Segment or independent subsegment.
    pub kind: DocumentKind,
    /// The service name (segments) or the operation name (subsegments).
    pub name: String,
    /// Epoch seconds.
    pub start_time: f64,
    /// Epoch seconds; `None` while in progress.
    pub end_time: Option<f64>,
    /// Sent before the work finished; a later document with the same id
    /// replaces it.
    pub in_progress: bool,
    /// The facts trace summaries are built from.
    pub facts: Facts,
}

/// The facts of one document that trace summaries and indexes need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `origin`, the service type (e.g. `AWS::Lambda::Function`).
    pub origin: Option<String>,
    /// `error` of the document itself (a 4xx).
    pub error: bool,
    /// `fault` of the document itself (a 5xx).
    pub fault: bool,
    /// `throttle` of the document itself (a 429).
    pub throttle: bool,
    /// Ids of the embedded subsegments (at any depth) still in progress; a
    /// complete copy sent on its own later finishes them.
    pub in_progress_subsegments: Vec<SegmentId>,
    /// The document's own `http` block.
    pub http: Option<HttpFacts>,
    /// Annotations of the document and of its embedded subsegments.
    pub annotations: Vec<(String, AnnotationValue)>,
    /// `user`.
    pub user: Option<String>,
    /// `resource_arn`.
    pub resource_arn: Option<String>,
    /// `aws.account_id`.
    pub account_id: Option<String>,
    /// `aws.ec2.instance_id`.
    pub instance_id: Option<String>,
    /// `aws.ec2.availability_zone`.
    pub availability_zone: Option<String>,
    /// Ids of the embedded subsegments, at any depth.
    pub subsegment_ids: Vec<SegmentId>,
    /// Calls to other services: the document itself, if it is a subsegment
    /// in the `aws` or `remote` namespace, and such embedded subsegments.
    pub calls: Vec<Call>,
    /// `namespace` of the document itself.
    pub namespace: Option<Namespace>,
    /// The exceptions of the document's own `cause`.
    pub exceptions: Vec<Exception>,
    /// The embedded subsegments, at any depth, each before those it encloses.
    pub entities: Vec<Entity>,
}

/// A subsegment embedded in a document: what root causes need of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The subsegment's id.
    pub id: SegmentId,
    /// The enclosing subsegment, as an index into [`Facts::entities`]
    /// (always lower than this entity's); `None` for a direct child of the
    /// document.
    pub parent: Option<u32>,
    /// The subsegment name.
    pub name: String,
    /// Epoch seconds.
    pub start_time: f64,
    /// Epoch seconds; `None` while in progress.
    pub end_time: Option<f64>,
    /// A 4xx.
    pub error: bool,
    /// A 5xx.
    pub fault: bool,
    /// A 429.
    pub throttle: bool,
    /// `namespace`.
    pub namespace: Option<Namespace>,
    /// The exceptions of its `cause`.
    pub exceptions: Vec<Exception>,
}

/// A subsegment's `namespace`: where the work it records was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `local`: in the service itself.
    Local,
    /// `aws`: an AWS SDK call.
    Aws,
    /// `remote`: any other downstream call.
    Remote,
}

impl Namespace {
    /// The namespace `text` names; `None` for any other text.
    fn parse(text: &str) -> Option<Namespace> {
        match text {
            "local" => Some(Namespace::Local),
            "aws" => Some(Namespace::Aws),
            "remote" => Some(Namespace::Remote),
            _ => None,
        }
    }

    /// The kind of service a subsegment in this namespace calls, if it records a call.
    pub fn call(self) -> Option<CallNamespace> {
        match self {
            Namespace::Local => None,
            Namespace::Aws => Some(CallNamespace::Aws),
            Namespace::Remote => Some(CallNamespace::Remote),
        }
    }
}

/// One of the exceptions in a `cause` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exception {
    /// `type`, e.g. `ValueError`.
    pub name: Option<String>,
    /// `message`.
    pub message: Option<String>,
}

/// A call to another service, recorded by a subsegment in the `aws` (an AWS
/// SDK call) or `remote` (an HTTP call or database query) namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The subsegment's id: a segment whose parent it is answered the call.
    pub id: SegmentId,
    /// The subsegment name: the AWS service (`DynamoDB`) or the remote host.
    pub name: String,
    /// `aws` or `remote`.
    pub namespace: CallNamespace,
    /// Epoch seconds.
    pub start_time: f64,
    /// Epoch seconds; `None` while in progress.
    pub end_time: Option<f64>,
    /// The call failed with a 4xx.
    pub error: bool,
    /// The call failed with a 5xx.
    pub fault: bool,
    /// The call was throttled (429).
    pub throttle: bool,
    /// The subsegment's `http` block.
    pub http: Option<HttpFacts>,
}

/// Which kind of service a [`Call`] went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallNamespace {
    /// An AWS service, called through an AWS SDK.
    Aws,
    /// Any other service: an HTTP API, a database.
    Remote,
}

/// The fields of an `http` block that summaries and search use.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttpFacts {
    /// `request.method`.
    pub method: Option<String>,
    /// `request.url`.
    pub url: Option<String>,
    /// `request.user_agent`.
    pub user_agent: Option<String>,
    /// `request.client_ip`.
    pub client_ip: Option<String>,
    /// `response.status`.
    pub status: Option<u16>,
}

/// An annotation value: X-Ray indexes strings, numbers and booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnotationValue {
    /// A string.
    String(String),
    /// A number (integers included).
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// Why a document was rejected, with the document's id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The class of the problem.
    pub kind: ValidationErrorKind,
    /// What exactly is wrong, naming the field.
    pub message: String,
    /// The document's `id`, if it had a readable one.
    pub id: Option<String>,
}

/// The classes of invalid documents; each has a stable code for metrics and
/// `UnprocessedTraceSegments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationErrorKind {
    /// The document is longer than 64 KB.
    TooLarge,
    /// The document is empty.
    Empty,
    /// Not UTF-8, not JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// `trace_id` is malformed.
    InvalidTraceId,
    /// `id` or `parent_id` is malformed.
    InvalidSegmentId,
    /// A time is not a finite, non-negative number, or `end_time` is missing.
    InvalidTime,
    /// `name` is empty or too long.
    InvalidName,
    /// An annotation key or value breaks X-Ray's rules.
    InvalidAnnotation,
    /// `type` is neither absent nor `subsegment`, or a subsegment has no parent.
    InvalidType,
}

impl ValidationErrorKind {
    /// Every kind, for metrics that list all reasons.
    pub const ALL: [ValidationErrorKind; 11] = [
        ValidationErrorKind::TooLarge,
        ValidationErrorKind::Empty,
        ValidationErrorKind::InvalidJson,
        ValidationErrorKind::MissingField,
        ValidationErrorKind::WrongType,
        ValidationErrorKind::InvalidTraceId,
        ValidationErrorKind::InvalidSegmentId,
        ValidationErrorKind::InvalidTime,
        ValidationErrorKind::InvalidName,
        ValidationErrorKind::InvalidAnnotation,
        ValidationErrorKind::InvalidType,
    ];

    /// The stable code, used as `ErrorCode` and as a metrics label.
    pub fn code(self) -> &'static str {
        match self {
            ValidationErrorKind::TooLarge => "DocumentTooLarge",
            ValidationErrorKind::Empty => "EmptyDocument",
            ValidationErrorKind::InvalidJson => "InvalidJson",
            ValidationErrorKind::MissingField => "MissingField",
            ValidationErrorKind::WrongType => "WrongType",
            ValidationErrorKind::InvalidTraceId => "InvalidTraceId",
            ValidationErrorKind::InvalidSegmentId => "InvalidSegmentId",
            ValidationErrorKind::InvalidTime => "InvalidTime",
            ValidationErrorKind::InvalidName => "InvalidName",
            ValidationErrorKind::InvalidAnnotation => "InvalidAnnotation",
            ValidationErrorKind::InvalidType => "InvalidType",
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

fn invalid(kind: ValidationErrorKind, message: impl Into<String>) -> ValidationError {
    ValidationError { kind, message: message.into(), id: None }
}

// === impl Document ===

impl Document {
    /// Parses and validates one document (the JSON after the daemon header,
    /// or one element of `TraceSegmentDocuments`).
    pub fn parse(bytes: &[u8]) -> Result<Document, ValidationError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(invalid(
                ValidationErrorKind::TooLarge,
                format!("document is {} bytes, more than the limit of {MAX_DOCUMENT_BYTES}", bytes.len()),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid(ValidationErrorKind::Empty, "document is empty"));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|error| invalid(ValidationErrorKind::InvalidJson, format!("document is not UTF-8: {error}")))?;
        let raw: RawEntity<'_> = match serde_json::from_str(text) {
            Ok(ObjectOnly(raw)) => raw,
            Err(error) => return Err(diagnose(text, error)),
        };
        let id_for_errors = raw.id.as_deref().map(str::to_owned);
        let info = raw.into_info().map_err(|mut error| {
            error.id = id_for_errors;
            error
        })?;
        Ok(Document { info, json: text.into() })
    }
}

// === raw, borrowed view used for the fast path ===

#[derive(Deserialize)]
struct RawEntity<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    in_progress: Option<bool>,
    error: Option<bool>,
    fault: Option<bool>,
    throttle: Option<bool>,
    #[serde(borrow)]
    origin: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    http: Option<ObjectOnly<RawHttp<'a>>>,
    #[serde(borrow)]
    aws: Option<ObjectOnly<RawAws<'a>>>,
    annotations: Option<Annotations>,
    // Metadata and sql are read only so that a wrong JSON type is rejected.
    #[serde(rename = "metadata")]
    _metadata: Option<AnyObject>,
    #[serde(rename = "sql")]
    _sql: Option<AnyObject>,
    cause: Option<Cause>,
    #[serde(borrow)]
    subsegments: Option<Vec<ObjectOnly<RawEntity<'a>>>>,
}

#[derive(Deserialize)]
struct RawHttp<'a> {
    #[serde(borrow)]
    request: Option<ObjectOnly<RawHttpRequest<'a>>>,
    response: Option<ObjectOnly<RawHttpResponse>>,
}

#[derive(Deserialize)]
struct RawHttpRequest<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawHttpResponse {
    status: Option<u16>,
}

#[derive(Deserialize)]
struct RawAws<'a> {
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ec2: Option<ObjectOnly<RawEc2<'a>>>,
}

#[derive(Deserialize)]
struct RawEc2<'a> {
    #[serde(borrow)]
    instance_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    availability_zone: Option<Cow<'a, str>>,
}

/// A struct read only from a JSON object: serde's derived structs also accept
/// an array of their fields in order, which no document may hold.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOnly<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// Annotations as read: keys checked later, values typed while reading.
struct Annotations(Vec<(String, AnnotationValue)>);

impl<'de> Deserialize<'de> for Annotations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnnotationsVisitor;
        impl<'de> Visitor<'de> for AnnotationsVisitor {
            type Value = Annotations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
                let mut annotations = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<AnnotationValue>()?;
                    annotations.push((key, value));
                }
                Ok(Annotations(annotations))
            }
        }
        deserializer.deserialize_map(AnnotationsVisitor)
    }
}

impl<'de> Deserialize<'de> for AnnotationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = AnnotationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::Bool(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::Number(value as f64))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::Number(value as f64))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::Number(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::String(value.to_owned()))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<AnnotationValue, E> {
                Ok(AnnotationValue::String(value))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl serde::Serialize for AnnotationValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AnnotationValue::String(text) => serializer.serialize_str(text),
            AnnotationValue::Number(number) => serializer.serialize_f64(*number),
            AnnotationValue::Bool(flag) => serializer.serialize_bool(*flag),
        }
    }
}

/// Any JSON object, skipped without being kept.
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = AnyObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// `cause`: an object with `exceptions`, or the id of an exception recorded
/// on a child (whose exceptions are the child's, not this entity's).
struct Cause(Vec<Exception>);

impl<'de> Deserialize<'de> for Cause {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CauseVisitor;
        impl<'de> Visitor<'de> for CauseVisitor {
            type Value = Cause;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an exception id")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Cause, E> {
                Ok(Cause(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cause, A::Error> {
                let mut exceptions = Vec::new();
                while let Some(field) = map.next_key::<CauseField>()? {
                    match field {
                        CauseField::Exceptions => {
                            exceptions = map.next_value::<Lenient<Vec<Exception>>>()?.0.unwrap_or_default();
                        }
                        CauseField::Other => map.next_value::<IgnoredAny>().map(drop)?,
                    }
                }
                Ok(Cause(exceptions))
            }
        }
        deserializer.deserialize_any(CauseVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum CauseField {
    Exceptions,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ExceptionField {
    Type,
    Message,
    #[serde(other)]
    Other,
}

/// A part of `cause` read when it has the JSON type Baton expects, and
/// skipped otherwise: X-Ray gives no schema for the inside of `cause`, so
/// nothing in it may make a document invalid.
trait Tolerant<'de>: Sized {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn from_str(_: &str) -> Option<Self> {
        None
    }
}

/// A [`Tolerant`] value, `None` when it had another JSON type.
struct Lenient<T>(Option<T>);

impl<'de, T: Tolerant<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor<T>(PhantomData<T>);
        impl<'de, T: Tolerant<'de>> Visitor<'de> for LenientVisitor<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_str(value)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(Lenient)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::from_seq(seq).map(Lenient)
            }
        }
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

/// `exceptions`: its objects; anything else in it is skipped.
impl<'de> Tolerant<'de> for Vec<Exception> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut exceptions = Vec::new();
        while let Some(Lenient(exception)) = seq.next_element::<Lenient<Exception>>()? {
            exceptions.extend(exception);
        }
        Ok(Some(exceptions))
    }
}

impl<'de> Tolerant<'de> for Exception {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut exception = Exception::default();
        while let Some(field) = map.next_key::<ExceptionField>()? {
            match field {
                ExceptionField::Type => exception.name = map.next_value::<Lenient<String>>()?.0,
                ExceptionField::Message => exception.message = map.next_value::<Lenient<String>>()?.0,
                ExceptionField::Other => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(Some(exception))
    }
}

impl Tolerant<'_> for String {
    fn from_str(value: &str) -> Option<Self> {
        Some(value.to_owned())
    }
}

// === validation of the raw view ===

impl RawEntity<'_> {
    fn into_info(self) -> Result<SegmentInfo, ValidationError> {
        let kind = match self.kind.as_deref() {
            None => DocumentKind::Segment,
            Some("subsegment") => DocumentKind::Subsegment,
            Some(other) => {
                return Err(invalid(
                    ValidationErrorKind::InvalidType,
                    format!("type must be \"subsegment\" or absent, got {other:?}"),
                ));
            }
        };
        let trace_id = match self.trace_id.as_deref() {
            None => return Err(invalid(ValidationErrorKind::MissingField, "trace_id is required")),
            Some(text) => text
                .parse()
                .map_err(|error| invalid(ValidationErrorKind::InvalidTraceId, format!("trace_id: {error}")))?,
        };
        let id = parse_segment_id("id", self.id.as_deref())?
            .ok_or_else(|| invalid(ValidationErrorKind::MissingField, "id is required"))?;
        let parent_id = parse_segment_id("parent_id", self.parent_id.as_deref())?;
        if kind == DocumentKind::Subsegment && parent_id.is_none() {
            return Err(invalid(ValidationErrorKind::InvalidType, "a subsegment sent on its own needs a parent_id"));
        }
        let max_name = if kind == DocumentKind::Segment { MAX_SEGMENT_NAME } else { MAX_SUBSEGMENT_NAME };
        let (start_time, end_time, in_progress) = check_entity("", &self, max_name)?;

        let own_call = if kind == DocumentKind::Subsegment { call_of(id, &self, start_time, end_time) } else { None };
        let mut facts = Facts {
            origin: self.origin.map(Cow::into_owned),
            error: self.error.unwrap_or(false),
            fault: self.fault.unwrap_or(false),
            throttle: self.throttle.unwrap_or(false),
            in_progress_subsegments: Vec::new(),
            http: self.http.as_ref().map(http_facts),
            annotations: Vec::new(),
            user: self.user.map(Cow::into_owned),
            resource_arn: self.resource_arn.map(Cow::into_owned),
            account_id: None,
            instance_id: None,
            availability_zone: None,
            subsegment_ids: Vec::new(),
            calls: own_call.into_iter().collect(),
            namespace: self.namespace.as_deref().and_then(Namespace::parse),
            exceptions: self.cause.map(|Cause(exceptions)| exceptions).unwrap_or_default(),
            entities: Vec::new(),
        };

        if let Some(ObjectOnly(aws)) = self.aws {
            facts.account_id = aws.account_id.map(Cow::into_owned);
            if let Some(ObjectOnly(ec2)) = aws.ec2 {
                facts.instance_id = ec2.instance_id.map(Cow::into_owned);
                facts.availability_zone = ec2.availability_zone.map(Cow::into_owned);
            }
        }
        collect_annotations("", self.annotations, &mut facts.annotations)?;
        if let Some(subsegments) = self.subsegments {
            collect_subsegments("", None, subsegments, &mut facts)?;
        }
        Ok(SegmentInfo {
            trace_id,
            id,
            parent_id,
            kind,
            name: self.name.unwrap_or_default().into_owned(),
            start_time,
            end_time,
            in_progress,
            facts,
        })
    }
}

fn http_facts(ObjectOnly(http): &ObjectOnly<RawHttp<'_>>) -> HttpFacts {
    let request = http.request.as_ref().map(|ObjectOnly(request)| request);
    let owned = |field: Option<&Cow<'_, str>>| field.map(|text| text.to_string());
    HttpFacts {
        method: owned(request.and_then(|request| request.method.as_ref())),
        url: owned(request.and_then(|request| request.url.as_ref())),
        user_agent: owned(request.and_then(|request| request.user_agent.as_ref())),
        client_ip: owned(request.and_then(|request| request.client_ip.as_ref())),
        status: http.response.as_ref().and_then(|ObjectOnly(response)| response.status),
    }
}

/// The call a subsegment records, if it is in the `aws` or `remote` namespace.
fn call_of(id: SegmentId, entity: &RawEntity<'_>, start_time: f64, end_time: Option<f64>) -> Option<Call> {
    let namespace = Namespace::parse(entity.namespace.as_deref()?)?.call()?;
    Some(Call {
        id,
        name: entity.name.as_deref().unwrap_or_default().to_owned(),
        namespace,
        start_time,
        end_time,
        error: entity.error.unwrap_or(false),
        fault: entity.fault.unwrap_or(false),
        throttle: entity.throttle.unwrap_or(false),
        http: entity.http.as_ref().map(http_facts),
    })
}

fn parse_segment_id(field: &str, text: Option<&str>) -> Result<Option<SegmentId>, ValidationError> {
    text.map(|text| {
        text.parse().map_err(|error| invalid(ValidationErrorKind::InvalidSegmentId, format!("{field}: {error}")))
    })
    .transpose()
}

/// Checks what every segment and subsegment needs: a name, valid times.
/// Returns `(start_time, end_time, in_progress)`.
fn check_entity(
    path: &str,
    entity: &RawEntity<'_>,
    max_name: usize,
) -> Result<(f64, Option<f64>, bool), ValidationError> {
    match entity.name.as_deref() {
        None => return Err(invalid(ValidationErrorKind::MissingField, format!("{path}name is required"))),
        Some("") => return Err(invalid(ValidationErrorKind::InvalidName, format!("{path}name is empty"))),
        Some(name) if name.chars().count() > max_name => {
            return Err(invalid(
                ValidationErrorKind::InvalidName,
                format!("{path}name is longer than {max_name} characters"),
            ));
        }
        Some(_) => {}
    }
    let start_time = entity
        .start_time
        .ok_or_else(|| invalid(ValidationErrorKind::MissingField, format!("{path}start_time is required")))?;
    check_time(path, "start_time", start_time)?;
    let in_progress = entity.in_progress.unwrap_or(false);
    match entity.end_time {
        Some(end_time) => check_time(path, "end_time", end_time)?,
        None if !in_progress => {
            return Err(invalid(
                ValidationErrorKind::InvalidTime,
                format!("{path}end_time is required unless in_progress is true"),
            ));
        }
        None => {}
    }
    Ok((start_time, entity.end_time, in_progress))
}

fn check_time(path: &str, field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            ValidationErrorKind::InvalidTime,
            format!("{path}{field} must be a non-negative number of epoch seconds"),
        ))
    }
}

fn collect_annotations(
    path: &str,
    annotations: Option<Annotations>,
    out: &mut Vec<(String, AnnotationValue)>,
) -> Result<(), ValidationError> {
    let Some(Annotations(annotations)) = annotations else { return Ok(()) };
    for (key, value) in annotations {
        if let Some(problem) = annotation_problem(&key, &value) {
            let separator = if problem.starts_with("key ") { ": " } else { "." };
            return Err(invalid(
                ValidationErrorKind::InvalidAnnotation,
                format!("{path}annotations{separator}{problem}"),
            ));
        }
        out.push((key, value));
    }
    Ok(())
}

/// Whether X-Ray accepts `key` as an annotation key: 1 to 500 ASCII letters, digits or `_`.
pub fn annotation_key_is_valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_ANNOTATION_KEY
        && key.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Why X-Ray would refuse the annotation `key` = `value`, or `None` when it
/// is valid: a key is 1 to 500 ASCII letters, digits or `_`, a string value
/// at most 1000 characters, a number finite. The reason starts with `key …`
/// for the key, or with the key itself for the value.
pub fn annotation_problem(key: &str, value: &AnnotationValue) -> Option<String> {
    if !annotation_key_is_valid(key) {
        return Some(format!("key {key:?} must be 1 to {MAX_ANNOTATION_KEY} letters, digits or _"));
    }
    match value {
        AnnotationValue::String(text) if text.chars().count() > MAX_ANNOTATION_STRING => {
            Some(format!("{key} is longer than {MAX_ANNOTATION_STRING} characters"))
        }
        AnnotationValue::Number(number) if !number.is_finite() => Some(format!("{key} is not finite")),
        _ => None,
    }
}

/// Reads the subsegments embedded in a document or, with `parent` (its index
/// in [`Facts::entities`]), in one of its subsegments.
fn collect_subsegments(
    path: &str,
    parent: Option<u32>,
    subsegments: Vec<ObjectOnly<RawEntity<'_>>>,
    facts: &mut Facts,
) -> Result<(), ValidationError> {
    facts.entities.reserve(subsegments.len());
    for (index, ObjectOnly(subsegment)) in subsegments.into_iter().enumerate() {
        let path = format!("{path}subsegments[{index}].");
        let id = parse_segment_id(&format!("{path}id"), subsegment.id.as_deref())?
            .ok_or_else(|| invalid(ValidationErrorKind::MissingField, format!("{path}id is required")))?;
        if let Some(trace_id) = subsegment.trace_id.as_deref() {
            trace_id
                .parse::<TraceId>()
                .map_err(|error| invalid(ValidationErrorKind::InvalidTraceId, format!("{path}trace_id: {error}")))?;
        }
        parse_segment_id(&format!("{path}parent_id"), subsegment.parent_id.as_deref())?;
        let (start, end, in_progress) = check_entity(&path, &subsegment, MAX_SUBSEGMENT_NAME)?;
        if in_progress {
            facts.in_progress_subsegments.push(id);
        }
        facts.subsegment_ids.push(id);
        facts.calls.extend(call_of(id, &subsegment, start, end));
        let index = u32::try_from(facts.entities.len()).unwrap_or(u32::MAX);
        facts.entities.push(Entity {
            id,
            parent,
            name: subsegment.name.unwrap_or_default().into_owned(),
            start_time: start,
            end_time: end,
            error: subsegment.error.unwrap_or(false),
            fault: subsegment.fault.unwrap_or(false),
            throttle: subsegment.throttle.unwrap_or(false),
            namespace: subsegment.namespace.as_deref().and_then(Namespace::parse),
            exceptions: subsegment.cause.map(|Cause(exceptions)| exceptions).unwrap_or_default(),
        });
        collect_annotations(&path, subsegment.annotations, &mut facts.annotations)?;
        if let Some(children) = subsegment.subsegments {
            collect_subsegments(&path, Some(index), children, facts)?;
        }
    }
    Ok(())
}

// === precise reasons for documents the fast path could not read ===

/// Finds which field broke the typed parse, reading the document as a plain
/// JSON value. Only runs for rejected documents.
fn diagnose(text: &str, parse_error: serde_json::Error) -> ValidationError {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => return invalid(ValidationErrorKind::InvalidJson, format!("document is not valid JSON: {error}")),
    };
    let Value::Object(_) = &value else {
        return invalid(
            ValidationErrorKind::InvalidJson,
            format!("document must be a JSON object, got {}", type_name(&value)),
        );
    };
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let message =
        wrong_type(&value, "").unwrap_or_else(|| format!("document does not fit the segment schema: {parse_error}"));
    ValidationError { kind: ValidationErrorKind::WrongType, message, id }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Clone, Copy)]
enum Expect {
    String,
    Number,
    Bool,
    Object,
    Status,
    Annotations,
    Cause,
}

fn fits(expect: Expect, value: &Value) -> bool {
    match expect {
        Expect::String => value.is_string(),
        Expect::Number => value.is_number(),
        Expect::Bool => value.is_boolean(),
        Expect::Object => value.is_object(),
        Expect::Status => value.as_u64().is_some_and(|status| status <= u64::from(u16::MAX)),
        Expect::Annotations => value.is_object(),
        Expect::Cause => value.is_object() || value.is_string(),
    }
}

fn describe(expect: Expect) -> &'static str {
    match expect {
        Expect::String => "a string",
        Expect::Number => "a number",
        Expect::Bool => "a boolean",
        Expect::Object | Expect::Annotations => "an object",
        Expect::Status => "an integer status code",
        Expect::Cause => "an object or an exception id string",
    }
}

/// The first field whose JSON type is wrong, as a message.
fn wrong_type(entity: &Value, path: &str) -> Option<String> {
    const FIELDS: [(&str, Expect); 20] = [
        ("id", Expect::String),
        ("name", Expect::String),
        ("trace_id", Expect::String),
        ("parent_id", Expect::String),
        ("type", Expect::String),
        ("start_time", Expect::Number),
        ("end_time", Expect::Number),
        ("in_progress", Expect::Bool),
        ("error", Expect::Bool),
        ("fault", Expect::Bool),
        ("throttle", Expect::Bool),
        ("origin", Expect::String),
        ("user", Expect::String),
        ("namespace", Expect::String),
        ("resource_arn", Expect::String),
        ("http", Expect::Object),
        ("aws", Expect::Object),
        ("annotations", Expect::Annotations),
        ("metadata", Expect::Object),
        ("sql", Expect::Object),
    ];
    let Value::Object(fields) = entity else {
        return Some(format!("{} must be an object, got {}", path.trim_end_matches('.'), type_name(entity)));
    };
    let mismatch = |field: &str, value: &Value, expect: Expect| {
        (!value.is_null() && !fits(expect, value))
            .then(|| format!("{path}{field} must be {}, got {}", describe(expect), type_name(value)))
    };
    for (field, expect) in FIELDS.iter().chain(&[("cause", Expect::Cause)]) {
        if let Some(message) = fields.get(*field).and_then(|value| mismatch(field, value, *expect)) {
            return Some(message);
        }
    }
    let nested: [(&str, &[(&str, Expect)]); 5] = [
        (
            "http.request",
            &[
                ("method", Expect::String),
                ("url", Expect::String),
                ("user_agent", Expect::String),
                ("client_ip", Expect::String),
            ],
        ),
        ("http.response", &[("status", Expect::Status)]),
        ("http", &[("request", Expect::Object), ("response", Expect::Object)]),
        ("aws", &[("account_id", Expect::String), ("ec2", Expect::Object)]),
        ("aws.ec2", &[("instance_id", Expect::String), ("availability_zone", Expect::String)]),
    ];
    for (object_path, members) in nested {
        let object = object_path.split('.').try_fold(entity, |value, key| value.get(key));
        for (member, expect) in members {
            if let Some(value) = object.and_then(|object| object.get(member))
                && let Some(message) = mismatch(&format!("{object_path}.{member}"), value, *expect)
            {
                return Some(message);
            }
        }
    }
    if let Some(Value::Object(annotations)) = fields.get("annotations") {
        for (key, value) in annotations {
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                return Some(format!(
                    "{path}annotations.{key} must be a string, number or boolean, got {}",
                    type_name(value)
                ));
            }
        }
    }
    match fields.get("subsegments") {
        None | Some(Value::Null) => None,
        Some(Value::Array(subsegments)) => subsegments
            .iter()
            .enumerate()
            .find_map(|(index, subsegment)| wrong_type(subsegment, &format!("{path}subsegments[{index}]."))),
        Some(other) => Some(format!("{path}subsegments must be an array, got {}", type_name(other))),
    }
}

#[cfg(test)]
mod tests;
