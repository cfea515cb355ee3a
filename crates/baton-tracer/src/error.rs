use thiserror::Error;

/// What can go wrong when configuring the tracer or recording on a subsegment.
#[derive(Debug, Error)]
pub enum TracerError {
    /// An annotation breaks X-Ray's rules (key charset and length, string length, finite numbers).
    #[error("annotation {0}")]
    Annotation(String),
    /// A metadata value could not be serialized to JSON.
    #[error("metadata {key:?} cannot be serialized: {source}")]
    Metadata {
        /// The metadata key.
        key: String,
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// The sampling rules file is invalid.
    #[error("sampling rules: {0}")]
    SamplingRules(String),
    /// A configuration value (usually an environment variable) is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// `init` was called after the tracer was already in use or initialised.
    #[error("the tracer is already initialised")]
    AlreadyInitialised,
}
