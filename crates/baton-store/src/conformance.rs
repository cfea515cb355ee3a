//! The conformance suite every backend runs.
//!
//! One set of checks written against the [`Store`] trait only, in the style of
//! jaeger's storage integration tests: a backend implements [`Harness`] (a
//! fresh, empty store that can be reopened and written into "on" another day)
//! and expands [`suite!`] with an expression making one, which gives one
//! `#[test]` per check:
//!
//! ```ignore
//! crate::conformance::suite!(MyHarness::boxed());
//! ```
//!
//! `suite!(@checks make; check, ...)` runs a chosen subset (e.g. again with
//! other backend options). A backend that needs a server gives
//! `Option<Box<dyn Harness>>`: `None` skips the checks.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use baton_model::sampling::RulePatterns;
use baton_model::{Document, InvocationLog, SegmentId, TraceId, time};
use baton_query::{TraceSummary, summarize};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use baton_query::graph::{Element, Stats, contributions};

use crate::{
    Cursor, Durability, Error, GraphPeriod, Group, MAX_TRACE_DOCUMENTS, Removed, SamplingRule, Store, StoredTrace,
    SummaryPage, SummaryQuery, TimeRange, Writer, WriterConfig,
};

const DAY: f64 = 86_400.0;

/// What a backend gives the suite: one fresh, empty store per check.
pub(crate) trait Harness {
    /// The store under test.
    fn store(&self) -> &dyn Store;
    /// The same store, to hand to a [`Writer`]; clones must be dropped
    /// before [`Harness::reopen`].
    fn shared(&self) -> Arc<dyn Store>;
    /// Drops the store and opens it again on the same data, caches cold.
    fn reopen(&mut self);
    /// Writes `batch` ([`Durability::Synced`]) as if it was received `days`
    /// days from now (negative: in the past), for retention checks.
    fn write_on_day(&self, days: i64, batch: &[Document]) -> Result<(), Error>;
}

/// A clock that tests move by whole days.
pub(crate) type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The harness the backends share: a store opened with a [`Clock`] that
/// [`Harness::write_on_day`] moves, reopened by the same `open`.
pub(crate) struct ClockHarness<S: Store> {
    // Dropped before `home`.
    store: Option<Arc<S>>,
    day_offset: Arc<std::sync::atomic::AtomicI64>,
    open: Box<dyn Fn(Clock) -> S>,
    /// What the store lives in (a directory, a database), dropped last.
    _home: Box<dyn std::any::Any>,
}

impl<S: Store> ClockHarness<S> {
    /// A harness whose store `open` opens with a clock, in `home`.
    pub(crate) fn boxed(home: impl std::any::Any, open: impl Fn(Clock) -> S + 'static) -> Box<dyn Harness> {
        let mut harness = ClockHarness {
            store: None,
            day_offset: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            open: Box::new(open),
            _home: Box::new(home),
        };
        harness.store = Some(harness.open());
        Box::new(harness)
    }

    fn open(&self) -> Arc<S> {
        let offset = Arc::clone(&self.day_offset);
        Arc::new((self.open)(Arc::new(move || time::now() + offset.load(Ordering::SeqCst) as f64 * DAY)))
    }
}

impl<S: Store> Harness for ClockHarness<S> {
    fn store(&self) -> &dyn Store {
        &**self.store.as_ref().expect("open")
    }

    fn shared(&self) -> Arc<dyn Store> {
        self.store.clone().expect("open")
    }

    fn reopen(&mut self) {
        let store = self.store.take().expect("open");
        assert_eq!(Arc::strong_count(&store), 1, "a check still holds the store");
        drop(store);
        self.store = Some(self.open());
    }

    fn write_on_day(&self, days: i64, batch: &[Document]) -> Result<(), Error> {
        self.day_offset.store(days, Ordering::SeqCst);
        let result = self.store().write(batch, Durability::Synced);
        self.day_offset.store(0, Ordering::SeqCst);
        result
    }
}

/// What a suite's `$make` gives: a harness, or none when the backend is
/// not there to test (the maker prints why, and the check passes).
pub(crate) trait MaybeHarness {
    fn harness(self) -> Option<Box<dyn Harness>>;
}

impl MaybeHarness for Box<dyn Harness> {
    fn harness(self) -> Option<Box<dyn Harness>> {
        Some(self)
    }
}

impl MaybeHarness for Option<Box<dyn Harness>> {
    fn harness(self) -> Option<Box<dyn Harness>> {
        self
    }
}

/// One `#[test]` per check, each on a harness made by `$make` (a
/// `Box<dyn Harness>`, or an `Option` of one to skip when it is `None`).
macro_rules! suite {
    ($make:expr) => {
        $crate::conformance::suite!(@checks $make;
            documents_read_back_exactly,
            an_empty_store_answers_empty,
            one_document_per_id,
            summaries_follow_every_write,
            summaries_page_newest_first,
            summaries_select_by_event_or_trace_id_time,
            filtered_summaries_page_through_every_match_once,
            filtered_summaries_equal_the_filter_on_every_summary,
            graph_sums_the_contributions_of_current_summaries,
            writes_are_durable,
            readers_see_whole_batches,
            remove_before_drops_old_days_only,
            groups_are_kept_replaced_and_removed,
            sampling_rules_are_kept_replaced_and_removed,
            logs_are_kept_by_trace_and_expire,
            oversized_traces_are_truncated,
            traces_are_found_whatever_their_epoch,
            traces_ahead_of_the_clock_are_found,
            arrival_order_does_not_matter,
            writer_acks_once_documents_are_readable,
            writer_refuses_when_the_queue_is_full,
            writer_stop_writes_everything_queued,
            writer_reports_failed_writes,
            writer_retries_documents_nobody_awaits,
            writer_runs_retention,
        );
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let Some(mut harness) = $crate::conformance::MaybeHarness::harness($make) else { return };
                $crate::conformance::$check(&mut *harness);
            }
        )*
    };
}
pub(crate) use suite;

// === documents and the expected state ===

static NEXT_TRACE: AtomicU64 = AtomicU64::new(1);

/// A trace id never used before in this process, with `epoch` in it.
fn trace_id(epoch: u32) -> TraceId {
    let serial = NEXT_TRACE.fetch_add(1, Ordering::Relaxed);
    // Spread the serial over the random part so ids of one epoch do not sort
    // in creation order.
    let random = u64::from(std::process::id()) << 40 ^ serial.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("1-{epoch:08x}-{:08x}{random:016x}", serial as u32).parse().expect("valid trace id")
}

fn epoch_of(seconds: f64) -> u32 {
    seconds as u32
}

#[track_caller]
fn parse(json: &str) -> Document {
    Document::parse(json.as_bytes()).unwrap_or_else(|error| panic!("test document {json} is invalid: {error}"))
}

/// A small complete segment.
fn segment(trace: TraceId, id: u64, start: f64) -> Document {
    parse(&format!(
        r#"{{"name":"svc","id":"{id:016x}","trace_id":"{trace}","start_time":{start},"end_time":{}}}"#,
        start + 0.25
    ))
}

/// The documents the store should hold, by the replacement rule.
#[derive(Default)]
struct Model {
    traces: BTreeMap<TraceId, BTreeMap<SegmentId, Document>>,
}

impl Model {
    fn apply(&mut self, batch: &[Document]) {
        for document in batch {
            let documents = self.traces.entry(document.info.trace_id).or_default();
            let keep_old =
                documents.get(&document.info.id).is_some_and(|old| document.info.in_progress && !old.info.in_progress);
            if !keep_old {
                documents.insert(document.info.id, document.clone());
            }
        }
    }

    fn remove(&mut self, trace: TraceId) {
        self.traces.remove(&trace);
    }

    fn ids(&self) -> Vec<TraceId> {
        self.traces.keys().copied().collect()
    }

    fn documents(&self, trace: TraceId) -> Vec<String> {
        sorted(self.traces[&trace].values().map(|document| document.json.to_string()))
    }

    fn summary(&self, trace: TraceId) -> TraceSummary {
        let infos: Vec<_> = self.traces[&trace].values().map(|document| document.info.clone()).collect();
        summarize(&infos)
    }
}

/// Writes through `store` and records the batch in `model`.
#[track_caller]
fn write(store: &dyn Store, model: &mut Model, batch: &[Document]) {
    store.write(batch, Durability::Synced).unwrap_or_else(|error| panic!("write failed: {error}"));
    model.apply(batch);
}

fn sorted(texts: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut texts: Vec<String> = texts.into_iter().map(Into::into).collect();
    texts.sort();
    texts
}

// === reading back ===

fn query(time_range: TimeRange, start: f64, end: f64, limit: usize) -> SummaryQuery {
    SummaryQuery { start, end, time_range, after: None, limit, filter: None }
}

