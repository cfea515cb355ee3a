use serde_json::{Value, json};

use super::*;
use crate::summarize;
use baton_model::Document;

fn summary(documents: &[Value]) -> TraceSummary {
    let infos: Vec<_> = documents
        .iter()
        .map(|fields| {
            let mut base = json!({"trace_id": "1-6744a1b2-0123456789abcdef01234567", "start_time": 100.0});
            base.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            Document::parse(base.to_string().as_bytes()).expect("valid").info
        })
        .collect();
    summarize(&infos)
}

fn service(name: &str, kind: Option<&str>, inferred: bool) -> Node {
    Node::Service { id: ServiceId { name: name.into(), account_id: None, kind: kind.map(str::to_owned) }, inferred }
}

/// `(element, total, ok, error, throttle, fault, total response time)` of each element.
fn table(added: &BTreeMap<Element, Stats>) -> Vec<(String, [i64; 5], f64)> {
    let name = |node: &Node| match node {
        Node::Client => "client".to_owned(),
        Node::Service { id, inferred } => format!("{}{}", id.name, if *inferred { "?" } else { "" }),
    };
    added
        .iter()
        .map(|(element, stats)| {
            let label = match element {
                Element::Node(node) => name(node),
                Element::Edge(from, to) => format!("{} -> {}", name(from), name(to)),
            };
            let total_response_time = (stats.total_response_time * 1000.0).round() / 1000.0;
            (label, [stats.total, stats.ok, stats.error, stats.throttle, stats.fault], total_response_time)
        })
        .collect()
}

#[test]
fn a_lambda_trace_is_client_lambda_function_and_its_calls() {
    let trace = summary(&[
        json!({"id": "0000000000000001", "name": "orders", "origin": "AWS::Lambda", "end_time": 101.0}),
        json!({"id": "0000000000000002", "name": "orders", "origin": "AWS::Lambda::Function",
            "parent_id": "0000000000000001", "start_time": 100.1, "end_time": 100.9,
            "subsegments": [
                {"id": "0000000000000003", "name": "api.example.com", "namespace": "remote",
                 "start_time": 100.2, "end_time": 100.5, "http": {"response": {"status": 429}}, "error": true,
                 "throttle": true},
                {"id": "0000000000000004", "name": "DynamoDB", "namespace": "aws",
                 "start_time": 100.5, "end_time": 100.8, "fault": true}]}),
    ]);
    let added = contributions(&trace);
    assert_eq!(
        table(&added),
        [
            ("DynamoDB?".to_owned(), [1, 0, 0, 0, 1], 0.3),
            ("api.example.com?".to_owned(), [1, 0, 1, 1, 0], 0.3),
            ("orders".to_owned(), [1, 1, 0, 0, 0], 1.0),
            ("orders".to_owned(), [1, 1, 0, 0, 0], 0.8),
            ("client -> orders".to_owned(), [1, 1, 0, 0, 0], 1.0),
            ("orders -> orders".to_owned(), [1, 1, 0, 0, 0], 0.8),
            ("orders -> DynamoDB?".to_owned(), [1, 0, 0, 0, 1], 0.3),
            ("orders -> api.example.com?".to_owned(), [1, 0, 1, 1, 0], 0.3),
        ]
    );
    let function = service("orders", Some("AWS::Lambda::Function"), false);
    assert!(added.contains_key(&Element::Edge(service("orders", Some("AWS::Lambda"), false), function.clone())));
    let dynamodb = service("DynamoDB", Some("AWS::DynamoDB::Table"), true);
    assert!(added.contains_key(&Element::Edge(function, dynamodb)));
    // Every node records the trace's duration once.
    assert!(
        added
            .iter()
            .filter(|(element, _)| matches!(element, Element::Node(_)))
            .all(|(_, stats)| { stats.durations.entries().collect::<Vec<_>>() == [(1.0, 1)] })
    );
}

#[test]
fn an_answered_call_is_an_edge_timed_by_the_caller_to_the_real_service() {
    let trace = summary(&[
        json!({"id": "0000000000000001", "name": "api", "end_time": 102.0,
            "subsegments": [{"id": "0000000000000002", "name": "backend", "namespace": "remote",
                "start_time": 100.5, "end_time": 101.7, "fault": true}]}),
        json!({"id": "0000000000000003", "name": "backend", "parent_id": "0000000000000002",
            "start_time": 100.6, "end_time": 101.5, "fault": true}),
    ]);
    assert_eq!(
        table(&contributions(&trace)),
        [
            ("api".to_owned(), [1, 1, 0, 0, 0], 2.0),
            ("backend".to_owned(), [1, 0, 0, 0, 1], 0.9),
            ("client -> api".to_owned(), [1, 1, 0, 0, 0], 2.0),
            ("api -> backend".to_owned(), [1, 0, 0, 0, 1], 1.2),
        ]
    );
}

#[test]
fn a_contribution_subtracted_leaves_nothing() {
    let trace = summary(&[json!({"id": "0000000000000001", "name": "api", "end_time": 100.25, "in_progress": false})]);
    let mut total = Stats::default();
    for stats in contributions(&trace).values() {
        total.merge(stats, 1);
        total.merge(stats, 1);
        total.merge(stats, -1);
        total.merge(stats, -1);
    }
    assert!(total.is_empty(), "{total:?}");
    assert_eq!(total.total_response_time, 0.0);
    // A fault turned into an error in the same minute changes no total.
    let mut changed = Stats::default();
    changed.record((false, true, false), Some(1.0), None);
    changed.merge(&Stats { fault: 1, error: -1, ..changed.clone() }, -1);
    assert!(!changed.is_empty(), "{changed:?}");
}

#[test]
fn periods_are_whole_minutes_from_the_start() {
    assert_eq!(periods((90.0, 250.0), None), [(60.0, 300.0)]);
    assert_eq!(periods((90.0, 250.0), Some(120)), [(60.0, 180.0), (180.0, 300.0)]);
    assert_eq!(periods((60.0, 60.0), Some(60)), [(60.0, 120.0)]);
    assert_eq!(periods((0.0, 100.0), Some(90)), [(0.0, 60.0), (60.0, 120.0)]);
}

#[test]
fn histogram_buckets_keep_two_significant_digits() {
    let mut histogram = Histogram::default();
    for seconds in [0.0, 0.000_01, 0.000_1, 0.123, 0.129, 0.5, 1.0, 9.99, 12.0, 3600.0, 1e9] {
        histogram.add(seconds, 1);
    }
    assert_eq!(
        histogram.entries().collect::<Vec<_>>(),
        [(0.0, 2), (0.0001, 1), (0.12, 2), (0.5, 1), (1.0, 1), (9.9, 1), (12.0, 1), (3600.0, 1), (990000.0, 1)]
    );
    for bucket in 1..=900u16 {
        let value = Histogram::value(bucket);
        assert_eq!(Histogram::bucket(value), bucket, "{value}");
        assert!(Histogram::value(bucket + 1) > value);
    }
}
