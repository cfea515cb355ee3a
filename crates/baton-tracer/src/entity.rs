//! Segments and subsegments: what is recorded on them, and what happens when
//! they end (attached to their parent, or queued for the sender).

use std::borrow::Cow;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use baton_model::{Sampled, SegmentId, TraceHeader, TraceId, TraceParent};
use serde::Serialize;
use smallvec::SmallVec;
use spin::mutex::{SpinMutex, SpinMutexGuard};

use crate::clock::now_micros;
use crate::config::tracer;
use crate::context::{self, Instrumented};
use crate::error::TracerError;
use crate::pool;

/// An annotation value: indexed by X-Ray and searchable with filter expressions.
/// A borrowed string is copied only when it is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Annotation<'a> {
    /// A string, at most 1000 characters.
    String(Cow<'a, str>),
    /// An integer.
    Int(i64),
    /// A finite floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl<'a> From<&'a str> for Annotation<'a> {
    fn from(value: &'a str) -> Self {
        Annotation::String(Cow::Borrowed(value))
    }
}

impl From<String> for Annotation<'_> {
    fn from(value: String) -> Self {
        Annotation::String(Cow::Owned(value))
    }
}

impl From<bool> for Annotation<'_> {
    fn from(value: bool) -> Self {
        Annotation::Bool(value)
    }
}

impl From<f64> for Annotation<'_> {
    fn from(value: f64) -> Self {
        Annotation::Float(value)
    }
}

impl From<f32> for Annotation<'_> {
    fn from(value: f32) -> Self {
        Annotation::Float(value.into())
    }
}

macro_rules! integer_annotations {
    ($($integer:ty),*) => {$(
        impl From<$integer> for Annotation<'_> {
            fn from(value: $integer) -> Self {
                Annotation::Int(value.into())
            }
        }
    )*};
}
integer_annotations!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Annotation<'_> {
    fn from(value: u64) -> Self {
        i64::try_from(value).map_or(Annotation::Float(value as f64), Annotation::Int)
    }
}

impl From<usize> for Annotation<'_> {
    fn from(value: usize) -> Self {
        (value as u64).into()
    }
}

/// An annotation value as a node keeps it: short strings (most ids) inline, without an allocation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stored {
    Short { length: u8, bytes: [u8; SHORT] },
    Long(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The longest string an annotation keeps inline.
const SHORT: usize = 22;

impl Stored {
    fn new(value: Annotation<'_>) -> Stored {
        match value {
            Annotation::String(text) if text.len() <= SHORT => {
                let mut bytes = [0; SHORT];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Stored::Short { length: text.len() as u8, bytes }
            }
            Annotation::String(text) => Stored::Long(text.into_owned()),
            Annotation::Int(number) => Stored::Int(number),
            Annotation::Float(number) => Stored::Float(number),
            Annotation::Bool(flag) => Stored::Bool(flag),
        }
    }

    /// The string, for a string value.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            // Copied from a `str`, so always UTF-8.
            Stored::Short { length, bytes } => std::str::from_utf8(&bytes[..usize::from(*length)]).ok(),
            Stored::Long(text) => Some(text),
            _ => None,
        }
    }
}

/// What kind of work a subsegment stands for; it decides the service graph's inferred nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// Work inside the function or service (the default).
    Local,
    /// A call to another service over HTTP.
    Remote,
    /// A call to an AWS service through an AWS SDK.
    Aws,
}

impl Namespace {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Namespace::Local => "local",
            Namespace::Remote => "remote",
            Namespace::Aws => "aws",
        }
    }
}

/// The `http.request` block of a segment or subsegment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The URL, without its query string.
    pub url: String,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
    /// The caller's IP address.
    pub client_ip: Option<String>,
    /// Whether `client_ip` was read from `X-Forwarded-For` (so it is not trusted).
    pub x_forwarded_for: bool,
}

