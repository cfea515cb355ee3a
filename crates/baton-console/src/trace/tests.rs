use super::*;
use baton_model::TraceId;
use baton_query::{AnnotationSummary, AnnotationValueSummary, ServiceId};
use serde_json::json;

const TRACE: &str = "1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa";
const T0: f64 = 1_795_416_263.0;

fn segment(id: &str, name: &str, start: f64, end: f64) -> Value {
    json!({"id": id, "name": name, "trace_id": TRACE, "start_time": T0 + start, "end_time": T0 + end})
}

fn subsegment(id: &str, name: &str, start: f64, end: f64) -> Value {
    json!({"id": id, "name": name, "start_time": T0 + start, "end_time": T0 + end})
}

/// `entity` with `key` set to `value`.
fn with(mut entity: Value, key: &str, value: Value) -> Value {
    entity[key] = value;
    entity
}

/// The opening tag of the timeline row of `id`.
fn row<'p>(page: &'p str, id: &str) -> &'p str {
    let at = page.find(&format!("role=\"treeitem\" id=\"seg-{id}\"")).unwrap_or_else(|| panic!("no row {id}"));
    let start = page[..at].rfind("<div").unwrap();
    &page[start..at + page[at..].find('>').unwrap() + 1]
}

/// The whole timeline row of `id`, its label, bar and duration.
fn row_html<'p>(page: &'p str, id: &str) -> &'p str {
    let tag = row(page, id);
    let start = page.find(tag).unwrap();
    &page[start..start + page[start..].find("</div>").unwrap()]
}

/// The details panel of `id`.
fn panel_of<'p>(page: &'p str, id: &str) -> &'p str {
    let start = page.find(&format!("<section id=\"panel-{id}\"")).unwrap_or_else(|| panic!("no panel {id}"));
    &page[start..start + page[start..].find("</section>").unwrap()]
}

fn position(page: &str, id: &str) -> usize {
    page.find(&format!("id=\"seg-{id}\"")).unwrap_or_else(|| panic!("no row {id}"))
}

#[test]
fn rows_nest_under_their_parents_in_start_order() {
    // The API's segment embeds two calls (sent out of order); the second
    // call reached a service whose segment arrived as its own document.
    let api = with(
        segment("a000000000000001", "api", 0.0, 1.0),
        "subsegments",
        json!([
            with(subsegment("b000000000000002", "call-orders", 0.4, 0.9), "namespace", json!("remote")),
            with(
                subsegment("b000000000000001", "validate", 0.1, 0.3),
                "subsegments",
                json!([subsegment("c000000000000001", "load-schema", 0.15, 0.2)])
            ),
        ]),
    );
    let orders = with(
        with(segment("d000000000000001", "orders", 0.5, 0.8), "parent_id", json!("b000000000000002")),
        "origin",
        json!("AWS::EC2::Instance"),
    );
    let page = trace_page(TRACE, &[orders, api], None, &[]);

    let order = ["a000000000000001", "b000000000000001", "c000000000000001", "b000000000000002", "d000000000000001"];
    for pair in order.windows(2) {
        assert!(position(&page, pair[0]) < position(&page, pair[1]), "{} before {}", pair[0], pair[1]);
    }
    for (id, level) in [
        ("a000000000000001", 1),
        ("b000000000000001", 2),
        ("c000000000000001", 3),
        ("b000000000000002", 2),
        ("d000000000000001", 3),
    ] {
        assert!(row(&page, id).contains(&format!("aria-level=\"{level}\"")), "{id}: {}", row(&page, id));
    }
    // Only rows with children can be collapsed; the first row takes focus.
    assert!(row(&page, "a000000000000001").contains("aria-expanded=\"true\""));
    assert!(row(&page, "a000000000000001").contains("tabindex=\"0\""));
    assert!(!row(&page, "c000000000000001").contains("aria-expanded"));
    assert!(row(&page, "c000000000000001").contains("tabindex=\"-1\""));
    // Segments show their origin, subsegments not; the called segment is not an orphan.
    assert!(row_html(&page, "d000000000000001").contains("<span class=\"origin\">AWS::EC2::Instance</span>"));
    assert!(!page.contains("parent not received"));
    // Bars share one axis: the trace's first start to its last end.
    assert!(row_html(&page, "a000000000000001").contains("style=\"left:0.000%;width:100.000%\""));
    assert!(row_html(&page, "d000000000000001").contains("style=\"left:50.000%;width:30.000%\""));
    assert!(row_html(&page, "d000000000000001").contains("<span class=\"duration\">300 ms</span>"));
    assert!(page.contains("<span class=\"tick\" style=\"left:20.0000%\">0.2 s</span>"));
    assert!(page.contains("<div class=\"timeline\" style=\"--step:20.0000%\">"));
    assert!(page.contains("<div id=\"timeline\" class=\"rows\" role=\"tree\""));
}

