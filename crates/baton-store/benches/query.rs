//! Filter-expression query benchmark on the embedded store.
//!
//! Stores `BATON_BENCH_TRACES` traces (default 1,000,000; one segment each,
//! start times spread over the last 6 hours) and prints, for each query, the
//! time to page through every match (100 a page; the median of three runs
//! after one to warm the caches), how many summaries it examined, and its
//! ratio to a plain scan (the same expression doubly negated: no index term
//! and no required string is seen through `!`, so every summary in the
//! range is decoded and evaluated).
//!
//! `cargo bench -p baton-store --bench query`

use std::time::Instant;

use baton_model::{Document, time};
use baton_query::{Matcher, filter};
use baton_store::{Durability, SqliteOptions, SqliteStore, Store, SummaryQuery, TimeRange};

// The allocator `baton serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOURS: f64 = 6.0;

fn document(index: usize, now: f64, traces: usize) -> Document {
    let start = now - HOURS * 3600.0 + HOURS * 3600.0 * index as f64 / traces as f64;
    let service = format!("svc-{}", index % 20);
    let fault = index.is_multiple_of(50);
    let status = if fault { 502 } else { 200 };
    let json = format!(
        r#"{{"name":"{service}","id":"{:016x}","trace_id":"1-{:08x}-{index:024x}","start_time":{start:.6},"end_time":{:.6},"fault":{fault},"origin":"AWS::Lambda::Function","http":{{"request":{{"method":"GET","url":"https://{service}.example.com/orders/{}"}},"response":{{"status":{status}}}}},"annotations":{{"customer":"c-{}","tier":"{}"}}}}"#,
        index + 1,
        start as u32,
        start + 0.05 + (index % 7) as f64 * 0.1,
        index % 1000,
        index % 100_000,
        ["gold", "silver", "bronze"][index % 3],
    );
    Document::parse(json.as_bytes()).expect("valid")
}

/// Pages through every match; returns (matches, summaries examined, seconds).
fn run(store: &SqliteStore, expression: &str, start: f64, end: f64) -> (usize, u64, f64) {
    let matcher = Matcher::new(filter::parse(expression).expect("parses")).expect("supported");
    let mut query =
        SummaryQuery { start, end, time_range: TimeRange::Event, after: None, limit: 100, filter: Some(matcher) };
    let (mut matches, mut scanned) = (0, 0);
    let started = Instant::now();
    loop {
        let page = store.summaries(&query).expect("summaries");
        matches += page.summaries.len();
        scanned += page.scanned;
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => return (matches, scanned, started.elapsed().as_secs_f64()),
        }
    }
}

fn main() {
    let traces: usize = std::env::var("BATON_BENCH_TRACES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_with(dir.path(), SqliteOptions::default()).expect("open");
    let now = time::now();
    let started = Instant::now();
    let documents: Vec<Document> = (0..traces).map(|index| document(index, now, traces)).collect();
    for batch in documents.chunks(4096) {
        store.write(batch, Durability::Buffered).expect("write");
    }
    drop(documents);
    println!("stored {traces} traces over {HOURS} hours in {:.1} s", started.elapsed().as_secs_f64());

    let cases = [
        ("annotation equality, 1 hour", r#"annotation.customer = "c-4242""#, now - 3600.0),
        ("service fault, 6 hours", r#"service("svc-10") { fault }"#, now - HOURS * 3600.0),
        ("full scan, 6 hours", r#"http.url CONTAINS "/orders/99""#, now - HOURS * 3600.0),
    ];
    let median = |expression: &str, start: f64| {
        run(&store, expression, start, now);
        let mut runs: Vec<(usize, u64, f64)> = (0..3).map(|_| run(&store, expression, start, now)).collect();
        runs.sort_by(|left, right| left.2.total_cmp(&right.2));
        runs[1]
    };
    for (name, expression, start) in cases {
        let (matches, scanned, seconds) = median(expression, start);
        let (plain_matches, _, plain) = median(&format!("!!({expression})"), start);
        assert_eq!(matches, plain_matches, "{expression}");
        println!(
            "{name:<28} {expression:<34} {:>7.2} ms  {matches:>6} matches, {scanned:>7} examined; plain scan {:>7.1} ms = {:.2} x",
            seconds * 1000.0,
            plain * 1000.0,
            seconds / plain
        );
    }
}
