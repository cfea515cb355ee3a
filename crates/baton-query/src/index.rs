//! Index terms: the facts of a trace summary a store can key, and, for a
//! filter expression, a condition on them that every matching trace meets.
//!
//! A store records [`terms`] of each summary it writes and answers a filtered
//! query by reading the traces of the expression's [`Plan`] first, then
//! evaluating the expression exactly on those alone. A plan is necessary,
//! not sufficient: it may select traces the expression rejects, never the
//! reverse. Expressions with no selective necessary condition (a negation,
//! `http.url CONTAINS …`, `duration > 2`) have no plan and are scanned.

use baton_model::AnnotationValue;

use crate::filter::{
    AnnotationTest, BooleanKeyword, EqualityOp, Expr, ExprKind, NumberKeyword, NumberOp, StringKeyword, StringOp,
};
use crate::{Matcher, TraceSummary};

/// One indexable fact of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Term<'a> {
    /// The annotation `key` is set.
    AnnotationKey(&'a str),
    /// The annotation `key` has this value.
    Annotation(&'a str, Value<'a>),
    /// A service of this name is in the trace (visited or called).
    Service(&'a str),
    /// A visit of the named service has the flag.
    ServiceFlag(&'a str, Flag),
    /// The trace's entry document has the flag.
    TraceFlag(Flag),
    /// The trace has this user.
    User(&'a str),
    /// The trace's response time is in this [`response_time_bucket`].
    ResponseTime(u8),
}

/// An annotation value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A string.
    String(&'a str),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// A status flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// A 4xx.
    Error,
    /// A 5xx.
    Fault,
    /// A 429.
    Throttle,
}

impl Term<'_> {
    /// Appends the term's canonical bytes, equal exactly for equal terms.
    /// Stores persist hashes of these bytes: they never change meaning.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let text = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        };
        match *self {
            Term::AnnotationKey(key) => {
                out.push(1);
                text(out, key);
            }
            Term::Annotation(key, value) => {
                out.push(2);
                text(out, key);
                match value {
                    Value::String(value) => {
                        out.push(b's');
                        text(out, value);
                    }
                    // `+ 0.0` makes -0 and 0, which compare equal, one term.
                    Value::Number(value) => {
                        out.push(b'n');
                        out.extend_from_slice(&(value + 0.0).to_bits().to_le_bytes());
                    }
                    Value::Bool(value) => out.extend_from_slice(&[b'b', u8::from(value)]),
                }
            }
            Term::Service(name) => {
                out.push(3);
                text(out, name);
            }
            Term::ServiceFlag(name, flag) => {
                out.extend_from_slice(&[4, flag as u8]);
                text(out, name);
            }
            Term::TraceFlag(flag) => out.extend_from_slice(&[5, flag as u8]),
            Term::User(name) => {
                out.push(6);
                text(out, name);
            }
            Term::ResponseTime(bucket) => out.extend_from_slice(&[7, bucket]),
        }
    }
}

/// Calls `each` with every term of the summary (a term may come more than once).
pub fn terms<'a>(summary: &'a TraceSummary, mut each: impl FnMut(Term<'a>)) {
    for annotation in &summary.annotations {
        each(Term::AnnotationKey(&annotation.key));
        for value in &annotation.values {
            let value = match &value.value {
                AnnotationValue::String(text) => Value::String(text),
                AnnotationValue::Number(number) => Value::Number(*number),
                AnnotationValue::Bool(flag) => Value::Bool(*flag),
            };
            each(Term::Annotation(&annotation.key, value));
        }
    }
    for service in &summary.service_ids {
        each(Term::Service(&service.name));
    }
    for visit in &summary.visits {
        let Some(service) = summary.service_ids.get(visit.service as usize) else { continue };
        for (set, flag) in [(visit.error, Flag::Error), (visit.fault, Flag::Fault), (visit.throttle, Flag::Throttle)] {
            if set {
                each(Term::ServiceFlag(&service.name, flag));
            }
        }
    }
    for (set, flag) in
        [(summary.has_error, Flag::Error), (summary.has_fault, Flag::Fault), (summary.has_throttle, Flag::Throttle)]
    {
        if set {
            each(Term::TraceFlag(flag));
        }
    }
    for user in &summary.users {
        each(Term::User(&user.name));
    }
    if let Some(response_time) = summary.response_time {
        each(Term::ResponseTime(response_time_bucket(response_time)));
    }
}

/// The highest response-time bucket.
const MAX_RESPONSE_TIME_BUCKET: u8 = 32;

/// A response time's bucket, growing with it: 0 under a millisecond, then
/// one per doubling (`1 + log2` of the milliseconds), the last from about
/// 25 days on.
pub fn response_time_bucket(seconds: f64) -> u8 {
    let milliseconds = seconds * 1000.0;
    if milliseconds < 1.0 || milliseconds.is_nan() {
        0
    } else {
        (milliseconds.log2().floor() as u8).saturating_add(1).min(MAX_RESPONSE_TIME_BUCKET)
    }
}

/// A condition on index terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan<'a> {
    /// Traces with this term.
    Term(Term<'a>),
    /// Traces meeting every condition.
    All(Vec<Plan<'a>>),
    /// Traces meeting some condition.
    Any(Vec<Plan<'a>>),
}

impl Matcher {
    /// A condition on index terms that every trace this matcher matches
    /// meets, if the expression has one.
    pub fn plan(&self) -> Option<Plan<'_>> {
        plan(self.expr(), false)
    }
}

/// The plan of `expr`, evaluated on the trace or, `in_visit`, on one visit
/// of it (where flags are the visit's, which the service term carries).
fn plan(expr: &Expr, in_visit: bool) -> Option<Plan<'_>> {
    match &expr.kind {
        ExprKind::And(operands) => {
            let mut plans: Vec<Plan<'_>> = operands.iter().filter_map(|operand| plan(operand, in_visit)).collect();
            match plans.len() {
                0 => None,
                1 => plans.pop(),
                _ => Some(Plan::All(plans)),
            }
        }
        ExprKind::Or(operands) => {
            operands.iter().map(|operand| plan(operand, in_visit)).collect::<Option<Vec<_>>>().map(Plan::Any)
        }
        ExprKind::Boolean { keyword, op, value } if !in_visit && (*op == EqualityOp::Eq) == *value => {
            flag_of(*keyword).map(|flag| Plan::Term(Term::TraceFlag(flag)))
        }
        ExprKind::Number { keyword: NumberKeyword::ResponseTime, op, value } if !in_visit => {
            // Buckets grow with the response time, so a bound on it bounds
            // the bucket; a range of every bucket selects nothing.
            let bucket = response_time_bucket(*value);
            let buckets = match op {
                NumberOp::Eq => bucket..=bucket,
                NumberOp::Gt | NumberOp::Ge => bucket..=MAX_RESPONSE_TIME_BUCKET,
                NumberOp::Lt | NumberOp::Le => 0..=bucket,
                NumberOp::Ne => return None,
            };
            if buckets == (0..=MAX_RESPONSE_TIME_BUCKET) {
                return None;
            }
            Some(Plan::Any(buckets.map(|bucket| Plan::Term(Term::ResponseTime(bucket))).collect()))
        }
        ExprKind::String { keyword: StringKeyword::User, op: StringOp::Eq, value } => {
            Some(Plan::Term(Term::User(value)))
        }
        ExprKind::Annotation { key, test } => Some(Plan::Term(match test {
            AnnotationTest::String { op: StringOp::Eq, value } => Term::Annotation(key, Value::String(value)),
            AnnotationTest::Number { op: NumberOp::Eq, value } => Term::Annotation(key, Value::Number(*value)),
            // `!= v` holds for a boolean value that is not `v`.
            AnnotationTest::Boolean { op, value } => {
                Term::Annotation(key, Value::Bool((*op == EqualityOp::Eq) == *value))
            }
            // Every other comparison needs the annotation set.
            _ => Term::AnnotationKey(key),
        })),
        ExprKind::Service { service, filter } => {
            let name = service.name.as_deref()?;
            Some(with_visit(name, filter.as_deref()))
        }
        ExprKind::Edge { source, destination, filter } => {
            let (source, destination) = (source.name.as_deref(), destination.name.as_deref());
            // Inside edge braces flags are the caller's view of the call,
            // which the visit flag terms do not hold: services only.
            let mut plans: Vec<Plan<'_>> =
                [source, destination].into_iter().flatten().map(|name| Plan::Term(Term::Service(name))).collect();
            plans.extend(filter.as_deref().and_then(|filter| plan(filter, true)));
            match plans.len() {
                0 => None,
                1 => plans.pop(),
                _ => Some(Plan::All(plans)),
            }
        }
        _ => None,
    }
}

/// The plan of a visit to the service `name` that `filter` matches.
fn with_visit<'a>(name: &'a str, filter: Option<&'a Expr>) -> Plan<'a> {
    let service = Plan::Term(match filter.and_then(visit_flag) {
        Some(flag) => Term::ServiceFlag(name, flag),
        None => Term::Service(name),
    });
    match filter.and_then(|filter| plan(filter, true)) {
        Some(inner) => Plan::All(vec![service, inner]),
        None => service,
    }
}

/// A flag every visit `filter` matches has.
fn visit_flag(filter: &Expr) -> Option<Flag> {
    match &filter.kind {
        ExprKind::Boolean { keyword, op, value } if (*op == EqualityOp::Eq) == *value => flag_of(*keyword),
        ExprKind::And(operands) => operands.iter().find_map(visit_flag),
        _ => None,
    }
}

fn flag_of(keyword: BooleanKeyword) -> Option<Flag> {
    match keyword {
        BooleanKeyword::Error => Some(Flag::Error),
        BooleanKeyword::Fault => Some(Flag::Fault),
        BooleanKeyword::Throttle => Some(Flag::Throttle),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