#[test]
fn flags_in_progress_and_orphans_are_marked() {
    let api = with(
        segment("a000000000000001", "api", 0.0, 2.0),
        "subsegments",
        json!([
            with(subsegment("b000000000000001", "bad-request", 0.1, 0.2), "error", json!(true)),
            with(with(subsegment("b000000000000002", "busy", 0.3, 0.4), "error", json!(true)), "throttle", json!(true)),
            with(subsegment("b000000000000003", "crash", 0.5, 0.6), "fault", json!(true)),
            json!({"id": "b000000000000004", "name": "slow", "start_time": T0 + 1.0, "in_progress": true}),
        ]),
    );
    let orphan = with(
        with(
            with(subsegment("e000000000000001", "late-job", 1.5, 1.8), "type", json!("subsegment")),
            "trace_id",
            json!(TRACE),
        ),
        "parent_id",
        json!("ffffffffffffffff"),
    );
    let page = trace_page(TRACE, &[api, orphan], None, &[]);

    assert!(row(&page, "b000000000000001").starts_with("<div class=\"row subsegment error\""));
    assert!(row_html(&page, "b000000000000001").contains("<span class=\"mark mark-error\">error</span>"));
    assert!(row(&page, "b000000000000002").starts_with("<div class=\"row subsegment error throttle\""));
    assert!(row_html(&page, "b000000000000002").contains("<span class=\"mark mark-throttle\">throttle</span>"));
    assert!(row(&page, "b000000000000003").starts_with("<div class=\"row subsegment fault\""));
    assert!(panel_of(&page, "b000000000000003").contains("<span class=\"status-fault\">fault</span>"));

    // In progress: to the end of the axis, said in words, no duration.
    let slow = row_html(&page, "b000000000000004");
    assert!(row(&page, "b000000000000004").contains("in-progress"));
    assert!(slow.contains("style=\"left:50.000%;width:50.000%\""));
    assert!(slow.contains("<span class=\"duration\">in progress</span>"));
    assert!(
        panel_of(&page, "b000000000000004")
            .contains("<dt>End</dt><dd><span class=\"tag in-progress\">in progress</span>")
    );
    assert!(!panel_of(&page, "b000000000000004").contains("<dt>Duration</dt>"));

    // The orphan is a root row, with its missing parent said out loud.
    assert!(row(&page, "e000000000000001").contains("aria-level=\"1\""));
    assert!(row_html(&page, "e000000000000001").contains("<span class=\"note\">parent not received</span>"));
    assert!(
        panel_of(&page, "e000000000000001")
            .contains("<code>ffffffffffffffff</code> <span class=\"note\">parent not received</span>")
    );
    // A known parent is a link that selects it.
    assert!(panel_of(&page, "b000000000000001").contains("<a href=\"#seg-a000000000000001\">"));

    // Without a summary the header reads the entry segment: it is fine,
    // and the trace is still in progress.
    assert!(page.contains("<dd class=\"status-ok\">ok</dd>"));
    assert!(page.contains("<span class=\"tag in-progress\">in progress</span></p>"));
    assert!(page.contains("<dt>Response time</dt><dd>2.00 s</dd>"));
}

