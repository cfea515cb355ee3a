use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use super::*;

/// A rule record as `GetSamplingRules` returns it, with `changes` applied to the rule.
fn record(name: &str, priority: i64, changes: Value) -> Value {
    let mut rule = json!({
        "RuleName": name, "RuleARN": format!("arn:aws:xray:us-west-2:123456789012:sampling-rule/{name}"),
        "ResourceARN": "*", "Priority": priority, "FixedRate": 0.0, "ReservoirSize": 0,
        "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
        "Version": 1, "Attributes": {},
    });
    for (key, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => _ = rule.as_object_mut().unwrap().remove(key),
            value => rule[key] = value.clone(),
        }
    }
    json!({ "SamplingRule": rule, "CreatedAt": 0.0, "ModifiedAt": 1_700_000_000.0 })
}

/// The rules of `records` that apply, as a fetch would give them.
fn rules(records: &[Value]) -> Vec<Rule> {
    let page: RulesPage = serde_json::from_value(json!({ "SamplingRuleRecords": records })).unwrap();
    page.sampling_rule_records.into_iter().filter_map(|record| record.sampling_rule?.into_rule()).collect()
}

/// A cache holding `records`, fetched at `NOW`.
fn cache(records: &[Value]) -> Cache {
    let cache = Cache::default();
    cache.load_rules(rules(records), NOW as f64);
    cache
}

const NOW: u64 = 1_795_416_275;

fn request<'a>(service: &'a str, path: &'a str) -> SamplingRequest<'a> {
    SamplingRequest {
        service_name: Some(service),
        service_type: None,
        host: Some("api.example.com"),
        http_method: Some("GET"),
        url_path: Some(path),
    }
}

/// The decisions of `count` requests at `second`: how many were sampled, and the rule names.
fn decide(cache: &Cache, request: &SamplingRequest<'_>, second: u64, count: usize) -> (usize, Vec<Option<String>>) {
    let decisions: Vec<Decision> = (0..count).map(|_| cache.decide(request, second).unwrap()).collect();
    let sampled = decisions.iter().filter(|decision| decision.sampled).count();
    (sampled, decisions.into_iter().map(|decision| decision.rule.map(|rule| rule.to_string())).collect())
}

fn target(rule: &str, rate: f64, quota: Option<u64>, until: Option<Value>, interval: Option<f64>) -> Target {
    Target { rule_name: rule.into(), fixed_rate: rate, reservoir_quota: quota, reservoir_quota_ttl: until, interval }
}

/// `(RuleName, RequestCount, BorrowCount, SampledCount)` of each statistics document.
fn counts(statistics: &[Value]) -> Vec<(String, u64, u64, u64)> {
    statistics
        .iter()
        .map(|document| {
            let count = |key: &str| document[key].as_u64().unwrap();
            let name = document["RuleName"].as_str().unwrap().to_owned();
            (name, count("RequestCount"), count("BorrowCount"), count("SampledCount"))
        })
        .collect()
}

#[test]
fn only_version_1_rules_for_any_resource_without_attributes_apply() {
    let records = [
        record("ok", 1, json!({})),
        record("version-2", 1, json!({"Version": 2})),
        record("no-version", 1, json!({"Version": null})),
        record("one-arn", 1, json!({"ResourceARN": "arn:aws:lambda:us-west-2:123456789012:function:f"})),
        record("empty-type", 1, json!({"ServiceType": ""})),
        record("attributes", 1, json!({"Attributes": {"tier": "gold"}})),
        record("no-path", 1, json!({"URLPath": null})),
        record("null-attributes", 2, json!({"Attributes": null})),
    ];
    let names: Vec<String> = rules(&records).iter().map(|rule| rule.name.to_string()).collect();
    assert_eq!(names, ["ok", "null-attributes"]);
}

#[test]
fn no_rules_or_rules_older_than_an_hour_leave_the_decision_to_the_local_rules() {
    let empty = Cache::default();
    assert_eq!(empty.decide(&request("orders", "/"), NOW), None);
    let cache = cache(&[record("Default", 10000, json!({"FixedRate": 1.0}))]);
    assert!(cache.decide(&request("orders", "/"), NOW + 3600).is_some());
    assert_eq!(cache.decide(&request("orders", "/"), NOW + 3601), None);
}

