use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::path::Path;

const TRACE: &str = "1-6744a1b2-0123456789abcdef01234567";

/// The documents of a captured scenario, daemon header stripped, by file name.
fn fixture(scenario: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/udp").join(scenario);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap().split_once('\n').expect("a header line").1.to_owned())
        .collect()
}

fn trace_id(text: &str) -> TraceId {
    text.parse().unwrap()
}

fn assemble_all(documents: &[String]) -> AssembledTrace {
    assemble(trace_id(TRACE), documents.iter().map(String::as_str))
}

/// A complete document: a segment, or (with a parent) a subsegment sent on its own.
fn entity(id: &str, parent: Option<&str>, start_time: f64) -> Value {
    let mut entity = json!({
        "id": id, "name": format!("n-{id}"), "trace_id": TRACE,
        "start_time": start_time, "end_time": start_time + 1.0, "in_progress": false,
    });
    if let Some(parent) = parent {
        entity["type"] = json!("subsegment");
        entity["parent_id"] = json!(parent);
    }
    entity
}

/// The same entity, sent before it finished.
fn in_progress(mut entity: Value) -> Value {
    entity["in_progress"] = json!(true);
    entity.as_object_mut().unwrap().remove("end_time");
    entity
}

fn embed(mut parent: Value, subsegments: Vec<Value>) -> Value {
    parent["subsegments"] = Value::Array(subsegments);
    parent
}

/// The assembled trace as an indented outline of `name` (`id` with `with_ids`),
/// one line per entity, in the order of the result; checks that each segment's
/// `id` is its document's.
fn outline(trace: &AssembledTrace, label: &str) -> Vec<String> {
    fn walk(entity: &Value, depth: usize, label: &str, lines: &mut Vec<String>) {
        let mut line = format!("{}{}", "  ".repeat(depth), entity[label].as_str().unwrap());
        if entity["in_progress"] == true {
            line.push_str(" (in progress)");
        }
        lines.push(line);
        for subsegment in entity["subsegments"].as_array().into_iter().flatten() {
            walk(subsegment, depth + 1, label, lines);
        }
    }
    let mut lines = Vec::new();
    for segment in &trace.segments {
        let document: Value = serde_json::from_str(&segment.document).unwrap();
        assert_eq!(document["id"], segment.id.as_str());
        walk(&document, 0, label, &mut lines);
    }
    lines
}

/// Every entity id in the assembled trace, sorted, duplicates kept.
fn all_ids(trace: &AssembledTrace) -> Vec<String> {
    let mut ids: Vec<String> = outline(trace, "id").iter().map(|line| line.trim().to_owned()).collect();
    ids.sort();
    ids
}

// === captured traces ===

