//! Baton's local Lambda runtime: a function runs as the Lambda platform runs
//! it, with Active tracing. Each function gets a process (a custom runtime
//! executable, or a Python handler under `awslambdaric`) and its own Runtime
//! API; invocations come from `baton invoke` or from the Lambda Invoke API
//! ([`invoke_api`]), and each one gives Lambda's log lines and, when
//! sampled, the platform's segments sent to the X-Ray daemon address.

mod config;
mod function;
mod instance;
pub mod invoke_api;
mod platform;
mod runtime_api;

pub use config::{Code, FILE_NAME, FunctionConfig, Functions, TracingMode};
pub use function::{Function, Invocation, Request};
pub use platform::{InvocationTrace, Sampling, Tracing};

/// What can go wrong running functions locally.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The functions file or a command's options are wrong.
    #[error("{0}")]
    Config(String),
    /// A function's process could not be started.
    #[error("{0}")]
    Start(String),
    /// A socket, pipe or thread could not be set up.
    #[error("{0}")]
    Io(String),
}
