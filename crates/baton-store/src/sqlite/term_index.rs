//! The term index of the embedded store: which traces have which
//! [`Term`](baton_query::index::Term)s, so that a filtered query with a
//! [`Plan`] reads the summaries of candidate traces instead of every summary
//! in its range.
//!
//! A term is hashed (64 bits); its top byte picks one of 256 buckets. For
//! each batch that stores documents of a trace, the writer derives postings
//! (32 more bits of the hash, the trace's start, the trace key) for the terms
//! of the trace's new summary: all of them when the start moved, only the
//! new ones otherwise. So a trace's latest posting always carries its
//! current start.
//!
//! Postings gather in memory ([`Pending`]) and are flushed, 64 Ki at a time
//! by default, into each partition's `idx_YYYYMMDD (bucket, minute, batch, postings)`
//! table: one row per bucket and minute of the traces' starts. Flushing per
//! batch would write a row to every bucket at every commit, a B-tree page
//! each: the writer lost a third of its rate so (measured). Queries read
//! both. The `indexed` table keeps, per partition, the log length up to
//! which postings are flushed; after a crash, the traces with documents past
//! it are indexed again from their stored summaries.
//!
//! Postings are never removed: older ones may be stale (a term the trace
//! lost, a start that moved), so a posting only makes a trace a candidate,
//! and the query checks the candidate's current summary. The latest posting
//! read for a candidate gives its place in the page order before its summary
//! is read; a candidate whose summary starts elsewhere does not match.
//!
//! A query walks back from the newest minute of its range in windows (whole
//! minutes, growing while they hold few candidates), so matches come out in
//! page order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use baton_query::index::{Plan, terms};
use baton_query::{Matcher, TraceSummary};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Key, Partition, compare_desc, table};
use crate::Error;
use crate::store::{Cursor, SummaryPage, SummaryQuery};

/// Terms fall in 2^BUCKET_BITS buckets; a query reads the postings of its
/// terms' buckets.
const BUCKET_BITS: u32 = 8;
/// The time span of a row, seconds.
const MINUTE: f64 = 60.0;
/// The bytes of a posting: hash check, trace start, trace key.
const POSTING_BYTES: usize = 4 + 8 + 16;
/// The first window a query reads, minutes.
const FIRST_WINDOW: i64 = 4;
/// The longest window a query reads at once, minutes.
const MAX_WINDOW: i64 = 1024;
/// The candidates past which a query reads shorter windows.
const WINDOW_CANDIDATES: usize = 4096;

/// A row of the index: partition, bucket, minute.
pub(super) type RowKey = (i64, u8, i64);

/// The SQL creating the index table of `day`.
pub(super) fn create_sql(day: i64) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
             bucket INTEGER NOT NULL,
             minute INTEGER NOT NULL,
             batch INTEGER NOT NULL,
             postings BLOB NOT NULL,
             PRIMARY KEY (bucket, minute, batch)
         ) WITHOUT ROWID;",
        table("idx", day)
    )
}

fn minute_of(start: f64) -> i64 {
    (start / MINUTE).floor() as i64
}

/// A term's place in the index: its bucket and the check its postings carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hashed {
    bucket: u8,
    check: u32,
}

impl Hashed {
    fn new(hash: u64) -> Hashed {
        Hashed { bucket: (hash >> (64 - BUCKET_BITS)) as u8, check: hash as u32 }
    }
}

/// Hashes a term's canonical bytes: FNV-1a, then a finalizer so that the
/// top bits (the bucket) depend on every input bit. Stored: never change.
fn hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// What the index holds of a trace: the start its postings carry and the
/// hashes of its terms, sorted.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Indexed {
    start: f64,
    terms: Vec<u64>,
}

/// The postings one write batch adds.
#[derive(Default)]
pub(super) struct BatchPostings {
    rows: HashMap<RowKey, Vec<u8>>,
    /// The traces posted, with the start their postings carry.
    starts: Vec<([u8; 16], f64)>,
    scratch: Vec<u8>,
}

