//! Active tracing as the Lambda platform does it: the sampling decision per
//! invocation, the trace header handed to the function, and the segments
//! the platform records (`AWS::Lambda`, `AWS::Lambda::Function` with its
//! `Initialization`, `Invocation` and `Overhead` subsegments), sent to the
//! daemon address over UDP.

use std::net::{SocketAddr, UdpSocket};

use baton_model::{DAEMON_HEADER, Sampled, SegmentId, TraceHeader, TraceId};
use baton_tracer::{Sampler, SamplingRequest};
use serde_json::{Value, json};

use crate::LambdaError;
use crate::config::TracingMode;

/// The account id in the ARNs of local functions.
pub(crate) const ACCOUNT: &str = "000000000000";

/// How new traces are sampled when no caller decided.
pub enum Sampling {
    /// X-Ray's default rule: the first request each second, then 5 %.
    Default(Sampler),
    /// Every invocation, for development.
    Always,
}

impl Sampling {
    /// X-Ray's default rule.
    pub fn default_rule() -> Sampling {
        Sampling::Default(Sampler::local_default())
    }

    fn sample(&self) -> bool {
        match self {
            Sampling::Default(sampler) => sampler.sample(&SamplingRequest::default()),
            Sampling::Always => true,
        }
    }
}

/// Where the platform's segments go and how it samples.
pub struct Tracing {
    daemon: SocketAddr,
    socket: UdpSocket,
    sampling: Sampling,
}

/// The trace of one invocation.
#[derive(Debug, Clone)]
pub struct InvocationTrace {
    /// The trace id (the caller's, or new).
    pub trace_id: TraceId,
    /// The caller's segment, when the invocation came with a `Parent`.
    pub caller: Option<SegmentId>,
    /// The `AWS::Lambda` segment's id.
    pub service_id: SegmentId,
    /// The `AWS::Lambda::Function` segment's id: the function's `Parent` under Active tracing.
    pub function_id: SegmentId,
    /// Whether the trace is recorded.
    pub sampled: bool,
    /// Whether the platform records its own segments (Active tracing).
    pub active: bool,
    /// The caller's `Lineage` (Lambda's recursion detection), passed on to the function.
    pub lineage: Option<String>,
}

/// The times and outcome of one invocation, in epoch seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    /// The invocation was received.
    pub(crate) received: f64,
    /// A cold start: the process started, and asked for its first invocation.
    pub(crate) init: Option<(f64, f64)>,
    /// The invocation was handed to the process, and answered (or cut short).
    pub(crate) invocation: (f64, f64),
    /// After the answer, until the process asked for the next invocation.
    pub(crate) overhead: Option<(f64, f64)>,
}

/// How an invocation failed, for the function segment.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// X-Ray's `cause` object.
    pub(crate) cause: Value,
}

impl Tracing {
    /// Sends to `daemon` (UDP, the X-Ray daemon protocol).
    pub fn new(daemon: SocketAddr, sampling: Sampling) -> Result<Tracing, LambdaError> {
        let local: SocketAddr = if daemon.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)
            .map_err(|error| LambdaError::Io(format!("cannot open a UDP socket for {daemon}: {error}")))?;
        Ok(Tracing { daemon, socket, sampling })
    }

    /// The daemon address the platform and the functions send to.
    pub fn daemon(&self) -> SocketAddr {
        self.daemon
    }

    /// Decides the invocation's trace: a caller's decision is kept (`Sampled=1`
    /// or `0`); otherwise Active tracing samples and PassThrough records nothing.
    pub fn decide(&self, mode: TracingMode, incoming: Option<&TraceHeader>) -> InvocationTrace {
        // Only a header naming its trace carries the caller's decision and parent.
        let caller = incoming.filter(|header| header.root.is_some());
        let decided = caller.and_then(|header| header.sampled);
        let sampled = match (decided, mode) {
            (Some(Sampled::Yes), _) => true,
            (Some(Sampled::No), _) | (_, TracingMode::PassThrough) => false,
            (_, TracingMode::Active) => self.sampling.sample(),
        };
        InvocationTrace {
            trace_id: caller.and_then(|header| header.root).unwrap_or_else(new_trace_id),
            caller: caller.and_then(|header| header.parent),
            service_id: new_segment_id(),
            function_id: new_segment_id(),
            sampled,
            active: mode == TracingMode::Active,
            lineage: incoming.and_then(|header| header.lineage.clone()),
        }
    }

    /// Sends the platform's segments of an invocation, when it is recorded.
    pub(crate) fn record(
        &self,
        trace: &InvocationTrace,
        function: &FunctionIdentity<'_>,
        timeline: &Timeline,
        failure: Option<&Failure>,
    ) {
        if !(trace.active && trace.sampled) {
            return;
        }
        for document in segments(trace, function, timeline, failure) {
            let datagram = format!("{DAEMON_HEADER}{document}");
            // Best effort, as UDP to the daemon always is.
            if let Err(error) = self.socket.send_to(datagram.as_bytes(), self.daemon) {
                tracing::warn!(%error, daemon = %self.daemon, "cannot send a platform segment");
            }
        }
    }
}

