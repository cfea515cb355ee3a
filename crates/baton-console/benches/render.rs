//! Server-side render times of the console's heaviest pages, store reads
//! included, as `baton serve` does them: the service map of 6 hours with
//! 1,000,000 traces stored (`BATON_BENCH_TRACES`), and a trace of 1,000
//! segments. Prints the median of five runs after one to warm the caches.
//!
//! `cargo bench -p baton-console --bench render`

use std::time::Instant;

use baton_console::{TimeWindow, map_page, trace_page};
use baton_model::{Document, assemble, time};
use baton_query::summarize_texts;
use baton_store::{Durability, SqliteStore, Store};

// The allocator `baton serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A function calling one of 20 backends and DynamoDB.
fn request(index: usize, start: f64) -> Document {
    let json = format!(
        r#"{{"name":"orders","id":"{:016x}","trace_id":"1-{:08x}-{index:024x}","start_time":{start:.6},"end_time":{:.6},"origin":"AWS::Lambda::Function","fault":{},"subsegments":[{{"name":"svc-{}","id":"{:016x}","namespace":"remote","start_time":{:.6},"end_time":{:.6}}},{{"name":"DynamoDB","id":"{:016x}","namespace":"aws","start_time":{:.6},"end_time":{:.6}}}]}}"#,
        index * 4 + 1,
        start as u32,
        start + 0.05 + (index % 7) as f64 * 0.1,
        index.is_multiple_of(50),
        index % 20,
        index * 4 + 2,
        start + 0.01,
        start + 0.03,
        index * 4 + 3,
        start + 0.03,
        start + 0.04,
    );
    Document::parse(json.as_bytes()).expect("valid")
}

/// One trace of `count` segments: a chain of services, each calling the next
/// through a remote subsegment, with annotations and metadata.
fn big_trace(count: usize, now: f64) -> Vec<Document> {
    (0..count)
        .map(|n| {
            let start = now - 10.0 + n as f64 * 0.005;
            let parent = if n == 0 { String::new() } else { format!(r#","parent_id":"{:016x}""#, 0x10_0000 + n - 1) };
            let json = format!(
                r#"{{"name":"svc-{}","id":"{:016x}","trace_id":"1-{:08x}-00000000000000000000beef","start_time":{start:.6},"end_time":{:.6}{parent},"annotations":{{"step":{n}}},"metadata":{{"default":{{"input":{{"n":{n},"items":[1,2,3]}}}}}},"http":{{"request":{{"method":"GET","url":"https://svc.example.com/step/{n}"}},"response":{{"status":200}}}},"subsegments":[{{"name":"next","id":"{:016x}","namespace":"remote","start_time":{:.6},"end_time":{:.6}}}]}}"#,
                n % 10,
                0x1000 + n,
                now as u32,
                start + 5.0,
                0x10_0000 + n,
                start + 0.001,
                start + 4.9,
            );
            Document::parse(json.as_bytes()).expect("valid")
        })
        .collect()
}

fn median(mut run: impl FnMut() -> usize) -> (f64, usize) {
    let mut size = run();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            size = run();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[2], size)
}

fn main() {
    let traces: usize = std::env::var("BATON_BENCH_TRACES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let now = time::now();
    let started = Instant::now();
    for chunk in (0..traces).collect::<Vec<_>>().chunks(4096) {
        let batch: Vec<Document> = chunk
            .iter()
            .map(|index| request(*index, now - 21_600.0 + 21_600.0 * *index as f64 / traces as f64))
            .collect();
        store.write(&batch, Durability::Buffered).expect("write");
    }
    let trace = big_trace(1_000, now);
    let id = trace[0].info.trace_id;
    store.write(&trace, Durability::Buffered).expect("write");
    println!(
        "stored {traces} traces over 6 hours and one of 1,000 segments in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let window = TimeWindow::from_query(Some("6h"), None, None, now).expect("window");
    let (map, bytes) = median(|| {
        let periods = store.graph((window.start, window.end), None).expect("graph");
        map_page(&window, &periods[0].elements, None).len()
    });
    println!("service map, 6 hours        : {:>7.2} ms ({bytes} bytes)", map * 1000.0);
    let (page, bytes) = median(|| {
        let stored = store.traces(&[id]).expect("traces");
        let summary = summarize_texts(stored[0].documents.iter().map(String::as_str));
        let assembled = assemble(id, stored[0].documents.iter().map(String::as_str));
        let documents: Vec<serde_json::Value> =
            assembled.segments.iter().map(|segment| serde_json::from_str(&segment.document).expect("json")).collect();
        trace_page(&id.to_string(), &documents, Some(&summary), &[]).len()
    });
    println!("trace of 1,000 segments     : {:>7.2} ms ({bytes} bytes)", page * 1000.0);
}
