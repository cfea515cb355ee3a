//! X-Ray centralized sampling: the rule operations (`CreateSamplingRule`,
//! `UpdateSamplingRule`, `DeleteSamplingRule`, `GetSamplingRules`), whose
//! rules the store keeps, and the samplers' reports (`GetSamplingTargets`,
//! `GetSamplingStatisticSummaries`), kept in memory only: targets and
//! statistics are about the last seconds, and after a restart the SDKs'
//! next reports (every 10 s) rebuild them.
//!
//! The SDKs' samplers call these unsigned on the daemon address, as the real
//! daemon takes them; Baton checks no signature on any request.
//!
//! Baton keeps no `SamplingRateBoost` (adaptive sampling): rule operations
//! refuse it, so no SDK has boost statistics to send.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use baton_model::time;
use baton_store::SamplingRule;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiJson, AppState, blocking, parse_body, served};
use crate::xray::Timestamp;

/// How often the SDKs are told to report (`Interval`), in seconds; the
/// Python SDK reports every 10 s whatever it is told, and X-Ray answers 10.
const INTERVAL_SECONDS: u32 = 10;
/// A client that reported for a rule within this many seconds shares its
/// reservoir: two intervals, so that a report arriving a little late (the
/// SDKs add jitter) does not drop the client in between.
const ACTIVE_SECONDS: f64 = 2.0 * INTERVAL_SECONDS as f64;
/// How long a quota holds: long enough to ride out missed reports (an SDK
/// reports a rule only when it matched requests since its last report),
/// short enough that a client cut off from Baton soon falls back to
/// borrowing one trace a second.
const QUOTA_TTL_SECONDS: f64 = 60.0;
/// The statistics summed per rule over windows of this many seconds.
const WINDOW_SECONDS: i64 = INTERVAL_SECONDS as i64;
/// How long the statistics of a window are kept for
/// `GetSamplingStatisticSummaries`.
const STATISTICS_KEPT_SECONDS: f64 = 3600.0;
/// The most rules besides the Default one, as X-Ray's quota allows.
const MAX_RULES: usize = 25;
/// Rules per `GetSamplingRules` page (X-Ray's quota fits in one).
const RULES_PER_PAGE: usize = 100;
/// Summaries per `GetSamplingStatisticSummaries` page.
const SUMMARIES_PER_PAGE: usize = 100;
/// The most statistics documents one `GetSamplingTargets` takes.
const MAX_STATISTICS_DOCUMENTS: usize = 25;
/// The longest `RuleName`, and the longest attribute key and value.
const MAX_NAME_CHARS: usize = 32;
/// The most `Attributes` a rule has.
const MAX_ATTRIBUTES: usize = 5;
/// A `ClientID`: 24 characters (the SDKs' 12 random bytes in hex).
const CLIENT_ID_CHARS: usize = 24;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/CreateSamplingRule", post(create_rule))
        .route("/UpdateSamplingRule", post(update_rule))
        .route("/DeleteSamplingRule", post(delete_rule))
        .route("/GetSamplingRules", post(get_rules))
        .route("/SamplingTargets", post(get_targets))
        .route("/SamplingStatisticSummaries", post(get_statistic_summaries))
}

/// The server's sampling state besides the stored rules.
pub(crate) struct Sampling {
    /// Held by every rule change, so that checking rules and then writing
    /// one is one atomic step.
    changes: tokio::sync::Mutex<()>,
    targets: Mutex<Targets>,
}

impl Sampling {
    pub(crate) fn new() -> Sampling {
        Sampling { changes: tokio::sync::Mutex::new(()), targets: Mutex::new(Targets::new(time::now())) }
    }

    fn targets(&self) -> std::sync::MutexGuard<'_, Targets> {
        // Nothing panics while the lock is held: a poisoned lock still holds consistent state.
        self.targets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === the rule operations ===

#[tracing::instrument(skip_all)]
async fn create_rule(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<RuleRecordResult>, ApiError> {
    served(&state.metrics, create_rule_inner(&state, &body).await).map(ApiJson)
}

async fn create_rule_inner(state: &AppState, body: &[u8]) -> Result<RuleRecordResult, ApiError> {
    let request: CreateSamplingRuleRequest = parse_body(body)?;
    let now = time::now();
    let rule = new_rule(request.sampling_rule, now)?;
    let _changing = state.sampling.changes.lock().await;
    let rules = stored_rules(state).await?;
    if rules.iter().any(|stored| stored.name == rule.name) {
        return Err(ApiError::invalid(format!("sampling rule {} already exists", rule.name)));
    }
    if rules.len() > MAX_RULES {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "RuleLimitExceededException",
            message: format!("at most {MAX_RULES} sampling rules besides {}", SamplingRule::DEFAULT_NAME),
        });
    }
    put_rule(state, rule, now).await
}

