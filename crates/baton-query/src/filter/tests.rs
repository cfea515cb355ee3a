use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/filter/golden.txt");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/filter/corpus.txt");

/// What the golden file holds for `input`: the canonical tree, or the error
/// and, under the `>>> ` line's input, a caret at its position.
fn render(input: &str) -> String {
    match parse(input) {
        Ok(expr) => expr.to_string(),
        Err(error) => {
            let caret = error.caret(input);
            let caret_line = caret.split_once('\n').map_or("", |(_, caret_line)| caret_line);
            format!("error: {error}\n    {caret_line}")
        }
    }
}

/// One case of the golden file: comment lines, `>>> INPUT`, then the
/// expected output up to a blank line.
struct GoldenCase {
    comments: Vec<String>,
    input: String,
    expected: String,
}

fn read_golden(text: &str) -> Vec<GoldenCase> {
    let mut cases = Vec::new();
    let mut comments = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(input) = line.strip_prefix(">>>") {
            let mut expected = Vec::new();
            while let Some(output) = lines.next_if(|output| !output.is_empty()) {
                expected.push(output);
            }
            let input = input.strip_prefix(' ').unwrap_or(input).to_owned();
            cases.push(GoldenCase { comments: std::mem::take(&mut comments), input, expected: expected.join("\n") });
        } else if !line.is_empty() {
            comments.push(line.to_owned());
        }
    }
    cases
}

