//! The service map (`/`): the service graph of a time window drawn as a
//! layered, left-to-right SVG, and a side panel with the statistics of the
//! selected node or edge.
//!
//! The layout is Sugiyama's, kept linear-ish so that hundreds of nodes draw
//! in milliseconds: cycles broken by a depth-first search, layers by the
//! longest path from a source, a point in every layer an edge crosses,
//! barycenter sweeps against crossings, and vertical positions pulled
//! towards neighbours by isotonic regression.
//!
//! A selection is a key in the URL (`select=n…` for a node, `e…` for an
//! edge): a hash of the element's identity, so that it stays valid across
//! time windows and fits in element ids. Every panel is in the page; the
//! server shows the selected one, the script switches between them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use baton_query::ServiceId;
use baton_query::graph::{Element, Node, Stats};

use crate::html::{escape, query_component};
use crate::page::{self, View};
use crate::traces::{SENDING_HELP, chart, count_text, distribution, number_text, quoted, seconds_text, traces_href};
use crate::window::TimeWindow;

/// The service map of `elements`, the graph's statistics over `window`,
/// with the panel of `selected` (the URL's `select` key) open.
pub fn map_page(window: &TimeWindow, elements: &BTreeMap<Element, Stats>, selected: Option<&str>) -> String {
    let selected = selected.filter(|key| !key.is_empty());
    let carried = selected.map_or_else(String::new, |key| format!("select={}", query_component(key)));
    let body = if elements.is_empty() {
        format!("<div class=\"empty\"><h2>No traces in this time range</h2>{SENDING_HELP}</div>")
    } else {
        map_body(window, &Graph::of(elements), selected)
    };
    page::render("Service map", View::Map, Some(window), &carried, &body)
}

/// The radius of a node's face, pixels.
const RADIUS: f64 = 30.0;
/// The radius of the ring of status shares around it.
const RING: f64 = RADIUS + 4.0;
/// How far apart layers are.
const LAYER_GAP: f64 = 200.0;
/// Room left of the first layer and right of the last, for labels.
const SIDE_MARGIN: f64 = 100.0;
/// Room above and below the drawing.
const TOP_MARGIN: f64 = 16.0;
/// The least space between two items of a layer.
const PADDING: f64 = 14.0;
/// The longest name drawn whole; longer ones are cut (the tooltip and the
/// panel have them in full).
const NAME_CHARS: usize = 26;
/// How far apart the ends of routes meeting a node's side are, at most.
const PORT_GAP: f64 = 8.0;
/// How much of a node's side the ends of its routes spread over.
const PORT_SPAN: f64 = RING;
/// Barycenter sweeps, alternately down and up the layers.
const SWEEPS: usize = 8;
/// Rounds of vertical alignment, each up then down the layers.
const ALIGN_ROUNDS: usize = 4;

/// The graph of the statistics, nodes indexed in their order.
struct Graph<'a> {
    nodes: Vec<&'a Node>,
    /// Each node's statistics: its own, else those of the calls to it (the
    /// client's: of its calls).
    node_stats: Vec<Stats>,
    edges: Vec<Edge<'a>>,
}

struct Edge<'a> {
    from: usize,
    to: usize,
    stats: &'a Stats,
}

