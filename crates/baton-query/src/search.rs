//! Evaluation of a filter expression on a trace summary.
//!
//! Trace-level keywords read the summary: flags, response time, duration and
//! `http` are the entry document's, the lists (users, annotations, services,
//! instances, zones, ARNs) the whole trace's. Inside `service() { … }` and
//! `edge() { … }` the keywords read one [`Visit`] at a time: its flags,
//! times and `http`; its service's name, type and account; the annotations
//! and users its service recorded.
//!
//! A field that is not set satisfies no comparison, `!=` included; `!`
//! negates the whole term (`!annotation.tier` holds when it is not set).

use baton_model::{AnnotationValue, HttpFacts};

use crate::filter::{
    AnnotationTest, BooleanKeyword, EqualityOp, Expr, ExprKind, FilterError, NumberKeyword, NumberOp, ServiceSelector,
    StringKeyword, StringOp,
};
use crate::{ServiceId, TraceSummary, Visit};

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
    /// A group reference, or a root-cause term: root causes are not
    /// computed yet.
    pub fn new(expr: Expr) -> Result<Matcher, FilterError> {
        unsupported(&expr)?;
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
        eval(&self.expr, summary, None)
    }

    pub(crate) fn expr(&self) -> &Expr {
        &self.expr
    }
}

fn unsupported(expr: &Expr) -> Result<(), FilterError> {
    match &expr.kind {
        ExprKind::RootCause { .. } | ExprKind::RootCauseJson(_) => Err(FilterError::new(
            expr.position,
            "rootcause filters are not supported yet: Baton does not compute root causes".to_owned(),
        )),
        ExprKind::Group(group) => Err(FilterError::new(expr.position, format!("{group} is not resolved"))),
        ExprKind::And(operands) | ExprKind::Or(operands) => operands.iter().try_for_each(unsupported),
        ExprKind::Not(operand) => unsupported(operand),
        ExprKind::Service { filter: Some(filter), .. } | ExprKind::Edge { filter: Some(filter), .. } => {
            unsupported(filter)
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

/// Evaluates `expr` on the trace, or on one visit of it inside braces.
fn eval(expr: &Expr, summary: &TraceSummary, visit: Option<&Visit>) -> bool {
    match &expr.kind {
        ExprKind::And(operands) => operands.iter().all(|operand| eval(operand, summary, visit)),
        ExprKind::Or(operands) => operands.iter().any(|operand| eval(operand, summary, visit)),
        ExprKind::Not(operand) => !eval(operand, summary, visit),
        ExprKind::Boolean { keyword, op, value } => {
            let actual = match visit {
                Some(visit) => visit_flag(*keyword, visit),
                None => trace_flag(*keyword, summary),
            };
            actual.is_some_and(|actual| (actual == *value) == (*op == EqualityOp::Eq))
        }
        ExprKind::Number { keyword, op, value } => {
            let actual = match (keyword, visit) {
                (NumberKeyword::ResponseTime | NumberKeyword::Duration, Some(visit)) => visit.response_time,
                (NumberKeyword::ResponseTime, None) => summary.response_time,
                (NumberKeyword::Duration, None) => summary.duration,
                (NumberKeyword::HttpStatus, _) => http_of(summary, visit).and_then(|http| http.status).map(f64::from),
                (NumberKeyword::Index | NumberKeyword::Coverage, _) => None,
            };
            actual.is_some_and(|actual| compare_number(actual, *op, *value))
        }
        ExprKind::String { keyword, op, value } => {
            if *op == StringOp::Ne {
                let (mut seen, mut equal) = (false, false);
                any_string(*keyword, summary, visit, |candidate| {
                    seen = true;
                    equal = candidate == value;
                    equal
                });
                seen && !equal
            } else {
                any_string(*keyword, summary, visit, |candidate| compare_string(candidate, *op, value))
            }
        }
        ExprKind::IsSet(keyword) => any_string(*keyword, summary, visit, |_| true),
        ExprKind::Annotation { key, test } => annotation(summary, visit, key, test),
        ExprKind::Service { service, filter } => summary.visits.iter().any(|candidate| {
            selects(service, summary, candidate.service)
                && filter.as_ref().is_none_or(|filter| eval(filter, summary, Some(candidate)))
        }),
        ExprKind::Edge { source, destination, filter } => summary.visits.iter().any(|candidate| {
            candidate.caller.is_some_and(|caller| selects(source, summary, caller))
                && selects(destination, summary, candidate.service)
                && filter.as_ref().is_none_or(|filter| eval(filter, summary, Some(candidate)))
        }),
        // Refused by `Matcher::new`.
        ExprKind::Group(_) | ExprKind::RootCause { .. } | ExprKind::RootCauseJson(_) => false,
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
/// a visit or the entry document, any number for the trace's lists. Runs on
/// every summary a scan examines, so it allocates nothing.
fn any_string(
    keyword: StringKeyword,
    summary: &TraceSummary,
    visit: Option<&Visit>,
    mut test: impl FnMut(&str) -> bool,
) -> bool {
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
        // Exception messages belong to root causes, which are not computed.
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
