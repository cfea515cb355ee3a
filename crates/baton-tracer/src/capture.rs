//! What `#[capture_method]` expands to calls: the guard that owns the
//! function's subsegment, and the autoref-specialization wrappers that record
//! a response only when it is `Serialize` and an error with the best message
//! its type offers (`Display`, else `Debug`, else its type name).

use std::fmt::{Debug, Display};
use std::future::Future;

use serde::Serialize;

use crate::config::config;
use crate::context::Instrumented;
use crate::entity::Subsegment;

/// The subsegment of one `#[capture_method]` call; dropping it ends the subsegment, also on unwind.
pub struct Capture {
    subsegment: Subsegment,
    method: &'static str,
    recording: bool,
    response: bool,
    error_metadata: bool,
    panicking_at_begin: bool,
}

impl Capture {
    /// Begins the subsegment `name` for the function `method` (`module::fn`), with the attribute's switches.
    pub fn begin(name: &'static str, method: &'static str, capture_response: bool, capture_error: bool) -> Capture {
        let subsegment = Subsegment::begin(name);
        let recording = subsegment.is_recording();
        let config = config();
        Capture {
            subsegment,
            method,
            recording,
            response: recording && capture_response && config.capture_response,
            error_metadata: recording && capture_error && config.capture_error,
            panicking_at_begin: std::thread::panicking(),
        }
    }

    /// Runs a sync function's body with the subsegment current; `R` is the declared return type.
    pub fn in_scope<R, F: FnOnce() -> R>(&self, body: F) -> R {
        self.subsegment.in_scope(body)
    }

    /// Makes the subsegment current during every poll of an async function's body.
    pub fn instrument<F: Future>(&self, body: F) -> Instrumented<F> {
        self.subsegment.instrument(body)
    }

    fn record_response(&self, value: &impl Serialize) {
        if !self.response {
            return;
        }
        if let Err(error) = self.subsegment.put_metadata(&format!("{} response", self.method), value) {
            tracing::debug!(%error, method = self.method, "baton-tracer: the response is not recorded");
        }
    }

    fn record_failure<E>(&self, message: impl FnOnce() -> String) {
        if !self.recording {
            return;
        }
        let message = message();
        // As in Powertools, `capture_error = false` keeps the error out of metadata, not the fault and its cause.
        if self.error_metadata {
            // A String always serializes.
            let _ = self.subsegment.put_metadata(&format!("{} error", self.method), &message);
        }
        self.subsegment.record_exception(&short_type_name(std::any::type_name::<E>()), &message);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Dropped while unwinding from a panic that began inside the function, not before it.
        if self.recording && std::thread::panicking() && !self.panicking_at_begin {
            self.subsegment.record_exception("panic", PANIC_MESSAGE);
        }
        std::mem::replace(&mut self.subsegment, Subsegment::off()).end();
    }
}

/// The exception message of a panic, the same at every level so that a parent's cause names the child's exception.
pub(crate) const PANIC_MESSAGE: &str = "the function panicked";

/// Never called: its type declares an async body's return type to inference.
pub fn declared_return<R>() -> R {
    unreachable!("declared_return is only named in dead code")
}

/// A function's response (or `Ok` value), recorded when its type is `Serialize`.
pub struct Response<'a, T>(pub &'a T);

/// Records a `Serialize` response as metadata `<module>::<fn> response`.
pub trait RecordResponse {
    /// Records the response on `capture`'s subsegment.
    fn record_response(&self, capture: &Capture);
}

impl<T: Serialize> RecordResponse for Response<'_, T> {
    fn record_response(&self, capture: &Capture) {
        // A zero-sized value such as `()` carries nothing, as Powertools skips `None` responses.
        if size_of::<T>() > 0 {
            capture.record_response(self.0);
        }
    }
}

/// Skips a response that is not `Serialize`.
pub trait SkipResponse {
    /// Records nothing.
    fn record_response(&self, capture: &Capture);
}

impl<T> SkipResponse for &Response<'_, T> {
    fn record_response(&self, _capture: &Capture) {}
}

/// A function's `Err` value, recorded as a fault and its cause.
pub struct Failure<'a, E>(pub &'a E);

/// Records an error with its `Display` message.
pub trait RecordDisplayFailure {
    /// Records the error on `capture`'s subsegment.
    fn record_failure(&self, capture: &Capture);
}

impl<E: Display> RecordDisplayFailure for &&Failure<'_, E> {
    fn record_failure(&self, capture: &Capture) {
        capture.record_failure::<E>(|| self.0.to_string());
    }
}

/// Records an error that is not `Display` with its `Debug` text.
pub trait RecordDebugFailure {
    /// Records the error on `capture`'s subsegment.
    fn record_failure(&self, capture: &Capture);
}

impl<E: Debug> RecordDebugFailure for &Failure<'_, E> {
    fn record_failure(&self, capture: &Capture) {
        capture.record_failure::<E>(|| format!("{:?}", self.0));
    }
}

/// Records an error that is neither `Display` nor `Debug` with its type name.
pub trait RecordOtherFailure {
    /// Records the error on `capture`'s subsegment.
    fn record_failure(&self, capture: &Capture);
}

impl<E> RecordOtherFailure for Failure<'_, E> {
    fn record_failure(&self, capture: &Capture) {
        capture.record_failure::<E>(|| short_type_name(std::any::type_name::<E>()));
    }
}

/// A type name from [`std::any::type_name`] without module paths, as X-Ray shows exception types:
/// `alloc::boxed::Box<dyn core::error::Error>` becomes `Box<dyn Error>`.
pub fn short_type_name(type_name: &str) -> String {
    let is_segment = |c: char| c.is_alphanumeric() || matches!(c, '_' | '{' | '}');
    let mut short = String::with_capacity(type_name.len());
    let mut rest = type_name;
    while let Some((before, after)) = rest.split_once("::") {
        short.push_str(before);
        let segment_start = short.trim_end_matches(is_segment).len();
        if segment_start == short.len() {
            // `::` after a qualified path such as `<T as Trait>::Output`: not a module to remove.
            short.push_str("::");
        } else {
            short.truncate(segment_start);
        }
        rest = after;
    }
    short.push_str(rest);
    short
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_type_names_drop_module_paths() {
        for (full, short) in [
            ("OrderError", "OrderError"),
            ("orders::errors::OrderError", "OrderError"),
            (
                "alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>",
                "Box<dyn Error + Send + Sync>",
            ),
            ("core::result::Result<alloc::string::String, std::io::error::Error>", "Result<String, Error>"),
            ("(my_crate::A, [my_crate::b::B; 3], &str)", "(A, [B; 3], &str)"),
            ("<my_crate::S as my_crate::Trait>::Output", "<S as Trait>::Output"),
            ("my_crate::run::{{closure}}", "{{closure}}"),
            ("fn(u32) -> core::option::Option<u32>", "fn(u32) -> Option<u32>"),
            ("()", "()"),
        ] {
            assert_eq!(short_type_name(full), short, "{full}");
        }
    }

    #[test]
    fn short_type_names_of_real_types() {
        assert_eq!(short_type_name(std::any::type_name::<std::io::Error>()), "Error");
        assert_eq!(
            short_type_name(std::any::type_name::<Box<dyn std::error::Error + Send>>()),
            "Box<dyn Error + Send>"
        );
        assert_eq!(short_type_name(std::any::type_name::<Vec<std::num::ParseIntError>>()), "Vec<ParseIntError>");
    }
}
