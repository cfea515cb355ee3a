//! The two stores side by side: the same documents and the same queries
//! against the real `baton serve` (release build) on the embedded store and
//! on ClickHouse (Debian's, started on loopback by scripts/clickhouse), in
//! one run.
//!
//! Each trace is a request to a frontend service that calls a backend
//! service (two segments, a `remote` subsegment between them), with a
//! `customer` annotation; start times spread evenly over the last 6 hours.
//! Printed for each store: the ingest rate (`PutTraceSegments`, 4 clients,
//! 100 documents a call, each answered once durable), `BatchGetTraces`
//! latency (5 traces a call), an annotation filter over the last hour
//! (`GetTraceSummaries`, every page) and the service graph over the 6 hours
//! (`GetServiceGraph`); each query's time is the median of 5 runs after one
//! to warm up, and both stores must give the same answers. Then the ingest
//! rate over UDP (as many documents again, of other traces, sent as fast as
//! the store writes them: at most 2,000 sent and not yet written).
//!
//! `cargo bench -p baton --bench backends`; `BATON_BENCH_TRACES` sets how
//! many traces (default 100,000: 200,000 documents).

mod common;

use std::net::UdpSocket;
use std::time::Instant;

use baton_model::DAEMON_HEADER;
use common::{ClickHouse, Server};
use serde_json::{Value, json};

const HOURS: f64 = 6.0;
const CLIENTS: usize = 4;
const DOCUMENTS_PER_CALL: usize = 100;
const CUSTOMERS: usize = 1000;
const FILTER: &str = r#"annotation.customer = "c-42""#;
/// The most UDP documents sent and not yet written.
const WINDOW: f64 = 2_000.0;

/// The trace id of trace `index` of data set `set`.
fn trace_id(set: usize, index: usize, now: f64, traces: usize) -> String {
    let start = now - HOURS * 3600.0 + HOURS * 3600.0 * index as f64 / traces as f64;
    format!("1-{:08x}-{set:08x}{index:016x}", start as u64)
}

/// The two documents of trace `index` of data set `set`.
fn trace_documents(set: usize, index: usize, now: f64, traces: usize) -> [String; 2] {
    let start = now - HOURS * 3600.0 + HOURS * 3600.0 * index as f64 / traces as f64;
    let trace = trace_id(set, index, now, traces);
    let (frontend, backend) = (index % 4, index % 8);
    let fault = index.is_multiple_of(50);
    let status = if fault { 502 } else { 200 };
    let (segment, call, callee) = (index * 4 + 1, index * 4 + 2, index * 4 + 3);
    [
        format!(
            r#"{{"name":"frontend-{frontend}","id":"{segment:016x}","trace_id":"{trace}","start_time":{start:.6},"end_time":{:.6},"origin":"AWS::EC2::Instance","fault":{fault},"http":{{"request":{{"method":"GET","url":"https://frontend-{frontend}.example.com/orders/{}"}},"response":{{"status":{status}}}}},"annotations":{{"customer":"c-{}","tier":"{}"}},"subsegments":[{{"name":"backend-{backend}","id":"{call:016x}","namespace":"remote","start_time":{:.6},"end_time":{:.6},"fault":{fault},"http":{{"request":{{"method":"GET","url":"https://backend-{backend}.example.com/items"}},"response":{{"status":{status}}}}}}}]}}"#,
            start + 0.2 + (index % 7) as f64 * 0.05,
            index % 1000,
            index % CUSTOMERS,
            ["gold", "silver", "bronze"][index % 3],
            start + 0.01,
            start + 0.15,
        ),
        format!(
            r#"{{"name":"backend-{backend}","id":"{callee:016x}","trace_id":"{trace}","parent_id":"{call:016x}","start_time":{:.6},"end_time":{:.6},"origin":"AWS::ECS::Container","fault":{fault},"http":{{"response":{{"status":{status}}}}}}}"#,
            start + 0.02,
            start + 0.14,
        ),
    ]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One call of the X-Ray API; its answer as JSON.
fn call(agent: &ureq::Agent, server: &Server, path: &str, body: &Value) -> Value {
    let mut response = agent
        .post(format!("{}{path}", server.endpoint))
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let text = response.body_mut().read_to_string().expect("body");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// Every page of a paged operation; returns the items of `field`.
fn all_pages(agent: &ureq::Agent, server: &Server, path: &str, mut body: Value, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    loop {
        let page = call(agent, server, path, &body);
        items.extend(page[field].as_array().cloned().unwrap_or_default());
        match page["NextToken"].as_str() {
            Some(token) if !token.is_empty() => body["NextToken"] = json!(token),
            _ => return items,
        }
    }
}

/// The median time of 5 runs after one to warm up, in ms, and the last answer.
fn median_ms<T>(mut run: impl FnMut() -> T) -> (f64, T) {
    let mut answer = run();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        answer = run();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[2], answer)
}

/// What one store measured.
struct Figures {
    ingest_rate: f64,
    udp_rate: f64,
    get_p50: f64,
    get_p99: f64,
    filter_ms: f64,
    filter_matches: Vec<String>,
    graph_ms: f64,
    graph_services: Vec<(String, u64)>,
}

fn measure(server: &Server, documents: &[String], datagrams: &[Vec<u8>], traces: usize, now: f64) -> Figures {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();

    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in documents.chunks(documents.len().div_ceil(CLIENTS)) {
            let agent = agent.clone();
            scope.spawn(move || {
                for batch in chunk.chunks(DOCUMENTS_PER_CALL) {
                    let answer = call(&agent, server, "/TraceSegments", &json!({ "TraceSegmentDocuments": batch }));
                    assert_eq!(answer["UnprocessedTraceSegments"], json!([]), "{answer}");
                }
            });
        }
    });
    let ingest_rate = documents.len() as f64 / started.elapsed().as_secs_f64();

    let mut latencies = Vec::new();
    for round in 0..1_000usize {
        let ids: Vec<String> =
            (0..5).map(|k| trace_id(0, (round * 7919 + k * 104_729) % traces, now, traces)).collect();
        let started = Instant::now();
        let answer = call(&agent, server, "/Traces", &json!({ "TraceIds": ids }));
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer["Traces"].as_array().map(Vec::len), Some(5), "{answer}");
    }
    latencies.sort_by(f64::total_cmp);

    let filter = json!({ "StartTime": now - 3600.0, "EndTime": now, "FilterExpression": FILTER });
    let (filter_ms, summaries) =
        median_ms(|| all_pages(&agent, server, "/TraceSummaries", filter.clone(), "TraceSummaries"));
    let mut filter_matches: Vec<String> =
        summaries.iter().map(|summary| summary["Id"].as_str().expect("an Id").to_owned()).collect();
    filter_matches.sort();

    let graph = json!({ "StartTime": now - HOURS * 3600.0, "EndTime": now });
    let (graph_ms, services) = median_ms(|| all_pages(&agent, server, "/ServiceGraph", graph.clone(), "Services"));
    let mut graph_services: Vec<(String, u64)> = services
        .iter()
        .map(|service| {
            let name = service["Name"].as_str().unwrap_or_default().to_owned();
            (name, service["SummaryStatistics"]["TotalCount"].as_u64().unwrap_or(0))
        })
        .collect();
    graph_services.sort();

    let udp_rate = udp_ingest(server, &agent, datagrams);

    Figures {
        ingest_rate,
        udp_rate,
        get_p50: percentile(&latencies, 0.5),
        get_p99: percentile(&latencies, 0.99),
        filter_ms,
        filter_matches,
        graph_ms,
        graph_services,
    }
}

