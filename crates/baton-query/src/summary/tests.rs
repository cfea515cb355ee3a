use super::*;
use baton_model::{Document, Entity, Facts, Namespace};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Documents of a captured scenario (kept in baton-model's test data), the
/// daemon header stripped, parsed.
fn fixture(scenario: &str, files: &[&str]) -> Vec<SegmentInfo> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../baton-model/tests/data/udp");
    files.iter().map(|file| parse(fixture_json(&format!("{dir}/{scenario}/{file}.txt")))).collect()
}

fn fixture_json(path: &str) -> Value {
    let datagram = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(datagram.split_once('\n').expect("a header line").1).unwrap()
}

fn parse(document: Value) -> SegmentInfo {
    Document::parse(document.to_string().as_bytes()).unwrap().info
}

fn remote(name: &str) -> ServiceId {
    ServiceId { name: name.to_owned(), account_id: None, kind: Some("remote".into()) }
}

fn service(name: &str) -> ServiceId {
    ServiceId { name: name.to_owned(), account_id: None, kind: None }
}

/// One annotation key with one value and the services that set it.
fn annotation(key: &str, value: AnnotationValue, services: &[ServiceId]) -> AnnotationSummary {
    AnnotationSummary {
        key: key.to_owned(),
        values: vec![AnnotationValueSummary { value, service_ids: services.to_vec() }],
    }
}

fn string(text: &str) -> AnnotationValue {
    AnnotationValue::String(text.to_owned())
}

/// Summarises `documents` and checks that every order of them gives the
/// same summary (here, reversed and rotated; the proptests shuffle).
#[track_caller]
fn check(documents: &[SegmentInfo]) -> TraceSummary {
    let summary = summarize(documents);
    let mut reversed = documents.to_vec();
    reversed.reverse();
    assert_eq!(summarize(&reversed), summary);
    let mut rotated = documents.to_vec();
    rotated.rotate_left(documents.len() / 2);
    assert_eq!(summarize(&rotated), summary);
    summary
}

#[test]
fn full_segment_gives_its_own_http_flags_users_and_all_annotations() {
    let summary = check(&fixture("xray_sdk_basic", &["0001"]));
    assert_eq!(summary.id.to_string(), "1-6b03e09d-0dcda7ecd820021bca1dccee");
    assert_eq!(summary.start_time, 1795416221.584088);
    assert_eq!(summary.duration, Some(1795416221.605625 - 1795416221.584088));
    assert_eq!(summary.response_time, summary.duration);
    assert_eq!(
        summary.http,
        Some(HttpFacts {
            method: Some("POST".into()),
            url: Some("https://orders.example.com/api/orders?id=7".into()),
            user_agent: Some("curl/8.0".into()),
            client_ip: Some("203.0.113.9".into()),
            status: Some(201),
        })
    );
    // The entry segment's own flags: only its subsegments have fault, error and throttle.
    assert_eq!(
        (summary.has_fault, summary.has_error, summary.has_throttle, summary.is_partial),
        (false, false, false, false)
    );
    assert_eq!(summary.users, [UserSummary { name: "alice".into(), service_ids: vec![service("orders-api")] }]);
    let orders = [service("orders-api")];
    assert_eq!(
        summary.annotations,
        [
            annotation("amount_cents", AnnotationValue::Number(1250.0), &orders),
            annotation("cache_hit", AnnotationValue::Bool(false), &orders),
            annotation("customer_tier", string("gold"), &orders),
            annotation("is_vip", AnnotationValue::Bool(true), &orders),
            annotation("order_count", AnnotationValue::Number(3.0), &orders),
            annotation("order_total", AnnotationValue::Number(12.5), &orders),
            annotation("validator", string("v2"), &orders),
        ]
    );
    // The four `requests` calls went to a host that sent no segment: one inferred service.
    assert_eq!(summary.service_ids, [remote("127.0.0.1"), service("orders-api")]);
    assert_eq!(summary.entry_point, Some(service("orders-api")));
    assert_eq!(summary.revision, 1);
    let visits: Vec<_> = summary
        .visits
        .iter()
        .map(|v| {
            (
                v.service,
                v.caller,
                v.inferred,
                v.root,
                (v.error, v.fault, v.throttle),
                v.http.as_ref().and_then(|h| h.status),
            )
        })
        .collect();
    assert_eq!(
        visits,
        [
            (1, None, false, true, (false, false, false), Some(201)),
            (0, Some(1), true, false, (false, false, false), Some(200)),
            (0, Some(1), true, false, (true, false, false), Some(404)),
            (0, Some(1), true, false, (false, true, false), Some(500)),
            (0, Some(1), true, false, (true, false, true), Some(429)),
        ]
    );
    assert!(
        summary.resource_arns.is_empty() && summary.instance_ids.is_empty() && summary.availability_zones.is_empty()
    );
}