/// Every page of `query`, checking each page's shape on the way.
#[track_caller]
fn collect_pages(store: &dyn Store, mut query: SummaryQuery) -> (Vec<TraceSummary>, usize) {
    let mut all: Vec<TraceSummary> = Vec::new();
    for pages in 1..=100_000 {
        let SummaryPage { summaries, scanned, next } =
            store.summaries(&query).unwrap_or_else(|error| panic!("summaries({query:?}) failed: {error}"));
        assert!(summaries.len() <= query.limit, "{} summaries for limit {}", summaries.len(), query.limit);
        assert!(scanned >= summaries.len() as u64, "scanned {scanned} < returned {}", summaries.len());
        let mut previous = query.after.map(|cursor| (cursor.start_time, cursor.id));
        for summary in &summaries {
            if let Some(previous) = previous {
                assert!(
                    descending(previous, (summary.start_time, summary.id)),
                    "{:?} does not come strictly after {previous:?} in (start_time, id) descending order",
                    (summary.start_time, summary.id)
                );
            }
            previous = Some((summary.start_time, summary.id));
        }
        all.extend(summaries.iter().cloned());
        match next {
            None => return (all, pages),
            Some(cursor) => {
                let position = (cursor.start_time, cursor.id);
                match summaries.last() {
                    // A filtered page may end after rows examined but not returned.
                    Some(last) if query.filter.is_some() => assert!(
                        !descending(position, (last.start_time, last.id)),
                        "next {position:?} comes before the last summary returned"
                    ),
                    Some(last) => assert_eq!(
                        cursor,
                        Cursor { start_time: last.start_time, id: last.id },
                        "next is the last summary returned"
                    ),
                    None => assert!(query.filter.is_some(), "next is set on an empty unfiltered page"),
                }
                assert!(
                    query.after.is_none_or(|after| descending((after.start_time, after.id), position)),
                    "paging does not progress"
                );
                query.after = Some(cursor);
            }
        }
    }
    panic!("paging did not end");
}

/// Whether `later` comes strictly after `earlier` in `(start_time, id)`
/// descending order.
fn descending(earlier: (f64, TraceId), later: (f64, TraceId)) -> bool {
    later.0.total_cmp(&earlier.0).then(later.1.cmp(&earlier.1)).is_lt()
}

/// Every stored summary, by trace id, checking there is one per trace.
#[track_caller]
fn all_summaries(store: &dyn Store) -> BTreeMap<TraceId, TraceSummary> {
    let (summaries, _) = collect_pages(store, query(TimeRange::TraceId, 0.0, f64::from(u32::MAX), 500));
    let count = summaries.len();
    let by_id: BTreeMap<TraceId, TraceSummary> = summaries.into_iter().map(|summary| (summary.id, summary)).collect();
    assert_eq!(by_id.len(), count, "some trace has more than one summary");
    by_id
}

/// The store holds exactly the model: every trace's documents, and one
/// summary per trace equal to `summarize` of them.
#[track_caller]
fn assert_matches(store: &dyn Store, model: &Model, when: &str) {
    let ids = model.ids();
    let stored = store.traces(&ids).unwrap_or_else(|error| panic!("{when}: traces failed: {error}"));
    assert_eq!(
        stored.iter().map(|trace| trace.id).collect::<Vec<_>>(),
        ids,
        "{when}: traces() finds every trace, in order"
    );
    for trace in &stored {
        assert_eq!(sorted(trace.documents.clone()), model.documents(trace.id), "{when}: documents of {}", trace.id);
        assert!(!trace.limit_exceeded, "{when}: limit_exceeded on {}", trace.id);
    }
    let summaries = all_summaries(store);
    assert_eq!(summaries.keys().copied().collect::<Vec<_>>(), ids, "{when}: one summary per stored trace");
    for id in ids {
        assert_eq!(summaries[&id], model.summary(id), "{when}: summary of {id} is summarize() of its documents");
    }
}

// === the checks ===

/// Documents come back byte for byte, per trace in the order asked, unknown
/// ids skipped, repeated ids once.
pub(crate) fn documents_read_back_exactly(harness: &mut dyn Harness) {
    let now = time::now();
    let (first, second, unknown) = (trace_id(epoch_of(now)), trace_id(epoch_of(now)), trace_id(epoch_of(now)));
    let odd = [
        // Whitespace, key order, escapes, non-ASCII text and extreme numbers
        // must all survive: the store keeps text, not a re-encoding.
        format!(
            "{{ \"trace_id\" : \"{first}\",\n\t\"id\":\"00000000000000A1\", \"name\" :\"caf\\u00e9 \u{1F680}\",\
             \"start_time\": {now:e}, \"end_time\":{},\"annotations\":{{\"big\":1e300,\"tiny\":5e-324,\
             \"n\":-0.0,\"s\":\"\\\"quoted\\\" \\/ slash\"}},\"metadata\":{{\"x\":[1,2,{{}}]}},\"unknown_field\":null }}",
            now + 1.0
        ),
        format!(
            r#"{{"name":"child","id":"00000000000000a2","trace_id":"{first}","parent_id":"00000000000000a1","start_time":{},"end_time":{},"subsegments":[{{"name":"sql","id":"00000000000000a3","start_time":{now},"end_time":{now}}}]}}"#,
            now + 0.1,
            now + 0.2
        ),
        format!(
            r#"{{"name":"other","id":"00000000000000b1","trace_id":"{second}","start_time":{now},"in_progress":true}}"#
        ),
    ];
    let batch: Vec<Document> = odd.iter().map(|json| parse(json)).collect();
    let mut model = Model::default();
    write(harness.store(), &mut model, &batch);

    for round in ["written", "reopened"] {
        let store = harness.store();
        let found = store.traces(&[second, unknown, first, second, first]).expect("traces");
        let ids: Vec<TraceId> = found.iter().map(|trace| trace.id).collect();
        assert_eq!(ids, vec![second, first], "{round}: in the order asked, unknown skipped, each once");
        assert_eq!(sorted(found[0].documents.clone()), sorted([odd[2].clone()]), "{round}");
        assert_eq!(sorted(found[1].documents.clone()), sorted([odd[0].clone(), odd[1].clone()]), "{round}");
        assert!(store.traces(&[unknown]).expect("traces").is_empty(), "{round}: an unknown id is not an error");
        assert!(store.traces(&[]).expect("traces").is_empty(), "{round}");
        assert_matches(store, &model, round);
        harness.reopen();
    }
}

/// A store with nothing in it gives empty answers, not errors.
pub(crate) fn an_empty_store_answers_empty(harness: &mut dyn Harness) {
    let now = time::now();
    for round in ["fresh", "reopened"] {
        let store = harness.store();
        for time_range in [TimeRange::Event, TimeRange::TraceId] {
            for (start, end) in [(0.0, f64::from(u32::MAX)), (now - DAY, now), (now, now - DAY)] {
                let page = store.summaries(&query(time_range, start, end, 10)).expect("summaries");
                assert!(page.summaries.is_empty() && page.next.is_none(), "{round}: {page:?}");
            }
        }
        assert!(store.traces(&[trace_id(epoch_of(now))]).expect("traces").is_empty(), "{round}");
        assert_eq!(store.remove_before(now).expect("remove_before"), Removed::default(), "{round}");
        harness.reopen();
    }
}

