//! The embedded backend: one SQLite database and one document log per day
//! in the data directory.
//!
//! Data is partitioned by the UTC day a trace was first received: each day
//! has a `docs_YYYYMMDD.log` file (the documents' text, each after its
//! length, appended once and never rewritten), a `seg_YYYYMMDD` table (where
//! each document is in the log) and a `sum_YYYYMMDD` table (trace
//! summaries), and every document of a trace goes to the partition of its
//! first document. Keeping the text out of SQLite writes it once,
//! sequentially, instead of through a B-tree, its write-ahead log and a
//! checkpoint: about a third more documents a second.
//!
//! A batch only appends to the logs (synced when its sender awaits it) and
//! updates the writer's memory. A trace's rows (places, summary, term
//! postings, rollups) are written later, *settled*, for all unsettled traces
//! at once in trace order: once their documents pass [`SETTLE_DOCUMENTS`]
//! or the oldest is [`SETTLE_AFTER`] old, and before any read. Trace keys
//! begin with the epoch second, so a settle fills B-tree pages with the
//! traces of the same seconds instead of rewriting a page per trace: with
//! random trace ids, writing rows at every batch lost 29 % of documents at
//! 100k a second, settling loses none (`benches/ingest.rs`). Summaries,
//! the largest rows, are keyed by `(start, trace)`: new traces append to
//! the end of their table instead of landing among the earlier traces of
//! the same second, whose pages each settle rewrote (perf at 150k
//! documents a second: WAL writes 2.6 % of the samples, were 8 %;
//! checkpoints 3 %, were 7 %; and ordered scans read the table in order);
//! a small index on `trace` finds one by id. The `settled`
//! table keeps each log's length at the last settle; opening the store
//! reads the logs past it again, so a crash loses no document a batch wrote,
//! and cuts off a document a crash left half-appended.
//!
//! Retention drops whole partitions. A trace is looked up from the day
//! before its id's epoch on; the few first received earlier (a sender's
//! clock ahead of ours, ids not made by an X-Ray SDK) are recorded with
//! their day in the `strays` table. The write connection keeps the recent
//! traces' [`SegmentInfo`]s in memory (always those of unsettled traces), so
//! that a summary is recomputed from facts already parsed rather than from
//! stored text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton_model::sampling::RulePatterns;
use baton_model::{Document, InvocationLog, SegmentId, SegmentInfo, TraceId, time};
use baton_query::{TraceSummary, summarize};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use self::term_index::{BatchPostings, Indexed, Pending, RowKey};
use crate::Error;
use crate::rollup::BatchRollups;
use crate::store::{
    Cursor, Durability, GraphPeriod, Group, MAX_TRACE_DOCUMENTS, Removed, SamplingRule, Store, StoredTrace,
    SummaryPage, SummaryQuery, TimeRange,
};

mod rollup;
mod term_index;

const SECONDS_PER_DAY: f64 = 86_400.0;
const DATABASE_FILE: &str = "baton.sqlite3";
/// The on-disk layout; a store of another version is refused, not misread.
/// A new table outside partitions (`logs`, `sampling_rules`) keeps the
/// version: older code of the same version ignores it, and opening creates
/// it in an older store.
const SCHEMA_VERSION: i64 = 8;
/// How long after its first unsettled document a trace's rows are written
/// at the latest (sooner before a read, or past [`SETTLE_DOCUMENTS`]).
const SETTLE_AFTER: Duration = Duration::from_secs(1);
/// The unsettled documents past which the writer writes their traces' rows.
const SETTLE_DOCUMENTS: usize = 16_384;
/// The unsettled documents past which a batch is refused until their rows
/// are written (while settling fails, memory stays bounded).
const MAX_UNSETTLED_DOCUMENTS: usize = 4 * SETTLE_DOCUMENTS;
/// The bytes before each document in a log: its length, little-endian.
const FRAME_BYTES: usize = 4;
/// Where a document's text is in its log: `(offset, length)`.
type Place = (u64, u64);
/// The most summary rows a filtered query reads from each partition at a time.
const FILTER_CHUNK: usize = 2048;

/// A summary's place in the page order: `(start, trace key)`.
type Key = (f64, [u8; 16]);

/// Whether `earlier` comes before `later` in the descending page order.
fn descending(earlier: Key, later: Key) -> bool {
    compare_desc(earlier, later) == std::cmp::Ordering::Less
}

fn compare_desc(left: Key, right: Key) -> std::cmp::Ordering {
    right.0.total_cmp(&left.0).then(right.1.cmp(&left.1))
}

/// Appends to `rows` up to `limit` summary rows of a partition that match
/// the query's range and come after `after`; returns how many.
fn read_summary_rows(
    connection: &Connection,
    day: i64,
    query: &SummaryQuery,
    after: Key,
    limit: usize,
    rows: &mut Vec<(Key, Vec<u8>)>,
) -> Result<usize, Error> {
    // One upper bound on `start` (SQLite seeks the index with only one):
    // the range's end or the cursor, whichever is lower; the row value
    // settles ties on `start`.
    let summaries = table("sum", day);
    let (source, condition, low, high): (String, &str, rusqlite::types::Value, rusqlite::types::Value) =
        match query.time_range {
            TimeRange::Event => {
                (summaries, "start >= ?1 AND start <= ?2", query.start.into(), query.end.min(after.0).into())
            }
            TimeRange::TraceId => {
                let epoch = |seconds: f64, fill: u8| {
                    let epoch = seconds.clamp(0.0, f64::from(u32::MAX)) as u32;
                    let mut key = [fill; 16];
                    key[..4].copy_from_slice(&epoch.to_be_bytes());
                    key.to_vec()
                };
                // The rows of a few seconds of ids, found through the trace
                // index rather than by walking every start before the cursor.
                (
                    format!("{summaries} INDEXED BY {summaries}_trace"),
                    "trace >= ?1 AND trace <= ?2 AND start <= ?3",
                    epoch(query.start.ceil(), 0).into(),
                    epoch(query.end.floor(), 0xff).into(),
                )
            }
        };
    let mut statement = connection.prepare_cached(&format!(
        "SELECT start, trace, summary FROM {source}
         WHERE {condition} AND (start, trace) < (?3, ?4)
         ORDER BY start DESC, trace DESC LIMIT ?5"
    ))?;
    let mut found = statement.query(params![low, high, after.0, &after.1[..], limit as i64])?;
    let mut read = 0;
    while let Some(row) = found.next()? {
        rows.push(((row.get(0)?, trace_column(row, 1)?), row.get(2)?));
        read += 1;
    }
    Ok(read)
}
/// How often the background thread moves the write-ahead log into the
/// database. Checkpoints there keep them off the writer's commit path.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// The write-ahead log length (in 8 KB pages) past which it is rewound.
const RESTART_AFTER_FRAMES: i64 = 4096;

/// Settings of the embedded store.
#[derive(Clone)]
pub struct SqliteOptions {
    /// How many documents' facts the writer keeps in memory for recent
    /// traces; older traces are read back from disk when they grow again.
    pub cached_documents: usize,
    /// The most summaries one filtered `summaries` call examines; a page
    /// that stops there is continued by its `next` cursor.
    pub scan_budget: usize,
    /// How many term index postings the writer keeps in memory before it
    /// writes them to disk, in bulk.
    pub pending_postings: usize,
    /// The clock that decides a trace's partition (tests move it).
    pub clock: Arc<dyn Fn() -> f64 + Send + Sync>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            cached_documents: 50_000,
            scan_budget: 250_000,
            pending_postings: 65_536,
            clock: Arc::new(time::now),
        }
    }
}

/// The embedded store: SQLite in WAL mode, synchronous commits.
pub struct SqliteStore {
    dir: PathBuf,
    path: PathBuf,
    writer: Mutex<WriteSide>,
    readers: Mutex<Vec<Connection>>,
    partitions: RwLock<Vec<Partition>>,
    /// Term index postings not flushed yet; readers see them too.
    pending: Mutex<Pending>,
    /// How many traces have documents in the log whose rows are not
    /// written; a reader has them written first.
    unsettled: AtomicUsize,
    clock: Arc<dyn Fn() -> f64 + Send + Sync>,
    scan_budget: usize,
    checkpointer: Option<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

/// One day of data, with the ranges its summaries cover (for pruning).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Partition {
    day: i64,
    min_start: f64,
    max_start: f64,
    min_epoch: i64,
    max_epoch: i64,
}

