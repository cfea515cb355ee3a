//! Service-graph benchmark on the embedded store.
//!
//! Stores `BATON_BENCH_TRACES` traces (default 1,000,000; a Lambda-like
//! service calling one of 20 backends and DynamoDB) with start times spread
//! over 6 hours, and as many again over 30 days in a second store, and
//! prints the time to read each window's service graph from the rollups
//! (the median of three runs after one to warm the caches) and the time to
//! compute it by scanning the window's trace summaries instead, with the
//! ratio.
//!
//! `cargo bench -p baton-store --bench graph`

use std::collections::BTreeMap;
use std::time::Instant;

use baton_model::{Document, time};
use baton_query::graph::{Element, Stats, contributions};
use baton_store::{Durability, SqliteStore, Store, SummaryQuery, TimeRange};

// The allocator `baton serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn document(index: usize, start: f64) -> Document {
    let backend = format!("svc-{}", index % 20);
    let fault = index.is_multiple_of(50);
    let json = format!(
        r#"{{"name":"orders","id":"{:016x}","trace_id":"1-{:08x}-{index:024x}","start_time":{start:.6},"end_time":{:.6},"origin":"AWS::Lambda::Function","fault":{fault},"subsegments":[{{"name":"{backend}","id":"{:016x}","namespace":"remote","start_time":{:.6},"end_time":{:.6}}},{{"name":"DynamoDB","id":"{:016x}","namespace":"aws","start_time":{:.6},"end_time":{:.6}}}]}}"#,
        index * 4 + 1,
        start as u32,
        start + 0.05 + (index % 7) as f64 * 0.1,
        index * 4 + 2,
        start + 0.01,
        start + 0.03,
        index * 4 + 3,
        start + 0.03,
        start + 0.04,
    );
    Document::parse(json.as_bytes()).expect("valid")
}

/// A store holding `traces` traces starting evenly over `seconds` up to now.
fn fill(traces: usize, seconds: f64, now: f64) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let started = Instant::now();
    for chunk in (0..traces).collect::<Vec<_>>().chunks(4096) {
        let batch: Vec<Document> = chunk
            .iter()
            .map(|index| document(*index, now - seconds + seconds * *index as f64 / traces as f64))
            .collect();
        store.write(&batch, Durability::Buffered).expect("write");
    }
    println!("stored {traces} traces over {:.0} hours in {:.1} s", seconds / 3600.0, started.elapsed().as_secs_f64());
    (dir, store)
}

/// The graph computed from every summary in the window, as a store without
/// rollups would.
fn scanned_graph(store: &SqliteStore, (start, end): (f64, f64)) -> BTreeMap<Element, Stats> {
    let mut elements: BTreeMap<Element, Stats> = BTreeMap::new();
    let mut query = SummaryQuery { start, end, time_range: TimeRange::Event, after: None, limit: 10_000, filter: None };
    loop {
        let page = store.summaries(&query).expect("summaries");
        for summary in &page.summaries {
            for (element, stats) in contributions(summary) {
                elements.entry(element).or_default().merge(&stats, 1);
            }
        }
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => return elements,
        }
    }
}

fn median(mut run: impl FnMut() -> f64) -> f64 {
    run();
    let mut times: Vec<f64> = (0..3).map(|_| run()).collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

fn main() {
    let traces: usize = std::env::var("BATON_BENCH_TRACES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let now = (time::now() / 60.0).floor() * 60.0;
    for (name, seconds) in [("6 hours", 6.0 * 3600.0), ("30 days", 30.0 * 86_400.0)] {
        let (_dir, store) = fill(traces, seconds, now);
        let range = (now - seconds, now + 60.0);
        let mut nodes = 0;
        let rollups = median(|| {
            let started = Instant::now();
            let periods = store.graph(range, None).expect("graph");
            nodes = periods[0].elements.len();
            started.elapsed().as_secs_f64()
        });
        let graph = store.graph(range, None).expect("graph").remove(0).elements;
        let scanned = scanned_graph(&store, range);
        let total = |elements: &BTreeMap<Element, Stats>| elements.values().map(|stats| stats.total).sum::<i64>();
        assert_eq!(total(&graph), total(&scanned), "the rollups and the scan agree");
        let scan = median(|| {
            let started = Instant::now();
            scanned_graph(&store, range);
            started.elapsed().as_secs_f64()
        });
        println!(
            "GetServiceGraph, {name:<8}: {:>7.2} ms from rollups ({nodes} nodes and edges); scanning the summaries {:>8.1} ms = {:.4} x",
            rollups * 1000.0,
            scan * 1000.0,
            rollups / scan
        );
    }
}