impl HttpRequest {
    /// A request with a method and a URL; the query string is removed, as X-Ray SDKs do.
    pub fn new(method: &str, url: &str) -> HttpRequest {
        let url = url.split_once(['?', '#']).map_or(url, |(base, _)| base);
        HttpRequest { method: method.into(), url: url.into(), ..HttpRequest::default() }
    }
}

/// The `sql` block of a subsegment for a database query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    /// The connection URL, without credentials.
    pub url: Option<String>,
    /// The engine, e.g. `PostgreSQL`.
    pub database_type: Option<String>,
    /// The engine's version.
    pub database_version: Option<String>,
    /// The client library and its version.
    pub driver_version: Option<String>,
    /// The database user.
    pub user: Option<String>,
    /// The query, with values removed.
    pub sanitized_query: Option<String>,
    /// `call` or `statement`.
    pub preparation: Option<String>,
}

/// One entry of a `cause.exceptions` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exception {
    pub(crate) id: String,
    pub(crate) kind: Option<String>,
    pub(crate) message: String,
    pub(crate) remote: bool,
    pub(crate) cause: Option<String>,
}

/// The trace a subsegment belongs to, and what its outgoing headers carry along.
#[derive(Debug, Clone)]
pub(crate) struct TraceContext {
    pub(crate) id: TraceId,
    /// Shared by the trace's subsegments; `None` (most traces) spares each of them a reference count.
    carried: Option<Arc<Carried>>,
}

/// The incoming header's fields that outgoing headers repeat.
#[derive(Debug)]
struct Carried {
    lineage: Option<String>,
    extra: Vec<(String, String)>,
}

impl TraceContext {
    fn from_header(id: TraceId, header: Option<&TraceHeader>) -> TraceContext {
        let carried = header
            .filter(|header| header.lineage.is_some() || !header.extra.is_empty())
            .map(|header| Arc::new(Carried { lineage: header.lineage.clone(), extra: header.extra.clone() }));
        TraceContext { id, carried }
    }

    fn header(&self, parent: SegmentId, sampled: Sampled) -> TraceHeader {
        TraceHeader {
            root: Some(self.id),
            parent: Some(parent),
            sampled: Some(sampled),
            self_id: None,
            lineage: self.carried.as_ref().and_then(|carried| carried.lineage.clone()),
            extra: self.carried.as_ref().map(|carried| carried.extra.clone()).unwrap_or_default(),
        }
    }
}

pub(crate) enum Parent {
    /// A segment that starts its trace.
    None,
    /// The caller's entity, in another process (a document Baton may never see, like Lambda's facade).
    Remote(SegmentId),
    /// An entity of this process, which embeds the subsegment when it ends
    /// first ([`State::open_parent`] holds it until then).
    Local(SegmentId),
}

/// A recorded segment or subsegment.
pub(crate) struct Node {
    pub(crate) trace: TraceContext,
    pub(crate) id: SegmentId,
    pub(crate) parent: Parent,
    pub(crate) segment: bool,
    pub(crate) start: u64,
    /// A spin lock, not a `Mutex`: held for a few nanoseconds and almost never
    /// contended, it costs one atomic operation less, a sixth of a subsegment.
    pub(crate) state: NodeLock,
}

/// The lock of a node's [`State`]; contention yields the thread.
pub(crate) type NodeLock = SpinMutex<State, spin::relax::Yield>;

