//! Trace assembly: the stored documents of one trace, in any arrival order,
//! become the segments X-Ray's `BatchGetTraces` returns, each with the
//! subsegments sent on their own merged back under their parents.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::id::TraceId;

/// How deep independent subsegments are merged into each other; a longer
/// chain stays split rather than risking the stack. Each level nests the JSON
/// twice (the subsegment and its `subsegments` array), and readers such as
/// serde_json refuse more than 128 levels, so this leaves half of them to
/// what the documents themselves nest.
const MAX_MERGE_DEPTH: usize = 32;

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
    /// The document as JSON text, merged subsegments included; exactly the
    /// stored text when nothing was merged into it.
    pub document: String,
}

type Object = Map<String, Value>;

/// Assembles the documents of one trace (each a JSON object, as stored).
///
/// The result depends only on the set of documents, not on their order.
/// Documents that are not JSON objects are skipped: the store only holds
/// validated ones.
pub fn assemble<'a>(id: TraceId, documents: impl IntoIterator<Item = &'a str>) -> AssembledTrace {
    let mut originals: HashMap<String, Option<&str>> = HashMap::new();
    let mut objects: Vec<Object> = documents
        .into_iter()
        .filter_map(|document| match serde_json::from_str(document) {
            Ok(Value::Object(object)) => {
                // A document met twice (in progress, then complete) is merged,
                // so it has no single original text.
                let id = text(&object, "id").unwrap_or_default().to_owned();
                originals.entry(id).and_modify(|original| *original = None).or_insert(Some(document));
                Some(object)
            }
            _ => None,
        })
        .collect();
    objects.sort_by(compare_entities);
    // Copies of one document (sent in progress, then complete) become one.
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<Object> = Vec::with_capacity(objects.len());
    for object in objects {
        match position.get(text(&object, "id").unwrap_or_default()) {
            Some(&index) => merge_same_id(&mut unique[index], object),
            None => {
                position.insert(text(&object, "id").unwrap_or_default().to_owned(), unique.len());
                unique.push(object);
            }
        }
    }
    let objects = unique;

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

    // Each root with whether something was merged into it.
    let mut roots: Vec<(Object, bool)> = segments.into_iter().chain(orphans).map(|root| (root, false)).collect();
    for (root, changed) in &mut roots {
        *changed = attach(root, &mut children, 0);
    }
    // What is left has a parent that was itself never attached: a cycle, or a
    // chain deeper than the merge limit. Show it rather than lose it.
    roots.extend(children.into_values().flatten().map(|leftover| (leftover, false)));
    roots.sort_by(|left, right| compare_entities(&left.0, &right.0));

    let segments = roots
        .into_iter()
        .map(|(object, changed)| {
            let id = text(&object, "id").unwrap_or_default().to_owned();
            // A document nothing was merged into is returned as it was sent.
            let original = if changed { None } else { originals.get(&id).copied().flatten() };
            let document = original.map_or_else(|| Value::Object(object).to_string(), str::to_owned);
            AssembledSegment { id, document }
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
/// Returns whether anything was merged into `node`.
fn attach(node: &mut Object, children: &mut HashMap<String, Vec<Object>>, depth: usize) -> bool {
    if depth >= MAX_MERGE_DEPTH {
        return false;
    }
    let mut changed = false;
    if let Some(Value::Array(embedded)) = node.get_mut("subsegments") {
        for subsegment in embedded {
            if let Value::Object(subsegment) = subsegment {
                changed |= attach(subsegment, children, depth + 1);
            }
        }
    }
    let Some(id) = text(node, "id") else { return changed };
    let Some(mut kids) = children.remove(id) else { return changed };
    for kid in &mut kids {
        attach(kid, children, depth + 1);
    }
    add_subsegments(node, kids);
    true
}

/// Adds `subsegments` to those of `node`, merging each into the one with the
/// same id if there is one.
fn add_subsegments(node: &mut Object, subsegments: Vec<Object>) {
    let Value::Array(list) = node.entry("subsegments").or_insert_with(|| Value::Array(Vec::new())) else {
        return;
    };
    for subsegment in subsegments {
        let same_id = list.iter_mut().find_map(|existing| {
            existing.as_object_mut().filter(|existing| text(existing, "id") == text(&subsegment, "id"))
        });
        match same_id {
            Some(existing) => merge_same_id(existing, subsegment),
            None => list.push(Value::Object(subsegment)),
        }
    }
    list.sort_by(|left, right| match (left.as_object(), right.as_object()) {
        (Some(left), Some(right)) => compare_entities(left, right),
        _ => Ordering::Equal,
    });
}

/// Merges `other` into `kept`, two copies of one entity: a complete copy wins
/// over an in-progress one (`other` wins a tie), and the subsegments of the
/// losing copy are kept under the winner, so that none merged into it is lost.
fn merge_same_id(kept: &mut Object, mut other: Object) {
    if is_complete(&other) || !is_complete(kept) {
        std::mem::swap(kept, &mut other);
    }
    let Some(Value::Array(lost)) = other.remove("subsegments") else { return };
    let lost: Vec<Object> = lost
        .into_iter()
        .filter_map(|subsegment| match subsegment {
            Value::Object(subsegment) => Some(subsegment),
            _ => None,
        })
        .collect();
    if !lost.is_empty() {
        add_subsegments(kept, lost);
    }
}

#[cfg(test)]
mod tests;
