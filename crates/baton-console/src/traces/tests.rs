use baton_model::{AnnotationValue, HttpFacts, TraceId};
use baton_query::filter;
use baton_query::{AnnotationSummary, AnnotationValueSummary, ServiceId, TraceSummary};

use super::*;

fn window() -> TimeWindow {
    TimeWindow { start: 1_700_000_000.0, end: 1_700_003_600.0, range: Some("1h") }
}

fn view(filter: &str, summaries: Vec<TraceSummary>) -> TracesView {
    TracesView {
        window: window(),
        filter: filter.to_owned(),
        error: None,
        summaries,
        response_times: Vec::new(),
        response_times_capped: false,
        next: None,
    }
}

fn summary(annotations: Vec<(&str, AnnotationValue)>) -> TraceSummary {
    let api = ServiceId { name: "api".to_owned(), account_id: None, kind: Some("AWS::Lambda::Function".to_owned()) };
    TraceSummary {
        id: TraceId::from_bytes([0x65, 0x5a, 0x3b, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        start_time: 1_700_000_100.25,
        duration: Some(0.4),
        response_time: Some(0.35),
        has_fault: true,
        has_error: false,
        has_throttle: false,
        is_partial: false,
        http: Some(HttpFacts {
            method: Some("POST".to_owned()),
            url: Some("https://shop.example/cart?<x>".to_owned()),
            ..HttpFacts::default()
        }),
        annotations: annotations
            .into_iter()
            .map(|(key, value)| AnnotationSummary {
                key: key.to_owned(),
                values: vec![AnnotationValueSummary { value, service_ids: vec![api.clone()] }],
            })
            .collect(),
        users: Vec::new(),
        service_ids: vec![api, ServiceId { name: "<script>db".to_owned(), account_id: None, kind: None }],
        visits: Vec::new(),
        resource_arns: Vec::new(),
        instance_ids: Vec::new(),
        availability_zones: Vec::new(),
        entry_point: None,
        fault_root_causes: Vec::new(),
        error_root_causes: Vec::new(),
        response_time_root_causes: Vec::new(),
        revision: 2,
    }
}

#[test]
fn the_list_shows_each_trace_with_a_link_and_its_facts() {
    let page = traces_page(&view("", vec![summary(Vec::new())]));
    let id = "1-655a3b10-0102030405060708090a0b0c";
    assert!(page.contains(&format!("<td class=\"id\"><a href=\"/traces/{id}\">{id}</a></td>")));
    assert!(page.contains("<time datetime=\"2023-11-14T22:15:00.250Z\">2023-11-14 22:15:00.250</time>"));
    assert!(page.contains("<td class=\"number\">350 ms</td>"));
    assert!(page.contains("<span class=\"status status-fault\">fault</span>"));
    assert!(page.contains("<td>POST</td><td class=\"url\">https://shop.example/cart?&lt;x&gt;</td>"));
    assert!(page.contains("<span class=\"service\" title=\"AWS::Lambda::Function\">api</span>"));
    assert!(page.contains("<span class=\"service\" title=\"\">&lt;script&gt;db</span>"));
    assert!(!page.contains("<script>db"));
}

#[test]
fn the_form_keeps_the_filter_and_the_window() {
    let page = traces_page(&view(r#"service("a") { fault }"#, vec![summary(Vec::new())]));
    assert!(page.contains("<form class=\"filter\" action=\"/traces\" method=\"get\" role=\"search\">"));
    assert!(page.contains("value=\"service(&quot;a&quot;) { fault }\">"));
    assert!(page.contains("<input type=\"hidden\" name=\"range\" value=\"1h\">"));
    // The picker carries the filter.
    assert!(page.contains("<a href=\"?filter=service%28%22a%22%29%20%7B%20fault%20%7D&amp;range=6h\">6h</a>"));
    let custom = TracesView { window: TimeWindow { start: 100.0, end: 200.5, range: None }, ..view("", Vec::new()) };
    let page = traces_page(&custom);
    assert!(page.contains(
        "<input type=\"hidden\" name=\"start\" value=\"100\"><input type=\"hidden\" name=\"end\" value=\"200.5\">"
    ));
}

#[test]
fn a_filter_error_marks_its_position_under_the_box() {
    let input = "fault AND responsetime > \"slow\"";
    let error = filter::parse(input).unwrap_err();
    assert_eq!(error.position(), 25);
    let page = traces_page(&TracesView { error: Some(error), ..view(input, Vec::new()) });
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"filter-error\" data-error-at=\"25\""));
    assert!(page.contains(&format!(
        "<pre><code>fault AND responsetime &gt; <mark>&quot;</mark>slow&quot;\n{}^</code></pre>",
        " ".repeat(25)
    )));
    assert!(page.contains(
        "cannot compare number keyword responsetime with a string <span class=\"position\">(at byte 25)</span>"
    ));
    assert!(!page.contains("No trace matches"));
}

#[test]
fn an_error_at_the_end_marks_the_missing_text() {
    let input = "é >";
    let error = filter::parse(input).unwrap_err();
    let page = traces_page(&TracesView { error: Some(error.clone()), ..view(input, Vec::new()) });
    let position = error.position();
    assert!(page.contains(&format!("data-error-at=\"{}\"", input[..position].encode_utf16().count())));
    assert!(page.contains("<mark>"));
}

#[test]
fn chart_bars_narrow_the_search_to_their_range() {
    let page = traces_page(&TracesView {
        response_times: vec![0.05, 0.06, 1.2, 250_000.0],
        response_times_capped: true,
        ..view(r#"service("a") OR fault"#, vec![summary(Vec::new())])
    });
    assert!(page.contains("The first 4 matching traces"));
    let narrowed = r#"(service("a") OR fault) AND responsetime >= 0.04 AND responsetime < 0.063"#;
    assert!(page.contains(&format!("<a href=\"/traces?filter={}&amp;range=1h\"", query_component(narrowed))));
    assert!(page.contains("<title>40 ms – 63 ms: 2 traces</title>"));
    let open_ended = r#"(service("a") OR fault) AND responsetime >= 100000"#;
    assert!(page.contains(&format!("<a href=\"/traces?filter={}&amp;range=1h\"", query_component(open_ended))));
    for text in [narrowed, open_ended] {
        filter::parse(text).expect("a valid filter");
    }
    // Empty buckets between are drawn, not linked.
    assert!(page.contains("<g><title>63 ms – 100 ms: 0 traces</title>"));
}

#[test]
fn buckets_are_five_a_decade_with_exact_bounds() {
    let buckets = distribution([(0.0, 1), (0.000_05, 2), (0.001, 3)]);
    assert_eq!(buckets.first(), Some(&Bucket { low: 0.0, high: Some(0.0001), count: 3 }));
    assert_eq!(buckets.len(), 7);
    assert_eq!(buckets[6], Bucket { low: 0.001, high: Some(0.0016), count: 3 });
    assert_eq!(buckets[0].condition(), "responsetime < 0.0001");
    assert_eq!(buckets[6].condition(), "responsetime >= 0.001 AND responsetime < 0.0016");
    assert!(distribution([]).is_empty());
}

#[test]
fn annotation_values_are_links_that_add_their_condition() {
    let page = traces_page(&view(
        "fault OR error",
        vec![summary(vec![
            ("customer", AnnotationValue::String("say \"<script>\"".to_owned())),
            ("items", AnnotationValue::Number(3.5)),
            ("vip", AnnotationValue::Bool(true)),
        ])],
    ));
    for condition in [r#"annotation.customer = "say \"<script>\"""#, "annotation.items = 3.5", "annotation.vip = true"]
    {
        let filter = format!("(fault OR error) AND {condition}");
        filter::parse(&filter).expect("a valid filter");
        assert!(
            page.contains(&format!("href=\"/traces?filter={}&amp;range=1h\"", query_component(&filter))),
            "{condition}"
        );
    }
    assert!(page.contains(">customer: say &quot;&lt;script&gt;&quot;</a>"));
    assert!(page.contains(">items: 3.5</a>"));
    assert!(page.contains(">vip: true</a>"));
    assert!(!page.contains("<script>\""));
    // Without a filter, the condition is the whole filter.
    let page = traces_page(&view("", vec![summary(vec![("vip", AnnotationValue::Bool(false))])]));
    assert!(page.contains("href=\"/traces?filter=annotation.vip%20%3D%20false&amp;range=1h\""));
}

#[test]
fn the_next_page_link_carries_the_token_the_filter_and_the_window() {
    let page = traces_page(&TracesView { next: Some("a+b/=".to_owned()), ..view("fault", vec![summary(Vec::new())]) });
    assert!(
        page.contains("<a rel=\"next\" href=\"/traces?filter=fault&amp;range=1h&amp;next=a%2Bb%2F%3D\">Next page</a>")
    );
    assert!(!traces_page(&view("fault", vec![summary(Vec::new())])).contains("Next page"));
}

#[test]
fn empty_states_tell_how_to_send_or_to_widen_the_window() {
    let page = traces_page(&view("", Vec::new()));
    assert!(page.contains("<h2>No traces in this time range</h2>"));
    assert!(page.contains("AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000"));
    let page = traces_page(&view("fault", Vec::new()));
    assert!(page.contains("<h2>No trace matches this filter</h2>"));
    assert!(page.contains("<a href=\"/traces?filter=fault&amp;range=3h\">the last 3h</a>"));
    let longest = TracesView {
        window: TimeWindow { start: 0.0, end: 2_592_000.0, range: Some("30d") },
        ..view("fault", Vec::new())
    };
    assert!(traces_page(&longest).contains("this is the longest time range"));
}

#[test]
fn numbers_read_well() {
    assert_eq!(seconds_text(0.000_85), "850 µs");
    assert_eq!(seconds_text(0.0352), "35.2 ms");
    assert_eq!(seconds_text(0.001), "1 ms");
    assert_eq!(seconds_text(1.25), "1.25 s");
    assert_eq!(seconds_text(150.0), "2.5 min");
    assert_eq!(number_text(0.004), "<0.01");
    assert_eq!(number_text(0.0), "0");
    assert_eq!(number_text(12_345.6), "12,346");
    assert_eq!(count_text(-1_234_567), "-1,234,567");
    assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    assert_eq!(narrowed("  ", "fault"), "fault");
}