/// What is recorded on a node until it ends.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) name: Cow<'static, str>,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) error: bool,
    pub(crate) fault: bool,
    pub(crate) throttle: bool,
    /// Inline: most subsegments carry one or two, and an allocation costs more than the rest of `begin`.
    pub(crate) annotations: SmallVec<[(Cow<'static, str>, Stored); 2]>,
    /// What most subsegments never have, apart so a new node is small.
    pub(crate) more: Option<Box<More>>,
    /// Closed children, embedded in this node's document when it is sent.
    pub(crate) children: Vec<Arc<Node>>,
    /// The parent in this process, held while this node is open and let go
    /// when it ends, so that a closed child never holds its parent (which
    /// holds it) and no cycle outlives the tree.
    open_parent: Option<Arc<Node>>,
    pub(crate) end: Option<u64>,
}

impl State {
    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_default()
    }

    /// Empties a sent node's record for reuse, as new but for its children's
    /// vector, whose allocation is kept; the children are drained.
    pub(crate) fn clear(&mut self) -> std::vec::Drain<'_, Arc<Node>> {
        let children = std::mem::take(&mut self.children);
        *self = State { children, ..State::default() };
        self.children.drain(..)
    }
}

/// The rarer parts of a node's record.
#[derive(Default)]
pub(crate) struct More {
    /// Namespace, key, the value as JSON text.
    pub(crate) metadata: Vec<(String, String, String)>,
    pub(crate) http_request: Option<HttpRequest>,
    pub(crate) http_response: Option<(u16, Option<u64>)>,
    /// Field, the value as JSON text.
    pub(crate) aws: Vec<(String, String)>,
    pub(crate) sql: Option<Sql>,
    pub(crate) user: Option<String>,
    pub(crate) origin: Option<String>,
    /// The centralized sampling rule that chose to record this segment's trace.
    pub(crate) sampling_rule: Option<Arc<str>>,
    pub(crate) exceptions: Vec<Exception>,
    /// The id of a child's exception this node failed with, written as a bare `cause` string.
    pub(crate) cause_id: Option<String>,
    /// The first exception the latest failed child recorded: id, message.
    child_exception: Option<(String, String)>,
}

/// Nothing recorded, read for nodes without a `More`.
pub(crate) static NO_MORE: More = More {
    metadata: Vec::new(),
    http_request: None,
    http_response: None,
    aws: Vec::new(),
    sql: None,
    user: None,
    origin: None,
    sampling_rule: None,
    exceptions: Vec::new(),
    cause_id: None,
    child_exception: None,
};

/// Closed subsegments a parent keeps in memory before sending them on their own.
const STREAM_CHILDREN: usize = 100;

/// A segment or subsegment being recorded. Cloning gives another handle to
/// the same subsegment. When tracing is off, or the trace is not sampled,
/// every method is a no-op.
#[derive(Clone)]
pub struct Subsegment(Inner);

#[derive(Clone)]
enum Inner {
    Off,
    Unsampled(TraceContext),
    Recording(Arc<Node>),
}

fn new_segment_id() -> SegmentId {
    // Zero is not a valid id (the unsampled header's Parent is all zeros).
    SegmentId::from_u64(fastrand::u64(1..))
}

fn new_trace_id() -> TraceId {
    TraceId::from_parts((now_micros() / 1_000_000) as u32, fastrand::u128(..))
}

impl Subsegment {
    /// The handle that records nothing.
    pub const fn off() -> Subsegment {
        Subsegment(Inner::Off)
    }

    /// Begins a subsegment under the current one. In Lambda, with no current
    /// subsegment, its parent is the invocation's (from `_X_AMZN_TRACE_ID`).
    pub fn begin(name: impl Into<Cow<'static, str>>) -> Subsegment {
        let tracer = tracer();
        if !tracer.config.enabled {
            return Subsegment::off();
        }
        // The current handle is borrowed; only its node (`Ok`) or, for a
        // trace not sampled, its trace (`Err`) is cloned.
        let current = context::with_current(|current| match &current.0 {
            Inner::Recording(parent) => Some(Ok(parent.clone())),
            Inner::Unsampled(trace) => Some(Err(trace.clone())),
            Inner::Off => None,
        });
        match current {
            Some(Ok(parent)) => Subsegment::child(parent, name),
            Some(Err(trace)) => Subsegment(Inner::Unsampled(trace)),
            None if tracer.config.in_lambda => match lambda_header() {
                Some(header) => Subsegment::begin_remote(name, &header),
                None => Subsegment::off(),
            },
            None => {
                tracing::debug!("baton-tracer: no current segment, the subsegment is not recorded");
                Subsegment::off()
            }
        }
    }