#[test]
fn rules_are_tried_by_priority_then_name_and_default_decides_last() {
    let cache = cache(&[
        record("Default", 10000, json!({"FixedRate": 1.0})),
        record("zeta", 5, json!({"FixedRate": 1.0, "ServiceName": "orders"})),
        record("alpha", 5, json!({"FixedRate": 1.0, "ServiceName": "orders", "URLPath": "/orders/*"})),
        record("health", 1, json!({"FixedRate": 0.0, "URLPath": "/health"})),
        record("types", 2, json!({"FixedRate": 1.0, "ServiceType": "AWS::EC2::*"})),
    ]);
    let name = |request: &SamplingRequest<'_>| cache.decide(request, NOW).unwrap().rule.map(|rule| rule.to_string());
    assert_eq!(name(&request("orders", "/orders/1")).as_deref(), Some("alpha"));
    assert_eq!(name(&request("orders", "/carts/1")).as_deref(), Some("zeta"));
    assert_eq!(name(&request("carts", "/carts/1")).as_deref(), Some("Default"));
    // Matched, not sampled: no rule name to write.
    assert_eq!(cache.decide(&request("orders", "/health"), NOW), Some(Decision { sampled: false, rule: None }));
    // An unknown origin matches only `*`; a known one its pattern.
    let ec2 = SamplingRequest { service_type: Some("AWS::EC2::Instance"), ..request("carts", "/") };
    assert_eq!(name(&ec2).as_deref(), Some("types"));
}

#[test]
fn before_a_quota_a_rule_with_a_reservoir_borrows_one_trace_a_second() {
    let cache =
        cache(&[record("Default", 10000, json!({"ReservoirSize": 1})), record("none", 1, json!({"URLPath": "/none"}))]);
    let (sampled, names) = decide(&cache, &request("orders", "/"), NOW, 10);
    assert_eq!(sampled, 1);
    assert_eq!(names[0].as_deref(), Some("Default"));
    assert_eq!(decide(&cache, &request("orders", "/"), NOW + 1, 10).0, 1);
    // No reservoir, rate 0: nothing.
    assert_eq!(decide(&cache, &request("orders", "/none"), NOW, 10).0, 0);
    let statistics = counts(&cache.statistics("0123456789abcdef01234567", NOW));
    assert_eq!(statistics, [("none".into(), 10, 0, 0), ("Default".into(), 20, 2, 0)]);
}

#[test]
fn a_quota_replaces_borrowing_until_it_expires_then_the_rate_decides() {
    let cache = cache(&[record("Default", 10000, json!({"ReservoirSize": 1}))]);
    cache.load_targets(&[target("Default", 0.0, Some(3), Some(json!(NOW + 1)), Some(10.0))]);
    let any = request("orders", "/");
    assert_eq!(decide(&cache, &any, NOW, 10).0, 3);
    assert_eq!(decide(&cache, &any, NOW + 1, 10).0, 3);
    // Expired: borrowing again.
    assert_eq!(decide(&cache, &any, NOW + 2, 10).0, 1);
    cache.load_targets(&[target("Default", 1.0, Some(0), Some(json!(NOW + 60)), None)]);
    assert_eq!(decide(&cache, &any, NOW + 3, 10).0, 10);
    let statistics = counts(&cache.statistics("0123456789abcdef01234567", NOW));
    assert_eq!(statistics, [("Default".into(), 40, 1, 16)]);
}

#[test]
fn a_target_without_quota_keeps_the_previous_one_and_takes_an_iso_ttl() {
    let cache = cache(&[record("Default", 10000, json!({"ReservoirSize": 1}))]);
    let until = baton_model::time::format_iso((NOW + 30) as f64);
    cache.load_targets(&[target("Default", 0.0, Some(2), Some(Value::String(until)), None)]);
    cache.load_targets(&[target("Default", 0.0, None, None, None), target("unknown", 1.0, Some(9), None, None)]);
    assert_eq!(decide(&cache, &request("orders", "/"), NOW + 30, 10).0, 2);
    assert_eq!(decide(&cache, &request("orders", "/"), NOW + 31, 10).0, 1);
}

#[test]
fn statistics_cover_the_rules_that_matched_since_the_last_report() {
    let cache = cache(&[
        record("Default", 10000, json!({"FixedRate": 1.0})),
        record("orders", 1, json!({"ServiceName": "orders", "FixedRate": 1.0})),
    ]);
    decide(&cache, &request("orders", "/"), NOW, 3);
    let statistics = cache.statistics("0123456789abcdef01234567", NOW + 10);
    assert_eq!(counts(&statistics), [("orders".into(), 3, 0, 3)]);
    assert_eq!(statistics[0]["ClientID"], "0123456789abcdef01234567");
    assert_eq!(statistics[0]["Timestamp"], NOW + 10);
    assert!(cache.statistics("0123456789abcdef01234567", NOW + 20).is_empty(), "the counts restart");
}

