//! Which new traces are recorded: X-Ray's local sampling rules and, with
//! the `centralized-sampling` feature, the rules the daemon address serves
//! (`centralized.rs`), which the local ones stand in for until they arrive.

#[cfg(feature = "centralized-sampling")]
mod centralized;

#[cfg(feature = "centralized-sampling")]
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use baton_model::sampling::{self, RulePatterns};
use serde_json::{Map, Value};

use crate::TracerError;

/// What the sampler looks at: the incoming request, when there is one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SamplingRequest<'a> {
    /// The host the request was sent to, e.g. `api.example.com`.
    pub host: Option<&'a str>,
    /// The HTTP method, e.g. `GET`.
    pub method: Option<&'a str>,
    /// The URL path, e.g. `/api/orders`.
    pub path: Option<&'a str>,
}

impl<'a> SamplingRequest<'a> {
    fn to_model(self) -> sampling::SamplingRequest<'a> {
        sampling::SamplingRequest {
            host: self.host,
            http_method: self.method,
            url_path: self.path,
            ..sampling::SamplingRequest::default()
        }
    }
}

/// X-Ray's local sampling rules: the first rule whose host, method and path
/// patterns match the request decides, otherwise the default does; each
/// samples `fixed_target` requests a second, then `rate` of the others.
/// `Sampler::centralized` (feature `centralized-sampling`) puts centralized rules in front of them.
#[derive(Debug)]
pub struct Sampler {
    rules: Vec<Rule>,
    default: Target,
    #[cfg(feature = "centralized-sampling")]
    centralized: Option<centralized::Centralized>,
}

/// A sampling decision: whether to record, and which centralized rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) sampled: bool,
    /// The centralized rule that decided to record (`aws.xray.sampling_rule_name`).
    pub(crate) rule: Option<Arc<str>>,
}

/// A non-default rule: case-insensitive globs (`*`, `?`) on the request's host, method and path
/// (local rules have no service patterns: those are `*`), and what it samples.
#[derive(Debug)]
struct Rule {
    patterns: RulePatterns,
    target: Target,
}

/// What a rule samples: `fixed_target` traces a second, then the `rate` fraction of the others.
#[derive(Debug)]
struct Target {
    fixed_target: u64,
    rate: f64,
    reservoir: Mutex<Reservoir>,
}

/// How many of its `fixed_target` traces a rule has used in `second`.
#[derive(Debug, Default)]
struct Reservoir {
    second: u64,
    used: u64,
}

impl Sampler {
    /// The X-Ray SDKs' default: the first request each second, then 5 % of the others.
    pub fn local_default() -> Sampler {
        Sampler::local(Vec::new(), Target::new(1, 0.05))
    }

    fn local(rules: Vec<Rule>, default: Target) -> Sampler {
        Sampler {
            rules,
            default,
            #[cfg(feature = "centralized-sampling")]
            centralized: None,
        }
    }

    /// The X-Ray SDKs' default sampler outside Lambda: the rules the daemon
    /// (Baton, or the X-Ray daemon) serves on its TCP `address`, fetched
    /// every 5 minutes by a background thread that starts at the first
    /// decision, each rule's reservoir quota and rate renewed every 10 s in
    /// exchange for its statistics; `fallback` decides while no rules are
    /// known (the first decision, a daemon that cannot be reached, rules
    /// older than an hour). A rule matches the segment's name, origin, and
    /// HTTP host, method and path.
    #[cfg(feature = "centralized-sampling")]
    pub fn centralized(address: SocketAddr, fallback: Sampler) -> Sampler {
        Sampler { centralized: Some(centralized::Centralized::new(address)), ..fallback }
    }

    /// Where centralized rules come from, if they do.
    #[cfg(feature = "centralized-sampling")]
    pub fn centralized_address(&self) -> Option<SocketAddr> {
        self.centralized.as_ref().map(centralized::Centralized::address)
    }

    /// Rules from the X-Ray local sampling rules JSON (version 1 and 2 files).
    pub fn from_json(text: &str) -> Result<Sampler, TracerError> {
        let file: Value = serde_json::from_str(text).map_err(|error| invalid(format!("not valid JSON: {error}")))?;
        let file = object(&file, "the file")?;
        let version = file.get("version").ok_or_else(|| invalid("version is required (1 or 2)"))?;
        // Version 1 called the host pattern `service_name`.
        let host_key = match version.as_u64() {
            Some(1) => "service_name",
            Some(2) => "host",
            _ => return Err(invalid(format!("version must be 1 or 2, got {version}"))),
        };
        let rules = match file.get("rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .enumerate()
                .map(|(index, rule)| Rule::parse(rule, &format!("rules[{index}]"), host_key))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(invalid(format!("rules must be an array, got {other}"))),
        };
        let default = object(file.get("default").ok_or_else(|| invalid("default is required"))?, "default")?;
        only(default, "default", &["fixed_target", "rate"])?;
        Ok(Sampler::local(rules, Target::parse(default, "default")?))
    }