impl BatchPostings {
    /// Adds the postings of a trace's new summary, stored in partition
    /// `day`, given what the index already holds of it (`indexed`, updated).
    pub(super) fn add(&mut self, day: i64, trace: [u8; 16], summary: &TraceSummary, indexed: &mut Option<Indexed>) {
        let BatchPostings { rows, starts, scratch } = self;
        let mut hashes = Vec::new();
        terms(summary, |term| {
            scratch.clear();
            term.encode(scratch);
            hashes.push(hash(scratch));
        });
        hashes.sort_unstable();
        hashes.dedup();
        let start = summary.start_time;
        // While the start stays, the terms known are posted already.
        let known = indexed.as_ref().filter(|known| known.start.to_bits() == start.to_bits());
        let minute = minute_of(start);
        let mut posted = false;
        for term in hashes.iter().filter(|term| known.is_none_or(|known| known.terms.binary_search(term).is_err())) {
            let hashed = Hashed::new(*term);
            let row = rows.entry((day, hashed.bucket, minute)).or_default();
            row.extend_from_slice(&hashed.check.to_be_bytes());
            row.extend_from_slice(&start.to_be_bytes());
            row.extend_from_slice(&trace);
            posted = true;
        }
        if posted {
            starts.push((trace, start));
        }
        *indexed = Some(Indexed { start, terms: hashes });
    }
}

/// Postings not flushed to the index tables yet.
pub(super) struct Pending {
    rows: BTreeMap<RowKey, Vec<u8>>,
    /// Each trace's start in its latest postings here: its postings here
    /// with another start are superseded.
    latest: HashMap<[u8; 16], f64>,
    postings: usize,
    /// The postings past which they are flushed.
    limit: usize,
}

impl Pending {
    fn new(limit: usize) -> Pending {
        Pending { rows: BTreeMap::new(), latest: HashMap::new(), postings: 0, limit }
    }

    /// Forgets every posting (once flushed).
    pub(super) fn clear(&mut self) {
        *self = Pending::new(self.limit);
    }

    /// Adds the postings of a committed batch.
    pub(super) fn merge(&mut self, batch: BatchPostings) {
        for (key, postings) in batch.rows {
            self.postings += postings.len() / POSTING_BYTES;
            self.rows.entry(key).or_default().extend_from_slice(&postings);
        }
        self.latest.extend(batch.starts);
    }

    /// Whether the postings should be flushed.
    pub(super) fn is_full(&self) -> bool {
        self.postings >= self.limit
    }

    /// The rows to flush, without superseded postings.
    pub(super) fn rows(&self) -> Vec<(RowKey, Vec<u8>)> {
        self.rows.iter().map(|(key, postings)| (*key, self.current(postings))).collect()
    }

    /// Forgets the postings of removed partitions.
    pub(super) fn forget_days(&mut self, days: &[i64]) {
        self.rows.retain(|(day, _, _), _| !days.contains(day));
        self.postings = self.rows.values().map(|postings| postings.len() / POSTING_BYTES).sum();
    }

    /// The current postings of some buckets, for a reader.
    fn view(&self, buckets: &[u8]) -> BTreeMap<RowKey, Vec<u8>> {
        self.rows
            .iter()
            .filter(|((_, bucket, _), _)| buckets.contains(bucket))
            .map(|(key, postings)| (*key, self.current(postings)))
            .collect()
    }

    fn current(&self, postings: &[u8]) -> Vec<u8> {
        postings
            .chunks_exact(POSTING_BYTES)
            .filter(|posting| {
                let (start, trace) = posting_parts(posting);
                self.latest.get(&trace).is_none_or(|latest| latest.to_bits() == start.to_bits())
            })
            .flatten()
            .copied()
            .collect()
    }
}

fn posting_parts(posting: &[u8]) -> (f64, [u8; 16]) {
    (f64::from_be_bytes(posting[4..12].try_into().expect("8 bytes")), posting[12..].try_into().expect("16 bytes"))
}

/// Writes flushed rows into the index tables, each keyed by its partition's
/// new watermark (a log length, so no earlier flush used it), and records
/// the watermarks.
pub(super) fn flush(
    connection: &Connection,
    rows: Vec<(RowKey, Vec<u8>)>,
    watermarks: &BTreeMap<i64, u64>,
) -> Result<(), Error> {
    for ((day, bucket, minute), postings) in rows.into_iter().filter(|(_, postings)| !postings.is_empty()) {
        let batch = *watermarks.get(&day).ok_or_else(|| Error::Corrupt(format!("no watermark for {day}")))?;
        connection
            .prepare_cached(&format!(
                "INSERT INTO {} (bucket, minute, batch, postings) VALUES (?1, ?2, ?3, ?4)",
                table("idx", day)
            ))?
            .execute(params![bucket, minute, batch as i64, postings])?;
    }
    let mut statement = connection.prepare_cached(
        "INSERT INTO indexed (day, upto) VALUES (?1, ?2) ON CONFLICT (day) DO UPDATE SET upto = excluded.upto",
    )?;
    for (day, upto) in watermarks {
        statement.execute(params![day, *upto as i64])?;
    }
    Ok(())
}