    /// Begins a subsegment whose parent is the caller named by `header`
    /// (`Root` and `Parent`), as a Lambda function's subsegments hang under
    /// the platform's segment. `Sampled=0` records nothing.
    pub fn begin_remote(name: impl Into<Cow<'static, str>>, header: &TraceHeader) -> Subsegment {
        if !tracer().config.enabled {
            return Subsegment::off();
        }
        let (Some(root), Some(parent)) = (header.root, header.parent) else {
            tracing::debug!(%header, "baton-tracer: the trace header has no Root or Parent, nothing is recorded");
            return Subsegment::off();
        };
        let trace = TraceContext::from_header(root, Some(header));
        if header.sampled == Some(Sampled::No) {
            return Subsegment(Inner::Unsampled(trace));
        }
        Subsegment::recording(trace, Parent::Remote(parent), false, name)
    }

    fn recording(trace: TraceContext, parent: Parent, segment: bool, name: impl Into<Cow<'static, str>>) -> Self {
        Subsegment::new_node(pool::take(), trace, parent, segment, name.into(), None)
    }

    /// A subsegment of `parent`, which holds it once it ends.
    fn child(parent: Arc<Node>, name: impl Into<Cow<'static, str>>) -> Self {
        let (trace, id) = (parent.trace.clone(), parent.id);
        Subsegment::new_node(pool::take(), trace, Parent::Local(id), false, name.into(), Some(parent))
    }

    /// A new node, in `pooled`'s memory when the sender has handed one back.
    fn new_node(
        pooled: Option<Arc<Node>>,
        trace: TraceContext,
        parent: Parent,
        segment: bool,
        name: Cow<'static, str>,
        open_parent: Option<Arc<Node>>,
    ) -> Self {
        let (id, start) = (new_segment_id(), now_micros());
        if let Some(mut node) = pooled
            && let Some(reused) = Arc::get_mut(&mut node)
        {
            (reused.trace, reused.id, reused.parent, reused.segment, reused.start) =
                (trace, id, parent, segment, start);
            let state = reused.state.get_mut();
            (state.name, state.open_parent) = (name, open_parent);
            return Subsegment(Inner::Recording(node));
        }
        let state = State { name, open_parent, ..State::default() };
        Subsegment(Inner::Recording(Arc::new(Node { trace, id, parent, segment, start, state: NodeLock::new(state) })))
    }

    /// Whether anything recorded on this handle will be sent.
    pub fn is_recording(&self) -> bool {
        matches!(self.0, Inner::Recording(_))
    }