struct WriteSide {
    connection: Connection,
    logs: HashMap<i64, DocumentLog>,
    cache: TraceCache,
    statements: HashMap<i64, PartitionStatements>,
    durability: Durability,
    /// The traces with unsettled documents (in the log, their rows not
    /// written), each once.
    unsettled: Vec<TraceId>,
    /// The unsettled documents, over all traces.
    unsettled_documents: usize,
    /// When the first of them was written.
    unsettled_since: Option<Instant>,
}

impl WriteSide {
    /// Makes the next commits as durable as `durability`: in WAL mode FULL
    /// syncs the log at every commit; NORMAL leaves that to the checkpoint
    /// thread.
    fn set_durability(&mut self, durability: Durability) -> Result<(), Error> {
        if self.durability != durability {
            let level = if durability == Durability::Synced { "FULL" } else { "NORMAL" };
            self.connection.pragma_update(None, "synchronous", level)?;
            self.durability = durability;
        }
        Ok(())
    }

    /// The log of partition `day`, opened for appending.
    fn log(&mut self, dir: &Path, day: i64) -> Result<&mut DocumentLog, Error> {
        Ok(match self.logs.entry(day) {
            std::collections::hash_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(DocumentLog::open(&log_path(dir, day))?),
        })
    }

    /// Writes the appended texts to their logs, synced when asked.
    fn flush_logs(&mut self, durability: Durability) -> Result<(), Error> {
        for log in self.logs.values_mut().filter(|log| !log.pending.is_empty()) {
            log.flush(durability == Durability::Synced)
                .map_err(|error| Error::WriteFailed(format!("document log: {error}")))?;
        }
        Ok(())
    }

    /// Forgets the texts of a batch that failed (some may be in a log
    /// already, where nothing points to them).
    fn discard_pending(&mut self) {
        for log in self.logs.values_mut() {
            log.pending.clear();
        }
    }

    /// Applies a document, whose text is at `place` in its trace's log, to
    /// its cached trace; a stored document leaves the trace unsettled.
    fn record(&mut self, info: &SegmentInfo, (offset, length): Place) {
        let trace = info.trace_id;
        let WriteSide { cache, unsettled, unsettled_documents, unsettled_since, .. } = self;
        let entry = cache.get_mut(trace).expect("loaded before it is recorded");
        // The summary the store holds, which the rollups take out when the
        // rows are written again.
        let previous = (entry.unsettled.is_none() && !entry.documents.is_empty()).then(|| summarize(&entry.documents));
        let before = entry.documents.len();
        if !entry.merge(info) {
            return;
        }
        let added = entry.documents.len() - before;
        let rows = entry.unsettled.get_or_insert_with(|| {
            unsettled.push(trace);
            unsettled_since.get_or_insert_with(Instant::now);
            Unsettled { first: offset, places: Vec::new(), previous }
        });
        push_place(&mut rows.places, info.id, offset, length);
        cache.documents += added;
        *unsettled_documents += 1;
    }

    /// Whether the unsettled traces' rows are due.
    fn settle_due(&self) -> bool {
        self.unsettled_documents >= SETTLE_DOCUMENTS
            || self.unsettled_since.is_some_and(|since| since.elapsed() >= SETTLE_AFTER)
    }
}

/// The SQL of one partition's hot statements, built once.
struct PartitionStatements {
    insert_places: String,
    remove_summary: String,
    insert_summary: String,
}

