//! A function and its execution environment: each invocation is handed to
//! the warm process, or to a new one (a cold start), and driven through the
//! phases Lambda reports (Initialization, Invocation, Overhead) to its log
//! lines, its trace and its result.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use baton_model::TraceHeader;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::LambdaError;
use crate::config::FunctionConfig;
use crate::instance::{Environment, Happening, Instance};
use crate::platform::{ACCOUNT, Failure, FunctionIdentity, InvocationTrace, Timeline, Tracing};
use crate::runtime_api::{Pending, PostedError, RuntimeEvent};

/// Lambda's limit on a function's initialisation.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time a process has after its answer to ask for the next invocation.
const OVERHEAD_GRACE: Duration = Duration::from_secs(1);

/// What an invocation is called with.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The event, as JSON text.
    pub payload: Bytes,
    /// The caller's `X-Amzn-Trace-Id`, if any.
    pub trace_header: Option<TraceHeader>,
    /// `Lambda-Runtime-Client-Context`, as JSON text.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`, as JSON text.
    pub cognito_identity: Option<String>,
}

/// What an invocation gave.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id the function saw.
    pub request_id: String,
    /// The response, or the error document when `function_error` is set.
    pub payload: Bytes,
    /// The function failed (Lambda's `X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// The log lines, as Lambda writes them: output before START is the initialisation's,
    /// then `START`, the invocation's output, `END`, `REPORT` and, under Active tracing, `XRAY`.
    pub log: Vec<String>,
    /// The invocation's trace.
    pub trace: InvocationTrace,
    /// A new process served it.
    pub cold_start: bool,
    /// When it was received, epoch seconds.
    pub started: f64,
}

/// A configured function, with at most one warm process.
pub struct Function {
    config: FunctionConfig,
    arn: String,
    region: String,
    tracing: Arc<Tracing>,
    slot: tokio::sync::Mutex<Slot>,
}

struct Slot {
    instance: Option<Instance>,
    idle_since: Instant,
}

/// How an invocation went, once its process is done with it.
enum Outcome {
    Response(Bytes),
    Failed { payload: Bytes, failure: Failure },
}

impl Function {
    /// A function as configured, in `region`, traced through `tracing`.
    pub fn new(config: FunctionConfig, region: &str, tracing: Arc<Tracing>) -> Function {
        let arn = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{}", config.name);
        Function {
            config,
            arn,
            region: region.to_owned(),
            tracing,
            slot: tokio::sync::Mutex::new(Slot { instance: None, idle_since: Instant::now() }),
        }
    }

    /// The function's configuration.
    pub fn config(&self) -> &FunctionConfig {
        &self.config
    }

    /// Runs one invocation; invocations of one function run one at a time.
    /// An error is Baton's (the process cannot start); the function's own
    /// failures are in the returned [`Invocation`].
    pub async fn invoke(&self, request: Request) -> Result<Invocation, LambdaError> {
        let received = baton_model::time::now();
        let request_id = new_request_id();
        let trace = self.tracing.decide(self.config.tracing, request.trace_header.as_ref());
        let mut slot = self.slot.lock().await;
        // A process that exited while idle is gone: this is a cold start.
        let warm = slot.instance.take().and_then(|mut instance| instance.exited().is_none().then_some(instance));
        let cold_start = warm.is_none();
        let mut instance = match warm {
            Some(instance) => instance,
            None => {
                let environment = Environment { region: &self.region, daemon: self.tracing.daemon() };
                Instance::start(&self.config, &environment).await?
            }
        };
        let pending = Pending {
            request_id: request_id.clone(),
            payload: request.payload,
            deadline_ms: 0,
            function_arn: self.arn.clone(),
            trace_header: trace.function_header().to_string(),
            client_context: request.client_context,
            cognito_identity: request.cognito_identity,
        };
        let mut driven = self.drive(&mut instance, pending, cold_start).await;
        driven.timeline.received = received;
        slot.idle_since = Instant::now();
        if driven.keep {
            slot.instance = Some(instance);
        } else {
            instance.kill().await;
        }
        drop(slot);

        let identity = FunctionIdentity { name: &self.config.name, arn: &self.arn, request_id: &request_id };
        let failure = match &driven.outcome {
            Outcome::Failed { failure, .. } => Some(failure),
            Outcome::Response(_) => None,
        };
        self.tracing.record(&trace, &identity, &driven.timeline, failure);
        let log = self.log_lines(&request_id, &trace, &driven);
        let (payload, function_error) = match driven.outcome {
            Outcome::Response(payload) => (payload, false),
            Outcome::Failed { payload, .. } => (payload, true),
        };
        Ok(Invocation { request_id, payload, function_error, log, trace, cold_start, started: received })
    }

