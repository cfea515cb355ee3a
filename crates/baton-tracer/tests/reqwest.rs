//! `TracingMiddleware` against a real local HTTP server: each request is a
//! `remote` subsegment with its `http` block and flags, the server receives
//! the trace headers (`X-Amzn-Trace-Id` and W3C `traceparent`) naming that subsegment, and a refused connection is a
//! fault with its cause. The documents are read from a UDP socket playing
//! the daemon.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;

use baton_tracer::reqwest::TracingMiddleware;
use baton_tracer::{Sampler, Segment, TraceId, TraceParent};
use reqwest_middleware::ClientBuilder;
use support::{documents, trace_to_local_daemon};

/// What the server saw of one request: its path, `X-Amzn-Trace-Id` and `traceparent`.
type Received = (String, Option<String>, Option<String>);

/// A server answering `/status/<code>` with that status and a `status <code>` body;
/// it reports each request's path, `X-Amzn-Trace-Id` and `traceparent`.
fn serve() -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut trace_header, mut traceparent) = (None, None);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                if name.eq_ignore_ascii_case("x-amzn-trace-id") {
                    trace_header = Some(value.trim().to_owned());
                } else if name.eq_ignore_ascii_case("traceparent") {
                    traceparent = Some(value.trim().to_owned());
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap().to_owned();
            let status = path.trim_start_matches("/status/").split('?').next().unwrap().to_owned();
            let body = format!("status {status}");
            let length = body.len();
            // Reported before answering, so the client has seen every report once it has its answer.
            sender.send((path, trace_header, traceparent)).unwrap();
            write!(stream, "HTTP/1.1 {status} Whatever\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}")
                .unwrap();
        }
    });
    (address, received)
}

#[test]
fn requests_are_remote_subsegments_and_carry_the_trace_headers() {
    let daemon = trace_to_local_daemon("client", Sampler::local_default());
    let (server, requests) = serve();
    // A port nothing listens on.
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware).build();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let segment = Segment::builder("client").begin();
    let failure = runtime.block_on(segment.instrument(async {
        for status in [200, 404, 429, 500] {
            // Trace headers already on the request are replaced.
            let response = client
                .get(format!("http://{server}/status/{status}?token=secret"))
                .header("X-Amzn-Trace-Id", "Root=1-00000000-000000000000000000000000")
                .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status);
        }
        client.get(format!("http://{refused}/nowhere")).send().await.unwrap_err()
    }));
    let segment_id = segment.id();
    segment.end();

    // An unsampled trace: nothing is recorded, but the callee is told `Sampled=0`.
    let unsampled_root = "1-5f84c7a5-0123456789abcdef01234567";
    let unsampled =
        Segment::builder("client").header(format!("Root={unsampled_root};Sampled=0").parse().unwrap()).begin();
    runtime.block_on(unsampled.instrument(async {
        client.get(format!("http://{server}/status/200")).send().await.unwrap();
    }));
    unsampled.end();
    baton_tracer::flush();

    let received: Vec<Received> = requests.try_iter().collect();
    assert_eq!(received.len(), 5, "{received:?}");
    let documents = documents(&daemon);
    assert_eq!(documents.len(), 1, "only the sampled segment is sent: {documents:#?}");
    let document = &documents[0];
    assert_eq!(document["id"].as_str(), segment_id.map(|id| id.to_string()).as_deref());
    let trace_id = document["trace_id"].as_str().unwrap();
    let subsegments = document["subsegments"].as_array().unwrap();
    assert_eq!(subsegments.len(), 5, "{document:#}");

    let expected_flags =
        [(200, [false; 3]), (404, [true, false, false]), (429, [true, false, true]), (500, [false, true, false])];
    let w3c_trace_id = trace_id.parse::<TraceId>().unwrap().to_w3c();
    for ((subsegment, (path, header, traceparent)), (status, flags)) in
        subsegments.iter().zip(&received).zip(expected_flags)
    {
        assert_eq!(path, &format!("/status/{status}?token=secret"));
        assert_eq!(subsegment["name"], "127.0.0.1");
        assert_eq!(subsegment["namespace"], "remote");
        assert_eq!(subsegment["http"]["request"]["method"], "GET");
        assert_eq!(subsegment["http"]["request"]["url"], format!("http://{server}/status/{status}"));
        assert_eq!(subsegment["http"]["response"]["status"], status);
        assert_eq!(subsegment["http"]["response"]["content_length"], 10);
        let recorded = ["error", "fault", "throttle"].map(|flag| subsegment[flag] == true);
        assert_eq!(recorded, flags, "{subsegment:#}");
        assert!(subsegment.get("cause").is_none(), "{subsegment:#}");
        let id = subsegment["id"].as_str().unwrap();
        assert_eq!(header.as_deref(), Some(format!("Root={trace_id};Parent={id};Sampled=1").as_str()));
        assert_eq!(traceparent.as_deref(), Some(format!("00-{w3c_trace_id}-{id}-01").as_str()));
    }

    let refused_call = &subsegments[4];
    assert_eq!(refused_call["namespace"], "remote");
    assert_eq!(refused_call["http"]["request"]["url"], format!("http://{refused}/nowhere"));
    assert!(refused_call["http"].get("response").is_none(), "{refused_call:#}");
    assert_eq!(refused_call["fault"], true);
    assert!(refused_call.get("error").is_none());
    let exceptions = refused_call["cause"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions[0]["message"], failure.to_string());
    assert!(exceptions.len() > 1, "the source chain is recorded: {exceptions:#?}");

    let (path, header, traceparent) = &received[4];
    assert_eq!(path, "/status/200");
    assert_eq!(header.as_deref(), Some(format!("Root={unsampled_root};Parent=0000000000000000;Sampled=0").as_str()));
    // W3C has no zero parent id: a random one, with the sampled flag off.
    let traceparent: TraceParent = traceparent.as_deref().unwrap().parse().unwrap();
    assert_eq!((traceparent.trace_id, traceparent.sampled), (unsampled_root.parse().unwrap(), false));
}
