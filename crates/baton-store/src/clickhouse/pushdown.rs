//! Filter pushdown: the index [`Term`]s of a summary as columns of its
//! `summaries` row, and a filter's [`Plan`] as a SQL condition on them.
//!
//! A plan is necessary, not sufficient (every trace the filter matches
//! meets it), and each term is translated exactly into a test of the
//! column that holds that term, so the condition selects every match; the
//! store still evaluates the filter on each summary it reads.

use baton_query::TraceSummary;
use baton_query::index::{Flag, Plan, Term, Value, response_time_bucket, terms};

use super::rows::{RowBinary, quote};

/// `response_time_bucket` of a trace with no response time: above every
/// bucket a plan names.
const NO_RESPONSE_TIME: u8 = u8::MAX;

/// The pushdown columns of a summary, as the `summaries` table orders them
/// from `response_time_bucket` to `annotation_values`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TermColumns {
    pub(super) response_time_bucket: u8,
    pub(super) has_fault: bool,
    pub(super) has_error: bool,
    pub(super) has_throttle: bool,
    pub(super) services: Vec<String>,
    pub(super) fault_services: Vec<String>,
    pub(super) error_services: Vec<String>,
    pub(super) throttle_services: Vec<String>,
    pub(super) users: Vec<String>,
    /// Parallel to `annotation_values`: one entry per key and value.
    pub(super) annotation_keys: Vec<String>,
    pub(super) annotation_values: Vec<String>,
}

/// The column names, in the order [`TermColumns::encode`] writes them.
pub(super) const COLUMNS: &str = "response_time_bucket, has_fault, has_error, has_throttle, services, fault_services, \
     error_services, throttle_services, users, annotation_keys, annotation_values";

impl TermColumns {
    /// The columns holding every term of `summary`.
    pub(super) fn of(summary: &TraceSummary) -> TermColumns {
        let mut columns = TermColumns {
            response_time_bucket: summary.response_time.map_or(NO_RESPONSE_TIME, response_time_bucket),
            ..TermColumns::default()
        };
        let mut annotations: Vec<(String, String)> = Vec::new();
        terms(summary, |term| match term {
            Term::AnnotationKey(_) | Term::ResponseTime(_) => {}
            Term::Annotation(key, value) => annotations.push((key.to_owned(), value_text(value))),
            Term::Service(name) => columns.services.push(name.to_owned()),
            Term::ServiceFlag(name, flag) => columns.flagged_services(flag).push(name.to_owned()),
            Term::TraceFlag(Flag::Fault) => columns.has_fault = true,
            Term::TraceFlag(Flag::Error) => columns.has_error = true,
            Term::TraceFlag(Flag::Throttle) => columns.has_throttle = true,
            Term::User(name) => columns.users.push(name.to_owned()),
        });
        for list in [
            &mut columns.services,
            &mut columns.fault_services,
            &mut columns.error_services,
            &mut columns.throttle_services,
            &mut columns.users,
        ] {
            list.sort();
            list.dedup();
        }
        annotations.sort();
        annotations.dedup();
        (columns.annotation_keys, columns.annotation_values) = annotations.into_iter().unzip();
        columns
    }

    fn flagged_services(&mut self, flag: Flag) -> &mut Vec<String> {
        match flag {
            Flag::Fault => &mut self.fault_services,
            Flag::Error => &mut self.error_services,
            Flag::Throttle => &mut self.throttle_services,
        }
    }

    /// Writes the columns in the order of [`COLUMNS`].
    pub(super) fn encode(&self, row: &mut RowBinary) {
        row.u8(self.response_time_bucket)
            .bool(self.has_fault)
            .bool(self.has_error)
            .bool(self.has_throttle)
            .strings(&self.services)
            .strings(&self.fault_services)
            .strings(&self.error_services)
            .strings(&self.throttle_services)
            .strings(&self.users)
            .strings(&self.annotation_keys)
            .strings(&self.annotation_values);
    }
}

/// An annotation value as `annotation_values` holds it: its type, then its
/// text (a number in Rust's shortest form that reads back the same, `-0`
/// as `0`, as the term's encoding has it).
fn value_text(value: Value<'_>) -> String {
    match value {
        Value::String(text) => format!("s{text}"),
        Value::Number(number) => format!("n{}", number + 0.0),
        Value::Bool(flag) => format!("b{}", u8::from(flag)),
    }
}

/// The SQL condition on a `summaries` row that a trace meeting `plan` meets.
pub(super) fn condition(plan: &Plan<'_>) -> String {
    match plan {
        Plan::Term(term) => term_condition(*term),
        Plan::All(plans) => join(plans, " AND "),
        Plan::Any(plans) => match response_time_buckets(plans) {
            Some(buckets) => bucket_condition(buckets),
            None => join(plans, " OR "),
        },
    }
}

