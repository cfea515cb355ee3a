//! OTLP ingest benchmark against the real `baton serve` (release build).
//!
//! The same spans go into the store three ways, each on a fresh server:
//! OTLP/HTTP protobuf and OTLP/gRPC (8 clients, 512 spans a request, as the
//! OpenTelemetry SDKs batch; each answer comes once the spans are durable),
//! and, as the baseline, the X-Ray daemon protocol over UDP carrying the
//! documents those spans translate to (one datagram per trace, as an X-Ray
//! SDK sends a segment with its subsegments), sent as fast as the store
//! writes them. Prints spans a second into the store and the ratio of each
//! OTLP path to UDP.
//!
//! `cargo bench -p baton --bench otlp`; `BATON_BENCH_SPANS` sets the number
//! of spans (default 400,000: 100,000 traces of 4 spans).

mod common;

use std::net::UdpSocket;
use std::time::Instant;

use baton_model::DAEMON_HEADER;
use baton_otlp::Translator;
use baton_otlp::proto::{
    AnyValue, ExportTraceServiceRequest, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans, Span,
    Status, Value,
};
use common::{Server, address, kernel_udp_drops};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use prost::Message;

const SPANS_PER_TRACE: usize = 4;
const SPANS_PER_REQUEST: usize = 512;
const CLIENTS: usize = 8;
const ANNOTATIONS: [&str; 2] = ["customer_tier", "order_count"];
/// The most UDP documents sent and not yet written.
const WINDOW: f64 = 2_000.0;

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }) }
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// The spans of one request to an instrumented service: a SERVER span with
/// HTTP attributes and two annotated attributes, and three INTERNAL
/// children, as in the ingest benchmark's documents.
fn trace_spans(index: usize, epoch: u64) -> Vec<Span> {
    let mut trace_id = [0u8; 16];
    trace_id[..4].copy_from_slice(&(epoch as u32).to_be_bytes());
    trace_id[4..].copy_from_slice(&(index as u128).to_be_bytes()[4..]);
    let start = (epoch * 1_000_000_000) + (index as u64 % 1000) * 1_000_000;
    let id = |n: usize| ((index * 8 + n) as u64).to_be_bytes().to_vec();
    let server = Span {
        trace_id: trace_id.to_vec(),
        span_id: id(1),
        name: "POST /api/orders".to_owned(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 120_000_000,
        attributes: vec![
            attribute("http.request.method", text("POST")),
            attribute("url.full", text("https://orders.example.com/api/orders")),
            attribute("user_agent.original", text("curl/8.0")),
            attribute("client.address", text("203.0.113.9")),
            attribute("http.response.status_code", Value::Int(200)),
            attribute("customer_tier", text("gold")),
            attribute("order_count", Value::Int((index % 17) as i64)),
            attribute("is_vip", Value::Bool(true)),
        ],
        status: Some(Status { message: String::new(), code: 1 }),
        ..Span::default()
    };
    let mut spans = vec![server];
    for sub in 0..SPANS_PER_TRACE - 1 {
        let child_start = start + sub as u64 * 10_000_000;
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: id(2 + sub),
            parent_span_id: id(1),
            name: format!("fetch_{sub}"),
            kind: 1,
            start_time_unix_nano: child_start,
            end_time_unix_nano: child_start + 8_000_000,
            attributes: vec![attribute("order_id", text(&format!("o-{index}")))],
            ..Span::default()
        });
    }
    spans
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    let resource = Resource {
        attributes: vec![
            attribute("service.name", text("orders-api")),
            attribute("cloud.provider", text("aws")),
            attribute("cloud.platform", text("aws_ec2")),
            attribute("host.id", text("i-0123456789abcdef0")),
            attribute("telemetry.sdk.language", text("rust")),
            attribute("telemetry.sdk.version", text("0.33.0")),
        ],
    };
    let scope = InstrumentationScope { name: "bench".to_owned(), version: "1".to_owned() };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans { scope: Some(scope), spans }],
        }],
    }
}

