//! The log lines of one function invocation.

use crate::TraceId;

/// One function invocation's log lines, kept with its trace so that the
/// console shows the logs of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationLog {
    /// The invocation's trace.
    pub trace_id: TraceId,
    /// Lambda's request id.
    pub request_id: String,
    /// The function's name.
    pub function: String,
    /// When the invocation started, epoch seconds.
    pub time: f64,
    /// The lines, as printed, without line breaks.
    pub lines: Vec<String>,
}
