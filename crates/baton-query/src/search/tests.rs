use super::*;
use crate::{filter, summarize};
use baton_model::Document;
use serde_json::{Value, json};

/// A document of trace `n`: `fields` over a segment from 100 to 101 s.
fn doc(n: u32, fields: Value) -> baton_model::SegmentInfo {
    let mut base = json!({"trace_id": format!("1-6744a1b2-{n:024x}"), "start_time": 100.0, "end_time": 101.0});
    base.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    Document::parse(base.to_string().as_bytes()).expect("valid").info
}

/// A trace per name, each built to exercise some keywords.
pub(crate) fn dataset() -> Vec<(&'static str, TraceSummary)> {
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
    matching_in(dataset(), expression)
}

fn matching_in(traces: Vec<(&'static str, TraceSummary)>, expression: &str) -> Vec<&'static str> {
    let parsed = filter::parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"));
    let matcher = Matcher::new(parsed).expect("supported");
    traces.into_iter().filter(|(_, summary)| matcher.matches(summary)).map(|(name, _)| name).collect()
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
        // Inside edge braces the call is seen from the caller's subsegment,
        // as the service graph counts it: the api's call saw no error.
        ("edge(\"api.example.com\", \"backend.example.com\") { error }", &[]),
        ("edge(\"api.example.com\", \"backend.example.com\") { ok AND responsetime > 0.65 }", &["ok-api"]),
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
fn unresolved_groups_are_refused_with_a_position() {
    for (expression, position) in [("group.name = \"slow\"", 0), ("ok AND group.arn = \"arn:aws:xray:x\"", 7)] {
        let error = Matcher::new(filter::parse(expression).expect("parses")).expect_err(expression);
        assert_eq!(error.position(), position, "{expression}: {error}");
    }
    let root_causes = "ok AND rootcause.fault.service { name = \"x\" } OR rootcause.json = #[{}]";
    assert!(Matcher::new(filter::parse(root_causes).expect("parses")).is_ok());
}

/// Traces with root causes of each kind, built so that a service can be on
/// the trace without being on a root cause's path.
fn root_cause_dataset() -> Vec<(&'static str, TraceSummary)> {
    vec![
        // api → backend (in account 123456789012), whose `## query` timed
        // out; api's DynamoDB call went well.
        (
            "deep-fault",
            summarize(&[
                doc(
                    1,
                    json!({"id": "0000000000000001", "name": "api", "fault": true, "subsegments": [
                    {"id": "0000000000000002", "name": "DynamoDB", "namespace": "aws", "start_time": 100.0,
                     "end_time": 100.1},
                    {"id": "0000000000000003", "name": "backend.example.com", "namespace": "remote",
                     "start_time": 100.1, "end_time": 100.9, "fault": true}]}),
                ),
                doc(
                    1,
                    json!({"id": "0000000000000004", "name": "backend.example.com", "parent_id": "0000000000000003",
                    "start_time": 100.2, "end_time": 100.8, "fault": true, "aws": {"account_id": "123456789012"},
                    "subsegments": [{"id": "0000000000000005", "name": "## query", "start_time": 100.2,
                        "end_time": 100.8, "fault": true, "cause": {"exceptions": [
                            {"type": "QueryTimeout", "message": "query timed out after 500 ms"}]}}]}),
                ),
            ]),
        ),
        // A Lambda function whose DynamoDB call failed; it also called the
        // backend, which answered well.
        (
            "dynamo-fault",
            summarize(&[
                doc(
                    2,
                    json!({"id": "0000000000000011", "name": "orders", "origin": "AWS::Lambda::Function",
                    "fault": true, "subsegments": [
                    {"id": "0000000000000012", "name": "backend.example.com", "namespace": "remote",
                     "start_time": 100.0, "end_time": 100.2},
                    {"id": "0000000000000013", "name": "DynamoDB", "namespace": "aws", "start_time": 100.2,
                     "end_time": 100.9, "fault": true, "cause": {"exceptions": [
                        {"type": "InternalServerError", "message": "Internal server error"}]}}]}),
                ),
                doc(
                    2,
                    json!({"id": "0000000000000014", "name": "backend.example.com", "parent_id": "0000000000000012",
                    "start_time": 100.0, "end_time": 100.2}),
                ),
            ]),
        ),
        // `## validate_coupon` failed, `## checkout` recovered: a local error
        // that did not reach the client.
        (
            "handled-error",
            summarize(&[doc(
                3,
                json!({"id": "0000000000000021", "name": "shop", "subsegments": [
                {"id": "0000000000000022", "name": "## checkout", "start_time": 100.1, "end_time": 100.4,
                 "subsegments": [{"id": "0000000000000023", "name": "## validate_coupon", "start_time": 100.1,
                    "end_time": 100.2, "error": true, "cause": {"exceptions": [{"type": "CouponExpired"}]}}]}]}),
            )]),
        ),
        // Most of the time went to a remote call that answered 404.
        (
            "slow-call",
            summarize(&[doc(
                4,
                json!({"id": "0000000000000031", "name": "reports", "subsegments": [
                {"id": "0000000000000032", "name": "## render", "start_time": 100.0, "end_time": 100.1},
                {"id": "0000000000000033", "name": "pdf.example.com", "namespace": "remote", "start_time": 100.1,
                 "end_time": 100.9, "error": true, "http": {"response": {"status": 404}}}]}),
            )]),
        ),
        // Nothing failed, nothing was slow.
        (
            "healthy",
            summarize(&[doc(
                5,
                json!({"id": "0000000000000041", "name": "home", "subsegments": [
                {"id": "0000000000000042", "name": "## template", "start_time": 100.0, "end_time": 100.2}]}),
            )]),
        ),
    ]
}

#[test]
fn root_cause_terms_select_the_traces_whose_root_causes_match() {
    let cases: &[(&str, &[&str])] = &[
        // On the root cause's path, not merely in the trace.
        (r#"rootcause.fault.service { name = "backend.example.com" }"#, &["deep-fault"]),
        (r#"service("backend.example.com")"#, &["deep-fault", "dynamo-fault"]),
        (r#"rootcause.fault.service { name = "DynamoDB" }"#, &["dynamo-fault"]),
        (r#"rootcause.fault.service { last and inferred }"#, &["dynamo-fault"]),
        (r#"rootcause.fault.service { first and inferred }"#, &[]),
        (r#"rootcause.fault.service { type = "AWS::DynamoDB::Table" }"#, &["dynamo-fault"]),
        (r#"rootcause.fault.service { account.id = "123456789012" and last and index = 1 }"#, &["deep-fault"]),
        (r#"rootcause.fault.service { account.id != "123456789012" }"#, &[]),
        ("rootcause.fault.entity { name = \"## query\" and last }", &["deep-fault"]),
        (r#"rootcause.fault.entity { remote and name = "DynamoDB" }"#, &["dynamo-fault"]),
        (r#"rootcause.error.entity { remote }"#, &["slow-call"]),
        (r#"rootcause.error.entity { !remote and last }"#, &["handled-error"]),
        (r#"rootcause.error.service { name = "shop" }"#, &["handled-error"]),
        (r#"rootcause.fault.exception { message CONTAINS "timed out" }"#, &["deep-fault"]),
        (
            r#"rootcause.fault.exception { name = "InternalServerError" and first and last and index = 0 }"#,
            &["dynamo-fault"],
        ),
        // An exception without a message matches no message test, `!=` included.
        (r#"rootcause.error.exception { name = "CouponExpired" }"#, &["handled-error"]),
        (r#"rootcause.error.exception { message != "x" }"#, &[]),
        (r#"rootcause.error.exception { message }"#, &[]),
        // The entry document covers the whole response time.
        (
            "rootcause.responsetime.entity { coverage > 0.5 }",
            &["deep-fault", "dynamo-fault", "handled-error", "slow-call", "healthy"],
        ),
        ("rootcause.responsetime.entity { !first and coverage > 0.5 }", &["deep-fault", "dynamo-fault", "slow-call"]),
        ("rootcause.responsetime.entity { remote and coverage >= 0.8 }", &["deep-fault", "slow-call"]),
        ("rootcause.responsetime.service { index = 1 }", &["deep-fault", "dynamo-fault", "slow-call"]),
        (r#"rootcause.responsetime.service { index = 1 and inferred and name = "pdf.example.com" }"#, &["slow-call"]),
        ("!rootcause.fault.entity { first } AND !rootcause.error.entity { first }", &["healthy"]),
        ("rootcause.fault.entity { first } AND fault", &["deep-fault", "dynamo-fault"]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(expression, expected)| {
            let actual = matching_in(root_cause_dataset(), expression);
            (actual != *expected).then(|| format!("{expression}: {actual:?}, expected {expected:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn rootcause_json_holds_when_each_object_describes_some_root_cause() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"rootcause.json = #[{"Services": [
                {"Name": "orders", "Type": "AWS::Lambda::Function", "EntityPath": [{"Name": "orders"},
                    {"Name": "DynamoDB", "Remote": true}]},
                {"Name": "DynamoDB", "Inferred": true, "EntityPath": [{"Name": "DynamoDB",
                    "Exceptions": [{"Name": "InternalServerError", "Message": "Internal server error"}]}]}],
                "ClientImpacting": true}]"#,
            &["dynamo-fault"],
        ),
        // Objects may describe root causes of different kinds.
        (
            r#"rootcause.json = #[{"Services": [{"Name": "reports", "EntityPath": [{"Name": "reports"},
                {"Name": "pdf.example.com", "Coverage": 0.8}]}, {"Name": "pdf.example.com"}]},
                {"ClientImpacting": false}]"#,
            &["slow-call"],
        ),
        (r#"rootcause.json = #[{"ClientImpacting": false}]"#, &["handled-error", "slow-call"]),
        // A path is named in full: api alone is not the path api → backend.
        (r#"rootcause.json = #[{"Services": [{"Name": "api"}]}]"#, &[]),
        (r#"rootcause.json = #[{"Services": [{"Name": "home"}]}]"#, &["healthy"]),
        ("rootcause.json = #[]", &["deep-fault", "dynamo-fault", "handled-error", "slow-call", "healthy"]),
    ];
    for (expression, expected) in cases {
        assert_eq!(matching_in(root_cause_dataset(), expression), *expected, "{expression}");
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
    assert_eq!(
        required(r#"rootcause.fault.exception { name = "E" and message CONTAINS "timed out" } ok"#),
        ["E", "timed out"]
    );
    for nothing in [
        r#"!annotation.gameid"#,
        r#"user = "a" OR user = "b""#,
        r#"user != "a""#,
        r#"user CONTAINS """#,
        "ok",
        r#"!rootcause.fault.service { name = "a" }"#,
        r#"rootcause.fault.service { name != "a" }"#,
    ] {
        assert!(required(nothing).is_empty(), "{nothing}");
    }
    // The strings are necessary: every trace of the datasets that matches holds each of them.
    for expression in [
        r#"annotation.gameid = "817DL6VO""#,
        r#"service("DynamoDB") { fault }"#,
        r#"rootcause.fault.exception { message CONTAINS "timed out" }"#,
        r#"rootcause.fault.service { name = "DynamoDB" and inferred }"#,
    ] {
        let matcher = Matcher::new(filter::parse(expression).expect("parses")).expect("supported");
        let traces = dataset().into_iter().chain(root_cause_dataset());
        let matches: Vec<_> = traces.filter(|(_, summary)| matcher.matches(summary)).collect();
        assert!(!matches.is_empty(), "{expression} matches nothing");
        for (name, summary) in matches {
            let text = format!("{summary:?}");
            for needed in matcher.required_strings() {
                assert!(text.contains(needed.as_str()), "{name} matches {expression} without {needed}");
            }
        }
    }
}