impl InvocationTrace {
    /// The `Lambda-Runtime-Trace-Id` the function gets: under Active tracing
    /// its parent is the function segment, under PassThrough the caller's.
    pub fn function_header(&self) -> TraceHeader {
        let (parent, sampled) = match (self.active, self.sampled) {
            (true, sampled) => (self.function_id, sampled),
            (false, true) => (self.caller.unwrap_or(self.function_id), true),
            (false, false) => (self.caller.unwrap_or(self.function_id), false),
        };
        TraceHeader {
            root: Some(self.trace_id),
            parent: Some(parent),
            sampled: Some(if sampled { Sampled::Yes } else { Sampled::No }),
            lineage: self.lineage.clone(),
            ..TraceHeader::default()
        }
    }
}

/// What names a function in its segments.
pub(crate) struct FunctionIdentity<'a> {
    pub(crate) name: &'a str,
    pub(crate) arn: &'a str,
    pub(crate) request_id: &'a str,
}

/// The platform's two documents for one invocation.
fn segments(
    trace: &InvocationTrace,
    function: &FunctionIdentity<'_>,
    timeline: &Timeline,
    failure: Option<&Failure>,
) -> [Value; 2] {
    let end = timeline.overhead.map_or(timeline.invocation.1, |(_, end)| end);
    let start = timeline.init.map_or(timeline.invocation.0, |(start, _)| start);
    let aws_function = json!({"function_arn": function.arn});
    let subsegment = |name: &str, (start, end): (f64, f64)| json!({"id": new_segment_id().to_string(), "name": name, "start_time": start, "end_time": end, "aws": aws_function});
    let mut subsegments: Vec<Value> =
        timeline.init.map(|init| subsegment("Initialization", init)).into_iter().collect();
    let mut invocation = subsegment("Invocation", timeline.invocation);
    if failure.is_some() {
        invocation["fault"] = json!(true);
    }
    subsegments.push(invocation);
    subsegments.extend(timeline.overhead.map(|overhead| subsegment("Overhead", overhead)));
    let mut service = json!({
        "id": trace.service_id.to_string(),
        "trace_id": trace.trace_id.to_string(),
        "name": function.name,
        "start_time": timeline.received,
        "end_time": end,
        "origin": "AWS::Lambda",
        "resource_arn": function.arn,
        "http": {"response": {"status": 200}},
        "aws": {"request_id": function.request_id},
    });
    if let Some(caller) = trace.caller {
        service["parent_id"] = json!(caller.to_string());
    }
    let mut segment = json!({
        "id": trace.function_id.to_string(),
        "trace_id": trace.trace_id.to_string(),
        "parent_id": trace.service_id.to_string(),
        "name": function.name,
        "start_time": start,
        "end_time": end,
        "origin": "AWS::Lambda::Function",
        "resource_arn": function.arn,
        "aws": {"function_arn": function.arn, "resource_names": [function.name], "account_id": ACCOUNT},
        "subsegments": subsegments,
    });
    if let Some(failure) = failure {
        segment["fault"] = json!(true);
        segment["cause"] = failure.cause.clone();
    }
    [service, segment]
}

impl Failure {
    /// The cause from the runtime's `Lambda-Runtime-Function-XRay-Error-Cause`
    /// when it is a valid one, else from the posted error's type and message.
    pub(crate) fn new(xray_cause: Option<&str>, error_type: &str, message: &str, working_directory: &str) -> Failure {
        let posted = xray_cause
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .filter(|cause| cause.get("exceptions").is_some_and(Value::is_array));
        let mut cause = posted.unwrap_or_else(|| {
            json!({"working_directory": working_directory, "paths": [], "exceptions": [{"message": message, "type": error_type}]})
        });
        // X-Ray exceptions carry an id, by which a parent's cause may point to them.
        if let Some(exceptions) = cause.get_mut("exceptions").and_then(Value::as_array_mut) {
            for exception in exceptions.iter_mut().filter_map(Value::as_object_mut) {
                exception.entry("id").or_insert_with(|| json!(new_segment_id().to_string()));
            }
        }
        Failure { cause }
    }
}