impl<'a> Graph<'a> {
    fn of(elements: &'a BTreeMap<Element, Stats>) -> Graph<'a> {
        let mut set: BTreeSet<&Node> = BTreeSet::new();
        for element in elements.keys() {
            match element {
                Element::Node(node) => {
                    set.insert(node);
                }
                Element::Edge(from, to) => {
                    set.insert(from);
                    set.insert(to);
                }
            }
        }
        let index: BTreeMap<&Node, usize> = set.iter().enumerate().map(|(index, node)| (*node, index)).collect();
        let mut own: Vec<Option<Stats>> = vec![None; set.len()];
        let mut derived = vec![Stats::default(); set.len()];
        let mut edges = Vec::new();
        for (element, stats) in elements {
            match element {
                Element::Node(node) => own[index[node]] = Some(stats.clone()),
                Element::Edge(from_node, to_node) => {
                    let (from, to) = (index[from_node], index[to_node]);
                    if matches!(from_node, Node::Client) {
                        derived[from].merge(stats, 1);
                    }
                    derived[to].merge(stats, 1);
                    edges.push(Edge { from, to, stats });
                }
            }
        }
        let node_stats = own.into_iter().zip(derived).map(|(own, derived)| own.unwrap_or(derived)).collect();
        Graph { nodes: set.into_iter().collect(), node_stats, edges }
    }
}

/// FNV-1a: a hash that is the same in every build, for keys in URLs.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn node_hash(node: &Node) -> u64 {
    match node {
        Node::Client => fnv(FNV_OFFSET, b"client"),
        Node::Service { id, inferred } => {
            let mut hash = fnv(FNV_OFFSET, b"service");
            // Length-prefixed, so that no two identities write the same bytes.
            for field in [Some(&id.name), id.kind.as_ref(), id.account_id.as_ref()] {
                match field {
                    Some(text) => {
                        hash = fnv(hash, &[1]);
                        hash = fnv(hash, &(text.len() as u64).to_le_bytes());
                        hash = fnv(hash, text.as_bytes());
                    }
                    None => hash = fnv(hash, &[0]),
                }
            }
            fnv(hash, &[u8::from(*inferred)])
        }
    }
}

/// A node's `select` key.
fn node_key(node: &Node) -> String {
    format!("n{:016x}", node_hash(node))
}

/// An edge's `select` key.
fn edge_key(from: &Node, to: &Node) -> String {
    let hash = fnv(fnv(fnv(FNV_OFFSET, b"edge"), &node_hash(from).to_le_bytes()), &node_hash(to).to_le_bytes());
    format!("e{hash:016x}")
}

/// A node's name as shown.
fn name_of(node: &Node) -> &str {
    match node {
        Node::Client => "Client",
        Node::Service { id, .. } => &id.name,
    }
}

/// A node's type as shown, inferred nodes marked.
fn kind_of(node: &Node) -> String {
    match node {
        Node::Client => "client".to_owned(),
        Node::Service { id, inferred } => {
            let kind = id.kind.as_deref().unwrap_or("no type");
            if *inferred { format!("{kind} · inferred") } else { kind.to_owned() }
        }
    }
}

/// A service as a filter's node: its quoted name, or `id(…)` when it has
/// a type or an account.
fn selector(id: &ServiceId) -> String {
    if id.kind.is_none() && id.account_id.is_none() {
        return quoted(&id.name);
    }
    let mut text = format!("id(name: {}", quoted(&id.name));
    if let Some(kind) = &id.kind {
        let _ = write!(text, ", type: {}", quoted(kind));
    }
    if let Some(account) = &id.account_id {
        let _ = write!(text, ", account.id: {}", quoted(account));
    }
    text.push(')');
    text
}

/// The filter of the traces through a node; none for the client, whose
/// traces are all of them.
fn node_filter(node: &Node) -> String {
    match node {
        Node::Client => String::new(),
        Node::Service { id, .. } => format!("service({})", selector(id)),
    }
}

/// The filter of the traces with a call on an edge: a call from the client
/// is the trace's entry; no call goes to the client.
fn edge_filter(from: &Node, to: &Node) -> String {
    match (from, to) {
        (_, Node::Client) => String::new(),
        (Node::Client, Node::Service { id, .. }) => format!("service({}) {{ root }}", selector(id)),
        (Node::Service { id: from, .. }, Node::Service { id: to, .. }) => {
            format!("edge({}, {})", selector(from), selector(to))
        }
    }
}

/// Average response time as X-Ray's map gives it: over every request,
/// unfinished ones included.
fn average(stats: &Stats) -> Option<f64> {
    (stats.total > 0).then(|| stats.total_response_time / stats.total as f64)
}

