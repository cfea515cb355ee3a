//! Ingest and read benchmark against the real `baton serve` (release build).
//!
//! Prints, in one run on the same documents: the parse-only rate (one core
//! parsing, nothing else), the rate of the UDP path without a store (one
//! sender, the kernel, a thread receiving and parsing: the physical ceiling
//! of UDP ingest on this machine), the UDP ingest rate into the store
//! (paced at the target rate of 100k documents a second, at 1.25 and 1.5
//! times it, with the server's CPU time per document written, then
//! unpaced), the HTTP `PutTraceSegments` rate, their ratios to both,
//! `BatchGetTraces` latency with the UDP data stored, and the server's peak
//! resident memory. Trace ids are random after their epoch, as
//! the SDKs make them, and traces start as fast as they are sent.
//!
//! `cargo bench -p baton --bench ingest`; `BATON_BENCH_TRACES` sets how many
//! traces (4 documents each) are sent over UDP (default 250,000: 1M segments).

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use baton_model::{DAEMON_HEADER as HEADER, Document};
use common::{Server, kernel_udp_drops};

const DOCUMENTS_PER_TRACE: usize = 4;

/// Traces a second at the paced rate: trace `index` starts `index / this`
/// seconds after the first, as it would when sent live.
const TRACES_PER_SECOND: f64 = 25_000.0;

/// The id of trace `index`: the epoch second of its start, then 96 bits that
/// look random, as the SDKs make them.
fn trace_id(index: usize, first_start: f64) -> String {
    let start = first_start + index as f64 / TRACES_PER_SECOND;
    let random = (index as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) >> 32;
    format!("1-{:08x}-{random:024x}", start as u64)
}

/// Documents shaped like a Lambda invocation traced by Powertools: a
/// segment with http, annotations and metadata, and three subsegments.
fn trace_documents(index: usize, first_start: f64) -> Vec<String> {
    let trace = trace_id(index, first_start);
    let segment_id = format!("{:016x}", index * 8 + 1);
    let start = first_start + index as f64 / TRACES_PER_SECOND;
    let mut documents = vec![format!(
        r#"{{"id":"{segment_id}","name":"orders-api","start_time":{start:.6},"end_time":{end:.6},"trace_id":"{trace}","origin":"AWS::EC2::Instance","in_progress":false,"http":{{"request":{{"method":"POST","url":"https://orders.example.com/api/orders","user_agent":"curl/8.0","client_ip":"203.0.113.9"}},"response":{{"status":200,"content_length":42}}}},"annotations":{{"customer_tier":"gold","order_count":{count},"is_vip":true}},"metadata":{{"default":{{"request_body":{{"items":[1,2,3],"note":"bench"}}}}}},"aws":{{"xray":{{"sdk":"X-Ray for Python","sdk_version":"2.15.0"}}}},"service":{{"runtime":"CPython","runtime_version":"3.11.7"}}}}"#,
        end = start + 0.120,
        count = index % 17
    )];
    for sub in 0..DOCUMENTS_PER_TRACE - 1 {
        documents.push(format!(
            r###"{{"id":"{id:016x}","name":"## fetch_{sub}","start_time":{s:.6},"end_time":{e:.6},"parent_id":"{segment_id}","trace_id":"{trace}","type":"subsegment","namespace":"local","in_progress":false,"annotations":{{"order_id":"o-{index}"}},"metadata":{{"orders":{{"fetch response":{{"status":200}}}}}}}}"###,
            id = index * 8 + 2 + sub,
            s = start + 0.01 * sub as f64,
            e = start + 0.01 * sub as f64 + 0.008,
        ));
    }
    documents
}