impl PartitionStatements {
    fn new(day: i64) -> Self {
        PartitionStatements {
            insert_places: format!("INSERT INTO {} (trace, first, places) VALUES (?1, ?2, ?3)", table("seg", day)),
            remove_summary: format!("DELETE FROM {} WHERE trace = ?1", table("sum", day)),
            insert_summary: format!("INSERT INTO {} (start, trace, summary) VALUES (?1, ?2, ?3)", table("sum", day)),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, Error> {
        SqliteStore::open_with(dir, SqliteOptions::default())
    }

    /// Opens the store in `dir` with explicit options.
    pub fn open_with(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|error| Error::Corrupt(format!("cannot create {}: {error}", dir.display())))?;
        let path = dir.join(DATABASE_FILE);
        let connection = open_connection(&path)?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let empty: bool = connection.query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |row| row.get(0))?;
        if !empty && version != SCHEMA_VERSION {
            return Err(Error::Corrupt(format!(
                "{} has layout version {version}, this Baton reads version {SCHEMA_VERSION}: use a new --data-dir",
                path.display()
            )));
        }
        // auto_vacuum must be chosen before the first table exists.
        connection.execute_batch(
            "PRAGMA page_size = 8192;
             PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA cache_size = -16000;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS partitions (
                 day INTEGER PRIMARY KEY,
                 min_start REAL NOT NULL,
                 max_start REAL NOT NULL,
                 min_epoch INTEGER NOT NULL,
                 max_epoch INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS strays (
                 trace BLOB NOT NULL PRIMARY KEY,
                 day INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS indexed (
                 day INTEGER PRIMARY KEY,
                 upto INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS settled (
                 day INTEGER PRIMARY KEY,
                 upto INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS groups (
                 name TEXT NOT NULL PRIMARY KEY,
                 arn TEXT NOT NULL UNIQUE,
                 filter_expression TEXT,
                 insights_enabled INTEGER NOT NULL,
                 notifications_enabled INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS logs (
                 trace BLOB NOT NULL,
                 time REAL NOT NULL,
                 request_id TEXT NOT NULL,
                 function TEXT NOT NULL,
                 lines TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace, time);
             CREATE INDEX IF NOT EXISTS logs_by_time ON logs (time);
             CREATE TABLE IF NOT EXISTS sampling_rules (
                 name TEXT NOT NULL PRIMARY KEY,
                 arn TEXT NOT NULL,
                 priority INTEGER NOT NULL,
                 fixed_rate REAL NOT NULL,
                 reservoir_size INTEGER NOT NULL,
                 service_name TEXT NOT NULL,
                 service_type TEXT NOT NULL,
                 host TEXT NOT NULL,
                 http_method TEXT NOT NULL,
                 url_path TEXT NOT NULL,
                 resource_arn TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 attributes TEXT NOT NULL,
                 created_at REAL NOT NULL,
                 modified_at REAL NOT NULL
             );",
        )?;
        insert_sampling_rule(&connection, &SamplingRule::default_rule(), KEEP_STORED_RULE)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let partitions = {
            let mut statement = connection
                .prepare("SELECT day, min_start, max_start, min_epoch, max_epoch FROM partitions ORDER BY day")?;
            statement
                .query_map([], |row| {
                    Ok(Partition {
                        day: row.get(0)?,
                        min_start: row.get(1)?,
                        max_start: row.get(2)?,
                        min_epoch: row.get(3)?,
                        max_epoch: row.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?
        };
        let days: Vec<i64> = partitions.iter().map(|partition| partition.day).collect();
        let pending = term_index::recover(&connection, dir, &days, options.pending_postings)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let checkpointer = spawn_checkpointer(
            open_connection(&path)?,
            dir.to_owned(),
            Arc::clone(&options.clock),
            Arc::clone(&stopping),
        )?;
        let store = SqliteStore {
            dir: dir.to_owned(),
            path,
            writer: Mutex::new(WriteSide {
                connection,
                logs: HashMap::new(),
                cache: TraceCache::new(options.cached_documents),
                statements: HashMap::new(),
                durability: Durability::Synced,
                unsettled: Vec::new(),
                unsettled_documents: 0,
                unsettled_since: None,
            }),
            readers: Mutex::new(Vec::new()),
            partitions: RwLock::new(partitions),
            pending: Mutex::new(pending),
            unsettled: AtomicUsize::new(0),
            clock: options.clock,
            scan_budget: options.scan_budget,
            checkpointer: Some(checkpointer),
            stopping,
        };
        store.replay()?;
        Ok(store)
    }

    fn with_reader<T>(&self, read: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let pooled = self.readers.lock().expect("reader pool poisoned").pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = open_connection(&self.path)?;
                // Not memory-mapped: every page a read touched would stay in
                // the server's resident memory (200 MB after 10k trace
                // lookups in 1M segments), and a map covers only the start
                // of a large database. Reading pages costs an indexed
                // query's scattered summary lookups a third more time.
                connection
                    .execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -8000;")?;
                connection
            }
        };
        let result = read(&connection);
        self.readers.lock().expect("reader pool poisoned").push(connection);
        result
    }

    fn partitions(&self) -> Vec<Partition> {
        self.partitions.read().expect("partition list poisoned").clone()
    }

    fn today(&self) -> i64 {
        day_of((self.clock)())
    }

    /// Runs `change` in one transaction, committed durably: the changes of
    /// the small tables outside partitions (groups, sampling rules).
    fn synced_change<T>(
        &self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut side = self.writer.lock().expect("writer poisoned");
        side.set_durability(Durability::Synced)?;
        let transaction = side.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = change(&transaction)?;
        transaction.commit()?;
        Ok(changed)
    }

    /// Puts `trace` in the writer's cache, read back from disk if stored; a
    /// trace not stored yet goes to partition `day`.
    fn load(
        &self,
        connection: &Connection,
        cache: &mut TraceCache,
        trace: TraceId,
        day: i64,
        known: &[Partition],
    ) -> Result<(), Error> {
        if !cache.contains(trace) {
            let (day, infos) = find_trace(connection, &self.dir, trace, known)?.unwrap_or((day, Vec::new()));
            cache.insert(trace, day, infos);
        }
        Ok(())
    }

    /// Writes the rows of every unsettled trace in one transaction: where
    /// its documents are, its summary, its term postings, its rollups. In
    /// trace order, so that traces of the same seconds, whose keys begin
    /// with the same epoch, fill B-tree pages together instead of each
    /// rewriting a page of its own.
    fn settle(&self, side: &mut WriteSide) -> Result<(), Error> {
        if side.unsettled.is_empty() {
            return Ok(());
        }
        // The log is the durable copy: these rows can be written again from it.
        side.set_durability(Durability::Buffered)?;
        let WriteSide { connection, logs, cache, statements, unsettled, .. } = side;
        let mut traces = std::mem::take(unsettled);
        traces.sort_unstable_by_key(|trace| trace_key(*trace));
        let mut known = self.partitions();
        let mut postings = BatchPostings::default();
        let mut rollups = BatchRollups::default();
        let flushing = self.pending.lock().expect("pending postings poisoned").is_full();
        // IMMEDIATE takes the write lock up front, waiting out a checkpoint
        // restart; a deferred transaction would start as a read and fail to
        // upgrade once the log was rewound underneath it.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = (|| -> Result<(), Error> {
            for trace in &traces {
                let key = trace_key(*trace);
                let entry = cache.traces.get_mut(trace).expect("unsettled traces stay cached");
                let (day, rows) = (entry.day, entry.unsettled.as_ref().expect("listed as unsettled"));
                if !known.iter().any(|partition| partition.day == day) {
                    create_partition(&transaction, day)?;
                    known.push(Partition {
                        day,
                        min_start: f64::INFINITY,
                        max_start: f64::NEG_INFINITY,
                        min_epoch: i64::MAX,
                        max_epoch: i64::MIN,
                    });
                    known.sort_by_key(|partition| partition.day);
                }
                if is_stray(*trace, day) {
                    transaction
                        .prepare_cached("INSERT OR REPLACE INTO strays (trace, day) VALUES (?1, ?2)")?
                        .execute(params![&key[..], day])?;
                }
                let sql = statements.entry(day).or_insert_with(|| PartitionStatements::new(day));
                transaction.prepare_cached(&sql.insert_places)?.execute(params![
                    &key[..],
                    rows.first as i64,
                    rows.places
                ])?;
                let summary = summarize(&entry.documents);
                if let Some(previous) = &rows.previous {
                    rollups.add(day, previous, -1);
                }
                rollups.add(day, &summary, 1);
                postings.add(day, key, &summary, &mut entry.indexed);
                let encoded = postcard::to_stdvec(&summary).map_err(|error| Error::Corrupt(error.to_string()))?;
                if rows.previous.is_some() {
                    transaction.prepare_cached(&sql.remove_summary)?.execute(params![&key[..]])?;
                }
                transaction.prepare_cached(&sql.insert_summary)?.execute(params![
                    summary.start_time,
                    &key[..],
                    encoded
                ])?;
                let partition = known.iter_mut().find(|partition| partition.day == day).expect("created above");
                let epoch = i64::from(trace.epoch());
                partition.min_start = partition.min_start.min(summary.start_time);
                partition.max_start = partition.max_start.max(summary.start_time);
                partition.min_epoch = partition.min_epoch.min(epoch);
                partition.max_epoch = partition.max_epoch.max(epoch);
            }
            rollup::write(std::mem::take(&mut rollups), &transaction)?;
            let mut statement = transaction.prepare_cached(
                "INSERT INTO partitions (day, min_start, max_start, min_epoch, max_epoch) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (day) DO UPDATE SET min_start = excluded.min_start, max_start = excluded.max_start,
                     min_epoch = excluded.min_epoch, max_epoch = excluded.max_epoch",
            )?;
            for partition in known.iter().filter(|partition| partition.min_start.is_finite()) {
                statement.execute(params![
                    partition.day,
                    partition.min_start,
                    partition.max_start,
                    partition.min_epoch,
                    partition.max_epoch
                ])?;
            }
            // Every document in the logs now has its rows: a replay after a
            // crash starts at their current ends.
            let mut ends: BTreeMap<i64, u64> = logs.iter().map(|(day, log)| (*day, log.length)).collect();
            for trace in &traces {
                let day = cache.traces[trace].day;
                ends.entry(day).or_insert_with(|| log_length(&self.dir, day));
            }
            let mut statement = transaction.prepare_cached(
                "INSERT INTO settled (day, upto) VALUES (?1, ?2) ON CONFLICT (day) DO UPDATE SET upto = excluded.upto",
            )?;
            for (day, upto) in &ends {
                statement.execute(params![day, *upto as i64])?;
            }
            if flushing {
                // Every posting so far, this settle's too, goes to disk, up
                // to the logs' ends: after a crash, only traces written past
                // them are indexed again.
                let mut pending = self.pending.lock().expect("pending postings poisoned");
                pending.merge(std::mem::take(&mut postings));
                let rows = pending.rows();
                drop(pending);
                let watermarks = watermarks(&self.dir, logs, &rows);
                term_index::flush(&transaction, rows, &watermarks)?;
            }
            Ok(())
        })();
        match result.and_then(|()| transaction.commit().map_err(Error::from)) {
            Ok(()) => {
                for trace in &traces {
                    cache.traces.get_mut(trace).expect("unsettled traces stay cached").unsettled = None;
                }
                side.unsettled_documents = 0;
                side.unsettled_since = None;
                let mut pending = self.pending.lock().expect("pending postings poisoned");
                if flushing {
                    pending.clear();
                }
                pending.merge(postings);
                drop(pending);
                *self.partitions.write().expect("partition list poisoned") =
                    known.into_iter().filter(|partition| partition.min_start.is_finite()).collect();
                self.unsettled.store(0, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                // The index may not hold what the cache says it posted.
                for trace in &traces {
                    cache.traces.get_mut(trace).expect("unsettled traces stay cached").indexed = None;
                }
                *unsettled = traces;
                Err(error)
            }
        }
    }

    /// Has the unsettled traces' rows written, so that a read sees every
    /// document written before it.
    fn settle_for_read(&self) -> Result<(), Error> {
        if self.unsettled.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        self.settle(&mut self.writer.lock().expect("writer poisoned"))
    }

    /// Writes the rows of the documents a crash left without: those of each
    /// log past its `settled` watermark.
    fn replay(&self) -> Result<(), Error> {
        let mut guard = self.writer.lock().expect("writer poisoned");
        let side = &mut *guard;
        let known = self.partitions();
        let mut replayed = 0u64;
        for day in log_days(&self.dir)? {
            let upto: i64 = side
                .connection
                .query_row("SELECT upto FROM settled WHERE day = ?1", params![day], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            for (place, text) in read_log_tail(&log_path(&self.dir, day), upto as u64)? {
                match Document::parse(text.as_bytes()) {
                    Ok(document) => {
                        self.load(&side.connection, &mut side.cache, document.info.trace_id, day, &known)?;
                        side.record(&document.info, place);
                        replayed += 1;
                    }
                    Err(error) => tracing::warn!(%error, day, offset = place.0, "logged document no longer parses"),
                }
            }
        }
        if replayed > 0 {
            tracing::info!(replayed, "documents read back from the logs, whose rows a crash kept from being written");
        }
        self.settle(side)
    }

    /// Writes the pending term index postings, so that the next start does
    /// not derive them again.
    fn flush_pending(&self) -> Result<(), Error> {
        let mut side = self.writer.lock().expect("writer poisoned");
        self.settle(&mut side)?;
        let mut pending = self.pending.lock().expect("pending postings poisoned");
        let rows = pending.rows();
        if rows.is_empty() {
            return Ok(());
        }
        let WriteSide { connection, logs, .. } = &mut *side;
        let watermarks = watermarks(&self.dir, logs, &rows);
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        term_index::flush(&transaction, rows, &watermarks)?;
        transaction.commit()?;
        pending.clear();
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(error) = self.flush_pending() {
            tracing::warn!(%error, "term index postings not flushed; they are rebuilt at the next start");
        }
        self.stopping.store(true, Ordering::Release);
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.thread().unpark();
            let _ = checkpointer.join();
        }
    }
}

/// On a stored sampling rule of the same name: keep it (seeding the Default rule).
const KEEP_STORED_RULE: &str = "DO NOTHING";
/// On a stored sampling rule of the same name: replace all but when it was created.
const REPLACE_STORED_RULE: &str = "DO UPDATE SET arn = excluded.arn, priority = excluded.priority,
    fixed_rate = excluded.fixed_rate, reservoir_size = excluded.reservoir_size,
    service_name = excluded.service_name, service_type = excluded.service_type, host = excluded.host,
    http_method = excluded.http_method, url_path = excluded.url_path, resource_arn = excluded.resource_arn,
    version = excluded.version, attributes = excluded.attributes, modified_at = excluded.modified_at";

/// Writes `rule`, doing `on_conflict` to a stored rule of the same name.
fn insert_sampling_rule(connection: &Connection, rule: &SamplingRule, on_conflict: &str) -> Result<(), Error> {
    let attributes = serde_json::to_string(&rule.attributes).expect("strings serialize");
    let patterns = &rule.patterns;
    connection.execute(
        &format!(
            "INSERT INTO sampling_rules (name, arn, priority, fixed_rate, reservoir_size, service_name, service_type,
                 host, http_method, url_path, resource_arn, version, attributes, created_at, modified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (name) {on_conflict}"
        ),
        params![
            rule.name,
            rule.arn,
            rule.priority,
            rule.fixed_rate,
            rule.reservoir_size,
            patterns.service_name,
            patterns.service_type,
            patterns.host,
            patterns.http_method,
            patterns.url_path,
            rule.resource_arn,
            rule.version,
            attributes,
            rule.created_at,
            rule.modified_at
        ],
    )?;
    Ok(())
}

/// Opens a connection whose statements keep their plan whatever is bound:
/// otherwise a bound `LIMIT` makes SQLite re-prepare the statement at every
/// use (10 % of the writer's time, measured).
fn open_connection(path: &Path) -> Result<Connection, Error> {
    let connection = Connection::open(path)?;
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(connection)
}

fn spawn_checkpointer(
    connection: Connection,
    dir: PathBuf,
    clock: Arc<dyn Fn() -> f64 + Send + Sync>,
    stopping: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, Error> {
    connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
    std::thread::Builder::new()
        .name("baton-checkpoint".into())
        .spawn(move || {
            // (busy, frames in the log, frames checkpointed)
            let checkpoint = |mode: &str| {
                connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(1))
            };
            while !stopping.load(Ordering::Acquire) {
                // Parked rather than asleep, so that dropping the store wakes it.
                std::thread::park_timeout(CHECKPOINT_INTERVAL);
                // Under steady writes a passive checkpoint never catches up
                // with the writer, so the log would grow for ever; past a
                // bound, a restart briefly holds the writer and rewinds it.
                let checkpointed = checkpoint("PASSIVE")
                    .and_then(|frames| if frames > RESTART_AFTER_FRAMES { checkpoint("RESTART") } else { Ok(frames) });
                if let Err(error) = checkpointed {
                    tracing::warn!(%error, "wal checkpoint failed");
                }
                // Buffered batches leave their log bytes to this thread too.
                let today = day_of(clock());
                for day in [today - 1, today] {
                    if let Ok(log) = File::open(log_path(&dir, day))
                        && let Err(error) = log.sync_data()
                    {
                        tracing::warn!(%error, "document log sync failed");
                    }
                }
            }
            let _ = checkpoint("TRUNCATE");
        })
        .map_err(|error| Error::Corrupt(format!("cannot start the checkpoint thread: {error}")))
}

fn day_of(epoch_seconds: f64) -> i64 {
    (epoch_seconds / SECONDS_PER_DAY).floor() as i64
}

fn table(prefix: &str, day: i64) -> String {
    let (year, month, day_of_month) = time::civil_from_days(day);
    format!("{prefix}_{year:04}{month:02}{day_of_month:02}")
}

fn trace_key(id: TraceId) -> [u8; 16] {
    id.to_bytes()
}

/// The trace key in column `index` of a row.
fn trace_column(row: &rusqlite::Row<'_>, index: usize) -> Result<[u8; 16], Error> {
    let bytes = row.get_ref(index)?.as_blob().map_err(rusqlite::Error::from)?;
    bytes.try_into().map_err(|_| Error::Corrupt(format!("a trace key is {} bytes long", bytes.len())))
}

/// Each partition's log length before the current batch, the watermark
/// up to which a flush of `rows` indexes it.
fn watermarks(dir: &Path, logs: &HashMap<i64, DocumentLog>, rows: &[(RowKey, Vec<u8>)]) -> BTreeMap<i64, u64> {
    let mut watermarks: BTreeMap<i64, u64> = logs.iter().map(|(day, log)| (*day, log.length)).collect();
    for ((day, _, _), _) in rows {
        watermarks.entry(*day).or_insert_with(|| log_length(dir, *day));
    }
    watermarks
}

/// The partitions that may hold `trace`, newest first. A trace is first
/// received no earlier than the day before the epoch in its id, unless the
/// sender's clock was ahead of ours or the id was not made by an X-Ray SDK:
/// such a trace is a stray, whose day the `strays` table keeps.
fn candidate_days(trace: TraceId, partitions: &[Partition], stray: Option<i64>) -> impl Iterator<Item = i64> + '_ {
    let earliest = epoch_day(trace) - 1;
    let guessed =
        partitions.iter().rev().map(|partition| partition.day).filter(move |day| stray.is_none() && *day >= earliest);
    stray.into_iter().chain(guessed)
}

fn epoch_day(trace: TraceId) -> i64 {
    i64::from(trace.epoch()) / 86_400
}

/// Whether a trace first received on `day` is a stray.
fn is_stray(trace: TraceId, day: i64) -> bool {
    day < epoch_day(trace) - 1
}

/// The day of a stray trace, looked up only when some partition is old
/// enough to hold one.
fn stray_day(connection: &Connection, trace: TraceId, partitions: &[Partition]) -> Result<Option<i64>, Error> {
    if !partitions.first().is_some_and(|oldest| is_stray(trace, oldest.day)) {
        return Ok(None);
    }
    let mut statement = connection.prepare_cached("SELECT day FROM strays WHERE trace = ?1")?;
    Ok(statement.query_row(params![&trace_key(trace)[..]], |row| row.get(0)).optional()?)
}

fn create_partition(connection: &Connection, day: i64) -> Result<(), Error> {
    let (segments, summaries) = (table("seg", day), table("sum", day));
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {segments} (
             trace BLOB NOT NULL,
             first INTEGER NOT NULL,
             places BLOB NOT NULL,
             PRIMARY KEY (trace, first)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS {summaries} (
             start REAL NOT NULL,
             trace BLOB NOT NULL,
             summary BLOB NOT NULL,
             PRIMARY KEY (start, trace)
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS {summaries}_trace ON {summaries} (trace);
         {}
         {}",
        term_index::create_sql(day),
        rollup::create_sql(day)
    ))?;
    Ok(())
}

fn log_path(dir: &Path, day: i64) -> PathBuf {
    dir.join(format!("{}.log", table("docs", day)))
}

/// The length of a partition's document log on disk (0 if it has none).
fn log_length(dir: &Path, day: i64) -> u64 {
    std::fs::metadata(log_path(dir, day)).map_or(0, |metadata| metadata.len())
}

/// The bytes of one place in a `places` blob: id, offset, length.
const PLACE_BYTES: usize = 8 + 8 + 4;

/// Adds where a document is in the log to a `places` blob.
fn push_place(places: &mut Vec<u8>, id: SegmentId, offset: u64, length: u64) {
    places.extend_from_slice(&id.to_u64().to_be_bytes());
    places.extend_from_slice(&offset.to_be_bytes());
    places.extend_from_slice(&(length as u32).to_be_bytes());
}

/// Where the documents of `trace` are in the log of `day`, `(offset,
/// length)` in id order, at most `limit`. A trace has one row of places per
/// batch that wrote to it; a later row's place for an id replaces an
/// earlier one (the writer stores a document only when it replaces).
fn document_places(connection: &Connection, day: i64, trace: TraceId, limit: usize) -> Result<Vec<(i64, i64)>, Error> {
    let mut statement = connection
        .prepare_cached(&format!("SELECT places FROM {} WHERE trace = ?1 ORDER BY first", table("seg", day)))?;
    let mut by_id: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    let mut rows = statement.query(params![&trace_key(trace)[..]])?;
    while let Some(row) = rows.next()? {
        let places = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        if places.len() % PLACE_BYTES != 0 {
            return Err(Error::Corrupt(format!("places of {trace} are {} bytes long", places.len())));
        }
        for place in places.chunks_exact(PLACE_BYTES) {
            let number = |range: std::ops::Range<usize>| place[range].iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
            by_id.insert(number(0..8), (number(8..16) as i64, number(16..20) as i64));
        }
    }
    Ok(by_id.into_values().take(limit).collect())
}

/// Reads the documents at `places` from the log of `day`.
fn read_documents(dir: &Path, day: i64, trace: TraceId, places: Vec<(i64, i64)>) -> Result<Vec<String>, Error> {
    if places.is_empty() {
        return Ok(Vec::new());
    }
    let path = log_path(dir, day);
    let log = File::open(&path).map_err(|error| Error::Corrupt(format!("cannot open {}: {error}", path.display())))?;
    let mut documents = Vec::with_capacity(places.len());
    for (offset, length) in places {
        let mut bytes = vec![0; length as usize];
        let read = log.read_exact_at(&mut bytes, offset as u64);
        match read
            .map_err(|error| error.to_string())
            .and_then(|()| String::from_utf8(bytes).map_err(|error| error.to_string()))
        {
            Ok(text) => documents.push(text),
            // Only a power loss after a buffered (UDP) batch can leave this.
            Err(error) => tracing::warn!(%error, %trace, offset, "document log entry unreadable; skipped"),
        }
    }
    Ok(documents)
}

/// The days that have a document log in `dir`.
fn log_days(dir: &Path) -> Result<Vec<i64>, Error> {
    let listed =
        std::fs::read_dir(dir).map_err(|error| Error::Corrupt(format!("cannot list {}: {error}", dir.display())))?;
    let mut days = Vec::new();
    for entry in listed {
        let name =
            entry.map_err(|error| Error::Corrupt(format!("cannot list {}: {error}", dir.display())))?.file_name();
        let date = name.to_str().and_then(|name| name.strip_prefix("docs_")?.strip_suffix(".log"));
        if let Some((year, month, day)) = date
            .filter(|date| date.len() == 8)
            .and_then(|date| Some((date[..4].parse().ok()?, date[4..6].parse().ok()?, date[6..].parse().ok()?)))
        {
            days.push(time::days_from_civil(year, month, day));
        }
    }
    days.sort_unstable();
    Ok(days)
}

/// The documents of a log from offset `from` on, each with the place of its
/// text. A document cut short by a crash ends the log, and is cut off it so
/// that the next one is appended where it began.
fn read_log_tail(path: &Path, from: u64) -> Result<Vec<(Place, String)>, Error> {
    let failed = |error: std::io::Error| Error::Corrupt(format!("cannot read {}: {error}", path.display()));
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(failed)?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(from)).and_then(|_| file.read_to_end(&mut bytes)).map_err(failed)?;
    let mut documents = Vec::new();
    let mut at = 0;
    while let Some(frame) = bytes.get(at..at + FRAME_BYTES) {
        let length = u32::from_le_bytes(frame.try_into().expect("4 bytes")) as usize;
        let Some(text) = bytes.get(at + FRAME_BYTES..at + FRAME_BYTES + length) else { break };
        let offset = from + (at + FRAME_BYTES) as u64;
        match std::str::from_utf8(text) {
            Ok(text) => documents.push(((offset, length as u64), text.to_owned())),
            Err(error) => tracing::warn!(%error, offset, "logged document is not UTF-8"),
        }
        at += FRAME_BYTES + length;
    }
    if at < bytes.len() {
        tracing::warn!(path = %path.display(), bytes = bytes.len() - at, "cutting off a document a crash left unfinished");
        file.set_len(from + at as u64).map_err(failed)?;
    }
    Ok(documents)
}

/// A partition's document log, open for appending by the writer.
struct DocumentLog {
    file: File,
    /// Where the next byte written to the file lands.
    length: u64,
    /// Bytes of the current batch, written to the file before it commits.
    pending: Vec<u8>,
}

impl DocumentLog {
    fn open(path: &Path) -> Result<DocumentLog, Error> {
        let opened = OpenOptions::new().create(true).append(true).open(path).and_then(|file| {
            let length = file.metadata()?.len();
            Ok(DocumentLog { file, length, pending: Vec::new() })
        });
        opened.map_err(|error| Error::Corrupt(format!("cannot open {}: {error}", path.display())))
    }

    /// Adds a document to the batch, after its length; returns the place
    /// of its text.
    fn append(&mut self, text: &str) -> Place {
        self.pending.extend_from_slice(&(text.len() as u32).to_le_bytes());
        let offset = self.length + self.pending.len() as u64;
        self.pending.extend_from_slice(text.as_bytes());
        (offset, text.len() as u64)
    }

    /// Writes the batch's bytes, syncing them to disk when asked.
    fn flush(&mut self, sync: bool) -> std::io::Result<()> {
        let written =
            self.file.write_all(&self.pending).and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        match &written {
            Ok(()) => self.length += self.pending.len() as u64,
            // The file may hold part of the batch: later offsets continue
            // from wherever it really ends.
            Err(_) => self.length = self.file.metadata().map_or(self.length, |metadata| metadata.len()),
        }
        self.pending.clear();
        written
    }
}

// === impl Store ===

impl Store for SqliteStore {
    fn write(&self, batch: &[Document], durability: Durability) -> Result<(), Error> {
        let today = self.today();
        let mut guard = self.writer.lock().expect("writer poisoned");
        let side = &mut *guard;
        if side.unsettled_documents >= MAX_UNSETTLED_DOCUMENTS {
            self.settle(side)?;
        }
        side.cache.make_room();
        // Read under the lock, so that a concurrent remove_before is seen.
        let known = self.partitions();
        if batch.iter().any(|document| !side.cache.contains(document.info.trace_id)) {
            // One read transaction for the batch's lookups: each statement
            // would otherwise take and drop the database's read lock.
            let reading = side.connection.unchecked_transaction()?;
            for document in batch {
                self.load(&reading, &mut side.cache, document.info.trace_id, today, &known)?;
            }
            reading.commit()?;
        }
        // The text goes first, and is the only write a batch waits for: once
        // in the log, a document survives a crash even before its trace's
        // rows are written, as the log is replayed at open.
        let mut places = Vec::with_capacity(batch.len());
        let appended = (|| -> Result<(), Error> {
            for document in batch {
                let day = side.cache.day(document.info.trace_id).expect("loaded above");
                places.push(side.log(&self.dir, day)?.append(&document.json));
            }
            side.flush_logs(durability)
        })();
        if let Err(error) = appended {
            side.discard_pending();
            return Err(error);
        }
        for (document, place) in batch.iter().zip(places) {
            side.record(&document.info, place);
        }
        self.unsettled.store(side.unsettled.len(), Ordering::Release);
        if side.settle_due()
            && let Err(error) = self.settle(side)
        {
            tracing::warn!(%error, "trace rows not written; they are written again before the next read or batch");
        }
        Ok(())
    }

    fn traces(&self, ids: &[TraceId]) -> Result<Vec<StoredTrace>, Error> {
        self.settle_for_read()?;
        let partitions = self.partitions();
        self.with_reader(|connection| {
            let mut seen = HashSet::new();
            let mut traces = Vec::new();
            for id in ids.iter().filter(|id| seen.insert(**id)) {
                let stray = stray_day(connection, *id, &partitions)?;
                for day in candidate_days(*id, &partitions, stray) {
                    let mut places = document_places(connection, day, *id, MAX_TRACE_DOCUMENTS + 1)?;
                    let limit_exceeded = places.len() > MAX_TRACE_DOCUMENTS;
                    places.truncate(MAX_TRACE_DOCUMENTS);
                    let documents = read_documents(&self.dir, day, *id, places)?;
                    if documents.is_empty() {
                        continue;
                    }
                    traces.push(StoredTrace { id: *id, documents, limit_exceeded });
                    break;
                }
            }
            Ok(traces)
        })
    }

    fn summaries(&self, query: &SummaryQuery) -> Result<SummaryPage, Error> {
        self.settle_for_read()?;
        let partitions: Vec<Partition> = self
            .partitions()
            .into_iter()
            .filter(|partition| match query.time_range {
                TimeRange::Event => partition.max_start >= query.start && partition.min_start <= query.end,
                TimeRange::TraceId => {
                    partition.max_epoch as f64 >= query.start.floor() && partition.min_epoch as f64 <= query.end
                }
            })
            .collect();
        let (after_start, after_id) = match query.after {
            Some(cursor) => (cursor.start_time, cursor.id.to_bytes()),
            None => (f64::INFINITY, [0xff; 16]),
        };
        // Rows are read in chunks from every partition and merged; a
        // filtered query reads ever larger chunks, as most rows may not match.
        let mut chunk = query.limit.saturating_add(1);
        let finders: Vec<memchr::memmem::Finder<'_>> = query
            .filter
            .iter()
            .flat_map(|filter| filter.required_strings())
            .map(|needle| memchr::memmem::Finder::new(needle.as_bytes()))
            .collect();
        let plan = query.filter.as_ref().filter(|_| query.time_range == TimeRange::Event).and_then(|filter| {
            let plan = filter.plan()?;
            Some((filter, plan))
        });
        if let Some((filter, plan)) = plan {
            return self.with_reader(|connection| {
                // One read transaction for the page's many lookups: each
                // statement would otherwise take and drop the read locks.
                let transaction = connection.unchecked_transaction()?;
                let page = term_index::summaries(
                    &transaction,
                    (&partitions, &self.pending),
                    query,
                    (filter, &plan),
                    &finders,
                    self.scan_budget,
                )?;
                transaction.commit()?;
                Ok(page)
            });
        }
        self.with_reader(|connection| {
            let mut matched: Vec<(Key, TraceSummary)> = Vec::new();
            let mut scanned = 0u64;
            let mut position: Key = (after_start, after_id);
            loop {
                let mut rows: Vec<(Key, Vec<u8>)> = Vec::new();
                // Past the last key of a partition that filled its chunk, that
                // partition may hold rows not read yet: the merge stops there.
                let mut horizon: Option<Key> = None;
                for partition in partitions.iter().rev() {
                    let read = read_summary_rows(connection, partition.day, query, position, chunk, &mut rows)?;
                    if read == chunk {
                        let last = rows.last().expect("a full chunk").0;
                        horizon =
                            Some(horizon.map_or(last, |known| if descending(known, last) { known } else { last }));
                    }
                }
                rows.sort_by(|left, right| compare_desc(left.0, right.0));
                let mut budget_left = true;
                for (key, encoded) in rows {
                    if horizon.is_some_and(|horizon| descending(horizon, key)) {
                        break;
                    }
                    scanned += 1;
                    position = key;
                    // Postcard keeps strings verbatim: a summary without one
                    // the filter requires cannot match, and is not decoded.
                    if !finders.iter().all(|finder| finder.find(&encoded).is_some()) {
                        continue;
                    }
                    let summary = postcard::from_bytes::<TraceSummary>(&encoded)
                        .map_err(|error| Error::Corrupt(error.to_string()))?;
                    if query.filter.as_ref().is_none_or(|filter| filter.matches(&summary)) {
                        matched.push((key, summary));
                        if matched.len() > query.limit {
                            break;
                        }
                    }
                    if scanned >= self.scan_budget as u64 {
                        budget_left = false;
                        break;
                    }
                }
                if matched.len() > query.limit {
                    matched.truncate(query.limit);
                    let (start_time, id) = matched.last().expect("limit is at least 1").0;
                    let next = Some(Cursor { start_time, id: TraceId::from_bytes(id) });
                    return Ok(SummaryPage { summaries: matched.into_iter().map(|(_, s)| s).collect(), scanned, next });
                }
                if horizon.is_none() || !budget_left {
                    // Every row read (no next), or the scan budget spent: the
                    // next page continues after the last row examined.
                    let next = (!budget_left || horizon.is_some())
                        .then(|| Cursor { start_time: position.0, id: TraceId::from_bytes(position.1) });
                    return Ok(SummaryPage { summaries: matched.into_iter().map(|(_, s)| s).collect(), scanned, next });
                }
                chunk = chunk.saturating_mul(2).clamp(1, FILTER_CHUNK.max(query.limit + 1));
            }
        })
    }

    fn graph(&self, range: (f64, f64), period: Option<u64>) -> Result<Vec<GraphPeriod>, Error> {
        self.settle_for_read()?;
        let partitions = self.partitions();
        self.with_reader(|connection| {
            let transaction = connection.unchecked_transaction()?;
            let periods = rollup::read(&transaction, &partitions, range, period)?;
            transaction.commit()?;
            Ok(periods)
        })
    }

    fn put_group(&self, group: &Group) -> Result<(), Error> {
        self.synced_change(|transaction| {
            transaction.execute(
                "INSERT OR REPLACE INTO groups (name, arn, filter_expression, insights_enabled, notifications_enabled)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    group.name,
                    group.arn,
                    group.filter_expression,
                    group.insights_enabled,
                    group.notifications_enabled
                ],
            )?;
            Ok(())
        })
    }

    fn groups(&self) -> Result<Vec<Group>, Error> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT name, arn, filter_expression, insights_enabled, notifications_enabled FROM groups ORDER BY name",
            )?;
            let groups = statement
                .query_map([], |row| {
                    Ok(Group {
                        name: row.get(0)?,
                        arn: row.get(1)?,
                        filter_expression: row.get(2)?,
                        insights_enabled: row.get(3)?,
                        notifications_enabled: row.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(groups)
        })
    }

    fn remove_group(&self, name: &str) -> Result<bool, Error> {
        self.synced_change(|transaction| {
            Ok(transaction.execute("DELETE FROM groups WHERE name = ?1", params![name])? > 0)
        })
    }

    fn put_sampling_rule(&self, rule: &SamplingRule) -> Result<(), Error> {
        self.synced_change(|transaction| {
            if rule.name == SamplingRule::DEFAULT_NAME {
                transaction.execute(
                    "UPDATE sampling_rules SET fixed_rate = ?2, reservoir_size = ?3, modified_at = ?4 WHERE name = ?1",
                    params![rule.name, rule.fixed_rate, rule.reservoir_size, rule.modified_at],
                )?;
                Ok(())
            } else {
                insert_sampling_rule(transaction, rule, REPLACE_STORED_RULE)
            }
        })
    }

    fn sampling_rules(&self) -> Result<Vec<SamplingRule>, Error> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT name, arn, priority, fixed_rate, reservoir_size, service_name, service_type, host,
                        http_method, url_path, resource_arn, version, attributes, created_at, modified_at
                 FROM sampling_rules ORDER BY priority, name",
            )?;
            let rules = statement
                .query_map([], |row| {
                    let attributes: String = row.get(12)?;
                    let attributes = serde_json::from_str(&attributes).map_err(|error| {
                        rusqlite::Error::FromSqlConversionFailure(12, rusqlite::types::Type::Text, Box::new(error))
                    })?;
                    Ok(SamplingRule {
                        name: row.get(0)?,
                        arn: row.get(1)?,
                        priority: row.get(2)?,
                        fixed_rate: row.get(3)?,
                        reservoir_size: row.get(4)?,
                        patterns: RulePatterns {
                            service_name: row.get(5)?,
                            service_type: row.get(6)?,
                            host: row.get(7)?,
                            http_method: row.get(8)?,
                            url_path: row.get(9)?,
                        },
                        resource_arn: row.get(10)?,
                        version: row.get(11)?,
                        attributes,
                        created_at: row.get(13)?,
                        modified_at: row.get(14)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rules)
        })
    }

    fn remove_sampling_rule(&self, name: &str) -> Result<bool, Error> {
        self.synced_change(|transaction| {
            let removed = transaction.execute(
                "DELETE FROM sampling_rules WHERE name = ?1 AND name != ?2",
                params![name, SamplingRule::DEFAULT_NAME],
            )?;
            Ok(removed > 0)
        })
    }

    fn put_logs(&self, logs: &[InvocationLog]) -> Result<(), Error> {
        let mut side = self.writer.lock().expect("writer poisoned");
        side.set_durability(Durability::Buffered)?;
        let transaction = side.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO logs (trace, time, request_id, function, lines) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for log in logs {
                let lines = serde_json::to_string(&log.lines).expect("strings serialize");
                insert.execute(params![log.trace_id.to_bytes(), log.time, log.request_id, log.function, lines])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn logs(&self, trace: TraceId) -> Result<Vec<InvocationLog>, Error> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT time, request_id, function, lines FROM logs WHERE trace = ?1 ORDER BY time, rowid",
            )?;
            let logs = statement
                .query_map(params![trace.to_bytes()], |row| {
                    let lines: String = row.get(3)?;
                    let lines = serde_json::from_str(&lines).map_err(|error| {
                        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(error))
                    })?;
                    Ok(InvocationLog {
                        trace_id: trace,
                        time: row.get(0)?,
                        request_id: row.get(1)?,
                        function: row.get(2)?,
                        lines,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(logs)
        })
    }

    fn remove_before(&self, cutoff: f64) -> Result<Removed, Error> {
        let mut side = self.writer.lock().expect("writer poisoned");
        // Partitions are known once their traces' rows are written.
        self.settle(&mut side)?;
        // Logs go by whole days too, as the partitions do.
        let day_start = (cutoff / SECONDS_PER_DAY).floor() * SECONDS_PER_DAY;
        side.connection.execute("DELETE FROM logs WHERE time < ?1", params![day_start])?;
        let expired: Vec<i64> = self
            .partitions()
            .iter()
            .map(|partition| partition.day)
            .filter(|day| (*day + 1) as f64 * SECONDS_PER_DAY <= cutoff)
            .collect();
        if expired.is_empty() {
            return Ok(Removed::default());
        }
        let transaction = side.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for day in &expired {
            transaction.execute_batch(&format!(
                "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};
                 DELETE FROM partitions WHERE day = {day}; DELETE FROM strays WHERE day = {day};
                 DELETE FROM indexed WHERE day = {day};",
                table("seg", *day),
                table("sum", *day),
                table("idx", *day),
                table("graph", *day)
            ))?;
        }
        transaction.commit()?;
        side.connection.execute_batch("PRAGMA incremental_vacuum;")?;
        side.cache.forget_days(&expired);
        self.pending.lock().expect("pending postings poisoned").forget_days(&expired);
        for day in &expired {
            side.logs.remove(day);
            match std::fs::remove_file(log_path(&self.dir, *day)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%error, day, "cannot remove an expired document log");
                }
                _ => {}
            }
        }
        self.partitions.write().expect("partition list poisoned").retain(|partition| !expired.contains(&partition.day));
        Ok(Removed { partitions: expired.len() as u64 })
    }
}

/// Looks a trace up in the partitions that may hold it: its day and facts.
fn find_trace(
    connection: &Connection,
    dir: &Path,
    trace: TraceId,
    partitions: &[Partition],
) -> Result<Option<(i64, Vec<SegmentInfo>)>, Error> {
    let stray = stray_day(connection, trace, partitions)?;
    for day in candidate_days(trace, partitions, stray) {
        let places = document_places(connection, day, trace, usize::MAX >> 1)?;
        if places.is_empty() {
            continue;
        }
        let infos = read_documents(dir, day, trace, places)?
            .iter()
            .filter_map(|text| match Document::parse(text.as_bytes()) {
                Ok(document) => Some(document.info),
                Err(error) => {
                    tracing::warn!(%error, %trace, "stored document no longer parses");
                    None
                }
            })
            .collect();
        return Ok(Some((day, infos)));
    }
    Ok(None)
}

// === the writer's cache of recent traces ===

struct CachedTrace {
    day: i64,
    documents: Vec<SegmentInfo>,
    touched: u64,
    /// What the term index holds of the trace, when known.
    indexed: Option<Indexed>,
    /// Its documents in the log whose rows are not written yet, if any.
    unsettled: Option<Unsettled>,
}

/// A trace's documents in the log whose rows are not written yet.
struct Unsettled {
    /// The log offset of the first.
    first: u64,
    /// Where each is in the log (a `places` blob).
    places: Vec<u8>,
    /// The summary the store holds of the trace, if any.
    previous: Option<TraceSummary>,
}

impl CachedTrace {
    /// Applies the replacement rule; returns whether the document is stored.
    fn merge(&mut self, info: &SegmentInfo) -> bool {
        match self.documents.iter().position(|known| known.id == info.id) {
            Some(index) if info.in_progress && !self.documents[index].in_progress => false,
            Some(index) => {
                self.documents[index] = info.clone();
                true
            }
            None => {
                self.documents.push(info.clone());
                true
            }
        }
    }
}

struct TraceCache {
    traces: HashMap<TraceId, CachedTrace>,
    /// The documents held, over all traces.
    documents: usize,
    clock: u64,
    max_documents: usize,
}

impl TraceCache {
    fn new(max_documents: usize) -> Self {
        TraceCache { traces: HashMap::new(), documents: 0, clock: 0, max_documents }
    }