#[test]
fn a_rule_reports_every_interval_over_10_seconds_polls() {
    let cache = cache(&[record("Default", 10000, json!({"FixedRate": 1.0}))]);
    cache.load_targets(&[target("Default", 1.0, None, None, Some(30.0))]);
    let reported: Vec<bool> = (0..6)
        .map(|poll| {
            decide(&cache, &request("orders", "/"), NOW + poll, 1);
            !cache.statistics("0123456789abcdef01234567", NOW + poll).is_empty()
        })
        .collect();
    assert_eq!(reported, [false, false, true, false, false, true]);
}

#[test]
fn fetching_a_rule_again_keeps_its_reservoir_and_counts_and_takes_its_new_rate() {
    let cache = cache(&[record("Default", 10000, json!({"ReservoirSize": 1}))]);
    cache.load_targets(&[target("Default", 0.0, Some(1), Some(json!(NOW + 60)), None)]);
    assert_eq!(decide(&cache, &request("orders", "/"), NOW, 2).0, 1);
    let again = rules(&[record("Default", 10000, json!({"ReservoirSize": 1, "FixedRate": 1.0}))]);
    cache.load_rules(again, (NOW + 1) as f64);
    // The quota taken this second stays taken; the new rate samples the rest.
    assert_eq!(decide(&cache, &request("orders", "/"), NOW, 3), (3, vec![Some("Default".into()); 3]));
    assert_eq!(counts(&cache.statistics("0123456789abcdef01234567", NOW)), [("Default".into(), 5, 0, 4)]);
}

#[test]
fn rules_modified_after_the_fetch_are_stale() {
    let cache = cache(&[record("Default", 10000, json!({}))]);
    assert!(!Cache::default().stale(2e9));
    assert!(!cache.stale(NOW as f64));
    assert!(cache.stale(NOW as f64 + 0.5));
}

#[test]
fn the_reservoir_counts_per_second_across_threads() {
    let cache = Arc::new(cache(&[record("Default", 10000, json!({}))]));
    cache.load_targets(&[target("Default", 0.0, Some(100), Some(json!(NOW + 60)), None)]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || decide(&cache, &request("orders", "/"), NOW, 1000).0)
        })
        .collect();
    let sampled: usize = threads.into_iter().map(|thread| thread.join().unwrap()).sum();
    assert_eq!(sampled, 100);
    assert_eq!(counts(&cache.statistics("0123456789abcdef01234567", NOW)), [("Default".into(), 4000, 0, 100)]);
}

/// One request a daemon received: the request line, the headers (lowercase names) and the body.
type Received = (String, Vec<(String, String)>, String);

/// A daemon answering each request with the next of `answers` (status 200, JSON), reporting what it received.
fn daemon(answers: Vec<String>) -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            // Several requests may come on one connection.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let Some((name, value)) = header.trim_end().split_once(':') else { break };
                    headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                }
                let length =
                    headers.iter().find(|(name, _)| name == "content-length").map_or(0, |(_, n)| n.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                sender.send((line.trim_end().to_owned(), headers, String::from_utf8(body).unwrap())).unwrap();
                let answer = answers.next().unwrap_or_default();
                let status = if answer.is_empty() { "500 Internal Server Error" } else { "200 OK" };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                )
                .unwrap();
            }
        }
    });
    (address, received)
}

/// The answers of the Python SDK's capture (`fixtures/sampling/requests`).
const CAPTURED_RULES: &str = r#"{"SamplingRuleRecords": [{"SamplingRule": {"RuleName": "Default", "RuleARN": "arn:aws:xray:us-west-2:123456789012:sampling-rule/Default", "ResourceARN": "*", "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}}, "CreatedAt": 0.0, "ModifiedAt": 1700000000.0}, {"SamplingRule": {"RuleName": "capture-rule", "RuleARN": "arn:aws:xray:us-west-2:123456789012:sampling-rule/capture-rule", "ResourceARN": "*", "Priority": 1, "FixedRate": 1.0, "ReservoirSize": 5, "ServiceName": "sampling-capture-svc", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}}, "CreatedAt": 1700000000.0, "ModifiedAt": 1700000000.0}]}"#;
const CAPTURED_TARGETS: &str = r#"{"SamplingTargetDocuments": [{"RuleName": "capture-rule", "FixedRate": 1.0, "ReservoirQuota": 10, "ReservoirQuotaTTL": 1795416345.1271474, "Interval": 10}], "LastRuleModification": 1700000000.0, "UnprocessedStatistics": []}"#;

