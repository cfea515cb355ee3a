//! Centralized sampling against the real `baton serve`: rules created
//! through Baton's API decide which new traces the tracer records (the first
//! decision, before any rule arrived, is the local rules'), a rule created
//! later applies once a statistics report learns that the rules changed,
//! sampled segments name their rule, and the statistics reach Baton; a
//! caller's W3C `traceparent` continues its trace.
//!
//! The server is the `baton` binary of this workspace: `BATON_BIN`, else
//! `target/debug/baton` next to this test (`cargo build -p baton`, which
//! `scripts/test` runs first, builds it).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_tracer::{Config, Exporter, HttpRequest, Sampler, Segment};
use serde_json::{Value, json};

/// A running `baton serve` in a temp dir, killed on drop.
struct Baton {
    child: Child,
    address: SocketAddr,
    agent: ureq::Agent,
    data_dir: PathBuf,
}

impl Baton {
    fn start() -> Baton {
        let binary = std::env::var_os("BATON_BIN").map(PathBuf::from).unwrap_or_else(|| {
            // This test is `<target>/debug/deps/centralized_sampling-<hash>`.
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(2).unwrap().join(format!("baton{}", std::env::consts::EXE_SUFFIX))
        });
        assert!(binary.exists(), "{} is missing: cargo build -p baton (or set BATON_BIN)", binary.display());
        let data_dir = std::env::temp_dir().join(format!("baton-tracer-sampling-{}", std::process::id()));
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0"])
            .args(["--log", "warn", "--data-dir"])
            .arg(&data_dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // `listening http 127.0.0.1:PORT (X-Ray API, /metrics)`: TCP and UDP share the address.
        let address = lines
            .by_ref()
            .map(Result::unwrap)
            .find_map(|line| line.strip_prefix("listening http ")?.split_whitespace().next()?.parse().ok())
            .expect("baton serve printed its HTTP address");
        std::thread::spawn(move || lines.for_each(drop));
        let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().new_agent();
        Baton { child, address, agent, data_dir }
    }

    /// POSTs `body` to an X-Ray API operation and returns the answer.
    fn call(&self, operation: &str, body: Value) -> Value {
        let url = format!("http://{}/{operation}", self.address);
        let sent = self.agent.post(&url).header("content-type", "application/json").send(body.to_string());
        let mut response = sent.unwrap_or_else(|error| panic!("{url}: {error}"));
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    }

    fn create_rule(&self, name: &str, priority: u32, url_path: &str, fixed_rate: f64) {
        let rule = json!({
            "RuleName": name, "Priority": priority, "FixedRate": fixed_rate, "ReservoirSize": 0,
            "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": url_path,
            "ResourceARN": "*", "Version": 1,
        });
        self.call("CreateSamplingRule", json!({ "SamplingRule": rule }));
    }

    /// The documents of the traces that started in the last minute and match `filter`.
    fn documents(&self, filter: &str) -> Vec<Value> {
        let now = baton_model::time::now();
        let range = json!({ "StartTime": now - 60.0, "EndTime": now + 60.0, "FilterExpression": filter });
        let summaries = self.call("TraceSummaries", range);
        let ids: Vec<&Value> = summaries["TraceSummaries"].as_array().unwrap().iter().map(|s| &s["Id"]).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let traces = self.call("Traces", json!({ "TraceIds": ids }));
        let segments =
            traces["Traces"].as_array().unwrap().iter().flat_map(|trace| trace["Segments"].as_array().unwrap());
        segments.map(|segment| serde_json::from_str(segment["Document"].as_str().unwrap()).unwrap()).collect()
    }

    /// Each rule's counts summed over the reports Baton received: (requests, borrowed, sampled).
    fn statistics(&self, rule: &str) -> (u64, u64, u64) {
        let summaries = self.call("SamplingStatisticSummaries", json!({}));
        let of_rule =
            summaries["SamplingStatisticSummaries"].as_array().unwrap().iter().filter(|s| s["RuleName"] == rule);
        of_rule.fold((0, 0, 0), |(requests, borrowed, sampled), summary| {
            let count = |key: &str| summary[key].as_u64().unwrap();
            (requests + count("RequestCount"), borrowed + count("BorrowCount"), sampled + count("SampledCount"))
        })
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Begins and ends a segment for `GET http://api.example.com<path>`; whether it was recorded.
fn request(path: &str) -> bool {
    let request = HttpRequest::new("GET", &format!("http://api.example.com{path}"));
    let segment = Segment::builder("orders-api").http_request("api.example.com", request).begin();
    let recording = segment.is_recording();
    segment.end();
    recording
}

/// Waits up to `seconds` for `done`, checking every 100 ms.
fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "waited {seconds} s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rules_from_baton_decide_and_statistics_reach_it() {
    let baton = Baton::start();
    // Everything is recorded unless a rule says otherwise; /health never.
    let default = json!({ "RuleName": "Default", "FixedRate": 1.0, "ReservoirSize": 0 });
    baton.call("UpdateSamplingRule", json!({ "SamplingRuleUpdate": default }));
    baton.create_rule("health", 10, "/health", 0.0);

    // Local rules that record nothing, so that a recorded segment shows centralized rules at work.
    let never = Sampler::from_json(r#"{"version": 2, "default": {"fixed_target": 0, "rate": 0}}"#).unwrap();
    baton_tracer::init(Config {
        service_name: "orders-api".into(),
        enabled: true,
        capture_response: true,
        capture_error: true,
        in_lambda: false,
        exporter: Exporter::Udp(baton.address),
        sampler: Sampler::centralized(baton.address, never),
    })
    .unwrap();
    assert!(!request("/first"), "before the rules arrive, the local rules decide");
    wait_for("the rules from Baton", 5, || request("/probe"));

    let health: Vec<bool> = (0..10).map(|_| request("/health")).collect();
    assert_eq!(health, [false; 10]);
    let orders: Vec<bool> = (0..10).map(|n| request(&format!("/orders/{n}"))).collect();
    assert_eq!(orders, [true; 10]);

    // A rule created now applies once the next report (10 s after the poller started) says the rules changed.
    let created = Instant::now();
    baton.create_rule("orders", 20, "/orders/*", 0.0);
    wait_for("the orders rule to apply", 15, || !request("/orders/late"));
    assert!(created.elapsed() < Duration::from_secs(12), "applied after {:?}", created.elapsed());
    assert!(request("/other"), "Default still records the rest");
    // A caller's W3C traceparent continues its trace, with its decision (an X-Ray trace id is a W3C one).
    let caller = baton_tracer::TraceId::from_parts(baton_model::time::now() as u32, 0x1234_5678_9abc_def0);
    let traceparent = format!("00-{}-00f067aa0ba902b7-01", caller.to_w3c());
    let continued = Segment::builder("orders-api").incoming_headers(None, Some(&traceparent)).begin();
    continued.end();
    baton_tracer::flush();

    // What was recorded reached Baton, naming the rule that recorded it; nothing of /health did.
    let mut documents = Vec::new();
    wait_for("the 10 orders documents", 5, || {
        documents = baton.documents(r#"service("orders-api") AND http.url CONTAINS "/orders/""#);
        documents.len() >= 10
    });
    for document in &documents {
        assert_eq!(document["aws"]["xray"]["sampling_rule_name"], "Default", "{document:#}");
        assert_eq!(document["name"], "orders-api");
    }
    assert!(baton.documents(r#"http.url CONTAINS "/health""#).is_empty());
    assert!(baton.documents(r#"http.url CONTAINS "/first""#).is_empty());
    let mut traces = Value::Null;
    wait_for("the continued trace", 5, || {
        traces = baton.call("Traces", json!({ "TraceIds": [caller.to_string()] }));
        traces["Traces"].as_array().is_some_and(|traces| !traces.is_empty())
    });
    let document: Value =
        serde_json::from_str(traces["Traces"][0]["Segments"][0]["Document"].as_str().unwrap()).unwrap();
    assert_eq!(
        (document["trace_id"].as_str(), document["parent_id"].as_str()),
        (Some(&*caller.to_string()), Some("00f067aa0ba902b7"))
    );
    assert!(document["aws"]["xray"].get("sampling_rule_name").is_none(), "the caller decided: {document:#}");

    // The first report carried the counts of every rule that matched; the one after the
    // orders rule applied carries its own, at the second report (20 s after the poller started).
    wait_for("the statistics of health and orders", 25, || {
        baton.statistics("health").0 == 10 && baton.statistics("orders").0 >= 1
    });
    assert_eq!(baton.statistics("health"), (10, 0, 0));
    let (requests, borrowed, sampled) = baton.statistics("Default");
    assert!(requests >= 12 && borrowed == 0 && sampled == requests, "{requests} {borrowed} {sampled}");
    let (requests, borrowed, sampled) = baton.statistics("orders");
    assert!(requests >= 1 && borrowed == 0 && sampled == 0, "{requests} {borrowed} {sampled}");
}