    /// Whether the handle belongs to a trace (sampled or not), so it can be made current.
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.0, Inner::Off)
    }

    /// This subsegment's id, when it is recorded.
    pub fn id(&self) -> Option<SegmentId> {
        match &self.0 {
            Inner::Recording(node) => Some(node.id),
            _ => None,
        }
    }

    /// The trace this subsegment belongs to.
    pub fn trace_id(&self) -> Option<TraceId> {
        match &self.0 {
            Inner::Off => None,
            Inner::Unsampled(trace) => Some(trace.id),
            Inner::Recording(node) => Some(node.trace.id),
        }
    }

    /// The `X-Amzn-Trace-Id` to send with a call made inside this subsegment:
    /// `Parent` is this subsegment, or all zeros with `Sampled=0` when the trace is not sampled.
    pub fn trace_header(&self) -> Option<TraceHeader> {
        match &self.0 {
            Inner::Off => None,
            Inner::Unsampled(trace) => Some(trace.header(SegmentId::from_u64(0), Sampled::No)),
            Inner::Recording(node) => Some(node.trace.header(node.id, Sampled::Yes)),
        }
    }

    /// The W3C `traceparent` to send with a call made inside this subsegment,
    /// beside [`trace_header`](Self::trace_header): the parent is this
    /// subsegment, or, for a trace not sampled, a random id (W3C forbids a
    /// zero one) with the sampled flag off.
    pub fn traceparent(&self) -> Option<TraceParent> {
        match &self.0 {
            Inner::Off => None,
            Inner::Unsampled(trace) => {
                Some(TraceParent { trace_id: trace.id, parent_id: new_segment_id(), sampled: false })
            }
            Inner::Recording(node) => Some(TraceParent { trace_id: node.trace.id, parent_id: node.id, sampled: true }),
        }
    }

    /// The headers to send with a call made inside this subsegment, so that
    /// the callee continues the trace: `x-amzn-trace-id`
    /// ([`trace_header`](Self::trace_header)) and `traceparent`
    /// ([`traceparent`](Self::traceparent)); none when tracing is off.
    pub fn outgoing_headers(&self) -> impl Iterator<Item = (&'static str, String)> {
        let amzn = self.trace_header().map(|header| ("x-amzn-trace-id", header.to_string()));
        amzn.into_iter().chain(self.traceparent().map(|parent| ("traceparent", parent.to_string())))
    }

    fn state(&self) -> Option<SpinMutexGuard<'_, State>> {
        let Inner::Recording(node) = &self.0 else { return None };
        let state = node.state.lock();
        state.end.is_none().then_some(state)
    }

    /// Adds an annotation: indexed, searchable (`annotation.key = value`).
    /// Keys are 1 to 500 ASCII letters, digits or `_`.
    pub fn put_annotation<'a>(
        &self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Annotation<'a>>,
    ) -> Result<(), TracerError> {
        use baton_model::{AnnotationValue, annotation_key_is_valid, annotation_problem};
        if !self.is_recording() {
            return Ok(());
        }
        let (key, value) = (key.into(), value.into());
        let valid = annotation_key_is_valid(&key)
            && match &value {
                // Only a value over 1000 bytes can be over 1000 characters.
                Annotation::String(text) => text.len() <= 1000 || text.chars().count() <= 1000,
                Annotation::Float(number) => number.is_finite(),
                Annotation::Int(_) | Annotation::Bool(_) => true,
            };
        if !valid {
            let checked = match &value {
                Annotation::String(text) => AnnotationValue::String(text.to_string()),
                Annotation::Float(number) => AnnotationValue::Number(*number),
                Annotation::Int(_) | Annotation::Bool(_) => AnnotationValue::Bool(true),
            };
            return Err(TracerError::Annotation(annotation_problem(&key, &checked).unwrap_or_default()));
        }
        if let Some(mut state) = self.state() {
            let value = Stored::new(value);
            match state.annotations.iter_mut().find(|(existing, _)| *existing == key) {
                Some((_, existing)) => *existing = value,
                None => state.annotations.push((key, value)),
            }
        }
        Ok(())
    }

    /// Adds metadata (not indexed) under the service's namespace.
    pub fn put_metadata(&self, key: &str, value: &(impl Serialize + ?Sized)) -> Result<(), TracerError> {
        if !self.is_recording() {
            return Ok(());
        }
        self.put_metadata_in(&tracer().config.service_name, key, value)
    }

    /// Adds metadata (not indexed) under `namespace`.
    pub fn put_metadata_in(
        &self,
        namespace: &str,
        key: &str,
        value: &(impl Serialize + ?Sized),
    ) -> Result<(), TracerError> {
        if !self.is_recording() {
            return Ok(());
        }
        let json = serde_json::to_string(value).map_err(|source| TracerError::Metadata { key: key.into(), source })?;
        if let Some(mut state) = self.state() {
            let metadata = &mut state.more().metadata;
            metadata
                .retain(|(existing_namespace, existing_key, _)| existing_namespace != namespace || existing_key != key);
            metadata.push((namespace.into(), key.into(), json));
        }
        Ok(())
    }

    /// Marks what this subsegment calls: `remote` for HTTP, `aws` for AWS services.
    pub fn set_namespace(&self, namespace: Namespace) {
        if let Some(mut state) = self.state() {
            state.namespace = Some(namespace);
        }
    }

    /// Records the HTTP request this entity served or made.
    pub fn set_http_request(&self, request: HttpRequest) {
        if let Some(mut state) = self.state() {
            state.more().http_request = Some(request);
        }
    }

    /// Records the HTTP response; 4xx marks an error, 429 also a throttle, 5xx a fault.
    pub fn set_http_response(&self, status: u16, content_length: Option<u64>) {
        if let Some(mut state) = self.state() {
            state.more().http_response = Some((status, content_length));
            match status {
                429 => (state.error, state.throttle) = (true, true),
                400..=499 => state.error = true,
                500..=599 => state.fault = true,
                _ => {}
            }
        }
    }

    /// Sets one field of the `aws` block, e.g. `operation`, `region`, `request_id`, `table_name`.
    pub fn set_aws(&self, field: &str, value: impl Into<serde_json::Value>) {
        if let Some(mut state) = self.state() {
            let json = value.into().to_string();
            let aws = &mut state.more().aws;
            aws.retain(|(existing, _)| existing != field);
            aws.push((field.into(), json));
        }
    }

    /// Records the `sql` block of a database query.
    pub fn set_sql(&self, sql: Sql) {
        if let Some(mut state) = self.state() {
            state.more().sql = Some(sql);
        }
    }

    /// Records the user the request is for (searchable with `user = "..."`).
    pub fn set_user(&self, user: &str) {
        if let Some(mut state) = self.state() {
            state.more().user = Some(user.into());
        }
    }

    /// Records the kind of resource that runs the service, e.g. `AWS::EC2::Instance`.
    pub fn set_origin(&self, origin: &str) {
        if let Some(mut state) = self.state() {
            state.more().origin = Some(origin.into());
        }
    }

    /// Marks a client error (4xx).
    pub fn set_error(&self) {
        if let Some(mut state) = self.state() {
            state.error = true;
        }
    }

    /// Marks a fault (server error, 5xx).
    pub fn set_fault(&self) {
        if let Some(mut state) = self.state() {
            state.fault = true;
        }
    }

    /// Marks a throttle (429); a throttle is also an error.
    pub fn set_throttle(&self) {
        if let Some(mut state) = self.state() {
            (state.error, state.throttle) = (true, true);
        }
    }

    /// Records a failure: a fault and the error with its `source()` chain as the cause.
    pub fn record_error(&self, error: &(dyn std::error::Error + 'static)) {
        let mut chain = vec![error.to_string()];
        let mut source = error.source();
        while let Some(next) = source {
            chain.push(next.to_string());
            source = next.source();
        }
        self.record_chain(None, chain, false);
    }

    /// Records a failure of a type and message: a fault and the cause.
    pub fn record_exception(&self, type_name: &str, message: &str) {
        self.record_chain(Some(type_name), vec![message.into()], false);
    }

    /// Records a failure reported by a remote service (an HTTP or AWS call):
    /// a fault or an error as the caller sets, and the cause marked `remote`.
    #[cfg(feature = "aws-sdk")]
    pub(crate) fn record_remote_exception(&self, type_name: &str, message: &str) {
        self.record_chain(Some(type_name), vec![message.into()], true);
    }

    fn record_chain(&self, type_name: Option<&str>, messages: Vec<String>, remote: bool) {
        let Some(mut state) = self.state() else { return };
        if !remote {
            state.fault = true;
        }
        let more = state.more();
        if let Some((id, child_message)) = &more.child_exception
            && *child_message == messages[0]
        {
            // The failure a child recorded, passed up (`?` may have converted its type, not its
            // message): X-Ray writes the child's exception id.
            more.cause_id = Some(id.clone());
            return;
        }
        let ids: Vec<String> = messages.iter().map(|_| new_segment_id().to_string()).collect();
        for (index, message) in messages.into_iter().enumerate() {
            more.exceptions.push(Exception {
                id: ids[index].clone(),
                kind: if index == 0 { type_name.map(Into::into) } else { None },
                message,
                remote,
                cause: ids.get(index + 1).cloned(),
            });
        }
    }

    /// Runs `f` with this subsegment current, so subsegments begun inside are its children.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = context::enter(self);
        f()
    }

    /// Wraps `future` so this subsegment is current whenever it runs.
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented::new(future, self.clone())
    }

    /// Ends the subsegment: it is embedded in its parent when the parent is
    /// still open, else queued for the sender, which writes its document.
    /// Other handles to it record nothing more; ending it again does nothing.
    /// The handle is consumed, so its reference moves to the parent or the
    /// sender instead of being counted up there and down here.
    pub fn end(self) {
        let Inner::Recording(node) = self.0 else { return };
        let end = now_micros();
        let (first_exception, parent) = {
            let mut state = node.state.lock();
            if state.end.is_some() {
                return;
            }
            state.end = Some(end.max(node.start));
            let first = state.more.as_ref().and_then(|more| more.exceptions.first());
            (first.map(|exception| (exception.id.clone(), exception.message.clone())), state.open_parent.take())
        };
        if let Some(parent) = parent {
            let mut state = parent.state.lock();
            if first_exception.is_some() {
                state.more().child_exception = first_exception;
            }
            if state.end.is_none() {
                if state.children.capacity() == 0 {
                    // One allocation for most parents, not three as the vector grows to 16.
                    state.children.reserve_exact(16);
                }
                state.children.push(node);
                if state.children.len() <= STREAM_CHILDREN {
                    return;
                }
                // Too many to hold: the closed subtrees go out on their own, as the X-Ray SDK streams them.
                let children = std::mem::replace(&mut state.children, Vec::with_capacity(STREAM_CHILDREN + 1));
                drop(state);
                return send(children.into_iter());
            }
        }
        send(std::iter::once(node));
    }
}

