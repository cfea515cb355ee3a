//! Evaluation of a filter expression on a trace summary.
//!
//! Trace-level keywords read the summary: flags, response time, duration and
//! `http` are the entry document's, the lists (users, annotations, services,
//! instances, zones, ARNs) the whole trace's. Inside `service() { … }` and
//! `edge() { … }` the keywords read one [`Visit`] at a time: its flags,
//! times and `http`; its service's name, type and account; the annotations
//! and users its service recorded. Inside `edge()` braces the flags and the
//! response time are those of the caller's subsegment for the call, when it
//! recorded one, as the service graph counts an edge.
//!
//! `rootcause.CAUSE.LEVEL { … }` holds when the filter holds for one element
//! at that level of some root cause of that kind: a service of its
//! `Services` (`name`, `type`, `account.id`, `inferred`), an entity of a
//! service's `EntityPath` (`name`, `remote`, `coverage`), an exception of an
//! entity (`name`, `message`). `first`, `last` and `index` (from 0) are the
//! element's place in the list it was taken from. `rootcause.json = #[…]`
//! holds when each object of the array describes some root cause of the
//! trace, of any kind, as [`TraceRootCause::matches_json`] says.
//!
//! A field that is not set satisfies no comparison, `!=` included; `!`
//! negates the whole term (`!annotation.tier` holds when it is not set).

use baton_model::{AnnotationValue, Exception, HttpFacts};
use serde_json::Value;

use crate::filter::{
    AnnotationTest, BooleanKeyword, EqualityOp, Expr, ExprKind, FilterError, NumberKeyword, NumberOp, RootCause,
    RootCauseLevel, ServiceSelector, StringKeyword, StringOp,
};
use crate::{RootCauseEntity, RootCauseService, ServiceId, TraceRootCause, TraceSummary, Visit};

/// A filter expression ready to run on trace summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    expr: Expr,
    required: Vec<String>,
}

impl Matcher {
    /// Prepares `expr`, whose group references must be resolved already.
    ///
    /// # Errors
    /// A group reference.
    pub fn new(expr: Expr) -> Result<Matcher, FilterError> {
        unresolved(&expr)?;
        let mut required = Vec::new();
        required_strings(&expr, &mut required);
        required.retain(|text| !text.is_empty());
        required.sort();
        required.dedup();
        Ok(Matcher { expr, required })
    }

    /// Strings every matching summary holds somewhere, verbatim: an
    /// annotation key or value, a service name, a URL part the expression
    /// requires. A store that keeps strings verbatim can skip a summary
    /// lacking one without decoding it.
    pub fn required_strings(&self) -> &[String] {
        &self.required
    }

    /// Whether the trace matches.
    pub fn matches(&self, summary: &TraceSummary) -> bool {
        eval(&self.expr, summary, Scope::Trace)
    }

    pub(crate) fn expr(&self) -> &Expr {
        &self.expr
    }
}

fn unresolved(expr: &Expr) -> Result<(), FilterError> {
    match &expr.kind {
        ExprKind::Group(group) => Err(FilterError::new(expr.position, format!("{group} is not resolved"))),
        ExprKind::And(operands) | ExprKind::Or(operands) => operands.iter().try_for_each(unresolved),
        ExprKind::Not(operand) | ExprKind::RootCause { filter: operand, .. } => unresolved(operand),
        ExprKind::Service { filter: Some(filter), .. } | ExprKind::Edge { filter: Some(filter), .. } => {
            unresolved(filter)
        }
        _ => Ok(()),
    }
}

/// Collects strings that must appear in any summary `expr` matches: only
/// from terms every match must satisfy (operands of AND, not under `!` or
/// OR), and only values a match must hold whole or in part.
fn required_strings(expr: &Expr, out: &mut Vec<String>) {
    match &expr.kind {
        ExprKind::And(operands) => operands.iter().for_each(|operand| required_strings(operand, out)),
        ExprKind::String {
            op: StringOp::Eq | StringOp::Contains | StringOp::BeginsWith | StringOp::EndsWith,
            value,
            ..
        } => {
            out.push(value.clone());
        }
        ExprKind::Annotation { key, test } => {
            out.push(key.clone());
            if let AnnotationTest::String {
                op: StringOp::Eq | StringOp::Contains | StringOp::BeginsWith | StringOp::EndsWith,
                value,
            } = test
            {
                out.push(value.clone());
            }
        }
        ExprKind::Service { service, .. } => out.extend(selector_strings(service)),
        // Whatever a root cause's element must hold, the summary holds.
        ExprKind::RootCause { filter, .. } => required_strings(filter, out),
        ExprKind::Edge { source, destination, .. } => {
            out.extend(selector_strings(source));
            out.extend(selector_strings(destination));
        }
        _ => {}
    }
}