    /// Whether to record a trace for `request` (of no known service name or origin).
    pub fn sample(&self, request: &SamplingRequest<'_>) -> bool {
        self.decide(&request.to_model()).sampled
    }

    /// Whether to record a new trace for `request`, and the centralized rule that decided.
    pub(crate) fn decide(&self, request: &sampling::SamplingRequest<'_>) -> Decision {
        // A clock before 1970 only shares one reservoir second; sampling still works.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since_epoch| since_epoch.as_secs());
        #[cfg(feature = "centralized-sampling")]
        if let Some(decision) = self.centralized.as_ref().and_then(|centralized| centralized.decide(request, now)) {
            return decision;
        }
        Decision { sampled: self.sample_locally(request, now), rule: None }
    }

    fn sample_locally(&self, request: &sampling::SamplingRequest<'_>, now_second: u64) -> bool {
        let rule = self.rules.iter().find(|rule| rule.patterns.matches(request));
        rule.map_or(&self.default, |rule| &rule.target).sample(now_second)
    }

    #[cfg(test)]
    fn sample_at(&self, request: &SamplingRequest<'_>, now_second: u64) -> bool {
        self.sample_locally(&request.to_model(), now_second)
    }
}

impl Rule {
    fn parse(value: &Value, at: &str, host_key: &str) -> Result<Rule, TracerError> {
        let fields = object(value, at)?;
        only(fields, at, &["description", host_key, "http_method", "url_path", "fixed_target", "rate"])?;
        // Patterns are never empty, so that a request's missing field (matched as "") meets only `*`.
        let patterns = RulePatterns {
            host: pattern(fields, at, host_key)?,
            http_method: pattern(fields, at, "http_method")?,
            url_path: pattern(fields, at, "url_path")?,
            ..RulePatterns::any()
        };
        Ok(Rule { patterns, target: Target::parse(fields, at)? })
    }
}

impl Target {
    fn new(fixed_target: u64, rate: f64) -> Target {
        Target { fixed_target, rate, reservoir: Mutex::default() }
    }

    fn parse(fields: &Map<String, Value>, at: &str) -> Result<Target, TracerError> {
        let value = required(fields, at, "fixed_target")?;
        let fixed_target = value
            .as_u64()
            .ok_or_else(|| invalid(format!("{at}.fixed_target must be a non-negative integer, got {value}")))?;
        let value = required(fields, at, "rate")?;
        let rate = value
            .as_f64()
            .filter(|rate| (0.0..=1.0).contains(rate))
            .ok_or_else(|| invalid(format!("{at}.rate must be between 0 and 1, got {value}")))?;
        Ok(Target::new(fixed_target, rate))
    }

    fn sample(&self, now_second: u64) -> bool {
        self.take_from_reservoir(now_second) || fastrand::f64() < self.rate
    }

