//! X-Ray centralized sampling, as the X-Ray SDKs' default sampler does it
//! (the Python SDK's `DefaultSampler` is the reference): rules fetched from
//! the daemon address (Baton, or the X-Ray daemon, which signs and forwards
//! the calls), each rule's reservoir quota and rate fetched every 10 s in
//! exchange for its statistics, and the local rules as the fallback while no
//! rules are known.
//!
//! The traced code only reads: the rules sit behind a read-write lock that
//! one background thread write-locks when it replaces them (every 5
//! minutes), and everything a decision changes (the reservoir's counts this
//! second, the statistics) is atomic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use baton_model::sampling::{RulePatterns, SamplingRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Decision;

/// How often the rules are fetched, plus up to [`RULES_JITTER`].
const RULES_INTERVAL: Duration = Duration::from_secs(300);
const RULES_JITTER: Duration = Duration::from_secs(5);
/// How often statistics are reported and targets fetched, plus up to [`TARGETS_JITTER`].
const TARGETS_INTERVAL: Duration = Duration::from_secs(10);
const TARGETS_JITTER: Duration = Duration::from_millis(100);
/// Rules not refreshed for this long are not used: the local rules decide.
const RULES_TTL_SECONDS: f64 = 3600.0;
/// The most statistics documents X-Ray takes in one `GetSamplingTargets`.
const STATISTICS_PER_CALL: usize = 25;
/// The most `GetSamplingRules` pages read in one refresh (X-Ray's quota of 25 rules fits in one).
const MAX_RULE_PAGES: usize = 10;
/// How long one call to the daemon may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The name X-Ray reserves for the rule that applies when no other does.
const DEFAULT_RULE: &str = "Default";
/// A reservoir with no quota from X-Ray.
const NO_QUOTA: u64 = u64::MAX;

/// The centralized sampler of one process.
#[derive(Debug)]
pub(crate) struct Centralized {
    cache: Arc<Cache>,
    address: SocketAddr,
    /// The background thread starts at the first decision, as the X-Ray SDKs' does.
    started: Once,
}

/// What the polling thread and the traced code share.
#[derive(Debug, Default)]
struct Cache {
    rules: RwLock<Rules>,
}

/// The rules in the order they are tried (priority, then name).
#[derive(Debug, Default)]
struct Rules {
    list: Vec<Rule>,
    /// When the last successful fetch was sent (epoch seconds); `None` before the first.
    fetched_at: Option<f64>,
}

/// A centralized rule: what it matches, and its state, which outlives the
/// rule when a fetch brings the same rule again.
#[derive(Debug)]
struct Rule {
    name: Arc<str>,
    priority: i64,
    patterns: RulePatterns,
    /// A rule with a reservoir may borrow one trace a second while X-Ray has given it no quota.
    can_borrow: bool,
    state: Arc<RuleState>,
}

/// A rule's reservoir, rate and statistics.
#[derive(Debug)]
struct RuleState {
    /// The rate (`f64` bits): the rule's `FixedRate`, then the targets'.
    rate: AtomicU64,
    /// Traces a second X-Ray allows this client ([`NO_QUOTA`] before the first target).
    quota: AtomicU64,
    /// Until when the quota holds (epoch seconds).
    quota_until: AtomicU64,
    /// `second << 32 | count` of traces taken from the quota and borrowed this second.
    taken: AtomicU64,
    borrowed: AtomicU64,
    /// Statistics since the last report.
    requests: AtomicU64,
    borrows: AtomicU64,
    samples: AtomicU64,
    /// How many target polls a report waits for, and how many have passed (polling thread only).
    reporting: Mutex<Reporting>,
}

#[derive(Debug)]
struct Reporting {
    /// The targets' `Interval` over 10 s: report every this many polls.
    every: f64,
    skipped: f64,
}

impl Centralized {
    /// A sampler asking the daemon at `address` (its TCP address) for rules.
    pub(crate) fn new(address: SocketAddr) -> Centralized {
        Centralized { cache: Arc::default(), address, started: Once::new() }
    }

    /// Where the rules come from.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// The decision of the rule `request` matches, or `None` when no rules
    /// are known (or they expired): the local rules decide.
    pub(crate) fn decide(&self, request: &SamplingRequest<'_>, now_second: u64) -> Option<Decision> {
        self.started.call_once(|| self.start());
        self.cache.decide(request, now_second)
    }