#[test]
fn lambda_phases_are_badged_and_initialization_means_a_cold_start() {
    let lambda = |phases: &[(&str, &str, f64, f64)]| {
        let subsegments: Vec<Value> =
            phases.iter().map(|(id, name, start, end)| subsegment(id, name, *start, *end)).collect();
        let function = with(
            with(segment("a000000000000002", "orders-fn", 0.0, 0.5), "origin", json!("AWS::Lambda::Function")),
            "subsegments",
            json!(subsegments),
        );
        with(function, "parent_id", json!("a000000000000001"))
    };
    let facade = with(segment("a000000000000001", "orders-fn", 0.0, 0.5), "origin", json!("AWS::Lambda"));
    let cold = lambda(&[
        ("b000000000000001", "Initialization", 0.0, 0.2),
        ("b000000000000002", "Invocation", 0.2, 0.45),
        ("b000000000000003", "Overhead", 0.45, 0.5),
    ]);
    let page = trace_page(TRACE, &[facade.clone(), cold], None, &[]);

    assert!(row(&page, "a000000000000002").contains("aria-level=\"2\""));
    assert!(row_html(&page, "a000000000000002").contains("<span class=\"origin\">AWS::Lambda::Function</span>"));
    for (id, class) in [
        ("b000000000000001", "phase-initialization"),
        ("b000000000000002", "phase-invocation"),
        ("b000000000000003", "phase-overhead"),
    ] {
        assert!(row(&page, id).contains(class), "{}", row(&page, id));
        assert!(row_html(&page, id).contains("<span class=\"tag lambda\""));
    }
    assert!(row_html(&page, "b000000000000001").contains("<span class=\"tag cold-start\">cold start</span>"));
    assert!(page.contains("<p class=\"trace-tags\"><span class=\"tag cold-start\""));

    let warm = lambda(&[("b000000000000002", "Invocation", 0.0, 0.45), ("b000000000000003", "Overhead", 0.45, 0.5)]);
    let page = trace_page(TRACE, &[facade, warm], None, &[]);
    assert!(row(&page, "b000000000000002").contains("phase-invocation"));
    assert!(!page.contains("cold start"));

    // Outside a Lambda function the names are an application's own.
    let app = with(
        segment("a000000000000001", "api", 0.0, 1.0),
        "subsegments",
        json!([subsegment("b000000000000001", "Initialization", 0.0, 0.1)]),
    );
    let page = trace_page(TRACE, &[app], None, &[]);
    assert!(!row(&page, "b000000000000001").contains("phase-"));
    assert!(!page.contains("cold start"));
}

#[test]
fn annotations_and_metadata_are_separate_sections_and_escaped() {
    let api = with(
        with(
            segment("a000000000000001", "<b>api</b>", 0.0, 1.0),
            "annotations",
            json!({"customer": "<script>alert(1)</script>", "orders": 3, "vip": true}),
        ),
        "metadata",
        json!({"default": {"body": "<script>x</script>"}, "debug": {"flag": false}}),
    );
    let api = with(with(api, "http", json!({"response": {"status": 200}})), "user", json!("alice"));
    let page = trace_page(TRACE, &[api], None, &[]);
    let panel = panel_of(&page, "a000000000000001");

    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<b>api"));
    assert!(row_html(&page, "a000000000000001").contains("<span class=\"name\">&lt;b&gt;api&lt;/b&gt;</span>"));
    let annotations = panel.find("<h3>Annotations</h3>").unwrap();
    let metadata = panel.find("<h3>Metadata</h3>").unwrap();
    assert!(annotations < metadata);
    let (annotations, metadata) = (&panel[annotations..metadata], &panel[metadata..]);
    assert!(annotations.contains(
        "<tr><td><code>customer</code></td><td class=\"value-string\">&lt;script&gt;alert(1)&lt;/script&gt;</td><td>string</td></tr>"
    ));
    assert!(annotations.contains("<td class=\"value-number\">3</td><td>number</td>"));
    assert!(annotations.contains("<td class=\"value-boolean\">true</td><td>boolean</td>"));
    assert!(!annotations.contains("debug"));
    assert!(
        metadata.contains(
            "<h4>default</h4><pre>{\n  &quot;body&quot;: &quot;&lt;script&gt;x&lt;/script&gt;&quot;\n}</pre>"
        )
    );
    assert!(metadata.contains("<h4>debug</h4><pre>{\n  &quot;flag&quot;: false\n}</pre>"));
    assert!(panel.contains("<h3>HTTP</h3><pre>{\n  &quot;response&quot;: {\n    &quot;status&quot;: 200"));
    assert!(panel.contains("<dt>User</dt><dd>alice</dd>"));
    assert!(panel.contains(
        "<details class=\"raw\"><summary>Raw document</summary><pre>{\n  &quot;id&quot;: &quot;a000000000000001&quot;"
    ));
    assert!(!panel.contains("<h3>SQL</h3>"));

    let bare = trace_page(TRACE, &[segment("a000000000000001", "api", 0.0, 1.0)], None, &[]);
    let panel = panel_of(&bare, "a000000000000001");
    assert!(
        panel.contains("<h3>Annotations</h3><p class=\"muted\">None.</p><h3>Metadata</h3><p class=\"muted\">None.</p>")
    );
}

