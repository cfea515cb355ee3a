//! The storage contract.

use baton_model::sampling::RulePatterns;
use baton_model::{Document, InvocationLog, TraceId};
use std::collections::BTreeMap;

use baton_query::graph::{Element, Stats};
use baton_query::{Matcher, TraceSummary};

use crate::Error;

/// The most documents returned for one trace; a larger trace is returned
/// truncated, with [`StoredTrace::limit_exceeded`] set.
pub const MAX_TRACE_DOCUMENTS: usize = 10_000;

/// A trace store. Every backend passes the same conformance suite
/// (`conformance.rs`).
///
/// Calls block; async callers run them on a blocking thread. A store is
/// shared between threads: one writer thread calls [`Store::write`] while
/// any number of readers call the query methods.
pub trait Store: Send + Sync + 'static {
    /// Writes a batch of validated documents.
    ///
    /// - MUST be atomic: on `Err`, none of the batch is visible.
    /// - MUST be as durable as `durability` asks when it returns `Ok`; with
    ///   either level, every document survives a crash (`kill -9`) of the
    ///   process.
    /// - MUST keep one document per `(trace_id, id)`: a later document
    ///   replaces an earlier one, except that an in-progress document never
    ///   replaces a complete one, in whatever order they arrive (also within
    ///   one batch).
    /// - MUST keep each trace's summary equal to [`baton_query::summarize`]
    ///   of the trace's current documents when it returns.
    /// - MAY be called with documents of any number of traces, in any order.
    fn write(&self, batch: &[Document], durability: Durability) -> Result<(), Error>;

    /// The stored documents of each requested trace.
    ///
    /// - MUST return one [`StoredTrace`] per id that has documents, in the
    ///   order of `ids`, each id at most once; unknown ids are skipped, not an
    ///   error.
    /// - MUST return each document's text exactly as it was written, at most
    ///   [`MAX_TRACE_DOCUMENTS`] of them per trace; the order of documents
    ///   within a trace, and which are kept when it is truncated, MAY be any.
    /// - The caller owns the result.
    fn traces(&self, ids: &[TraceId]) -> Result<Vec<StoredTrace>, Error>;

    /// One page of trace summaries in a time range, newest start first,
    /// those `query.filter` matches.
    ///
    /// - MUST order by `(start_time, id)` descending and return at most
    ///   `query.limit` summaries, all strictly after `query.after` in that
    ///   order. `query.limit` is at least 1.
    /// - MUST set [`SummaryPage::next`] when more summaries may follow, so
    ///   that following `next` pages visits every matching trace once, as
    ///   long as the traces' start times do not change meanwhile.
    /// - MAY read only the traces meeting the filter's
    ///   [`Matcher::plan`](baton_query::Matcher::plan), a condition every
    ///   match meets; the pages MUST be those evaluating the filter on every
    ///   summary in the range would give.
    /// - MAY, with a filter, stop after examining a bounded number of
    ///   summaries with fewer than `query.limit` (even none) and `next` set;
    ///   [`SummaryPage::scanned`] counts the summaries examined.
    /// - An empty range gives an empty page, not an error.
    fn summaries(&self, query: &SummaryQuery) -> Result<SummaryPage, Error>;

    /// The service graph's statistics of the traces starting in
    /// `[start, end)`, one [`GraphPeriod`] per `period` seconds from `start`
    /// (or one for the whole range).
    ///
    /// - MUST give, per element, the sum of [`baton_query::graph::contributions`]
    ///   of the current summaries of the traces starting in each period, each
    ///   trace counted once, whatever the arrival order of its documents.
    /// - MAY widen the range and the periods to whole minutes.
    /// - MUST leave out elements whose statistics sum to nothing.
    fn graph(&self, range: (f64, f64), period: Option<u64>) -> Result<Vec<GraphPeriod>, Error>;

    /// Removes, in bulk, the traces first received before `cutoff` (epoch
    /// seconds).
    ///
    /// - MAY keep data up to one retention unit (a day for the embedded store)
    ///   past the cutoff; MUST NOT remove data received after it.
    /// - A read running while data is removed MAY fail; it MUST NOT return
    ///   part of a removed trace as if it were whole.
    fn remove_before(&self, cutoff: f64) -> Result<Removed, Error>;

    /// Creates or replaces the group named `group.name`.
    ///
    /// - MUST be durable (survive a power loss) when it returns `Ok`.
    /// - Retention MUST NOT remove groups.
    fn put_group(&self, group: &Group) -> Result<(), Error>;

    /// Every group, ordered by name.
    fn groups(&self) -> Result<Vec<Group>, Error>;

    /// Removes the group named `name`; returns whether it existed.
    fn remove_group(&self, name: &str) -> Result<bool, Error>;

    /// Creates or replaces the sampling rule named `rule.name`.
    ///
    /// - MUST be durable (survive a power loss) when it returns `Ok`.
    /// - Retention MUST NOT remove rules.
    /// - MUST keep the `created_at` of the rule it replaces.
    /// - The Default rule ([`SamplingRule::default_rule`]) MUST exist on a
    ///   fresh store; a put of it MUST change only its `fixed_rate`,
    ///   `reservoir_size` and `modified_at`, as X-Ray allows.
    fn put_sampling_rule(&self, rule: &SamplingRule) -> Result<(), Error>;

    /// Every sampling rule, the Default rule included, ordered by priority
    /// then name: the order in which clients try them.
    fn sampling_rules(&self) -> Result<Vec<SamplingRule>, Error>;

    /// Removes the sampling rule named `name`; returns whether it existed.
    /// MUST NOT remove the Default rule (returns `false`).
    fn remove_sampling_rule(&self, name: &str) -> Result<bool, Error>;

    /// Keeps the log lines of invocations, each under its trace.
    ///
    /// - MUST survive a crash of the process when it returns `Ok`.
    /// - [`Store::remove_before`] MUST remove the logs whose `time` is before
    ///   the cutoff, with the same slack as traces.
    fn put_logs(&self, logs: &[InvocationLog]) -> Result<(), Error>;

    /// The logs of the invocations of `trace`, oldest `time` first.
    fn logs(&self, trace: TraceId) -> Result<Vec<InvocationLog>, Error>;
}

