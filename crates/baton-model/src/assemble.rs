//! Trace assembly: the stored documents of one trace, in any arrival order,
//! become the segments X-Ray's `BatchGetTraces` returns, each with the
//! subsegments sent on their own merged back under their parents.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::id::TraceId;

/// How deep independent subsegments are merged into each other; a longer
/// chain stays split rather than risking the stack.
const MAX_MERGE_DEPTH: usize = 64;

/// A whole trace as `BatchGetTraces` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledTrace {
    /// The trace id.
    pub id: TraceId,
    /// From the earliest start to the latest end, in seconds.
    pub duration: Option<f64>,
    /// Segments with their subsegments merged in, plus subsegments whose
    /// parent never arrived, by start time.
    pub segments: Vec<AssembledSegment>,
}

/// One document of an assembled trace.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledSegment {
    /// The document's id.
    pub id: String,
    /// The document as JSON text, merged subsegments included.
    pub document: String,
}

type Object = Map<String, Value>;

/// Assembles the documents of one trace (each a JSON object, as stored).
///
/// The result depends only on the set of documents, not on their order.
/// Documents that are not JSON objects are skipped: the store only holds
/// validated ones.
pub fn assemble<'a>(id: TraceId, documents: impl IntoIterator<Item = &'a str>) -> AssembledTrace {
    let mut objects: Vec<Object> = documents
        .into_iter()
        .filter_map(|text| match serde_json::from_str(text) {
            Ok(Value::Object(object)) => Some(object),
            _ => None,
        })
        .collect();
    objects.sort_by(compare_entities);

    let mut first_start = f64::INFINITY;
    let mut last_end = f64::NEG_INFINITY;
    for object in &objects {
        first_start = first_start.min(number(object, "start_time").unwrap_or(f64::INFINITY));
        last_end = last_end.max(number(object, "end_time").unwrap_or(f64::NEG_INFINITY));
    }
    let duration = (first_start.is_finite() && last_end.is_finite()).then(|| (last_end - first_start).max(0.0));

    let mut known_ids = HashSet::new();
    for object in &objects {
        collect_ids(object, &mut known_ids);
    }
    let known_ids: HashSet<String> = known_ids.into_iter().map(str::to_owned).collect();
    let (subsegments, segments): (Vec<Object>, Vec<Object>) =
        objects.into_iter().partition(|object| object.get("type").and_then(Value::as_str) == Some("subsegment"));

    let mut orphans = Vec::new();
    let mut children: HashMap<String, Vec<Object>> = HashMap::new();
    for subsegment in subsegments {
        let parent = text(&subsegment, "parent_id").unwrap_or_default().to_owned();
        if known_ids.contains(&parent) {
            children.entry(parent).or_default().push(subsegment);
        } else {
            orphans.push(subsegment);
        }
    }

    let mut roots: Vec<Object> = segments.into_iter().chain(orphans).collect();
    for root in &mut roots {
        attach(root, &mut children, 0);
    }
    // What is left has a parent that was itself never attached: a cycle, or a
    // chain deeper than the merge limit. Show it rather than lose it.
    let mut leftovers: Vec<Object> = children.into_values().flatten().collect();
    leftovers.sort_by(compare_entities);
    roots.extend(leftovers);
    roots.sort_by(compare_entities);

    let segments = roots
        .into_iter()
        .map(|object| AssembledSegment {
            id: text(&object, "id").unwrap_or_default().to_owned(),
            document: Value::Object(object).to_string(),
        })
        .collect();
    AssembledTrace { id, duration, segments }
}

fn number(object: &Object, key: &str) -> Option<f64> {
    object.get(key).and_then(Value::as_f64)
}

fn text<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

fn is_complete(object: &Object) -> bool {
    object.get("in_progress").and_then(Value::as_bool) != Some(true)
}

/// Orders entities by start time, then id, then completeness, so that sorting
/// gives one order whatever the arrival order.
fn compare_entities(left: &Object, right: &Object) -> Ordering {
    let start = |object: &Object| number(object, "start_time").unwrap_or(0.0);
    start(left)
        .total_cmp(&start(right))
        .then_with(|| text(left, "id").cmp(&text(right, "id")))
        .then_with(|| is_complete(left).cmp(&is_complete(right)))
        .then_with(|| Value::Object(left.clone()).to_string().cmp(&Value::Object(right.clone()).to_string()))
}

fn collect_ids<'a>(object: &'a Object, ids: &mut HashSet<&'a str>) {
    if let Some(id) = text(object, "id") {
        ids.insert(id);
    }
    if let Some(Value::Array(subsegments)) = object.get("subsegments") {
        for subsegment in subsegments {
            if let Value::Object(subsegment) = subsegment {
                collect_ids(subsegment, ids);
            }
        }
    }
}

/// Merges into `node` (and its embedded subsegments) the independent
/// subsegments whose parent they are.
fn attach(node: &mut Object, children: &mut HashMap<String, Vec<Object>>, depth: usize) {
    if depth >= MAX_MERGE_DEPTH {
        return;
    }
    if let Some(Value::Array(embedded)) = node.get_mut("subsegments") {
        for subsegment in embedded {
            if let Value::Object(subsegment) = subsegment {
                attach(subsegment, children, depth + 1);
            }
        }
    }
    let Some(id) = text(node, "id") else { return };
    let Some(mut kids) = children.remove(id) else { return };
    for kid in &mut kids {
        attach(kid, children, depth + 1);
    }
    let Value::Array(list) = node.entry("subsegments").or_insert_with(|| Value::Array(Vec::new())) else {
        return;
    };
    for kid in kids {
        let same_id = list.iter().position(|existing| {
            existing.as_object().and_then(|existing| text(existing, "id")) == text(&kid, "id")
        });
        match same_id {
            // A complete document wins over an in-progress one with the same id.
            Some(index) if is_complete(&kid) || !list[index].as_object().is_some_and(is_complete) => {
                list[index] = Value::Object(kid);
            }
            Some(_) => {}
            None => list.push(Value::Object(kid)),
        }
    }
    list.sort_by(|left, right| match (left.as_object(), right.as_object()) {
        (Some(left), Some(right)) => compare_entities(left, right),
        _ => Ordering::Equal,
    });
}

#[cfg(test)]
mod tests;