#[test]
fn exceptions_show_their_stacks_and_a_cause_id_points_at_the_child() {
    let handler = with(
        with(subsegment("b000000000000001", "handler", 0.0, 0.9), "fault", json!(true)),
        "cause",
        json!({"working_directory": "/srv/app", "exceptions": [{
            "id": "60d218443f61db82", "type": "RuntimeError", "message": "order <o-3> exploded",
            "stack": [{"path": "tracer.py", "line": 712, "label": "decorate"}, {"path": "app.py", "line": 45, "label": "fetch_order"}],
            "truncated": 3
        }]}),
    );
    let api = with(
        with(
            with(segment("a000000000000001", "api", 0.0, 1.0), "fault", json!(true)),
            "cause",
            json!("60d218443f61db82"),
        ),
        "subsegments",
        json!([handler]),
    );
    let page = trace_page(TRACE, &[api], None, &[]);

    let panel = panel_of(&page, "b000000000000001");
    assert!(panel.contains("<p class=\"muted\">Working directory <code>/srv/app</code></p>"));
    assert!(panel.contains("<strong>RuntimeError</strong>: <span class=\"message\">order &lt;o-3&gt; exploded</span>"));
    assert!(panel.contains(
        "<ol class=\"stack\"><li><code>tracer.py:712</code> decorate</li><li><code>app.py:45</code> fetch_order</li></ol>"
    ));
    assert!(panel.contains("3 more frames not recorded"));
    assert!(panel_of(&page, "a000000000000001").contains(concat!(
        "Failed with exception <code>60d218443f61db82</code>, recorded on a child: ",
        "<a href=\"#seg-b000000000000001\">handler</a>."
    )));
    assert!(page.contains("<dd class=\"status-fault\">fault</dd>"));

    let lost = with(segment("a000000000000001", "api", 0.0, 1.0), "cause", json!("60d218443f61db82"));
    let page = trace_page(TRACE, &[lost], None, &[]);
    assert!(page.contains("recorded on a child: that child is not in this trace."));
}

#[test]
fn every_row_has_a_hidden_panel_the_fragment_selects() {
    let api = with(
        segment("a000000000000001", "api", 0.0, 1.0),
        "subsegments",
        json!([subsegment("b000000000000001", "db", 0.1, 0.2)]),
    );
    let page = trace_page(TRACE, &[api], None, &[]);
    for id in ["a000000000000001", "b000000000000001"] {
        assert!(row(&page, id).contains(&format!("aria-controls=\"panel-{id}\"")));
        assert!(page.contains(&format!("<section id=\"panel-{id}\" class=\"details\" hidden>")));
        assert!(panel_of(&page, id).contains(&format!("<dt>Trace id</dt><dd><code>{TRACE}</code></dd>")));
    }
    assert!(panel_of(&page, "a000000000000001").contains("(1 subsegment left out: each is a row of its own)"));
    assert!(!panel_of(&page, "a000000000000001").contains("&quot;subsegments&quot;"));
    assert!(page.contains("<p id=\"panel-empty\" class=\"panel-empty\">"));
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<title>Trace 1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa · Baton</title>"));
    assert!(page.contains("href=\"/traces?\" aria-current=\"page\">Traces</a>"));
}