#[test]
fn the_client_speaks_to_the_daemon_as_the_python_sdk_does() {
    let modified_later =
        CAPTURED_TARGETS.replace("\"LastRuleModification\": 1700000000.0", "\"LastRuleModification\": 4e9");
    let rule_deleted = CAPTURED_TARGETS.replace(
        "\"UnprocessedStatistics\": []",
        r#""UnprocessedStatistics": [{"RuleName": "capture-rule", "ErrorCode": "400", "Message": "no rule"}]"#,
    );
    let answers = vec![CAPTURED_RULES.into(), CAPTURED_TARGETS.into(), modified_later, rule_deleted];
    let (address, received) = daemon(answers);
    let client = Client::new(address);
    assert_eq!(client.client_id.len(), 24);
    assert!(client.client_id.bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()));
    let cache = Cache::default();
    client.refresh_rules(&cache);
    let (line, headers, body) = received.recv().unwrap();
    assert_eq!((line.as_str(), body.as_str()), ("POST /GetSamplingRules HTTP/1.1", "{}"));
    let header = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("authorization"), None, "unsigned, as the daemon expects");
    assert_eq!(header("host"), Some(address.to_string().as_str()));

    let capture = SamplingRequest { service_name: Some("sampling-capture-svc"), ..SamplingRequest::default() };
    let now = baton_model::time::now() as u64;
    assert_eq!(cache.decide(&capture, now).unwrap().rule.as_deref(), Some("capture-rule"));
    assert!(!client.report(&cache), "the rules did not change since they were fetched");
    let (line, _, body) = received.recv().unwrap();
    assert_eq!(line, "POST /SamplingTargets HTTP/1.1");
    let body: Value = serde_json::from_str(&body).unwrap();
    let documents = body["SamplingStatisticsDocuments"].as_array().unwrap();
    assert_eq!(counts(documents), [("capture-rule".into(), 1, 1, 0)]);
    assert_eq!(documents[0]["ClientID"], client.client_id.as_str());
    // The quota of 10 (until 1795416345) applies.
    assert_eq!(decide(&cache, &capture, 1_795_416_300, 20).0, 20, "rate 1.0 after the quota");
    assert_eq!(counts(&cache.statistics("x", 0)), [("capture-rule".into(), 20, 0, 20)]);
    decide(&cache, &capture, 1_795_416_300, 1);
    assert!(client.report(&cache), "LastRuleModification after the fetch");
    decide(&cache, &capture, 1_795_416_300, 1);
    assert!(client.report(&cache), "a statistics document for a rule X-Ray no longer has");
}

#[test]
fn rules_are_read_page_by_page_and_a_failed_fetch_keeps_the_rules() {
    let first = json!({ "SamplingRuleRecords": [record("a", 1, json!({}))], "NextToken": "page-2" }).to_string();
    let second = json!({ "SamplingRuleRecords": [record("Default", 10000, json!({}))] }).to_string();
    let (address, received) = daemon(vec![first, second, String::new()]);
    let client = Client::new(address);
    let cache = Cache::default();
    client.refresh_rules(&cache);
    assert_eq!(received.recv().unwrap().2, "{}");
    assert_eq!(received.recv().unwrap().2, r#"{"NextToken":"page-2"}"#);
    let names = |cache: &Cache| -> Vec<String> {
        cache.rules.read().unwrap().list.iter().map(|rule| rule.name.to_string()).collect()
    };
    assert_eq!(names(&cache), ["a", "Default"]);
    client.refresh_rules(&cache);
    assert_eq!(names(&cache), ["a", "Default"], "a 500 changes nothing");
}

#[test]
fn the_poller_starts_at_the_first_decision_and_stops_with_the_sampler() {
    let (address, received) = daemon(vec![CAPTURED_RULES.into()]);
    let sampler = Centralized::new(address);
    assert!(received.recv_timeout(Duration::from_millis(200)).is_err(), "nothing before the first decision");
    let capture = SamplingRequest { service_name: Some("sampling-capture-svc"), ..SamplingRequest::default() };
    let now = baton_model::time::now() as u64;
    // The rules are fetched after this first decision starts the poller: it is the local rules' then.
    sampler.decide(&capture, now);
    assert_eq!(received.recv_timeout(Duration::from_secs(5)).unwrap().0, "POST /GetSamplingRules HTTP/1.1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while sampler.decide(&capture, now).is_none() {
        assert!(Instant::now() < deadline, "the rules never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cache = Arc::downgrade(&sampler.cache);
    drop(sampler);
    // The poller holds the rules only while it polls, not while it sleeps.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.upgrade().is_some() {
        assert!(Instant::now() < deadline, "the poller keeps the rules alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}
