use super::*;
use ValidationErrorKind::*;
use serde_json::json;
use std::path::Path;

const TRACE: &str = "1-6744a1b2-0123456789abcdef01234567";
const ID: &str = "70de5b6f19ff9a0a";

/// The datagrams of a captured scenario, as `(file name, document bytes)`,
/// the daemon header line stripped.
fn fixture(scenario: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/udp").join(scenario);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let datagram = std::fs::read(&path).unwrap();
            let newline = datagram.iter().position(|&byte| byte == b'\n').expect("a header line");
            assert_eq!(&datagram[..newline], br#"{"format":"json","version":1}"#);
            (path.file_name().unwrap().to_string_lossy().into_owned(), datagram[newline + 1..].to_vec())
        })
        .collect()
}

/// One captured document, parsed.
fn fixture_document(scenario: &str, file: &str) -> Document {
    let (_, bytes) = fixture(scenario).into_iter().find(|(name, _)| name == file).expect("fixture file");
    Document::parse(&bytes).unwrap()
}

/// The smallest valid segment, with `changes` applied: each key of `changes`
/// replaces (or adds) the segment's, and a key set to `"<absent>"` is removed.
fn segment(changes: Value) -> String {
    let mut document = json!({
        "name": "api", "id": ID, "trace_id": TRACE, "start_time": 1732536000.0, "end_time": 1732536000.25,
    });
    apply(&mut document, changes);
    document.to_string()
}

/// The smallest valid subsegment (to embed, or with `type` and `parent_id` to
/// send on its own), with `changes` applied as in [`segment`].
fn subsegment(id: &str, changes: Value) -> Value {
    let mut subsegment = json!({"name": "work", "id": id, "start_time": 1732536000.1, "end_time": 1732536000.2});
    apply(&mut subsegment, changes);
    subsegment
}

fn apply(entity: &mut Value, changes: Value) {
    let (Value::Object(entity), Value::Object(changes)) = (entity, changes) else { panic!("objects only") };
    for (key, value) in changes {
        if value == "<absent>" {
            entity.remove(&key);
        } else {
            entity.insert(key, value);
        }
    }
}

/// Parses `document` and checks that it is rejected as `kind` with exactly `message`.
#[track_caller]
fn check(document: impl AsRef<[u8]>, kind: ValidationErrorKind, message: &str) -> ValidationError {
    let error = Document::parse(document.as_ref()).expect_err("the document should be rejected");
    assert_eq!((error.kind, error.message.as_str()), (kind, message));
    assert_eq!(error.to_string(), message);
    error
}

/// Parses `document`, which must be valid, and checks that it is kept as sent.
#[track_caller]
fn accept(document: impl AsRef<[u8]>) -> Document {
    let document = document.as_ref();
    let parsed = Document::parse(document).unwrap_or_else(|error| panic!("rejected: {error}"));
    assert_eq!(parsed.json.as_bytes(), document);
    parsed
}

fn id(text: &str) -> SegmentId {
    text.parse().unwrap()
}

fn string(text: &str) -> AnnotationValue {
    AnnotationValue::String(text.to_owned())
}

// === captured documents ===

#[test]
fn every_fixture_document_parses_and_keeps_its_exact_text() {
    for scenario in ["xray_sdk_basic", "xray_sdk_streaming", "powertools_lambda"] {
        let documents = fixture(scenario);
        assert!(!documents.is_empty(), "{scenario}");
        for (file, bytes) in documents {
            let document = Document::parse(&bytes).unwrap_or_else(|error| panic!("{scenario}/{file}: {error}"));
            assert_eq!(document.json.as_bytes(), &bytes[..], "{scenario}/{file}");
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(document.info.id.to_string(), value["id"], "{scenario}/{file}");
            assert_eq!(document.info.trace_id.to_string(), value["trace_id"], "{scenario}/{file}");
            let kind = if value["type"] == "subsegment" { DocumentKind::Subsegment } else { DocumentKind::Segment };
            assert_eq!(document.info.kind, kind, "{scenario}/{file}");
        }
    }
}

