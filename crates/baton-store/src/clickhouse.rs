//! The ClickHouse backend, for many stateless Baton processes in front of
//! one ClickHouse server or cluster.
//!
//! The schema (`migrations/clickhouse/`, applied by [`ClickHouseStore::open`]):
//! - `segments`: each version of each document's text, by `(trace, id)`;
//! - `summaries`: each version of each trace's summary, by `(start, trace)`
//!   for time-range search, with the summary's index terms in columns a
//!   filter is pushed down to ([`pushdown`]);
//! - `trace_starts`: each trace's current summary (its start and version),
//!   by trace;
//! - `graph`: service-graph rollups, a `SummingMergeTree`;
//! - `logs`, `groups`, `sampling_rules`.
//!
//! Every table but the last two is partitioned by the UTC day a trace was
//! first received, so retention drops partitions. Rows are versioned
//! (`ReplacingMergeTree`): nothing is updated in place, a reader takes the
//! highest version.
//!
//! A write reads back, in one query each, the stored documents and the
//! current summaries of the batch's traces, recomputes each changed
//! trace's summary from all its documents, and inserts its rows: one
//! `INSERT` per table, documents first, `trace_starts` last, so that a
//! summary becomes current only once its documents and rollups are in.
//! If an insert fails, the rest wait and are sent before anything else at
//! the next write, so the rollups stay equal to the sum over current
//! summaries; only a process dying between two inserts of a batch can leave
//! them apart.
//!
//! Two Baton processes writing documents of one trace at the same moment
//! (each between the other's read and insert) each write a summary of the
//! documents they saw: the higher version wins and may lack the other's
//! documents until the trace's next write, and the rollups count both
//! partial summaries. Routing a trace's documents to one collector avoids
//! it; it is not otherwise prevented.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_model::sampling::RulePatterns;
use baton_model::{Document, InvocationLog, SegmentInfo, TraceId, time};
use baton_query::graph::{self, Element, Histogram, Stats};
use baton_query::{TraceSummary, summarize};

use self::http::Client;
use self::migrations::Target;
use self::pushdown::TermColumns;
use self::rows::{Reader, RowBinary, bytes_literal, nanos, seconds};
use crate::Error;
use crate::rollup::{BatchRollups, cover};
use crate::store::{
    Cursor, Durability, GraphPeriod, Group, MAX_TRACE_DOCUMENTS, Removed, SamplingRule, Store, StoredTrace,
    SummaryPage, SummaryQuery, TimeRange,
};

mod http;
mod migrations;
mod pushdown;
mod rows;

const SECONDS_PER_DAY: f64 = 86_400.0;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// The top bit of a complete document's version: it outranks every
/// in-progress version of the same document.
const COMPLETE: u64 = 1 << 63;
/// The first span of start times a summary query reads, nanoseconds.
const FIRST_WINDOW: u64 = 60 * NANOS_PER_SECOND;
/// The most summary rows a filtered query reads at a time.
const MAX_CHUNK: usize = 4096;
/// The tables partitioned by day, which retention drops partitions of.
const DAY_TABLES: [&str; 5] = ["segments", "summaries", "trace_starts", "graph", "logs"];

/// Where the ClickHouse backend keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// The HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// The database (letters, digits and `_`), created if missing.
    pub database: String,
    /// The user, if not ClickHouse's `default`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// The cluster (as the servers' `remote_servers` names it): tables are
    /// then created `ON CLUSTER`, each node's local `*_local` tables under
    /// `Distributed` tables sharded by trace id.
    pub cluster: Option<String>,
}

impl ClickHouseConfig {
    /// The server at `url`, database `baton`, user `default`, no cluster.
    pub fn new(url: impl Into<String>) -> ClickHouseConfig {
        ClickHouseConfig { url: url.into(), database: "baton".into(), user: None, password: None, cluster: None }
    }
}

/// Settings of the ClickHouse store.
#[derive(Clone)]
pub struct ClickHouseOptions {
    /// The most summaries one filtered `summaries` call examines; a page
    /// that stops there is continued by its `next` cursor.
    pub scan_budget: usize,
    /// The clock that decides the partition of a new trace (tests move it).
    pub clock: Arc<dyn Fn() -> f64 + Send + Sync>,
}

impl Default for ClickHouseOptions {
    fn default() -> Self {
        ClickHouseOptions { scan_budget: 250_000, clock: Arc::new(time::now) }
    }
}

/// The ClickHouse store: stateless but for the write in flight, so that any
/// number of Baton processes can share one database.
pub struct ClickHouseStore {
    client: Client,
    target: Target,
    options: ClickHouseOptions,
    /// Inserts of a batch whose write failed part-way, sent before anything
    /// else; held while a batch is written, so writes are one at a time.
    unfinished: Mutex<Vec<Insert>>,
    /// The last version handed out.
    last_version: AtomicU64,
}

/// One `INSERT` of a write batch.
struct Insert {
    statement: String,
    rows: RowBinary,
}

