use serde_json::{Value as Json, json};

use super::*;
use crate::decode_json;

const TRACE: &str = "6744c0000123456789abcdef01234567";

/// Translates one resource's spans, given in OTLP/JSON, with `service.name`
/// "checkout" and the extra resource attributes.
fn translate_with(translator: &Translator, resource: Json, spans: Json) -> Translation {
    let mut attributes = vec![json!({"key": "service.name", "value": {"stringValue": "checkout"}})];
    for (key, value) in resource.as_object().unwrap() {
        attributes.push(json!({"key": key, "value": {"stringValue": value}}));
    }
    let body = json!({"resourceSpans": [{"resource": {"attributes": attributes}, "scopeSpans": [{"spans": spans}]}]});
    translator.translate(&decode_json(body.to_string().as_bytes()).unwrap())
}

fn translate(spans: Json) -> Vec<Json> {
    let translation = translate_with(&Translator::default(), json!({}), spans);
    assert_eq!(translation.rejected, vec![]);
    translation.documents.iter().map(|document| serde_json::from_str(&document.text).unwrap()).collect()
}

/// A span of [`TRACE`] lasting one millisecond.
fn span(id: &str, parent: &str, kind: i32, attributes: Json) -> Json {
    let attributes: Vec<Json> = attributes
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Json::String(text) => json!({"stringValue": text}),
                Json::Bool(flag) => json!({"boolValue": flag}),
                Json::Number(number) if number.is_i64() => json!({"intValue": number}),
                Json::Number(number) => json!({"doubleValue": number}),
                Json::Array(items) => json!({"arrayValue": {"values": items.iter().map(|item| json!({"stringValue": item})).collect::<Vec<_>>()}}),
                other => panic!("no attribute value for {other}"),
            };
            json!({"key": key, "value": value})
        })
        .collect();
    json!({
        "traceId": TRACE, "spanId": id, "parentSpanId": parent, "name": format!("span {id}"), "kind": kind,
        "startTimeUnixNano": "1732558848000000000", "endTimeUnixNano": "1732558848001000000",
        "attributes": attributes,
    })
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INTERNAL: i32 = 1;

#[test]
fn a_server_span_is_a_segment_named_after_the_service_and_holds_its_children() {
    let documents = translate(json!([
        span("00000000000000b1", "00000000000000a1", INTERNAL, json!({})),
        span("00000000000000a1", "", SERVER, json!({})),
        span("00000000000000c1", "00000000000000b1", INTERNAL, json!({})),
    ]));
    assert_eq!(documents.len(), 1);
    let segment = &documents[0];
    assert_eq!(segment["name"], "checkout");
    assert_eq!(segment["trace_id"], "1-6744c000-0123456789abcdef01234567");
    assert_eq!(segment.get("type"), None);
    let child = &segment["subsegments"][0];
    assert_eq!(
        (child["id"].as_str(), child["name"].as_str()),
        (Some("00000000000000b1"), Some("span 00000000000000b1"))
    );
    assert_eq!(child["namespace"], "local");
    let embedded_names_no_place = ["type", "parent_id", "trace_id"].map(|key| child.get(key));
    assert_eq!(embedded_names_no_place, [None, None, None]);
    assert_eq!(child["subsegments"][0]["id"], "00000000000000c1");
}

#[test]
fn a_subsegment_whose_parent_is_elsewhere_is_standalone() {
    let documents = translate(json!([span("00000000000000b1", "00000000000000a1", INTERNAL, json!({}))]));
    assert_eq!(documents[0]["type"], "subsegment");
    assert_eq!(documents[0]["parent_id"], "00000000000000a1");
    assert_eq!(documents[0]["trace_id"], "1-6744c000-0123456789abcdef01234567");
}

#[test]
fn a_span_with_a_remote_parent_is_a_segment() {
    let mut internal = span("00000000000000b1", "00000000000000a1", INTERNAL, json!({}));
    internal["flags"] = json!(0x301);
    let documents = translate(json!([internal]));
    assert_eq!((documents[0]["name"].as_str(), documents[0].get("type")), (Some("checkout"), None));
    assert_eq!(documents[0]["parent_id"], "00000000000000a1");
}