/// A named filter expression, as X-Ray's groups are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Unique, 1 to 32 characters.
    pub name: String,
    /// Unique; names the group in `group.arn` filters.
    pub arn: String,
    /// The filter expression selecting the group's traces; none selects all.
    pub filter_expression: Option<String>,
    /// X-Ray's `InsightsConfiguration.InsightsEnabled`, kept and returned.
    pub insights_enabled: bool,
    /// X-Ray's `InsightsConfiguration.NotificationsEnabled`, kept and returned.
    pub notifications_enabled: bool,
}

/// An X-Ray centralized sampling rule: which requests it applies to, and
/// how many of them clients record.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRule {
    /// Unique, 1 to 32 characters.
    pub name: String,
    /// Names the rule as [`SamplingRule::arn_of`] its name.
    pub arn: String,
    /// Clients try rules from the lowest priority up; 1 to 9999, the
    /// Default rule's 10000.
    pub priority: u32,
    /// The fraction of requests recorded beyond the reservoir, 0 to 1.
    pub fixed_rate: f64,
    /// Requests recorded each second before `fixed_rate` applies, shared by
    /// all the clients applying the rule.
    pub reservoir_size: u32,
    /// What requests the rule applies to.
    pub patterns: RulePatterns,
    /// The ARN of the resources the rule applies to; `*` for any.
    pub resource_arn: String,
    /// The rule format, 1.
    pub version: u32,
    /// Segment attributes the rule requires, at most 5.
    pub attributes: BTreeMap<String, String>,
    /// When it was created, epoch seconds.
    pub created_at: f64,
    /// When it was last changed, epoch seconds.
    pub modified_at: f64,
}

impl SamplingRule {
    /// The name of the rule that always exists and matches every request.
    pub const DEFAULT_NAME: &str = "Default";

    /// X-Ray's Default rule as every account starts with it: the first
    /// request each second, then 5 % of the others. Created and modified at
    /// epoch 0, as X-Ray answers for it.
    pub fn default_rule() -> SamplingRule {
        SamplingRule {
            name: SamplingRule::DEFAULT_NAME.to_owned(),
            arn: SamplingRule::arn_of(SamplingRule::DEFAULT_NAME),
            priority: 10_000,
            fixed_rate: 0.05,
            reservoir_size: 1,
            patterns: RulePatterns::any(),
            resource_arn: "*".to_owned(),
            version: 1,
            attributes: BTreeMap::new(),
            created_at: 0.0,
            modified_at: 0.0,
        }
    }

    /// The ARN of the rule named `name`, in X-Ray's form under a local
    /// region and account. Unlike a group's, it is the same for a rule
    /// made again under the same name, as in X-Ray.
    pub fn arn_of(name: &str) -> String {
        format!("arn:aws:xray:local:000000000000:sampling-rule/{name}")
    }
}

/// How far a write must have gone when [`Store::write`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On stable storage: survives a power loss. For documents whose sender
    /// is told they were taken (`PutTraceSegments`).
    Synced,
    /// Handed to the operating system: survives a crash of the process, and
    /// reaches stable storage within a second. For UDP, whose senders are
    /// told nothing.
    Buffered,
}

/// The documents of one trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrace {
    /// The trace.
    pub id: TraceId,
    /// Each document's JSON text, as written.
    pub documents: Vec<String>,
    /// The trace holds more than [`MAX_TRACE_DOCUMENTS`] documents.
    pub limit_exceeded: bool,
}

/// Which time a summary query's range applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeRange {
    /// The epoch second written in the trace id.
    TraceId,
    /// The trace's start time (its earliest document).
    #[default]
    Event,
}

/// A request for one page of trace summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryQuery {
    /// Range start, epoch seconds, inclusive.
    pub start: f64,
    /// Range end, epoch seconds, inclusive.
    pub end: f64,
    /// Which time the range applies to.
    pub time_range: TimeRange,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// The page size.
    pub limit: usize,
    /// Only summaries this filter matches.
    pub filter: Option<Matcher>,
}

/// A position in the `(start_time, id)` descending order of summaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    /// The start time of the last summary returned.
    pub start_time: f64,
    /// The id of the last summary returned.
    pub id: TraceId,
}

/// One page of summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryPage {
    /// The summaries, newest start first.
    pub summaries: Vec<TraceSummary>,
    /// How many stored summaries were read to answer.
    pub scanned: u64,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
}

/// The service graph's statistics over one period.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphPeriod {
    /// Epoch seconds, inclusive.
    pub start: f64,
    /// Epoch seconds, exclusive.
    pub end: f64,
    /// The statistics of each node and edge.
    pub elements: BTreeMap<Element, Stats>,
}

/// What [`Store::remove_before`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Partitions (days, for the embedded store) dropped.
    pub partitions: u64,
}