fn send(entities: impl ExactSizeIterator<Item = Arc<Node>>) {
    if let Some(sender) = &tracer().sender {
        sender.send(entities);
    }
}

/// The Lambda invocation's trace header, which the runtime client sets in `_X_AMZN_TRACE_ID`.
fn lambda_header() -> Option<TraceHeader> {
    let text = std::env::var("_X_AMZN_TRACE_ID").ok()?;
    text.parse().map_err(|error| tracing::debug!(%error, "baton-tracer: invalid _X_AMZN_TRACE_ID")).ok()
}

/// The directory X-Ray's `cause.working_directory` names.
pub(crate) fn working_directory() -> &'static str {
    static DIRECTORY: OnceLock<String> = OnceLock::new();
    DIRECTORY.get_or_init(|| std::env::current_dir().map(|path| path.display().to_string()).unwrap_or_default())
}

/// The top of a trace in a service: the work it did for one request. It
/// dereferences to [`Subsegment`] for recording; [`Subsegment::end`] sends it.
#[derive(Clone)]
pub struct Segment(Subsegment);

impl Deref for Segment {
    type Target = Subsegment;

    fn deref(&self) -> &Subsegment {
        &self.0
    }
}

impl Segment {
    /// Starts describing a segment named `name` (usually the service name).
    pub fn builder(name: impl Into<Cow<'static, str>>) -> SegmentBuilder {
        SegmentBuilder { name: name.into(), header: None, request: None, host: None, origin: None }
    }

