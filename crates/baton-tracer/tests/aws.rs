//! `TracingInterceptor` on a real DynamoDB client talking to a local HTTP
//! server that plays DynamoDB: each operation is one `aws` subsegment with
//! its `aws` block, status and flags, however many attempts it took; every
//! attempt carries the trace headers (X-Ray and W3C) naming that subsegment; a service error
//! is a remote cause, a refused connection a fault. The documents are read
//! from a UDP socket playing the daemon.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use baton_tracer::aws::TracingInterceptor;
use baton_tracer::{Sampler, Segment};
use serde_json::{Value, json};
use support::{documents, trace_to_local_daemon};

/// What the server saw of one request: its table, `X-Amzn-Trace-Id` and `traceparent`.
type Received = (String, Option<String>, Option<String>);

/// A server playing DynamoDB, answering by the request's `TableName`: `orders`
/// has an item, `missing` does not exist, `flaky` fails once with a 500.
/// It reports each request's table and trace headers (`X-Amzn-Trace-Id`, `traceparent`).
fn serve() -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut flaky_calls = 0;
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut trace_header, mut traceparent, mut length) = (None, None, 0);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let Some((name, value)) = line.split_once(':') else { continue };
                if name.eq_ignore_ascii_case("x-amzn-trace-id") {
                    trace_header = Some(value.trim().to_owned());
                } else if name.eq_ignore_ascii_case("traceparent") {
                    traceparent = Some(value.trim().to_owned());
                } else if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let request: Value = serde_json::from_slice(&body).unwrap();
            let table = request["TableName"].as_str().unwrap().to_owned();
            let (status, extra_header, body) = match table.as_str() {
                "orders" => ("200 OK", "", json!({"Item": {"id": {"S": "42"}}})),
                "flaky" if flaky_calls == 0 => {
                    flaky_calls += 1;
                    ("500 Internal Server Error", "x-amzn-ErrorType: InternalServerError\r\n", json!({}))
                }
                "flaky" => ("200 OK", "", json!({})),
                _ => (
                    "400 Bad Request",
                    "",
                    json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                        "message": "Requested resource not found"
                    }),
                ),
            };
            // Reported before answering, so the client has seen every report once it has its answer.
            sender.send((table.clone(), trace_header, traceparent)).unwrap();
            let body = body.to_string();
            write!(
                stream,
                "HTTP/1.1 {status}\r\nx-amzn-RequestId: request-{table}\r\n{extra_header}\
                 Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (address, received)
}

fn dynamodb(endpoint: SocketAddr) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .endpoint_url(format!("http://{endpoint}"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
        .interceptor(TracingInterceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[test]
fn operations_are_aws_subsegments_and_carry_the_trace_headers() {
    let daemon = trace_to_local_daemon("client", Sampler::local_default());
    let (server, requests) = serve();
    let client = dynamodb(server);
    // A port nothing listens on.
    let refused = dynamodb(TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let segment = Segment::builder("client").begin();
    runtime.block_on(segment.instrument(async {
        let key = || AttributeValue::S("42".into());
        let found = client.get_item().table_name("orders").key("id", key()).send().await.unwrap();
        assert_eq!(found.item().unwrap()["id"], key());
        let missing = client.get_item().table_name("missing").key("id", key()).send().await.unwrap_err();
        assert!(missing.into_service_error().is_resource_not_found_exception());
        client.get_item().table_name("flaky").key("id", key()).send().await.unwrap();
        refused.get_item().table_name("orders").key("id", key()).send().await.unwrap_err();
    }));
    segment.end();
    baton_tracer::flush();

    let received: Vec<Received> = requests.try_iter().collect();
    let sent = |index: usize| (received[index].1.clone(), received[index].2.clone());
    let tables: Vec<&str> = received.iter().map(|(table, _, _)| table.as_str()).collect();
    assert_eq!(tables, ["orders", "missing", "flaky", "flaky"]);
    let documents = documents(&daemon);
    assert_eq!(documents.len(), 1, "{documents:#?}");
    let document = &documents[0];
    let trace_id = document["trace_id"].as_str().unwrap();
    let subsegments = document["subsegments"].as_array().unwrap();
    assert_eq!(subsegments.len(), 4, "one per operation, not per attempt: {document:#}");
    for subsegment in subsegments {
        assert_eq!(subsegment["name"], "DynamoDB");
        assert_eq!(subsegment["namespace"], "aws");
        assert_eq!(subsegment["aws"]["operation"], "GetItem");
        assert_eq!(subsegment["aws"]["region"], "us-east-1");
    }
    let w3c_trace_id = trace_id.parse::<baton_tracer::TraceId>().unwrap().to_w3c();
    let trace_headers = |subsegment: &Value| {
        let id = subsegment["id"].as_str().unwrap();
        (Some(format!("Root={trace_id};Parent={id};Sampled=1")), Some(format!("00-{w3c_trace_id}-{id}-01")))
    };

    let found = &subsegments[0];
    assert_eq!(found["aws"]["table_name"], "orders");
    assert_eq!(found["aws"]["request_id"], "request-orders");
    assert_eq!(found["aws"]["retries"], 0);
    assert_eq!(found["http"]["response"]["status"], 200);
    assert_eq!(found["http"]["response"]["content_length"], r#"{"Item":{"id":{"S":"42"}}}"#.len());
    assert!(["error", "fault", "throttle", "cause"].iter().all(|field| found.get(field).is_none()), "{found:#}");
    assert_eq!(sent(0), trace_headers(found));

    let missing = &subsegments[1];
    assert_eq!(missing["aws"]["table_name"], "missing");
    assert_eq!(missing["aws"]["request_id"], "request-missing");
    assert_eq!(missing["http"]["response"]["status"], 400);
    assert_eq!((missing["error"].as_bool(), missing.get("fault")), (Some(true), None), "{missing:#}");
    let exceptions = missing["cause"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:#?}");
    assert_eq!(exceptions[0]["type"], "ResourceNotFoundException");
    assert_eq!(exceptions[0]["message"], "ResourceNotFoundException: Requested resource not found");
    assert_eq!(exceptions[0]["remote"], true);
    assert_eq!(sent(1), trace_headers(missing));

    let flaky = &subsegments[2];
    assert_eq!(flaky["aws"]["table_name"], "flaky");
    assert_eq!(flaky["aws"]["retries"], 1);
    assert_eq!(flaky["http"]["response"]["status"], 200, "the last attempt's response");
    assert!(flaky.get("fault").is_none() && flaky.get("cause").is_none(), "{flaky:#}");
    assert_eq!(sent(2), trace_headers(flaky), "the first attempt");
    assert_eq!(sent(3), trace_headers(flaky), "the retry");

    let unreachable = &subsegments[3];
    assert_eq!(unreachable["aws"]["table_name"], "orders");
    assert_eq!(unreachable["aws"]["retries"], 2, "the standard retry strategy makes three attempts");
    assert!(unreachable.get("http").is_none(), "{unreachable:#}");
    assert_eq!(unreachable["fault"], true);
    let exceptions = unreachable["cause"]["exceptions"].as_array().unwrap();
    assert!(exceptions.iter().all(|exception| exception.get("remote").is_none()), "{exceptions:#?}");
}
