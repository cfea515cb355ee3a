//! OTLP/HTTP export (the JSON encoding): every X-Ray document becomes OpenTelemetry
//! spans, its fields mapped to the OpenTelemetry semantic conventions (X-Ray-only
//! ones under `aws.xray.*`), so any OTLP backend can take the tracer's output.

use std::time::Duration;

use baton_model::{SegmentId, TraceId};
use serde_json::{Map, Value, json};

use crate::emit::Transport;

/// How many spans are buffered before a batch goes out without waiting for a flush.
const MAX_BATCH: usize = 512;
/// How long one export may take, connection included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

// OTLP span kinds (`Span.SpanKind`), written as numbers in OTLP JSON.
const KIND_INTERNAL: u8 = 1;
const KIND_SERVER: u8 = 2;
const KIND_CLIENT: u8 = 3;
/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;

/// Sends documents as OTLP spans to one traces URL, in batches.
pub(crate) struct OtlpTransport {
    endpoint: String,
    agent: ureq::Agent,
    /// The `resource` object of every request, built once.
    resource: Value,
    spans: Vec<Value>,
}

impl OtlpTransport {
    /// A transport posting to `endpoint`, the full traces URL (e.g. `http://127.0.0.1:4318/v1/traces`).
    pub(crate) fn new(endpoint: &str, service_name: &str) -> OtlpTransport {
        OtlpTransport::with_env(endpoint, service_name, |name| std::env::var(name).ok())
    }

    /// Reads the Lambda environment through `var`, so tests need not change the process's.
    fn with_env(endpoint: &str, service_name: &str, var: impl Fn(&str) -> Option<String>) -> OtlpTransport {
        let var = |name| var(name).filter(|value| !value.is_empty());
        let mut attributes = vec![
            attribute("service.name", string(service_name)),
            attribute("telemetry.sdk.name", string("baton-tracer")),
            attribute("telemetry.sdk.language", string("rust")),
            attribute("telemetry.sdk.version", string(env!("CARGO_PKG_VERSION"))),
            attribute("cloud.provider", string("aws")),
        ];
        if let Some(function) = var("AWS_LAMBDA_FUNCTION_NAME") {
            attributes.push(attribute("cloud.platform", string("aws_lambda")));
            attributes.push(attribute("faas.name", string(&function)));
        }
        for (key, name) in [("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"), ("cloud.region", "AWS_REGION")] {
            if let Some(value) = var(name) {
                attributes.push(attribute(key, string(&value)));
            }
        }
        let agent = ureq::Agent::config_builder().timeout_global(Some(EXPORT_TIMEOUT)).build().new_agent();
        OtlpTransport {
            endpoint: endpoint.into(),
            agent,
            resource: json!({ "attributes": attributes }),
            spans: Vec::new(),
        }
    }

    /// The `ExportTraceServiceRequest` carrying every buffered span.
    fn export_request(&self) -> Value {
        json!({
            "resourceSpans": [{
                "resource": self.resource,
                "scopeSpans": [{
                    "scope": { "name": "baton-tracer", "version": env!("CARGO_PKG_VERSION") },
                    "spans": self.spans,
                }],
            }],
        })
    }
}

impl Transport for OtlpTransport {
    fn send(&mut self, document: &str) {
        match document_spans(document) {
            Ok(spans) => self.spans.extend(spans),
            Err(reason) => tracing::debug!(%reason, "baton-tracer: document not exported over OTLP"),
        }
        if self.spans.len() >= MAX_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.spans.is_empty() {
            return;
        }
        let body = self.export_request().to_string();
        let spans = std::mem::take(&mut self.spans).len();
        let response = self.agent.post(&self.endpoint).header("content-type", "application/json").send(body);
        match response {
            // Reading the (small) answer to its end lets the agent reuse the connection.
            Ok(mut response) => drop(response.body_mut().read_to_vec()),
            Err(error) => {
                tracing::warn!(%error, spans, endpoint = %self.endpoint, "baton-tracer: OTLP export failed, dropped")
            }
        }
    }
}