#[tracing::instrument(skip_all)]
async fn update_rule(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<RuleRecordResult>, ApiError> {
    served(&state.metrics, update_rule_inner(&state, &body).await).map(ApiJson)
}

async fn update_rule_inner(state: &AppState, body: &[u8]) -> Result<RuleRecordResult, ApiError> {
    let request: UpdateSamplingRuleRequest = parse_body(body)?;
    let update = request.sampling_rule_update;
    let key = RuleKey { rule_name: update.rule_name.clone(), rule_arn: update.rule_arn.clone() };
    let change = RuleChange::check(update, "SamplingRuleUpdate")?;
    let _changing = state.sampling.changes.lock().await;
    let mut rule = find_rule(state, &key).await?;
    if rule.name == SamplingRule::DEFAULT_NAME
        && let Some(member) = change.beyond_rate()
    {
        // X-Ray's own words; the rest says which member.
        return Err(ApiError::invalid(format!(
            "Invalid update request for default sampling rule: only FixedRate and ReservoirSize can change, got {member}"
        )));
    }
    let now = time::now();
    change.apply(&mut rule);
    rule.modified_at = now;
    put_rule(state, rule, now).await
}

#[tracing::instrument(skip_all)]
async fn delete_rule(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<RuleRecordResult>, ApiError> {
    served(&state.metrics, delete_rule_inner(&state, &body).await).map(ApiJson)
}

async fn delete_rule_inner(state: &AppState, body: &[u8]) -> Result<RuleRecordResult, ApiError> {
    let key: RuleKey = parse_body(body)?;
    let _changing = state.sampling.changes.lock().await;
    let rule = find_rule(state, &key).await?;
    if rule.name == SamplingRule::DEFAULT_NAME {
        return Err(ApiError::invalid(format!("the {} sampling rule cannot be deleted", SamplingRule::DEFAULT_NAME)));
    }
    let store = Arc::clone(&state.store);
    let name = rule.name.clone();
    blocking(move || store.remove_sampling_rule(&name)).await?;
    state.sampling.targets().forget(&rule.name, time::now());
    tracing::info!(rule = %rule.name, "sampling rule deleted");
    Ok(RuleRecordResult { sampling_rule_record: RuleRecord::from(&rule) })
}

/// Writes a created or updated rule, and tells the SDKs' next reports that
/// the rules changed.
async fn put_rule(state: &AppState, rule: SamplingRule, now: f64) -> Result<RuleRecordResult, ApiError> {
    let store = Arc::clone(&state.store);
    let record = RuleRecord::from(&rule);
    let name = rule.name.clone();
    blocking(move || store.put_sampling_rule(&rule)).await?;
    state.sampling.targets().rules_changed(now);
    tracing::info!(rule = %name, "sampling rule written");
    Ok(RuleRecordResult { sampling_rule_record: record })
}

async fn stored_rules(state: &AppState) -> Result<Vec<SamplingRule>, ApiError> {
    let store = Arc::clone(&state.store);
    blocking(move || store.sampling_rules()).await
}

/// The stored rule a request names, by `RuleName` or `RuleARN` (both given
/// must name the same rule).
async fn find_rule(state: &AppState, key: &RuleKey) -> Result<SamplingRule, ApiError> {
    let Some(named) = key.rule_name.as_ref().or(key.rule_arn.as_ref()) else {
        return Err(ApiError::invalid("RuleName or RuleARN is required"));
    };
    stored_rules(state)
        .await?
        .into_iter()
        .find(|rule| {
            key.rule_name.as_ref().is_none_or(|name| *name == rule.name)
                && key.rule_arn.as_ref().is_none_or(|arn| *arn == rule.arn)
        })
        .ok_or_else(|| ApiError::invalid(format!("sampling rule {named} not found")))
}

/// A new rule from `CreateSamplingRule`'s `SamplingRule`: every member
/// botocore requires is there, and all are within its constraints.
/// A `RuleARN` given is not kept: the ARN follows from the name.
fn new_rule(wire: WireRuleInput, now: f64) -> Result<SamplingRule, ApiError> {
    const SHAPE: &str = "SamplingRule";
    let name = wire.rule_name.clone().ok_or_else(|| ApiError::invalid(format!("{SHAPE}.RuleName is required")))?;
    check_name(&name, &format!("{SHAPE}.RuleName"))?;
    let version = wire.version.ok_or_else(|| ApiError::invalid(format!("{SHAPE}.Version is required")))?;
    if version != 1 {
        return Err(ApiError::invalid(format!("{SHAPE}.Version must be 1 (the only rule format), got {version}")));
    }
    let change = RuleChange::check(wire, SHAPE)?;
    if let Some(missing) = change.missing() {
        return Err(ApiError::invalid(format!("{SHAPE}.{missing} is required")));
    }
    // Every required member is given, so applying the change sets all of
    // the Default rule's values but the attributes, which default to none.
    let mut rule = SamplingRule {
        arn: SamplingRule::arn_of(&name),
        name,
        created_at: now,
        modified_at: now,
        ..SamplingRule::default_rule()
    };
    change.apply(&mut rule);
    Ok(rule)
}

/// The members of a `SamplingRule` or a `SamplingRuleUpdate` that are
/// given, each checked against botocore's constraints.
#[derive(Debug, Default)]
struct RuleChange {
    resource_arn: Option<String>,
    priority: Option<u32>,
    fixed_rate: Option<f64>,
    reservoir_size: Option<u32>,
    service_name: Option<String>,
    service_type: Option<String>,
    host: Option<String>,
    http_method: Option<String>,
    url_path: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

impl RuleChange {
    /// Checks the given members of `wire`, a `shape`; messages name the
    /// member as `shape.Member`.
    fn check(wire: WireRuleInput, shape: &str) -> Result<RuleChange, ApiError> {
        if wire.sampling_rate_boost.is_some() {
            return Err(ApiError::invalid(format!(
                "{shape}.SamplingRateBoost: Baton does not boost sampling rates (adaptive sampling)"
            )));
        }
        let priority = wire
            .priority
            .map(|priority| match u32::try_from(priority) {
                Ok(priority @ 1..=9999) => Ok(priority),
                _ => Err(ApiError::invalid(format!("{shape}.Priority must be between 1 and 9999, got {priority}"))),
            })
            .transpose()?;
        let fixed_rate = wire
            .fixed_rate
            .map(|rate| match (0.0..=1.0).contains(&rate) {
                true => Ok(rate),
                false => Err(ApiError::invalid(format!("{shape}.FixedRate must be between 0 and 1, got {rate}"))),
            })
            .transpose()?;
        let reservoir_size = wire
            .reservoir_size
            .map(|size| match u32::try_from(size) {
                Ok(size) if size <= i32::MAX as u32 => Ok(size),
                _ => Err(ApiError::invalid(format!(
                    "{shape}.ReservoirSize must be between 0 and {}, got {size}",
                    i32::MAX
                ))),
            })
            .transpose()?;
        let text = |value: Option<String>, member: &str, max: usize| {
            value
                .map(|value| {
                    let length = value.chars().count();
                    if length > max {
                        return Err(ApiError::invalid(format!(
                            "{shape}.{member} must be at most {max} characters, got {length}"
                        )));
                    }
                    Ok(value)
                })
                .transpose()
        };
        let attributes = wire.attributes.map(|attributes| check_attributes(&attributes, shape).map(|()| attributes));
        Ok(RuleChange {
            resource_arn: text(wire.resource_arn, "ResourceARN", 500)?,
            priority,
            fixed_rate,
            reservoir_size,
            service_name: text(wire.service_name, "ServiceName", 64)?,
            service_type: text(wire.service_type, "ServiceType", 64)?,
            host: text(wire.host, "Host", 64)?,
            http_method: text(wire.http_method, "HTTPMethod", 10)?,
            url_path: text(wire.url_path, "URLPath", 128)?,
            attributes: attributes.transpose()?,
        })
    }

    /// Each member by its name in botocore's shapes, and whether it is given.
    fn members(&self) -> [(&'static str, bool); 10] {
        [
            ("ResourceARN", self.resource_arn.is_some()),
            ("Priority", self.priority.is_some()),
            ("FixedRate", self.fixed_rate.is_some()),
            ("ReservoirSize", self.reservoir_size.is_some()),
            ("ServiceName", self.service_name.is_some()),
            ("ServiceType", self.service_type.is_some()),
            ("Host", self.host.is_some()),
            ("HTTPMethod", self.http_method.is_some()),
            ("URLPath", self.url_path.is_some()),
            ("Attributes", self.attributes.is_some()),
        ]
    }

    /// The first member botocore's `SamplingRule` requires (all but
    /// `Attributes`) that is missing.
    fn missing(&self) -> Option<&'static str> {
        let mut members = self.members().into_iter();
        members.find(|&(member, given)| !given && member != "Attributes").map(|(member, _)| member)
    }

    /// The first member given that X-Ray does not let the Default rule
    /// change: anything but `FixedRate` and `ReservoirSize`.
    fn beyond_rate(&self) -> Option<&'static str> {
        let mut members = self.members().into_iter();
        members
            .find(|&(member, given)| given && !matches!(member, "FixedRate" | "ReservoirSize"))
            .map(|(member, _)| member)
    }

    /// Sets the given members on `rule`; the others keep their value.
    fn apply(self, rule: &mut SamplingRule) {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        set(&mut rule.resource_arn, self.resource_arn);
        set(&mut rule.priority, self.priority);
        set(&mut rule.fixed_rate, self.fixed_rate);
        set(&mut rule.reservoir_size, self.reservoir_size);
        set(&mut rule.patterns.service_name, self.service_name);
        set(&mut rule.patterns.service_type, self.service_type);
        set(&mut rule.patterns.host, self.host);
        set(&mut rule.patterns.http_method, self.http_method);
        set(&mut rule.patterns.url_path, self.url_path);
        set(&mut rule.attributes, self.attributes);
    }
}

/// 1 to 32 characters, as botocore's `RuleName`.
fn check_name(name: &str, member: &str) -> Result<(), ApiError> {
    let length = name.chars().count();
    if !(1..=MAX_NAME_CHARS).contains(&length) {
        return Err(ApiError::invalid(format!("{member} must be 1 to {MAX_NAME_CHARS} characters, got {length}")));
    }
    Ok(())
}

/// At most 5 attributes, keys and values 1 to 32 characters.
fn check_attributes(attributes: &BTreeMap<String, String>, shape: &str) -> Result<(), ApiError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ApiError::invalid(format!(
            "{shape}.Attributes holds {} attributes; at most {MAX_ATTRIBUTES} are taken",
            attributes.len()
        )));
    }
    for (key, value) in attributes {
        check_name(key, &format!("{shape}.Attributes key {key:?}"))?;
        check_name(value, &format!("{shape}.Attributes[{key:?}]"))?;
    }
    Ok(())
}