    /// Ends the segment and queues it, with its closed subsegments, for the sender.
    pub fn end(self) {
        self.0.end();
    }
}

/// Options of a new segment: the incoming trace header and HTTP request.
pub struct SegmentBuilder {
    name: Cow<'static, str>,
    header: Option<TraceHeader>,
    request: Option<HttpRequest>,
    host: Option<String>,
    origin: Option<String>,
}

impl SegmentBuilder {
    /// Continues the caller's trace: same `Root`, `Parent` as this segment's
    /// parent, and the caller's sampling decision when it made one.
    pub fn header(mut self, header: TraceHeader) -> SegmentBuilder {
        self.header = Some(header);
        self
    }

    /// Continues the caller's trace from the values of its request's
    /// `X-Amzn-Trace-Id` and W3C `traceparent` headers: the first when it
    /// names a trace, else the second. A value that does not parse is
    /// ignored; with neither, the segment starts a new trace.
    pub fn incoming_headers(self, x_amzn_trace_id: Option<&str>, traceparent: Option<&str>) -> SegmentBuilder {
        let amzn = x_amzn_trace_id.and_then(|text| {
            text.parse::<TraceHeader>()
                .map_err(|error| tracing::debug!(%error, "baton-tracer: X-Amzn-Trace-Id ignored"))
                .ok()
        });
        let w3c = || {
            let text = traceparent?;
            let parent = text.parse::<TraceParent>();
            parent.map_err(|error| tracing::debug!(%error, "baton-tracer: traceparent ignored")).ok()
        };
        let header = match amzn {
            Some(header) if header.root.is_some() => Some(header),
            amzn => w3c().map(TraceParent::to_trace_header).or(amzn),
        };
        match header {
            Some(header) => self.header(header),
            None => self,
        }
    }