/// The spans of one document: the entity itself and every embedded subsegment.
fn document_spans(document: &str) -> Result<Vec<Value>, String> {
    let document: Value = serde_json::from_str(document).map_err(|error| format!("not JSON: {error}"))?;
    let trace_id = document
        .get("trace_id")
        .and_then(Value::as_str)
        .and_then(|text| text.parse::<TraceId>().ok())
        .ok_or("no valid trace_id")?
        .to_w3c();
    let parent = match document.get("parent_id") {
        Some(parent) => Some(span_id(parent).ok_or("invalid parent_id")?),
        None => None,
    };
    let subsegment = document.get("type").and_then(Value::as_str) == Some("subsegment");
    if subsegment && parent.is_none() {
        return Err("a subsegment without parent_id".into());
    }
    let mut spans = Vec::new();
    add_spans(&document, &trace_id, parent.as_deref(), !subsegment, &mut spans)?;
    Ok(spans)
}

/// Appends the span of `entity`, then those of its embedded subsegments.
fn add_spans(
    entity: &Value,
    trace_id: &str,
    parent: Option<&str>,
    segment: bool,
    spans: &mut Vec<Value>,
) -> Result<(), String> {
    let id = entity.get("id").and_then(span_id).ok_or("no valid id")?;
    let Some(end) = entity.get("end_time") else {
        // An in-progress entity is sent again, whole, once it ends; exporting part of it now would duplicate spans.
        return match entity.get("in_progress") {
            Some(Value::Bool(true)) => Ok(()),
            _ => Err(format!("{id}: no end_time")),
        };
    };
    let end = unix_nanos(end).ok_or_else(|| format!("{id}: invalid end_time"))?;
    let start = entity.get("start_time").and_then(unix_nanos).ok_or_else(|| format!("{id}: invalid start_time"))?;
    let namespace = entity.get("namespace").and_then(Value::as_str);
    let kind = match (segment, namespace) {
        (true, _) => KIND_SERVER,
        (false, Some("remote" | "aws")) => KIND_CLIENT,
        (false, _) => KIND_INTERNAL,
    };
    let exceptions = entity.pointer("/cause/exceptions").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);

    let mut span = Map::new();
    span.insert("traceId".into(), trace_id.into());
    span.insert("spanId".into(), id.as_str().into());
    if let Some(parent) = parent {
        span.insert("parentSpanId".into(), parent.into());
    }
    span.insert("name".into(), entity.get("name").and_then(Value::as_str).unwrap_or_default().into());
    span.insert("kind".into(), kind.into());
    span.insert("startTimeUnixNano".into(), start.into());
    span.insert("endTimeUnixNano".into(), end.as_str().into());
    span.insert("attributes".into(), attributes(entity).into());
    if !exceptions.is_empty() {
        let events = exceptions.iter().map(|exception| exception_event(exception, &end)).collect::<Vec<_>>();
        span.insert("events".into(), events.into());
    }
    if entity.get("fault") == Some(&Value::Bool(true)) {
        let message = exceptions.first().and_then(|first| first.get("message")).and_then(Value::as_str);
        span.insert("status".into(), json!({ "code": STATUS_ERROR, "message": message.unwrap_or("fault") }));
    }
    spans.push(span.into());

    for child in entity.get("subsegments").and_then(Value::as_array).into_iter().flatten() {
        add_spans(child, trace_id, Some(&id), false, spans)?;
    }
    Ok(())
}