    fn start(&self) {
        let cache = Arc::downgrade(&self.cache);
        let client = Client::new(self.address);
        let spawned =
            std::thread::Builder::new().name("baton-tracer-sampling".into()).spawn(move || poll(&cache, &client));
        if let Err(error) = spawned {
            tracing::warn!(%error, "baton-tracer: cannot start the sampling rules poller, local rules decide");
        }
    }
}

impl Cache {
    fn decide(&self, request: &SamplingRequest<'_>, now_second: u64) -> Option<Decision> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        let fresh = rules.fetched_at.is_some_and(|fetched_at| now_second as f64 <= fetched_at + RULES_TTL_SECONDS);
        if !fresh {
            return None;
        }
        // As the SDKs do: the first rule that matches, else `Default` (which matches everything anyway).
        let rule = rules
            .list
            .iter()
            .find(|rule| rule.patterns.matches(request))
            .or_else(|| rules.list.iter().find(|rule| &*rule.name == DEFAULT_RULE))?;
        let sampled = rule.state.decide(now_second, rule.can_borrow);
        Some(Decision { sampled, rule: sampled.then(|| rule.name.clone()) })
    }

    /// Replaces the rules, keeping the reservoir and statistics of those fetched again.
    fn load_rules(&self, mut fetched: Vec<Rule>, fetched_at: f64) {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        for rule in &mut fetched {
            if let Some(old) = rules.list.iter().find(|old| old.name == rule.name) {
                // The fetched rate holds until the next targets, as in the SDKs.
                old.state.rate.store(rule.state.rate.load(Ordering::Relaxed), Ordering::Relaxed);
                rule.state = old.state.clone();
            }
        }
        fetched.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        *rules = Rules { list: fetched, fetched_at: Some(fetched_at) };
    }

    /// The statistics to report: those of the rules that matched since their
    /// last report, when their report interval has come; their counts restart.
    fn statistics(&self, client_id: &str, now_second: u64) -> Vec<Value> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .list
            .iter()
            .filter(|rule| rule.state.requests.load(Ordering::Relaxed) > 0 && rule.state.time_to_report())
            .map(|rule| {
                let (requests, borrows, samples) = rule.state.take_statistics();
                json!({
                    "RuleName": &*rule.name,
                    "ClientID": client_id,
                    "RequestCount": requests,
                    "BorrowCount": borrows,
                    "SampledCount": samples,
                    "Timestamp": now_second,
                })
            })
            .collect()
    }

    fn load_targets(&self, targets: &[Target]) {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        for target in targets {
            if let Some(rule) = rules.list.iter().find(|rule| *rule.name == *target.rule_name) {
                rule.state.load_target(target);
            }
        }
    }

    /// Whether rules changed after the last fetch.
    fn stale(&self, last_rule_modification: f64) -> bool {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules.fetched_at.is_some_and(|fetched_at| last_rule_modification > fetched_at)
    }
}

impl RuleState {
    fn new(rate: f64) -> RuleState {
        RuleState {
            rate: AtomicU64::new(rate.to_bits()),
            quota: AtomicU64::new(NO_QUOTA),
            quota_until: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            borrowed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            borrows: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            reporting: Mutex::new(Reporting { every: 1.0, skipped: 0.0 }),
        }
    }

    /// The SDKs' decision: from the quota while it holds, else one borrowed
    /// trace a second, else the rate.
    fn decide(&self, now_second: u64, can_borrow: bool) -> bool {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let quota = self.quota.load(Ordering::Relaxed);
        let quota_holds = quota != NO_QUOTA && self.quota_until.load(Ordering::Relaxed) >= now_second;
        // Release: a report that sees this count also sees the request counted above.
        if quota_holds {
            if take(&self.taken, now_second, quota) {
                self.samples.fetch_add(1, Ordering::Release);
                return true;
            }
        } else if can_borrow && take(&self.borrowed, now_second, 1) {
            self.borrows.fetch_add(1, Ordering::Release);
            return true;
        }
        let sampled = fastrand::f64() < f64::from_bits(self.rate.load(Ordering::Relaxed));
        if sampled {
            self.samples.fetch_add(1, Ordering::Release);
        }
        sampled
    }

    /// Requests, borrowed and sampled since the last call. Sampled and
    /// borrowed are read first, so a report never counts a trace without its request.
    fn take_statistics(&self) -> (u64, u64, u64) {
        let samples = self.samples.swap(0, Ordering::Acquire);
        let borrows = self.borrows.swap(0, Ordering::Acquire);
        let requests = self.requests.swap(0, Ordering::Relaxed);
        (requests, borrows, samples)
    }