/// What the store holds of a trace, read back by a write.
struct Known {
    /// The partition of its rows.
    day: i64,
    /// Its documents by id: version and facts.
    documents: BTreeMap<u64, (u64, SegmentInfo)>,
}

/// A summary row's place in the page order: start (nanoseconds), trace key.
type Key = (u64, [u8; 16]);

impl ClickHouseStore {
    /// Connects to the server, creates the database if needed and applies
    /// the migrations it lacks.
    pub fn open(config: &ClickHouseConfig) -> Result<ClickHouseStore, Error> {
        ClickHouseStore::open_with(config, ClickHouseOptions::default())
    }

    /// Opens the store with explicit options.
    pub fn open_with(config: &ClickHouseConfig, options: ClickHouseOptions) -> Result<ClickHouseStore, Error> {
        let identifier = |what: &str, name: &str| {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if valid {
                Ok(())
            } else {
                Err(Error::ClickHouse(format!("{what} {name:?} is not a plain identifier (letters, digits, _)")))
            }
        };
        identifier("database", &config.database)?;
        if let Some(cluster) = &config.cluster {
            identifier("cluster", cluster)?;
        }
        let client =
            Client::new(&config.url, config.user.as_deref(), config.password.as_deref(), config.cluster.is_some());
        let target = Target { database: config.database.clone(), cluster: config.cluster.clone() };
        migrations::migrate(&client, &target)?;
        let store = ClickHouseStore {
            client,
            target,
            options,
            unfinished: Mutex::new(Vec::new()),
            last_version: AtomicU64::new(0),
        };
        // The Default rule, at a version every later change outranks.
        let mut seed = RowBinary::default();
        encode_rule(&mut seed, &SamplingRule::default_rule(), 1, false);
        store.client.insert(&store.insert_statement("sampling_rules", RULE_COLUMNS), seed.bytes())?;
        Ok(store)
    }

    /// `database.name`, the table queries and inserts name.
    fn table(&self, name: &str) -> String {
        format!("`{}`.{name}", self.target.database)
    }

    fn insert_statement(&self, table: &str, columns: &str) -> String {
        format!("INSERT INTO {} ({columns}) FORMAT RowBinary", self.table(table))
    }

