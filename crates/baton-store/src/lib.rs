//! Where traces live: the [`Store`] trait every backend implements, the
//! batching [`Writer`] that feeds it, the embedded [`SqliteStore`] and the
//! [`ClickHouseStore`] for many Baton processes on one ClickHouse.
//!
//! ```
//! use baton_model::Document;
//! use baton_store::{Durability, SqliteStore, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path()).unwrap();
//! let doc = Document::parse(br#"{"name":"api","id":"70de5b6f19ff9a0a",
//!     "trace_id":"1-6744a1b2-0123456789abcdef01234567","start_time":1.0,"end_time":2.0}"#).unwrap();
//! store.write(&[doc.clone()], Durability::Synced).unwrap();
//! let traces = store.traces(&[doc.info.trace_id]).unwrap();
//! assert_eq!(traces[0].documents, vec![doc.json.to_string()]);
//! ```

mod clickhouse;
mod error;
mod rollup;
mod sqlite;
mod store;
mod writer;

#[cfg(test)]
mod conformance;

pub use clickhouse::{ClickHouseConfig, ClickHouseOptions, ClickHouseStore};
pub use error::Error;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::{
    Cursor, Durability, GraphPeriod, Group, MAX_TRACE_DOCUMENTS, Removed, SamplingRule, Store, StoredTrace,
    SummaryPage, SummaryQuery, TimeRange,
};
pub use writer::{Ack, BATCH_LATENCY_BUCKETS, Submit, Writer, WriterConfig, WriterStats};