fn main() {
    let spans: usize = std::env::var("BATON_BENCH_SPANS").ok().and_then(|n| n.parse().ok()).unwrap_or(400_000);
    let traces = spans / SPANS_PER_TRACE;
    let spans = traces * SPANS_PER_TRACE;
    let epoch = baton_model::time::now() as u64;
    let traces_per_request = SPANS_PER_REQUEST / SPANS_PER_TRACE;
    let requests: Vec<ExportTraceServiceRequest> = (0..traces)
        .collect::<Vec<_>>()
        .chunks(traces_per_request)
        .map(|chunk| request(chunk.iter().flat_map(|&index| trace_spans(index, epoch)).collect()))
        .collect();
    let bodies: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
    let translator = Translator::new(ANNOTATIONS.map(str::to_owned));
    let datagrams: Vec<Vec<u8>> = requests
        .iter()
        .flat_map(|request| translator.translate(request).documents)
        .map(|document| format!("{DAEMON_HEADER}{}", document.text).into_bytes())
        .collect();
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "spans: {spans} ({traces} traces of {SPANS_PER_TRACE}); {} requests of {SPANS_PER_REQUEST} spans, {:.0} bytes of protobuf a span; {} datagrams of {:.0} bytes",
        bodies.len(),
        body_bytes as f64 / spans as f64,
        datagrams.len(),
        datagrams.iter().map(Vec::len).sum::<usize>() as f64 / datagrams.len() as f64,
    );
    let annotation_args: Vec<&str> = ANNOTATIONS.iter().flat_map(|key| ["--otlp-annotation", key]).collect();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();

    // 1. The baseline: the translated documents over UDP. UDP has no
    // backpressure, so the sender keeps at most WINDOW documents unwritten
    // (watching the store's counter): the rate is what the path sustains
    // without loss, not what the kernel's socket buffer drops.
    let server = Server::start(&annotation_args);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let kernel_before = kernel_udp_drops();
    let started = Instant::now();
    for (sent, datagram) in datagrams.iter().enumerate() {
        if sent % 250 == 0 {
            while sent as f64 - server.metric(&agent, "baton_store_documents_written_total") > WINDOW {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        socket.send_to(datagram, &server.udp).expect("send");
    }
    let written = server.wait_for_written(&agent, datagrams.len() as f64);
    let udp_rate = written * SPANS_PER_TRACE as f64 / started.elapsed().as_secs_f64();
    println!(
        "x-ray udp (baseline)       : {udp_rate:>10.0} spans/s  ({written} of {} documents written; lost {} in the kernel, {} by the store queue)",
        datagrams.len(),
        kernel_udp_drops() - kernel_before,
        server.metric(&agent, "baton_documents_dropped_total"),
    );
    server.stop();

    // 2. OTLP/HTTP protobuf.
    let server = Server::start(&annotation_args);
    let url = format!("http://{}/v1/traces", address(&server.ready, "otlp-http"));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in bodies.chunks(bodies.len().div_ceil(CLIENTS)) {
            let (agent, url) = (agent.clone(), url.clone());
            scope.spawn(move || {
                for body in chunk {
                    let response = agent
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .send(&body[..])
                        .expect("OTLP/HTTP export");
                    assert_eq!(response.status(), 200);
                }
            });
        }
    });
    let http_rate = spans as f64 / started.elapsed().as_secs_f64();
    check_written(&server, &agent, datagrams.len());
    println!("otlp/http protobuf         : {http_rate:>10.0} spans/s  = {:.2} x udp", http_rate / udp_rate);
    let rss_http = server.peak_rss_mb();
    server.stop();

    // 3. OTLP/gRPC over one HTTP/2 connection per client.
    let server = Server::start(&annotation_args);
    let grpc = address(&server.ready, "otlp-grpc");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let started = Instant::now();
    runtime.block_on(async {
        let clients = bodies.chunks(bodies.len().div_ceil(CLIENTS)).map(|chunk| {
            let chunk: Vec<Bytes> = chunk.iter().map(|body| grpc_message(body)).collect();
            let grpc = grpc.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&grpc).await.expect("connect");
                // As gRPC clients do: a request's last frame must not wait
                // for the acknowledgement of its first.
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (mut sender, connection) = hyper::client::conn::http2::handshake(
                    hyper_util::rt::TokioExecutor::new(),
                    hyper_util::rt::TokioIo::new(stream),
                )
                .await
                .expect("h2 handshake");
                tokio::spawn(connection);
                for message in chunk {
                    let request = hyper::Request::post(format!(
                        "http://{grpc}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                    ))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(Full::new(message))
                    .expect("request");
                    let response = sender.send_request(request).await.expect("gRPC export");
                    let collected = response.into_body().collect().await.expect("response body");
                    let status = collected.trailers().and_then(|trailers| trailers.get("grpc-status")).cloned();
                    assert_eq!(status.as_ref().map(|value| value.as_bytes()), Some(&b"0"[..]), "grpc-status");
                }
            })
        });
        for client in clients.collect::<Vec<_>>() {
            client.await.expect("client");
        }
    });
    let grpc_rate = spans as f64 / started.elapsed().as_secs_f64();
    check_written(&server, &agent, datagrams.len());
    println!("otlp/grpc                  : {grpc_rate:>10.0} spans/s  = {:.2} x udp", grpc_rate / udp_rate);
    let rss_grpc = server.peak_rss_mb();
    server.stop();
    println!("server peak RSS            : {rss_http:.0} MB (otlp/http), {rss_grpc:.0} MB (otlp/grpc)");
}

/// A gRPC message: uncompressed flag, big-endian length, the bytes.
fn grpc_message(body: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + body.len());
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    Bytes::from(framed)
}

/// Every export was answered after its documents were durable; the store
/// must hold them all.
fn check_written(server: &Server, agent: &ureq::Agent, documents: usize) {
    let written = server.metric(agent, "baton_store_documents_written_total");
    assert_eq!(written, documents as f64, "documents written");
}
