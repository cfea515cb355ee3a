use super::*;
use crate::{filter, summarize};
use baton_model::Document;
use serde_json::{Value, json};

/// A trace per name, each built to exercise some keywords.
pub(crate) fn dataset() -> Vec<(&'static str, TraceSummary)> {
    let trace = |n: u32| format!("1-6744a1b2-{n:024x}");
    let doc = |n: u32, fields: Value| -> baton_model::SegmentInfo {
        let mut base = json!({"trace_id": trace(n), "start_time": 100.0, "end_time": 101.0});
        base.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        Document::parse(base.to_string().as_bytes()).expect("valid").info
    };
    vec![
        // An API call that succeeded, calling DynamoDB and an instrumented backend.
        (
            "ok-api",
            summarize(&[
                doc(
                    1,
                    json!({"id": "0000000000000001", "name": "api.example.com", "origin": "AWS::EC2::Instance",
                "end_time": 103.5, "user": "alice",
                "http": {"request": {"method": "GET", "url": "https://api.example.com/api/game/7",
                    "user_agent": "curl/8", "client_ip": "10.0.0.1"}, "response": {"status": 200}},
                "annotations": {"gameid": "817DL6VO", "age": 31, "vip": true},
                "aws": {"account_id": "111111111111", "ec2": {"instance_id": "i-1", "availability_zone": "eu-west-1a"}},
                "subsegments": [
                    {"id": "0000000000000002", "name": "DynamoDB", "namespace": "aws", "start_time": 100.1,
                     "end_time": 100.2, "fault": true},
                    {"id": "0000000000000003", "name": "backend.example.com", "namespace": "remote",
                     "start_time": 100.2, "end_time": 100.9}]}),
                ),
                doc(
                    1,
                    json!({"id": "0000000000000004", "name": "backend.example.com", "parent_id": "0000000000000003",
                "start_time": 100.3, "end_time": 100.8, "error": true, "annotations": {"tier": "gold"},
                "http": {"response": {"status": 404}}}),
                ),
            ]),
        ),
        // A fault at the entry, in a Lambda function, still in progress downstream.
        (
            "fault-lambda",
            summarize(&[doc(
                2,
                json!({"id": "0000000000000011", "name": "random-name", "origin": "AWS::Lambda::Function",
                "end_time": 106.0, "fault": true, "http": {"response": {"status": 502}},
                "annotations": {"age": 29, "gameid": "other"}, "resource_arn": "arn:aws:lambda:eu:1:function:f",
                "subsegments": [{"id": "0000000000000012", "name": "work", "start_time": 100.5,
                    "in_progress": true}]}),
            )]),
        ),
        // A throttled request with no http url and no annotations.
        (
            "throttled",
            summarize(&[doc(
                3,
                json!({"id": "0000000000000021", "name": "worker", "end_time": 100.5, "error": true,
                "throttle": true, "http": {"response": {"status": 429}}, "user": "bob"}),
            )]),
        ),
    ]
}

fn matching(expression: &str) -> Vec<&'static str> {
    let parsed = filter::parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"));
    let matcher = Matcher::new(parsed).expect("supported");
    dataset().into_iter().filter(|(_, summary)| matcher.matches(summary)).map(|(name, _)| name).collect()
}