#[test]
fn streamed_subsegments_merge_into_the_one_segment() {
    let documents = fixture("xray_sdk_streaming");
    assert_eq!(documents.len(), 13);
    let trace = assemble(trace_id("1-6b03e0a4-da290bef134ced241ac7b663"), documents.iter().map(String::as_str));
    assert_eq!(trace.segments.len(), 1);
    assert_eq!(trace.segments[0].id, "c704d75114be6320");
    assert_eq!(
        outline(&trace, "name"),
        [
            "batch-worker",
            "  batch-loop",
            "    item-0",
            "    item-1",
            "    item-2",
            "    item-3",
            "    item-4",
            "    item-5",
            "    item-6",
            "    item-7",
            "  tail-0",
            "  tail-1",
            "  tail-2",
            "  tail-3",
            "  tail-4",
        ]
    );
    assert_eq!(trace.duration, Some(1795416228.7971342 - 1795416228.7861824));
    // Merged documents keep their fields.
    let root: Value = serde_json::from_str(&trace.segments[0].document).unwrap();
    assert_eq!(root["subsegments"][0]["subsegments"][0]["annotations"], json!({"item_index": 0}));
    assert_eq!(root["subsegments"][0]["annotations"], json!({"batch_size": 8}));
    assert_eq!(root["aws"]["xray"]["sdk"], "X-Ray for Python");
    // Every time is written back exactly as it was sent.
    for document in &documents {
        for (key, _) in document.match_indices(r#"_time": "#) {
            let start = key + r#"_time": "#.len();
            let number: String = document[start..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            assert!(trace.segments[0].document.contains(&format!(r#"_time":{number}"#)), "{number}");
        }
    }
}

#[test]
fn lambda_subsegments_assemble_under_the_handler_whose_facade_never_arrives() {
    let documents = &fixture("powertools_lambda")[..3];
    let trace = assemble(trace_id("1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa"), documents.iter().map(String::as_str));
    assert_eq!(trace.segments.len(), 1);
    assert_eq!(trace.segments[0].id, "f6024bf8d918928e");
    assert_eq!(outline(&trace, "name"), ["## handler", "  ## __main__.fetch_order", "    127.0.0.1"]);
    let root: Value = serde_json::from_str(&trace.segments[0].document).unwrap();
    assert_eq!(root["parent_id"], "1111111111111111");
    assert_eq!(trace.duration, Some(1795416263.2923098 - 1795416263.28681));
}

#[test]
fn a_document_nothing_was_merged_into_is_returned_byte_for_byte() {
    let documents = fixture("xray_sdk_basic");
    let trace = assemble_all(&documents[..1]);
    assert_eq!(trace.segments[0].document, documents[0]);
}

#[test]
fn a_document_with_merged_subsegments_keeps_its_key_order() {
    let documents = fixture("xray_sdk_streaming");
    let trace = assemble_all(&documents);
    assert!(trace.segments[0].document.starts_with(r#"{"id":"c704d75114be6320","name":"batch-worker","#));
}

// === in-progress and complete copies ===

#[test]
fn complete_standalone_subsegment_replaces_the_in_progress_copy_embedded_in_its_parent() {
    let segment = entity("00000000000000a0", None, 1.0);
    let sub = entity("00000000000000b0", Some("00000000000000a0"), 2.0);
    let documents = [embed(segment, vec![in_progress(sub.clone())]), sub].map(|document| document.to_string());
    assert_eq!(outline(&assemble_all(&documents), "id"), ["00000000000000a0", "  00000000000000b0"]);
}

#[test]
fn complete_embedded_subsegment_wins_over_an_in_progress_standalone_copy() {
    let segment = entity("00000000000000a0", None, 1.0);
    let sub = entity("00000000000000b0", Some("00000000000000a0"), 2.0);
    let documents = [embed(segment, vec![sub.clone()]), in_progress(sub)].map(|document| document.to_string());
    assert_eq!(outline(&assemble_all(&documents), "id"), ["00000000000000a0", "  00000000000000b0"]);
}

#[test]
fn replacing_an_in_progress_copy_keeps_the_subsegments_merged_into_it() {
    // The parent was flushed while `b0` was open; then `c0` (a child of `b0`)
    // and the complete `b0` were streamed on their own.
    let segment = in_progress(entity("00000000000000a0", None, 1.0));
    let sub = entity("00000000000000b0", Some("00000000000000a0"), 2.0);
    let grandchild = entity("00000000000000c0", Some("00000000000000b0"), 3.0);
    let documents = [embed(segment, vec![in_progress(sub.clone())]), sub.clone(), grandchild.clone()]
        .map(|document| document.to_string());
    assert_eq!(
        outline(&assemble_all(&documents), "id"),
        ["00000000000000a0 (in progress)", "  00000000000000b0", "    00000000000000c0"]
    );

    // The other way round: the parent holds the complete copy, and the
    // in-progress copy sent on its own holds a child nobody else has.
    let segment = entity("00000000000000a0", None, 1.0);
    let open_child = in_progress(entity("00000000000000d0", Some("00000000000000b0"), 4.0));
    let documents = [embed(segment, vec![sub.clone()]), embed(in_progress(sub), vec![open_child])]
        .map(|document| document.to_string());
    assert_eq!(
        outline(&assemble_all(&documents), "id"),
        ["00000000000000a0", "  00000000000000b0", "    00000000000000d0 (in progress)"]
    );
}

#[test]
fn complete_document_wins_over_an_in_progress_one_with_the_same_id() {
    let segment = entity("00000000000000a0", None, 1.0);
    let sub = entity("00000000000000b0", Some("00000000000000a0"), 2.0);
    let documents = [in_progress(segment.clone()), segment, sub].map(|document| document.to_string());
    assert_eq!(outline(&assemble_all(&documents), "id"), ["00000000000000a0", "  00000000000000b0"]);

    let orphan = entity("00000000000000e0", Some("1111111111111111"), 2.0);
    let documents = [orphan.clone(), in_progress(orphan)].map(|document| document.to_string());
    let trace = assemble_all(&documents);
    assert_eq!(outline(&trace, "id"), ["00000000000000e0"]);
    assert_eq!(trace.duration, Some(1.0));
}

// === duration ===

#[test]
fn duration_is_from_the_earliest_start_to_the_latest_end() {
    let mut late_start = entity("00000000000000b0", Some("00000000000000a0"), 0.0);
    (late_start["start_time"], late_start["end_time"]) = (json!(10.75), json!(12.5));
    let mut early_start = entity("00000000000000a0", None, 0.0);
    (early_start["start_time"], early_start["end_time"]) = (json!(10.0), json!(11.0));
    let open = in_progress(entity("00000000000000c0", Some("1111111111111111"), 20.0));
    let documents = [late_start, early_start, open].map(|document| document.to_string());
    assert_eq!(assemble_all(&documents).duration, Some(2.5));

    let only_open = [in_progress(entity("00000000000000a0", None, 1.0)).to_string()];
    assert_eq!(assemble_all(&only_open).duration, None);
    assert_eq!(assemble_all(&[]).duration, None);
    assert!(assemble_all(&[]).segments.is_empty());
}

// === odd parent links ===

#[test]
fn a_parent_cycle_loses_no_document() {
    let documents = [
        entity("00000000000000a0", Some("00000000000000b0"), 1.0),
        entity("00000000000000b0", Some("00000000000000a0"), 2.0),
        entity("00000000000000c0", Some("00000000000000c0"), 3.0),
        entity("00000000000000f0", None, 0.5),
    ]
    .map(|document| document.to_string());
    let trace = assemble_all(&documents);
    assert_eq!(all_ids(&trace), ["00000000000000a0", "00000000000000b0", "00000000000000c0", "00000000000000f0"]);
}

#[test]
fn a_chain_deeper_than_the_merge_limit_loses_no_document() {
    const LENGTH: usize = 300;
    let id = |index: usize| format!("{index:016x}");
    let mut documents = vec![entity(&id(0), None, 0.0).to_string()];
    for index in 1..LENGTH {
        documents.push(entity(&id(index), Some(&id(index - 1)), index as f64).to_string());
    }
    // Run on a small stack: the merge must not recurse once per link.
    let trace = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || assemble_all(&documents))
        .unwrap()
        .join()
        .unwrap();
    // `all_ids` also reads every assembled document back with serde_json,
    // which refuses JSON nested more than 128 levels deep.
    assert_eq!(all_ids(&trace), (0..LENGTH).map(id).collect::<Vec<_>>());
    assert_eq!(trace.segments[0].id, id(0));
    assert!(trace.segments.len() > 1, "the chain is split past the merge limit");
}

#[test]
fn documents_that_are_not_objects_are_skipped() {
    let documents = ["[1]".to_owned(), "not json".to_owned(), entity("00000000000000a0", None, 1.0).to_string()];
    assert_eq!(outline(&assemble_all(&documents), "id"), ["00000000000000a0"]);
}

// === order independence ===

/// One node of a generated trace: its parent (an earlier node), its start
/// time, and whether an in-progress copy of it was also sent (0: no, 1: on
/// its own, 2: embedded in its parent's document).
#[derive(Debug, Clone)]
struct Node {
    parent: usize,
    start: u8,
    copy: u8,
}

/// Documents of a tree: node 0 is the segment, every other node a subsegment
/// sent on its own, plus the in-progress copies.
fn tree_documents(nodes: &[Node]) -> Vec<String> {
    let id = |index: usize| format!("{:016x}", index + 0xa0);
    let mut documents: Vec<Value> = (0..=nodes.len())
        .map(|index| {
            let parent = index.checked_sub(1).map(|node| id(nodes[node].parent));
            entity(&id(index), parent.as_deref(), f64::from(index.checked_sub(1).map_or(0, |node| nodes[node].start)))
        })
        .collect();
    let mut copies = Vec::new();
    for (node, Node { parent, copy, .. }) in nodes.iter().enumerate() {
        let copy_of = in_progress(documents[node + 1].clone());
        match copy {
            1 => copies.push(copy_of),
            2 => {
                let parent = &mut documents[*parent];
                let subsegments = parent.as_object_mut().unwrap().entry("subsegments").or_insert(json!([]));
                subsegments.as_array_mut().unwrap().push(copy_of);
            }
            _ => {}
        }
    }
    documents.into_iter().chain(copies).map(|document| document.to_string()).collect()
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, 0u8..3), 0..24).prop_map(|drawn| {
        drawn
            .into_iter()
            .enumerate()
            .map(|(index, (parent, start, copy))| Node { parent: parent.index(index + 1), start, copy })
            .collect()
    })
}

proptest! {
    #[test]
    fn streamed_fixture_assembles_the_same_in_any_order(
        shuffled in Just(fixture("xray_sdk_streaming")).prop_shuffle(),
    ) {
        prop_assert_eq!(assemble_all(&shuffled), assemble_all(&fixture("xray_sdk_streaming")));
    }

    #[test]
    fn generated_tree_assembles_the_same_in_any_order_and_loses_nothing(
        (count, documents, shuffled) in nodes().prop_flat_map(|nodes| {
            let documents = tree_documents(&nodes);
            (Just(nodes.len() + 1), Just(documents.clone()), Just(documents).prop_shuffle())
        }),
    ) {
        let trace = assemble_all(&documents);
        prop_assert_eq!(&assemble_all(&shuffled), &trace);
        // One segment; every node exactly once, and complete.
        prop_assert_eq!(trace.segments.len(), 1);
        prop_assert_eq!(all_ids(&trace), (0..count).map(|index| format!("{:016x}", index + 0xa0)).collect::<Vec<_>>());
        prop_assert!(outline(&trace, "id").iter().all(|line| !line.ends_with("(in progress)")));
    }
}