    /// Whether this poll reports the rule: every `Interval / 10 s` polls.
    fn time_to_report(&self) -> bool {
        let mut reporting = self.reporting.lock().unwrap_or_else(PoisonError::into_inner);
        if reporting.skipped + 1.0 >= reporting.every {
            reporting.skipped = 0.0;
            true
        } else {
            reporting.skipped += 1.0;
            false
        }
    }

    /// A target's quota, its end and interval each replace the previous only when given.
    fn load_target(&self, target: &Target) {
        self.rate.store(target.fixed_rate.to_bits(), Ordering::Relaxed);
        if let Some(until) = target.reservoir_quota_ttl.as_ref().and_then(epoch_seconds) {
            self.quota_until.store(until.max(0.0) as u64, Ordering::Relaxed);
        }
        if let Some(quota) = target.reservoir_quota {
            self.quota.store(quota.min(NO_QUOTA - 1), Ordering::Relaxed);
        }
        if let Some(interval) = target.interval {
            self.reporting.lock().unwrap_or_else(PoisonError::into_inner).every = interval / 10.0;
        }
    }
}

/// Takes one of `limit` traces of `now_second` from `counter` (`second << 32 | count`).
fn take(counter: &AtomicU64, now_second: u64, limit: u64) -> bool {
    let second = now_second & u64::from(u32::MAX);
    let mut current = counter.load(Ordering::Relaxed);
    loop {
        let used = if current >> 32 == second { current & u64::from(u32::MAX) } else { 0 };
        if used >= limit.min(u64::from(u32::MAX)) {
            return false;
        }
        match counter.compare_exchange_weak(current, second << 32 | (used + 1), Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
}

/// The polling thread: rules at once and every 5 minutes, targets every
/// 10 s, and rules again at once when the targets say they changed. It ends
/// when the sampler is dropped.
fn poll(cache: &Weak<Cache>, client: &Client) {
    let mut next_rules = Instant::now();
    let mut next_targets = Instant::now() + jittered(TARGETS_INTERVAL, TARGETS_JITTER);
    loop {
        std::thread::sleep(next_rules.min(next_targets).saturating_duration_since(Instant::now()));
        let Some(cache) = cache.upgrade() else { return };
        if Instant::now() >= next_targets {
            if client.report(&cache) {
                next_rules = Instant::now();
            }
            next_targets = Instant::now() + jittered(TARGETS_INTERVAL, TARGETS_JITTER);
        }
        if Instant::now() >= next_rules {
            client.refresh_rules(&cache);
            next_rules = Instant::now() + jittered(RULES_INTERVAL, RULES_JITTER);
        }
    }
}

fn jittered(interval: Duration, jitter: Duration) -> Duration {
    interval + jitter.mul_f64(fastrand::f64())
}

/// The calls to the daemon address: unsigned JSON POSTs, as the SDKs' botocore client makes them.
struct Client {
    agent: ureq::Agent,
    base: String,
    /// 24 hex digits, the same for every report of this process.
    client_id: String,
}

/// One `GetSamplingRules` page.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RulesPage {
    #[serde(default)]
    sampling_rule_records: Vec<RuleRecord>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRecord {
    sampling_rule: Option<RuleDefinition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleDefinition {
    rule_name: Option<String>,
    priority: Option<i64>,
    fixed_rate: Option<f64>,
    reservoir_size: Option<u64>,
    service_name: Option<String>,
    service_type: Option<String>,
    host: Option<String>,
    #[serde(rename = "HTTPMethod")]
    http_method: Option<String>,
    #[serde(rename = "URLPath")]
    url_path: Option<String>,
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    version: Option<i64>,
    attributes: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetsResult {
    #[serde(default)]
    sampling_target_documents: Vec<Target>,
    last_rule_modification: Option<Value>,
    #[serde(default)]
    unprocessed_statistics: Vec<Unprocessed>,
}

/// A statistics document X-Ray did not take; a 4xx `ErrorCode` (a rule
/// deleted since the fetch) means the rules are out of date.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Unprocessed {
    error_code: Option<String>,
}

/// A rule's `SamplingTargetDocument`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Target {
    rule_name: String,
    fixed_rate: f64,
    reservoir_quota: Option<u64>,
    #[serde(rename = "ReservoirQuotaTTL")]
    reservoir_quota_ttl: Option<Value>,
    interval: Option<f64>,
}

impl RuleDefinition {
    /// The rule, when it is one the SDKs apply: version 1, any resource, no attributes.
    fn into_rule(self) -> Option<Rule> {
        let applies = self.version == Some(1)
            && self.resource_arn.as_deref() == Some("*")
            && self.service_type.as_deref().is_some_and(|service_type| !service_type.is_empty())
            && self.attributes.as_ref().is_none_or(serde_json::Map::is_empty);
        if !applies {
            return None;
        }
        let fixed_rate = self.fixed_rate?;
        Some(Rule {
            name: self.rule_name?.into(),
            priority: self.priority?,
            patterns: RulePatterns {
                service_name: self.service_name?,
                service_type: self.service_type?,
                host: self.host?,
                http_method: self.http_method?,
                url_path: self.url_path?,
            },
            can_borrow: self.reservoir_size? > 0,
            state: Arc::new(RuleState::new(fixed_rate)),
        })
    }
}

/// Epoch seconds from a JSON timestamp: a number, or an ISO 8601 string (botocore reads both).
fn epoch_seconds(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.parse().ok().or_else(|| baton_model::time::parse_iso(text)),
        _ => None,
    }
}

impl Client {
    fn new(address: SocketAddr) -> Client {
        let agent = ureq::Agent::config_builder().timeout_global(Some(CALL_TIMEOUT)).build().new_agent();
        let client_id = (0..12).map(|_| format!("{:02x}", fastrand::u8(..))).collect();
        Client { agent, base: format!("http://{address}"), client_id }
    }

    /// POSTs `body` to `/<operation>` and reads the JSON answer.
    fn call<T: serde::de::DeserializeOwned>(&self, operation: &str, body: &Value) -> Result<T, String> {
        let url = format!("{}/{operation}", self.base);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .map_err(|error| format!("POST {url}: {error}"))?;
        let bytes = response.body_mut().read_to_vec().map_err(|error| format!("POST {url}: {error}"))?;
        serde_json::from_slice(&bytes).map_err(|error| format!("POST {url}: unexpected answer: {error}"))
    }

    /// Fetches the rules and, when there are any the SDKs apply, replaces the cached ones.
    fn refresh_rules(&self, cache: &Cache) {
        let sent_at = baton_model::time::now();
        match self.rules() {
            Ok(rules) if rules.is_empty() => {
                tracing::debug!("baton-tracer: no applicable centralized sampling rule, local rules decide");
            }
            Ok(rules) => cache.load_rules(rules, sent_at),
            Err(error) => tracing::warn!(%error, "baton-tracer: cannot fetch the sampling rules"),
        }
    }

    fn rules(&self) -> Result<Vec<Rule>, String> {
        let mut rules = Vec::new();
        let mut body = json!({});
        for _ in 0..MAX_RULE_PAGES {
            let page: RulesPage = self.call("GetSamplingRules", &body)?;
            rules.extend(page.sampling_rule_records.into_iter().filter_map(|record| record.sampling_rule?.into_rule()));
            match page.next_token {
                Some(token) if !token.is_empty() => body = json!({ "NextToken": token }),
                _ => break,
            }
        }
        Ok(rules)
    }

    /// Reports the statistics due and loads the targets X-Ray answers;
    /// true when the rules changed since they were fetched (or a report
    /// names a rule X-Ray no longer has).
    fn report(&self, cache: &Cache) -> bool {
        let now_second = baton_model::time::now() as u64;
        let statistics = cache.statistics(&self.client_id, now_second);
        let mut stale = false;
        for documents in statistics.chunks(STATISTICS_PER_CALL) {
            let result: TargetsResult =
                match self.call("SamplingTargets", &json!({ "SamplingStatisticsDocuments": documents })) {
                    Ok(result) => result,
                    Err(error) => {
                        tracing::warn!(%error, "baton-tracer: cannot report sampling statistics");
                        continue;
                    }
                };
            cache.load_targets(&result.sampling_target_documents);
            let modified = result.last_rule_modification.as_ref().and_then(epoch_seconds);
            stale |= modified.is_some_and(|modified| cache.stale(modified));
            // As the X-Ray SDK for Go does (the Python one ignores them).
            stale |= result
                .unprocessed_statistics
                .iter()
                .any(|unprocessed| unprocessed.error_code.as_deref().is_some_and(|code| code.starts_with('4')));
        }
        stale
    }
}

#[cfg(test)]
mod tests;