    fn contains(&self, trace: TraceId) -> bool {
        self.traces.contains_key(&trace)
    }

    fn insert(&mut self, trace: TraceId, day: i64, documents: Vec<SegmentInfo>) {
        self.clock += 1;
        self.documents += documents.len();
        if let Some(replaced) = self
            .traces
            .insert(trace, CachedTrace { day, documents, touched: self.clock, indexed: None, unsettled: None })
        {
            self.documents -= replaced.documents.len();
        }
    }

    /// The partition of a cached trace.
    fn day(&self, trace: TraceId) -> Option<i64> {
        self.traces.get(&trace).map(|entry| entry.day)
    }

    fn get_mut(&mut self, trace: TraceId) -> Option<&mut CachedTrace> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.traces.get_mut(&trace)?;
        entry.touched = clock;
        Some(entry)
    }

    fn forget_days(&mut self, days: &[i64]) {
        self.traces.retain(|_, entry| !days.contains(&entry.day));
        self.recount();
    }

    fn recount(&mut self) {
        self.documents = self.traces.values().map(|entry| entry.documents.len()).sum();
    }

    /// Evicts the least recently touched half of the settled traces once
    /// the cache holds more documents than allowed.
    fn make_room(&mut self) {
        if self.documents <= self.max_documents {
            return;
        }
        let mut ages: Vec<u64> = self.traces.values().map(|entry| entry.touched).collect();
        let middle = ages.len() / 2;
        let (_, median, _) = ages.select_nth_unstable(middle);
        let median = *median;
        self.traces.retain(|_, entry| entry.touched > median || entry.unsettled.is_some());
        self.recount();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::conformance::{self, ClockHarness, Harness};
    use baton_query::{Matcher, filter};

    /// A store in a temporary directory, with a clock tests can move by days.
    fn harness(options: SqliteOptions) -> Box<dyn Harness> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().to_owned();
        ClockHarness::boxed(dir, move |clock| {
            SqliteStore::open_with(&path, SqliteOptions { clock, ..options.clone() }).expect("open the store")
        })
    }