#[test]
fn segment_continuing_an_unknown_caller_is_the_entry() {
    let summary = check(&fixture("xray_sdk_basic", &["0002"]));
    assert_eq!(summary.id.to_string(), "1-6744a1b2-0123456789abcdef01234567");
    assert_eq!(summary.entry_point, Some(service("payments-svc")));
    assert!(summary.has_fault && !summary.has_error && !summary.has_throttle);
    assert_eq!(summary.http.unwrap().status, Some(503));
    assert_eq!(summary.response_time, Some(1795416221.6063993 - 1795416221.6060286));
    assert_eq!(summary.service_ids, [remote("db-call"), service("payments-svc")]);
    assert!(summary.annotations.is_empty() && summary.users.is_empty());
}

#[test]
fn root_segment_is_the_entry_and_a_downstream_segment_keeps_its_own_service() {
    // inventory-svc answered the orders-api call 29c5abab2979ab84 (an embedded subsegment).
    let mut documents = fixture("xray_sdk_basic", &["0001"]);
    documents.push(parse(json!({
        "id": "00000000000000d1", "name": "inventory-svc", "trace_id": "1-6b03e09d-0dcda7ecd820021bca1dccee",
        "parent_id": "29c5abab2979ab84", "start_time": 1795416221.591, "end_time": 1795416221.595,
        "origin": "AWS::EC2::Instance", "fault": true, "user": "alice",
        "aws": {"account_id": "123456789012", "ec2": {"instance_id": "i-0abc", "availability_zone": "us-east-1a"}},
        "annotations": {"customer_tier": "gold", "warehouse": 4},
    })));
    let summary = check(&documents);
    let inventory = ServiceId {
        name: "inventory-svc".into(),
        account_id: Some("123456789012".into()),
        kind: Some("AWS::EC2::Instance".into()),
    };
    assert_eq!(summary.entry_point, Some(service("orders-api")));
    assert!(!summary.has_fault, "the downstream fault is not the entry's");
    // inventory-svc answered one call; the three others are still inferred.
    assert_eq!(summary.service_ids, [remote("127.0.0.1"), inventory.clone(), service("orders-api")]);
    let inventory_visit = summary.visits.iter().find(|visit| visit.service == 1).expect("a visit of inventory-svc");
    assert_eq!((inventory_visit.caller, inventory_visit.inferred, inventory_visit.fault), (Some(2), false, true));
    assert_eq!(summary.visits.iter().filter(|visit| visit.inferred).count(), 3);
    assert_eq!(
        summary.users,
        [UserSummary { name: "alice".into(), service_ids: vec![inventory.clone(), service("orders-api")] }]
    );
    let tier = summary.annotations.iter().find(|annotation| annotation.key == "customer_tier").unwrap();
    assert_eq!(tier.values[0].service_ids, [inventory.clone(), service("orders-api")]);
    let warehouse = summary.annotations.iter().find(|annotation| annotation.key == "warehouse").unwrap();
    assert_eq!(warehouse, &annotation("warehouse", AnnotationValue::Number(4.0), &[inventory]));
    assert_eq!(summary.instance_ids, ["i-0abc"]);
    assert_eq!(summary.availability_zones, ["us-east-1a"]);
    assert_eq!(summary.revision, 2);
}