#[tracing::instrument(skip_all)]
async fn get_rules(State(state): State<AppState>, body: Bytes) -> Result<ApiJson<GetSamplingRulesResult>, ApiError> {
    served(&state.metrics, get_rules_inner(&state, &body).await).map(ApiJson)
}

/// Pages through the rules in the order clients try them: by priority,
/// then name. A `NextToken` is `priority/name` of the page's last rule.
async fn get_rules_inner(state: &AppState, body: &[u8]) -> Result<GetSamplingRulesResult, ApiError> {
    let request: NextTokenRequest = parse_body(body)?;
    let after = request
        .token()
        .map(|token| {
            let (priority, name) = token.split_once('/')?;
            Some((priority.parse::<u32>().ok()?, name.to_owned()))
        })
        .map(|key| key.ok_or_else(not_issued))
        .transpose()?;
    let rules = stored_rules(state).await?;
    let (rules, next) = page(rules, |rule| (rule.priority, rule.name.clone()), after, RULES_PER_PAGE);
    Ok(GetSamplingRulesResult {
        sampling_rule_records: rules.iter().map(RuleRecord::from).collect(),
        next_token: next.map(|(priority, name)| format!("{priority}/{name}")),
    })
}

fn not_issued() -> ApiError {
    ApiError::invalid("NextToken is not one this server issued")
}