fn new_segment_id() -> SegmentId {
    SegmentId::from_u64(fastrand::u64(1..))
}

fn new_trace_id() -> TraceId {
    TraceId::from_parts(baton_model::time::now() as u32, fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracing(sampling: Sampling) -> Tracing {
        Tracing::new(SocketAddr::from(([127, 0, 0, 1], 9)), sampling).unwrap()
    }

    #[test]
    fn a_callers_decision_is_kept_and_its_parent_becomes_the_service_segments() {
        let tracing = tracing(Sampling::Always);
        let header: TraceHeader =
            "Root=1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=53995c3f42cd8ad8;Sampled=0".parse().unwrap();
        let trace = tracing.decide(TracingMode::Active, Some(&header));
        assert_eq!((trace.trace_id, trace.caller, trace.sampled), (header.root.unwrap(), header.parent, false));
        let sent = trace.function_header();
        assert_eq!((sent.root, sent.parent, sent.sampled), (header.root, Some(trace.function_id), Some(Sampled::No)));
    }

    #[test]
    fn active_tracing_samples_new_traces_and_passthrough_does_not() {
        let always = tracing(Sampling::Always);
        assert!(always.decide(TracingMode::Active, None).sampled);
        assert!(!always.decide(TracingMode::PassThrough, None).sampled);
        let undecided: TraceHeader = "Root=1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa;Sampled=?".parse().unwrap();
        assert!(always.decide(TracingMode::Active, Some(&undecided)).sampled);
        // The default rule takes the first of a second, then 5 %: far fewer than all of 200.
        let default = tracing(Sampling::default_rule());
        let sampled = (0..200).filter(|_| default.decide(TracingMode::Active, None).sampled).count();
        assert!((1..60).contains(&sampled), "{sampled}");
    }

    #[test]
    fn passthrough_hands_the_function_the_callers_parent() {
        let header: TraceHeader =
            "Root=1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"
                .parse()
                .unwrap();
        let trace = tracing(Sampling::Always).decide(TracingMode::PassThrough, Some(&header));
        let sent = trace.function_header();
        assert_eq!((sent.parent, sent.sampled, sent.lineage), (header.parent, Some(Sampled::Yes), header.lineage));
    }

    #[test]
    fn a_cold_failed_invocation_gives_both_segments_with_the_three_phases() {
        let trace = tracing(Sampling::Always).decide(TracingMode::Active, None);
        let function = FunctionIdentity {
            name: "orders",
            arn: "arn:aws:lambda:us-east-1:000000000000:function:orders",
            request_id: "r-1",
        };
        let timeline = Timeline {
            received: 10.0,
            init: Some((10.001, 10.2)),
            invocation: (10.2, 10.5),
            overhead: Some((10.5, 10.501)),
        };
        let failure = Failure::new(Some("not json"), "ValueError", "bad order", "/var/task");
        let [service, segment] = segments(&trace, &function, &timeline, Some(&failure));
        assert_eq!(service["origin"], "AWS::Lambda");
        assert_eq!((service["start_time"].as_f64(), service["end_time"].as_f64()), (Some(10.0), Some(10.501)));
        assert!(service.get("parent_id").is_none());
        assert_eq!(segment["origin"], "AWS::Lambda::Function");
        assert_eq!(segment["parent_id"], service["id"]);
        assert_eq!(segment["start_time"].as_f64(), Some(10.001));
        let names: Vec<&str> =
            segment["subsegments"].as_array().unwrap().iter().map(|sub| sub["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Initialization", "Invocation", "Overhead"]);
        assert_eq!(
            (segment["fault"].as_bool(), segment["subsegments"][1]["fault"].as_bool()),
            (Some(true), Some(true))
        );
        let exception = &segment["cause"]["exceptions"][0];
        assert_eq!(
            (exception["type"].as_str(), exception["message"].as_str()),
            (Some("ValueError"), Some("bad order"))
        );
        assert_eq!(exception["id"].as_str().map(str::len), Some(16));
        for document in [service, segment] {
            baton_model::Document::parse(document.to_string().as_bytes()).expect("a valid segment document");
        }
    }

    #[test]
    fn a_runtimes_xray_cause_is_used_as_posted() {
        let posted = r#"{"working_directory":"/var/task","paths":["app.py"],"exceptions":[{"message":"boom","type":"Exception","stack":[{"label":"handler","path":"app.py","line":3}]}]}"#;
        let failure = Failure::new(Some(posted), "Runtime.Unknown", "ignored", "/elsewhere");
        assert_eq!(failure.cause["paths"][0], "app.py");
        assert_eq!(failure.cause["exceptions"][0]["stack"][0]["line"], 3);
    }
}
