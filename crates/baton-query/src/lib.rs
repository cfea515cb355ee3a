//! What Baton derives from the documents of a trace, without I/O: the trace
//! summary that `GetTraceSummaries` returns and that search runs on.
//!
//! ```
//! use baton_model::Document;
//! use baton_query::summarize;
//!
//! let doc = Document::parse(br#"{"name":"api","id":"70de5b6f19ff9a0a",
//!     "trace_id":"1-6744a1b2-0123456789abcdef01234567","origin":"AWS::EC2::Instance",
//!     "start_time":10.0,"end_time":10.5,"http":{"response":{"status":502}},"fault":true}"#).unwrap();
//! let summary = summarize(&[doc.info]);
//! assert!(summary.has_fault);
//! assert_eq!(summary.response_time, Some(0.5));
//! assert_eq!(summary.entry_point.unwrap().name, "api");
//! ```

pub mod filter;
pub mod graph;
pub mod index;
mod rootcause;
mod search;
mod summary;

pub use rootcause::{RootCauseEntity, RootCauseService, TraceRootCause};
pub use search::Matcher;
pub use summary::{
    AnnotationSummary, AnnotationValueSummary, CallOutcome, ServiceId, TraceSummary, UserSummary, Visit, summarize,
    summarize_texts,
};
