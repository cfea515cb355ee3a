//! Root causes: for a trace's faults, errors and response time, the path of
//! services and entities (segments and subsegments) that leads to where the
//! problem started, as X-Ray's `FaultRootCauses`, `ErrorRootCauses` and
//! `ResponseTimeRootCauses` give it.
//!
//! The entities of a trace form a tree: an embedded subsegment hangs under
//! the entity that encloses it, a document under its `parent_id`, which may
//! name an embedded subsegment of another document (a call the document
//! answers). A subsegment also sent on its own is one entity: a complete
//! copy wins over one in progress, else the document over an embedded copy,
//! else the copy in the earliest document, so that the tree does not depend
//! on which copy arrived first.
//!
//! A *service* starts at a segment and holds the entities under it down to
//! the next segment. A document whose parent is not in the trace starts one
//! too, named after itself: a Lambda function's subsegments hang under a
//! facade segment that is never sent, and they still need a service to be
//! listed under. A call (an `aws` or `remote` subsegment) that no segment
//! answers stands for the *inferred* service it called, named as the trace
//! summary names it.
//!
//! A fault (or error) is followed downward, because the entity that reports
//! it is often only passing on a child's: a flagged entity with a flagged
//! child is not a root cause, one without is (a *leaf*). Each leaf gives one
//! root cause, listing the services from the top of its chain of flagged
//! entities down to the leaf's; each service's entity path runs from its
//! segment to the entity that leads to the next service (or to the leaf).
//! The exceptions are put on the path's last entity: the leaf's own, or, when
//! it recorded none, the nearest ones above it, since an SDK often records
//! the exception where it was caught rather than where it was raised. A
//! fault deep down that the entry document does not report was handled on
//! the way up: it is listed, with `client_impacting` false.
//!
//! The response time's root cause follows the longest complete child from
//! the entry document down, since that is where the time went; each entity's
//! `coverage` is its share of the trace's response time, rounded to three
//! decimals (X-Ray's console shows percentages).
//!
//! Results are bounded, whatever the input: a chain is followed at most
//! [`MAX_DEPTH`] entities down (the entity reached there is taken as the
//! leaf), and at most [`MAX_ROOT_CAUSES`] distinct root causes of each kind
//! are kept, in the order of the start of their chain's top entity.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use baton_model::{DocumentKind, Entity, Exception, Namespace, SegmentId, SegmentInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ServiceId;
use crate::summary::{inferred_service, service_of};

/// How many entities down a chain is followed.
const MAX_DEPTH: usize = 64;

/// How many root causes of each kind a trace keeps.
const MAX_ROOT_CAUSES: usize = 10;

/// One root cause: the services from where the problem showed to where it
/// started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRootCause {
    /// The services on the path, the one the problem started in last.
    pub services: Vec<RootCauseService>,
    /// The trace's entry document reports the problem: the client saw it.
    pub client_impacting: bool,
}

/// A service on a root cause's path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauseService {
    /// The service: name, type and account.
    pub service: ServiceId,
    /// Known only from its caller's subsegment.
    pub inferred: bool,
    /// The entities of the service on the path, from its segment down.
    pub entity_path: Vec<RootCauseEntity>,
}

/// An entity (segment or subsegment) on a root cause's path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauseEntity {
    /// The segment or subsegment name.
    pub name: String,
    /// A call to another service (the `aws` or `remote` namespace).
    pub remote: bool,
    /// Response time root causes only: the entity's share of the trace's
    /// response time, to three decimals.
    pub coverage: Option<f64>,
    /// Fault and error root causes only, on the path's last entity: the
    /// exceptions that explain it.
    pub exceptions: Vec<Exception>,
}

/// The root causes of a trace, by kind.
pub(crate) struct RootCauses {
    pub(crate) fault: Vec<TraceRootCause>,
    pub(crate) error: Vec<TraceRootCause>,
    pub(crate) response_time: Vec<TraceRootCause>,
}

/// The root causes of a trace's documents, `sorted` as `summarize` sorts
/// them, `entry` the document it picked.
pub(crate) fn root_causes(sorted: &[&SegmentInfo], entry: Option<&SegmentInfo>) -> RootCauses {
    let tree = Tree::new(sorted);
    let entry_node = entry.and_then(|entry| tree.index.get(&entry.id).copied());
    let response_time = entry.and_then(|entry| entry.end_time.map(|end| end - entry.start_time));
    RootCauses {
        fault: tree.flagged(|node| node.fault, entry.is_some_and(|entry| entry.facts.fault)),
        error: tree.flagged(|node| node.error, entry.is_some_and(|entry| entry.facts.error)),
        response_time: match (entry_node, response_time) {
            (Some(entry), Some(response_time)) if response_time > 0.0 => {
                vec![tree.slowest(entry, response_time)]
            }
            _ => Vec::new(),
        },
    }
}