    conformance::suite!(harness(SqliteOptions::default()));

    /// Set in the child process of `acknowledged_writes_survive_kill_9`.
    const KILL_9_DIR: &str = "BATON_STORE_KILL_9_DIR";

    /// Batch `number` of the kill -9 test: three documents of its own trace,
    /// and one of a trace every batch adds to.
    fn kill_9_batch(number: u64, now: f64) -> Vec<Document> {
        let own = format!("1-6744a1b2-{number:024x}");
        let mut batch: Vec<Document> = (1..=3)
            .map(|id| {
                let json = format!(
                    r#"{{"name":"b","id":"{id:016x}","trace_id":"{own}","start_time":{now},"end_time":{now}}}"#
                );
                Document::parse(json.as_bytes()).expect("valid")
            })
            .collect();
        let shared = format!(
            r#"{{"name":"all","id":"{:016x}","trace_id":"1-6744a1b2-{:024x}","start_time":{now},"in_progress":true}}"#,
            number + 1,
            u64::MAX
        );
        batch.push(Document::parse(shared.as_bytes()).expect("valid"));
        batch
    }

    #[test]
    fn acknowledged_writes_survive_kill_9() {
        use std::io::{BufRead, BufReader, Write};

        if let Some(dir) = std::env::var_os(KILL_9_DIR) {
            // The child: write batches, both durabilities, until killed.
            // Term index postings both flushed and pending when killed.
            let options = SqliteOptions { pending_postings: 10, ..SqliteOptions::default() };
            let store = SqliteStore::open_with(Path::new(&dir), options).expect("open");
            let started = std::time::Instant::now();
            for number in 0..100_000 {
                let durability = if number % 2 == 0 { Durability::Synced } else { Durability::Buffered };
                store.write(&kill_9_batch(number, time::now()), durability).expect("write");
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "acked {number}").and_then(|()| stdout.flush()).expect("report");
                assert!(started.elapsed() < Duration::from_secs(30), "never killed");
            }
            return;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", "sqlite::tests::acknowledged_writes_survive_kill_9", "--nocapture", "--test-threads=1"])
            .env(KILL_9_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ack_of = |line: std::io::Result<String>| -> Option<u64> {
            line.expect("read the child").strip_prefix("acked ").map(|number| number.parse().expect("a batch number"))
        };
        let mut acked = 0;
        while acked < 30 {
            acked = ack_of(lines.next().expect("the child ended before it was killed")).unwrap_or(acked);
        }
        child.kill().expect("kill -9 the child");
        child.wait().expect("reap the child");
        // Acknowledgements the child printed before it died.
        acked = lines.filter_map(ack_of).last().unwrap_or(acked);

        let store = SqliteStore::open(dir.path()).expect("open after the crash");
        let ids: Vec<TraceId> = (0..acked + 100).map(|number| kill_9_batch(number, 0.0)[0].info.trace_id).collect();
        let found = store.traces(&ids).expect("traces");
        assert!(found.len() as u64 > acked, "every acknowledged batch is there: {} of {}", found.len(), acked + 1);
        for (trace, id) in found.iter().zip(&ids) {
            assert_eq!((trace.id, trace.documents.len()), (*id, 3), "batches are whole, in order");
        }
        let shared = kill_9_batch(0, 0.0)[3].info.trace_id;
        let documents = &store.traces(&[shared]).expect("traces")[0].documents;
        assert_eq!(documents.len(), found.len(), "batches are whole");
        let infos: Vec<_> =
            documents.iter().map(|text| Document::parse(text.as_bytes()).expect("valid").info).collect();
        let epoch = f64::from(shared.epoch());
        let page = store.summaries(&SummaryQuery {
            start: epoch,
            end: epoch,
            time_range: TimeRange::TraceId,
            after: None,
            limit: 1000,
            filter: None,
        });
        let summary = page.expect("summaries").summaries.into_iter().find(|summary| summary.id == shared);
        assert_eq!(summary, Some(summarize(&infos)), "the summary matches the surviving documents");
        // The term index lost its pending postings, and has them again.
        let filtered = |expression: &str| {
            let filter = Matcher::new(filter::parse(expression).expect("parses")).expect("supported");
            let query = SummaryQuery {
                start: 0.0,
                end: time::now() + 60.0,
                time_range: TimeRange::Event,
                after: None,
                limit: 100_000,
                filter: Some(filter),
            };
            let mut ids: Vec<TraceId> =
                store.summaries(&query).expect("summaries").summaries.iter().map(|s| s.id).collect();
            ids.sort();
            ids
        };
        let indexed = filtered(r#"service("b")"#);
        assert_eq!(indexed.len(), found.len(), "the index finds every trace of a batch");
        assert_eq!(indexed, filtered(r#"!!service("b")"#), "the index and a scan agree");
    }

    fn document(trace: &str, id: u64, now: f64) -> Document {
        let json =
            format!(r#"{{"name":"n","id":"{id:016x}","trace_id":"{trace}","start_time":{now},"end_time":{now}}}"#);
        Document::parse(json.as_bytes()).expect("valid")
    }

    /// Regression: a write whose transaction began with a read failed with
    /// "database is locked" when a checkpoint restarted the log meanwhile
    /// (found by the ingest benchmark); writes now take the lock up front.
    #[test]
    fn writes_wait_out_checkpoint_restarts() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(dir.path()).expect("open");
        let stop = Arc::new(AtomicBool::new(false));
        let restarts = {
            let (stop, path) = (Arc::clone(&stop), dir.path().join(DATABASE_FILE));
            std::thread::spawn(move || {
                let connection = Connection::open(path).expect("open");
                connection.execute_batch("PRAGMA busy_timeout = 5000;").expect("pragma");
                while !stop.load(Ordering::Acquire) {
                    connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())).expect("checkpoint");
                }
            })
        };
        let now = time::now();
        for number in 0..300u64 {
            // New traces, so that every batch reads before it writes.
            let batch: Vec<Document> = (0..20)
                .map(|k| document(&format!("1-{:08x}-{:024x}", now as u32, number * 100 + k), k + 1, now))
                .collect();
            store.write(&batch, Durability::Buffered).expect("the write waits for the checkpoint");
        }
        stop.store(true, Ordering::Release);
        restarts.join().expect("checkpoint thread");
    }

    /// A crash in the middle of an append leaves part of a document at a
    /// log's end; the next open cuts it off, so that what is appended after
    /// it is read back after the next crash.
    #[test]
    fn a_document_cut_short_by_a_crash_is_cut_off_its_log() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let now = time::now();
        let (first, second) = ("1-6744a1b2-000000000000000000000001", "1-6744a1b2-000000000000000000000002");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.write(&[document(first, 1, now)], Durability::Synced).expect("write");
        drop(store);
        let log = log_path(dir.path(), day_of(time::now()));
        let mut file = OpenOptions::new().append(true).open(&log).expect("the log");
        file.write_all(&[200, 0, 0, 0, b'{', b'"']).expect("a torn append");
        let store = SqliteStore::open(dir.path()).expect("open after the torn append");
        store.write(&[document(second, 1, now)], Durability::Synced).expect("write");
        // A crash: nothing written at close.
        std::mem::forget(store);
        let store = SqliteStore::open(dir.path()).expect("open after the crash");
        let ids = [first.parse().expect("an id"), second.parse().expect("an id")];
        let found: Vec<(TraceId, usize)> =
            store.traces(&ids).expect("traces").iter().map(|trace| (trace.id, trace.documents.len())).collect();
        assert_eq!(found, [(ids[0], 1), (ids[1], 1)]);
    }

    #[test]
    fn a_store_of_another_layout_version_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        drop(SqliteStore::open(dir.path()).expect("open"));
        SqliteStore::open(dir.path()).expect("the same version opens again");
        Connection::open(dir.path().join(DATABASE_FILE))
            .and_then(|connection| connection.pragma_update(None, "user_version", SCHEMA_VERSION - 1))
            .expect("downgrade");
        let Err(error) = SqliteStore::open(dir.path()) else { panic!("an older layout opened") };
        assert!(error.to_string().contains("use a new --data-dir"), "{error}");
    }

