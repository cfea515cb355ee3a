use proptest::prelude::*;

use super::*;
use crate::filter;
use crate::search::tests::dataset;

fn encoded(term: Term<'_>) -> Vec<u8> {
    let mut bytes = Vec::new();
    term.encode(&mut bytes);
    bytes
}

fn terms_of(summary: &TraceSummary) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    terms(summary, |term| all.push(encoded(term)));
    all
}

fn holds(plan: &Plan<'_>, terms: &[Vec<u8>]) -> bool {
    match plan {
        Plan::Term(term) => terms.contains(&encoded(*term)),
        Plan::All(plans) => plans.iter().all(|plan| holds(plan, terms)),
        Plan::Any(plans) => plans.iter().any(|plan| holds(plan, terms)),
    }
}

fn matcher(expression: &str) -> Matcher {
    Matcher::new(filter::parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"))).expect("supported")
}

#[test]
fn selective_terms_give_plans_and_scans_give_none() {
    let plan = |expression: &str| format!("{:?}", matcher(expression).plan());
    assert_eq!(plan(r#"annotation.customer = "c-1""#), r#"Some(Term(Annotation("customer", String("c-1"))))"#);
    assert_eq!(plan("annotation.n = -0"), r#"Some(Term(Annotation("n", Number(-0.0))))"#);
    assert_eq!(plan("annotation.vip != false"), r#"Some(Term(Annotation("vip", Bool(true))))"#);
    assert_eq!(plan("annotation.age > 3"), r#"Some(Term(AnnotationKey("age")))"#);
    assert_eq!(plan(r#"service("api") { fault }"#), r#"Some(Term(ServiceFlag("api", Fault)))"#);
    assert_eq!(
        plan(r#"service("api") { responsetime > 1 AND throttle = true }"#),
        r#"Some(Term(ServiceFlag("api", Throttle)))"#
    );
    assert_eq!(plan(r#"edge("a", "b") { error }"#), r#"Some(All([Term(Service("a")), Term(Service("b"))]))"#);
    assert_eq!(plan(r#"user = "bob" OR fault"#), r#"Some(Any([Term(User("bob")), Term(TraceFlag(Fault))]))"#);
    assert_eq!(plan(r#"fault AND http.url CONTAINS "/x""#), "Some(Term(TraceFlag(Fault)))");
    // Inside braces the response time is a visit's, which has no term.
    assert_eq!(plan(r#"service("a") { responsetime > 2 }"#), r#"Some(Term(Service("a")))"#);
    assert_eq!(plan("responsetime = 0.0005"), "Some(Any([Term(ResponseTime(0))]))");
    assert_eq!(
        plan("responsetime >= 1000000"),
        "Some(Any([Term(ResponseTime(30)), Term(ResponseTime(31)), Term(ResponseTime(32))]))"
    );
    assert_eq!(
        plan("responsetime < 0.002"),
        "Some(Any([Term(ResponseTime(0)), Term(ResponseTime(1)), Term(ResponseTime(2))]))"
    );
    for scanned in [
        r#"http.url CONTAINS "/x""#,
        "!fault",
        "fault = false",
        "duration > 2",
        "responsetime > 0",
        "responsetime != 2",
        "responsetime < 10000000000",
        r#"user = "bob" OR duration > 2"#,
        "service() { fault }",
        r#"service(id(type: "AWS::Lambda")) { fault }"#,
        r#"!!(annotation.customer = "c-1")"#,
        r#"user != "bob""#,
        "ok",
    ] {
        assert_eq!(plan(scanned), "None", "{scanned}");
    }
}

#[test]
fn response_time_buckets_grow_with_the_response_time() {
    let mut previous = 0;
    for milliseconds in 0..100_000u32 {
        let bucket = response_time_bucket(f64::from(milliseconds) / 1000.0 + 0.000_3);
        assert!(bucket >= previous, "{milliseconds} ms");
        previous = bucket;
    }
    assert_eq!(
        [0.0, 0.000_999, 0.001, 0.002, 0.003_9, 0.004, 1.0, 1e12].map(response_time_bucket),
        [0, 0, 1, 2, 2, 3, 10, 32]
    );
}

#[test]
fn equal_numbers_are_one_term_and_types_are_apart() {
    let number = |value: f64| encoded(Term::Annotation("k", Value::Number(value)));
    assert_eq!(number(0.0), number(-0.0));
    assert_ne!(number(1.0), number(1.5));
    assert_ne!(
        encoded(Term::Annotation("k", Value::String("true"))),
        encoded(Term::Annotation("k", Value::Bool(true)))
    );
    // Lengths keep a key's end apart from a value's start.
    assert_ne!(
        encoded(Term::Annotation("ab", Value::String("c"))),
        encoded(Term::Annotation("a", Value::String("bc")))
    );
}

/// Expressions over the keywords of the search dataset.
fn expression() -> impl Strategy<Value = String> {
    let term = prop::sample::select(vec![
        "ok",
        "fault",
        "error = true",
        "throttle != false",
        "partial",
        r#"user = "bob""#,
        r#"user = "alice""#,
        r#"annotation.gameid = "817DL6VO""#,
        "annotation.age = 29",
        "annotation.age >= 30",
        "annotation.vip = true",
        "annotation.vip != false",
        "annotation.tier",
        "responsetime > 5",
        "responsetime <= 1",
        "responsetime = 6",
        r#"http.url CONTAINS "/api/""#,
        r#"service("DynamoDB") { fault }"#,
        r#"service("backend.example.com") { error AND http.status = 404 }"#,
        r#"service("random-name") { fault OR partial }"#,
        r#"service("worker") { user = "bob" }"#,
        r#"edge("api.example.com", "backend.example.com") { error }"#,
        r#"edge("api.example.com", "DynamoDB")"#,
        r#"service(id(type: "AWS::DynamoDB::Table"))"#,
    ])
    .prop_map(str::to_owned);
    term.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) OR ({b})")),
        ]
    })
}

proptest! {
    #[test]
    fn every_match_meets_the_plan(expression in expression()) {
        let matcher = matcher(&expression);
        if let Some(plan) = matcher.plan() {
            for (name, summary) in dataset() {
                if matcher.matches(&summary) {
                    prop_assert!(holds(&plan, &terms_of(&summary)), "{name} matches {expression} but not {plan:?}");
                }
            }
        }
    }
}

#[test]
fn the_dataset_exercises_plans_that_select() {
    // Some plans do reject traces: the property above is not vacuous.
    for expression in [r#"service("DynamoDB") { fault }"#, r#"user = "bob""#, "annotation.age = 29"] {
        let matcher = matcher(expression);
        let plan = matcher.plan().expect("a plan");
        let selected = dataset().iter().filter(|(_, summary)| holds(&plan, &terms_of(summary))).count();
        assert_eq!(selected, 1, "{expression}");
    }
}