/// The postings of the traces with documents past each partition's
/// watermark (those a crash kept from being flushed), to be flushed past
/// `limit` postings.
pub(super) fn recover(connection: &Connection, dir: &Path, days: &[i64], limit: usize) -> Result<Pending, Error> {
    let mut batch = BatchPostings::default();
    let mut traces = 0;
    for day in days {
        let upto: i64 = connection
            .query_row("SELECT upto FROM indexed WHERE day = ?1", params![day], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        if super::log_length(dir, *day) <= upto as u64 {
            continue;
        }
        let mut statement = connection.prepare(&format!(
            "SELECT trace, summary FROM {} WHERE trace IN (SELECT trace FROM {} WHERE first >= ?1)",
            table("sum", *day),
            table("seg", *day)
        ))?;
        let mut rows = statement.query(params![upto])?;
        while let Some(row) = rows.next()? {
            let trace = super::trace_column(row, 0)?;
            let summary =
                postcard::from_bytes::<TraceSummary>(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)
                    .map_err(|error| Error::Corrupt(error.to_string()))?;
            batch.add(*day, trace, &summary, &mut None);
            traces += 1;
        }
    }
    if traces > 0 {
        tracing::info!(traces, "indexed again the traces written after the last index flush");
    }
    let mut pending = Pending::new(limit);
    pending.merge(batch);
    Ok(pending)
}

/// A candidate trace: the batch of its latest posting the probe read, and
/// the start that posting holds.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    batch: i64,
    start: f64,
}

impl Candidate {
    fn later(self, other: Candidate) -> Candidate {
        if other.batch > self.batch { other } else { self }
    }
}

type Candidates = HashMap<[u8; 16], Candidate>;

/// Adds the traces of the postings with `check`, from batch `batch`.
fn add_postings(traces: &mut Candidates, postings: &[u8], check: u32, batch: i64) {
    let check = check.to_be_bytes();
    for posting in postings.chunks_exact(POSTING_BYTES).filter(|posting| posting[..4] == check) {
        let (start, trace) = posting_parts(posting);
        let found = Candidate { batch, start };
        traces.entry(trace).and_modify(|known| *known = known.later(found)).or_insert(found);
    }
}

/// A plan whose terms are hashed.
enum Probe {
    Term(Hashed),
    All(Vec<Probe>),
    Any(Vec<Probe>),
}

impl Probe {
    fn new(plan: &Plan<'_>) -> Probe {
        match plan {
            Plan::Term(term) => {
                let mut bytes = Vec::new();
                term.encode(&mut bytes);
                Probe::Term(Hashed::new(hash(&bytes)))
            }
            Plan::All(plans) => Probe::All(plans.iter().map(Probe::new).collect()),
            Plan::Any(plans) => Probe::Any(plans.iter().map(Probe::new).collect()),
        }
    }

    /// The buckets the probe reads.
    fn buckets(&self, out: &mut Vec<u8>) {
        match self {
            Probe::Term(hashed) => out.push(hashed.bucket),
            Probe::All(probes) | Probe::Any(probes) => probes.iter().for_each(|probe| probe.buckets(out)),
        }
    }

    /// The traces of partition `day` whose postings in minutes `low..=high`,
    /// flushed or `pending`, meet the probe.
    fn candidates(
        &self,
        connection: &Connection,
        pending: &BTreeMap<RowKey, Vec<u8>>,
        (day, low, high): (i64, i64, i64),
    ) -> Result<Candidates, Error> {
        match self {
            Probe::Term(hashed) => {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT batch, postings FROM {} WHERE bucket = ?1 AND minute BETWEEN ?2 AND ?3",
                    table("idx", day)
                ))?;
                let mut rows = statement.query(params![hashed.bucket, low, high])?;
                let mut traces = Candidates::new();
                while let Some(row) = rows.next()? {
                    let postings = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                    if postings.len() % POSTING_BYTES != 0 {
                        return Err(Error::Corrupt(format!("an index row of {day} is {} bytes long", postings.len())));
                    }
                    add_postings(&mut traces, postings, hashed.check, row.get(0)?);
                }
                // Pending postings are later than every flushed one.
                for postings in pending.range((day, hashed.bucket, low)..=(day, hashed.bucket, high)).map(|(_, p)| p) {
                    add_postings(&mut traces, postings, hashed.check, i64::MAX);
                }
                Ok(traces)
            }
            Probe::All(probes) => {
                let mut traces: Option<Candidates> = None;
                for probe in probes {
                    let found = probe.candidates(connection, pending, (day, low, high))?;
                    let kept: Candidates = match traces {
                        Some(known) => known
                            .into_iter()
                            .filter_map(|(trace, known)| found.get(&trace).map(|other| (trace, known.later(*other))))
                            .collect(),
                        None => found,
                    };
                    if kept.is_empty() {
                        return Ok(kept);
                    }
                    traces = Some(kept);
                }
                Ok(traces.unwrap_or_default())
            }
            Probe::Any(probes) => {
                let mut traces = Candidates::new();
                for probe in probes {
                    for (trace, found) in probe.candidates(connection, pending, (day, low, high))? {
                        traces.entry(trace).and_modify(|known| *known = known.later(found)).or_insert(found);
                    }
                }
                Ok(traces)
            }
        }
    }
}