/// The span attributes: the http, aws and sql blocks in OpenTelemetry semantic
/// conventions, and the X-Ray-only fields under `aws.xray.*`.
fn attributes(entity: &Value) -> Vec<Value> {
    let mut attributes = Vec::new();
    let mut add = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            attributes.push(attribute(key, value));
        }
    };
    let text = |pointer: &str| entity.pointer(pointer).and_then(Value::as_str);

    add("http.request.method", text("/http/request/method").map(|method| string(&method.to_uppercase())));
    add("url.full", text("/http/request/url").map(string));
    add("user_agent.original", text("/http/request/user_agent").map(string));
    add("client.address", text("/http/request/client_ip").map(string));
    add("http.response.status_code", entity.pointer("/http/response/status").and_then(scalar));
    add("http.response.body.size", entity.pointer("/http/response/content_length").and_then(scalar));

    if let Some(aws) = entity.get("aws").and_then(Value::as_object) {
        for (key, value) in aws {
            add(&format!("aws.{key}"), scalar(value));
        }
        if let Some(operation) = aws.get("operation").and_then(Value::as_str) {
            add("rpc.system", Some(string("aws-api")));
            add("rpc.service", entity.get("name").and_then(Value::as_str).map(string));
            add("rpc.method", Some(string(operation)));
        }
    }
    add("db.system", text("/sql/database_type").map(string));
    add("db.query.text", text("/sql/sanitized_query").map(string));
    add("enduser.id", text("/user").map(string));
    add("aws.xray.namespace", text("/namespace").map(string));
    for flag in ["error", "throttle"] {
        if entity.get(flag) == Some(&Value::Bool(true)) {
            add(&format!("aws.xray.{flag}"), Some(json!({ "boolValue": true })));
        }
    }

    if let Some(annotations) = entity.get("annotations").and_then(Value::as_object) {
        let mut keys = Vec::new();
        for (key, value) in annotations {
            if let Some(value) = scalar(value) {
                add(key, Some(value));
                keys.push(string(key));
            }
        }
        // The X-Ray exporter's convention: this list says which attributes are annotations (indexed).
        if !keys.is_empty() {
            add("aws.xray.annotations", Some(json!({ "arrayValue": { "values": keys } })));
        }
    }
    if let Some(metadata) = entity.get("metadata").and_then(Value::as_object) {
        for (namespace, value) in metadata {
            add(&format!("aws.xray.metadata.{namespace}"), Some(string(&value.to_string())));
        }
    }
    attributes
}

/// The `exception` event (OpenTelemetry's convention) of one X-Ray exception, at the span's end.
fn exception_event(exception: &Value, time: &str) -> Value {
    let text = |key| exception.get(key).and_then(Value::as_str);
    let mut attributes = Vec::new();
    if let Some(kind) = text("type") {
        attributes.push(attribute("exception.type", string(kind)));
    }
    if let Some(message) = text("message") {
        attributes.push(attribute("exception.message", string(message)));
    }
    if let Some(stack) = exception.get("stack").and_then(Value::as_array).filter(|stack| !stack.is_empty()) {
        let frames = stack.iter().map(|frame| {
            let field = |key| frame.get(key).and_then(Value::as_str).unwrap_or("?");
            let line = frame.get("line").and_then(Value::as_u64).unwrap_or(0);
            format!("{} ({}:{line})", field("label"), field("path"))
        });
        attributes.push(attribute("exception.stacktrace", string(&frames.collect::<Vec<_>>().join("\n"))));
    }
    json!({ "timeUnixNano": time, "name": "exception", "attributes": attributes })
}

/// A segment id as OTLP JSON wants it: 16 lowercase hex digits.
fn span_id(value: &Value) -> Option<String> {
    value.as_str()?.parse::<SegmentId>().ok().map(|id| id.to_string())
}

/// X-Ray's float epoch seconds as OTLP's decimal nanoseconds, exact to the microsecond X-Ray records.
fn unix_nanos(seconds: &Value) -> Option<String> {
    let seconds = seconds.as_f64().filter(|seconds| seconds.is_finite() && *seconds >= 0.0)?;
    let micros = (seconds * 1e6).round() as u64;
    Some(micros.checked_mul(1000)?.to_string())
}

