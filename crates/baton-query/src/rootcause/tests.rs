use std::fmt::Write;

use baton_model::Document;
use serde_json::{Value, json};

use super::*;
use crate::{TraceSummary, summarize};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rootcause/golden.txt");

/// One case of the golden file: comment lines, `=== NAME`, document lines,
/// `---`, then the expected output up to a blank line.
struct GoldenCase {
    comments: Vec<String>,
    name: String,
    documents: Vec<String>,
    expected: String,
}

fn read_golden(text: &str) -> Vec<GoldenCase> {
    let mut cases = Vec::new();
    let mut comments = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("=== ") {
            let documents = lines.by_ref().take_while(|line| *line != "---").map(str::to_owned).collect();
            let mut expected = Vec::new();
            while let Some(output) = lines.next_if(|output| !output.is_empty()) {
                expected.push(output);
            }
            let name = name.to_owned();
            cases.push(GoldenCase {
                comments: std::mem::take(&mut comments),
                name,
                documents,
                expected: expected.join("\n"),
            });
        } else if !line.is_empty() {
            comments.push(line.to_owned());
        }
    }
    cases
}

fn parse(document: &str) -> SegmentInfo {
    Document::parse(document.as_bytes()).unwrap_or_else(|error| panic!("{error}: {document}")).info
}

/// The root causes of a trace as the golden file shows them.
fn render(summary: &TraceSummary) -> String {
    let mut out = String::new();
    let kinds = [
        ("fault", &summary.fault_root_causes),
        ("error", &summary.error_root_causes),
        ("response time", &summary.response_time_root_causes),
    ];
    for (kind, causes) in kinds {
        for cause in causes {
            let impact = if cause.client_impacting { ", client impacting" } else { "" };
            writeln!(out, "{kind}{impact}").unwrap();
            for service in &cause.services {
                render_service(&mut out, service);
            }
        }
    }
    if out.is_empty() { "none".to_owned() } else { out.trim_end().to_owned() }
}

fn render_service(out: &mut String, service: &RootCauseService) {
    let ServiceId { name, account_id, kind } = &service.service;
    let mut tags: Vec<String> = kind.iter().cloned().collect();
    tags.extend(account_id.iter().map(|account| format!("account {account}")));
    tags.extend(service.inferred.then(|| "inferred".to_owned()));
    let tags = if tags.is_empty() { String::new() } else { format!(" [{}]", tags.join(", ")) };
    let path: Vec<String> = service.entity_path.iter().map(render_entity).collect();
    writeln!(out, "  {name}{tags}: {}", path.join(" > ")).unwrap();
}

fn render_entity(entity: &RootCauseEntity) -> String {
    let mut text = entity.name.clone();
    if entity.remote {
        text.push_str(" (remote)");
    }
    if let Some(coverage) = entity.coverage {
        write!(text, " {coverage:.3}").unwrap();
    }
    for exception in &entity.exceptions {
        write!(text, " !{}", exception.name.as_deref().unwrap_or("?")).unwrap();
        if let Some(message) = &exception.message {
            write!(text, " {message:?}").unwrap();
        }
    }
    text
}