/// The page of `items` (sorted by `key`) after the key `after`: at most
/// `limit` of them, and the key of the last when more follow.
fn page<T, K: Ord>(items: Vec<T>, key: impl Fn(&T) -> K, after: Option<K>, limit: usize) -> (Vec<T>, Option<K>) {
    let mut items: Vec<T> =
        items.into_iter().filter(|item| after.as_ref().is_none_or(|after| key(item) > *after)).collect();
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let last = items.last().map(&key);
    (items, last)
}

// === the samplers' reports ===

#[tracing::instrument(skip_all)]
async fn get_targets(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<GetSamplingTargetsResult>, ApiError> {
    served(&state.metrics, get_targets_inner(&state, &body).await).map(ApiJson)
}

/// Records each statistics document and answers, for each rule reported,
/// the reporting client's target; a report for a rule that does not exist
/// (deleted since the client fetched the rules) is unprocessed, with
/// `ErrorCode` "400", which tells the SDKs that read it to fetch the rules
/// again.
async fn get_targets_inner(state: &AppState, body: &[u8]) -> Result<GetSamplingTargetsResult, ApiError> {
    let request: GetSamplingTargetsRequest = parse_body(body)?;
    let documents = request
        .sampling_statistics_documents
        .ok_or_else(|| ApiError::invalid("SamplingStatisticsDocuments is required"))?;
    if documents.len() > MAX_STATISTICS_DOCUMENTS {
        return Err(ApiError::invalid(format!(
            "SamplingStatisticsDocuments holds {} documents; at most {MAX_STATISTICS_DOCUMENTS} are taken per call",
            documents.len()
        )));
    }
    let reports = documents
        .into_iter()
        .enumerate()
        .map(|(index, document)| document.check(&format!("SamplingStatisticsDocuments[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let rules = stored_rules(state).await?;
    let now = time::now();
    let mut targets = state.sampling.targets();
    targets.prune(now);
    let mut answered = BTreeSet::new();
    let mut result = GetSamplingTargetsResult {
        sampling_target_documents: Vec::new(),
        last_rule_modification: targets.last_rule_change,
        unprocessed_statistics: Vec::new(),
    };
    for report in &reports {
        let Some(rule) = rules.iter().find(|rule| rule.name == report.rule_name) else {
            result.unprocessed_statistics.push(UnprocessedStatistics {
                message: format!("no sampling rule named {}", report.rule_name),
                rule_name: report.rule_name.clone(),
                error_code: "400".to_owned(),
            });
            continue;
        };
        let quota = targets.report(rule, report, now);
        // A rule reported twice in one request gets one target, its last.
        if !answered.insert(rule.name.as_str()) {
            result.sampling_target_documents.retain(|target| target.rule_name != rule.name);
        }
        result.sampling_target_documents.push(SamplingTargetDocument {
            rule_name: rule.name.clone(),
            fixed_rate: rule.fixed_rate,
            reservoir_quota: quota,
            reservoir_quota_ttl: now + QUOTA_TTL_SECONDS,
            interval: INTERVAL_SECONDS,
        });
    }
    Ok(result)
}

#[tracing::instrument(skip_all)]
async fn get_statistic_summaries(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<GetSamplingStatisticSummariesResult>, ApiError> {
    served(&state.metrics, get_statistic_summaries_inner(&state, &body).await).map(ApiJson)
}

/// The counts the clients reported, summed per rule and 10-second window
/// of the time Baton received them, newest window first, then by rule name.
/// A `NextToken` is `window/rule` of the page's last summary.
async fn get_statistic_summaries_inner(
    state: &AppState,
    body: &[u8],
) -> Result<GetSamplingStatisticSummariesResult, ApiError> {
    let request: NextTokenRequest = parse_body(body)?;
    let after = request
        .token()
        .map(|token| {
            let (window, rule) = token.split_once('/')?;
            Some((Reverse(window.parse::<i64>().ok()?), rule.to_owned()))
        })
        .map(|key| key.ok_or_else(not_issued))
        .transpose()?;
    let summaries = {
        let mut targets = state.sampling.targets();
        targets.prune(time::now());
        targets.summaries()
    };
    let (summaries, next) =
        page(summaries, |summary| (Reverse(summary.window), summary.rule.clone()), after, SUMMARIES_PER_PAGE);
    Ok(GetSamplingStatisticSummariesResult {
        sampling_statistic_summaries: summaries
            .into_iter()
            .map(|summary| SamplingStatisticSummary {
                rule_name: summary.rule,
                timestamp: summary.window as f64,
                request_count: summary.counts.requests,
                borrow_count: summary.counts.borrowed,
                sampled_count: summary.counts.sampled,
            })
            .collect(),
        next_token: next.map(|(Reverse(window), rule)| format!("{window}/{rule}")),
    })
}

/// What the samplers reported, in memory.
///
/// Each rule's reservoir (`ReservoirSize` traces a second) is split evenly
/// among the clients that reported for it in the last two intervals; the
/// first `size % clients` of them in `ClientID` order get one more, so that
/// the quotas handed out at once sum to the size. X-Ray does not document
/// its split (it follows the clients' demand); an even one is predictable
/// and never hands out more than the size while the set of clients holds
/// still. A client's quota is computed when it reports, so for one interval
/// after a client joins or leaves the others hold their former shares.
#[derive(Debug)]
struct Targets {
    /// When a rule was last created, updated or deleted (`LastRuleModification`,
    /// which makes the SDKs fetch the rules again when newer than their
    /// last fetch); at first when the server started, since a deletion
    /// before a restart left no trace.
    last_rule_change: f64,
    /// Per rule, the clients that reported for it and when they last did.
    clients: HashMap<String, BTreeMap<String, f64>>,
    /// The summed counts per 10-second window (its start, epoch seconds)
    /// and rule.
    windows: BTreeMap<(i64, String), Counts>,
}

/// The counts of one statistics document, or their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    borrowed: u64,
    sampled: u64,
}

/// One `SamplingStatisticsDocument`, checked.
#[derive(Debug)]
struct Report {
    rule_name: String,
    client_id: String,
    counts: Counts,
}

/// A rule's counts in one window.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    window: i64,
    rule: String,
    counts: Counts,
}

impl Targets {
    fn new(now: f64) -> Targets {
        Targets { last_rule_change: now, clients: HashMap::new(), windows: BTreeMap::new() }
    }

    fn rules_changed(&mut self, now: f64) {
        self.last_rule_change = now;
    }

    /// Forgets a deleted rule's clients and statistics: a rule made again
    /// under its name starts afresh.
    fn forget(&mut self, rule: &str, now: f64) {
        self.rules_changed(now);
        self.clients.remove(rule);
        self.windows.retain(|(_, name), _| name != rule);
    }

    /// Drops the clients no longer active and the windows no longer kept.
    fn prune(&mut self, now: f64) {
        for clients in self.clients.values_mut() {
            clients.retain(|_, reported| *reported >= now - ACTIVE_SECONDS);
        }
        self.clients.retain(|_, clients| !clients.is_empty());
        let oldest = ((now - STATISTICS_KEPT_SECONDS) as i64).div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS;
        self.windows.retain(|(window, _), _| *window >= oldest);
    }

    /// Records a client's report for `rule`, received at `now`; returns the
    /// client's share of the rule's reservoir.
    fn report(&mut self, rule: &SamplingRule, report: &Report, now: f64) -> u32 {
        let window = (now as i64).div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS;
        let sums = self.windows.entry((window, rule.name.clone())).or_default();
        sums.requests = sums.requests.saturating_add(report.counts.requests);
        sums.borrowed = sums.borrowed.saturating_add(report.counts.borrowed);
        sums.sampled = sums.sampled.saturating_add(report.counts.sampled);
        let clients = self.clients.entry(rule.name.clone()).or_default();
        clients.insert(report.client_id.clone(), now);
        let index = clients.keys().position(|client| *client == report.client_id).expect("just inserted");
        share(rule.reservoir_size, clients.len(), index)
    }

    /// Every rule's counts per window, newest window first, then by rule.
    fn summaries(&self) -> Vec<Summary> {
        let mut summaries: Vec<Summary> = self
            .windows
            .iter()
            .map(|((window, rule), counts)| Summary { window: *window, rule: rule.clone(), counts: *counts })
            .collect();
        summaries.sort_by(|a, b| b.window.cmp(&a.window).then_with(|| a.rule.cmp(&b.rule)));
        summaries
    }
}

/// The share of a reservoir of `size` of the client at `index` among
/// `clients`: the quotas of all of them sum to `size`.
fn share(size: u32, clients: usize, index: usize) -> u32 {
    let clients = u32::try_from(clients).unwrap_or(u32::MAX).max(1);
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    size / clients + u32::from(index < size % clients)
}

// === botocore's shapes ===

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSamplingRuleRequest {
    // `Tags` is taken but not kept, as for groups: Baton has no tagging.
    sampling_rule: WireRuleInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateSamplingRuleRequest {
    sampling_rule_update: WireRuleInput,
}

/// botocore's `SamplingRule` as a request member, and its
/// `SamplingRuleUpdate`, which has the same members but `Version` (an
/// update cannot change the format). All are optional here, so that a
/// missing one is named.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRuleInput {
    rule_name: Option<String>,
    #[serde(rename = "RuleARN")]
    rule_arn: Option<String>,
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    priority: Option<i64>,
    fixed_rate: Option<f64>,
    reservoir_size: Option<i64>,
    service_name: Option<String>,
    service_type: Option<String>,
    host: Option<String>,
    #[serde(rename = "HTTPMethod")]
    http_method: Option<String>,
    #[serde(rename = "URLPath")]
    url_path: Option<String>,
    version: Option<i64>,
    attributes: Option<BTreeMap<String, String>>,
    sampling_rate_boost: Option<serde_json::Value>,
}

/// The request of `DeleteSamplingRule`, and the key of an update: either
/// names the rule.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleKey {
    rule_name: Option<String>,
    #[serde(rename = "RuleARN")]
    rule_arn: Option<String>,
}

/// The request of `GetSamplingRules` and `GetSamplingStatisticSummaries`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NextTokenRequest {
    next_token: Option<String>,
}

impl NextTokenRequest {
    /// The token, if one is given; an empty one is none.
    fn token(&self) -> Option<&str> {
        self.next_token.as_deref().filter(|token| !token.is_empty())
    }
}

/// The answer of `CreateSamplingRule`, `UpdateSamplingRule` and
/// `DeleteSamplingRule`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRecordResult {
    sampling_rule_record: RuleRecord,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetSamplingRulesResult {
    sampling_rule_records: Vec<RuleRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// botocore's `SamplingRuleRecord`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRecord {
    sampling_rule: WireRule,
    created_at: f64,
    modified_at: f64,
}

/// botocore's `SamplingRule` as an answer member: every member.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireRule {
    rule_name: String,
    #[serde(rename = "RuleARN")]
    rule_arn: String,
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    priority: u32,
    fixed_rate: f64,
    reservoir_size: u32,
    service_name: String,
    service_type: String,
    host: String,
    #[serde(rename = "HTTPMethod")]
    http_method: String,
    #[serde(rename = "URLPath")]
    url_path: String,
    version: u32,
    attributes: BTreeMap<String, String>,
}