    /// The kind of resource that runs the service, e.g. `AWS::EC2::Instance`:
    /// recorded as the segment's `origin`, and the service type sampling rules match.
    pub fn origin(mut self, origin: &str) -> SegmentBuilder {
        self.origin = Some(origin.into());
        self
    }

    /// The HTTP request the segment serves; its host, method and path also select the sampling rule.
    pub fn http_request(mut self, host: &str, request: HttpRequest) -> SegmentBuilder {
        self.host = Some(host.into());
        self.request = Some(request);
        self
    }

    /// Begins the segment (a no-op handle when tracing is off or the trace not sampled).
    pub fn begin(self) -> Segment {
        let tracer = tracer();
        if !tracer.config.enabled {
            return Segment(Subsegment::off());
        }
        let header = self.header.as_ref();
        let trace_id = header.and_then(|header| header.root).unwrap_or_else(new_trace_id);
        let trace = TraceContext::from_header(trace_id, header);
        let (sampled, rule) = match header.and_then(|header| header.sampled) {
            Some(Sampled::Yes) => (true, None),
            Some(Sampled::No) => (false, None),
            Some(Sampled::Requested) | None => {
                let path = self.request.as_ref().map(|request| {
                    let url = request.url.as_str();
                    url.find("://").map_or(url, |scheme| {
                        let rest = &url[scheme + 3..];
                        rest.find('/').map_or("/", |slash| &rest[slash..])
                    })
                });
                let decision = tracer.config.sampler.decide(&baton_model::sampling::SamplingRequest {
                    service_name: Some(&self.name),
                    service_type: self.origin.as_deref(),
                    host: self.host.as_deref(),
                    http_method: self.request.as_ref().map(|request| request.method.as_str()),
                    url_path: path,
                });
                (decision.sampled, decision.rule)
            }
        };
        if !sampled {
            return Segment(Subsegment(Inner::Unsampled(trace)));
        }
        let parent = header.and_then(|header| header.parent).map_or(Parent::None, Parent::Remote);
        let segment = Subsegment::recording(trace, parent, true, self.name);
        if let Some(request) = self.request {
            segment.set_http_request(request);
        }
        if let Some(origin) = &self.origin {
            segment.set_origin(origin);
        }
        if let Some(rule) = rule
            && let Some(mut state) = segment.state()
        {
            state.more().sampling_rule = Some(rule);
        }
        Segment(segment)
    }
}

#[cfg(test)]
mod tests;