/// An entity of the trace.
struct Node<'a> {
    id: SegmentId,
    name: &'a str,
    start_time: f64,
    end_time: Option<f64>,
    error: bool,
    fault: bool,
    namespace: Option<Namespace>,
    exceptions: &'a [Exception],
    /// The document holding the entity: itself, or the one it is embedded in.
    document: &'a SegmentInfo,
    /// A segment document: a service starts here.
    segment: bool,
}

impl<'a> Node<'a> {
    fn of_document(info: &'a SegmentInfo) -> Node<'a> {
        Node {
            id: info.id,
            name: &info.name,
            start_time: info.start_time,
            end_time: info.end_time,
            error: info.facts.error,
            fault: info.facts.fault,
            namespace: info.facts.namespace,
            exceptions: &info.facts.exceptions,
            document: info,
            segment: info.kind == DocumentKind::Segment,
        }
    }

    fn of_entity(entity: &'a Entity, document: &'a SegmentInfo) -> Node<'a> {
        Node {
            id: entity.id,
            name: &entity.name,
            start_time: entity.start_time,
            end_time: entity.end_time,
            error: entity.error,
            fault: entity.fault,
            namespace: entity.namespace,
            exceptions: &entity.exceptions,
            document,
            segment: false,
        }
    }

    fn duration(&self) -> Option<f64> {
        self.end_time.map(|end| (end - self.start_time).max(0.0))
    }

    fn remote(&self) -> bool {
        self.namespace.and_then(Namespace::call).is_some()
    }
}

/// Where a node's parent is, before every node is known.
enum Link {
    /// A document's `parent_id`.
    Id(SegmentId),
    /// The entity an embedded subsegment is embedded in.
    Node(usize),
}

