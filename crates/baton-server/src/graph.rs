//! The service-graph operations' botocore shapes (`GetServiceGraph`,
//! `GetTraceGraph`, `GetTimeSeriesServiceStatistics`) and their making
//! from graph statistics.

use std::collections::BTreeMap;

use baton_query::ServiceId;
use baton_query::filter::{Expr, ExprKind, ServiceSelector};
use baton_query::graph::{Element, Histogram, Node, Stats};
use serde::{Deserialize, Serialize};

use crate::xray::{GroupKey, Timestamp};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetServiceGraphRequest {
    pub(crate) start_time: Timestamp,
    pub(crate) end_time: Timestamp,
    #[serde(flatten)]
    pub(crate) group: GroupKey,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetServiceGraphResult {
    pub(crate) start_time: f64,
    pub(crate) end_time: f64,
    pub(crate) services: Vec<WireService>,
    pub(crate) contains_old_group_versions: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTraceGraphRequest {
    pub(crate) trace_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTraceGraphResult {
    pub(crate) services: Vec<WireService>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTimeSeriesServiceStatisticsRequest {
    pub(crate) start_time: Timestamp,
    pub(crate) end_time: Timestamp,
    #[serde(flatten)]
    pub(crate) group: GroupKey,
    pub(crate) entity_selector_expression: Option<String>,
    pub(crate) period: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetTimeSeriesServiceStatisticsResult {
    pub(crate) time_series_service_statistics: Vec<WireTimeSeries>,
    pub(crate) contains_old_group_versions: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTimeSeries {
    timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_summary_statistics: Option<WireStatistics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_summary_statistics: Option<WireStatistics>,
    response_time_histogram: Vec<WireHistogramEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireService {
    reference_id: usize,
    name: String,
    names: Vec<String>,
    root: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    state: &'static str,
    start_time: f64,
    end_time: f64,
    edges: Vec<WireEdge>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_statistics: Option<WireStatistics>,
    duration_histogram: Vec<WireHistogramEntry>,
    response_time_histogram: Vec<WireHistogramEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireEdge {
    reference_id: usize,
    start_time: f64,
    end_time: f64,
    summary_statistics: WireStatistics,
    response_time_histogram: Vec<WireHistogramEntry>,
    aliases: Vec<()>,
}

/// `ServiceStatistics` and `EdgeStatistics`, which have the same fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireStatistics {
    ok_count: i64,
    error_statistics: WireErrorStatistics,
    fault_statistics: WireFaultStatistics,
    total_count: i64,
    total_response_time: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireErrorStatistics {
    throttle_count: i64,
    other_count: i64,
    total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireFaultStatistics {
    other_count: i64,
    total_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireHistogramEntry {
    value: f64,
    count: i64,
}

impl From<&Stats> for WireStatistics {
    fn from(stats: &Stats) -> WireStatistics {
        WireStatistics {
            ok_count: stats.ok,
            error_statistics: WireErrorStatistics {
                throttle_count: stats.throttle,
                other_count: stats.error - stats.throttle,
                total_count: stats.error,
            },
            fault_statistics: WireFaultStatistics { other_count: stats.fault, total_count: stats.fault },
            total_count: stats.total,
            // Sums of many float durations: rounded to the microsecond.
            total_response_time: (stats.total_response_time * 1e6).round() / 1e6,
        }
    }
}

fn histogram(histogram: &Histogram) -> Vec<WireHistogramEntry> {
    histogram.entries().map(|(value, count)| WireHistogramEntry { value, count }).collect()
}

/// The client node, as X-Ray names it.
const CLIENT: &str = "client";

/// The `Services` of a graph: each node with its statistics and its edges
/// to the nodes it called. A node is a root when the client called it.
pub(crate) fn services(elements: &BTreeMap<Element, Stats>, (start, end): (f64, f64)) -> Vec<WireService> {
    let mut nodes: BTreeMap<&Node, usize> = BTreeMap::new();
    for element in elements.keys() {
        let ends = match element {
            Element::Node(node) => [Some(node), None],
            Element::Edge(from, to) => [Some(from), Some(to)],
        };
        for node in ends.into_iter().flatten() {
            let next = nodes.len();
            nodes.entry(node).or_insert(next);
        }
    }
    let mut services: Vec<(usize, WireService)> = nodes
        .iter()
        .map(|(node, reference_id)| {
            let (id, state) = match node {
                Node::Client => {
                    (ServiceId { name: CLIENT.to_owned(), account_id: None, kind: Some(CLIENT.to_owned()) }, "unknown")
                }
                Node::Service { id, inferred } => (id.clone(), if *inferred { "unknown" } else { "active" }),
            };
            let stats = elements.get(&Element::Node((*node).clone()));
            let service = WireService {
                reference_id: *reference_id,
                names: vec![id.name.clone()],
                name: id.name,
                root: elements.contains_key(&Element::Edge(Node::Client, (*node).clone())),
                account_id: id.account_id,
                kind: id.kind,
                state,
                start_time: start,
                end_time: end,
                edges: Vec::new(),
                summary_statistics: stats.map(WireStatistics::from),
                duration_histogram: stats.map(|stats| histogram(&stats.durations)).unwrap_or_default(),
                response_time_histogram: stats.map(|stats| histogram(&stats.response_times)).unwrap_or_default(),
            };
            (*reference_id, service)
        })
        .collect();
    services.sort_by_key(|(reference_id, _)| *reference_id);
    for (element, stats) in elements {
        if let Element::Edge(from, to) = element {
            services[nodes[from]].1.edges.push(WireEdge {
                reference_id: nodes[to],
                start_time: start,
                end_time: end,
                summary_statistics: WireStatistics::from(stats),
                response_time_histogram: histogram(&stats.response_times),
                aliases: Vec::new(),
            });
        }
    }
    services.into_iter().map(|(_, service)| service).collect()
}

/// What an entity selector expression (`service(…)` or `edge(…, …)`, no
/// braces) picks.
pub(crate) enum Selector {
    /// The requests entering the system: every edge from the client.
    Entry,
    /// The nodes the selector names.
    Service(ServiceSelector),
    /// The edges between the nodes the selectors name.
    Edge(ServiceSelector, ServiceSelector),
}

impl Selector {
    /// The selector of a parsed expression, if it is one.
    pub(crate) fn of(expr: Expr) -> Option<Selector> {
        match expr.kind {
            ExprKind::Service { service, filter: None } => Some(Selector::Service(service)),
            ExprKind::Edge { source, destination, filter: None } => Some(Selector::Edge(source, destination)),
            _ => None,
        }
    }

    /// One period's point: the selected statistics summed.
    pub(crate) fn point(&self, timestamp: f64, elements: &BTreeMap<Element, Stats>) -> WireTimeSeries {
        let mut sum = Stats::default();
        for (element, stats) in elements {
            let selected = match (self, element) {
                (Selector::Entry, Element::Edge(Node::Client, _)) => true,
                (Selector::Service(selector), Element::Node(node)) => names(selector, node),
                (Selector::Edge(from, to), Element::Edge(source, destination)) => {
                    names(from, source) && names(to, destination)
                }
                _ => false,
            };
            if selected {
                sum.merge(stats, 1);
            }
        }
        let statistics = WireStatistics::from(&sum);
        let (edge_summary_statistics, service_summary_statistics) =
            if matches!(self, Selector::Edge(..)) { (Some(statistics), None) } else { (None, Some(statistics)) };
        WireTimeSeries {
            timestamp,
            edge_summary_statistics,
            service_summary_statistics,
            response_time_histogram: histogram(&sum.response_times),
        }
    }
}

/// Whether the selector names the node (the client matches `"client"`).
fn names(selector: &ServiceSelector, node: &Node) -> bool {
    let (name, kind, account) = match node {
        Node::Client => (CLIENT, Some(CLIENT), None),
        Node::Service { id, .. } => (id.name.as_str(), id.kind.as_deref(), id.account_id.as_deref()),
    };
    selector.name.as_deref().is_none_or(|wanted| wanted == name)
        && selector.kind.as_deref().is_none_or(|wanted| Some(wanted) == kind)
        && selector.account_id.as_deref().is_none_or(|wanted| Some(wanted) == account)
}