fn selector_strings(selector: &ServiceSelector) -> impl Iterator<Item = String> + '_ {
    [&selector.name, &selector.kind, &selector.account_id].into_iter().flatten().cloned()
}

/// What the keywords of a filter read: the trace, or, inside braces, one
/// visit of it or one element of a root cause.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Trace,
    Visit(&'a Visit),
    /// A visit as its caller saw it, inside `edge()` braces: status and
    /// response time from the caller's subsegment when there is one, as the
    /// service graph's edges count them.
    Call(&'a Visit),
    Service(Place, &'a RootCauseService),
    Entity(Place, &'a RootCauseEntity),
    Exception(Place, &'a Exception),
}

/// An element's place in the list it was taken from, for `first`, `last`
/// and `index`.
#[derive(Clone, Copy)]
struct Place {
    index: usize,
    last: bool,
}

/// Each element of `list` with its place.
fn placed<T>(list: &[T]) -> impl Iterator<Item = (Place, &T)> {
    list.iter().enumerate().map(|(index, item)| (Place { index, last: index + 1 == list.len() }, item))
}

/// Evaluates `expr` on the trace, or on one visit or root-cause element of
/// it inside braces.
fn eval(expr: &Expr, summary: &TraceSummary, scope: Scope<'_>) -> bool {
    match &expr.kind {
        ExprKind::And(operands) => operands.iter().all(|operand| eval(operand, summary, scope)),
        ExprKind::Or(operands) => operands.iter().any(|operand| eval(operand, summary, scope)),
        ExprKind::Not(operand) => !eval(operand, summary, scope),
        ExprKind::Boolean { keyword, op, value } => {
            flag(*keyword, summary, scope).is_some_and(|actual| (actual == *value) == (*op == EqualityOp::Eq))
        }
        ExprKind::Number { keyword, op, value } => {
            number(*keyword, summary, scope).is_some_and(|actual| compare_number(actual, *op, *value))
        }
        ExprKind::String { keyword, op, value } => {
            if *op == StringOp::Ne {
                let (mut seen, mut equal) = (false, false);
                any_string(*keyword, summary, scope, |candidate| {
                    seen = true;
                    equal = candidate == value;
                    equal
                });
                seen && !equal
            } else {
                any_string(*keyword, summary, scope, |candidate| compare_string(candidate, *op, value))
            }
        }
        ExprKind::IsSet(keyword) => any_string(*keyword, summary, scope, |_| true),
        ExprKind::Annotation { key, test } => match scope {
            Scope::Trace => annotation(summary, None, key, test),
            Scope::Visit(visit) | Scope::Call(visit) => annotation(summary, Some(visit), key, test),
            Scope::Service(..) | Scope::Entity(..) | Scope::Exception(..) => false,
        },
        ExprKind::Service { service, filter } => summary.visits.iter().any(|candidate| {
            selects(service, summary, candidate.service)
                && filter.as_ref().is_none_or(|filter| eval(filter, summary, Scope::Visit(candidate)))
        }),
        ExprKind::Edge { source, destination, filter } => summary.visits.iter().any(|candidate| {
            candidate.caller.is_some_and(|caller| selects(source, summary, caller))
                && selects(destination, summary, candidate.service)
                && filter.as_ref().is_none_or(|filter| eval(filter, summary, Scope::Call(candidate)))
        }),
        ExprKind::RootCause { cause, level, filter } => {
            let holds = |scope| eval(filter, summary, scope);
            root_causes(summary, *cause).iter().any(|root_cause| {
                let services = &root_cause.services[..];
                match level {
                    RootCauseLevel::Service => {
                        placed(services).any(|(place, service)| holds(Scope::Service(place, service)))
                    }
                    RootCauseLevel::Entity => services.iter().any(|service| {
                        placed(&service.entity_path).any(|(place, entity)| holds(Scope::Entity(place, entity)))
                    }),
                    RootCauseLevel::Exception => {
                        services.iter().flat_map(|service| &service.entity_path).any(|entity| {
                            placed(&entity.exceptions)
                                .any(|(place, exception)| holds(Scope::Exception(place, exception)))
                        })
                    }
                }
            })
        }
        ExprKind::RootCauseJson(patterns) => json_matches(summary, patterns),
        // Refused by `Matcher::new`.
        ExprKind::Group(_) => false,
    }
}

fn root_causes(summary: &TraceSummary, cause: RootCause) -> &[TraceRootCause] {
    match cause {
        RootCause::Fault => &summary.fault_root_causes,
        RootCause::Error => &summary.error_root_causes,
        RootCause::ResponseTime => &summary.response_time_root_causes,
    }
}

/// `rootcause.json = #[…]`: each object of the array describes some root
/// cause of the trace, of any kind (`#[]` holds for every trace).
fn json_matches(summary: &TraceSummary, patterns: &Value) -> bool {
    let all = [RootCause::Fault, RootCause::Error, RootCause::ResponseTime]
        .into_iter()
        .flat_map(|cause| root_causes(summary, cause));
    patterns.as_array().is_some_and(|patterns| {
        patterns.iter().all(|pattern| all.clone().any(|root_cause| root_cause.matches_json(pattern)))
    })
}

/// The value of a boolean keyword, if it has one in `scope`.
fn flag(keyword: BooleanKeyword, summary: &TraceSummary, scope: Scope<'_>) -> Option<bool> {
    use BooleanKeyword as B;
    match (keyword, scope) {
        (B::First, Scope::Service(place, _) | Scope::Entity(place, _) | Scope::Exception(place, _)) => {
            Some(place.index == 0)
        }
        (B::Last, Scope::Service(place, _) | Scope::Entity(place, _) | Scope::Exception(place, _)) => Some(place.last),
        (B::Inferred, Scope::Service(_, service)) => Some(service.inferred),
        (B::Remote, Scope::Entity(_, entity)) => Some(entity.remote),
        (_, Scope::Trace) => trace_flag(keyword, summary),
        (_, Scope::Visit(visit)) => visit_flag(keyword, visit),
        (_, Scope::Call(visit)) => call_flag(keyword, visit),
        (_, Scope::Service(..) | Scope::Entity(..) | Scope::Exception(..)) => None,
    }
}

/// The value of a number keyword, if it has one in `scope`.
fn number(keyword: NumberKeyword, summary: &TraceSummary, scope: Scope<'_>) -> Option<f64> {
    use NumberKeyword as N;
    match (keyword, scope) {
        (N::ResponseTime | N::Duration, Scope::Visit(visit)) => visit.response_time,
        (N::ResponseTime | N::Duration, Scope::Call(visit)) => {
            visit.call.as_ref().map_or(visit.response_time, |call| call.response_time)
        }
        (N::ResponseTime, Scope::Trace) => summary.response_time,
        (N::Duration, Scope::Trace) => summary.duration,
        (N::HttpStatus, Scope::Trace) => summary.http.as_ref().and_then(|http| http.status).map(f64::from),
        (N::HttpStatus, Scope::Visit(visit) | Scope::Call(visit)) => {
            visit.http.as_ref().and_then(|http| http.status).map(f64::from)
        }
        (N::Index, Scope::Service(place, _) | Scope::Entity(place, _) | Scope::Exception(place, _)) => {
            Some(place.index as f64)
        }
        (N::Coverage, Scope::Entity(_, entity)) => entity.coverage,
        _ => None,
    }
}

fn trace_flag(keyword: BooleanKeyword, summary: &TraceSummary) -> Option<bool> {
    Some(match keyword {
        BooleanKeyword::Ok => !(summary.has_error || summary.has_fault || summary.has_throttle),
        BooleanKeyword::Error => summary.has_error,
        BooleanKeyword::Throttle => summary.has_throttle,
        BooleanKeyword::Fault => summary.has_fault,
        BooleanKeyword::Partial => summary.is_partial,
        BooleanKeyword::Inferred => summary.visits.iter().any(|visit| visit.inferred),
        BooleanKeyword::Root => summary.visits.iter().any(|visit| visit.root && visit.caller.is_none()),
        BooleanKeyword::First | BooleanKeyword::Last | BooleanKeyword::Remote => return None,
    })
}

fn visit_flag(keyword: BooleanKeyword, visit: &Visit) -> Option<bool> {
    Some(match keyword {
        BooleanKeyword::Ok => !(visit.error || visit.fault || visit.throttle),
        BooleanKeyword::Error => visit.error,
        BooleanKeyword::Throttle => visit.throttle,
        BooleanKeyword::Fault => visit.fault,
        BooleanKeyword::Partial => visit.partial,
        BooleanKeyword::Inferred => visit.inferred,
        BooleanKeyword::Root => visit.root,
        BooleanKeyword::First | BooleanKeyword::Last | BooleanKeyword::Remote => return None,
    })
}

fn call_flag(keyword: BooleanKeyword, visit: &Visit) -> Option<bool> {
    let Some(call) = &visit.call else { return visit_flag(keyword, visit) };
    Some(match keyword {
        BooleanKeyword::Ok => !(call.error || call.fault || call.throttle),
        BooleanKeyword::Error => call.error,
        BooleanKeyword::Throttle => call.throttle,
        BooleanKeyword::Fault => call.fault,
        BooleanKeyword::Partial => call.response_time.is_none(),
        _ => return visit_flag(keyword, visit),
    })
}

fn compare_number(actual: f64, op: NumberOp, value: f64) -> bool {
    match op {
        NumberOp::Eq => actual == value,
        NumberOp::Ne => actual != value,
        NumberOp::Lt => actual < value,
        NumberOp::Le => actual <= value,
        NumberOp::Gt => actual > value,
        NumberOp::Ge => actual >= value,
    }
}

fn compare_string(actual: &str, op: StringOp, value: &str) -> bool {
    match op {
        StringOp::Eq => actual == value,
        StringOp::Ne => actual != value,
        StringOp::Contains => actual.contains(value),
        StringOp::BeginsWith => actual.starts_with(value),
        StringOp::EndsWith => actual.ends_with(value),
    }
}

fn http_of<'a>(summary: &'a TraceSummary, visit: Option<&'a Visit>) -> Option<&'a HttpFacts> {
    match visit {
        Some(visit) => visit.http.as_ref(),
        None => summary.http.as_ref(),
    }
}

fn service_at(summary: &TraceSummary, index: u32) -> Option<&ServiceId> {
    summary.service_ids.get(index as usize)
}

/// Whether the visit's service is among `services` (indexes), or, at trace
/// level, always.
fn recorded_by(visit: Option<&Visit>, services: &[ServiceId], summary: &TraceSummary) -> bool {
    visit.is_none_or(|visit| service_at(summary, visit.service).is_some_and(|service| services.contains(service)))
}

/// Whether `test` holds for some value of a string keyword: one or none for
/// a visit, a root-cause element or the entry document, any number for the
/// trace's lists. Runs on every summary a scan examines, so it allocates
/// nothing.
fn any_string(
    keyword: StringKeyword,
    summary: &TraceSummary,
    scope: Scope<'_>,
    mut test: impl FnMut(&str) -> bool,
) -> bool {
    let visit = match scope {
        Scope::Trace => None,
        Scope::Visit(visit) | Scope::Call(visit) => Some(visit),
        Scope::Service(_, RootCauseService { service, .. }) => {
            let value = match keyword {
                StringKeyword::Name => Some(service.name.as_str()),
                StringKeyword::Type => service.kind.as_deref(),
                StringKeyword::AccountId => service.account_id.as_deref(),
                _ => None,
            };
            return value.is_some_and(test);
        }
        Scope::Entity(_, entity) => return keyword == StringKeyword::Name && test(&entity.name),
        Scope::Exception(_, exception) => {
            let value = match keyword {
                StringKeyword::Name => exception.name.as_deref(),
                StringKeyword::Message => exception.message.as_deref(),
                _ => None,
            };
            return value.is_some_and(test);
        }
    };
    let http = http_of(summary, visit);
    let mut one = |value: Option<&String>| value.is_some_and(|value| test(value));
    let services = match visit {
        Some(visit) => service_at(summary, visit.service).map_or(&[][..], std::slice::from_ref),
        None => &summary.service_ids[..],
    };
    match keyword {
        StringKeyword::HttpUrl => one(http.and_then(|http| http.url.as_ref())),
        StringKeyword::HttpMethod => one(http.and_then(|http| http.method.as_ref())),
        StringKeyword::HttpUserAgent => one(http.and_then(|http| http.user_agent.as_ref())),
        StringKeyword::HttpClientIp => one(http.and_then(|http| http.client_ip.as_ref())),
        StringKeyword::User => summary
            .users
            .iter()
            .filter(|user| recorded_by(visit, &user.service_ids, summary))
            .any(|user| test(&user.name)),
        StringKeyword::Name => services.iter().any(|service| test(&service.name)),
        StringKeyword::Type => services.iter().filter_map(|service| service.kind.as_deref()).any(test),
        StringKeyword::AccountId => services.iter().filter_map(|service| service.account_id.as_deref()).any(test),
        StringKeyword::AvailabilityZone => summary.availability_zones.iter().any(|zone| test(zone)),
        StringKeyword::InstanceId => summary.instance_ids.iter().any(|id| test(id)),
        StringKeyword::ResourceArn => summary.resource_arns.iter().any(|arn| test(arn)),
        // Only a root cause's exception has a message.
        StringKeyword::Message => false,
    }
}

fn annotation(summary: &TraceSummary, visit: Option<&Visit>, key: &str, test: &AnnotationTest) -> bool {
    let Some(annotation) = summary.annotations.iter().find(|annotation| annotation.key == key) else {
        return false;
    };
    let mut values = annotation
        .values
        .iter()
        .filter(|value| recorded_by(visit, &value.service_ids, summary))
        .map(|value| &value.value)
        .peekable();
    match test {
        AnnotationTest::IsSet => values.peek().is_some(),
        AnnotationTest::Boolean { op, value } => {
            let mut booleans = values.filter_map(|actual| match actual {
                AnnotationValue::Bool(flag) => Some(*flag),
                _ => None,
            });
            match op {
                EqualityOp::Eq => booleans.any(|actual| actual == *value),
                EqualityOp::Ne => booleans.any(|actual| actual != *value),
            }
        }
        AnnotationTest::Number { op, value } => {
            let mut numbers = values.filter_map(|actual| match actual {
                AnnotationValue::Number(number) => Some(*number),
                _ => None,
            });
            match op {
                NumberOp::Ne => none_equal(numbers, |actual| actual == *value),
                _ => numbers.any(|actual| compare_number(actual, *op, *value)),
            }
        }
        AnnotationTest::String { op, value } => {
            let mut texts = values.filter_map(|actual| match actual {
                AnnotationValue::String(text) => Some(text.as_str()),
                _ => None,
            });
            match op {
                StringOp::Ne => none_equal(texts, |actual| actual == value),
                _ => texts.any(|actual| compare_string(actual, *op, value)),
            }
        }
    }
}

/// `!=` on a set of values: some value is set, and none equals.
fn none_equal<T>(values: impl Iterator<Item = T>, mut equals: impl FnMut(T) -> bool) -> bool {
    let mut seen = false;
    for value in values {
        if equals(value) {
            return false;
        }
        seen = true;
    }
    seen
}

/// Whether the service at `index` is one `selector` names.
fn selects(selector: &ServiceSelector, summary: &TraceSummary, index: u32) -> bool {
    let Some(service) = service_at(summary, index) else { return false };
    selector.name.as_ref().is_none_or(|name| *name == service.name)
        && selector.kind.as_ref().is_none_or(|kind| service.kind.as_ref() == Some(kind))
        && selector.account_id.as_ref().is_none_or(|account| service.account_id.as_ref() == Some(account))
}

#[cfg(test)]
pub(crate) mod tests;
