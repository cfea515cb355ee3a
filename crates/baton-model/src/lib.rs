//! The data model shared by every part of Baton: trace and segment ids, the
//! `X-Amzn-Trace-Id` and W3C `traceparent` headers, X-Ray segment documents, the logs of
//! function invocations, and what a sampling rule matches.
//!
//! A document arrives as JSON text. [`Document::parse`] checks it against the
//! limits X-Ray documents (size, id shapes, times, annotation types) and keeps
//! the original text untouched next to the few typed fields Baton indexes, so
//! a document read back is byte for byte the one that was sent.
//!
//! ```
//! use baton_model::{Document, TraceHeader};
//!
//! let doc = Document::parse(br#"{"name":"api","id":"70de5b6f19ff9a0a",
//!     "trace_id":"1-6744a1b2-0123456789abcdef01234567",
//!     "start_time":1732536000.0,"end_time":1732536000.25}"#).unwrap();
//! assert_eq!(doc.info.name, "api");
//!
//! let header: TraceHeader = "Root=1-6744a1b2-0123456789abcdef01234567;Sampled=1".parse().unwrap();
//! assert_eq!(header.root.unwrap(), doc.info.trace_id);
//! ```
//!
//! This crate does no I/O.

mod assemble;
mod document;
mod header;
mod id;
mod log;
pub mod sampling;
pub mod time;

pub use assemble::{AssembledSegment, AssembledTrace, assemble};
pub use document::{
    AnnotationValue, Call, CallNamespace, DAEMON_HEADER, Document, DocumentKind, Entity, Exception, Facts, HttpFacts,
    MAX_DOCUMENT_BYTES, MAX_SEGMENT_NAME, MAX_SUBSEGMENT_NAME, Namespace, SegmentInfo, ValidationError,
    ValidationErrorKind, annotation_key_is_valid, annotation_problem,
};
pub use header::{HeaderError, Sampled, TraceHeader, TraceParent, TraceParentError};
pub use id::{IdError, SegmentId, TraceId};
pub use log::InvocationLog;