#[test]
fn fixture_times_are_read_exactly_as_written() {
    // The literal after the first `"start_time": ` and the last `"end_time": `
    // are the document's own (Python writes the shortest round-trip form).
    let literal = |text: &str, at: usize| -> f64 {
        let number: String = text[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        number.parse().unwrap()
    };
    for scenario in ["xray_sdk_basic", "xray_sdk_streaming", "powertools_lambda"] {
        for (file, bytes) in fixture(scenario) {
            let text = std::str::from_utf8(&bytes).unwrap();
            let info = Document::parse(&bytes).unwrap().info;
            let start = text.find(r#""start_time": "#).unwrap() + r#""start_time": "#.len();
            let end = text.rfind(r#""end_time": "#).unwrap() + r#""end_time": "#.len();
            assert_eq!(info.start_time, literal(text, start), "{scenario}/{file}");
            assert_eq!(info.end_time, Some(literal(text, end)), "{scenario}/{file}");
        }
    }
    let info = fixture_document("powertools_lambda", "0009.txt").info;
    assert_eq!((info.start_time, info.end_time), (1795416263.3976197, Some(1795416263.4025464)));
}

#[test]
fn full_segment_reads_http_user_flags_and_annotations_of_embedded_subsegments() {
    let info = fixture_document("xray_sdk_basic", "0001.txt").info;
    assert_eq!(info.kind, DocumentKind::Segment);
    assert_eq!(info.id, id("46a35f8e4494ac45"));
    assert_eq!(info.trace_id.to_string(), "1-6b03e09d-0dcda7ecd820021bca1dccee");
    assert_eq!(info.parent_id, None);
    assert_eq!(info.name, "orders-api");
    assert_eq!((info.start_time, info.end_time), (1795416221.584088, Some(1795416221.605625)));
    assert!(!info.in_progress);
    let facts = info.facts;
    assert_eq!(
        facts.http,
        Some(HttpFacts {
            method: Some("POST".into()),
            url: Some("https://orders.example.com/api/orders?id=7".into()),
            user_agent: Some("curl/8.0".into()),
            client_ip: Some("203.0.113.9".into()),
            status: Some(201),
        })
    );
    assert_eq!(facts.user.as_deref(), Some("alice"));
    // The flags are the segment's own: its subsegments have fault, error and throttle.
    assert_eq!((facts.fault, facts.error, facts.throttle), (false, false, false));
    assert!(facts.in_progress_subsegments.is_empty());
    assert_eq!(
        facts.annotations,
        [
            ("customer_tier".to_owned(), string("gold")),
            ("order_count".to_owned(), AnnotationValue::Number(3.0)),
            ("order_total".to_owned(), AnnotationValue::Number(12.5)),
            ("is_vip".to_owned(), AnnotationValue::Bool(true)),
            ("validator".to_owned(), string("v2")),
            ("cache_hit".to_owned(), AnnotationValue::Bool(false)),
            ("amount_cents".to_owned(), AnnotationValue::Number(1250.0)),
        ]
    );
    // Depth first: load-schema is inside validate-order.
    let expected: Vec<SegmentId> = [
        "a834c99641e18843",
        "1e8349edcf87db1a",
        "5e4684a9e8ce8771",
        "29c5abab2979ab84",
        "357718299b06e08d",
        "e9fd6f998f783274",
        "ee1cec545f73ca7d",
    ]
    .into_iter()
    .map(id)
    .collect();
    assert_eq!(facts.subsegment_ids, expected);
    assert_eq!((facts.origin, facts.resource_arn, facts.account_id), (None, None, None));
    // The four patched `requests` calls, in the remote namespace; local work is no call.
    let calls: Vec<(&str, Option<u16>, bool, bool, bool)> = facts
        .calls
        .iter()
        .map(|call| {
            assert_eq!((call.name.as_str(), call.namespace), ("127.0.0.1", CallNamespace::Remote));
            (
                call.http.as_ref().and_then(|http| http.method.as_deref()),
                call.http.as_ref().and_then(|http| http.status),
                call.error,
                call.fault,
                call.throttle,
            )
        })
        .map(|(method, status, error, fault, throttle)| (method.unwrap_or("-"), status, error, fault, throttle))
        .collect();
    assert_eq!(
        calls,
        [
            ("get", Some(200), false, false, false),
            ("post", Some(404), true, false, false),
            ("get", Some(500), false, true, false),
            ("get", Some(429), true, false, true),
        ]
    );
    assert_eq!(facts.calls[0].id, id("29c5abab2979ab84"));
}

#[test]
fn a_subsegment_sent_on_its_own_in_the_aws_namespace_is_a_call() {
    let document = accept(
        json!({"name":"DynamoDB","id":"0000000000000002","parent_id":"0000000000000001",
               "trace_id":"1-6744a1b2-0123456789abcdef01234567","type":"subsegment","namespace":"aws",
               "start_time":1.0,"end_time":1.5,"fault":true,"aws":{"operation":"GetItem","table_name":"orders"}})
        .to_string(),
    );
    let call = &document.info.facts.calls[..];
    assert_eq!(call.len(), 1);
    assert_eq!((call[0].name.as_str(), call[0].namespace, call[0].fault), ("DynamoDB", CallNamespace::Aws, true));
    assert_eq!((call[0].start_time, call[0].end_time), (1.0, Some(1.5)));
}

#[test]
fn continuing_segment_keeps_parent_id_fault_and_a_string_cause() {
    let info = fixture_document("xray_sdk_basic", "0002.txt").info;
    assert_eq!(info.kind, DocumentKind::Segment);
    assert_eq!(info.name, "payments-svc");
    assert_eq!(info.parent_id, Some(id("53995c3f42cd8ad8")));
    assert!(info.facts.fault && !info.facts.error && !info.facts.throttle);
    assert_eq!(
        info.facts.http,
        Some(HttpFacts {
            method: Some("GET".into()),
            url: Some("http://payments.internal/pay".into()),
            status: Some(503),
            ..HttpFacts::default()
        })
    );
    assert_eq!(info.facts.user, None);
    assert!(info.facts.annotations.is_empty());
    assert_eq!(info.facts.subsegment_ids, [id("2a7d8a28f1a2f24b")]);
}

#[test]
fn streamed_subsegment_reads_parent_and_its_remaining_children() {
    let info = fixture_document("xray_sdk_streaming", "0007.txt").info;
    assert_eq!(info.kind, DocumentKind::Subsegment);
    assert_eq!(info.name, "batch-loop");
    assert_eq!(info.parent_id, Some(id("c704d75114be6320")));
    assert_eq!(
        info.facts.annotations,
        [
            ("batch_size".to_owned(), AnnotationValue::Number(8.0)),
            ("item_index".to_owned(), AnnotationValue::Number(6.0)),
            ("item_index".to_owned(), AnnotationValue::Number(7.0)),
        ]
    );
    assert_eq!(info.facts.subsegment_ids, [id("46fa676d30f5b214"), id("0a8966a4c21476e9")]);

    let last = fixture_document("xray_sdk_streaming", "0013.txt").info;
    assert_eq!((last.kind, last.parent_id, last.name.as_str()), (DocumentKind::Segment, None, "batch-worker"));
    assert!(last.facts.subsegment_ids.is_empty());
}

#[test]
fn lambda_handler_subsegment_reads_its_facade_parent_fault_and_annotations() {
    let info = fixture_document("powertools_lambda", "0009.txt").info;
    assert_eq!(info.kind, DocumentKind::Subsegment);
    assert_eq!(info.name, "## handler");
    assert_eq!(info.parent_id, Some(id("3333333333333333")));
    assert!(info.facts.fault);
    assert_eq!(
        info.facts.annotations,
        [("ColdStart".to_owned(), AnnotationValue::Bool(false)), ("Service".to_owned(), string("orders"))]
    );

    let call = fixture_document("powertools_lambda", "0001.txt").info;
    assert_eq!(call.facts.http.unwrap().method.as_deref(), Some("get"));
    let method = fixture_document("powertools_lambda", "0002.txt").info;
    assert_eq!(
        method.facts.annotations,
        [
            ("order_id".to_owned(), string("o-1")),
            ("priority".to_owned(), AnnotationValue::Number(2.0)),
            ("express".to_owned(), AnnotationValue::Bool(true)),
        ]
    );
}

#[test]
fn aws_origin_and_resource_facts_are_read() {
    let document = accept(segment(json!({
        "origin": "AWS::EC2::Instance",
        "resource_arn": "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
        "aws": {"account_id": "123456789012", "ec2": {"instance_id": "i-0abc", "availability_zone": "us-east-1a"}},
    })));
    let facts = document.info.facts;
    assert_eq!(facts.origin.as_deref(), Some("AWS::EC2::Instance"));
    assert_eq!(facts.resource_arn.as_deref(), Some("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"));
    assert_eq!(facts.account_id.as_deref(), Some("123456789012"));
    assert_eq!(facts.instance_id.as_deref(), Some("i-0abc"));
    assert_eq!(facts.availability_zone.as_deref(), Some("us-east-1a"));
}

#[test]
fn embedded_subsegments_in_progress_are_listed() {
    let open = accept(segment(json!({"in_progress": true, "end_time": "<absent>"}))).info;
    assert!(open.in_progress && open.facts.in_progress_subsegments.is_empty());
    assert_eq!(open.end_time, None);

    let nested_open = json!([subsegment(
        "0000000000000001",
        json!({
            "subsegments": [subsegment("0000000000000002", json!({"in_progress": true, "end_time": "<absent>"}))],
        })
    )]);
    let info = accept(segment(json!({"in_progress": false, "subsegments": nested_open}))).info;
    assert!(!info.in_progress);
    assert_eq!(info.facts.in_progress_subsegments, [id("0000000000000002")]);
    assert_eq!(info.facts.subsegment_ids, [id("0000000000000001"), id("0000000000000002")]);

    let closed = accept(segment(json!({"subsegments": [subsegment("0000000000000001", json!({}))]}))).info;
    assert!(closed.facts.in_progress_subsegments.is_empty());
}

#[test]
fn escaped_strings_are_read_unescaped() {
    let document = accept(segment(json!({"name": "caf\u{e9} \"api\"", "user": "a\\b"})).replace('é', "\\u00e9"));
    assert_eq!(document.info.name, "café \"api\"");
    assert_eq!(document.info.facts.user.as_deref(), Some("a\\b"));
}

// === one test per kind of rejection ===

#[test]
fn too_large_documents_are_rejected() {
    let base = segment(json!({}));
    let padded = |total: usize| format!("{}{}", base, " ".repeat(total - base.len()));
    accept(padded(MAX_DOCUMENT_BYTES));
    let error =
        check(padded(MAX_DOCUMENT_BYTES + 1), TooLarge, "document is 65537 bytes, more than the limit of 65536");
    assert_eq!(error.id, None);
}

#[test]
fn empty_and_blank_documents_are_rejected() {
    for blank in ["", " ", " \n\t\r "] {
        check(blank, Empty, "document is empty");
    }
}

#[test]
fn documents_that_are_not_utf8_are_rejected() {
    check(b"{\"name\":\"\xff\"}", InvalidJson, "document is not UTF-8: invalid utf-8 sequence of 1 bytes from index 9");
}

#[test]
fn broken_json_is_rejected() {
    check(r#"{"name":"#, InvalidJson, "document is not valid JSON: EOF while parsing a value at line 1 column 8");
    check(r#"{"name":"api"} x"#, InvalidJson, "document is not valid JSON: trailing characters at line 1 column 16");
    check("{\"name\":\n\"api\",}", InvalidJson, "document is not valid JSON: trailing comma at line 2 column 7");
}

#[test]
fn json_that_is_not_an_object_is_rejected() {
    check("[1,2]", InvalidJson, "document must be a JSON object, got an array");
    check("42", InvalidJson, "document must be a JSON object, got a number");
    check(r#""api""#, InvalidJson, "document must be a JSON object, got a string");
    check("null", InvalidJson, "document must be a JSON object, got null");
    check("true", InvalidJson, "document must be a JSON object, got a boolean");
}

#[test]
fn arrays_shaped_like_the_fields_of_an_object_are_rejected() {
    // serde's derived structs also read an array of their fields in order (id,
    // name, trace_id, parent_id, type, start_time, end_time, then 15 more); a
    // document must still be an object, and so must each block inside it.
    let entity_as_array = |id: &str| {
        let mut fields = vec![Value::Null; 22];
        (fields[0], fields[1], fields[2], fields[5], fields[6]) =
            (json!(id), json!("api"), json!(TRACE), json!(1.0), json!(2.0));
        Value::Array(fields)
    };
    check(entity_as_array(ID).to_string(), InvalidJson, "document must be a JSON object, got an array");
    check(
        segment(json!({"subsegments": [entity_as_array("0000000000000001")]})),
        WrongType,
        "subsegments[0] must be an object, got an array",
    );
    check(segment(json!({"http": {"response": [503]}})), WrongType, "http.response must be an object, got an array");
    check(
        segment(json!({"http": {"request": ["GET", "/", "curl", "1.2.3.4"]}})),
        WrongType,
        "http.request must be an object, got an array",
    );
    check(segment(json!({"http": [null, null]})), WrongType, "http must be an object, got an array");
    check(segment(json!({"aws": {"ec2": ["i-1", "az"]}})), WrongType, "aws.ec2 must be an object, got an array");
}

#[test]
fn missing_required_fields_are_rejected() {
    for field in ["id", "trace_id", "name", "start_time"] {
        let error = check(segment(json!({field: "<absent>"})), MissingField, &format!("{field} is required"));
        assert_eq!(error.id.as_deref(), if field == "id" { None } else { Some(ID) });
    }
    for field in ["id", "name", "start_time"] {
        check(
            segment(json!({"subsegments": [subsegment("0000000000000001", json!({field: "<absent>"}))]})),
            MissingField,
            &format!("subsegments[0].{field} is required"),
        );
    }
}

#[test]
fn end_time_is_required_unless_in_progress() {
    check(segment(json!({"end_time": "<absent>"})), InvalidTime, "end_time is required unless in_progress is true");
    check(
        segment(json!({"end_time": "<absent>", "in_progress": false})),
        InvalidTime,
        "end_time is required unless in_progress is true",
    );
    check(segment(json!({"end_time": null})), InvalidTime, "end_time is required unless in_progress is true");
    let open = accept(segment(json!({"end_time": "<absent>", "in_progress": true}))).info;
    assert!(open.in_progress);
    check(
        segment(json!({"subsegments": [subsegment("0000000000000001", json!({"end_time": "<absent>"}))]})),
        InvalidTime,
        "subsegments[0].end_time is required unless in_progress is true",
    );
}

#[test]
fn fields_of_the_wrong_json_type_are_rejected_naming_the_field() {
    let cases = [
        (json!({"start_time": "1732536000"}), "start_time must be a number, got a string"),
        (json!({"end_time": true}), "end_time must be a number, got a boolean"),
        (json!({"name": 7}), "name must be a string, got a number"),
        (json!({"in_progress": "false"}), "in_progress must be a boolean, got a string"),
        (json!({"fault": 1}), "fault must be a boolean, got a number"),
        (json!({"user": ["alice"]}), "user must be a string, got an array"),
        (json!({"metadata": "x"}), "metadata must be an object, got a string"),
        (json!({"sql": []}), "sql must be an object, got an array"),
        (json!({"annotations": [1]}), "annotations must be an object, got an array"),
        (json!({"annotations": {"k": {"a": 1}}}), "annotations.k must be a string, number or boolean, got an object"),
        (json!({"annotations": {"k": null}}), "annotations.k must be a string, number or boolean, got null"),
        (json!({"annotations": {"k": [1]}}), "annotations.k must be a string, number or boolean, got an array"),
        (
            json!({"http": {"response": {"status": "200"}}}),
            "http.response.status must be an integer status code, got a string",
        ),
        (
            json!({"http": {"response": {"status": 200.5}}}),
            "http.response.status must be an integer status code, got a number",
        ),
        (
            json!({"http": {"response": {"status": 70000}}}),
            "http.response.status must be an integer status code, got a number",
        ),
        (json!({"http": {"request": {"method": 1}}}), "http.request.method must be a string, got a number"),
        (json!({"aws": {"ec2": {"instance_id": false}}}), "aws.ec2.instance_id must be a string, got a boolean"),
        (json!({"subsegments": {"id": "0000000000000001"}}), "subsegments must be an array, got an object"),
        (json!({"cause": 3}), "cause must be an object or an exception id string, got a number"),
    ];
    for (changes, message) in cases {
        let error = check(segment(changes), WrongType, message);
        assert_eq!(error.id.as_deref(), Some(ID), "{message}");
    }
    // An id that is not a string is not readable.
    let error = check(segment(json!({"id": 7})), WrongType, "id must be a string, got a number");
    assert_eq!(error.id, None);
}

#[test]
fn wrong_types_in_nested_subsegments_name_their_path() {
    let nested = json!([
        subsegment("0000000000000001", json!({})),
        subsegment("0000000000000002", json!({"start_time": "soon"})),
    ]);
    let error = check(
        segment(json!({"subsegments": nested})),
        WrongType,
        "subsegments[1].start_time must be a number, got a string",
    );
    assert_eq!(error.id.as_deref(), Some(ID));

    let deep = json!([subsegment(
        "0000000000000001",
        json!({
            "subsegments": [
                subsegment("0000000000000002", json!({})),
                subsegment("0000000000000003", json!({"http": {"response": {"status": "404"}}})),
            ],
        })
    )]);
    check(
        segment(json!({"subsegments": deep})),
        WrongType,
        "subsegments[0].subsegments[1].http.response.status must be an integer status code, got a string",
    );
    check(
        segment(json!({"subsegments": [subsegment("0000000000000001", json!({"cause": 3}))]})),
        WrongType,
        "subsegments[0].cause must be an object or an exception id string, got a number",
    );
    check(segment(json!({"subsegments": [7]})), WrongType, "subsegments[0] must be an object, got a number");
}

#[test]
fn cause_may_be_an_object_or_an_exception_id() {
    accept(segment(json!({"fault": true, "cause": "8af79ea85e3026bf"})));
    accept(segment(
        json!({"fault": true, "cause": {"working_directory": "/srv", "exceptions": [{"id": "8af79ea85e3026bf"}]}}),
    ));
    accept(segment(json!({"subsegments": [subsegment("0000000000000001", json!({"cause": "8af79ea85e3026bf"}))]})));
    check(segment(json!({"cause": 8})), WrongType, "cause must be an object or an exception id string, got a number");
}

#[test]
fn embedded_subsegments_are_entities_each_after_the_one_enclosing_it() {
    let exception = json!({"cause": {"exceptions": [{"id": "8af79ea85e3026bf", "type": "ValueError",
        "message": "bad \"id\"", "remote": false, "stack": [{"path": "app.py", "line": 3}]}]}});
    let info = accept(segment(json!({"subsegments": [
        subsegment("0000000000000001", json!({"namespace": "remote", "error": true, "subsegments": [
            subsegment("0000000000000002", json!({"fault": true, "throttle": true, "cause": exception["cause"]})),
            subsegment("0000000000000003", json!({"namespace": "local", "in_progress": true, "end_time": "<absent>"})),
        ]})),
        subsegment("0000000000000004", json!({"name": "DynamoDB", "namespace": "aws", "cause": "8af79ea85e3026bf"})),
    ]})))
    .info;
    let entities = &info.facts.entities;
    let shape: Vec<_> = entities
        .iter()
        .map(|entity| {
            (
                entity.id,
                entity.parent,
                entity.name.as_str(),
                entity.namespace,
                (entity.error, entity.fault, entity.throttle),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (id("0000000000000001"), None, "work", Some(Namespace::Remote), (true, false, false)),
            (id("0000000000000002"), Some(0), "work", None, (false, true, true)),
            (id("0000000000000003"), Some(0), "work", Some(Namespace::Local), (false, false, false)),
            (id("0000000000000004"), None, "DynamoDB", Some(Namespace::Aws), (false, false, false)),
        ]
    );
    assert_eq!((entities[0].start_time, entities[0].end_time), (1732536000.1, Some(1732536000.2)));
    assert_eq!(entities[2].end_time, None);
    let value_error = Exception { name: Some("ValueError".into()), message: Some("bad \"id\"".into()) };
    assert_eq!(entities[1].exceptions, [value_error]);
    // A cause naming an exception recorded elsewhere brings none.
    assert!(entities[3].exceptions.is_empty());
    assert_eq!(info.facts.subsegment_ids, entities.iter().map(|entity| entity.id).collect::<Vec<_>>());
    assert!(info.facts.exceptions.is_empty() && info.facts.namespace.is_none());
}

#[test]
fn a_document_keeps_its_own_namespace_and_exceptions() {
    let handler = fixture_document("powertools_lambda", "0009.txt").info;
    assert_eq!(handler.facts.namespace, Some(Namespace::Local));
    assert!(handler.facts.exceptions.is_empty(), "its cause is the id of its child's exception");
    let fetch = fixture_document("powertools_lambda", "0008.txt").info;
    assert_eq!(
        fetch.facts.exceptions,
        [Exception { name: Some("RuntimeError".into()), message: Some("order service exploded for o-3".into()) }]
    );
    let call = fixture_document("powertools_lambda", "0007.txt").info;
    assert_eq!(call.facts.namespace, Some(Namespace::Remote));
    assert!(call.facts.entities.is_empty());
}

#[test]
fn what_cause_holds_beyond_exception_types_and_messages_never_rejects_a_document() {
    let exceptions = |cause: Value| accept(segment(json!({"cause": cause}))).info.facts.exceptions;
    assert_eq!(
        exceptions(json!({"exceptions": [5, "x", null, [1], {"type": 3, "message": "m", "stack": {"odd": true}},
            {"type": "E", "message": ["not", "text"], "cause": "0000000000000001"}], "paths": 7})),
        [Exception { name: None, message: Some("m".into()) }, Exception { name: Some("E".into()), message: None }]
    );
    for odd in
        [json!({"exceptions": "x"}), json!({"exceptions": {"type": "E"}}), json!({"exceptions": null}), json!({})]
    {
        assert!(exceptions(odd.clone()).is_empty(), "{odd}");
    }
    // Of a repeated member, the last counts.
    let text = segment(json!({})).replace('}', r#","cause":{"exceptions":[{"type":"A","type":"B"}]}}"#);
    assert_eq!(accept(text).info.facts.exceptions, [Exception { name: Some("B".into()), message: None }]);
}

#[test]
fn malformed_trace_ids_are_rejected() {
    let error = check(
        segment(json!({"trace_id": "1-6744a1b2-0123"})),
        InvalidTraceId,
        r#"trace_id: trace id must be 1-<8 hex digits>-<24 hex digits>, got "1-6744a1b2-0123""#,
    );
    assert_eq!(error.id.as_deref(), Some(ID));
    check(
        segment(json!({"subsegments": [subsegment("0000000000000001", json!({"trace_id": "6744a1b2"}))]})),
        InvalidTraceId,
        r#"subsegments[0].trace_id: trace id must be 1-<8 hex digits>-<24 hex digits>, got "6744a1b2""#,
    );
}

#[test]
fn malformed_segment_ids_are_rejected() {
    let error = check(
        segment(json!({"id": "70de5b6f"})),
        InvalidSegmentId,
        r#"id: segment id must be 16 hex digits, got "70de5b6f""#,
    );
    assert_eq!(error.id.as_deref(), Some("70de5b6f"));
    check(
        segment(json!({"parent_id": "zzzzzzzzzzzzzzzz"})),
        InvalidSegmentId,
        r#"parent_id: segment id must be 16 hex digits, got "zzzzzzzzzzzzzzzz""#,
    );
    check(
        segment(json!({"subsegments": [subsegment("1", json!({}))]})),
        InvalidSegmentId,
        r#"subsegments[0].id: segment id must be 16 hex digits, got "1""#,
    );
    let deep = json!([subsegment(
        "0000000000000001",
        json!({
            "subsegments": [subsegment("0000000000000002", json!({"parent_id": "0000000000000001x"}))],
        })
    )]);
    check(
        segment(json!({"subsegments": deep})),
        InvalidSegmentId,
        r#"subsegments[0].subsegments[0].parent_id: segment id must be 16 hex digits, got "0000000000000001x""#,
    );
}

#[test]
fn type_other_than_subsegment_is_rejected() {
    check(segment(json!({"type": "segment"})), InvalidType, r#"type must be "subsegment" or absent, got "segment""#);
    check(
        segment(json!({"type": "Subsegment"})),
        InvalidType,
        r#"type must be "subsegment" or absent, got "Subsegment""#,
    );
    check(segment(json!({"type": 1})), WrongType, "type must be a string, got a number");
}

#[test]
fn subsegment_sent_on_its_own_needs_a_parent_id() {
    let error =
        check(segment(json!({"type": "subsegment"})), InvalidType, "a subsegment sent on its own needs a parent_id");
    assert_eq!(error.id.as_deref(), Some(ID));
    let info = accept(segment(json!({"type": "subsegment", "parent_id": "53995c3f42cd8ad8"}))).info;
    assert_eq!((info.kind, info.parent_id), (DocumentKind::Subsegment, Some(id("53995c3f42cd8ad8"))));
}

#[test]
fn annotation_keys_must_be_letters_digits_or_underscore() {
    for key in ["order-id", "order id", "", "ordér"] {
        let error = check(
            segment(json!({"annotations": {key: 1}})),
            InvalidAnnotation,
            &format!("annotations: key {key:?} must be 1 to 500 letters, digits or _"),
        );
        assert_eq!(error.id.as_deref(), Some(ID));
    }
    accept(segment(json!({"annotations": {"a".repeat(500): 1, "Order_Id_2": "x"}})));
    let long = "a".repeat(501);
    check(
        segment(json!({"annotations": {long.clone(): 1}})),
        InvalidAnnotation,
        &format!("annotations: key {long:?} must be 1 to 500 letters, digits or _"),
    );
    check(
        segment(json!({"subsegments": [subsegment("0000000000000001", json!({"annotations": {"a-b": true}}))]})),
        InvalidAnnotation,
        r#"subsegments[0].annotations: key "a-b" must be 1 to 500 letters, digits or _"#,
    );
}

#[test]
fn annotation_strings_are_at_most_1000_characters() {
    // Characters, not bytes: 1000 two-byte characters fit.
    accept(segment(json!({"annotations": {"note": "é".repeat(1000)}})));
    check(
        segment(json!({"annotations": {"note": "x".repeat(1001)}})),
        InvalidAnnotation,
        "annotations.note is longer than 1000 characters",
    );
    check(
        segment(
            json!({"subsegments": [subsegment("0000000000000001", json!({"annotations": {"note": "x".repeat(1001)}}))]}),
        ),
        InvalidAnnotation,
        "subsegments[0].annotations.note is longer than 1000 characters",
    );
}

#[test]
fn names_must_be_non_empty_and_not_too_long() {
    check(segment(json!({"name": ""})), InvalidName, "name is empty");
    accept(segment(json!({"name": "é".repeat(200)})));
    let error = check(segment(json!({"name": "x".repeat(201)})), InvalidName, "name is longer than 200 characters");
    assert_eq!(error.id.as_deref(), Some(ID));

    let standalone =
        |name: String| segment(json!({"type": "subsegment", "parent_id": "53995c3f42cd8ad8", "name": name}));
    accept(standalone("x".repeat(250)));
    check(standalone("x".repeat(251)), InvalidName, "name is longer than 250 characters");

    let embedded =
        |name: String| segment(json!({"subsegments": [subsegment("0000000000000001", json!({"name": name}))]}));
    accept(embedded("x".repeat(250)));
    check(embedded("x".repeat(251)), InvalidName, "subsegments[0].name is longer than 250 characters");
    check(embedded(String::new()), InvalidName, "subsegments[0].name is empty");
}

#[test]
fn times_must_be_non_negative_finite_numbers() {
    let message = |field: &str| format!("{field} must be a non-negative number of epoch seconds");
    check(segment(json!({"start_time": -1.0})), InvalidTime, &message("start_time"));
    check(segment(json!({"end_time": -0.5})), InvalidTime, &message("end_time"));
    check(
        segment(json!({"subsegments": [subsegment("0000000000000001", json!({"start_time": -3}))]})),
        InvalidTime,
        &message("subsegments[0].start_time"),
    );
    accept(segment(json!({"start_time": 0, "end_time": 1})));
    // JSON has no infinity; a number too large for an f64 is not valid JSON.
    check(
        r#"{"start_time":1e999}"#,
        InvalidJson,
        "document is not valid JSON: number out of range at line 1 column 19",
    );
}

#[test]
fn every_kind_has_a_distinct_code() {
    let codes: std::collections::HashSet<_> = ValidationErrorKind::ALL.iter().map(|kind| kind.code()).collect();
    assert_eq!(codes.len(), ValidationErrorKind::ALL.len());
    assert_eq!(TooLarge.code(), "DocumentTooLarge");
}