    /// Stops the warm process if it has been idle for `idle` or longer.
    pub async fn stop_if_idle(&self, idle: Duration) {
        let Ok(mut slot) = self.slot.try_lock() else { return };
        if slot.instance.is_some() && slot.idle_since.elapsed() >= idle {
            if let Some(mut instance) = slot.instance.take() {
                instance.kill().await;
            }
            tracing::info!(function = %self.config.name, "stopped the idle function process");
        }
    }

    /// Takes the invocation through its phases on `instance`.
    async fn drive(&self, instance: &mut Instance, pending: Pending, cold_start: bool) -> Driven {
        let request_id = pending.request_id.clone();
        let mut pending = Some(pending);
        // Hands the invocation to a process waiting in `next`: when it started, and its deadline.
        let mut hand_out = |instance: &mut Instance| {
            let start = baton_model::time::now();
            if let Some(mut pending) = pending.take() {
                pending.deadline_ms = ((start + self.config.timeout.as_secs_f64()) * 1000.0) as u64;
                // The channel holds one, and the last invocation was taken: this cannot be full.
                let _ = instance.runtime.invocations.try_send(pending);
            }
            (start, Instant::now() + self.config.timeout)
        };
        let mut init_output = Vec::new();
        let mut timeline = Timeline::default();
        let mut memory = None;
        let (mut invocation_start, mut deadline) =
            if cold_start { (baton_model::time::now(), Instant::now() + INIT_TIMEOUT) } else { hand_out(instance) };
        let mut answer: Option<(f64, Outcome)> = None;
        let mut timed_out = None;
        let (outcome, keep, answered) = loop {
            let happening = instance.next_event(deadline).await;
            let now = baton_model::time::now();
            let initialising = cold_start && timeline.init.is_none();
            match (happening, answer.take()) {
                (Happening::Runtime(RuntimeEvent::Next), None) if initialising => {
                    timeline.init = Some((instance.started, now));
                    // Read now too: a process that exits later takes its figure with it.
                    memory = instance.max_memory_mb();
                    init_output = instance.output().await;
                    (invocation_start, deadline) = hand_out(instance);
                }
                (Happening::Runtime(RuntimeEvent::Response { request_id: id, payload }), None) if id == request_id => {
                    answer = Some((now, Outcome::Response(payload)));
                    deadline = deadline.max(Instant::now() + OVERHEAD_GRACE);
                }
                (Happening::Runtime(RuntimeEvent::Error { request_id: id, error }), None) if id == request_id => {
                    answer = Some((now, self.function_failed(&error)));
                    deadline = deadline.max(Instant::now() + OVERHEAD_GRACE);
                }
                (Happening::Runtime(RuntimeEvent::InitError(error)), None) => {
                    break (self.function_failed(&error), false, now);
                }
                (Happening::Runtime(RuntimeEvent::Next), Some((answered, outcome))) => {
                    timeline.overhead = Some((answered, now));
                    break (outcome, true, answered);
                }
                // Anything else the runtime says between the hand-out and the answer changes nothing.
                (Happening::Runtime(_), unchanged) => answer = unchanged,
                // Answered, but gone before asking for more: the process is not reused.
                (Happening::Exited(_) | Happening::TimedOut, Some((answered, outcome))) => {
                    break (outcome, false, answered);
                }
                (Happening::Exited(status), None) => {
                    let status = status.map_or_else(|| "unknown".to_owned(), |status| status.to_string());
                    let message = format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                    break (self.platform_failure("Runtime.ExitError", &message), false, now);
                }
                (Happening::TimedOut, None) => {
                    let limit = if initialising { INIT_TIMEOUT } else { self.config.timeout };
                    timed_out = Some(limit);
                    let message = format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        limit.as_secs_f64()
                    );
                    break (self.platform_failure("Sandbox.Timedout", &message), false, now);
                }
            }
        };
        timeline.invocation = (invocation_start, answered.max(invocation_start));
        let memory = instance.max_memory_mb().or(memory);
        let output = instance.output().await;
        Driven { outcome, keep, timeline, init_output, output, memory, timed_out }
    }

    /// The failure a runtime reported (`/error` or `/init/error`).
    fn function_failed(&self, error: &PostedError) -> Outcome {
        let body: Value = serde_json::from_slice(&error.body).unwrap_or(Value::Null);
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let error_type =
            text("errorType").or_else(|| error.error_type.clone()).unwrap_or_else(|| "Runtime.Unknown".into());
        let message = text("errorMessage").unwrap_or_default();
        let payload = if body.is_object() { error.body.clone() } else { error_document(&error_type, &message) };
        let failure = Failure::new(error.xray_cause.as_deref(), &error_type, &message, &self.working_directory());
        Outcome::Failed { payload, failure }
    }

    /// A failure the platform itself reports: a timeout, a process that exited.
    fn platform_failure(&self, error_type: &str, message: &str) -> Outcome {
        Outcome::Failed {
            payload: error_document(error_type, message),
            failure: Failure::new(None, error_type, message, &self.working_directory()),
        }
    }

    fn working_directory(&self) -> String {
        match &self.config.code {
            crate::config::Code::Executable(path) => path.parent().unwrap_or(path).display().to_string(),
            crate::config::Code::Python { directory, .. } => directory.display().to_string(),
        }
    }

    /// The platform's lines around the function's output.
    fn log_lines(&self, request_id: &str, trace: &InvocationTrace, driven: &Driven) -> Vec<String> {
        let Driven { timeline, init_output, output, memory, timed_out, .. } = driven;
        let mut log = init_output.clone();
        log.push(format!("START RequestId: {request_id} Version: $LATEST"));
        log.extend(output.iter().cloned());
        if let Some(limit) = timed_out {
            let now = baton_model::time::format_iso(timeline.invocation.1);
            log.push(format!("{now} {request_id} Task timed out after {:.2} seconds", limit.as_secs_f64()));
        }
        log.push(format!("END RequestId: {request_id}"));
        let milliseconds = |(start, end): (f64, f64)| ((end - start) * 1000.0).max(0.0);
        let duration = milliseconds(timeline.invocation);
        let init = timeline.init.map(milliseconds);
        let billed = (duration + init.unwrap_or(0.0)).ceil();
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {duration:.2} ms\tBilled Duration: {billed:.0} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.config.memory_mb,
            memory.unwrap_or(0),
        );
        if let Some(init) = init {
            report.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        log.push(report);
        if trace.active {
            log.push(format!(
                "XRAY TraceId: {}\tSegmentId: {}\tSampled: {}",
                trace.trace_id, trace.function_id, trace.sampled
            ));
        }
        log
    }
}

/// What driving an invocation gave, before it is logged and traced.
struct Driven {
    outcome: Outcome,
    /// The process may serve the next invocation.
    keep: bool,
    timeline: Timeline,
    init_output: Vec<String>,
    output: Vec<String>,
    memory: Option<u64>,
    /// The deadline that passed, when the process was killed for it.
    timed_out: Option<Duration>,
}

fn error_document(error_type: &str, message: &str) -> Bytes {
    Bytes::from(json!({"errorType": error_type, "errorMessage": message}).to_string())
}

/// A version 4 UUID, as Lambda's request ids are.
fn new_request_id() -> String {
    let bits = (fastrand::u128(..) & !(0xf000 << 64) & !(0xc << 60)) | (0x4000 << 64) | (0x8 << 60);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        for _ in 0..100 {
            let id = new_request_id();
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(groups.iter().map(|group| group.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(groups[3].starts_with(['8', '9', 'a', 'b']), "{id}");
        }
    }
}