    /// The `sampling_rules` table came without a new layout version: a store
    /// made before it gets it, with the Default rule, when opened.
    #[test]
    fn a_store_older_than_sampling_rules_gets_the_default_rule() {
        let dir = tempfile::tempdir().expect("temporary directory");
        drop(SqliteStore::open(dir.path()).expect("open"));
        Connection::open(dir.path().join(DATABASE_FILE))
            .and_then(|connection| connection.execute_batch("DROP TABLE sampling_rules"))
            .expect("make it older");
        let store = SqliteStore::open(dir.path()).expect("the older store opens");
        assert_eq!(store.sampling_rules().expect("sampling_rules"), [SamplingRule::default_rule()]);
    }

    #[test]
    fn retention_deletes_the_document_logs_of_dropped_days() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let days_back = Arc::new(AtomicI64::new(40));
        let clock = {
            let days_back = Arc::clone(&days_back);
            Arc::new(move || time::now() - days_back.load(Ordering::SeqCst) as f64 * SECONDS_PER_DAY)
        };
        let store =
            SqliteStore::open_with(dir.path(), SqliteOptions { clock, ..SqliteOptions::default() }).expect("open");
        let now = time::now();
        store.write(&[document("1-6744a1b2-000000000000000000000001", 1, now)], Durability::Synced).expect("old write");
        days_back.store(0, Ordering::SeqCst);
        store.write(&[document("1-6744a1b2-000000000000000000000002", 1, now)], Durability::Synced).expect("new write");
        let logs = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("list")
                .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".log"))
                .collect();
            names.sort();
            names
        };
        assert_eq!(logs().len(), 2);
        let removed = store.remove_before(now - 30.0 * SECONDS_PER_DAY).expect("retention");
        assert_eq!(removed.partitions, 1);
        assert_eq!(logs(), [format!("{}.log", table("docs", day_of(now)))]);
    }

    /// Again with a writer cache so small that traces are evicted and read
    /// back from disk all the time, and a scan budget so small that most
    /// filtered pages stop early.
    mod tight_limits {
        use super::*;

        conformance::suite!(@checks harness(SqliteOptions {
                cached_documents: 2,
                scan_budget: 300,
                pending_postings: 7,
                ..SqliteOptions::default()
            });
            filtered_summaries_page_through_every_match_once,
            filtered_summaries_equal_the_filter_on_every_summary,
            graph_sums_the_contributions_of_current_summaries,
            one_document_per_id,
            summaries_follow_every_write,
            writes_are_durable,
            remove_before_drops_old_days_only,
            traces_are_found_whatever_their_epoch,
            traces_ahead_of_the_clock_are_found,
            arrival_order_does_not_matter,
        );
    }
}