#[test]
fn the_summary_gives_status_annotations_and_services() {
    let api = with(segment("a000000000000001", "api", 0.0, 1.0), "origin", json!("AWS::EC2::Instance"));
    let service = ServiceId {
        name: "api".into(),
        account_id: Some("123456789012".into()),
        kind: Some("AWS::EC2::Instance".into()),
    };
    let summary = TraceSummary {
        id: TRACE.parse::<TraceId>().unwrap(),
        start_time: T0,
        duration: Some(1.25),
        response_time: Some(0.75),
        has_fault: false,
        has_error: true,
        has_throttle: true,
        is_partial: false,
        http: None,
        annotations: vec![AnnotationSummary {
            key: "tier".into(),
            values: vec![AnnotationValueSummary {
                value: AnnotationValue::String("<gold>".into()),
                service_ids: vec![service.clone()],
            }],
        }],
        users: Vec::new(),
        service_ids: vec![service],
        visits: Vec::new(),
        resource_arns: Vec::new(),
        instance_ids: Vec::new(),
        availability_zones: Vec::new(),
        entry_point: None,
        fault_root_causes: Vec::new(),
        error_root_causes: Vec::new(),
        response_time_root_causes: Vec::new(),
        revision: 1,
    };
    let page = trace_page(TRACE, &[api], Some(&summary), &[]);
    assert!(page.contains("<h1>Trace <code>1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa</code></h1>"));
    assert!(page.contains("<dd class=\"status-throttle\">throttle</dd>"));
    assert!(page.contains("<dt>Response time</dt><dd>750 ms</dd>"));
    assert!(page.contains("<dt>Duration</dt><dd>1.25 s</dd>"));
    assert!(page.contains("<dt>Entities</dt><dd>1 segment, 0 subsegments</dd>"));
    assert!(page.contains(concat!(
        "<li><span class=\"name\">api</span> <span class=\"origin\">AWS::EC2::Instance</span>",
        " <span class=\"account\">123456789012</span></li>"
    )));
    assert!(page.contains("<li><code>tier = &quot;&lt;gold&gt;&quot;</code></li>"));
}

#[test]
fn an_unknown_trace_says_how_traces_get_here() {
    let page = trace_page("1-<b>", &[], None, &[]);
    assert!(page.contains("<main><section class=\"empty trace-unknown\"><h1>Trace not found</h1>"));
    assert!(page.contains("Baton has no documents for trace <code>1-&lt;b&gt;</code>"));
    assert!(page.contains("<pre>AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000</pre>"));
    assert!(page.contains("--endpoint-url http://127.0.0.1:2000"));
    assert!(!page.contains("role=\"tree\""));
}

#[test]
fn a_thousand_entities_make_a_thousand_rows() {
    // Ten services, each called by a subsegment of the one before, each
    // with 99 subsegments in groups of three levels.
    let mut documents = Vec::new();
    for service in 0..10 {
        let start = f64::from(service) * 0.1;
        let mut subsegments = Vec::new();
        for group in 0..33 {
            let at = start + f64::from(group) * 0.002;
            let leaf = subsegment(&format!("{service:02x}c{group:013x}"), "leaf", at + 0.0004, at + 0.0008);
            let middle = with(
                subsegment(&format!("{service:02x}b{group:013x}"), "middle", at + 0.0002, at + 0.001),
                "subsegments",
                json!([leaf]),
            );
            subsegments.push(with(
                subsegment(&format!("{service:02x}a{group:013x}"), "call", at, at + 0.0015),
                "subsegments",
                json!([middle]),
            ));
        }
        let mut document = with(
            segment(&format!("{service:02x}{:014x}", 0), &format!("service-{service}"), start, 2.0 - start),
            "subsegments",
            json!(subsegments),
        );
        if service > 0 {
            document = with(document, "parent_id", json!(format!("{:02x}a{:013x}", service - 1, 32)));
        }
        documents.push(document);
    }
    documents.reverse();
    let page = trace_page(TRACE, &documents, None, &[]);

    assert_eq!(page.matches("role=\"treeitem\"").count(), 1000);
    assert_eq!(page.matches("class=\"details\" hidden>").count(), 1000);
    assert_eq!(page.matches("aria-expanded=\"true\"").count(), 10 + 10 * 33 * 2);
    assert!(page.contains("<dt>Entities</dt><dd>10 segments, 990 subsegments</dd>"));
    // Each service sits under the last call of the one before it.
    for service in 1..10u32 {
        let caller = format!("{:02x}a{:013x}", service - 1, 32);
        let callee = format!("{service:02x}{:014x}", 0);
        assert!(position(&page, &caller) < position(&page, &callee));
        assert!(row(&page, &callee).contains(&format!("aria-level=\"{}\"", service * 2 + 1)));
    }
    assert!(!page.contains("parent not received"));
}