/// One document per `(trace_id, id)`: later replaces earlier, but an
/// in-progress document never replaces a complete one, across batches and
/// within one, with warm and with cold caches.
pub(crate) fn one_document_per_id(harness: &mut dyn Harness) {
    let now = time::now();
    let version = |trace: TraceId, label: &str| -> Document {
        let (start, id) = (now - 30.0, "00000000000000d0");
        let json = match label.as_bytes()[0] {
            b'C' => format!(
                r#"{{"name":"api","id":"{id}","trace_id":"{trace}","start_time":{start},"end_time":{},"annotations":{{"v":"{label}"}}}}"#,
                start + 1.0 + f64::from(label.as_bytes()[1] - b'0')
            ),
            _ => format!(
                r#"{{"name":"api","id":"{id}","trace_id":"{trace}","start_time":{start},"in_progress":true,"annotations":{{"v":"{label}"}}}}"#
            ),
        };
        parse(&json)
    };
    // Each scenario: batches of versions of one document (C: complete,
    // P: in progress), the label expected to remain, and whether to reopen
    // (a cold cache) between its batches.
    let scenarios: [(&[&[&str]], &str, bool); 14] = [
        (&[&["C1"], &["C2"]], "C2", false),
        (&[&["P1"], &["C1"]], "C1", false),
        (&[&["C1"], &["P1"]], "C1", false),
        (&[&["P1"], &["P2"]], "P2", false),
        (&[&["P1", "C1"]], "C1", false),
        (&[&["C1", "P1"]], "C1", false),
        (&[&["C1", "C2"]], "C2", false),
        (&[&["P1", "P2"]], "P2", false),
        (&[&["C1"], &["P1", "C2"]], "C2", false),
        (&[&["P1"], &["C1"], &["P2"]], "C1", false),
        (&[&["C1", "P1", "C2", "P2"]], "C2", false),
        (&[&["C1"], &["P1"]], "C1", true),
        (&[&["P1"], &["C1"]], "C1", true),
        (&[&["C1"], &["C2", "P1"]], "C2", true),
    ];
    let mut model = Model::default();
    for reopening in [false, true] {
        let traces: Vec<TraceId> = scenarios.iter().map(|_| trace_id(epoch_of(now))).collect();
        // Every trace also holds a second document that is never replaced.
        let others: Vec<Document> = traces.iter().map(|trace| segment(*trace, 0xe0, now - 40.0)).collect();
        write(harness.store(), &mut model, &others);
        for step in 0..3 {
            let batch: Vec<Document> = scenarios
                .iter()
                .zip(&traces)
                .filter(|((_, _, reopen), _)| *reopen == reopening)
                .filter_map(|((batches, _, _), trace)| batches.get(step).map(|labels| (labels, trace)))
                .flat_map(|(labels, trace)| labels.iter().map(|label| version(*trace, label)))
                .collect();
            if !batch.is_empty() {
                write(harness.store(), &mut model, &batch);
                assert_matches(harness.store(), &model, &format!("after step {step}"));
            }
            if reopening {
                harness.reopen();
            }
        }
        for ((_, expected, reopen), trace) in scenarios.iter().zip(&traces) {
            if *reopen == reopening {
                let kept = &model.traces[trace][&"00000000000000d0".parse().expect("segment id")];
                assert!(
                    kept.json.contains(&format!(r#""v":"{expected}""#)),
                    "the model agrees with the scenario table"
                );
            }
        }
    }
    assert_matches(harness.store(), &model, "at the end");
}

/// A trace whose documents arrive over many batches, with reopens between
/// them: after every write, its summary is `summarize` of its documents.
pub(crate) fn summaries_follow_every_write(harness: &mut dyn Harness) {
    let now = time::now();
    let t0 = now - 120.0;
    let trace = trace_id(epoch_of(t0));
    let other = trace_id(epoch_of(t0));
    let root_open = parse(&format!(
        r#"{{"name":"frontend","id":"000000000000a001","trace_id":"{trace}","start_time":{},"in_progress":true,
            "origin":"AWS::EC2::Instance","user":"alice","http":{{"request":{{"method":"GET","url":"https://shop/checkout","client_ip":"10.0.0.1"}}}},
            "aws":{{"account_id":"123456789012","ec2":{{"instance_id":"i-0abc","availability_zone":"eu-west-1a"}}}},
            "annotations":{{"tier":"gold"}}}}"#,
        t0 + 0.001
    ));
    let root_done = parse(&format!(
        r#"{{"name":"frontend","id":"000000000000a001","trace_id":"{trace}","start_time":{},"end_time":{},
            "origin":"AWS::EC2::Instance","user":"alice","http":{{"request":{{"method":"GET","url":"https://shop/checkout","client_ip":"10.0.0.1"}},"response":{{"status":200}}}},
            "aws":{{"account_id":"123456789012","ec2":{{"instance_id":"i-0abc","availability_zone":"eu-west-1a"}}}},
            "annotations":{{"tier":"gold"}},
            "subsegments":[{{"name":"call backend","id":"000000000000a0e1","start_time":{},"end_time":{},"annotations":{{"hop":true}}}}]}}"#,
        t0 + 0.001,
        t0 + 1.0,
        t0 + 0.04,
        t0 + 0.6
    ));
    let db_call = parse(&format!(
        r#"{{"type":"subsegment","name":"db","id":"000000000000a002","trace_id":"{trace}","parent_id":"000000000000a001","start_time":{},"end_time":{},"annotations":{{"rows":3}}}}"#,
        t0 + 0.01,
        t0 + 0.02
    ));
    let backend = parse(&format!(
        r#"{{"name":"backend","id":"000000000000b001","trace_id":"{trace}","parent_id":"000000000000a0e1","start_time":{},"end_time":{},
            "fault":true,"user":"bob","resource_arn":"arn:aws:lambda:eu-west-1:123456789012:function:backend","annotations":{{"tier":"silver"}}}}"#,
        t0 + 0.05,
        t0 + 0.5
    ));
    let backend_stale = parse(&format!(
        r#"{{"name":"backend","id":"000000000000b001","trace_id":"{trace}","parent_id":"000000000000a0e1","start_time":{},"in_progress":true}}"#,
        t0 + 0.05
    ));
    // Arrives late but started first: the trace's start moves earlier.
    let cdn = parse(&format!(
        r#"{{"name":"cdn","id":"000000000000c001","trace_id":"{trace}","parent_id":"00000000000000ff","start_time":{},"end_time":{},"origin":"AWS::CloudFront"}}"#,
        t0 - 0.5,
        t0 + 1.1
    ));
    let cache_open = parse(&format!(
        r#"{{"type":"subsegment","name":"cache","id":"000000000000b002","trace_id":"{trace}","parent_id":"000000000000b001","start_time":{},"in_progress":true}}"#,
        t0 + 0.06
    ));
    let cache_done = parse(&format!(
        r#"{{"type":"subsegment","name":"cache","id":"000000000000b002","trace_id":"{trace}","parent_id":"000000000000b001","start_time":{},"end_time":{},"throttle":true}}"#,
        t0 + 0.06,
        t0 + 0.07
    ));
    enum Step {
        Write(Vec<Document>),
        Reopen,
    }
    let steps = vec![
        Step::Write(vec![root_open]),
        Step::Write(vec![db_call, segment(other, 1, t0)]),
        Step::Write(vec![backend]),
        Step::Reopen,
        Step::Write(vec![root_done]),
        Step::Write(vec![backend_stale]),
        Step::Write(vec![cdn]),
        Step::Reopen,
        Step::Write(vec![cache_open, segment(other, 2, t0 + 5.0)]),
        Step::Write(vec![cache_done]),
        Step::Reopen,
    ];
    let mut model = Model::default();
    for (index, step) in steps.into_iter().enumerate() {
        match step {
            Step::Write(batch) => write(harness.store(), &mut model, &batch),
            Step::Reopen => harness.reopen(),
        }
        assert_matches(harness.store(), &model, &format!("after step {index}"));
        // The trace is also found at its current start time.
        let start = model.summary(trace).start_time;
        let (found, _) = collect_pages(harness.store(), query(TimeRange::Event, start, start, 10));
        assert_eq!(found.iter().map(|summary| summary.id).collect::<Vec<_>>(), vec![trace], "after step {index}");
    }
    let summary = model.summary(trace);
    assert_eq!((summary.revision, summary.entry_point.map(|service| service.name)), (5, Some("frontend".into())));
}

/// Paging through summaries visits every trace once, newest start first,
/// ties on the start broken by id, for any page size, across partitions.
pub(crate) fn summaries_page_newest_first(harness: &mut dyn Harness) {
    let now = time::now();
    let base = now - 3.0 * DAY;
    let traces: Vec<(TraceId, f64)> = (0..250u32)
        .map(|index| {
            // 83 distinct starts: most are shared by three traces, written on
            // different days.
            let start = base + f64::from(index % 83) * 1.25 + 0.1;
            (trace_id(epoch_of(base) + index * 7919 % 250 * 60), start)
        })
        .collect();
    for (chunk, days) in traces.chunks(50).zip([-2, -2, -1, 0, 0]) {
        let batch: Vec<Document> = chunk.iter().map(|(trace, start)| segment(*trace, 1, *start)).collect();
        harness.write_on_day(days, &batch).expect("write");
    }
    let mut expected: Vec<(f64, TraceId)> = traces.iter().map(|(trace, start)| (*start, *trace)).collect();
    expected.sort_by(|left, right| right.0.total_cmp(&left.0).then(right.1.cmp(&left.1)));
    let expected: Vec<TraceId> = expected.into_iter().map(|(_, trace)| trace).collect();

    for round in ["written", "reopened"] {
        for limit in [1, 7, 100, 249, 250, 1000] {
            for (time_range, start, end) in
                [(TimeRange::Event, base, now), (TimeRange::TraceId, 0.0, f64::from(u32::MAX))]
            {
                let (found, pages) = collect_pages(harness.store(), query(time_range, start, end, limit));
                let found: Vec<TraceId> = found.iter().map(|summary| summary.id).collect();
                assert_eq!(found, expected, "{round}: {time_range:?}, limit {limit}");
                assert!(pages <= expected.len().div_ceil(limit) + 1, "{round}: {pages} pages for limit {limit}");
            }
        }
        harness.reopen();
    }
}

/// The range of a summary query applies to the start time or to the epoch
/// in the trace id, bounds included; an empty range gives an empty page.
pub(crate) fn summaries_select_by_event_or_trace_id_time(harness: &mut dyn Harness) {
    let now = time::now();
    let base = now - 3600.0;
    // Trace id epochs run opposite to start times, so the two ranges select
    // different traces.
    let traces: Vec<(TraceId, u32, f64)> = (0..60u32)
        .map(|index| {
            let epoch = epoch_of(base) + 59 - index;
            (trace_id(epoch), epoch, base + f64::from(index) * 2.5)
        })
        .collect();
    let batch: Vec<Document> = traces.iter().map(|(trace, _, start)| segment(*trace, 7, *start)).collect();
    harness.store().write(&batch, Durability::Buffered).expect("write");

    let select = |time_range: TimeRange, start: f64, end: f64| -> Vec<TraceId> {
        let mut selected: Vec<(f64, TraceId)> = traces
            .iter()
            .filter(|(_, epoch, event)| {
                let value = if time_range == TimeRange::Event { *event } else { f64::from(*epoch) };
                start <= value && value <= end
            })
            .map(|(trace, _, event)| (*event, *trace))
            .collect();
        selected.sort_by(|left, right| right.0.total_cmp(&left.0).then(right.1.cmp(&left.1)));
        selected.into_iter().map(|(_, trace)| trace).collect()
    };
    let (low_event, high_event) = (traces[10].2, traces[30].2);
    let (low_epoch, high_epoch) = (f64::from(traces[40].1), f64::from(traces[20].1));
    let ranges = [
        (TimeRange::Event, low_event, high_event),
        (TimeRange::Event, low_event.next_up(), high_event.next_down()),
        (TimeRange::Event, low_event - 1.0, low_event),
        (TimeRange::TraceId, low_epoch, high_epoch),
        (TimeRange::TraceId, low_epoch + 0.5, high_epoch - 0.5),
        (TimeRange::TraceId, low_epoch - 0.5, high_epoch + 0.5),
        (TimeRange::TraceId, low_epoch, low_epoch),
        // Empty: backwards, or nothing stored there.
        (TimeRange::Event, high_event, low_event),
        (TimeRange::TraceId, high_epoch, low_epoch),
        (TimeRange::Event, now + DAY, now + 2.0 * DAY),
        (TimeRange::TraceId, 0.0, f64::from(epoch_of(base)) - 1.0),
    ];
    for round in ["written", "reopened"] {
        for (time_range, start, end) in ranges {
            let expected = select(time_range, start, end);
            for limit in [3, 100] {
                let (found, _) = collect_pages(harness.store(), query(time_range, start, end, limit));
                let found: Vec<TraceId> = found.iter().map(|summary| summary.id).collect();
                assert_eq!(found, expected, "{round}: {time_range:?} {start}..={end}, limit {limit}");
            }
            if expected.is_empty() {
                let page = harness.store().summaries(&query(time_range, start, end, 10)).expect("summaries");
                assert!(page.summaries.is_empty() && page.next.is_none(), "{round}: {page:?}");
            }
        }
        harness.reopen();
    }
}