#[test]
fn lambda_trace_without_a_segment_enters_at_the_handler() {
    let summary = check(&fixture("powertools_lambda", &["0007", "0008", "0009"]));
    assert_eq!(summary.id.to_string(), "1-6744b002-cccccccccccccccccccccccc");
    assert_eq!(summary.entry_point, None);
    assert!(summary.has_fault, "## handler has fault");
    assert!(!summary.has_error && !summary.has_throttle && !summary.is_partial);
    assert_eq!(summary.start_time, 1795416263.3976197);
    assert_eq!(summary.response_time, Some(1795416263.4025464 - 1795416263.3976197));
    assert_eq!(summary.duration, summary.response_time);
    assert_eq!(summary.http, None);
    // No segment, so no service set them.
    assert_eq!(
        summary.annotations,
        [
            annotation("ColdStart", AnnotationValue::Bool(false), &[]),
            annotation("Service", string("orders"), &[]),
            annotation("express", AnnotationValue::Bool(true), &[]),
            annotation("order_id", string("o-3"), &[]),
            annotation("priority", AnnotationValue::Number(2.0), &[]),
        ]
    );
    // The function's own service is unknown without its segment; the host it called is inferred.
    assert_eq!(summary.service_ids, [remote("127.0.0.1")]);
    assert_eq!(summary.visits.len(), 1);
    assert_eq!((summary.visits[0].caller, summary.visits[0].inferred), (None, true));
    assert!(summary.users.is_empty());
    assert_eq!(summary.revision, 3);
}

#[test]
fn streamed_subsegments_count_for_the_segment_they_belong_to() {
    let files: Vec<String> = (1..=13).map(|n| format!("{n:04}")).collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let summary = check(&fixture("xray_sdk_streaming", &files));
    assert_eq!(summary.entry_point, Some(service("batch-worker")));
    assert_eq!(summary.service_ids, [service("batch-worker")]);
    assert_eq!(summary.revision, 13);
    assert_eq!(summary.response_time, Some(1795416228.7971342 - 1795416228.7861824));
    assert_eq!(
        summary.annotations[0],
        annotation("batch_size", AnnotationValue::Number(8.0), &[service("batch-worker")])
    );
    let items = &summary.annotations[1];
    assert_eq!(items.key, "item_index");
    // Values in first-seen order of the trace sorted by start: batch-loop
    // (holding item-6 and item-7) starts before item-0.
    let values: Vec<_> = items.values.iter().map(|value| value.value.clone()).collect();
    assert_eq!(values, [6.0, 7.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0].map(AnnotationValue::Number));
    assert!(items.values.iter().all(|value| value.service_ids == [service("batch-worker")]));
}

#[test]
fn is_partial_when_a_document_or_an_embedded_subsegment_is_in_progress() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../baton-model/tests/data/udp/xray_sdk_basic/0001.txt");
    let mut nested_open = fixture_json(path);
    let load_schema = &mut nested_open["subsegments"][0]["subsegments"][0];
    load_schema["in_progress"] = json!(true);
    load_schema.as_object_mut().unwrap().remove("end_time");
    let summary = check(&[parse(nested_open.clone())]);
    assert!(summary.is_partial);
    assert_eq!(summary.response_time, Some(1795416221.605625 - 1795416221.584088));

    // The complete copy of that subsegment, sent on its own, finishes it.
    let mut load_schema_done = fixture_json(path)["subsegments"][0]["subsegments"][0].clone();
    load_schema_done["type"] = json!("subsegment");
    let summary = check(&[parse(nested_open), parse(load_schema_done)]);
    assert!(!summary.is_partial);

    let mut open = fixture_json(path);
    open["in_progress"] = json!(true);
    open.as_object_mut().unwrap().remove("end_time");
    let summary = check(&[parse(open)]);
    assert!(summary.is_partial);
    assert_eq!((summary.response_time, summary.duration), (None, None));

    let mut documents = fixture("powertools_lambda", &["0007", "0009"]);
    let mut open_method =
        fixture_json(concat!(env!("CARGO_MANIFEST_DIR"), "/../baton-model/tests/data/udp/powertools_lambda/0008.txt"));
    open_method["in_progress"] = json!(true);
    open_method.as_object_mut().unwrap().remove("end_time");
    documents.push(parse(open_method));
    let summary = check(&documents);
    assert!(summary.is_partial);
    assert_eq!(summary.duration, Some(1795416263.4025464 - 1795416263.3976197));
}