fn map_body(window: &TimeWindow, graph: &Graph<'_>, selected: Option<&str>) -> String {
    let window_query = window.query();
    let select_href = |key: &str| {
        if key.is_empty() { format!("?{window_query}") } else { format!("?{window_query}&select={key}") }
    };
    let node_keys: Vec<String> = graph.nodes.iter().map(|node| node_key(node)).collect();
    let edge_keys: Vec<String> =
        graph.edges.iter().map(|edge| edge_key(graph.nodes[edge.from], graph.nodes[edge.to])).collect();
    let svg = drawing(graph, Some(window.minutes()), &select_href, selected);

    let mut panels = String::with_capacity(graph.nodes.len() * 2048 + graph.edges.len() * 2048);
    let known = node_keys.iter().chain(&edge_keys).any(|key| selected == Some(key.as_str()));
    let hidden = |key: &str| if selected.unwrap_or("") == key { "" } else { " hidden" };
    let _ = write!(
        panels,
        "<section class=\"map-panel map-hint\" data-key=\"\"{}><p>Select a node or an edge to see its statistics.</p></section>",
        if selected.is_none() { "" } else { " hidden" }
    );
    if let Some(key) = selected.filter(|_| !known) {
        let _ = write!(
            panels,
            concat!(
                "<section class=\"map-panel\" data-key=\"{}\"><p>What the link selects has no requests in this ",
                "time range.</p></section>"
            ),
            escape(key)
        );
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        let key = &node_keys[index];
        let link = match node {
            Node::Client => "All traces".to_owned(),
            Node::Service { id, .. } => format!("Traces through {}", id.name),
        };
        let href = traces_href(&node_filter(node), &window_query, None);
        panel(
            &mut panels,
            PanelText {
                key,
                hidden: hidden(key),
                title: name_of(node),
                kind: &kind_of(node),
                link: &link,
                href: &href,
            },
            &graph.node_stats[index],
            window,
            &select_href(""),
        );
    }
    for (index, edge) in graph.edges.iter().enumerate() {
        let key = &edge_keys[index];
        let (from, to) = (graph.nodes[edge.from], graph.nodes[edge.to]);
        let title = format!("{} → {}", name_of(from), name_of(to));
        let href = traces_href(&edge_filter(from, to), &window_query, None);
        panel(
            &mut panels,
            PanelText {
                key,
                hidden: hidden(key),
                title: &title,
                kind: &format!("{} → {}", kind_of(from), kind_of(to)),
                link: "Traces of these calls",
                href: &href,
            },
            edge.stats,
            window,
            &select_href(""),
        );
    }

    let services = graph.nodes.iter().filter(|node| !matches!(node, Node::Client)).count();
    format!(
        concat!(
            "<div class=\"map\" id=\"map\"><div class=\"map-main\"><p class=\"map-summary\">{services} services · ",
            "{edges} edges <span class=\"legend\"><span class=\"ok\">ok</span> <span class=\"error\">error</span> ",
            "<span class=\"throttle\">throttle</span> <span class=\"fault\">fault</span></span></p>",
            "<div class=\"map-canvas\">{svg}</div></div><aside class=\"map-panels\" aria-live=\"polite\">{panels}</aside></div>"
        ),
        services = count_text(services as i64),
        edges = count_text(graph.edges.len() as i64),
        svg = svg,
        panels = panels,
    )
}