fn join(plans: &[Plan<'_>], operator: &str) -> String {
    match plans {
        [] if operator == " AND " => "1".to_owned(),
        [] => "0".to_owned(),
        [plan] => condition(plan),
        _ => format!("({})", plans.iter().map(condition).collect::<Vec<_>>().join(operator)),
    }
}

/// The buckets of a plan that is only response-time buckets.
fn response_time_buckets(plans: &[Plan<'_>]) -> Option<Vec<u8>> {
    plans
        .iter()
        .map(|plan| match plan {
            Plan::Term(Term::ResponseTime(bucket)) => Some(*bucket),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|buckets| !buckets.is_empty())
}

/// Buckets as a range when they are one (as a response-time bound gives).
fn bucket_condition(mut buckets: Vec<u8>) -> String {
    buckets.sort_unstable();
    buckets.dedup();
    let (low, high) = (buckets[0], buckets[buckets.len() - 1]);
    if usize::from(high - low) + 1 == buckets.len() {
        if low == high {
            format!("response_time_bucket = {low}")
        } else {
            format!("response_time_bucket BETWEEN {low} AND {high}")
        }
    } else {
        let list: Vec<String> = buckets.iter().map(u8::to_string).collect();
        format!("response_time_bucket IN ({})", list.join(", "))
    }
}

fn term_condition(term: Term<'_>) -> String {
    match term {
        Term::AnnotationKey(key) => format!("has(annotation_keys, {})", quote(key)),
        Term::Annotation(key, value) => format!(
            "arrayExists((k, v) -> k = {} AND v = {}, annotation_keys, annotation_values)",
            quote(key),
            quote(&value_text(value))
        ),
        Term::Service(name) => format!("has(services, {})", quote(name)),
        Term::ServiceFlag(name, flag) => {
            let column = match flag {
                Flag::Fault => "fault_services",
                Flag::Error => "error_services",
                Flag::Throttle => "throttle_services",
            };
            format!("has({column}, {})", quote(name))
        }
        Term::TraceFlag(Flag::Fault) => "has_fault = 1".to_owned(),
        Term::TraceFlag(Flag::Error) => "has_error = 1".to_owned(),
        Term::TraceFlag(Flag::Throttle) => "has_throttle = 1".to_owned(),
        Term::User(name) => format!("has(users, {})", quote(name)),
        Term::ResponseTime(bucket) => bucket_condition(vec![bucket]),
    }
}

#[cfg(test)]
mod tests {
    use baton_model::Document;
    use baton_query::{Matcher, filter, summarize};

    use super::*;

    fn pushed(expression: &str) -> Option<String> {
        let matcher = Matcher::new(filter::parse(expression).expect("parses")).expect("supported");
        matcher.plan().map(|plan| condition(&plan))
    }

    #[test]
    fn filters_translate_to_conditions_on_term_columns() {
        let cases = [
            (
                r#"annotation.customer = "c-3""#,
                "arrayExists((k, v) -> k = 'customer' AND v = 'sc-3', annotation_keys, annotation_values)",
            ),
            ("annotation.n = 2", "arrayExists((k, v) -> k = 'n' AND v = 'n2', annotation_keys, annotation_values)"),
            ("annotation.n = -0", "arrayExists((k, v) -> k = 'n' AND v = 'n0', annotation_keys, annotation_values)"),
            (
                "annotation.vip = false",
                "arrayExists((k, v) -> k = 'vip' AND v = 'b0', annotation_keys, annotation_values)",
            ),
            (
                "annotation.vip != false",
                "arrayExists((k, v) -> k = 'vip' AND v = 'b1', annotation_keys, annotation_values)",
            ),
            ("annotation.n > 1", "has(annotation_keys, 'n')"),
            (r#"service("svc-b") { fault }"#, "has(fault_services, 'svc-b')"),
            (r#"service("svc-a")"#, "has(services, 'svc-a')"),
            (r#"edge("a", "b")"#, "(has(services, 'a') AND has(services, 'b'))"),
            ("fault", "has_fault = 1"),
            ("error = true AND throttle", "(has_error = 1 AND has_throttle = 1)"),
            (r#"user = "u-1" OR fault"#, "(has(users, 'u-1') OR has_fault = 1)"),
            (r#"user = "it's""#, r"has(users, 'it\'s')"),
            ("responsetime > 1", "response_time_bucket BETWEEN 10 AND 32"),
            ("responsetime <= 0.4", "response_time_bucket BETWEEN 0 AND 9"),
            ("responsetime = 0.002", "response_time_bucket = 2"),
        ];
        for (expression, expected) in cases {
            assert_eq!(pushed(expression).as_deref(), Some(expected), "{expression}");
        }
        for unplanned in ["!fault", "duration > 1.6", r#"http.url CONTAINS "x""#, "responsetime != 1"] {
            assert_eq!(pushed(unplanned), None, "{unplanned} has no plan: it is scanned");
        }
    }

    #[test]
    fn a_summary_holds_its_terms_in_columns() {
        let document = Document::parse(
            br#"{"name":"api","id":"70de5b6f19ff9a0a","trace_id":"1-6744a1b2-0123456789abcdef01234567",
                "start_time":1.0,"end_time":1.5,"fault":true,"user":"bob",
                "annotations":{"n":-0.0,"tier":"gold","vip":true},
                "subsegments":[{"name":"db","id":"70de5b6f19ff9a0b","namespace":"remote","start_time":1.1,"end_time":1.2,"error":true}]}"#,
        )
        .expect("valid");
        let columns = TermColumns::of(&summarize(&[document.info]));
        assert_eq!(
            columns,
            TermColumns {
                response_time_bucket: response_time_bucket(0.5),
                has_fault: true,
                has_error: false,
                has_throttle: false,
                services: vec!["api".into(), "db".into()],
                fault_services: vec!["api".into()],
                error_services: vec!["db".into()],
                throttle_services: vec![],
                users: vec!["bob".into()],
                annotation_keys: vec!["n".into(), "tier".into(), "vip".into()],
                annotation_values: vec!["n0".into(), "sgold".into(), "b1".into()],
            }
        );
        let mut row = RowBinary::default();
        columns.encode(&mut row);
        assert_eq!(row.bytes()[..4], [response_time_bucket(0.5), 1, 0, 0]);
    }
}