/// Once `write` returns, the data survives closing and reopening the store,
/// and traces keep growing correctly afterwards.
pub(crate) fn writes_are_durable(harness: &mut dyn Harness) {
    let now = time::now();
    let mut model = Model::default();
    let traces: Vec<TraceId> = (0..20).map(|_| trace_id(epoch_of(now - DAY))).collect();
    for (round, days) in [(0u64, -1), (1, -1), (2, 0), (3, 0)] {
        let batch: Vec<Document> = traces
            .iter()
            .enumerate()
            .filter(|(index, _)| (*index as u64 + round).is_multiple_of(2))
            .map(|(index, trace)| segment(*trace, 0x10 + round, now - DAY + index as f64))
            .collect();
        match days {
            0 => harness.store().write(&batch, Durability::Buffered).expect("write"),
            _ => harness.write_on_day(days, &batch).expect("write"),
        }
        model.apply(&batch);
    }
    harness.reopen();
    assert_matches(harness.store(), &model, "reopened");
    let batch: Vec<Document> = traces.iter().map(|trace| segment(*trace, 0x20, now - 2.0 * DAY)).collect();
    write(harness.store(), &mut model, &batch);
    harness.reopen();
    assert_matches(harness.store(), &model, "grown and reopened");
}

/// Readers running during writes see each batch whole or not at all.
pub(crate) fn readers_see_whole_batches(harness: &mut dyn Harness) {
    let now = time::now();
    let traces: Vec<TraceId> = (0..40).map(|_| trace_id(epoch_of(now))).collect();
    let store = harness.shared();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    for trace in store.traces(&traces).expect("traces while writing") {
                        assert_eq!(trace.documents.len(), 3, "a batch is visible whole or not at all");
                    }
                    let page =
                        store.summaries(&query(TimeRange::TraceId, 0.0, f64::from(u32::MAX), 100)).expect("summaries");
                    for summary in page.summaries {
                        assert_eq!(summary.revision, 3, "a batch's summary is visible whole or not at all");
                    }
                }
            });
        }
        let writer = scope.spawn(|| {
            for trace in &traces {
                let batch: Vec<Document> = (1..=3).map(|id| segment(*trace, id, now - id as f64)).collect();
                store.write(&batch, Durability::Buffered).expect("write");
            }
        });
        let result = writer.join();
        done.store(true, Ordering::Release);
        result.expect("writer thread");
    });
    assert_eq!(store.traces(&traces).expect("traces").len(), traces.len());
}

/// `remove_before` drops what was first received on old days, whole traces
/// at a time, and nothing received after the cutoff.
pub(crate) fn remove_before_drops_old_days_only(harness: &mut dyn Harness) {
    let now = time::now();
    let mut model = Model::default();
    let (old, old_growing, middle, fresh) = (
        trace_id(epoch_of(now - 10.0 * DAY)),
        trace_id(epoch_of(now - 10.0 * DAY)),
        trace_id(epoch_of(now - 5.0 * DAY)),
        trace_id(epoch_of(now)),
    );
    for (days, batch) in [
        (-10, vec![segment(old, 1, now - 10.0 * DAY), segment(old_growing, 1, now - 10.0 * DAY + 1.0)]),
        (-5, vec![segment(middle, 1, now - 5.0 * DAY)]),
        (0, vec![segment(fresh, 1, now), segment(old_growing, 2, now)]),
    ] {
        harness.write_on_day(days, &batch).expect("write");
        model.apply(&batch);
    }
    assert_matches(harness.store(), &model, "before removal");

    let removed = harness.store().remove_before(now - 7.0 * DAY).expect("remove_before");
    assert!(removed.partitions > 0, "{removed:?}");
    // The trace first received on the old day goes whole, even the document
    // received today.
    model.remove(old);
    model.remove(old_growing);
    assert!(harness.store().traces(&[old, old_growing]).expect("traces").is_empty());
    assert_matches(harness.store(), &model, "after removal");

    // Nothing received after the cutoff is removed, and removal is idempotent.
    for cutoff in [now - 7.0 * DAY, now - 5.0 * DAY - 60.0] {
        harness.store().remove_before(cutoff).expect("remove_before");
        assert_matches(harness.store(), &model, &format!("after removal before {cutoff}"));
    }

    // A removed trace that gets new documents starts afresh.
    write(harness.store(), &mut model, &[segment(old, 9, now - 10.0 * DAY)]);
    assert_matches(harness.store(), &model, "removed trace written again");
    harness.reopen();
    assert_matches(harness.store(), &model, "reopened");
}