    /// A version above every earlier one of this process: the time in
    /// nanoseconds (so that versions of different processes compare by
    /// when they were written), below [`COMPLETE`].
    fn next_version(&self) -> u64 {
        let now = nanos(time::now()) & !COMPLETE;
        let previous = self
            .last_version
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(now.max(last + 1)))
            .expect("always Some");
        now.max(previous + 1)
    }

    fn select(&self, sql: &str) -> Result<Vec<u8>, Error> {
        self.client.query(&format!("{sql} FORMAT RowBinary"))
    }

    /// The stored documents of `traces`, with their partition.
    fn known_documents(&self, traces: &[TraceId]) -> Result<HashMap<TraceId, Known>, Error> {
        let mut known: HashMap<TraceId, Known> = HashMap::new();
        if traces.is_empty() {
            return Ok(known);
        }
        let answer = self.select(&format!(
            "SELECT trace, id, version, day, json FROM {} WHERE trace IN ({})
             ORDER BY trace, id, version DESC LIMIT 1 BY trace, id",
            self.table("segments"),
            trace_list(traces)
        ))?;
        let mut reader = Reader::new(&answer);
        while !reader.is_empty() {
            let trace = TraceId::from_bytes(reader.fixed16()?);
            let (id, version, day, json) = (reader.u64()?, reader.u64()?, reader.date()?, reader.bytes()?);
            let entry = known.entry(trace).or_insert_with(|| Known { day, documents: BTreeMap::new() });
            match Document::parse(json) {
                Ok(document) => {
                    entry.documents.insert(id, (version, document.info));
                }
                Err(error) => tracing::warn!(%error, %trace, "stored document no longer parses"),
            }
        }
        Ok(known)
    }

    /// The current summaries of `traces` (those that have one).
    fn current_summaries(&self, traces: &[TraceId]) -> Result<HashMap<TraceId, TraceSummary>, Error> {
        let mut summaries = HashMap::new();
        if traces.is_empty() {
            return Ok(summaries);
        }
        let answer = self.select(&format!(
            "SELECT trace, summary FROM {} WHERE (start, trace) GLOBAL IN (
                 SELECT argMax(start, version), trace FROM {} WHERE trace IN ({}) GROUP BY trace)
             ORDER BY trace, version DESC LIMIT 1 BY trace",
            self.table("summaries"),
            self.table("trace_starts"),
            trace_list(traces)
        ))?;
        let mut reader = Reader::new(&answer);
        while !reader.is_empty() {
            let trace = TraceId::from_bytes(reader.fixed16()?);
            summaries.insert(trace, decode(reader.bytes()?)?);
        }
        Ok(summaries)
    }

    /// The current start and version of each of `traces` that has a summary.
    fn current_starts(
        &self,
        traces: impl IntoIterator<Item = [u8; 16]>,
    ) -> Result<HashMap<[u8; 16], (u64, u64)>, Error> {
        let traces: Vec<[u8; 16]> = traces.into_iter().collect::<HashSet<_>>().into_iter().collect();
        let mut current = HashMap::new();
        if traces.is_empty() {
            return Ok(current);
        }
        let list: Vec<String> = traces.iter().map(|trace| bytes_literal(trace)).collect();
        let answer = self.select(&format!(
            "SELECT trace, argMax(start, version), max(version) FROM {} WHERE trace IN ({}) GROUP BY trace",
            self.table("trace_starts"),
            list.join(", ")
        ))?;
        let mut reader = Reader::new(&answer);
        while !reader.is_empty() {
            let trace = reader.fixed16()?;
            current.insert(trace, (reader.u64()?, reader.u64()?));
        }
        Ok(current)
    }

    /// Reads summary rows `(start, trace, version, summary)` in page order,
    /// versions of one `(start, trace)` newest first, at most `limit`.
    /// (Deduplicated here, not with `LIMIT 1 BY`: on a `Distributed` table
    /// ClickHouse 18.16 applies that after each shard's `LIMIT`, so that a
    /// short answer would not mean the end of the rows.)
    fn summary_rows(&self, condition: &str, limit: Option<usize>) -> Result<Vec<SummaryRow>, Error> {
        let limit_clause = limit.map(|limit| format!(" LIMIT {limit}")).unwrap_or_default();
        let answer = self.select(&format!(
            "SELECT start, trace, version, summary FROM {} WHERE {condition}
             ORDER BY start DESC, trace DESC, version DESC{limit_clause}",
            self.table("summaries")
        ))?;
        let mut reader = Reader::new(&answer);
        let mut rows = Vec::new();
        while !reader.is_empty() {
            rows.push(SummaryRow {
                key: (reader.u64()?, reader.fixed16()?),
                version: reader.u64()?,
                summary: reader.bytes()?.to_vec(),
            });
        }
        // A `Distributed` table may also leave the limit to each shard.
        rows.truncate(limit.unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// The newest version of each `(start, trace)` of `rows` (in page order).
    fn newest_versions(rows: &[SummaryRow]) -> impl Iterator<Item = &SummaryRow> {
        rows.iter().enumerate().filter(|(index, row)| *index == 0 || rows[index - 1].key != row.key).map(|(_, row)| row)
    }

    /// A page of summaries by start time: windows of starts read newest
    /// first, each candidate checked against `trace_starts`.
    fn summaries_by_start(&self, query: &SummaryQuery) -> Result<SummaryPage, Error> {
        let mut page = PageBuilder::new(query, self.options.scan_budget);
        if query.start.is_nan() || query.end.is_nan() || query.start > query.end {
            return Ok(page.finish(None));
        }
        let (low, high) = (nanos(query.start), nanos(query.end));
        let pushed = query.filter.as_ref().and_then(|filter| filter.plan()).map(|plan| pushdown::condition(&plan));
        let pushed = pushed.map(|condition| format!(" AND {condition}")).unwrap_or_default();
        // Rows strictly before `upper` in page order remain.
        let mut upper: Key = match query.after {
            Some(cursor) => (nanos(cursor.start_time), cursor.id.to_bytes()),
            None => (high.saturating_add(1), [0; 16]),
        };
        let mut window = FIRST_WINDOW;
        let mut chunk = query.limit.saturating_add(1).min(MAX_CHUNK);
        loop {
            let floor = low.max(upper.0.saturating_sub(window));
            let condition = format!(
                "start >= {floor} AND start <= {high} AND (start, trace) < ({}, {}){pushed}",
                upper.0,
                bytes_literal(&upper.1)
            );
            let rows = self.summary_rows(&condition, Some(chunk))?;
            let current = self.current_starts(rows.iter().map(|row| row.key.1))?;
            for row in Self::newest_versions(&rows) {
                if let Some(done) = page.examine(row, current.get(&row.key.1).copied())? {
                    return Ok(done);
                }
            }
            if rows.len() == chunk {
                upper = rows.last().expect("a full chunk").key;
                if query.filter.is_some() {
                    chunk = (chunk * 2).min(MAX_CHUNK.max(query.limit + 1));
                }
                continue;
            }
            if floor == low {
                return Ok(page.finish(None));
            }
            // Skip to the newest row below the window, if any.
            let answer = self.select(&format!(
                "SELECT start FROM {} WHERE start >= {low} AND start < {floor}{pushed} ORDER BY start DESC LIMIT 1",
                self.table("summaries")
            ))?;
            if answer.is_empty() {
                return Ok(page.finish(None));
            }
            let newest = Reader::new(&answer).u64()?;
            upper = (newest.saturating_add(1), [0; 16]);
            window = window.saturating_mul(4);
            if let Some(done) = page.out_of_budget((floor, [0; 16])) {
                return Ok(done);
            }
        }
    }

    /// A page of summaries by the epoch in the trace id: the current starts
    /// of the traces in the id range, newest first, then their summaries.
    fn summaries_by_trace_id(&self, query: &SummaryQuery) -> Result<SummaryPage, Error> {
        let mut page = PageBuilder::new(query, self.options.scan_budget);
        let epoch = |seconds: f64| seconds.clamp(0.0, f64::from(u32::MAX)) as u32;
        let (first, last) = (query.start.ceil(), query.end.floor());
        if first.is_nan() || last.is_nan() || first > last || last < 0.0 || first > f64::from(u32::MAX) {
            return Ok(page.finish(None));
        }
        let key = |epoch: u32, fill: u8| {
            let mut key = [fill; 16];
            key[..4].copy_from_slice(&epoch.to_be_bytes());
            bytes_literal(&key)
        };
        let (low, high) = (key(epoch(first), 0), key(epoch(last), 0xff));
        let pushed = query.filter.as_ref().and_then(|filter| filter.plan()).map(|plan| pushdown::condition(&plan));
        let pushed = pushed.map(|condition| format!(" AND {condition}")).unwrap_or_default();
        let mut upper: Key = match query.after {
            Some(cursor) => (nanos(cursor.start_time), cursor.id.to_bytes()),
            None => (u64::MAX, [0xff; 16]),
        };
        let mut chunk = query.limit.saturating_add(1).min(MAX_CHUNK);
        loop {
            let answer = self.select(&format!(
                "SELECT trace, argMax(start, version) AS current_start, max(version) FROM {}
                 WHERE trace >= {low} AND trace <= {high} GROUP BY trace
                 HAVING (current_start, trace) < ({}, {}) ORDER BY current_start DESC, trace DESC LIMIT {chunk}",
                self.table("trace_starts"),
                upper.0,
                bytes_literal(&upper.1)
            ))?;
            let mut reader = Reader::new(&answer);
            // (trace, (current start, current version))
            let mut candidates: Vec<([u8; 16], (u64, u64))> = Vec::new();
            while !reader.is_empty() {
                let trace = reader.fixed16()?;
                candidates.push((trace, (reader.u64()?, reader.u64()?)));
            }
            candidates.truncate(chunk);
            let Some(&(_, (oldest, _))) = candidates.last() else { return Ok(page.finish(None)) };
            let newest = candidates[0].1.0;
            let keys: Vec<String> =
                candidates.iter().map(|(trace, (start, _))| format!("({start}, {})", bytes_literal(trace))).collect();
            let rows = self.summary_rows(
                &format!("start >= {oldest} AND start <= {newest} AND (start, trace) IN ({}){pushed}", keys.join(", ")),
                None,
            )?;
            let rows: HashMap<Key, &SummaryRow> = Self::newest_versions(&rows).map(|row| (row.key, row)).collect();
            for (trace, (start, version)) in &candidates {
                let key = (*start, *trace);
                let found = rows.get(&key);
                let examined = match found {
                    Some(row) => page.examine(row, Some((*start, *version)))?,
                    None => page.skip(key),
                };
                if let Some(done) = examined {
                    return Ok(done);
                }
            }
            if candidates.len() < chunk {
                return Ok(page.finish(None));
            }
            let (trace, (start, _)) = candidates[candidates.len() - 1];
            upper = (start, trace);
            if query.filter.is_some() {
                chunk = (chunk * 2).min(MAX_CHUNK.max(query.limit + 1));
            }
        }
    }

    /// The statement dropping one day's partition of `table`.
    fn drop_partition(&self, table: &str, day: i64) -> String {
        let (year, month, day_of_month) = time::civil_from_days(day);
        format!(
            "ALTER TABLE `{}`.{table}{}{} DROP PARTITION '{year:04}-{month:02}-{day_of_month:02}'",
            self.target.database,
            self.target.local(),
            self.target.on_cluster()
        )
    }

    /// The current version of each row of a versioned table outside
    /// partitions (`groups`, `sampling_rules`), removed ones left out:
    /// `name` and `columns`, by name.
    fn latest(&self, table: &str, columns: &[&str]) -> Result<Vec<u8>, Error> {
        let columns = columns.join(", ");
        self.select(&format!(
            "SELECT name, {columns} FROM (
                 SELECT name, deleted, {columns} FROM {} ORDER BY name, version DESC LIMIT 1 BY name)
             WHERE deleted = 0 ORDER BY name",
            self.table(table)
        ))
    }

    /// The stored sampling rules, by name.
    fn rules_by_name(&self) -> Result<BTreeMap<String, SamplingRule>, Error> {
        let answer = self.latest("sampling_rules", &RULE_COLUMNS.split(", ").skip(3).collect::<Vec<_>>())?;
        let mut reader = Reader::new(&answer);
        let mut rules = BTreeMap::new();
        while !reader.is_empty() {
            let rule = decode_rule(&mut reader)?;
            rules.insert(rule.name.clone(), rule);
        }
        Ok(rules)
    }

    fn put_rule_row(&self, rule: &SamplingRule, deleted: bool) -> Result<(), Error> {
        let mut row = RowBinary::default();
        encode_rule(&mut row, rule, self.next_version(), deleted);
        self.client.insert(&self.insert_statement("sampling_rules", RULE_COLUMNS), row.bytes())
    }
}