    fn take_from_reservoir(&self, now_second: u64) -> bool {
        // Rate-only rules, the common case under load, never contend for the lock.
        if self.fixed_target == 0 {
            return false;
        }
        // Nothing can panic while the lock is held, so a poisoned lock still holds valid counts.
        let mut reservoir = self.reservoir.lock().unwrap_or_else(PoisonError::into_inner);
        if reservoir.second != now_second {
            *reservoir = Reservoir { second: now_second, used: 0 };
        }
        let available = reservoir.used < self.fixed_target;
        if available {
            reservoir.used += 1;
        }
        available
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, TracerError> {
    value.as_object().ok_or_else(|| invalid(format!("{at} must be a JSON object")))
}

/// Rejects fields outside `allowed`: a misspelt or misplaced field would otherwise be silently ignored.
fn only(fields: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), TracerError> {
    match fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid(format!("{at}.{key} is not allowed (allowed fields: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn required<'a>(fields: &'a Map<String, Value>, at: &str, key: &str) -> Result<&'a Value, TracerError> {
    fields.get(key).ok_or_else(|| invalid(format!("{at}.{key} is required")))
}

fn pattern(fields: &Map<String, Value>, at: &str, key: &str) -> Result<String, TracerError> {
    match required(fields, at, key)? {
        Value::String(pattern) if !pattern.is_empty() => Ok(pattern.clone()),
        other => Err(invalid(format!("{at}.{key} must be a non-empty string, got {other}"))),
    }
}

fn invalid(message: impl Into<String>) -> TracerError {
    TracerError::SamplingRules(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(host: &'a str, method: &'a str, path: &'a str) -> SamplingRequest<'a> {
        SamplingRequest { host: Some(host), method: Some(method), path: Some(path) }
    }

    fn rules(rules: &str, default: &str) -> Sampler {
        Sampler::from_json(&format!(r#"{{"version": 2, "rules": [{rules}], "default": {default}}}"#)).unwrap()
    }

    fn error(json: &str) -> String {
        Sampler::from_json(json).unwrap_err().to_string()
    }

    /// How many of `count` requests at `second` are sampled.
    fn sampled(sampler: &Sampler, request: &SamplingRequest<'_>, second: u64, count: usize) -> usize {
        (0..count).filter(|_| sampler.sample_at(request, second)).count()
    }

    const ALWAYS: &str = r#"{"fixed_target": 0, "rate": 1}"#;
    const NEVER: &str = r#"{"fixed_target": 0, "rate": 0}"#;

    #[test]
    fn a_missing_request_field_matches_only_star() {
        let sampler =
            rules(r#"{"host": "*", "http_method": "GET", "url_path": "*", "fixed_target": 0, "rate": 1}"#, NEVER);
        assert!(sampler.sample_at(&SamplingRequest { method: Some("GET"), ..SamplingRequest::default() }, 0));
        assert!(!sampler.sample_at(&SamplingRequest::default(), 0));
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let get_orders =
            r#"{"host": "*", "http_method": "GET", "url_path": "/orders/*", "fixed_target": 0, "rate": 1}"#;
        let all_get = r#"{"host": "*", "http_method": "GET", "url_path": "*", "fixed_target": 0, "rate": 0}"#;
        let specific_first = rules(&format!("{get_orders}, {all_get}"), NEVER);
        let general_first = rules(&format!("{all_get}, {get_orders}"), NEVER);
        let order = request("shop.example.com", "GET", "/orders/42");
        assert!(specific_first.sample_at(&order, 0));
        assert!(!general_first.sample_at(&order, 0));
        assert!(!specific_first.sample_at(&request("shop.example.com", "GET", "/carts/1"), 0));
    }

    #[test]
    fn an_unmatched_request_falls_back_to_the_default() {
        let post_only = r#"{"host": "*", "http_method": "POST", "url_path": "*", "fixed_target": 0, "rate": 0}"#;
        let sampler = rules(post_only, ALWAYS);
        assert!(sampler.sample_at(&request("shop.example.com", "GET", "/"), 0));
        assert!(sampler.sample_at(&SamplingRequest::default(), 0));
        assert!(!sampler.sample_at(&request("shop.example.com", "POST", "/"), 0));
    }

    #[test]
    fn the_reservoir_samples_fixed_target_a_second_and_refills_the_next() {
        let sampler = rules("", r#"{"fixed_target": 3, "rate": 0}"#);
        let any = SamplingRequest::default();
        assert_eq!(sampled(&sampler, &any, 100, 10), 3);
        assert_eq!(sampled(&sampler, &any, 100, 10), 0);
        assert_eq!(sampled(&sampler, &any, 101, 10), 3);
    }

    #[test]
    fn each_rule_has_its_own_reservoir() {
        let orders = r#"{"host": "*", "http_method": "*", "url_path": "/orders", "fixed_target": 2, "rate": 0}"#;
        let sampler = rules(orders, r#"{"fixed_target": 1, "rate": 0}"#);
        assert_eq!(sampled(&sampler, &request("h", "GET", "/orders"), 7, 5), 2);
        assert_eq!(sampled(&sampler, &request("h", "GET", "/carts"), 7, 5), 1);
    }

    #[test]
    fn rate_one_without_a_reservoir_samples_everything() {
        let sampler = rules("", ALWAYS);
        assert_eq!(sampled(&sampler, &SamplingRequest::default(), 0, 1000), 1000);
        assert!(sampler.sample(&SamplingRequest::default()));
    }

    #[test]
    fn the_default_sampler_takes_one_a_second_then_five_percent() {
        let sampler = Sampler::local_default();
        let any = SamplingRequest::default();
        assert!(sampler.sample_at(&any, 5));
        let draws = 100_000;
        let rate = sampled(&sampler, &any, 5, draws) as f64 / draws as f64;
        assert!((0.04..=0.06).contains(&rate), "rate {rate}");
        assert!(sampler.sample_at(&any, 6));
    }

    #[test]
    fn version_1_matches_service_name_against_the_host() {
        let sampler = Sampler::from_json(
            r#"{"version": 1, "rules": [{"description": "Orders", "service_name": "orders.*", "http_method": "*",
                "url_path": "*", "fixed_target": 0, "rate": 1}], "default": {"fixed_target": 0, "rate": 0}}"#,
        )
        .unwrap();
        assert!(sampler.sample_at(&request("orders.example.com", "GET", "/"), 0));
        assert!(!sampler.sample_at(&request("carts.example.com", "GET", "/"), 0));
    }

    #[test]
    fn unknown_top_level_fields_and_missing_rules_are_accepted() {
        let sampler =
            Sampler::from_json(r#"{"version": 2, "comment": "x", "default": {"fixed_target": 0, "rate": 1}}"#);
        assert!(sampler.unwrap().sample_at(&SamplingRequest::default(), 0));
    }

    #[test]
    fn invalid_files_are_rejected_naming_the_field() {
        let file = |rules: &str| format!(r#"{{"version": 2, "rules": [{rules}], "default": {ALWAYS}}}"#);
        let rule = |fields: &str| file(&format!("{{{fields}}}"));
        let valid = r#""host": "*", "http_method": "*", "url_path": "*", "fixed_target": 1, "rate": 0.5"#;
        for (json, message) in [
            ("{".to_string(), "not valid JSON: EOF while parsing an object at line 1 column 1"),
            ("[]".to_string(), "the file must be a JSON object"),
            (format!(r#"{{"default": {ALWAYS}}}"#), "version is required (1 or 2)"),
            (format!(r#"{{"version": 3, "default": {ALWAYS}}}"#), "version must be 1 or 2, got 3"),
            (format!(r#"{{"version": "2", "default": {ALWAYS}}}"#), r#"version must be 1 or 2, got "2""#),
            (r#"{"version": 2}"#.to_string(), "default is required"),
            (r#"{"version": 2, "default": 1}"#.to_string(), "default must be a JSON object"),
            (format!(r#"{{"version": 2, "rules": {{}}, "default": {ALWAYS}}}"#), "rules must be an array, got {}"),
            (file("5"), "rules[0] must be a JSON object"),
            (
                file(&format!("{{{valid}}}, {{{valid}, \"rate\": 1.5}}")),
                "rules[1].rate must be between 0 and 1, got 1.5",
            ),
            (rule(&valid.replace("0.5", "-0.1")), "rules[0].rate must be between 0 and 1, got -0.1"),
            (rule(&valid.replace("0.5", "\"high\"")), r#"rules[0].rate must be between 0 and 1, got "high""#),
            (
                rule(&valid.replace("\"fixed_target\": 1", "\"fixed_target\": -1")),
                "rules[0].fixed_target must be a non-negative integer, got -1",
            ),
            (
                rule(&valid.replace("\"fixed_target\": 1", "\"fixed_target\": 1.5")),
                "rules[0].fixed_target must be a non-negative integer, got 1.5",
            ),
            (rule(&valid.replace(", \"rate\": 0.5", "")), "rules[0].rate is required"),
            (rule(&valid.replace("\"fixed_target\": 1, ", "")), "rules[0].fixed_target is required"),
            (rule(&valid.replace("\"url_path\": \"*\", ", "")), "rules[0].url_path is required"),
            (rule(&valid.replace("\"*\"", "\"\"")), r#"rules[0].host must be a non-empty string, got """#),
            (
                rule(&valid.replace("\"http_method\": \"*\"", "\"http_method\": 1")),
                "rules[0].http_method must be a non-empty string, got 1",
            ),
            (
                rule(&valid.replace("host", "service_name")),
                "rules[0].service_name is not allowed (allowed fields: description, host, http_method, url_path, fixed_target, rate)",
            ),
            (
                format!(r#"{{"version": 1, "rules": [{{{valid}}}], "default": {ALWAYS}}}"#),
                "rules[0].host is not allowed (allowed fields: description, service_name, http_method, url_path, fixed_target, rate)",
            ),
            (
                r#"{"version": 2, "default": {"url_path": "*", "fixed_target": 1, "rate": 0.1}}"#.to_string(),
                "default.url_path is not allowed (allowed fields: fixed_target, rate)",
            ),
            (r#"{"version": 2, "default": {"rate": 0.1}}"#.to_string(), "default.fixed_target is required"),
            (
                r#"{"version": 2, "default": {"fixed_target": 1, "rate": 2}}"#.to_string(),
                "default.rate must be between 0 and 1, got 2",
            ),
        ] {
            assert_eq!(error(&json), format!("sampling rules: {message}"), "for {json}");
        }
    }

    #[test]
    fn the_sampler_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sampler>();
    }
}