#[test]
fn no_documents_give_an_empty_summary() {
    let summary = summarize(&[]);
    assert_eq!(summary.id, TraceId::from_bytes([0; 16]));
    assert_eq!((summary.start_time, summary.duration, summary.response_time, summary.revision), (0.0, None, None, 0));
    assert_eq!(summary.entry_point, None);
    assert!(!summary.is_partial && summary.annotations.is_empty());
}

// === order independence ===

/// One generated document: segment or subsegment, which id its parent is
/// (an index into every id of the trace, or past it for an unknown one),
/// its start, whether it embeds a subsegment, and a few facts.
fn generated_trace() -> impl Strategy<Value = Vec<SegmentInfo>> {
    let document = (any::<bool>(), any::<prop::sample::Index>(), 0u8..4, any::<bool>(), 0u8..3, any::<bool>());
    prop::collection::vec(document, 1..12).prop_map(|drawn| {
        let trace_id: TraceId = "1-6744a1b2-0123456789abcdef01234567".parse().unwrap();
        let count = drawn.len() as u64;
        // Ids 1..=count are documents, 0x101.. their embedded subsegments, 0xdead unknown.
        let candidates: Vec<u64> = (1..=count).chain((1..=count).map(|n| 0x100 + n)).chain([0xdead]).collect();
        drawn
            .into_iter()
            .zip(1u64..)
            .map(|((is_segment, parent, start, has_parent, value, fault), id)| {
                let parent_id = (has_parent || !is_segment).then(|| SegmentId::from_u64(*parent.get(&candidates)));
                // The embedded subsegment calls out, and faults where its document does not.
                let embedded: Vec<Entity> = has_parent
                    .then(|| Entity {
                        id: SegmentId::from_u64(0x100 + id),
                        parent: None,
                        name: format!("e{}", id % 2),
                        start_time: f64::from(start),
                        end_time: Some(f64::from(start) + f64::from(value) / 2.0),
                        error: false,
                        fault: !fault,
                        throttle: false,
                        namespace: (value != 1).then_some(Namespace::Remote),
                        exceptions: Vec::new(),
                    })
                    .into_iter()
                    .collect();
                SegmentInfo {
                    trace_id,
                    id: SegmentId::from_u64(id),
                    parent_id,
                    kind: if is_segment { DocumentKind::Segment } else { DocumentKind::Subsegment },
                    name: format!("s{}", id % 3),
                    start_time: f64::from(start),
                    end_time: (value != 0).then(|| f64::from(start) + f64::from(value)),
                    in_progress: value == 0,
                    facts: Facts {
                        fault,
                        annotations: vec![("k".into(), AnnotationValue::Number(f64::from(value)))],
                        user: (value == 1).then(|| format!("u{}", id % 2)),
                        subsegment_ids: embedded.iter().map(|entity| entity.id).collect(),
                        entities: embedded,
                        ..Facts::default()
                    },
                }
            })
            .collect()
    })
}

fn captured_traces() -> Vec<Vec<SegmentInfo>> {
    let streaming: Vec<String> = (1..=13).map(|n| format!("{n:04}")).collect();
    vec![
        fixture("xray_sdk_streaming", &streaming.iter().map(String::as_str).collect::<Vec<_>>()),
        fixture("powertools_lambda", &["0007", "0008", "0009"]),
        fixture("xray_sdk_basic", &["0001"]),
    ]
}

proptest! {
    #[test]
    fn captured_traces_summarize_the_same_in_any_order(
        (documents, shuffled) in (0..3usize).prop_flat_map(|index| {
            let documents = captured_traces().swap_remove(index);
            (Just(documents.clone()), Just(documents).prop_shuffle())
        }),
    ) {
        prop_assert_eq!(summarize(&shuffled), summarize(&documents));
    }

    #[test]
    fn generated_traces_summarize_the_same_in_any_order(
        (documents, shuffled) in generated_trace()
            .prop_flat_map(|documents| (Just(documents.clone()), Just(documents).prop_shuffle())),
    ) {
        let summary = summarize(&documents);
        prop_assert_eq!(&summarize(&shuffled), &summary);
        prop_assert_eq!(summary.revision as usize, documents.len());
        prop_assert_eq!(summary.is_partial, documents.iter().any(|info| info.in_progress));
    }
}
