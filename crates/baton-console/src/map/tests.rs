use std::collections::BTreeMap;

use baton_query::ServiceId;
use baton_query::filter;
use baton_query::graph::{Element, Histogram, Node, Stats};

use super::*;

fn service(name: &str, kind: &str) -> Node {
    Node::Service {
        id: ServiceId { name: name.to_owned(), account_id: None, kind: Some(kind.to_owned()) },
        inferred: false,
    }
}

fn inferred(name: &str, kind: &str) -> Node {
    Node::Service {
        id: ServiceId { name: name.to_owned(), account_id: None, kind: Some(kind.to_owned()) },
        inferred: true,
    }
}

/// `total` requests of `seconds` each, `fault` of them faults.
fn stats(total: i64, fault: i64, seconds: f64) -> Stats {
    let mut response_times = Histogram::default();
    response_times.add(seconds, total);
    Stats {
        total,
        ok: total - fault,
        fault,
        total_response_time: seconds * total as f64,
        response_times,
        ..Stats::default()
    }
}

fn window() -> TimeWindow {
    TimeWindow { start: 0.0, end: 600.0, range: Some("10m") }
}

/// Client → api → db, api → DynamoDB (inferred).
fn shop() -> BTreeMap<Element, Stats> {
    let (api, db, dynamo) = (
        service("api", "AWS::Lambda::Function"),
        service("db", "AWS::EC2::Instance"),
        inferred("DynamoDB", "AWS::DynamoDB::Table"),
    );
    BTreeMap::from([
        (Element::Node(api.clone()), stats(120, 6, 0.05)),
        (Element::Node(db.clone()), stats(40, 0, 0.01)),
        (Element::Node(dynamo.clone()), stats(80, 0, 0.002)),
        (Element::Edge(Node::Client, api.clone()), stats(120, 6, 0.05)),
        (Element::Edge(api.clone(), db.clone()), stats(40, 0, 0.012)),
        (Element::Edge(api, dynamo), stats(80, 0, 0.002)),
    ])
}

/// The `translate(x y)` of the node drawn with this `data-select` key.
fn node_position(page: &str, node: &Node) -> (f64, f64) {
    let key = node_key(node);
    let start = page.find(&format!("data-select=\"{key}\"")).expect("node drawn");
    let translate = &page[start..][page[start..].find("translate(").expect("node placed") + 10..];
    let mut numbers = translate[..translate.find(')').expect("closed")].split(' ');
    let mut next = || numbers.next().and_then(|number| number.parse::<f64>().ok()).expect("a number");
    (next(), next())
}

#[test]
fn the_client_comes_first_and_callees_right_of_their_callers() {
    let page = map_page(&window(), &shop(), None);
    let client = node_position(&page, &Node::Client);
    let api = node_position(&page, &service("api", "AWS::Lambda::Function"));
    let db = node_position(&page, &service("db", "AWS::EC2::Instance"));
    let dynamo = node_position(&page, &inferred("DynamoDB", "AWS::DynamoDB::Table"));
    assert!(client.0 < api.0, "{client:?} {api:?}");
    assert!(api.0 < db.0 && db.0 == dynamo.0, "{api:?} {db:?} {dynamo:?}");
    assert_ne!(db.1, dynamo.1);
}

#[test]
fn a_node_sits_at_its_longest_path_and_cycles_still_lay_out() {
    // 0 → 1 → 2 → 3, 0 → 3 (a shortcut), 3 → 1 (a cycle), 2 → 2 (itself).
    let edges = [(0, 1), (1, 2), (2, 3), (0, 3), (3, 1), (2, 2)];
    let layout = layout(4, &edges);
    let x: Vec<f64> = layout.nodes.iter().map(|point| point.0).collect();
    assert!(x[0] < x[1] && x[1] < x[2] && x[2] < x[3], "{x:?}");
    // The shortcut passes a point in each layer between; the call to self
    // has no route; the back edge runs right to left.
    assert_eq!(layout.routes[3].len(), 4);
    assert!(layout.routes[5].is_empty());
    let back = &layout.routes[4];
    assert!(back.first().expect("route").0 > back.last().expect("route").0);
}

#[test]
fn sweeps_remove_crossings_an_initial_order_has() {
    // Layer 0: items 0, 1; layer 1: items 2, 3; 0 → 3 and 1 → 2 cross.
    let down = vec![vec![3], vec![2], vec![], vec![]];
    let up = vec![vec![], vec![], vec![1], vec![0]];
    let rows = vec![vec![0, 1], vec![2, 3]];
    let position = [0, 1, 0, 1];
    assert_eq!(crossings(&rows, &down, &position), 1);
    let ordered = order(rows, &up, &down, 4);
    let mut position = [0; 4];
    for row in &ordered {
        for (index, item) in row.iter().enumerate() {
            position[*item] = index;
        }
    }
    assert_eq!(crossings(&ordered, &down, &position), 0);
}