/// Computes every case of the golden file and compares, in the documents'
/// order and reversed; `BATON_BLESS=1` rewrites the outputs instead (review
/// the diff).
#[test]
fn golden() {
    let text = std::fs::read_to_string(GOLDEN).unwrap();
    let cases = read_golden(&text);
    assert!(cases.len() >= 6, "the golden file lost its cases");
    let header: String = text.lines().take_while(|line| !line.is_empty()).map(|line| format!("{line}\n")).collect();
    let mut blessed = format!("{header}\n");
    let mut failures = Vec::new();
    for case in &cases {
        let mut documents: Vec<SegmentInfo> = case.documents.iter().map(|document| parse(document)).collect();
        let actual = render(&summarize(&documents));
        documents.reverse();
        let reversed = render(&summarize(&documents));
        if actual != case.expected || reversed != actual {
            failures.push(format!(
                "=== {}\nexpected:\n{}\nactual:\n{actual}\nreversed:\n{reversed}\n",
                case.name, case.expected
            ));
        }
        for line in case.comments.iter().skip_while(|line| header.contains(line.as_str())) {
            writeln!(blessed, "{line}").unwrap();
        }
        writeln!(blessed, "=== {}\n{}\n---\n{actual}\n", case.name, case.documents.join("\n")).unwrap();
    }
    if std::env::var_os("BATON_BLESS").is_some_and(|bless| bless == "1") {
        std::fs::write(GOLDEN, blessed.trim_end().to_owned() + "\n").unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{} golden cases differ (BATON_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// === bounds ===

const TRACE: &str = "1-6744a1b2-0123456789abcdef01234567";

fn id(n: usize) -> String {
    format!("{n:016x}")
}

/// A segment faulting with `subsegments` embedded.
fn faulting_segment(subsegments: Vec<Value>) -> SegmentInfo {
    let document = json!({"trace_id": TRACE, "id": id(1), "name": "api", "start_time": 1.0, "end_time": 2.0,
        "fault": true, "subsegments": subsegments});
    parse(&document.to_string())
}

#[test]
fn a_deep_chain_is_followed_64_entities_down() {
    // 100 faulting documents, each the child of the one before.
    let documents: Vec<SegmentInfo> = (1..=100)
        .map(|n| {
            let mut document = json!({"trace_id": TRACE, "id": id(n), "name": format!("s{n}"), "type": "subsegment",
                "parent_id": id(n - 1), "start_time": 1.0, "end_time": 2.0, "fault": true});
            if n == 1 {
                document = json!({"trace_id": TRACE, "id": id(1), "name": "s1", "start_time": 1.0, "end_time": 2.0,
                    "fault": true});
            }
            parse(&document.to_string())
        })
        .collect();
    let summary = summarize(&documents);
    let [cause] = &summary.fault_root_causes[..] else { panic!("one root cause: {summary:?}") };
    let path = &cause.services[0].entity_path;
    assert_eq!(path.len(), MAX_DEPTH);
    assert_eq!((path[0].name.as_str(), path[MAX_DEPTH - 1].name.as_str()), ("s1", "s64"));
    let slowest = &summary.response_time_root_causes[0].services[0].entity_path;
    assert_eq!(slowest.len(), MAX_DEPTH);
}

#[test]
fn at_most_ten_distinct_root_causes_of_a_kind_are_kept() {
    let subsegments = (0..30)
        .map(|n| {
            json!({"id": id(100 + n), "name": format!("## step {}", n % 15), "start_time": 1.0 + n as f64 / 100.0,
            "end_time": 1.5, "fault": true})
        })
        .collect();
    let summary = summarize(&[faulting_segment(subsegments)]);
    let names: Vec<&str> = summary
        .fault_root_causes
        .iter()
        .map(|cause| cause.services[0].entity_path.last().unwrap().name.as_str())
        .collect();
    assert_eq!(names, (0..MAX_ROOT_CAUSES).map(|n| format!("## step {n}")).collect::<Vec<_>>());
}

#[test]
fn a_trace_whose_parents_loop_still_gives_bounded_root_causes() {
    let document = |n: usize, parent: usize| {
        parse(
            &json!({"trace_id": TRACE, "id": id(n), "name": format!("s{n}"), "parent_id": id(parent),
                "start_time": n as f64, "end_time": 10.0, "fault": n != 2})
            .to_string(),
        )
    };
    let summary = summarize(&[document(1, 3), document(2, 1), document(3, 2)]);
    let [cause] = &summary.fault_root_causes[..] else { panic!("one root cause: {summary:?}") };
    // s3 is the top (its parent s2 is fine), s1 its leaf; both are segments.
    let names: Vec<&str> = cause.services.iter().map(|service| service.service.name.as_str()).collect();
    assert_eq!(names, ["s3", "s1"]);
}

// === rootcause.json patterns ===

#[test]
fn json_patterns_name_members_that_must_match_and_paths_in_full() {
    let documents: Vec<SegmentInfo> = [
        r#"{"trace_id":"1-6744a1b2-0123456789abcdef01234567","id":"0000000000000001","name":"api","start_time":1,"end_time":2,"fault":true,"subsegments":[{"id":"0000000000000002","name":"DynamoDB","namespace":"aws","start_time":1.2,"end_time":1.7,"fault":true,"cause":{"exceptions":[{"type":"Throttled","message":"slow down"}]}}]}"#,
    ]
    .iter()
    .map(|document| parse(document))
    .collect();
    let summary = summarize(&documents);
    let fault = &summary.fault_root_causes[0];
    let slow = &summary.response_time_root_causes[0];
    let matches = |cause: &TraceRootCause, pattern: Value| cause.matches_json(&pattern);
    assert!(matches(fault, json!({})));
    assert!(matches(fault, json!({"ClientImpacting": true})));
    assert!(matches(
        fault,
        json!({"Services": [{"Name": "api", "EntityPath": [{"Name": "api"}, {"Name": "DynamoDB", "Remote": true}]},
            {"Name": "DynamoDB", "Names": ["DynamoDB"], "Type": "AWS::DynamoDB::Table", "Inferred": true,
             "EntityPath": [{"Exceptions": [{"Name": "Throttled", "Message": "slow down"}]}]}]})
    ));
    // A path names every service (and entity), in order.
    assert!(!matches(fault, json!({"Services": [{"Name": "api"}]})));
    assert!(!matches(fault, json!({"Services": [{"Name": "DynamoDB"}, {"Name": "api"}]})));
    // Unknown members, absent values and other types match nothing.
    for pattern in [
        json!({"Kind": "fault"}),
        json!({"ClientImpacting": "true"}),
        json!({"Services": [{"Name": "api", "AccountId": null}, {}]}),
        json!({"Services": [{"Name": "api", "Type": "AWS::EC2::Instance"}, {}]}),
        json!([]),
    ] {
        assert!(!matches(fault, pattern.clone()), "{pattern}");
    }
    // Coverage belongs to response time entities, exceptions to the others.
    assert!(matches(slow, json!({"Services": [{"EntityPath": [{"Coverage": 1.0}, {"Coverage": 0.5}]}, {}]})));
    assert!(!matches(slow, json!({"Services": [{"EntityPath": [{"Exceptions": []}, {}]}, {}]})));
    assert!(!matches(fault, json!({"Services": [{"EntityPath": [{"Coverage": 1.0}, {}]}, {}]})));
}