/// The entities of a trace, by index, with their parents and children.
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    index: HashMap<SegmentId, usize>,
    parents: Vec<Option<usize>>,
    /// Each node's children, earliest first.
    children: Vec<Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn new(sorted: &[&'a SegmentInfo]) -> Tree<'a> {
        let mut nodes = Vec::new();
        let mut links = Vec::new();
        let mut index = HashMap::new();
        for info in sorted {
            if let Entry::Vacant(slot) = index.entry(info.id) {
                slot.insert(nodes.len());
                nodes.push(Node::of_document(info));
                links.push(info.parent_id.map(Link::Id));
            }
        }
        for info in sorted {
            let holder = index[&info.id];
            // Where each of the document's entities ended up, for their children.
            let mut placed: Vec<usize> = Vec::with_capacity(info.facts.entities.len());
            for entity in &info.facts.entities {
                let parent = entity.parent.and_then(|parent| placed.get(parent as usize).copied()).unwrap_or(holder);
                let node = Node::of_entity(entity, info);
                let at = match index.entry(entity.id) {
                    Entry::Vacant(slot) => {
                        slot.insert(nodes.len());
                        nodes.push(node);
                        links.push(Some(Link::Node(parent)));
                        nodes.len() - 1
                    }
                    Entry::Occupied(slot) => {
                        let at = *slot.get();
                        if nodes[at].end_time.is_none() && node.end_time.is_some() {
                            nodes[at] = node;
                            links[at] = Some(Link::Node(parent));
                        }
                        at
                    }
                };
                placed.push(at);
            }
        }
        let parents: Vec<Option<usize>> = links
            .iter()
            .enumerate()
            .map(|(at, link)| {
                let parent = match link {
                    Some(Link::Id(id)) => index.get(id).copied(),
                    Some(Link::Node(parent)) => Some(*parent),
                    None => None,
                };
                parent.filter(|parent| *parent != at)
            })
            .collect();
        let mut children = vec![Vec::new(); nodes.len()];
        for (at, parent) in parents.iter().enumerate() {
            if let Some(parent) = parent {
                children[*parent].push(at);
            }
        }
        for list in &mut children {
            earliest_first(&nodes, list);
        }
        Tree { nodes, index, parents, children }
    }

    /// Where the service of `at` starts: a segment, or an entity whose parent
    /// is not in the trace.
    fn starts_service(&self, at: usize) -> bool {
        self.nodes[at].segment || self.parents[at].is_none()
    }

    /// The path from the start of the service of `at` down to `at`.
    fn path_to(&self, at: usize) -> Vec<usize> {
        let mut path = vec![at];
        let mut current = at;
        while path.len() < MAX_DEPTH
            && !self.nodes[current].segment
            && let Some(parent) = self.parents[current]
        {
            current = parent;
            path.push(current);
        }
        path.reverse();
        path
    }

    /// The service a call at `at` went to, if no segment answered it.
    fn inferred(&self, at: usize) -> Option<ServiceId> {
        let node = &self.nodes[at];
        let namespace = node.namespace.and_then(Namespace::call).filter(|_| !node.segment)?;
        let answered = self.children[at].iter().any(|child| self.nodes[*child].segment);
        (!answered).then(|| inferred_service(namespace, node.name))
    }

    /// The root causes of the entities `flag` holds for: one per leaf of each
    /// chain of flagged entities, tops taken earliest first.
    fn flagged(&self, flag: impl Fn(&Node<'_>) -> bool + Copy, client_impacting: bool) -> Vec<TraceRootCause> {
        let mut tops: Vec<usize> = (0..self.nodes.len())
            .filter(|at| flag(&self.nodes[*at]))
            .filter(|at| self.parents[*at].is_none_or(|parent| !flag(&self.nodes[parent])))
            .collect();
        earliest_first(&self.nodes, &mut tops);
        let mut causes = Vec::new();
        for top in tops {
            let mut path = self.path_to(top);
            self.follow(&mut path, 0, flag, client_impacting, &mut causes);
            if causes.len() >= MAX_ROOT_CAUSES {
                break;
            }
        }
        causes
    }

    /// Follows `flag` down from the last entity of `path`, `depth` entities
    /// below its chain's top, adding the root cause of each leaf reached.
    fn follow(
        &self,
        path: &mut Vec<usize>,
        depth: usize,
        flag: impl Fn(&Node<'_>) -> bool + Copy,
        client_impacting: bool,
        causes: &mut Vec<TraceRootCause>,
    ) {
        let at = *path.last().expect("a path holds its chain's top");
        let mut flagged = self.children[at].iter().copied().filter(|child| flag(&self.nodes[*child])).peekable();
        if flagged.peek().is_none() || depth + 1 >= MAX_DEPTH {
            let cause = self.root_cause(path, None, client_impacting);
            if !causes.contains(&cause) {
                causes.push(cause);
            }
            return;
        }
        for child in flagged {
            if causes.len() >= MAX_ROOT_CAUSES {
                return;
            }
            path.push(child);
            self.follow(path, depth + 1, flag, client_impacting, causes);
            path.pop();
        }
    }

    /// The response time's root cause: from `entry` down the longest
    /// complete child at each step.
    fn slowest(&self, entry: usize, response_time: f64) -> TraceRootCause {
        let mut path = self.path_to(entry);
        let mut at = entry;
        for _ in 1..MAX_DEPTH {
            // `min_by` keeps the first of equals: the earliest of the longest.
            let longest = self.children[at]
                .iter()
                .copied()
                .filter_map(|child| Some((child, self.nodes[child].duration()?)))
                .min_by(|(_, left), (_, right)| right.total_cmp(left));
            let Some((child, _)) = longest else { break };
            path.push(child);
            at = child;
        }
        self.root_cause(&path, Some(response_time), true)
    }

    /// The root cause a path from a service's start down to a leaf gives:
    /// with coverages when `response_time` is given, else with exceptions.
    fn root_cause(&self, path: &[usize], response_time: Option<f64>, client_impacting: bool) -> TraceRootCause {
        let coverage = |node: &Node<'_>| {
            response_time
                .map(|total| node.duration().map_or(0.0, |duration| (duration / total * 1000.0).round() / 1000.0))
        };
        let mut services: Vec<RootCauseService> = Vec::new();
        for &at in path {
            let node = &self.nodes[at];
            if services.is_empty() || self.starts_service(at) {
                services.push(RootCauseService {
                    service: service_of(node.document),
                    inferred: false,
                    entity_path: Vec::new(),
                });
            }
            let entity = RootCauseEntity {
                name: node.name.to_owned(),
                remote: node.remote(),
                coverage: coverage(node),
                exceptions: Vec::new(),
            };
            services.last_mut().expect("pushed above").entity_path.push(entity);
        }
        let leaf = *path.last().expect("a path holds its leaf");
        if let Some(service) = self.inferred(leaf) {
            let node = &self.nodes[leaf];
            let entity = RootCauseEntity {
                name: node.name.to_owned(),
                remote: true,
                coverage: coverage(node),
                exceptions: Vec::new(),
            };
            services.push(RootCauseService { service, inferred: true, entity_path: vec![entity] });
        }
        if response_time.is_none() {
            let exceptions = path.iter().rev().map(|at| self.nodes[*at].exceptions).find(|found| !found.is_empty());
            let last = services.last_mut().and_then(|service| service.entity_path.last_mut());
            if let (Some(exceptions), Some(last)) = (exceptions, last) {
                last.exceptions = exceptions.to_vec();
            }
        }
        TraceRootCause { services, client_impacting }
    }
}

/// Sorts node indexes by start, then id: an order that does not depend on
/// the order documents arrived in.
fn earliest_first(nodes: &[Node<'_>], list: &mut [usize]) {
    list.sort_by(|left, right| {
        let (left, right) = (&nodes[*left], &nodes[*right]);
        left.start_time.total_cmp(&right.start_time).then(left.id.cmp(&right.id))
    });
}

// === `rootcause.json`: patterns in botocore's shape ===

impl TraceRootCause {
    /// Whether `pattern`, a JSON object in the shape of botocore's
    /// `FaultRootCause`, `ErrorRootCause` or `ResponseTimeRootCause`,
    /// describes this root cause: each member the pattern names must be
    /// present here with a matching value (an absent `Type` or `AccountId`
    /// matches nothing, `null` included); arrays (`Services`, `Names`,
    /// `EntityPath`, `Exceptions`) match when they have as many elements,
    /// each matching in order; strings, booleans and numbers match when equal.
    /// Only response time entities have `Coverage`, only fault and error
    /// entities `Exceptions`.
    pub fn matches_json(&self, pattern: &Value) -> bool {
        members(pattern, |key, value| match key {
            "Services" => in_order(value, &self.services, RootCauseService::matches_json),
            "ClientImpacting" => value.as_bool() == Some(self.client_impacting),
            _ => false,
        })
    }
}

impl RootCauseService {
    fn matches_json(&self, pattern: &Value) -> bool {
        members(pattern, |key, value| match key {
            "Name" => text(value, Some(&self.service.name)),
            "Names" => in_order(value, std::slice::from_ref(&self.service.name), |name, value| text(value, Some(name))),
            "Type" => text(value, self.service.kind.as_deref()),
            "AccountId" => text(value, self.service.account_id.as_deref()),
            "Inferred" => value.as_bool() == Some(self.inferred),
            "EntityPath" => in_order(value, &self.entity_path, RootCauseEntity::matches_json),
            _ => false,
        })
    }
}

impl RootCauseEntity {
    fn matches_json(&self, pattern: &Value) -> bool {
        members(pattern, |key, value| match key {
            "Name" => text(value, Some(&self.name)),
            "Remote" => value.as_bool() == Some(self.remote),
            "Coverage" => self.coverage.is_some_and(|coverage| value.as_f64() == Some(coverage)),
            "Exceptions" => {
                self.coverage.is_none()
                    && in_order(value, &self.exceptions, |exception, value| {
                        members(value, |key, value| match key {
                            "Name" => text(value, exception.name.as_deref()),
                            "Message" => text(value, exception.message.as_deref()),
                            _ => false,
                        })
                    })
            }
            _ => false,
        })
    }
}

/// Whether `pattern` is an object whose every member `matches`.
fn members(pattern: &Value, mut matches: impl FnMut(&str, &Value) -> bool) -> bool {
    pattern.as_object().is_some_and(|object| object.iter().all(|(key, value)| matches(key, value)))
}

/// Whether `pattern` is an array of as many elements as `items`, each
/// matching its item.
fn in_order<T>(pattern: &Value, items: &[T], matches: impl Fn(&T, &Value) -> bool) -> bool {
    pattern.as_array().is_some_and(|patterns| {
        patterns.len() == items.len() && items.iter().zip(patterns).all(|(item, pattern)| matches(item, pattern))
    })
}

fn text(pattern: &Value, actual: Option<&str>) -> bool {
    actual.is_some_and(|actual| pattern.as_str() == Some(actual))
}

#[cfg(test)]
mod tests;