/// A JSON scalar as an OTLP `AnyValue`; other JSON values have no attribute form.
fn scalar(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => Some(string(text)),
        Value::Bool(flag) => Some(json!({ "boolValue": flag })),
        // OTLP JSON writes 64-bit integers as strings.
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Some(json!({ "intValue": integer.to_string() })),
            None => number.as_f64().map(|double| json!({ "doubleValue": double })),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn string(text: &str) -> Value {
    json!({ "stringValue": text })
}

fn attribute(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    const TRACE: &str = "1-6744c000-0123456789abcdef01234567";
    const W3C_TRACE: &str = "6744c0000123456789abcdef01234567";

    fn transport(endpoint: &str) -> OtlpTransport {
        OtlpTransport::with_env(endpoint, "orders", |_| None)
    }

    #[test]
    fn a_segment_and_its_embedded_subsegment_become_one_request() {
        let lambda = |name: &str| {
            let value = match name {
                "AWS_LAMBDA_FUNCTION_NAME" => "orders-fn",
                "AWS_LAMBDA_FUNCTION_VERSION" => "$LATEST",
                "AWS_REGION" => "eu-west-1",
                _ => return None,
            };
            Some(value.to_string())
        };
        let mut transport = OtlpTransport::with_env("http://127.0.0.1:9/v1/traces", "orders", lambda);
        transport.send(&format!(
            r#"{{"id":"70de5b6f19ff9a0a","name":"orders","start_time":1732558848.123456,"end_time":1732558848.5,
                "trace_id":"{TRACE}","origin":"AWS::Lambda::Function","user":"alice","fault":true,
                "http":{{"request":{{"method":"get","url":"https://example.com/orders/42"}},
                    "response":{{"status":503}}}},
                "aws":{{"xray":{{"sdk":"baton-tracer for Rust","sdk_version":"0.1.0"}}}},
                "annotations":{{"order_id":"o-42","retries":2,"cold":true,"ratio":0.5}},
                "metadata":{{"orders":{{"request":["o-42"]}}}},
                "subsegments":[{{"id":"0123456789abcdef","name":"api.example.com","start_time":1732558848.2,
                    "end_time":1732558848.45,"trace_id":"{TRACE}","parent_id":"70de5b6f19ff9a0a","type":"subsegment",
                    "namespace":"remote","fault":true,
                    "http":{{"request":{{"method":"POST","url":"http://api.example.com/pay"}},
                        "response":{{"status":503,"content_length":12}}}},
                    "cause":{{"working_directory":"/var/task","exceptions":[{{"id":"1f2e3d4c5b6a7980",
                        "type":"HttpError","message":"503 Service Unavailable",
                        "stack":[{{"path":"src/pay.rs","line":42,"label":"pay"}},
                            {{"path":"src/main.rs","line":7,"label":"main"}}]}}]}}}}]}}"#
        ));
        let version = env!("CARGO_PKG_VERSION");
        let expected = json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "orders"}},
                {"key": "telemetry.sdk.name", "value": {"stringValue": "baton-tracer"}},
                {"key": "telemetry.sdk.language", "value": {"stringValue": "rust"}},
                {"key": "telemetry.sdk.version", "value": {"stringValue": version}},
                {"key": "cloud.provider", "value": {"stringValue": "aws"}},
                {"key": "cloud.platform", "value": {"stringValue": "aws_lambda"}},
                {"key": "faas.name", "value": {"stringValue": "orders-fn"}},
                {"key": "faas.version", "value": {"stringValue": "$LATEST"}},
                {"key": "cloud.region", "value": {"stringValue": "eu-west-1"}},
            ]},
            "scopeSpans": [{
                "scope": {"name": "baton-tracer", "version": version},
                "spans": [
                    {
                        "traceId": W3C_TRACE,
                        "spanId": "70de5b6f19ff9a0a",
                        "name": "orders",
                        "kind": 2,
                        "startTimeUnixNano": "1732558848123456000",
                        "endTimeUnixNano": "1732558848500000000",
                        "attributes": [
                            {"key": "http.request.method", "value": {"stringValue": "GET"}},
                            {"key": "url.full", "value": {"stringValue": "https://example.com/orders/42"}},
                            {"key": "http.response.status_code", "value": {"intValue": "503"}},
                            {"key": "enduser.id", "value": {"stringValue": "alice"}},
                            {"key": "order_id", "value": {"stringValue": "o-42"}},
                            {"key": "retries", "value": {"intValue": "2"}},
                            {"key": "cold", "value": {"boolValue": true}},
                            {"key": "ratio", "value": {"doubleValue": 0.5}},
                            {"key": "aws.xray.annotations", "value": {"arrayValue": {"values": [
                                {"stringValue": "order_id"}, {"stringValue": "retries"},
                                {"stringValue": "cold"}, {"stringValue": "ratio"},
                            ]}}},
                            {"key": "aws.xray.metadata.orders", "value": {"stringValue": r#"{"request":["o-42"]}"#}},
                        ],
                        "status": {"code": 2, "message": "fault"},
                    },
                    {
                        "traceId": W3C_TRACE,
                        "spanId": "0123456789abcdef",
                        "parentSpanId": "70de5b6f19ff9a0a",
                        "name": "api.example.com",
                        "kind": 3,
                        "startTimeUnixNano": "1732558848200000000",
                        "endTimeUnixNano": "1732558848450000000",
                        "attributes": [
                            {"key": "http.request.method", "value": {"stringValue": "POST"}},
                            {"key": "url.full", "value": {"stringValue": "http://api.example.com/pay"}},
                            {"key": "http.response.status_code", "value": {"intValue": "503"}},
                            {"key": "http.response.body.size", "value": {"intValue": "12"}},
                            {"key": "aws.xray.namespace", "value": {"stringValue": "remote"}},
                        ],
                        "events": [{
                            "timeUnixNano": "1732558848450000000",
                            "name": "exception",
                            "attributes": [
                                {"key": "exception.type", "value": {"stringValue": "HttpError"}},
                                {"key": "exception.message", "value": {"stringValue": "503 Service Unavailable"}},
                                {"key": "exception.stacktrace", "value": {
                                    "stringValue": "pay (src/pay.rs:42)\nmain (src/main.rs:7)",
                                }},
                            ],
                        }],
                        "status": {"code": 2, "message": "503 Service Unavailable"},
                    },
                ],
            }],
        }]});
        assert_eq!(transport.export_request(), expected);
    }

    #[test]
    fn a_standalone_aws_subsegment_is_a_client_span_under_its_parent() {
        let mut transport = transport("http://127.0.0.1:9/v1/traces");
        transport.send(&format!(
            r#"{{"id":"AAAABBBBCCCCDDDD","name":"DynamoDB","start_time":1732558848.000001,"end_time":1732558848.25,
                "trace_id":"{TRACE}","parent_id":"70de5b6f19ff9a0a","type":"subsegment","namespace":"aws",
                "error":true,"throttle":true,
                "aws":{{"operation":"GetItem","region":"eu-west-1","request_id":"R1","table_name":"orders","retries":1,
                    "key_names":["id"]}},
                "sql":{{"database_type":"PostgreSQL","sanitized_query":"SELECT 1"}}}}"#
        ));
        let expected = json!([{
            "traceId": W3C_TRACE,
            "spanId": "aaaabbbbccccdddd",
            "parentSpanId": "70de5b6f19ff9a0a",
            "name": "DynamoDB",
            "kind": 3,
            "startTimeUnixNano": "1732558848000001000",
            "endTimeUnixNano": "1732558848250000000",
            "attributes": [
                {"key": "aws.operation", "value": {"stringValue": "GetItem"}},
                {"key": "aws.region", "value": {"stringValue": "eu-west-1"}},
                {"key": "aws.request_id", "value": {"stringValue": "R1"}},
                {"key": "aws.table_name", "value": {"stringValue": "orders"}},
                {"key": "aws.retries", "value": {"intValue": "1"}},
                {"key": "rpc.system", "value": {"stringValue": "aws-api"}},
                {"key": "rpc.service", "value": {"stringValue": "DynamoDB"}},
                {"key": "rpc.method", "value": {"stringValue": "GetItem"}},
                {"key": "db.system", "value": {"stringValue": "PostgreSQL"}},
                {"key": "db.query.text", "value": {"stringValue": "SELECT 1"}},
                {"key": "aws.xray.namespace", "value": {"stringValue": "aws"}},
                {"key": "aws.xray.error", "value": {"boolValue": true}},
                {"key": "aws.xray.throttle", "value": {"boolValue": true}},
            ],
        }]);
        assert_eq!(Value::from(transport.spans.clone()), expected);
    }

    #[test]
    fn in_progress_entities_are_not_exported() {
        let mut transport = transport("http://127.0.0.1:9/v1/traces");
        transport.send(&format!(
            r#"{{"id":"70de5b6f19ff9a0a","name":"orders","start_time":1.5,"trace_id":"{TRACE}","in_progress":true}}"#
        ));
        assert!(transport.spans.is_empty());
        transport.send(&format!(
            r#"{{"id":"70de5b6f19ff9a0a","name":"orders","start_time":1.5,"end_time":2,"trace_id":"{TRACE}",
                "subsegments":[{{"id":"0123456789abcdef","name":"slow","start_time":1.6,"in_progress":true,
                    "subsegments":[{{"id":"1111111111111111","name":"done","start_time":1.7,"end_time":1.8}}]}}]}}"#
        ));
        let ids: Vec<_> = transport.spans.iter().map(|span| span["spanId"].clone()).collect();
        assert_eq!(ids, ["70de5b6f19ff9a0a"]);
    }

    #[test]
    fn malformed_documents_are_skipped() {
        let mut transport = transport("http://127.0.0.1:9/v1/traces");
        let span = |fields: &str| format!(r#"{{"name":"n","start_time":1,"end_time":2,{fields}}}"#);
        let malformed = [
            String::new(),
            "{".into(),
            "null".into(),
            "[1,2]".into(),
            "{}".into(),
            span(&format!(r#""trace_id":"{TRACE}""#)),
            span(r#""id":"70de5b6f19ff9a0a""#),
            span(r#""id":"70de5b6f19ff9a0a","trace_id":"1-xyz""#),
            span(&format!(r#""id":"70de5b6f","trace_id":"{TRACE}""#)),
            span(&format!(r#""id":7,"trace_id":"{TRACE}""#)),
            span(&format!(r#""id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","parent_id":"nope""#)),
            span(&format!(r#""id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","type":"subsegment""#)),
            format!(r#"{{"id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","start_time":1}}"#),
            format!(r#"{{"id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","start_time":"1","end_time":2}}"#),
            format!(r#"{{"id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","start_time":-1,"end_time":2}}"#),
            format!(r#"{{"id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","start_time":1,"end_time":1e300}}"#),
            span(&format!(r#""id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","subsegments":[{{"name":"no id"}}]"#)),
        ];
        for document in &malformed {
            transport.send(document);
            assert!(transport.spans.is_empty(), "{document}");
        }
        // Odd shapes where X-Ray has objects still give a span, without the odd parts.
        transport.send(&span(&format!(
            r#""id":"70de5b6f19ff9a0a","trace_id":"{TRACE}","http":1,"aws":[],"annotations":"a","metadata":null,
               "cause":"1f2e3d4c5b6a7980","subsegments":{{}},"fault":"yes""#
        )));
        assert_eq!(transport.spans.len(), 1);
        assert_eq!(transport.spans[0]["attributes"], json!([]));
    }

    /// Answers one HTTP/1.1 request with `200 {}` and returns its head (lowercased) and body.
    fn serve_one(listener: TcpListener) -> std::thread::JoinHandle<(String, String)> {
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            reader.get_mut().write_all(answer.as_bytes()).unwrap();
            (head, String::from_utf8(body).unwrap())
        })
    }

    #[test]
    fn flush_posts_the_buffered_spans() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let server = serve_one(listener);
        let mut transport = transport(&endpoint);
        for id in ["70de5b6f19ff9a0a", "0123456789abcdef"] {
            transport.send(&format!(r#"{{"id":"{id}","name":"n","start_time":1,"end_time":2,"trace_id":"{TRACE}"}}"#));
        }
        transport.flush();
        assert!(transport.spans.is_empty());

        let (head, body) = server.join().unwrap();
        assert!(head.starts_with("post /v1/traces http/1.1\r\n"), "{head}");
        assert!(head.lines().any(|line| line == "content-type: application/json"), "{head}");
        let request: Value = serde_json::from_str(&body).unwrap();
        let spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|span| span["traceId"] == W3C_TRACE));
    }

    #[test]
    fn a_full_batch_is_sent_at_once_and_dropped_when_the_export_fails() {
        // A port nothing listens on: the export fails at once.
        let endpoint = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/v1/traces", listener.local_addr().unwrap())
        };
        let mut transport = transport(&endpoint);
        let document =
            format!(r#"{{"id":"70de5b6f19ff9a0a","name":"n","start_time":1,"end_time":2,"trace_id":"{TRACE}"}}"#);
        for _ in 1..MAX_BATCH {
            transport.send(&document);
        }
        assert_eq!(transport.spans.len(), MAX_BATCH - 1);
        transport.send(&document);
        assert!(transport.spans.is_empty());
    }
}