/// Sends the datagrams, never more than WINDOW ahead of the store; returns
/// documents written a second.
fn udp_ingest(server: &Server, agent: &ureq::Agent, datagrams: &[Vec<u8>]) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let before = server.metric(agent, "baton_store_documents_written_total");
    let started = Instant::now();
    for (sent, datagram) in datagrams.iter().enumerate() {
        if sent % 500 == 0 {
            while before + sent as f64 - server.metric(agent, "baton_store_documents_written_total") > WINDOW {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        socket.send_to(datagram, &server.udp).expect("send");
    }
    let written = server.wait_for_written(agent, before + datagrams.len() as f64) - before;
    assert_eq!(written, datagrams.len() as f64, "UDP documents written");
    written / started.elapsed().as_secs_f64()
}

fn main() {
    let traces: usize = std::env::var("BATON_BENCH_TRACES").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let now = baton_model::time::now();
    let documents: Vec<String> = (0..traces).flat_map(|index| trace_documents(0, index, now, traces)).collect();
    let datagrams: Vec<Vec<u8>> = (0..traces)
        .flat_map(|index| trace_documents(1, index, now, traces))
        .map(|document| format!("{DAEMON_HEADER}{document}").into_bytes())
        .collect();
    let bytes: usize = documents.iter().map(String::len).sum();
    println!(
        "documents: {} ({traces} traces of 2 segments, {:.0} bytes on average), starts over the last {HOURS} hours",
        documents.len(),
        bytes as f64 / documents.len() as f64
    );

    let server = Server::start(&[]);
    let sqlite = measure(&server, &documents, &datagrams, traces, now);
    server.stop();

    let clickhouse = ClickHouse::start();
    let server = Server::start(&["--store", "clickhouse", "--clickhouse-url", &clickhouse.url]);
    let ours = measure(&server, &documents, &datagrams, traces, now);
    server.stop();
    drop(clickhouse);

    assert_eq!(sqlite.filter_matches, ours.filter_matches, "the stores disagree on {FILTER}");
    assert_eq!(sqlite.graph_services, ours.graph_services, "the stores disagree on the service graph");
    let row = |name: &str, unit: &str, left: f64, right: f64| {
        println!("{name:<44} {left:>12.2} {right:>12.2}  {unit}");
    };
    println!("{:<44} {:>12} {:>12}", "", "sqlite", "clickhouse");
    row(
        &format!("ingest, PutTraceSegments ({CLIENTS} x {DOCUMENTS_PER_CALL} docs)"),
        "docs/s",
        sqlite.ingest_rate,
        ours.ingest_rate,
    );
    row("ingest, UDP (as fast as the store writes)", "docs/s", sqlite.udp_rate, ours.udp_rate);
    row("BatchGetTraces, 5 traces, p50", "ms", sqlite.get_p50, ours.get_p50);
    row("BatchGetTraces, 5 traces, p99", "ms", sqlite.get_p99, ours.get_p99);
    row(
        &format!("{FILTER}, 1 hour"),
        &format!("ms ({} matches)", sqlite.filter_matches.len()),
        sqlite.filter_ms,
        ours.filter_ms,
    );
    row(
        &format!("service graph, {HOURS} hours"),
        &format!("ms ({} services)", sqlite.graph_services.len()),
        sqlite.graph_ms,
        ours.graph_ms,
    );
}