impl From<&SamplingRule> for RuleRecord {
    fn from(rule: &SamplingRule) -> Self {
        let patterns = &rule.patterns;
        RuleRecord {
            sampling_rule: WireRule {
                rule_name: rule.name.clone(),
                rule_arn: rule.arn.clone(),
                resource_arn: rule.resource_arn.clone(),
                priority: rule.priority,
                fixed_rate: rule.fixed_rate,
                reservoir_size: rule.reservoir_size,
                service_name: patterns.service_name.clone(),
                service_type: patterns.service_type.clone(),
                host: patterns.host.clone(),
                http_method: patterns.http_method.clone(),
                url_path: patterns.url_path.clone(),
                version: rule.version,
                attributes: rule.attributes.clone(),
            },
            created_at: rule.created_at,
            modified_at: rule.modified_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSamplingTargetsRequest {
    sampling_statistics_documents: Option<Vec<WireStatistics>>,
}

/// botocore's `SamplingStatisticsDocument`, its members optional so that a
/// missing one is named.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireStatistics {
    rule_name: Option<String>,
    #[serde(rename = "ClientID")]
    client_id: Option<String>,
    // Required, but not used: windows go by the time Baton receives a
    // report, so that a client's clock neither splits nor revives one.
    timestamp: Option<Timestamp>,
    request_count: Option<i64>,
    sampled_count: Option<i64>,
    borrow_count: Option<i64>,
}

impl WireStatistics {
    /// The document, checked against botocore's constraints; messages name
    /// the member as `at.Member`.
    fn check(self, at: &str) -> Result<Report, ApiError> {
        let required = |member: &str| ApiError::invalid(format!("{at}.{member} is required"));
        let rule_name = self.rule_name.ok_or_else(|| required("RuleName"))?;
        check_name(&rule_name, &format!("{at}.RuleName"))?;
        let client_id = self.client_id.ok_or_else(|| required("ClientID"))?;
        let length = client_id.chars().count();
        if length != CLIENT_ID_CHARS {
            return Err(ApiError::invalid(format!("{at}.ClientID must be {CLIENT_ID_CHARS} characters, got {length}")));
        }
        self.timestamp.ok_or_else(|| required("Timestamp"))?;
        let count = |value: i64, member: &str| {
            u64::try_from(value)
                .map_err(|_| ApiError::invalid(format!("{at}.{member} must be at least 0, got {value}")))
        };
        let requests = count(self.request_count.ok_or_else(|| required("RequestCount"))?, "RequestCount")?;
        let sampled = count(self.sampled_count.ok_or_else(|| required("SampledCount"))?, "SampledCount")?;
        let borrowed = count(self.borrow_count.unwrap_or(0), "BorrowCount")?;
        Ok(Report { rule_name, client_id, counts: Counts { requests, borrowed, sampled } })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetSamplingTargetsResult {
    sampling_target_documents: Vec<SamplingTargetDocument>,
    last_rule_modification: f64,
    unprocessed_statistics: Vec<UnprocessedStatistics>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SamplingTargetDocument {
    rule_name: String,
    fixed_rate: f64,
    reservoir_quota: u32,
    #[serde(rename = "ReservoirQuotaTTL")]
    reservoir_quota_ttl: f64,
    interval: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UnprocessedStatistics {
    rule_name: String,
    error_code: String,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetSamplingStatisticSummariesResult {
    sampling_statistic_summaries: Vec<SamplingStatisticSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SamplingStatisticSummary {
    rule_name: String,
    timestamp: f64,
    request_count: u64,
    borrow_count: u64,
    sampled_count: u64,
}

#[cfg(test)]
mod tests {
    use baton_model::sampling::SamplingRequest;
    use serde_json::{Value, json};

    use super::*;

    fn message<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
        let error = result.unwrap_err();
        assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, "InvalidRequestException"));
        error.message
    }

    /// The e2e tests' rule: nothing of `/health` is sampled.
    fn health() -> Value {
        json!({"RuleName": "health", "ResourceARN": "*", "Priority": 100, "FixedRate": 0.0, "ReservoirSize": 0,
            "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "/health",
            "Version": 1})
    }

    fn wire(value: Value) -> WireRuleInput {
        serde_json::from_value(value).unwrap()
    }

    fn with(member: &str, value: Value) -> WireRuleInput {
        let mut rule = health();
        rule[member] = value;
        wire(rule)
    }

    fn without(member: &str) -> WireRuleInput {
        let mut rule = health();
        rule.as_object_mut().unwrap().remove(member);
        wire(rule)
    }

    #[test]
    fn a_new_rule_takes_every_member_and_matches_what_it_names() {
        let rule = new_rule(with("Attributes", json!({"tier": "gold"})), 1_795_416_275.5).unwrap();
        assert_eq!(rule.name, "health");
        assert_eq!(rule.arn, "arn:aws:xray:local:000000000000:sampling-rule/health");
        assert_eq!((rule.priority, rule.fixed_rate, rule.reservoir_size, rule.version), (100, 0.0, 0, 1));
        assert_eq!((rule.created_at, rule.modified_at), (1_795_416_275.5, 1_795_416_275.5));
        assert_eq!(rule.attributes, BTreeMap::from([("tier".to_owned(), "gold".to_owned())]));
        // What the Python SDK's sampler matches for a request to /health.
        let request = SamplingRequest {
            service_name: Some("e2e-sampling"),
            host: Some("127.0.0.1"),
            http_method: Some("GET"),
            url_path: Some("/health"),
            ..SamplingRequest::default()
        };
        assert!(rule.patterns.matches(&request));
        assert!(!rule.patterns.matches(&SamplingRequest { url_path: Some("/orders/1"), ..request }));
        assert!(new_rule(without("Attributes"), 0.0).unwrap().attributes.is_empty());
    }

    #[test]
    fn a_new_rule_needs_every_member_botocore_requires() {
        for member in [
            "RuleName",
            "ResourceARN",
            "Priority",
            "FixedRate",
            "ReservoirSize",
            "ServiceName",
            "ServiceType",
            "Host",
            "HTTPMethod",
            "URLPath",
            "Version",
        ] {
            assert_eq!(message(new_rule(without(member), 0.0)), format!("SamplingRule.{member} is required"));
        }
    }

    #[test]
    fn rule_members_are_checked_against_botocores_constraints() {
        let long = |n: usize| json!("x".repeat(n));
        for (member, value, expected) in [
            ("RuleName", json!(""), "SamplingRule.RuleName must be 1 to 32 characters, got 0"),
            ("RuleName", long(33), "SamplingRule.RuleName must be 1 to 32 characters, got 33"),
            ("Priority", json!(0), "SamplingRule.Priority must be between 1 and 9999, got 0"),
            ("Priority", json!(10000), "SamplingRule.Priority must be between 1 and 9999, got 10000"),
            ("FixedRate", json!(1.5), "SamplingRule.FixedRate must be between 0 and 1, got 1.5"),
            ("FixedRate", json!(-0.1), "SamplingRule.FixedRate must be between 0 and 1, got -0.1"),
            ("ReservoirSize", json!(-1), "SamplingRule.ReservoirSize must be between 0 and 2147483647, got -1"),
            ("Version", json!(2), "SamplingRule.Version must be 1 (the only rule format), got 2"),
            ("ServiceName", long(65), "SamplingRule.ServiceName must be at most 64 characters, got 65"),
            ("ServiceType", long(65), "SamplingRule.ServiceType must be at most 64 characters, got 65"),
            ("Host", long(65), "SamplingRule.Host must be at most 64 characters, got 65"),
            ("HTTPMethod", long(11), "SamplingRule.HTTPMethod must be at most 10 characters, got 11"),
            ("URLPath", long(129), "SamplingRule.URLPath must be at most 128 characters, got 129"),
            ("ResourceARN", long(501), "SamplingRule.ResourceARN must be at most 500 characters, got 501"),
            (
                "Attributes",
                json!({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}),
                "SamplingRule.Attributes holds 6 attributes; at most 5 are taken",
            ),
            ("Attributes", json!({"tier": ""}), r#"SamplingRule.Attributes["tier"] must be 1 to 32 characters, got 0"#),
            (
                "SamplingRateBoost",
                json!({"MaxRate": 0.5, "CooldownWindowMinutes": 1}),
                "SamplingRule.SamplingRateBoost: Baton does not boost sampling rates (adaptive sampling)",
            ),
        ] {
            assert_eq!(message(new_rule(with(member, value), 0.0)), expected, "{member}");
        }
        for (member, value) in [("RuleName", long(32)), ("Priority", json!(9999)), ("FixedRate", json!(1))] {
            assert!(new_rule(with(member, value), 0.0).is_ok(), "{member}");
        }
    }

    #[test]
    fn an_update_changes_only_the_members_given() {
        let mut rule = new_rule(wire(health()), 100.0).unwrap();
        let before = rule.clone();
        let update = wire(json!({"RuleName": "health", "FixedRate": 0.5, "Host": "api.*"}));
        let change = RuleChange::check(update, "SamplingRuleUpdate").unwrap();
        assert_eq!(change.beyond_rate(), Some("Host"));
        change.apply(&mut rule);
        assert_eq!((rule.fixed_rate, rule.patterns.host.as_str()), (0.5, "api.*"));
        assert_eq!(SamplingRule { fixed_rate: 0.0, patterns: before.patterns.clone(), ..rule }, before);
        let rate_only = wire(json!({"RuleName": "Default", "FixedRate": 0.1, "ReservoirSize": 3}));
        assert_eq!(RuleChange::check(rate_only, "SamplingRuleUpdate").unwrap().beyond_rate(), None);
        assert_eq!(
            message(RuleChange::check(wire(json!({"Priority": 0})), "SamplingRuleUpdate")),
            "SamplingRuleUpdate.Priority must be between 1 and 9999, got 0"
        );
    }

    #[test]
    fn reservoirs_are_split_evenly_and_sum_to_their_size() {
        assert_eq!((share(10, 2, 0), share(10, 2, 1)), (5, 5));
        assert_eq!((share(3, 2, 0), share(3, 2, 1)), (2, 1));
        assert_eq!((share(1, 3, 0), share(1, 3, 1), share(1, 3, 2)), (1, 0, 0));
        for size in 0..=12 {
            for clients in 1..=7 {
                let quotas: Vec<u32> = (0..clients).map(|index| share(size, clients, index)).collect();
                assert_eq!(quotas.iter().sum::<u32>(), size, "{size} among {clients}: {quotas:?}");
                assert!(quotas.iter().max().unwrap() - quotas.iter().min().unwrap() <= 1, "{quotas:?}");
            }
        }
    }

    fn report(rule: &str, client: char, requests: u64) -> Report {
        Report {
            rule_name: rule.to_owned(),
            client_id: client.to_string().repeat(CLIENT_ID_CHARS),
            counts: Counts { requests, borrowed: 1, sampled: requests / 2 },
        }
    }

    fn rule(name: &str, reservoir_size: u32) -> SamplingRule {
        SamplingRule { reservoir_size, ..new_rule(with("RuleName", json!(name)), 0.0).unwrap() }
    }

    #[test]
    fn the_clients_reporting_recently_share_a_reservoir() {
        let orders = rule("orders", 10);
        let mut targets = Targets::new(0.0);
        let at = 1000.0;
        assert_eq!(targets.report(&orders, &report("orders", 'a', 5), at), 10, "alone, a gets it all");
        assert_eq!(targets.report(&orders, &report("orders", 'b', 5), at + 0.5), 5, "b shares with a");
        assert_eq!(targets.report(&orders, &report("orders", 'a', 5), at + 10.0), 5, "a shares with b");
        // b stopped reporting: after two intervals a has it all again.
        targets.prune(at + 10.0 + ACTIVE_SECONDS + 1.0);
        assert_eq!(targets.report(&orders, &report("orders", 'a', 5), at + 10.0 + ACTIVE_SECONDS + 1.0), 10);
        let (odd, mut targets) = (rule("odd", 3), Targets::new(0.0));
        let quotas: Vec<u32> =
            ['c', 'b', 'a'].into_iter().map(|client| targets.report(&odd, &report("odd", client, 1), at)).collect();
        assert_eq!(quotas, [3, 2, 1], "c alone, b first of two, a first of three in ClientID order");
        let settled: Vec<u32> =
            ['a', 'b', 'c'].into_iter().map(|client| targets.report(&odd, &report("odd", client, 1), at)).collect();
        assert_eq!(settled, [1, 1, 1]);
    }

    #[test]
    fn statistics_are_summed_per_rule_and_window_and_expire() {
        let (orders, default) = (rule("orders", 1), rule("Default", 1));
        let mut targets = Targets::new(0.0);
        let at = 10_000.0;
        targets.report(&orders, &report("orders", 'a', 4), at + 1.0);
        targets.report(&orders, &report("orders", 'b', 6), at + 9.0);
        targets.report(&default, &report("Default", 'a', 2), at + 2.0);
        targets.report(&orders, &report("orders", 'a', 8), at + 10.0);
        let summary = |window: f64, rule: &str, requests: u64, borrowed: u64, sampled: u64| Summary {
            window: window as i64,
            rule: rule.to_owned(),
            counts: Counts { requests, borrowed, sampled },
        };
        assert_eq!(
            targets.summaries(),
            [summary(at + 10.0, "orders", 8, 1, 4), summary(at, "Default", 2, 1, 1), summary(at, "orders", 10, 2, 5)]
        );
        targets.forget("orders", at + 11.0);
        assert_eq!(targets.last_rule_change, at + 11.0);
        assert_eq!(targets.summaries(), [summary(at, "Default", 2, 1, 1)]);
        targets.prune(at + STATISTICS_KEPT_SECONDS + WINDOW_SECONDS as f64);
        assert_eq!(targets.summaries(), []);
        assert!(targets.clients.is_empty());
    }

    #[test]
    fn pages_follow_their_key_to_the_end() {
        let items: Vec<u32> = (1..=5).collect();
        let (first, next) = page(items.clone(), |item| *item, None, 2);
        assert_eq!((first, next), (vec![1, 2], Some(2)));
        let (second, next) = page(items.clone(), |item| *item, next, 2);
        assert_eq!((second, next), (vec![3, 4], Some(4)));
        let (last, next) = page(items.clone(), |item| *item, next, 2);
        assert_eq!((last, next), (vec![5], None));
        assert_eq!(page(items, |item| *item, None, 5), (vec![1, 2, 3, 4, 5], None));
    }

    #[test]
    fn statistics_documents_are_checked() {
        let document = json!({"RuleName": "orders", "ClientID": "d0f9952b9a5c62bdfa892a3e", "RequestCount": 20,
            "BorrowCount": 11, "SampledCount": 9, "Timestamp": 1795416285});
        let check = |change: &dyn Fn(&mut Value)| {
            let mut document = document.clone();
            change(&mut document);
            serde_json::from_value::<WireStatistics>(document).unwrap().check("SamplingStatisticsDocuments[0]")
        };
        let report = check(&|_| ()).unwrap();
        assert_eq!(report.counts, Counts { requests: 20, borrowed: 11, sampled: 9 });
        assert_eq!(check(&|d| d["Timestamp"] = json!("2026-11-23T06:44:45Z")).unwrap().client_id.len(), 24);
        assert_eq!(check(&|d| _ = d.as_object_mut().unwrap().remove("BorrowCount")).unwrap().counts.borrowed, 0);
        for (change, expected) in [
            (
                &(|d: &mut Value| d["ClientID"] = json!("abc")) as &dyn Fn(&mut Value),
                "SamplingStatisticsDocuments[0].ClientID must be 24 characters, got 3",
            ),
            (
                &|d| d["RequestCount"] = json!(-1),
                "SamplingStatisticsDocuments[0].RequestCount must be at least 0, got -1",
            ),
            (
                &|d| _ = d.as_object_mut().unwrap().remove("Timestamp"),
                "SamplingStatisticsDocuments[0].Timestamp is required",
            ),
            (
                &|d| _ = d.as_object_mut().unwrap().remove("SampledCount"),
                "SamplingStatisticsDocuments[0].SampledCount is required",
            ),
            (
                &|d| d["RuleName"] = json!(""),
                "SamplingStatisticsDocuments[0].RuleName must be 1 to 32 characters, got 0",
            ),
        ] {
            assert_eq!(message(check(change)), expected);
        }
    }

    #[test]
    fn the_default_rule_answers_as_x_ray_does() {
        let record = serde_json::to_value(RuleRecord::from(&SamplingRule::default_rule())).unwrap();
        assert_eq!(
            record,
            json!({"SamplingRule": {"RuleName": "Default",
                "RuleARN": "arn:aws:xray:local:000000000000:sampling-rule/Default", "ResourceARN": "*",
                "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*",
                "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}},
                "CreatedAt": 0.0, "ModifiedAt": 0.0})
        );
    }
}