/// Parses every case of the golden file and compares; `BATON_BLESS=1`
/// rewrites the file with what the parser gives instead (review the diff).
#[test]
fn golden() {
    let text = std::fs::read_to_string(GOLDEN).unwrap();
    let cases = read_golden(&text);
    let mut blessed = String::new();
    let mut failures = Vec::new();
    for case in &cases {
        let actual = render(&case.input);
        if actual != case.expected {
            failures.push(format!(">>> {}\nexpected:\n{}\nactual:\n{actual}\n", case.input, case.expected));
        }
        for comment in &case.comments {
            blessed.push_str(comment);
            blessed.push('\n');
        }
        let input_line = format!(">>> {}", case.input);
        blessed.push_str(&format!("{}\n{actual}\n\n", input_line.trim_end()));
    }
    if std::env::var_os("BATON_BLESS").is_some_and(|bless| bless == "1") {
        std::fs::write(GOLDEN, blessed.trim_end().to_owned() + "\n").unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{} golden cases differ (BATON_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The examples of AWS's page that the golden file must keep.
const AWS_EXAMPLES: [&str; 23] = [
    "responsetime > 5",
    "duration >= 5 AND duration <= 8",
    "ok",
    "!ok",
    "ok = false",
    "http.status != 200",
    "ok !partial duration <3",
    r#"http.url CONTAINS "/api/game/""#,
    r#"user CONTAINS """#,
    r#"service("api.example.com") { fault }"#,
    "service() { fault }",
    r#"edge("api.example.com", "backend.example.com") { error }"#,
    r#"http.url BEGINSWITH "http://api.example.com/" AND http.url CONTAINS "/v2/" AND !service("api.example.com")"#,
    "http.url AND responseTime > 2",
    r#"annotation.gameid = "817DL6VO""#,
    "annotation.age",
    "!annotation.age",
    "annotation.age > 29",
    r#"group.name = "high_response_time" AND user = "alice""#,
    r#"service(id(name: "random-name", type: "AWS::Lambda::Function")) { error }"#,
    r#"service(id(type: "AWS::Lambda::Function")) { error }"#,
    r#"rootcause.fault.service { inferred and name = traces and type = "AWS::DynamoDB" }"#,
    r#"rootcause.responsetime.entity { remote and coverage > 0.7 and name = "traces" }"#,
];

#[test]
fn golden_file_keeps_the_aws_examples_and_forty_more() {
    let text = std::fs::read_to_string(GOLDEN).unwrap();
    let cases = read_golden(&text);
    for example in AWS_EXAMPLES {
        let case = cases.iter().find(|case| case.input == example).unwrap_or_else(|| panic!("missing {example}"));
        assert!(!case.expected.starts_with("error:"), "{example}: {}", case.expected);
    }
    assert!(cases.len() >= AWS_EXAMPLES.len() + 40);
}

#[track_caller]
fn assert_error(input: &str, position: usize, message: &str) {
    let error = parse(input).unwrap_err();
    assert_eq!((error.position(), error.message()), (position, message), "{input:?}");
}

#[test]
fn nesting_a_hundred_thousand_deep_fails_at_the_limit_quickly() {
    let deep = 100_000;
    let started = Instant::now();
    for (input, position) in [
        ("(".repeat(deep), MAX_DEPTH),
        ("!".repeat(deep), MAX_DEPTH),
        (format!("service() {{ {}", "(".repeat(deep)), 12 + MAX_DEPTH - 1),
        (format!("rootcause.json = #{}", "[".repeat(deep)), 18 + MAX_DEPTH),
    ] {
        assert_error(&input, position, "expression nests deeper than 32 levels");
    }
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let parens = format!("{}ok{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&parens).unwrap().to_string(), "ok");
    let nots = format!("{}ok", "!".repeat(MAX_DEPTH));
    assert!(parse(&nots).is_ok());
    let json = format!("rootcause.json = #{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(&json).is_ok());
}

#[test]
fn input_longer_than_the_limit_fails_where_it_is_exceeded() {
    let message = "expression is longer than 4096 bytes";
    let at_limit = format!("http.url = \"{}\"", "a".repeat(MAX_INPUT_BYTES - 13));
    assert_eq!(at_limit.len(), MAX_INPUT_BYTES);
    assert!(parse(&at_limit).is_ok());
    assert_error(&format!("{at_limit} "), MAX_INPUT_BYTES, message);
    assert_error(&format!("ok{}ok", " ".repeat(MAX_INPUT_BYTES)), MAX_INPUT_BYTES, message);
    // A two-byte char across the limit: the error is at the char boundary before it.
    let straddling = format!("http.url = \"{}é\"", "a".repeat(MAX_INPUT_BYTES - 13));
    assert_error(&straddling, MAX_INPUT_BYTES - 1, message);
    // An earlier error is still the one reported.
    assert_error(&format!("nope {}", " ".repeat(2 * MAX_INPUT_BYTES)), 0, "unknown keyword \"nope\"");
}

#[test]
fn long_flat_chains_parse_without_deep_recursion() {
    let ands = vec!["ok"; 500].join(" AND ");
    let Ok(Expr { kind: ExprKind::And(operands), .. }) = parse(&ands) else { panic!("not an And") };
    assert_eq!(operands.len(), 500);
    let ors = vec!["fault"; 400].join(" or ");
    assert!(parse(&ors).unwrap().to_string().starts_with("(or fault fault"));
}

#[test]
fn whitespace_only_is_empty() {
    assert_error(" \t\n ", 0, "empty filter expression");
}

#[test]
fn positions_are_where_each_node_starts() {
    let expr = parse("ok OR !service(\"a\") { fault }").unwrap();
    let ExprKind::Or(operands) = &expr.kind else { panic!("not an Or") };
    assert_eq!((expr.position, operands[0].position, operands[1].position), (0, 0, 6));
    let ExprKind::Not(service) = &operands[1].kind else { panic!("not a Not") };
    assert_eq!(service.position, 7);
    let ExprKind::Service { filter: Some(filter), .. } = &service.kind else { panic!("not a service filter") };
    assert_eq!(filter.position, 22);
}

#[test]
fn caret_marks_the_position_on_its_line() {
    let error = FilterError::new(5, "x");
    assert_eq!(error.caret("ok\n\t!x y"), "\t!x y\n\t ^");
    assert_eq!(FilterError::new(2, "x").caret("ok"), "ok\n  ^");
    assert_eq!(FilterError::new(3, "x").caret("éok"), "éok\n  ^");
    assert_eq!(FilterError::new(99, "x").caret("ok"), "ok\n  ^");
}

#[test]
fn error_display_ends_with_the_position() {
    let error = parse("responsetime >").unwrap_err();
    assert_eq!(error.to_string(), "unexpected end of expression, expected a value after > at 14");
}

fn group(name: &str) -> GroupRef {
    GroupRef::Name(name.to_owned())
}

#[test]
fn group_refs_lists_every_reference_in_order() {
    let expr = parse(r#"group.name = "a" OR (ok !group.arn = "arn:b") group.name = c"#).unwrap();
    let arn = GroupRef::Arn("arn:b".to_owned());
    assert_eq!(expr.group_refs(), [&group("a"), &arn, &group("c")]);
    assert!(parse("ok").unwrap().group_refs().is_empty());
}

#[test]
fn resolve_groups_substitutes_each_group_filter() {
    let expr = parse(r#"!group.name = "slow" AND user = "alice""#).unwrap();
    let resolved = expr
        .resolve_groups(|reference| (*reference == group("slow")).then(|| parse("responsetime > 3 OR fault").unwrap()))
        .unwrap();
    assert_eq!(resolved.to_string(), r#"(and (not (or (> responsetime 3) fault)) (= user "alice"))"#);
    assert!(resolved.group_refs().is_empty());
}

#[test]
fn resolve_groups_rejects_unknown_and_nested_groups() {
    let expr = parse(r#"ok group.name = "a""#).unwrap();
    let error = expr.resolve_groups(|_| None).unwrap_err();
    assert_eq!((error.position(), error.message()), (3, r#"no group has group.name "a""#));
    let nested = parse(r#"group.name = "a""#).unwrap();
    let error = expr.resolve_groups(|_| Some(nested.clone())).unwrap_err();
    assert_eq!((error.position(), error.message()), (3, r#"the filter of group.name "a" refers to another group"#));
}

#[test]
fn corpus_of_tricky_inputs_never_panics() {
    let corpus = std::fs::read_to_string(CORPUS).unwrap();
    for input in corpus.lines() {
        check_result(input);
    }
}

/// What must hold of any input: no panic (the caller sees it), an error at a
/// char boundary within the input, nodes that start inside the input.
fn check_result(input: &str) {
    match parse(input) {
        Ok(expr) => {
            check_positions(&expr, input);
            expr.to_string();
        }
        Err(error) => {
            assert!(error.position() <= input.len(), "{input:?}: {error}");
            assert!(input.is_char_boundary(error.position()), "{input:?}: {error}");
            error.caret(input);
        }
    }
}

fn check_positions(expr: &Expr, input: &str) {
    assert!(expr.position < input.len() && input.is_char_boundary(expr.position), "{input:?}: {expr}");
    match &expr.kind {
        ExprKind::And(operands) | ExprKind::Or(operands) => operands.iter().for_each(|op| check_positions(op, input)),
        ExprKind::Not(operand) | ExprKind::RootCause { filter: operand, .. } => check_positions(operand, input),
        ExprKind::Service { filter: Some(filter), .. } | ExprKind::Edge { filter: Some(filter), .. } => {
            check_positions(filter, input)
        }
        _ => {}
    }
}

/// Pieces of the language, well-formed or not, so that random sequences of
/// them reach deep into the parser.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "ok",
        "!",
        "(",
        ")",
        "{",
        "}",
        ",",
        ":",
        "AND",
        "and",
        "OR",
        "or",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "CONTAINS",
        "beginswith",
        "EndsWith",
        "true",
        "FALSE",
        "2",
        "-1",
        "0.7",
        "5.",
        "-",
        r#""x""#,
        r#""""#,
        r#""a\"b""#,
        r#""\\""#,
        r#"""#,
        r#""\n""#,
        "#[1]",
        r#"#[{"a":[]}]"#,
        "#",
        "#[",
        "[",
        "]",
        "\\",
        "é",
        "日本",
        "\t",
        "\n",
        "service",
        "edge",
        "id",
        "name",
        "type",
        "account.id",
        "responsetime",
        "http.url",
        "http.status",
        "user",
        "root",
        "first",
        "index",
        "coverage",
        "remote",
        "inferred",
        "message",
        "annotation.k",
        "annotation.",
        "annotation.a-b",
        "group.name",
        "group.arn",
        "rootcause.json",
        "rootcause.fault.service",
        "rootcause.responsetime.entity",
        "rootcause.error.exception",
        "rootcause.responsetime.exception",
        "traces",
        "@",
    ])
}

fn tokens() -> impl Strategy<Value = String> {
    prop::collection::vec((token(), prop::sample::select(vec!["", " "])), 0..48)
        .prop_map(|pieces| pieces.into_iter().flat_map(|(token, space)| [token, space]).collect())
}

/// Expressions valid at the top level, built from valid terms.
fn valid_expression() -> impl Strategy<Value = String> {
    let term = prop::sample::select(vec![
        "ok",
        "!partial",
        "fault = false",
        "responsetime > 0.5",
        "http.status != 200",
        r#"http.url CONTAINS "/a\"b""#,
        "user",
        "annotation.k = 3",
        r#"annotation.k BEGINSWITH "x""#,
        r#"service("api") { fault OR root }"#,
        r#"service(id(type: "AWS::Lambda")) { name = x }"#,
        r#"edge("a", id(name: "b")) { error }"#,
        r#"group.arn = "arn""#,
        "rootcause.fault.exception { last AND message CONTAINS \"denied\" }",
        "rootcause.responsetime.entity { coverage >= 0.1 }",
        r#"rootcause.json = #[{"Services": []}]"#,
    ])
    .prop_map(str::to_owned);
    term.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} {b}")),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        check_result(&input);
    }

    #[test]
    fn token_sequences_never_panic(input in tokens()) {
        check_result(&input);
    }

    #[test]
    fn valid_expressions_parse(input in valid_expression()) {
        prop_assert!(parse(&input).is_ok(), "{input}: {}", parse(&input).unwrap_err());
        check_result(&input);
    }
}