#[test]
fn the_same_graph_gives_the_same_page() {
    assert_eq!(map_page(&window(), &shop(), None), map_page(&window(), &shop(), None));
}

#[test]
fn nodes_show_type_average_latency_rate_and_status_shares() {
    let page = map_page(&window(), &shop(), None);
    // api: 120 requests of 50 ms in 10 minutes, 5 % faults.
    assert!(page.contains("<text class=\"latency\" y=\"-2\">50 ms</text><text class=\"rate\" y=\"12\">12/min</text>"));
    assert!(page.contains("<text class=\"kind\" y=\"64\">AWS::Lambda::Function</text>"));
    assert!(page.contains("<text class=\"kind\" y=\"64\">AWS::DynamoDB::Table · inferred</text>"));
    assert!(page.contains("<a class=\"node inferred\""));
    let circumference = 2.0 * std::f64::consts::PI * RING;
    assert!(page.contains(&format!(
        "<circle class=\"arc fault\" r=\"34\" transform=\"rotate(-90)\" stroke-dasharray=\"{:.2} {:.2}\" stroke-dashoffset=\"{:.2}\"/>",
        circumference * 0.05,
        circumference * 0.95,
        -circumference * 0.95
    )));
    // Edge labels: calls and average latency.
    assert!(page.contains(">40 · 12 ms</text>"));
    assert!(page.contains("<title>api → db: 40 calls, average 12 ms</title>"));
    assert!(page.contains("3 services · 3 edges"));
}

#[test]
fn the_selection_comes_from_the_url_with_statistics_histogram_and_a_link_to_traces() {
    let api = service("api", "AWS::Lambda::Function");
    let key = node_key(&api);
    let page = map_page(&window(), &shop(), Some(&key));
    assert!(page.contains(&format!("data-select=\"{key}\" aria-current=\"true\"")));
    assert!(
        page.contains(&format!("<section class=\"map-panel\" data-key=\"{key}\" aria-labelledby=\"title-{key}\">"))
    );
    assert!(page.contains("<section class=\"map-panel map-hint\" data-key=\"\" hidden>"));
    assert!(page.contains(
        "<dt>Requests</dt><dd>120 <span class=\"muted\">(12/min)</span></dd><dt>Average response time</dt><dd>50 ms</dd>"
    ));
    assert!(page.contains("<dt class=\"fault\">Faults (5xx)</dt><dd>6 (5%)</dd>"));
    assert!(page.contains("<h3>Response time</h3><svg class=\"chart\""));
    assert!(page.contains("<title>40 ms – 63 ms: 120 requests</title>"));
    let filter = r#"service(id(name: "api", type: "AWS::Lambda::Function"))"#;
    assert!(page.contains(&format!(
        "<a class=\"traces-link\" href=\"/traces?filter={}&amp;range=10m\">Traces through api</a>",
        query_component(filter)
    )));
    // The picker keeps the selection; other panels are there, hidden.
    assert!(page.contains(&format!("<a href=\"?select={key}&amp;range=1h\">1h</a>")));
    let db_key = node_key(&service("db", "AWS::EC2::Instance"));
    assert!(page.contains(&format!(
        "<section class=\"map-panel\" data-key=\"{db_key}\" aria-labelledby=\"title-{db_key}\" hidden>"
    )));
}

#[test]
fn edges_link_to_their_calls_and_the_clients_to_entries() {
    let api = service("api", "AWS::Lambda::Function");
    let db = service("db", "AWS::EC2::Instance");
    let page = map_page(&window(), &shop(), Some(&edge_key(&api, &db)));
    let calls = r#"edge(id(name: "api", type: "AWS::Lambda::Function"), id(name: "db", type: "AWS::EC2::Instance"))"#;
    assert!(page.contains(&format!(
        "href=\"/traces?filter={}&amp;range=10m\">Traces of these calls</a>",
        query_component(calls)
    )));
    let entries = r#"service(id(name: "api", type: "AWS::Lambda::Function")) { root }"#;
    assert!(page.contains(&format!(
        "href=\"/traces?filter={}&amp;range=10m\">Traces of these calls</a>",
        query_component(entries)
    )));
    assert!(page.contains("href=\"/traces?range=10m\">All traces</a>"));
    for text in [calls, entries] {
        filter::parse(text).expect("a valid filter");
    }
}