#[test]
fn a_chain_of_a_thousand_documents_renders_flat() {
    let documents: Vec<Value> = (0..1000u32)
        .map(|index| {
            let document = segment(&format!("{index:016x}"), "hop", f64::from(index) * 0.001, 1.0);
            if index == 0 { document } else { with(document, "parent_id", json!(format!("{:016x}", index - 1))) }
        })
        .collect();
    let page = trace_page(TRACE, &documents, None, &[]);
    assert_eq!(page.matches("role=\"treeitem\"").count(), 1000);
    assert!(row(&page, &format!("{:016x}", 999)).contains("aria-level=\"1000\""));
}

#[test]
fn documents_whose_parents_form_a_cycle_are_still_shown() {
    let first = with(segment("a000000000000001", "one", 0.0, 1.0), "parent_id", json!("a000000000000002"));
    let second = with(segment("a000000000000002", "two", 0.5, 1.0), "parent_id", json!("a000000000000001"));
    let page = trace_page(TRACE, &[first, second], None, &[]);
    assert_eq!(page.matches("role=\"treeitem\"").count(), 2);
}

#[test]
fn durations_and_ticks_read_in_ms_or_s() {
    assert_eq!(duration(0.000_42), "0.42 ms");
    assert_eq!(duration(0.0123), "12.3 ms");
    assert_eq!(duration(0.45), "450 ms");
    assert_eq!(duration(1.254), "1.25 s");
    assert_eq!(duration(312.4), "312 s");
    assert_eq!(tick_step(1.0), 0.2);
    assert_eq!(tick_step(0.003), 0.0005);
    assert_eq!(tick_step(30.0), 5.0);
    assert_eq!(tick_label(0.0015, 0.0005, 0.003), "1.5 ms");
    assert_eq!(tick_label(0.4, 0.2, 0.9), "400 ms");
    assert_eq!(tick_label(1.5, 0.5, 3.0), "1.5 s");
    assert_eq!(tick_label(10.0, 5.0, 30.0), "10 s");
}

#[test]
fn the_header_draws_a_small_map_of_the_trace() {
    let documents = [serde_json::json!({"name": "api", "id": "0000000000000001",
        "trace_id": "1-655a3b10-0102030405060708090a0b0c", "start_time": 10.0, "end_time": 11.0,
        "subsegments": [{"name": "DynamoDB", "id": "0000000000000002", "namespace": "aws",
            "start_time": 10.1, "end_time": 10.2}]})];
    let infos: Vec<_> = documents
        .iter()
        .map(|document| baton_model::Document::parse(document.to_string().as_bytes()).expect("valid").info)
        .collect();
    let summary = baton_query::summarize(&infos);
    let page = trace_page("1-655a3b10-0102030405060708090a0b0c", &documents, Some(&summary), &[]);
    let map = &page[page.find("<div class=\"trace-map\">").expect("a map")..];
    for label in ["<text class=\"name\" y=\"50\">api</text>", ">DynamoDB</text>", ">Client</text>", "1 req"] {
        assert!(map.contains(label), "{label} in {map}");
    }
    assert!(map.contains("href=\"/?range=1h&amp;select=n"));
}

#[test]
fn the_logs_of_the_traces_invocations_follow_the_timeline_escaped() {
    let log = baton_model::InvocationLog {
        trace_id: TRACE.parse().unwrap(),
        request_id: "8b91682a-a3cb-40aa-862a-1e5719604ec8".into(),
        function: "orders".into(),
        time: 1_732_000_000.0,
        lines: vec!["START RequestId: 8b91682a".into(), "<b>not bold</b>".into()],
    };
    let api = segment("a000000000000001", "api", 0.0, 1.0);
    let page = trace_page(TRACE, std::slice::from_ref(&api), None, std::slice::from_ref(&log));
    let logs = &page[page.find("<section class=\"logs\"").expect("a logs section")..];
    assert!(
        logs.contains("<span class=\"log-function\">orders</span> <code>8b91682a-a3cb-40aa-862a-1e5719604ec8</code>")
    );
    assert!(logs.contains("START RequestId: 8b91682a\n&lt;b&gt;not bold&lt;/b&gt;\n</pre>"));
    assert!(!trace_page(TRACE, &[api], None, &[]).contains("class=\"logs\""));
}