/// One summary row read back.
struct SummaryRow {
    key: Key,
    version: u64,
    summary: Vec<u8>,
}

/// Gathers one page of summaries as candidates are examined in page order.
struct PageBuilder<'a> {
    query: &'a SummaryQuery,
    matched: Vec<TraceSummary>,
    scanned: u64,
    budget: u64,
}

impl<'a> PageBuilder<'a> {
    fn new(query: &'a SummaryQuery, budget: usize) -> PageBuilder<'a> {
        PageBuilder { query, matched: Vec::new(), scanned: 0, budget: budget as u64 }
    }

    /// Examines a row whose trace's current `(start, version)` is `current`;
    /// returns the page once it is complete.
    fn examine(&mut self, row: &SummaryRow, current: Option<(u64, u64)>) -> Result<Option<SummaryPage>, Error> {
        self.scanned += 1;
        // Only the trace's current summary counts: a row at an older start,
        // or an older version at the current start, is stale.
        if let Some((start, version)) = current
            && start == row.key.0
            && row.version >= version
        {
            let summary: TraceSummary = decode(&row.summary)?;
            let in_range = (self.query.start..=self.query.end).contains(&summary.start_time)
                || self.query.time_range == TimeRange::TraceId;
            if in_range && self.query.filter.as_ref().is_none_or(|filter| filter.matches(&summary)) {
                self.matched.push(summary);
                if self.matched.len() > self.query.limit {
                    self.matched.truncate(self.query.limit);
                    let last = self.matched.last().expect("limit is at least 1");
                    let next = Cursor { start_time: last.start_time, id: last.id };
                    return Ok(Some(self.finish(Some(next))));
                }
            }
        }
        Ok(self.out_of_budget(row.key))
    }

    /// Counts a candidate with no summary row to read.
    fn skip(&mut self, key: Key) -> Option<SummaryPage> {
        self.scanned += 1;
        self.out_of_budget(key)
    }

    /// The page, if a filtered query has examined all it may: the next one
    /// continues after `position`.
    fn out_of_budget(&mut self, position: Key) -> Option<SummaryPage> {
        if self.query.filter.is_none() || self.scanned < self.budget {
            return None;
        }
        let next = Cursor { start_time: seconds(position.0), id: TraceId::from_bytes(position.1) };
        Some(self.finish(Some(next)))
    }

    fn finish(&mut self, next: Option<Cursor>) -> SummaryPage {
        SummaryPage { summaries: std::mem::take(&mut self.matched), scanned: self.scanned, next }
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|error| Error::Corrupt(error.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_stdvec(value).map_err(|error| Error::Corrupt(error.to_string()))
}

fn day_of(epoch_seconds: f64) -> i64 {
    (epoch_seconds / SECONDS_PER_DAY).floor() as i64
}

/// The trace keys of `traces` as a SQL list.
fn trace_list(traces: &[TraceId]) -> String {
    traces.iter().map(|trace| bytes_literal(&trace.to_bytes())).collect::<Vec<_>>().join(", ")
}

const SEGMENT_COLUMNS: &str = "day, trace, id, version, json";
const START_COLUMNS: &str = "day, trace, start, version";
const GRAPH_COLUMNS: &str = "day, span, bucket, element, total, ok, error, throttle, fault, total_response_time, \
     responseTimesMap.bucket, responseTimesMap.count, durationsMap.bucket, durationsMap.count";
const LOG_COLUMNS: &str = "day, trace, time, seq, request_id, function, lines";
const GROUP_COLUMNS: &str = "name, version, deleted, arn, filter_expression, insights_enabled, notifications_enabled";
const RULE_COLUMNS: &str = "name, version, deleted, arn, priority, fixed_rate, reservoir_size, service_name, \
     service_type, host, http_method, url_path, resource_arn, rule_version, attributes, created_at, modified_at";

fn summary_columns() -> String {
    format!("day, start, trace, version, {}, summary", pushdown::COLUMNS)
}

/// Writes a row of `sampling_rules` (in [`RULE_COLUMNS`] order).
fn encode_rule(row: &mut RowBinary, rule: &SamplingRule, version: u64, deleted: bool) {
    let patterns = &rule.patterns;
    row.row()
        .string(&rule.name)
        .u64(version)
        .bool(deleted)
        .string(&rule.arn)
        .u32(rule.priority)
        .f64(rule.fixed_rate)
        .u32(rule.reservoir_size)
        .string(&patterns.service_name)
        .string(&patterns.service_type)
        .string(&patterns.host)
        .string(&patterns.http_method)
        .string(&patterns.url_path)
        .string(&rule.resource_arn)
        .u32(rule.version)
        .string(serde_json::to_string(&rule.attributes).expect("strings serialize"))
        .u64(nanos(rule.created_at))
        .u64(nanos(rule.modified_at));
}

/// Reads a rule as [`ClickHouseStore::latest`] gives it: the name, then the
/// columns after `deleted`.
fn decode_rule(reader: &mut Reader<'_>) -> Result<SamplingRule, Error> {
    let name = reader.string()?;
    let arn = reader.string()?;
    let (priority, fixed_rate, reservoir_size) = (reader.u32()?, reader.f64()?, reader.u32()?);
    let patterns = RulePatterns {
        service_name: reader.string()?,
        service_type: reader.string()?,
        host: reader.string()?,
        http_method: reader.string()?,
        url_path: reader.string()?,
    };
    let (resource_arn, version) = (reader.string()?, reader.u32()?);
    let attributes = serde_json::from_str(&reader.string()?).map_err(|error| Error::Corrupt(error.to_string()))?;
    let (created_at, modified_at) = (seconds(reader.u64()?), seconds(reader.u64()?));
    Ok(SamplingRule {
        name,
        arn,
        priority,
        fixed_rate,
        reservoir_size,
        patterns,
        resource_arn,
        version,
        attributes,
        created_at,
        modified_at,
    })
}

/// The rows of a batch's rollup changes.
fn rollup_rows(rollups: BatchRollups) -> Result<RowBinary, Error> {
    let mut rows = RowBinary::default();
    for ((day, span, bucket, element), stats) in rollups.into_rows() {
        let histogram = |histogram: &Histogram| histogram.0.iter().map(|(bucket, count)| (*bucket, *count)).unzip();
        let (times, time_counts): (Vec<u16>, Vec<i64>) = histogram(&stats.response_times);
        let (durations, duration_counts): (Vec<u16>, Vec<i64>) = histogram(&stats.durations);
        rows.row()
            .date(day)
            .u32(span as u32)
            .i64(bucket)
            .string(encode(&element)?)
            .i64(stats.total)
            .i64(stats.ok)
            .i64(stats.error)
            .i64(stats.throttle)
            .i64(stats.fault)
            .f64(stats.total_response_time)
            .u16s(times.into_iter())
            .i64s(time_counts.into_iter())
            .u16s(durations.into_iter())
            .i64s(duration_counts.into_iter());
    }
    Ok(rows)
}

/// A histogram from `sumMap`'s keys and sums.
fn histogram(buckets: Vec<u16>, counts: Vec<i64>) -> Histogram {
    Histogram(buckets.into_iter().zip(counts).filter(|(_, count)| *count != 0).collect())
}

// === impl Store ===

impl Store for ClickHouseStore {
    fn write(&self, batch: &[Document], _durability: Durability) -> Result<(), Error> {
        let mut unfinished = self.unfinished.lock().expect("writer poisoned");
        while let Some(insert) = unfinished.first() {
            self.client.insert(&insert.statement, insert.rows.bytes())?;
            unfinished.remove(0);
        }
        let today = day_of((self.options.clock)());
        let mut traces: Vec<TraceId> = Vec::new();
        let mut seen = HashSet::new();
        for document in batch {
            if seen.insert(document.info.trace_id) {
                traces.push(document.info.trace_id);
            }
        }
        let mut known = self.known_documents(&traces)?;
        let stored: Vec<TraceId> = traces.iter().copied().filter(|trace| known.contains_key(trace)).collect();
        let previous = self.current_summaries(&stored)?;
        let mut segments = RowBinary::default();
        let mut changed: Vec<TraceId> = Vec::new();
        let mut changed_set = HashSet::new();
        for document in batch {
            let trace = document.info.trace_id;
            let entry = known.entry(trace).or_insert_with(|| Known { day: today, documents: BTreeMap::new() });
            let id = document.info.id.to_u64();
            // An in-progress document never replaces a complete one.
            if document.info.in_progress && entry.documents.get(&id).is_some_and(|(version, _)| version & COMPLETE != 0)
            {
                continue;
            }
            let version = self.next_version() | if document.info.in_progress { 0 } else { COMPLETE };
            entry.documents.insert(id, (version, document.info.clone()));
            segments.row().date(entry.day).fixed16(trace.to_bytes()).u64(id).u64(version).string(&*document.json);
            if changed_set.insert(trace) {
                changed.push(trace);
            }
        }
        let mut summaries = RowBinary::default();
        let mut starts = RowBinary::default();
        let mut rollups = BatchRollups::default();
        for trace in &changed {
            let entry = &known[trace];
            let infos: Vec<SegmentInfo> = entry.documents.values().map(|(_, info)| info.clone()).collect();
            let summary = summarize(&infos);
            let (version, start) = (self.next_version(), nanos(summary.start_time));
            summaries.row().date(entry.day).u64(start).fixed16(trace.to_bytes()).u64(version);
            TermColumns::of(&summary).encode(&mut summaries);
            summaries.string(encode(&summary)?);
            starts.row().date(entry.day).fixed16(trace.to_bytes()).u64(start).u64(version);
            if let Some(previous) = previous.get(trace) {
                rollups.add(entry.day, previous, -1);
            }
            rollups.add(entry.day, &summary, 1);
        }
        let inserts = [
            (self.insert_statement("segments", SEGMENT_COLUMNS), segments),
            (self.insert_statement("summaries", &summary_columns()), summaries),
            (self.insert_statement("graph", GRAPH_COLUMNS), rollup_rows(rollups)?),
            (self.insert_statement("trace_starts", START_COLUMNS), starts),
        ];
        let mut inserts: Vec<Insert> = inserts
            .into_iter()
            .filter(|(_, rows)| rows.rows() > 0)
            .map(|(statement, rows)| Insert { statement, rows })
            .collect();
        while !inserts.is_empty() {
            if let Err(error) = self.client.insert(&inserts[0].statement, inserts[0].rows.bytes()) {
                // The failed insert may have landed all the same (a lost
                // answer): it and the rest go before any other batch, so
                // that the rollups follow the summaries that became current.
                *unfinished = inserts;
                return Err(error);
            }
            inserts.remove(0);
        }
        Ok(())
    }

    fn traces(&self, ids: &[TraceId]) -> Result<Vec<StoredTrace>, Error> {
        let mut seen = HashSet::new();
        let ids: Vec<TraceId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self.select(&format!(
            "SELECT trace, json FROM (
                 SELECT trace, id, json FROM {} WHERE trace IN ({})
                 ORDER BY trace, id, version DESC LIMIT 1 BY trace, id)
             LIMIT {} BY trace",
            self.table("segments"),
            trace_list(&ids),
            MAX_TRACE_DOCUMENTS + 1
        ))?;
        let mut reader = Reader::new(&answer);
        let mut found: HashMap<TraceId, Vec<String>> = HashMap::new();
        while !reader.is_empty() {
            let trace = TraceId::from_bytes(reader.fixed16()?);
            found.entry(trace).or_default().push(reader.string()?);
        }
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let mut documents = found.remove(&id)?;
                let limit_exceeded = documents.len() > MAX_TRACE_DOCUMENTS;
                documents.truncate(MAX_TRACE_DOCUMENTS);
                Some(StoredTrace { id, documents, limit_exceeded })
            })
            .collect())
    }

    fn summaries(&self, query: &SummaryQuery) -> Result<SummaryPage, Error> {
        match query.time_range {
            TimeRange::Event => self.summaries_by_start(query),
            TimeRange::TraceId => self.summaries_by_trace_id(query),
        }
    }

    fn graph(&self, range: (f64, f64), period: Option<u64>) -> Result<Vec<GraphPeriod>, Error> {
        let periods = graph::periods(range, period);
        let (first, last) = (periods[0].0 as i64, periods[periods.len() - 1].1 as i64);
        let (period_of, condition) = if periods.len() == 1 {
            let runs: Vec<String> = cover(first, last)
                .into_iter()
                .map(|(span, low, high)| format!("(span = {span} AND bucket BETWEEN {low} AND {high})"))
                .collect();
            ("toInt64(0)".to_owned(), runs.join(" OR "))
        } else {
            let step = (periods[0].1 - periods[0].0) as i64;
            (
                format!("intDiv(bucket * 60 - {first}, {step})"),
                format!("span = 60 AND bucket >= {} AND bucket < {}", first / 60, last / 60),
            )
        };
        let answer = self.select(&format!(
            "SELECT {period_of} AS period, element, sum(total), sum(ok), sum(error), sum(throttle), sum(fault),
                 sum(total_response_time), sumMap(responseTimesMap.bucket, responseTimesMap.count),
                 sumMap(durationsMap.bucket, durationsMap.count)
             FROM {} WHERE {condition} GROUP BY period, element",
            self.table("graph")
        ))?;
        let mut elements: Vec<BTreeMap<Element, Stats>> = vec![BTreeMap::new(); periods.len()];
        let mut reader = Reader::new(&answer);
        while !reader.is_empty() {
            let period = reader.i64()?;
            let element: Element = decode(reader.bytes()?)?;
            let stats = Stats {
                total: reader.i64()?,
                ok: reader.i64()?,
                error: reader.i64()?,
                throttle: reader.i64()?,
                fault: reader.i64()?,
                total_response_time: reader.f64()?,
                response_times: histogram(reader.u16s()?, reader.i64s()?),
                durations: histogram(reader.u16s()?, reader.i64s()?),
            };
            let slot = usize::try_from(period).ok().and_then(|period| elements.get_mut(period));
            let slot = slot.ok_or_else(|| Error::Corrupt(format!("graph period {period} out of range")))?;
            slot.entry(element).or_default().merge(&stats, 1);
        }
        Ok(periods
            .into_iter()
            .zip(elements)
            .map(|((start, end), mut elements)| {
                elements.retain(|_, stats| !stats.is_empty());
                GraphPeriod { start, end, elements }
            })
            .collect())
    }

    fn remove_before(&self, cutoff: f64) -> Result<Removed, Error> {
        // Whole days before the cutoff's day.
        let first_kept = day_of(cutoff);
        let kept = format!("toDate('{}')", {
            let (year, month, day) = time::civil_from_days(first_kept.max(0));
            format!("{year:04}-{month:02}-{day:02}")
        });
        let selects: Vec<String> = DAY_TABLES
            .iter()
            .map(|table| format!("SELECT DISTINCT day FROM {} WHERE day < {kept}", self.table(table)))
            .collect();
        let answer =
            self.select(&format!("SELECT DISTINCT day FROM ({}) ORDER BY day", selects.join(" UNION ALL ")))?;
        let mut days = Vec::new();
        let mut reader = Reader::new(&answer);
        while !reader.is_empty() {
            days.push(reader.date()?);
        }
        for day in &days {
            for table in DAY_TABLES {
                self.client.query(&self.drop_partition(table, *day))?;
            }
        }
        Ok(Removed { partitions: days.len() as u64 })
    }

    fn put_group(&self, group: &Group) -> Result<(), Error> {
        let mut row = RowBinary::default();
        row.row()
            .string(&group.name)
            .u64(self.next_version())
            .bool(false)
            .string(&group.arn)
            .nullable_string(group.filter_expression.as_deref())
            .bool(group.insights_enabled)
            .bool(group.notifications_enabled);
        self.client.insert(&self.insert_statement("groups", GROUP_COLUMNS), row.bytes())
    }

    fn groups(&self) -> Result<Vec<Group>, Error> {
        let answer =
            self.latest("groups", &["arn", "filter_expression", "insights_enabled", "notifications_enabled"])?;
        let mut reader = Reader::new(&answer);
        let mut groups = Vec::new();
        while !reader.is_empty() {
            groups.push(Group {
                name: reader.string()?,
                arn: reader.string()?,
                filter_expression: reader.nullable_string()?,
                insights_enabled: reader.bool()?,
                notifications_enabled: reader.bool()?,
            });
        }
        Ok(groups)
    }

    fn remove_group(&self, name: &str) -> Result<bool, Error> {
        let Some(group) = self.groups()?.into_iter().find(|group| group.name == name) else { return Ok(false) };
        let mut row = RowBinary::default();
        row.row()
            .string(&group.name)
            .u64(self.next_version())
            .bool(true)
            .string(&group.arn)
            .nullable_string(None)
            .bool(false)
            .bool(false);
        self.client.insert(&self.insert_statement("groups", GROUP_COLUMNS), row.bytes())?;
        Ok(true)
    }

    fn put_sampling_rule(&self, rule: &SamplingRule) -> Result<(), Error> {
        let stored = self.rules_by_name()?.remove(&rule.name);
        let rule = if rule.name == SamplingRule::DEFAULT_NAME {
            SamplingRule {
                fixed_rate: rule.fixed_rate,
                reservoir_size: rule.reservoir_size,
                modified_at: rule.modified_at,
                ..stored.unwrap_or_else(SamplingRule::default_rule)
            }
        } else {
            SamplingRule { created_at: stored.map_or(rule.created_at, |stored| stored.created_at), ..rule.clone() }
        };
        self.put_rule_row(&rule, false)
    }

    fn sampling_rules(&self) -> Result<Vec<SamplingRule>, Error> {
        let mut rules: Vec<SamplingRule> = self.rules_by_name()?.into_values().collect();
        rules.sort_by(|left, right| left.priority.cmp(&right.priority).then_with(|| left.name.cmp(&right.name)));
        Ok(rules)
    }

    fn remove_sampling_rule(&self, name: &str) -> Result<bool, Error> {
        if name == SamplingRule::DEFAULT_NAME {
            return Ok(false);
        }
        let Some(rule) = self.rules_by_name()?.remove(name) else { return Ok(false) };
        self.put_rule_row(&rule, true)?;
        Ok(true)
    }

    fn put_logs(&self, logs: &[InvocationLog]) -> Result<(), Error> {
        let mut rows = RowBinary::default();
        for log in logs {
            rows.row()
                .date(day_of(log.time))
                .fixed16(log.trace_id.to_bytes())
                .u64(nanos(log.time))
                .u64(self.next_version())
                .string(&log.request_id)
                .string(&log.function)
                .strings(&log.lines);
        }
        if rows.rows() == 0 {
            return Ok(());
        }
        self.client.insert(&self.insert_statement("logs", LOG_COLUMNS), rows.bytes())
    }

    fn logs(&self, trace: TraceId) -> Result<Vec<InvocationLog>, Error> {
        let answer = self.select(&format!(
            "SELECT time, request_id, function, lines FROM {} WHERE trace = {} ORDER BY time, seq",
            self.table("logs"),
            bytes_literal(&trace.to_bytes())
        ))?;
        let mut reader = Reader::new(&answer);
        let mut logs = Vec::new();
        while !reader.is_empty() {
            logs.push(InvocationLog {
                trace_id: trace,
                time: seconds(reader.u64()?),
                request_id: reader.string()?,
                function: reader.string()?,
                lines: reader.strings()?,
            });
        }
        Ok(logs)
    }
}

#[cfg(test)]
mod tests;