#[test]
fn a_random_w3c_trace_id_maps_by_inserting_dashes_and_back() {
    let mut root = span("00000000000000a1", "", SERVER, json!({}));
    root["traceId"] = json!("4bf92f3577b34da6a3ce929d0e0e4736");
    let documents = translate(json!([root]));
    let id = documents[0]["trace_id"].as_str().unwrap();
    assert_eq!(id, "1-4bf92f35-77b34da6a3ce929d0e0e4736");
    assert_eq!(id.parse::<TraceId>().unwrap().to_w3c(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn client_calls_are_remote_subsegments_named_after_the_server_with_an_http_block() {
    let documents = translate(json!([
        span(
            "00000000000000a1",
            "",
            SERVER,
            json!({"http.method": "POST", "http.target": "/orders?x=1", "http.host": "shop.example.com", "http.scheme": "https", "http.status_code": 201, "http.user_agent": "curl/8", "http.client_ip": "203.0.113.9"})
        ),
        span(
            "00000000000000b1",
            "00000000000000a1",
            CLIENT,
            json!({"http.request.method": "GET", "url.full": "http://inventory:8080/stock/42", "http.response.status_code": 429})
        ),
    ]));
    let segment = &documents[0];
    assert_eq!(
        segment["http"],
        json!({"request": {"method": "POST", "url": "https://shop.example.com/orders?x=1", "client_ip": "203.0.113.9", "user_agent": "curl/8"}, "response": {"status": 201}})
    );
    let call = &segment["subsegments"][0];
    assert_eq!((call["name"].as_str(), call["namespace"].as_str()), (Some("inventory"), Some("remote")));
    assert_eq!(call["http"]["response"]["status"], 429);
    assert_eq!(
        (call["error"].as_bool(), call["throttle"].as_bool(), call.get("fault")),
        (Some(true), Some(true), None)
    );
    assert_eq!(segment["metadata"].get("default"), None, "http attributes are in the http block only");
}

#[test]
fn status_and_http_status_give_the_flags() {
    let flags = |code, status| {
        let Flags { error, fault, throttle } = Flags::of(code, status);
        (error, fault, throttle)
    };
    assert_eq!(flags(status_code::ERROR, None), (false, true, false));
    assert_eq!(flags(status_code::ERROR, Some(404)), (true, false, false));
    assert_eq!(flags(status_code::ERROR, Some(503)), (false, true, false));
    assert_eq!(flags(status_code::UNSET, Some(429)), (true, false, true));
    assert_eq!(flags(status_code::UNSET, Some(500)), (false, true, false));
    assert_eq!(flags(status_code::UNSET, Some(200)), (false, false, false));
    assert_eq!(flags(status_code::OK, Some(500)), (false, false, false));
}

#[test]
fn an_exception_event_gives_the_cause_and_a_failed_span_without_one_its_status_message() {
    let mut failing = span("00000000000000a1", "", SERVER, json!({}));
    failing["status"] = json!({"code": 2, "message": "boom"});
    failing["events"] = json!([{"name": "exception", "timeUnixNano": "1732558848000500000", "attributes": [
        {"key": "exception.type", "value": {"stringValue": "KeyError"}},
        {"key": "exception.message", "value": {"stringValue": "'sku'"}},
    ]}]);
    let mut plain = span("00000000000000a2", "", SERVER, json!({}));
    plain["status"] = json!({"code": 2, "message": "boom"});
    let documents = translate(json!([failing, plain]));
    let exception = &documents[0]["cause"]["exceptions"][0];
    assert_eq!((exception["type"].as_str(), exception["message"].as_str()), (Some("KeyError"), Some("'sku'")));
    assert_eq!(exception["id"].as_str().unwrap().len(), 16);
    assert_eq!(documents[0]["fault"], true);
    assert_eq!(documents[1]["cause"]["exceptions"][0]["message"], "boom");
}

#[test]
fn stack_traces_of_python_java_and_javascript_are_parsed_innermost_first() {
    let python = "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    run()\n  File \"/app/orders.py\", line 42, in place\n    raise ValueError()\nValueError\n";
    assert_eq!(
        parse_stack(python),
        vec![
            json!({"path": "/app/orders.py", "line": 42, "label": "place"}),
            json!({"path": "/app/main.py", "line": 3, "label": "<module>"})
        ]
    );
    let java = "java.lang.IllegalStateException: no\n\tat com.example.Orders.place(Orders.java:42)\n\tat com.example.Main.main(Main.java:7)";
    assert_eq!(parse_stack(java)[0], json!({"path": "Orders.java", "line": 42, "label": "com.example.Orders.place"}));
    let javascript = "Error: no\n    at place (/srv/app.js:42:7)\n    at /srv/main.js:3:1";
    assert_eq!(
        parse_stack(javascript),
        vec![json!({"path": "/srv/app.js", "line": 42, "label": "place"}), json!({"path": "/srv/main.js", "line": 3})]
    );
    assert_eq!(parse_stack("no frames here"), Vec::<Json>::new());
}

#[test]
fn aws_sdk_calls_are_aws_subsegments_with_the_aws_block() {
    let documents = translate(json!([span(
        "00000000000000b1",
        "00000000000000a1",
        CLIENT,
        json!({"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": "GetItem", "aws.region": "eu-west-1", "aws.request_id": "R1", "aws.dynamodb.table_names": ["orders"]})
    )]));
    let call = &documents[0];
    assert_eq!((call["name"].as_str(), call["namespace"].as_str()), (Some("DynamoDB"), Some("aws")));
    assert_eq!(
        call["aws"],
        json!({"operation": "GetItem", "region": "eu-west-1", "request_id": "R1", "table_name": "orders"})
    );
}

#[test]
fn database_calls_get_the_sql_block_and_the_xray_sql_name() {
    let documents = translate(json!([span(
        "00000000000000b1",
        "00000000000000a1",
        CLIENT,
        json!({"db.system": "postgresql", "db.name": "shop", "server.address": "db.internal", "db.statement": "SELECT 1", "db.user": "app"})
    )]));
    assert_eq!(documents[0]["name"], "shop@db.internal");
    assert_eq!(
        documents[0]["sql"],
        json!({"database_type": "postgresql", "sanitized_query": "SELECT 1", "url": "db.internal/shop", "user": "app"})
    );
}

#[test]
fn configured_and_listed_attributes_are_annotations_with_xray_keys_and_the_rest_metadata() {
    let spans = json!([span(
        "00000000000000a1",
        "",
        SERVER,
        json!({"app.order_id": 42, "tenant": "acme", "aws.xray.annotations": ["tenant", "app.vip"], "app.vip": true, "app.tags": ["a"], "note": "kept"})
    )]);
    let translation = translate_with(&Translator::new(["app.order_id".to_owned()]), json!({}), spans);
    let segment: Json = serde_json::from_str(&translation.documents[0].text).unwrap();
    assert_eq!(segment["annotations"], json!({"app_order_id": 42, "tenant": "acme", "app_vip": true}));
    assert_eq!(segment["metadata"]["default"], json!({"app.tags": ["a"], "note": "kept"}));
    assert!(baton_model::Document::parse(translation.documents[0].text.as_bytes()).is_ok());
}

#[test]
fn lambda_resources_give_the_origin_and_the_function_arn() {
    let resource = json!({"cloud.platform": "aws_lambda", "cloud.region": "us-east-1", "cloud.account.id": "123456789012", "faas.name": "orders"});
    let translation =
        translate_with(&Translator::default(), resource, json!([span("00000000000000a1", "", SERVER, json!({}))]));
    let segment: Json = serde_json::from_str(&translation.documents[0].text).unwrap();
    assert_eq!(segment["origin"], "AWS::Lambda::Function");
    assert_eq!(segment["resource_arn"], "arn:aws:lambda:us-east-1:123456789012:function:orders");
    assert_eq!(segment["aws"]["account_id"], "123456789012");
}

#[test]
fn a_bad_span_is_rejected_and_its_neighbours_kept() {
    let mut bad = span("00000000000000b1", "", SERVER, json!({}));
    bad["spanId"] = json!("abcdef");
    let mut unended = span("00000000000000b2", "", SERVER, json!({}));
    unended["endTimeUnixNano"] = json!("0");
    let translation = translate_with(
        &Translator::default(),
        json!({}),
        json!([bad, span("00000000000000a1", "", SERVER, json!({})), unended]),
    );
    assert_eq!(translation.documents.len(), 1);
    let reasons: Vec<_> = translation.rejected.iter().map(|rejected| rejected.reason.as_str()).collect();
    assert_eq!(reasons, ["span id must be 8 bytes, not all zero, got \"abcdef\"", "span has no end time"]);
}

#[test]
fn a_tree_too_large_for_one_document_is_split_and_every_span_written_once() {
    let big = "x".repeat(20_000);
    let mut spans = vec![span("00000000000000a1", "", SERVER, json!({}))];
    for n in 1..=5 {
        spans.push(span(&format!("00000000000000b{n}"), "00000000000000a1", INTERNAL, json!({"blob": big})));
    }
    let translation = translate_with(&Translator::default(), json!({}), Json::Array(spans));
    assert!(translation.documents.iter().all(|document| document.text.len() <= MAX_DOCUMENT_BYTES));
    assert_eq!(translation.documents.iter().map(|document| document.spans).sum::<u64>(), 6);
    assert_eq!(translation.documents.len(), 6);
}

#[test]
fn spans_in_a_parent_cycle_are_each_written_once() {
    let documents = translate(json!([
        span("00000000000000b1", "00000000000000b2", INTERNAL, json!({})),
        span("00000000000000b2", "00000000000000b1", INTERNAL, json!({})),
    ]));
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0]["subsegments"][0]["id"], "00000000000000b2");
}

#[test]
fn deep_trees_stop_embedding_at_the_depth_bound() {
    let mut spans = vec![span("0000000000000100", "", SERVER, json!({}))];
    for n in 1..=40u64 {
        spans.push(span(&format!("{:016x}", 0x100 + n), &format!("{:016x}", 0x100 + n - 1), INTERNAL, json!({})));
    }
    let translation = translate_with(&Translator::default(), json!({}), Json::Array(spans));
    assert_eq!(translation.documents.len(), 2);
    assert_eq!(translation.documents.iter().map(|document| document.spans).collect::<Vec<_>>(), [32, 9]);
    assert!(
        translation.documents.iter().all(|document| baton_model::Document::parse(document.text.as_bytes()).is_ok())
    );
}

#[test]
fn annotations_xray_would_refuse_stay_in_metadata_and_an_empty_service_name_is_unknown() {
    let long = "x".repeat(1001);
    let spans = json!([span(
        "00000000000000a1",
        "",
        SERVER,
        json!({"note": long, "": "empty key", "aws.xray.annotations": ["note", ""]})
    )]);
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": ""}}]}, "scopeSpans": [{"spans": spans}]}]});
    let translation = Translator::default().translate(&decode_json(body.to_string().as_bytes()).unwrap());
    let text = &translation.documents[0].text;
    assert!(baton_model::Document::parse(text.as_bytes()).is_ok(), "{text}");
    let segment: Json = serde_json::from_str(text).unwrap();
    assert_eq!(segment["name"], "unknown_service");
    assert_eq!(segment.get("annotations"), None);
    assert_eq!(segment["metadata"]["default"]["note"].as_str().map(str::len), Some(1001));
}

#[test]
fn a_rejection_quotes_at_most_32_bytes_of_an_id() {
    let mut bad = span("00000000000000a1", "", SERVER, json!({}));
    bad["spanId"] = json!("ab".repeat(1000));
    let translation = translate_with(&Translator::default(), json!({}), json!([bad]));
    assert!(translation.rejected[0].reason.len() < 120, "{}", translation.rejected[0].reason);
}