#[test]
fn every_keyword_selects_the_traces_it_should() {
    let cases: &[(&str, &[&str])] = &[
        ("ok", &["ok-api"]),
        ("!ok", &["fault-lambda", "throttled"]),
        ("ok = false", &["fault-lambda", "throttled"]),
        ("error", &["throttled"]),
        ("throttle", &["throttled"]),
        ("fault", &["fault-lambda"]),
        ("partial", &["fault-lambda"]),
        ("inferred", &["ok-api"]),
        ("responsetime > 5", &["fault-lambda"]),
        ("duration >= 3.5 AND duration <= 6", &["ok-api", "fault-lambda"]),
        ("http.status != 200", &["fault-lambda", "throttled"]),
        ("http.status = 429", &["throttled"]),
        ("ok !partial duration < 4", &["ok-api"]),
        ("http.url CONTAINS \"/api/game/\"", &["ok-api"]),
        ("http.url BEGINSWITH \"https://api.\" AND http.url ENDSWITH \"/7\"", &["ok-api"]),
        ("http.url", &["ok-api"]),
        ("http.method = \"GET\" AND http.useragent = \"curl/8\" AND http.clientip = \"10.0.0.1\"", &["ok-api"]),
        ("user CONTAINS \"\"", &["ok-api", "throttled"]),
        ("user = \"bob\"", &["throttled"]),
        ("user != \"bob\"", &["ok-api"]),
        ("annotation.gameid = \"817DL6VO\"", &["ok-api"]),
        ("annotation.age", &["ok-api", "fault-lambda"]),
        ("!annotation.age", &["throttled"]),
        ("annotation.age > 29", &["ok-api"]),
        ("annotation.age != 29", &["ok-api"]),
        ("annotation.vip = true", &["ok-api"]),
        ("annotation.gameid BEGINSWITH \"817\"", &["ok-api"]),
        ("availabilityzone = \"eu-west-1a\" AND instance.id = \"i-1\"", &["ok-api"]),
        ("resource.arn ENDSWITH \":function:f\"", &["fault-lambda"]),
        ("service(\"api.example.com\") { fault }", &[]),
        ("service(\"DynamoDB\") { fault }", &["ok-api"]),
        ("service() { fault }", &["ok-api", "fault-lambda"]),
        ("service(\"backend.example.com\") { error AND http.status = 404 }", &["ok-api"]),
        ("service(\"api.example.com\") { http.status = 404 }", &[]),
        ("edge(\"api.example.com\", \"backend.example.com\") { error }", &["ok-api"]),
        ("edge(\"api.example.com\", \"DynamoDB\") { fault and responsetime < 0.5 }", &["ok-api"]),
        ("edge(\"backend.example.com\", \"api.example.com\")", &[]),
        ("http.url BEGINSWITH \"https://api.example.com/\" AND !service(\"api.example.com\")", &[]),
        ("service(id(name: \"random-name\", type: \"AWS::Lambda::Function\")) { fault }", &["fault-lambda"]),
        ("service(id(type: \"AWS::DynamoDB::Table\"))", &["ok-api"]),
        ("service(id(account.id: \"111111111111\")) { root }", &["ok-api"]),
        (
            "service() { http.status = 429 } OR service(id(type: \"AWS::Lambda::Function\"))",
            &["fault-lambda", "throttled"],
        ),
        ("fault OR error AND user = \"bob\"", &["fault-lambda", "throttled"]),
        ("(fault OR error) AND !partial", &["throttled"]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(expression, expected)| {
            let actual = matching(expression);
            (actual != *expected).then(|| format!("{expression}: {actual:?}, expected {expected:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn root_causes_and_unresolved_groups_are_refused_with_a_position() {
    for (expression, position) in [("ok AND rootcause.fault.service { name = \"x\" }", 7), ("group.name = \"slow\"", 0)]
    {
        let error = Matcher::new(filter::parse(expression).expect("parses")).expect_err(expression);
        assert_eq!(error.position(), position, "{expression}: {error}");
    }
}

#[test]
fn required_strings_come_only_from_terms_every_match_satisfies() {
    let required = |expression: &str| {
        Matcher::new(filter::parse(expression).expect("parses")).expect("supported").required_strings().to_vec()
    };
    assert_eq!(
        required(r#"annotation.gameid = "817DL6VO" AND service("api") { fault } http.url CONTAINS "/v2/""#),
        ["/v2/", "817DL6VO", "api", "gameid"]
    );
    assert_eq!(
        required(r#"edge("a", id(type: "AWS::S3::Bucket")) annotation.age > 3"#),
        ["AWS::S3::Bucket", "a", "age"]
    );
    for nothing in
        [r#"!annotation.gameid"#, r#"user = "a" OR user = "b""#, r#"user != "a""#, r#"user CONTAINS """#, "ok"]
    {
        assert!(required(nothing).is_empty(), "{nothing}");
    }
    // The strings are necessary: every trace of the dataset that matches holds each of them.
    for (expression, _) in [(r#"annotation.gameid = "817DL6VO""#, ()), (r#"service("DynamoDB") { fault }"#, ())] {
        let matcher = Matcher::new(filter::parse(expression).expect("parses")).expect("supported");
        for (name, summary) in dataset().into_iter().filter(|(_, summary)| matcher.matches(summary)) {
            let text = format!("{summary:?}");
            for needed in matcher.required_strings() {
                assert!(text.contains(needed.as_str()), "{name} matches {expression} without {needed}");
            }
        }
    }
}