#[test]
fn quotes_and_backslashes_in_names_are_escaped_in_filters() {
    let odd = Node::Service {
        id: ServiceId { name: r#"say "hi" \o/"#.to_owned(), account_id: Some("123".to_owned()), kind: None },
        inferred: false,
    };
    let plain =
        Node::Service { id: ServiceId { name: "plain".to_owned(), account_id: None, kind: None }, inferred: false };
    let node = node_filter(&odd);
    assert_eq!(node, r#"service(id(name: "say \"hi\" \\o/", account.id: "123"))"#);
    let edge = edge_filter(&odd, &plain);
    assert_eq!(edge, r#"edge(id(name: "say \"hi\" \\o/", account.id: "123"), "plain")"#);
    for text in [&node, &edge] {
        let parsed = filter::parse(text).expect("a valid filter");
        assert!(parsed.to_string().contains(r#"say \"hi\" \\o/"#), "{parsed}");
    }
    let elements = BTreeMap::from([(Element::Node(odd.clone()), stats(1, 0, 0.1))]);
    let page = map_page(&window(), &elements, Some(&node_key(&odd)));
    assert!(page.contains(&format!("href=\"/traces?filter={}&amp;range=10m\"", query_component(&node))));
}

#[test]
fn markup_in_names_is_text() {
    let evil = service("<script>alert(1)</script>", "<b>type</b>");
    let elements = BTreeMap::from([
        (Element::Node(evil.clone()), stats(3, 1, 0.2)),
        (Element::Edge(Node::Client, evil.clone()), stats(3, 1, 0.2)),
    ]);
    let page = map_page(&window(), &elements, Some(&node_key(&evil)));
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<b>type"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;type&lt;/b&gt;"));
}

#[test]
fn a_selection_not_in_the_window_says_so() {
    let page = map_page(&window(), &shop(), Some("n0000000000000000"));
    assert!(page.contains(
        "<section class=\"map-panel\" data-key=\"n0000000000000000\"><p>What the link selects has no requests"
    ));
    assert!(page.contains("<section class=\"map-panel map-hint\" data-key=\"\" hidden>"));
}

#[test]
fn long_names_are_cut_on_the_map_and_whole_in_the_tooltip() {
    let long = "a-very-long-service-name-that-goes-on";
    let elements = BTreeMap::from([(Element::Node(service(long, "t")), stats(1, 0, 0.1))]);
    let page = map_page(&window(), &elements, None);
    assert!(page.contains(">a-very-long-service-name-…</text>"));
    assert!(page.contains(&format!("<title>{long} (t): 1 requests")));
}

#[test]
fn an_empty_graph_says_how_to_send_traces_and_keeps_the_picker() {
    let page = map_page(&window(), &BTreeMap::new(), None);
    assert!(page.contains("<h2>No traces in this time range</h2>"));
    assert!(page.contains("AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000"));
    assert!(page.contains("aws xray put-trace-segments --endpoint-url http://127.0.0.1:2000"));
    assert!(page.contains("<nav class=\"window\" aria-label=\"Time range\">"));
    assert!(!page.contains("<svg"));
}

#[test]
fn two_hundred_nodes_lay_out_in_layers_with_every_call_rightwards() {
    // A tree of 200 services, fan-out 3, plus cross calls and a few cycles.
    let nodes: Vec<Node> = (0..200).map(|index| service(&format!("s{index:03}"), "AWS::ECS::Container")).collect();
    let mut elements = BTreeMap::from([(Element::Edge(Node::Client, nodes[0].clone()), stats(10, 0, 0.1))]);
    for (index, node) in nodes.iter().enumerate() {
        elements.insert(Element::Node(node.clone()), stats(10, 1, 0.1));
        if index > 0 {
            elements.insert(Element::Edge(nodes[(index - 1) / 3].clone(), node.clone()), stats(10, 0, 0.1));
        }
        if index % 7 == 0 && index + 11 < nodes.len() {
            elements.insert(Element::Edge(node.clone(), nodes[index + 11].clone()), stats(1, 0, 0.1));
        }
        if index % 50 == 49 {
            elements.insert(Element::Edge(node.clone(), nodes[index / 10].clone()), stats(1, 0, 0.1));
        }
    }
    let graph = Graph::of(&elements);
    let pairs: Vec<(usize, usize)> = graph.edges.iter().map(|edge| (edge.from, edge.to)).collect();
    let layout = layout(graph.nodes.len(), &pairs);
    let (reversed, _) = break_cycles(graph.nodes.len(), &pairs);
    for ((from, to), reversed) in pairs.iter().zip(reversed) {
        let (source, target) = (layout.nodes[*from].0, layout.nodes[*to].0);
        assert!(if reversed { source > target } else { source < target }, "{from} → {to}");
    }
    let page = map_page(&window(), &elements, None);
    assert_eq!(page.matches("<a class=\"node").count(), 201);
}