/// A filtered query returns exactly the matching summaries, each once, in
/// order, whatever the page size, across partitions, and with many more
/// rows than match.
pub(crate) fn filtered_summaries_page_through_every_match_once(harness: &mut dyn Harness) {
    let now = time::now();
    let mut expected: Vec<(f64, TraceId)> = Vec::new();
    let mut in_batch_one: Vec<(f64, TraceId)> = Vec::new();
    for (days, count) in [(-1i64, 2500), (0, 3000)] {
        let batch: Vec<Document> = (0..count)
            .map(|n| {
                let start = now - 3600.0 + f64::from(n % 1000);
                let trace = trace_id(epoch_of(start));
                let fault = n % 7 == 0;
                if fault {
                    expected.push((start, trace));
                }
                if n % 3 == 1 {
                    in_batch_one.push((start, trace));
                }
                parse(&format!(
                    r#"{{"name":"svc","id":"{:016x}","trace_id":"{trace}","start_time":{start},"end_time":{},"fault":{fault},"annotations":{{"batch":"b{}"}}}}"#,
                    n + 1,
                    start + 0.5,
                    n % 3
                ))
            })
            .collect();
        harness.write_on_day(days, &batch).expect("write");
    }
    let matcher = |expression: &str| {
        baton_query::Matcher::new(baton_query::filter::parse(expression).expect("parses")).expect("supported")
    };
    for (expression, expected) in [("fault", &mut expected), (r#"annotation.batch = "b1""#, &mut in_batch_one)] {
        expected.sort_by(|left, right| right.0.total_cmp(&left.0).then(right.1.cmp(&left.1)));
        for limit in [1, 7, 100, 1000] {
            let query =
                SummaryQuery { filter: Some(matcher(expression)), ..query(TimeRange::Event, now - 7200.0, now, limit) };
            let (found, _) = collect_pages(harness.store(), query);
            let found: Vec<(f64, TraceId)> = found.iter().map(|summary| (summary.start_time, summary.id)).collect();
            assert_eq!(found.len(), expected.len(), "{expression}, limit {limit}");
            assert!(found == *expected, "{expression}, limit {limit}: the matches differ or are out of order");
        }
    }
    let filter = matcher("fault");
    let first = harness
        .store()
        .summaries(&SummaryQuery { filter: Some(filter), ..query(TimeRange::Event, now - 7200.0, now, 5) })
        .expect("summaries");
    assert!(first.scanned >= 5 && first.scanned < 5500, "scanned {} rows for the first 5 matches", first.scanned);
}

/// Writes 400 traces starting over the last two hours, in 5 batches with a
/// reopening: callers and callees, faults and errors, annotations and users;
/// some traces' start moves a minute or two earlier in a later batch, some
/// lose a fault an in-progress version had. Returns what the store holds.
fn write_mixed_traces(harness: &mut dyn Harness, now: f64) -> Model {
    // xorshift: the same dataset on every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut batches: Vec<Vec<Document>> = vec![Vec::new(); 5];
    for n in 0..400u64 {
        let base = now - 7000.0 + random(6900) as f64 + random(1000) as f64 / 1000.0;
        let trace = trace_id(epoch_of(base));
        let call = 0x5000 + n;
        let user = match random(4) {
            0 => String::new(),
            user => format!(r#","user":"u-{user}""#),
        };
        let status =
            ["", r#","fault":true"#, r#","error":true"#, r#","error":true,"throttle":true"#][random(4) as usize];
        let (customer, number, vip) = (random(10), random(4), random(2) == 0);
        let response_time = [0.05, 0.4, 1.5, 3.0][random(4) as usize];
        // How the caller saw its call (the callee's segment may say otherwise).
        let call_status = ["", r#","fault":true"#, r#","error":true"#][random(3) as usize];
        let root = |in_progress: bool| {
            let end = if in_progress {
                r#""in_progress":true"#.to_owned()
            } else {
                format!(r#""end_time":{}"#, base + response_time)
            };
            format!(
                r#"{{"name":"svc-a","id":"{:016x}","trace_id":"{trace}","start_time":{base},{end}{}{user},"annotations":{{"customer":"c-{}","n":{},"vip":{}}},"subsegments":[{{"name":"svc-b","id":"{call:016x}","namespace":"remote","start_time":{},"end_time":{}{call_status}}}]}}"#,
                0x1000 + n,
                if in_progress { r#","fault":true"# } else { status },
                customer,
                number,
                vip,
                base + 0.1,
                base + 1.0
            )
        };
        let first = random(3) as usize;
        if random(4) == 0 {
            // An in-progress version with a fault the complete one lacks.
            batches[first].push(parse(&root(true)));
        }
        batches[first + random(2) as usize].push(parse(&root(false)));
        if random(3) != 0 {
            // The callee's own segment; sometimes it started a minute or two
            // before the caller (clock skew), moving the trace's start.
            let start = if random(3) == 0 { base - 30.0 - random(90) as f64 } else { base + 0.2 };
            let flag = ["", r#","fault":true"#, r#","error":true"#][random(3) as usize];
            batches[first + random(2) as usize + 1].push(parse(&format!(
                r#"{{"name":"svc-b","id":"{:016x}","trace_id":"{trace}","parent_id":"{call:016x}","start_time":{start},"end_time":{}{flag},"annotations":{{"customer":"c-{}"}}}}"#,
                0x3000 + n,
                base + 0.9,
                random(10)
            )));
        }
    }
    let mut model = Model::default();
    for (number, batch) in batches.iter().enumerate() {
        write(harness.store(), &mut model, batch);
        if number == 1 {
            harness.reopen();
        }
    }
    model
}

/// A filtered query finds exactly the traces whose current summary the
/// filter matches, in page order, whatever the documents' arrival: traces
/// whose start moves to an earlier minute, that lose a flag, that grow in
/// later batches, over reopenings.
pub(crate) fn filtered_summaries_equal_the_filter_on_every_summary(harness: &mut dyn Harness) {
    let now = time::now();
    let model = write_mixed_traces(harness, now);
    let expressions = [
        r#"annotation.customer = "c-3""#,
        "annotation.n = 2",
        "annotation.vip = false",
        "annotation.n > 1",
        r#"service("svc-b") { fault }"#,
        r#"service("svc-a") { error OR throttle }"#,
        r#"edge("svc-a", "svc-b") { error }"#,
        r#"edge("svc-a", "svc-b") { fault }"#,
        "fault",
        r#"user = "u-1""#,
        r#"user = "u-1" OR annotation.customer = "c-3""#,
        r#"fault AND annotation.customer = "c-4""#,
        r#"service("svc-b") { error } AND annotation.vip = true"#,
        "!fault",
        "duration > 1.6",
        "responsetime > 1",
        "responsetime <= 0.4 AND annotation.n = 1",
    ];
    let ids = model.ids();
    for expression in expressions {
        let matcher =
            baton_query::Matcher::new(baton_query::filter::parse(expression).expect("parses")).expect("supported");
        for (start, end) in [(now - 7200.0, now), (now - 4000.0, now - 2000.0)] {
            let mut expected: Vec<(f64, TraceId)> = ids
                .iter()
                .map(|id| model.summary(*id))
                .filter(|summary| (start..=end).contains(&summary.start_time) && matcher.matches(summary))
                .map(|summary| (summary.start_time, summary.id))
                .collect();
            expected.sort_by(|left, right| right.0.total_cmp(&left.0).then(right.1.cmp(&left.1)));
            assert!(!expected.is_empty() && expected.len() < 350, "{expression} selects {}", expected.len());
            for limit in [1, 6, 1000] {
                let query =
                    SummaryQuery { filter: Some(matcher.clone()), ..query(TimeRange::Event, start, end, limit) };
                let (found, _) = collect_pages(harness.store(), query);
                let found: Vec<(f64, TraceId)> = found.iter().map(|summary| (summary.start_time, summary.id)).collect();
                assert!(
                    found == expected,
                    "{expression}, limit {limit}: {} found, {} expected",
                    found.len(),
                    expected.len()
                );
            }
        }
    }
}

/// The service graph of a range, whole or by periods, sums the
/// contributions of the current summaries of the traces starting in it.
pub(crate) fn graph_sums_the_contributions_of_current_summaries(harness: &mut dyn Harness) {
    let now = (time::now() / 60.0).floor() * 60.0;
    let model = write_mixed_traces(harness, now);
    let summaries: Vec<TraceSummary> = model.ids().into_iter().map(|id| model.summary(id)).collect();
    let expected = |from: f64, to: f64| {
        let mut elements: BTreeMap<Element, Stats> = BTreeMap::new();
        for summary in summaries.iter().filter(|summary| (from..to).contains(&summary.start_time)) {
            for (element, stats) in contributions(summary) {
                elements.entry(element).or_default().merge(&stats, 1);
            }
        }
        elements.retain(|_, stats| !stats.is_empty());
        elements
    };
    let rounded = |elements: &BTreeMap<Element, Stats>| -> Vec<(Element, Stats)> {
        elements
            .iter()
            .map(|(element, stats)| {
                let mut stats = stats.clone();
                stats.total_response_time = (stats.total_response_time * 1e6).round() / 1e6;
                (element.clone(), stats)
            })
            .collect()
    };
    // Whole days, hours and minutes: the range below crosses hours.
    for (from, to) in [(now - 7200.0, now + 60.0), (now - 5400.0, now - 1260.0), (now - 86_400.0 * 3.0, now + 86_400.0)]
    {
        let whole = harness.store().graph((from, to), None).expect("graph");
        assert_eq!(whole.len(), 1, "one period");
        assert!(!whole[0].elements.is_empty());
        assert_eq!(rounded(&whole[0].elements), rounded(&expected(from, to)), "{from}..{to}");
        let periods = harness.store().graph((from, to), Some(1200)).expect("graph");
        assert_eq!(periods.first().map(|period| period.start), Some(from));
        assert_eq!(periods.last().map(|period| period.end), Some(to));
        for period in &periods {
            assert_eq!(
                rounded(&period.elements),
                rounded(&expected(period.start, period.end)),
                "{}..{}",
                period.start,
                period.end
            );
        }
    }
    assert!(harness.store().graph((now + 3600.0, now + 7200.0), None).expect("graph")[0].elements.is_empty());
}

/// Groups are durable, listed by name, replaced by name, removed by name,
/// and untouched by retention.
pub(crate) fn groups_are_kept_replaced_and_removed(harness: &mut dyn Harness) {
    let group = |name: &str, filter: Option<&str>| Group {
        name: name.to_owned(),
        arn: format!("arn:aws:xray:local:000000000000:group/{name}/1"),
        filter_expression: filter.map(str::to_owned),
        insights_enabled: name == "slow",
        notifications_enabled: false,
    };
    assert_eq!(harness.store().groups().expect("groups"), []);
    for created in [group("slow", Some("responsetime > 2")), group("all", None), group("faults", Some("fault"))] {
        harness.store().put_group(&created).expect("put_group");
    }
    let replaced = group("slow", Some("responsetime > 5"));
    harness.store().put_group(&replaced).expect("put_group replaces");
    harness.reopen();
    harness.store().remove_before(time::now() + 10.0 * DAY).expect("remove_before");
    assert_eq!(
        harness.store().groups().expect("groups"),
        [group("all", None), group("faults", Some("fault")), replaced]
    );
    assert!(harness.store().remove_group("faults").expect("remove_group"));
    assert!(!harness.store().remove_group("faults").expect("remove_group again"));
    let names: Vec<String> = harness.store().groups().expect("groups").into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["all", "slow"]);
}

/// Sampling rules: the Default rule on a fresh store; rules durable, listed
/// by priority then name, replaced by name keeping when they were created,
/// removed by name, untouched by retention; the Default rule never removed,
/// and only its rate, reservoir size and modification time changed.
pub(crate) fn sampling_rules_are_kept_replaced_and_removed(harness: &mut dyn Harness) {
    assert_eq!(harness.store().sampling_rules().expect("sampling_rules"), [SamplingRule::default_rule()]);
    let rule = |name: &str, priority: u32, at: f64| SamplingRule {
        name: name.to_owned(),
        arn: SamplingRule::arn_of(name),
        priority,
        fixed_rate: 0.25,
        reservoir_size: 3,
        patterns: RulePatterns { url_path: format!("/{name}/*"), ..RulePatterns::any() },
        resource_arn: "*".to_owned(),
        version: 1,
        attributes: BTreeMap::from([("tier".to_owned(), "gold".to_owned())]),
        created_at: at,
        modified_at: at,
    };
    for created in [rule("health", 5, 100.0), rule("orders", 1, 101.0), rule("audit", 5, 102.0)] {
        harness.store().put_sampling_rule(&created).expect("put_sampling_rule");
    }
    let mut replaced = rule("health", 7, 300.0);
    (replaced.fixed_rate, replaced.reservoir_size, replaced.patterns.host) = (0.0, 0, "api.example.com".into());
    replaced.attributes.clear();
    harness.store().put_sampling_rule(&replaced).expect("put_sampling_rule replaces");
    let default = SamplingRule {
        priority: 1,
        fixed_rate: 0.5,
        reservoir_size: 9,
        patterns: rule("x", 1, 0.0).patterns,
        version: 2,
        modified_at: 400.0,
        ..SamplingRule::default_rule()
    };
    harness.store().put_sampling_rule(&default).expect("put_sampling_rule of the Default rule");
    harness.reopen();
    harness.store().remove_before(time::now() + 10.0 * DAY).expect("remove_before");
    let updated_default =
        SamplingRule { fixed_rate: 0.5, reservoir_size: 9, modified_at: 400.0, ..SamplingRule::default_rule() };
    assert_eq!(
        harness.store().sampling_rules().expect("sampling_rules"),
        [
            rule("orders", 1, 101.0),
            rule("audit", 5, 102.0),
            SamplingRule { created_at: 100.0, ..replaced },
            updated_default.clone()
        ]
    );
    assert!(harness.store().remove_sampling_rule("audit").expect("remove_sampling_rule"));
    assert!(!harness.store().remove_sampling_rule("audit").expect("remove_sampling_rule again"));
    assert!(!harness.store().remove_sampling_rule(SamplingRule::DEFAULT_NAME).expect("remove the Default rule"));
    let rules = harness.store().sampling_rules().expect("sampling_rules");
    let names: Vec<&str> = rules.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["orders", "health", SamplingRule::DEFAULT_NAME]);
    assert_eq!(rules[2], updated_default);
}

/// Invocation logs come back by trace, oldest first, whole, after a reopen;
/// retention removes the old ones only.
pub(crate) fn logs_are_kept_by_trace_and_expire(harness: &mut dyn Harness) {
    let now = time::now();
    let (trace, other) = (trace_id(epoch_of(now)), trace_id(epoch_of(now)));
    let log = |trace: TraceId, request: &str, time: f64| InvocationLog {
        trace_id: trace,
        request_id: request.to_owned(),
        function: "orders".to_owned(),
        time,
        lines: vec![format!("START RequestId: {request} Version: $LATEST"), "héllo\tworld".into(), String::new()],
    };
    let mut old = log(trace, "r-old", now - 3.0 * DAY);
    old.lines.clear();
    let (second, first) = (log(trace, "r-2", now), log(trace, "r-1", now - 1.0));
    harness.store().put_logs(&[second.clone(), log(other, "r-9", now), first.clone()]).expect("put_logs");
    harness.store().put_logs(&[old.clone()]).expect("put_logs");
    harness.reopen();
    assert_eq!(harness.store().logs(trace).expect("logs"), [old, first.clone(), second.clone()]);
    assert_eq!(harness.store().logs(trace_id(epoch_of(now))).expect("logs"), []);
    harness.store().remove_before(now - DAY).expect("remove_before");
    assert_eq!(harness.store().logs(trace).expect("logs"), [first, second]);
    assert_eq!(harness.store().logs(other).expect("logs").len(), 1);
}

/// A trace with more than [`MAX_TRACE_DOCUMENTS`] documents is returned
/// truncated to exactly that many, flagged; its summary counts them all.
pub(crate) fn oversized_traces_are_truncated(harness: &mut dyn Harness) {
    let now = time::now();
    let trace = trace_id(epoch_of(now));
    let documents: Vec<Document> = (1..=MAX_TRACE_DOCUMENTS as u64 + 1)
        .map(|id| {
            parse(&format!(
                r#"{{"name":"s","id":"{id:016x}","trace_id":"{trace}","start_time":{},"end_time":{now}}}"#,
                now - id as f64 * 0.001
            ))
        })
        .collect();
    let (full, extra) = documents.split_at(MAX_TRACE_DOCUMENTS);
    let written: HashSet<&str> = documents.iter().map(|document| &*document.json).collect();
    let mut model = Model::default();

    write(harness.store(), &mut model, full);
    let found = harness.store().traces(&[trace]).expect("traces");
    assert_eq!(
        (found[0].documents.len(), found[0].limit_exceeded),
        (MAX_TRACE_DOCUMENTS, false),
        "exactly at the limit"
    );

    write(harness.store(), &mut model, extra);
    for round in ["written", "reopened"] {
        let found = harness.store().traces(&[trace]).expect("traces");
        let StoredTrace { id, documents, limit_exceeded } = &found[0];
        assert_eq!((*id, documents.len(), *limit_exceeded), (trace, MAX_TRACE_DOCUMENTS, true), "{round}");
        assert!(documents.iter().all(|text| written.contains(text.as_str())), "{round}: only written documents");
        assert_eq!(documents.iter().collect::<HashSet<_>>().len(), MAX_TRACE_DOCUMENTS, "{round}: no repeats");
        let summaries = all_summaries(harness.store());
        assert_eq!(summaries[&trace], model.summary(trace), "{round}: the summary covers every document");
        assert_eq!(summaries[&trace].revision as usize, MAX_TRACE_DOCUMENTS + 1);
        harness.reopen();
    }
}

/// Trace ids whose epoch is far from now (not made by an X-Ray SDK, or old)
/// are found by `traces` and `summaries`, and keep growing as one trace.
pub(crate) fn traces_are_found_whatever_their_epoch(harness: &mut dyn Harness) {
    let now = time::now();
    let epochs = [u32::MAX, 0x6744_a1b2, 0, epoch_of(now - 40.0 * DAY), epoch_of(now + 3.0 * DAY)];
    let traces: Vec<TraceId> = epochs.iter().map(|epoch| trace_id(*epoch)).collect();
    let mut model = Model::default();
    let batch: Vec<Document> = traces.iter().map(|trace| segment(*trace, 1, now - 10.0)).collect();
    write(harness.store(), &mut model, &batch);
    for round in ["written", "reopened"] {
        assert_matches(harness.store(), &model, round);
        for (trace, epoch) in traces.iter().zip(epochs) {
            let (found, _) =
                collect_pages(harness.store(), query(TimeRange::TraceId, f64::from(epoch), f64::from(epoch), 10));
            assert_eq!(
                found.iter().map(|summary| summary.id).collect::<Vec<_>>(),
                vec![*trace],
                "{round}: epoch {epoch:08x}"
            );
        }
        let (found, _) = collect_pages(harness.store(), query(TimeRange::Event, now - 11.0, now, 10));
        assert_eq!(found.len(), traces.len(), "{round}");
        harness.reopen();
        // Cold cache: new documents must join the stored traces.
        let batch: Vec<Document> = traces.iter().map(|trace| segment(*trace, 2, now - 5.0)).collect();
        write(harness.store(), &mut model, &batch);
    }
    assert_matches(harness.store(), &model, "grown after reopen");
}

/// A trace first received while the sender's clock was days ahead of ours
/// (its id's epoch in our future) is still found once our clock catches up,
/// and its later documents join it rather than starting a second trace.
pub(crate) fn traces_ahead_of_the_clock_are_found(harness: &mut dyn Harness) {
    let now = time::now();
    let mut model = Model::default();
    let ahead: Vec<TraceId> = [0.0, 1.0, 2.5].iter().map(|days| trace_id(epoch_of(now + days * DAY))).collect();
    let batch: Vec<Document> = ahead.iter().map(|trace| segment(*trace, 1, now - 3.0 * DAY)).collect();
    harness.write_on_day(-3, &batch).expect("write");
    model.apply(&batch);
    assert_matches(harness.store(), &model, "our clock caught up");
    harness.reopen();
    assert_matches(harness.store(), &model, "reopened");
    let batch: Vec<Document> = ahead.iter().map(|trace| segment(*trace, 2, now)).collect();
    write(harness.store(), &mut model, &batch);
    assert_matches(harness.store(), &model, "grown");
    // They were first received three days ago, and go with that day.
    harness.store().remove_before(now - DAY).expect("remove_before");
    assert!(harness.store().traces(&ahead).expect("traces").is_empty(), "removed whole");
    assert!(all_summaries(harness.store()).is_empty());
}

/// One document as a property test describes it.
#[derive(Debug, Clone)]
struct DocSpec {
    /// 0: sent complete; 1: sent in progress only; 2: both.
    versions: u8,
    subsegment: bool,
    /// The parent: another document, or the subsegment embedded in it.
    parent: Option<(usize, bool)>,
    start: f64,
    duration: f64,
    fault: bool,
    annotation: Option<i32>,
}

fn doc_spec() -> impl Strategy<Value = DocSpec> {
    (
        0..3u8,
        any::<bool>(),
        proptest::option::of((0..6usize, any::<bool>())),
        0.0..100.0f64,
        0.0..5.0f64,
        any::<bool>(),
        proptest::option::of(-3..3i32),
    )
        .prop_map(|(versions, subsegment, parent, start, duration, fault, annotation)| DocSpec {
            versions,
            subsegment,
            parent,
            start,
            duration,
            fault,
            annotation,
        })
}

fn spec_document(trace: TraceId, base: f64, index: usize, spec: &DocSpec, in_progress: bool) -> Document {
    let start = base + spec.start;
    let end = start + spec.duration;
    let mut json =
        format!(r#"{{"name":"n{index}","id":"{:016x}","trace_id":"{trace}","start_time":{start}"#, 0x1000 + index);
    if in_progress {
        json.push_str(r#","in_progress":true"#);
    } else {
        json.push_str(&format!(r#","end_time":{end}"#));
        if spec.fault {
            json.push_str(r#","fault":true"#);
        }
        if let Some(value) = spec.annotation {
            json.push_str(&format!(r#","annotations":{{"k":{value}}}"#));
        }
    }
    if let Some((parent, embedded)) = spec.parent {
        json.push_str(&format!(r#","parent_id":"{:016x}""#, if embedded { 0x2000 } else { 0x1000 } + parent));
        if spec.subsegment {
            json.push_str(r#","type":"subsegment""#);
        }
    }
    json.push_str(&format!(
        r#","subsegments":[{{"name":"e{index}","id":"{:016x}","start_time":{start},"end_time":{end}}}]}}"#,
        0x2000 + index
    ));
    parse(&json)
}

/// Any arrival order, and any split into batches, of a trace's documents
/// gives the same stored documents and summary.
pub(crate) fn arrival_order_does_not_matter(harness: &mut dyn Harness) {
    let now = time::now();
    let serial = AtomicU64::new(0);
    let harness = std::cell::RefCell::new(harness);
    let strategy = proptest::collection::vec(doc_spec(), 1..7).prop_flat_map(|specs| {
        let versions: usize = specs.iter().map(|spec| if spec.versions == 2 { 2 } else { 1 }).sum();
        (
            Just(specs),
            Just((0..versions).collect::<Vec<usize>>()).prop_shuffle(),
            proptest::collection::vec(any::<bool>(), versions),
            0..6u8,
        )
    });
    let mut runner = TestRunner::new(Config { cases: 40, failure_persistence: None, ..Config::default() });
    let result = runner.run(&strategy, |(specs, order, cuts, reopen)| {
        // A distinct epoch per case, so a summary query finds just this trace.
        let epoch = epoch_of(now) - 1 - serial.fetch_add(1, Ordering::Relaxed) as u32;
        let trace = trace_id(epoch);
        let base = f64::from(epoch);
        let mut versions = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            if spec.versions != 0 {
                versions.push(spec_document(trace, base, index, spec, true));
            }
            if spec.versions != 1 {
                versions.push(spec_document(trace, base, index, spec, false));
            }
        }
        let mut model = Model::default();
        let mut batch = Vec::new();
        let mut reopened = false;
        for (position, version) in order.iter().enumerate() {
            batch.push(versions[*version].clone());
            if cuts[position] || position + 1 == order.len() {
                let mut harness = harness.borrow_mut();
                write(harness.store(), &mut model, &std::mem::take(&mut batch));
                let found = harness.store().traces(&[trace]).expect("traces");
                prop_assert_eq!(sorted(found[0].documents.clone()), model.documents(trace));
                let page = harness.store().summaries(&query(TimeRange::TraceId, base, base, 10)).expect("summaries");
                prop_assert_eq!(page.summaries, vec![model.summary(trace)]);
                if reopen == 0 && !reopened {
                    reopened = true;
                    harness.reopen();
                }
            }
        }
        // The final state depends only on the set of versions sent.
        let mut expected = Model::default();
        let mut complete_last: Vec<Document> = versions.clone();
        complete_last.sort_by_key(|document| !document.info.in_progress);
        expected.apply(&complete_last);
        prop_assert_eq!(model.documents(trace), expected.documents(trace));
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

// === the writer over the store ===

/// Wraps a store: writes wait until the gate opens, batch sizes and
/// durabilities are recorded, batches holding a document named "poison"
/// fail, and so do the next writes [`Gated::fail_next`] asks (a store down
/// for a while).
struct Gated {
    inner: Arc<dyn Store>,
    open: Mutex<bool>,
    opened: Condvar,
    batches: Mutex<Vec<(usize, Durability)>>,
    failures: AtomicU64,
}

impl Gated {
    fn new(inner: Arc<dyn Store>, open: bool) -> Arc<Gated> {
        Arc::new(Gated {
            inner,
            open: Mutex::new(open),
            opened: Condvar::new(),
            batches: Mutex::new(Vec::new()),
            failures: AtomicU64::new(0),
        })
    }

    fn fail_next(&self, writes: u64) {
        self.failures.store(writes, Ordering::SeqCst);
    }

    fn open(&self) {
        *self.open.lock().expect("gate") = true;
        self.opened.notify_all();
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().expect("batches").iter().map(|(size, _)| *size).collect()
    }

    fn durabilities(&self) -> Vec<Durability> {
        self.batches.lock().expect("batches").iter().map(|(_, durability)| *durability).collect()
    }
}

impl Store for Gated {
    fn write(&self, batch: &[Document], durability: Durability) -> Result<(), Error> {
        self.batches.lock().expect("batches").push((batch.len(), durability));
        let mut open = self.open.lock().expect("gate");
        while !*open {
            open = self.opened.wait(open).expect("gate");
        }
        drop(open);
        if batch.iter().any(|document| document.info.name == "poison") {
            return Err(Error::Corrupt("poisoned batch".into()));
        }
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok() {
            return Err(Error::WriteFailed("the store is down".into()));
        }
        self.inner.write(batch, durability)
    }

    fn traces(&self, ids: &[TraceId]) -> Result<Vec<StoredTrace>, Error> {
        self.inner.traces(ids)
    }

    fn summaries(&self, query: &SummaryQuery) -> Result<SummaryPage, Error> {
        self.inner.summaries(query)
    }

    fn graph(&self, range: (f64, f64), period: Option<u64>) -> Result<Vec<GraphPeriod>, Error> {
        self.inner.graph(range, period)
    }

    fn remove_before(&self, cutoff: f64) -> Result<Removed, Error> {
        self.inner.remove_before(cutoff)
    }

    fn put_group(&self, group: &Group) -> Result<(), Error> {
        self.inner.put_group(group)
    }

    fn groups(&self) -> Result<Vec<Group>, Error> {
        self.inner.groups()
    }

    fn remove_group(&self, name: &str) -> Result<bool, Error> {
        self.inner.remove_group(name)
    }

    fn put_sampling_rule(&self, rule: &SamplingRule) -> Result<(), Error> {
        self.inner.put_sampling_rule(rule)
    }

    fn sampling_rules(&self) -> Result<Vec<SamplingRule>, Error> {
        self.inner.sampling_rules()
    }

    fn remove_sampling_rule(&self, name: &str) -> Result<bool, Error> {
        self.inner.remove_sampling_rule(name)
    }

    fn put_logs(&self, logs: &[InvocationLog]) -> Result<(), Error> {
        self.inner.put_logs(logs)
    }

    fn logs(&self, trace: TraceId) -> Result<Vec<InvocationLog>, Error> {
        self.inner.logs(trace)
    }
}

fn writer_config() -> WriterConfig {
    WriterConfig { retention: None, ..WriterConfig::default() }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime").block_on(future)
}

#[track_caller]
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The writer's counters agree with what the store saw.
#[track_caller]
fn assert_stats_add_up(writer: &Writer, gate: &Gated, written: u64, failed: u64) {
    let stats = writer.stats();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let batches = gate.batches();
    assert_eq!(load(&stats.batches), batches.len() as u64, "batches");
    assert_eq!(batches.iter().sum::<usize>() as u64, written + failed, "documents the store saw");
    assert_eq!((load(&stats.documents_written), load(&stats.documents_failed)), (written, failed), "written, failed");
    assert_eq!((load(&stats.queued_documents), load(&stats.queued_bytes)), (0, 0), "queue drained");
    assert_eq!(stats.batch_latency.iter().map(load).sum::<u64>(), batches.len() as u64, "one latency per batch");
}

/// `submit`'s ack resolves only once the documents are readable.
pub(crate) fn writer_acks_once_documents_are_readable(harness: &mut dyn Harness) {
    let now = time::now();
    let gate = Gated::new(harness.shared(), false);
    let writer = Writer::start(gate.clone(), writer_config());
    let mut model = Model::default();

    let held = trace_id(epoch_of(now));
    let ack = writer.submit(vec![segment(held, 1, now)]).expect("submit");
    block_on(async {
        let mut wait = std::pin::pin!(ack.wait());
        let early = tokio::time::timeout(Duration::from_millis(50), &mut wait).await;
        assert!(early.is_err(), "acked before the store wrote");
        assert!(harness.store().traces(&[held]).expect("traces").is_empty());
        gate.open();
        wait.await.expect("ack");
    });
    model.apply(&[segment(held, 1, now)]);
    assert_matches(harness.store(), &model, "acked");

    // Many submitters at once: each finds its documents as soon as acked.
    let store = harness.shared();
    let batches: Vec<Vec<Document>> = (0..40)
        .map(|index| {
            let trace = trace_id(epoch_of(now) - index);
            vec![segment(trace, 1, now), segment(trace, 2, now + 1.0)]
        })
        .collect();
    std::thread::scope(|scope| {
        for chunk in batches.chunks(10) {
            let (writer, store) = (&writer, &store);
            scope.spawn(move || {
                for documents in chunk {
                    let trace = documents[0].info.trace_id;
                    block_on(writer.submit(documents.clone()).expect("submit").wait()).expect("ack");
                    let found = store.traces(&[trace]).expect("traces");
                    assert_eq!(found.len(), 1, "readable once acked");
                    assert_eq!(found[0].documents.len(), 2, "readable once acked");
                    let epoch = f64::from(trace.epoch());
                    let page = store.summaries(&query(TimeRange::TraceId, epoch, epoch, 10)).expect("summaries");
                    assert!(page.summaries.iter().any(|summary| summary.id == trace), "summary readable once acked");
                }
            });
        }
    });
    for batch in &batches {
        model.apply(batch);
    }
    drop(store);
    writer.stop();
    assert_matches(harness.store(), &model, "all acked");
    assert_stats_add_up(&writer, &gate, 81, 0);
}

/// Past `max_queued_bytes`, submissions are refused with [`Error::Full`]
/// and dropped; what was taken is still written.
pub(crate) fn writer_refuses_when_the_queue_is_full(harness: &mut dyn Harness) {
    let now = time::now();
    let gate = Gated::new(harness.shared(), false);
    // Whole and half seconds print with the same number of digits.
    let documents: Vec<Document> =
        (0..40).map(|index| segment(trace_id(epoch_of(now)), 1, now.floor() + 0.5 - f64::from(index))).collect();
    let size = documents[0].json.len() as u64;
    assert!(documents.iter().all(|document| document.json.len() as u64 == size), "equal sizes");
    // Room for a few documents, whatever the writer counts per document.
    let max_queued_bytes = 10 * size;
    let writer = Writer::start(gate.clone(), WriterConfig { max_queued_bytes, ..writer_config() });
    let mut model = Model::default();

    writer.try_submit(vec![documents[0].clone()]).expect("first");
    wait_until("the writer holds the first batch", || gate.batches().len() == 1);
    let ack = writer.submit(vec![documents[1].clone()]).expect("second");
    let mut taken = 2;
    let refused = loop {
        assert!(taken < documents.len(), "the queue never filled");
        match writer.try_submit(vec![documents[taken].clone()]) {
            Ok(()) => taken += 1,
            Err(Error::Full) => break taken,
            Err(error) => panic!("{error}"),
        }
    };
    assert!(matches!(writer.submit(vec![documents[refused].clone()]), Err(Error::Full)), "submit is refused too");
    let stats = writer.stats();
    let queued = stats.queued_bytes.load(Ordering::Relaxed);
    assert_eq!(stats.queued_documents.load(Ordering::Relaxed), taken as u64);
    let cost = queued / taken as u64;
    assert_eq!(queued, cost * taken as u64, "equal documents cost the same");
    assert!(
        queued <= max_queued_bytes && queued + cost > max_queued_bytes,
        "refused exactly at the bound: {queued} + {cost}"
    );

    gate.open();
    block_on(ack.wait()).expect("ack");
    writer.stop();
    // Only a batch someone awaits needs the disk sync.
    assert_eq!(gate.durabilities(), vec![Durability::Buffered, Durability::Synced]);
    model.apply(&documents[..taken]);
    assert_matches(harness.store(), &model, "refused documents are dropped");
    assert_stats_add_up(&writer, &gate, taken as u64, 0);
}

/// `stop` waits until everything queued is written, batches never exceed
/// `max_batch_documents`, and nothing is taken after it.
pub(crate) fn writer_stop_writes_everything_queued(harness: &mut dyn Harness) {
    let now = time::now();
    let gate = Gated::new(harness.shared(), false);
    let writer = Writer::start(gate.clone(), WriterConfig { max_batch_documents: 4, ..writer_config() });
    let mut model = Model::default();

    let first = vec![segment(trace_id(epoch_of(now)), 1, now)];
    writer.try_submit(first.clone()).expect("first");
    model.apply(&first);
    wait_until("the writer holds the first batch", || gate.batches().len() == 1);
    let mut acks = Vec::new();
    let mut queued = 0;
    for index in 0..15u32 {
        let trace = trace_id(epoch_of(now) - index);
        let documents: Vec<Document> = (0..=u64::from(index % 3)).map(|id| segment(trace, id + 1, now)).collect();
        queued += documents.len() as u64;
        model.apply(&documents);
        if index % 2 == 0 {
            acks.push(writer.submit(documents).expect("submit"));
        } else {
            writer.try_submit(documents).expect("try_submit");
        }
    }
    assert_eq!(writer.stats().queued_documents.load(Ordering::Relaxed), queued + 1);

    std::thread::scope(|scope| {
        let stopping = scope.spawn(|| writer.stop());
        std::thread::sleep(Duration::from_millis(50));
        assert!(!stopping.is_finished(), "stop returned before the queue was written");
        gate.open();
        stopping.join().expect("stop");
    });
    assert_matches(harness.store(), &model, "stopped");
    for ack in acks {
        block_on(ack.wait()).expect("ack");
    }
    let batches = gate.batches();
    assert!(batches.iter().all(|size| *size <= 4), "batches of at most max_batch_documents: {batches:?}");
    assert!(batches.len() < 16, "queued documents were grouped: {batches:?}");

    let late = vec![segment(trace_id(epoch_of(now)), 1, now)];
    assert!(matches!(writer.try_submit(late.clone()), Err(Error::Stopped)));
    assert!(matches!(writer.submit(late), Err(Error::Stopped)));
    writer.stop();
    assert_stats_add_up(&writer, &gate, queued + 1, 0);
}

/// A failed write fails its acks and is counted; the writer goes on.
pub(crate) fn writer_reports_failed_writes(harness: &mut dyn Harness) {
    let now = time::now();
    let gate = Gated::new(harness.shared(), true);
    let writer = Writer::start(gate.clone(), writer_config());
    let poisoned = trace_id(epoch_of(now));
    let poison = parse(&format!(
        r#"{{"name":"poison","id":"0000000000000001","trace_id":"{poisoned}","start_time":{now},"end_time":{now}}}"#
    ));
    let result = block_on(writer.submit(vec![poison]).expect("submit").wait());
    assert!(matches!(result, Err(Error::WriteFailed(_))), "{result:?}");
    let good = vec![segment(trace_id(epoch_of(now)), 1, now)];
    block_on(writer.submit(good.clone()).expect("submit").wait()).expect("ack");
    writer.stop();
    assert_eq!(gate.durabilities(), vec![Durability::Synced, Durability::Synced]);
    let mut model = Model::default();
    model.apply(&good);
    assert_matches(harness.store(), &model, "after a failed batch");
    assert_stats_add_up(&writer, &gate, 1, 1);
}

/// While writes fail, the documents someone awaits fail their acks and are
/// not written again; the others are written again after a pause until they
/// are in, or given up after `retry_for`.
pub(crate) fn writer_retries_documents_nobody_awaits(harness: &mut dyn Harness) {
    let now = time::now();
    let gate = Gated::new(harness.shared(), true);
    let config = WriterConfig { retry_backoff: Duration::from_millis(20), ..writer_config() };
    let writer = Writer::start(gate.clone(), config.clone());
    let mut model = Model::default();

    gate.fail_next(1);
    let awaited = vec![segment(trace_id(epoch_of(now)), 1, now)];
    let result = block_on(writer.submit(awaited).expect("submit").wait());
    assert!(matches!(result, Err(Error::WriteFailed(_))), "{result:?}");

    gate.fail_next(2);
    let unawaited = vec![segment(trace_id(epoch_of(now)), 1, now), segment(trace_id(epoch_of(now)), 1, now)];
    writer.try_submit(unawaited.clone()).expect("try_submit");
    wait_until("written on the third attempt", || writer.stats().documents_written.load(Ordering::Relaxed) == 2);
    writer.stop();
    model.apply(&unawaited);
    assert_matches(harness.store(), &model, "after failed writes");
    assert_stats_add_up(&writer, &gate, 2, 1 + 2 * 2);
    assert_eq!(writer.stats().documents_retried.load(Ordering::Relaxed), 4, "two failures of two documents");
    assert_eq!(writer.stats().documents_abandoned.load(Ordering::Relaxed), 0);

    // Past retry_for, they are given up, and counted.
    let gate = Gated::new(harness.shared(), true);
    let writer = Writer::start(gate.clone(), WriterConfig { retry_for: Duration::ZERO, ..config });
    gate.fail_next(1);
    writer.try_submit(vec![segment(trace_id(epoch_of(now)), 1, now)]).expect("try_submit");
    writer.stop();
    assert_eq!(writer.stats().documents_abandoned.load(Ordering::Relaxed), 1);
    assert_stats_add_up(&writer, &gate, 0, 1);
    assert_matches(harness.store(), &model, "a document given up is not written");
}

/// The writer runs retention and counts what it removed.
pub(crate) fn writer_runs_retention(harness: &mut dyn Harness) {
    let now = time::now();
    let old = trace_id(epoch_of(now - 10.0 * DAY));
    harness.write_on_day(-10, &[segment(old, 1, now - 10.0 * DAY)]).expect("write");
    let gate = Gated::new(harness.shared(), true);
    let config = WriterConfig { retention: Some(Duration::from_secs(3 * 86_400)), ..writer_config() };
    let writer = Writer::start(gate.clone(), config);
    wait_until("retention ran", || writer.stats().removed_partitions.load(Ordering::Relaxed) > 0);
    let fresh = vec![segment(trace_id(epoch_of(now)), 1, now)];
    block_on(writer.submit(fresh.clone()).expect("submit").wait()).expect("ack");
    writer.stop();
    let mut model = Model::default();
    model.apply(&fresh);
    assert_matches(harness.store(), &model, "after retention");
    assert_stats_add_up(&writer, &gate, 1, 0);
}