/// Sends `datagrams` unpaced to a thread that receives and parses them;
/// returns how many it parsed and the seconds until the last.
fn receive_and_parse(datagrams: &[Vec<u8>]) -> (usize, f64) {
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    receiver.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let addr = receiver.local_addr().expect("address");
    let started = Instant::now();
    let thread = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65_536];
        let (mut parsed, mut last) = (0, started);
        while let Ok(length) = receiver.recv(&mut buffer) {
            let document = &buffer[HEADER.len()..length];
            parsed += usize::from(Document::parse(document).is_ok());
            last = Instant::now();
        }
        (parsed, (last - started).as_secs_f64())
    });
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    for datagram in datagrams {
        socket.send_to(datagram, addr).expect("send");
    }
    thread.join().expect("receiver")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let traces: usize = std::env::var("BATON_BENCH_TRACES").ok().and_then(|n| n.parse().ok()).unwrap_or(250_000);
    let first_start = baton_model::time::now();
    let documents: Vec<String> = (0..traces).flat_map(|index| trace_documents(index, first_start)).collect();
    let bytes: usize = documents.iter().map(String::len).sum();
    println!(
        "documents: {} ({} traces, {:.0} bytes on average)",
        documents.len(),
        traces,
        bytes as f64 / documents.len() as f64
    );

    // 1. Parse only: one core parsing, the ceiling of any ingest.
    let sample = &documents[..documents.len().min(400_000)];
    let started = Instant::now();
    let mut valid = 0;
    for document in sample {
        valid += usize::from(Document::parse(document.as_bytes()).is_ok());
    }
    assert_eq!(valid, sample.len());
    let parse_rate = sample.len() as f64 / started.elapsed().as_secs_f64();
    println!("parse only                 : {parse_rate:>10.0} docs/s  (1 core)");

    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let datagrams: Vec<Vec<u8>> = documents.iter().map(|document| format!("{HEADER}{document}").into_bytes()).collect();

    // 2. The UDP path without a store: one sender as below, the kernel, and
    // a thread that receives and parses each datagram and keeps nothing.
    let (received, elapsed) = receive_and_parse(&datagrams);
    let udp_ceiling = received as f64 / elapsed;
    println!(
        "udp receive + parse only   : {udp_ceiling:>10.0} docs/s  ({received} of {} parsed; the ceiling of UDP ingest on this machine)",
        datagrams.len()
    );

    // 3. UDP into the store, paced at the target rate and above it: no
    // document may be lost at the target rate.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let target_rate = TRACES_PER_SECOND * DOCUMENTS_PER_TRACE as f64;
    let mut kept = None;
    for rate in [target_rate, target_rate * 1.25, target_rate * 1.5] {
        let server = Server::start(&[]);
        let kernel_before = kernel_udp_drops();
        let started = Instant::now();
        for (index, datagram) in datagrams.iter().enumerate() {
            socket.send_to(datagram, &server.udp).expect("send");
            if index % 500 == 499 {
                let due = Duration::from_secs_f64((index + 1) as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let sent_in = started.elapsed().as_secs_f64();
        let written = server.wait_for_written(&agent, datagrams.len() as f64);
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "udp ingest, paced {:>4.0}k/s : {:>10.0} docs/s  ({written} written in {elapsed:.2} s, offered over {sent_in:.2} s, server CPU {:.2} us a document, peak RSS {:.0} MB) = {:.2} x parse, {:.2} x udp ceiling",
            rate / 1000.0,
            written / elapsed,
            server.cpu_seconds() * 1e6 / written,
            server.peak_rss_mb(),
            written / elapsed / parse_rate,
            written / elapsed / udp_ceiling
        );
        println!(
            "  lost {}: {} in the kernel's socket buffer, {} refused by the full store queue",
            datagrams.len() as f64 - written,
            kernel_udp_drops() - kernel_before,
            server.metric(&agent, "baton_documents_dropped_total")
        );
        if kept.is_none() {
            kept = Some((server, written));
        } else {
            server.stop();
        }
    }
    let (server, written) = kept.expect("the target rate's server");

    // 4. BatchGetTraces of 5 traces with the UDP data stored.
    let mut latencies = Vec::new();
    for round in 0..2_000usize {
        let ids: Vec<String> = (0..5).map(|k| trace_id((round * 7919 + k * 104_729) % traces, first_start)).collect();
        let body = serde_json::json!({ "TraceIds": ids }).to_string();
        let started = Instant::now();
        let mut response = agent.post(format!("{}/Traces", server.endpoint)).send(body).expect("BatchGetTraces");
        let text = response.body_mut().read_to_string().expect("body");
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(text.contains("\"Traces\""), "{text}");
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "BatchGetTraces, 5 traces   : p50 {:.2} ms  p99 {:.2} ms  ({} segments stored)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        written
    );
    let rss_after_reads = server.peak_rss_mb();
    let (anonymous, mapped) = server.rss_split_mb();
    server.stop();

    // 5. UDP unpaced: as fast as one sender thread goes; counts what is lost.
    let server = Server::start(&[]);
    let kernel_before = kernel_udp_drops();
    let started = Instant::now();
    for datagram in &datagrams {
        socket.send_to(datagram, &server.udp).expect("send");
    }
    let sent_in = started.elapsed().as_secs_f64();
    let written = server.wait_for_written(&agent, datagrams.len() as f64);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "udp ingest, unpaced        : {:>10.0} docs/s  (offered {:.0}/s, {written} written, lost {}: {} in the kernel, {} by the store queue) = {:.2} x udp ceiling",
        written / elapsed,
        datagrams.len() as f64 / sent_in,
        datagrams.len() as f64 - written,
        kernel_udp_drops() - kernel_before,
        server.metric(&agent, "baton_documents_dropped_total"),
        written / elapsed / udp_ceiling
    );
    let rss_unpaced = server.peak_rss_mb();
    server.stop();

    // 6. HTTP PutTraceSegments: 4 clients, 100 documents per call.
    let server = Server::start(&[]);
    let http_documents = &documents[..documents.len().min(400_000)];
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in http_documents.chunks(http_documents.len().div_ceil(4)) {
            let agent = agent.clone();
            let endpoint = server.endpoint.clone();
            scope.spawn(move || {
                for batch in chunk.chunks(100) {
                    let body = serde_json::json!({ "TraceSegmentDocuments": batch }).to_string();
                    let mut response =
                        agent.post(format!("{endpoint}/TraceSegments")).send(body).expect("PutTraceSegments");
                    let text = response.body_mut().read_to_string().expect("body");
                    assert!(text.contains("\"UnprocessedTraceSegments\":[]"), "{text}");
                }
            });
        }
    });
    let http_rate = http_documents.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "http PutTraceSegments      : {http_rate:>10.0} docs/s  (4 clients x 100 docs per call) = {:.2} x parse",
        http_rate / parse_rate
    );
    let rss_http = server.peak_rss_mb();
    server.stop();
    println!(
        "server peak RSS            : {rss_after_reads:.0} MB (paced udp at 100k/s, then reads; after them {anonymous:.0} MB heap, {mapped:.0} MB mapped files), {rss_unpaced:.0} MB (unpaced udp), {rss_http:.0} MB (http)"
    );
}