/// The graph as SVG: each node and edge a link to `href` of its key, the
/// `selected` one marked; rates per minute over `minutes`, or counts of
/// requests without.
fn drawing(graph: &Graph<'_>, minutes: Option<f64>, href: &dyn Fn(&str) -> String, selected: Option<&str>) -> String {
    let pairs: Vec<(usize, usize)> = graph.edges.iter().map(|edge| (edge.from, edge.to)).collect();
    let layout = layout(graph.nodes.len(), &pairs);
    let node_keys: Vec<String> = graph.nodes.iter().map(|node| node_key(node)).collect();
    let edge_keys: Vec<String> =
        graph.edges.iter().map(|edge| edge_key(graph.nodes[edge.from], graph.nodes[edge.to])).collect();
    let current = |key: &str| if selected == Some(key) { " aria-current=\"true\"" } else { "" };

    let mut svg = String::with_capacity(2048 + graph.nodes.len() * 1200 + graph.edges.len() * 600);
    let _ = write!(
        svg,
        concat!(
            "<svg class=\"graph\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" ",
            "role=\"group\" aria-label=\"Service map\"><defs>",
            "<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" ",
            "orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/></marker>",
            "<marker id=\"arrow-on\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" ",
            "orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/></marker></defs>"
        ),
        w = layout.width,
        h = layout.height,
    );
    // Edges first, so that nodes are drawn over them.
    for (index, edge) in graph.edges.iter().enumerate() {
        let (from, to) = (graph.nodes[edge.from], graph.nodes[edge.to]);
        let (path, (label_x, label_y)) = match layout.routes[index].as_slice() {
            [] => self_loop(layout.nodes[edge.from]),
            route => curve(route, layout.ports[index]),
        };
        let average = average(edge.stats);
        let title = format!(
            "{} → {}: {} calls{}",
            name_of(from),
            name_of(to),
            count_text(edge.stats.total),
            average.map_or_else(String::new, |average| format!(", average {}", seconds_text(average)))
        );
        let label = match average {
            Some(average) => format!("{} · {}", count_text(edge.stats.total), seconds_text(average)),
            None => count_text(edge.stats.total),
        };
        let key = &edge_keys[index];
        let _ = write!(
            svg,
            concat!(
                "<a class=\"edge\" href=\"{href}\" data-select=\"{key}\"{current}><title>{title}</title>",
                "<path class=\"hit\" d=\"{path}\"/><path class=\"line\" d=\"{path}\"/>",
                "<text class=\"edge-label\" x=\"{x:.1}\" y=\"{y:.1}\">{label}</text></a>"
            ),
            href = escape(&href(key)),
            key = key,
            current = current(key),
            title = escape(&title),
            path = path,
            x = label_x,
            y = label_y - 4.0,
            label = label,
        );
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        let stats = &graph.node_stats[index];
        let (x, y) = layout.nodes[index];
        let name = name_of(node);
        let kind = kind_of(node);
        let latency = average(stats).map_or_else(|| "—".to_owned(), seconds_text);
        let rate = match minutes {
            Some(minutes) => format!("{}/min", number_text(stats.total as f64 / minutes)),
            None => format!("{} req", count_text(stats.total)),
        };
        let class = match node {
            Node::Client => "node client",
            Node::Service { inferred: true, .. } => "node inferred",
            Node::Service { .. } => "node",
        };
        let shown: String = if name.chars().count() > NAME_CHARS {
            name.chars().take(NAME_CHARS - 1).chain(['…']).collect()
        } else {
            name.to_owned()
        };
        let key = &node_keys[index];
        let _ = write!(
            svg,
            concat!(
                "<a class=\"{class}\" href=\"{href}\" data-select=\"{key}\"{current}>",
                "<title>{name} ({kind}): {requests} requests, average {latency}, {rate}</title>",
                "<g transform=\"translate({x:.1} {y:.1})\"><circle class=\"face\" r=\"{radius}\"/>",
                "<circle class=\"track\" r=\"{ring}\"/>{arcs}",
                "<text class=\"latency\" y=\"-2\">{latency}</text><text class=\"rate\" y=\"12\">{rate}</text>",
                "<text class=\"name\" y=\"{name_y}\">{shown}</text><text class=\"kind\" y=\"{kind_y}\">{kind}</text>",
                "</g></a>"
            ),
            class = class,
            href = escape(&href(key)),
            key = key,
            current = current(key),
            name = escape(name),
            kind = escape(&kind),
            requests = count_text(stats.total),
            latency = latency,
            rate = rate,
            x = x,
            y = y,
            radius = RADIUS,
            ring = RING,
            arcs = arcs(stats),
            name_y = RING + 16.0,
            kind_y = RING + 30.0,
            shown = escape(&shown),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A small map of one trace's services, each linking to its place on the
/// service map of the last hour.
pub(crate) fn trace_map(elements: &BTreeMap<Element, Stats>) -> String {
    let graph = Graph::of(elements);
    let href = |key: &str| format!("/?range=1h&select={key}");
    drawing(&graph, None, &href, None)
}

/// What a panel says, besides the statistics.
struct PanelText<'a> {
    key: &'a str,
    hidden: &'a str,
    title: &'a str,
    kind: &'a str,
    link: &'a str,
    href: &'a str,
}

/// The panel of one node or edge.
fn panel(panels: &mut String, text: PanelText<'_>, stats: &Stats, window: &TimeWindow, close_href: &str) {
    let share = |count: i64| {
        if stats.total > 0 {
            format!(" ({}%)", number_text(count as f64 * 100.0 / stats.total as f64))
        } else {
            String::new()
        }
    };
    let _ = write!(
        panels,
        concat!(
            "<section class=\"map-panel\" data-key=\"{key}\" aria-labelledby=\"title-{key}\"{hidden}>",
            "<header><h2 id=\"title-{key}\">{title}</h2>",
            "<a class=\"close\" href=\"{close}\" data-select=\"\" aria-label=\"Close\">×</a></header>",
            "<p class=\"kind\">{kind}</p><dl class=\"stats\">",
            "<dt>Requests</dt><dd>{total} <span class=\"muted\">({rate}/min)</span></dd>",
            "<dt>Average response time</dt><dd>{average}</dd>",
            "<dt class=\"ok\">OK</dt><dd>{ok}{ok_share}</dd>",
            "<dt class=\"error\">Errors (4xx)</dt><dd>{error}{error_share}</dd>",
            "<dt class=\"throttle\">Throttled (429)</dt><dd>{throttle}{throttle_share}</dd>",
            "<dt class=\"fault\">Faults (5xx)</dt><dd>{fault}{fault_share}</dd></dl>"
        ),
        key = text.key,
        hidden = text.hidden,
        title = escape(text.title),
        close = escape(close_href),
        kind = escape(text.kind),
        total = count_text(stats.total),
        rate = number_text(stats.total as f64 / window.minutes()),
        average = average(stats).map_or_else(|| "—".to_owned(), seconds_text),
        ok = count_text(stats.ok),
        ok_share = share(stats.ok),
        error = count_text(stats.error - stats.throttle),
        error_share = share(stats.error - stats.throttle),
        throttle = count_text(stats.throttle),
        throttle_share = share(stats.throttle),
        fault = count_text(stats.fault),
        fault_share = share(stats.fault),
    );
    let buckets = distribution(stats.response_times.entries());
    if !buckets.is_empty() {
        panels.push_str("<h3>Response time</h3>");
        panels.push_str(&chart(&buckets, "requests", 300, |_| None));
    }
    let _ = write!(
        panels,
        "<p><a class=\"traces-link\" href=\"{}\">{}</a></p></section>",
        escape(text.href),
        escape(text.link)
    );
}

/// The ring of status shares: an arc per status, clockwise from the top.
fn arcs(stats: &Stats) -> String {
    if stats.total <= 0 {
        return String::new();
    }
    let circumference = 2.0 * std::f64::consts::PI * RING;
    let mut arcs = String::new();
    let mut offset = 0.0;
    for (class, count) in [
        ("ok", stats.ok),
        ("error", stats.error - stats.throttle),
        ("throttle", stats.throttle),
        ("fault", stats.fault),
    ] {
        if count <= 0 {
            continue;
        }
        let length = count as f64 / stats.total as f64 * circumference;
        let _ = write!(
            arcs,
            concat!(
                "<circle class=\"arc {class}\" r=\"{ring}\" transform=\"rotate(-90)\" ",
                "stroke-dasharray=\"{length:.2} {rest:.2}\" stroke-dashoffset=\"{offset:.2}\"/>"
            ),
            class = class,
            ring = RING,
            length = length,
            rest = circumference - length,
            offset = -offset,
        );
        offset += length;
    }
    arcs
}

/// An SVG path through `route` (centres of nodes at its ends), leaving and
/// entering nodes on their rings at the heights `ports` give, and where its
/// label goes.
fn curve(route: &[Point], (leave, enter): (f64, f64)) -> (String, Point) {
    let mut points = route.to_vec();
    let last = points.len() - 1;
    let towards = |from: Point, to: Point| if to.0 >= from.0 { 1.0 } else { -1.0 };
    let out = towards(points[0], points[1]);
    points[0].0 += out * (RING * RING - leave * leave).sqrt();
    points[0].1 += leave;
    // Short of the target by the arrowhead.
    let inward = towards(points[last - 1], points[last]);
    let reach = RING + 3.0;
    points[last].0 -= inward * (reach * reach - enter * enter).sqrt();
    points[last].1 += enter;
    let mut path = format!("M{:.1},{:.1}", points[0].0, points[0].1);
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let handle = (x1 - x0) / 2.0;
        let _ = write!(path, "C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}", x0 + handle, x1 - handle);
    }
    // The middle of the route: a point of it, or the middle of a segment
    // (where a curve with level ends crosses the chord's midpoint).
    let segments = points.len() - 1;
    let label = if segments.is_multiple_of(2) {
        points[segments / 2]
    } else {
        let (a, b) = (points[segments / 2], points[segments / 2 + 1]);
        ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
    };
    (path, label)
}

/// A node's call to itself: a loop over it, and where its label goes.
fn self_loop((x, y): Point) -> (String, Point) {
    let top = y - RING;
    let path = format!(
        "M{:.1},{top:.1}C{:.1},{:.1} {:.1},{:.1} {:.1},{top:.1}",
        x + 12.0,
        x + 36.0,
        top - 44.0,
        x - 36.0,
        top - 44.0,
        x - 12.0
    );
    (path, (x, top - 34.0))
}

type Point = (f64, f64);

/// Where the graph is drawn.
#[derive(Debug)]
struct Layout {
    /// Each node's centre.
    nodes: Vec<Point>,
    /// Each edge's route from its source to its target: the nodes' centres
    /// and a point in each layer between; empty for a node's call to itself.
    routes: Vec<Vec<Point>>,
    /// Each route's vertical offsets where it leaves and enters its nodes.
    ports: Vec<(f64, f64)>,
    width: f64,
    height: f64,
}

/// Lays out `node_count` nodes and the `edges` between them, node 0 (the
/// client, when there is one: it sorts first) in the first layer.
fn layout(node_count: usize, edges: &[(usize, usize)]) -> Layout {
    let (reversed, discovery) = break_cycles(node_count, edges);
    // The edges as the layers see them: pointing right, calls to self aside.
    let forward: Vec<Option<(usize, usize)>> = edges
        .iter()
        .zip(&reversed)
        .map(|(&(from, to), &reversed)| (from != to).then_some(if reversed { (to, from) } else { (from, to) }))
        .collect();
    let node_layer = longest_paths(node_count, &forward);

    // Items: the nodes, then a point for each layer an edge passes.
    let mut layer = node_layer.clone();
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(edges.len());
    for pair in &forward {
        let Some((from, to)) = *pair else {
            chains.push(Vec::new());
            continue;
        };
        let mut chain = vec![from];
        for between in node_layer[from] + 1..node_layer[to] {
            layer.push(between);
            up.push(Vec::new());
            down.push(Vec::new());
            chain.push(layer.len() - 1);
        }
        chain.push(to);
        for link in chain.windows(2) {
            down[link[0]].push(link[1]);
            up[link[1]].push(link[0]);
        }
        chains.push(chain);
    }
    let layer_count = layer.iter().max().map_or(0, |last| last + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for node in discovery {
        rows[layer[node]].push(node);
    }
    for item in node_count..layer.len() {
        rows[layer[item]].push(item);
    }
    let rows = order(rows, &up, &down, layer.len());

    let loops: BTreeSet<usize> = edges.iter().filter(|(from, to)| from == to).map(|(node, _)| *node).collect();
    let extent = |item: usize| -> (f64, f64) {
        match (item < node_count, loops.contains(&item)) {
            (true, true) => (RING + 50.0, RING + 36.0),
            (true, false) => (RING + 4.0, RING + 36.0),
            (false, _) => (6.0, 6.0),
        }
    };
    let y = positions(&rows, &up, &down, layer.len(), &extent);
    let top = rows.iter().flatten().map(|item| y[*item] - extent(*item).0).fold(f64::INFINITY, f64::min);
    let bottom = rows.iter().flatten().map(|item| y[*item] + extent(*item).1).fold(f64::NEG_INFINITY, f64::max);
    let shift = TOP_MARGIN - top;
    let point = |item: usize| (SIDE_MARGIN + layer[item] as f64 * LAYER_GAP, y[item] + shift);

    let routes: Vec<Vec<Point>> = chains
        .iter()
        .zip(&reversed)
        .map(|(chain, &reversed)| {
            let mut route: Vec<Point> = chain.iter().map(|item| point(*item)).collect();
            if reversed {
                route.reverse();
            }
            route
        })
        .collect();
    Layout {
        nodes: (0..node_count).map(point).collect(),
        ports: ports(&routes, edges),
        routes,
        width: 2.0 * SIDE_MARGIN + layer_count.saturating_sub(1) as f64 * LAYER_GAP,
        height: (bottom - top) + 2.0 * TOP_MARGIN,
    }
}

/// Spreads the ends of the routes meeting each side of a node, ordered by
/// where they come from, so that they neither meet in a point nor cross
/// there.
fn ports(routes: &[Vec<Point>], edges: &[(usize, usize)]) -> Vec<(f64, f64)> {
    struct End {
        node: usize,
        right: bool,
        /// The height of the route's next point away from the node.
        towards: f64,
        route: usize,
        last: bool,
    }
    let mut ends = Vec::with_capacity(2 * routes.len());
    for (index, (route, &(from, to))) in routes.iter().zip(edges).enumerate() {
        let (Some(&[first, second]), Some(&[before, last])) = (route.first_chunk(), route.last_chunk()) else {
            continue;
        };
        ends.push(End { node: from, right: second.0 > first.0, towards: second.1, route: index, last: false });
        ends.push(End { node: to, right: before.0 > last.0, towards: before.1, route: index, last: true });
    }
    ends.sort_by(|a, b| {
        (a.node, a.right)
            .cmp(&(b.node, b.right))
            .then(a.towards.total_cmp(&b.towards))
            .then((a.route, a.last).cmp(&(b.route, b.last)))
    });
    let mut ports = vec![(0.0, 0.0); routes.len()];
    for side in ends.chunk_by(|a, b| (a.node, a.right) == (b.node, b.right)) {
        let spacing = if side.len() > 1 { (PORT_SPAN / (side.len() - 1) as f64).min(PORT_GAP) } else { 0.0 };
        let middle = (side.len() - 1) as f64 / 2.0;
        for (rank, end) in side.iter().enumerate() {
            let offset = (rank as f64 - middle) * spacing;
            if end.last {
                ports[end.route].1 = offset;
            } else {
                ports[end.route].0 = offset;
            }
        }
    }
    ports
}

/// A depth-first search from the sources (node 0 first), then from any node
/// left: which edges point back to a node on the search's path (reversing
/// them leaves no cycle), and the order nodes were found in.
fn break_cycles(node_count: usize, edges: &[(usize, usize)]) -> (Vec<bool>, Vec<usize>) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    let mut called = vec![false; node_count];
    for (index, &(from, to)) in edges.iter().enumerate() {
        if from != to {
            outgoing[from].push(index);
            called[to] = true;
        }
    }
    let mut state = vec![State::New; node_count];
    let mut reversed = vec![false; edges.len()];
    let mut discovery = Vec::with_capacity(node_count);
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in (0..node_count).filter(|node| !called[*node]).chain(0..node_count) {
        if state[root] != State::New {
            continue;
        }
        state[root] = State::Open;
        discovery.push(root);
        stack.push((root, 0));
        while let Some((node, next)) = stack.last_mut() {
            let Some(&edge) = outgoing[*node].get(*next) else {
                state[*node] = State::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            let to = edges[edge].1;
            match state[to] {
                State::New => {
                    state[to] = State::Open;
                    discovery.push(to);
                    stack.push((to, 0));
                }
                State::Open => reversed[edge] = true,
                State::Done => {}
            }
        }
    }
    (reversed, discovery)
}

/// Each node's layer: the longest path to it from a node nothing calls.
fn longest_paths(node_count: usize, edges: &[Option<(usize, usize)>]) -> Vec<usize> {
    let mut incoming = vec![0usize; node_count];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    for (from, to) in edges.iter().flatten() {
        incoming[*to] += 1;
        outgoing[*from].push(*to);
    }
    let mut ready: Vec<usize> = (0..node_count).filter(|node| incoming[*node] == 0).collect();
    let mut layer = vec![0; node_count];
    while let Some(node) = ready.pop() {
        for &to in &outgoing[node] {
            layer[to] = layer[to].max(layer[node] + 1);
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push(to);
            }
        }
    }
    layer
}

/// Orders the items of each layer by barycenter sweeps, keeping the order
/// with the fewest crossings seen.
fn order(mut rows: Vec<Vec<usize>>, up: &[Vec<usize>], down: &[Vec<usize>], items: usize) -> Vec<Vec<usize>> {
    let mut position = vec![0usize; items];
    for row in &rows {
        for (index, item) in row.iter().enumerate() {
            position[*item] = index;
        }
    }
    let mut best = rows.clone();
    let mut fewest = crossings(&rows, down, &position);
    for sweep in 0..SWEEPS {
        if fewest == 0 {
            break;
        }
        if sweep % 2 == 0 {
            for row in rows.iter_mut().skip(1) {
                by_barycenter(row, up, &mut position);
            }
        } else {
            for row in rows.iter_mut().rev().skip(1) {
                by_barycenter(row, down, &mut position);
            }
        }
        let count = crossings(&rows, down, &position);
        if count < fewest {
            fewest = count;
            best = rows.clone();
        }
    }
    best
}

/// Sorts `row` by the mean position of each item's `neighbours`; an item
/// without any keeps its place.
fn by_barycenter(row: &mut [usize], neighbours: &[Vec<usize>], position: &mut [usize]) {
    let mut keyed: Vec<(f64, usize, usize)> = row
        .iter()
        .map(|&item| {
            let around = &neighbours[item];
            let center = if around.is_empty() {
                position[item] as f64
            } else {
                around.iter().map(|other| position[*other] as f64).sum::<f64>() / around.len() as f64
            };
            (center, position[item], item)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (index, (_, _, item)) in keyed.into_iter().enumerate() {
        row[index] = item;
        position[item] = index;
    }
}

/// How many pairs of links between adjacent layers cross: inversions
/// counted with a Fenwick tree, O(links · log items) a layer.
fn crossings(rows: &[Vec<usize>], down: &[Vec<usize>], position: &[usize]) -> usize {
    let mut total = 0;
    for pair in rows.windows(2) {
        let mut links: Vec<(usize, usize)> = pair[0]
            .iter()
            .flat_map(|&item| down[item].iter().map(move |&below| (position[item], position[below])))
            .collect();
        links.sort_unstable();
        let mut tree = vec![0usize; pair[1].len() + 1];
        for (seen, &(_, lower)) in links.iter().enumerate() {
            // Links seen so far that end at or left of `lower` do not cross.
            let mut at_or_left = 0;
            let mut index = lower + 1;
            while index > 0 {
                at_or_left += tree[index];
                index &= index - 1;
            }
            total += seen - at_or_left;
            let mut index = lower + 1;
            while index < tree.len() {
                tree[index] += 1;
                index += index & index.wrapping_neg();
            }
        }
    }
    total
}

/// Vertical positions: stacked, then each layer pulled towards the mean of
/// its neighbours' positions, in order and apart by their extents.
fn positions(
    rows: &[Vec<usize>],
    up: &[Vec<usize>],
    down: &[Vec<usize>],
    items: usize,
    extent: &impl Fn(usize) -> (f64, f64),
) -> Vec<f64> {
    let mut y = vec![0.0; items];
    for row in rows {
        let mut next = 0.0;
        for &item in row {
            let (above, below) = extent(item);
            y[item] = next + above;
            next = y[item] + below + PADDING;
        }
    }
    for _ in 0..ALIGN_ROUNDS {
        for row in rows.iter().rev() {
            align(row, down, &mut y, extent);
        }
        for row in rows {
            align(row, up, &mut y, extent);
        }
    }
    y
}

/// Moves `row`'s items as near their neighbours' mean as their order and
/// spacing allow (least squares: pool-adjacent-violators on positions less
/// the spacing before each item).
fn align(row: &[usize], neighbours: &[Vec<usize>], y: &mut [f64], extent: &impl Fn(usize) -> (f64, f64)) {
    let mut offsets = Vec::with_capacity(row.len());
    let mut offset = 0.0;
    for (index, &item) in row.iter().enumerate() {
        if index > 0 {
            offset += extent(row[index - 1]).1 + PADDING + extent(item).0;
        }
        offsets.push(offset);
    }
    // Blocks of (sum of targets, count), each block's mean ascending.
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(row.len());
    for (&item, offset) in row.iter().zip(&offsets) {
        let around = &neighbours[item];
        let wanted = if around.is_empty() {
            y[item]
        } else {
            around.iter().map(|other| y[*other]).sum::<f64>() / around.len() as f64
        };
        blocks.push((wanted - offset, 1));
        while let [.., (sum_a, count_a), (sum_b, count_b)] = blocks[..] {
            if sum_a / count_a as f64 <= sum_b / count_b as f64 {
                break;
            }
            blocks.pop();
            let merged = blocks.last_mut().expect("two blocks were there");
            *merged = (sum_a + sum_b, count_a + count_b);
        }
    }
    let mut index = 0;
    for (sum, count) in blocks {
        let level = sum / count as f64;
        for _ in 0..count {
            y[row[index]] = level + offsets[index];
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests;