/// One page of `query`, whose `matcher` has `plan`, read through the index:
/// as [`crate::Store::summaries`] asks. `finders` are the strings any match
/// holds verbatim. `connection` is in a read transaction that has not read
/// yet: the pending postings are copied first, so that postings flushed
/// after the copy are in the transaction's snapshot.
pub(super) fn summaries(
    connection: &Connection,
    (partitions, pending): (&[Partition], &std::sync::Mutex<Pending>),
    query: &SummaryQuery,
    (matcher, plan): (&Matcher, &Plan<'_>),
    finders: &[memchr::memmem::Finder<'_>],
    scan_budget: usize,
) -> Result<SummaryPage, Error> {
    let probe = Probe::new(plan);
    let pending = {
        let mut buckets = Vec::new();
        probe.buckets(&mut buckets);
        pending.lock().expect("pending postings poisoned").view(&buckets)
    };
    let after: Key = match query.after {
        Some(cursor) => (cursor.start_time, cursor.id.to_bytes()),
        None => (f64::INFINITY, [0xff; 16]),
    };
    let stored_from = partitions.iter().map(|partition| partition.min_start).fold(f64::INFINITY, f64::min);
    let stored_to = partitions.iter().map(|partition| partition.max_start).fold(f64::NEG_INFINITY, f64::max);
    let lowest = minute_of(query.start.max(stored_from));
    let mut high = minute_of(query.end.min(after.0).min(stored_to));
    let mut span = FIRST_WINDOW;
    let mut matched: Vec<TraceSummary> = Vec::new();
    let mut scanned = 0u64;
    let page = |summaries: Vec<TraceSummary>, scanned, next: Option<Key>| SummaryPage {
        summaries,
        scanned,
        next: next.map(|(start_time, id)| Cursor { start_time, id: baton_model::TraceId::from_bytes(id) }),
    };
    while high >= lowest {
        let low = high.saturating_sub(span - 1).max(lowest);
        let (from, to) = (low as f64 * MINUTE, (high + 1) as f64 * MINUTE);
        let mut window: Vec<(Key, i64)> = Vec::new();
        let mut read = 0;
        for partition in partitions.iter().filter(|partition| partition.max_start >= from && partition.min_start < to) {
            let candidates = probe.candidates(connection, &pending, (partition.day, low, high))?;
            read += candidates.len();
            window.extend(
                candidates
                    .into_iter()
                    .map(|(trace, candidate)| ((candidate.start, trace), partition.day))
                    .filter(|((start, _), _)| {
                        (low..=high).contains(&minute_of(*start)) && (query.start..=query.end).contains(start)
                    })
                    .filter(|(key, _)| compare_desc(after, *key).is_lt()),
            );
        }
        window.sort_by(|left, right| compare_desc(left.0, right.0));
        for ((start, trace), day) in window {
            scanned += 1;
            let mut statement = connection.prepare_cached(&format!(
                "SELECT summary FROM {} WHERE start = ?1 AND trace = ?2",
                table("sum", day)
            ))?;
            let mut rows = statement.query(params![start, &trace[..]])?;
            // No row: the trace's summary has moved to a later start since.
            let Some(row) = rows.next()? else { continue };
            let encoded = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            if !finders.iter().all(|finder| finder.find(encoded).is_some()) {
                continue;
            }
            let summary =
                postcard::from_bytes::<TraceSummary>(encoded).map_err(|error| Error::Corrupt(error.to_string()))?;
            if matcher.matches(&summary) {
                matched.push(summary);
                if matched.len() == query.limit {
                    return Ok(page(matched, scanned, Some((start, trace))));
                }
            }
        }
        high = low - 1;
        if scanned >= scan_budget as u64 && high >= lowest {
            // Every trace starting at or after `from` has been examined.
            return Ok(page(matched, scanned, Some((from, [0; 16]))));
        }
        // Postings are cheap to read and summaries dear: windows grow while
        // they hold few candidates.
        span = if read < WINDOW_CANDIDATES { span * 4 } else { span / 2 }.clamp(1, MAX_WINDOW);
    }
    Ok(page(matched, scanned, None))
}
