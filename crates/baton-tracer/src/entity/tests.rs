use serde_json::{Value, json};

use super::*;

const TRACE: &str = "1-6744b000-aaaaaaaaaaaaaaaaaaaaaaaa";

fn header(text: &str) -> TraceHeader {
    text.parse().unwrap()
}

/// A subsegment under a remote parent, recorded whatever the global tracer's configuration.
fn remote_child(name: &'static str) -> Subsegment {
    let header = header(&format!("Root={TRACE};Parent=1111111111111111;Sampled=1;Lineage=a87bd80c:0"));
    let trace = TraceContext::from_header(header.root.unwrap(), Some(&header));
    Subsegment::recording(trace, Parent::Remote(header.parent.unwrap()), false, name)
}

fn child_of(parent: &Subsegment, name: &'static str) -> Subsegment {
    let Inner::Recording(node) = &parent.0 else { panic!("not recording") };
    Subsegment::child(node.clone(), name)
}

/// Ends `subsegment` and gives the documents the sender would write for it.
fn finish(subsegment: &Subsegment) -> Vec<Value> {
    let Inner::Recording(node) = &subsegment.0 else { panic!("not recording") };
    node.state.lock().end = Some(node.start + 1_500);
    let documents = crate::render::documents(node);
    documents.iter().map(|document| serde_json::from_str(document).expect("valid JSON")).collect()
}

#[test]
fn a_subsegment_renders_every_block() {
    let subsegment = remote_child("## orders::fetch_order");
    subsegment.put_annotation("order_id", "o-1").unwrap();
    subsegment.put_annotation("priority", 2).unwrap();
    subsegment.put_annotation("express", true).unwrap();
    subsegment.put_annotation("ratio", 0.5).unwrap();
    subsegment.put_annotation("priority", 3).unwrap();
    subsegment.put_annotation("note", "longer than twenty-two bytes, kept apart").unwrap();
    subsegment.put_annotation("city", String::from("Zürich")).unwrap();
    subsegment.put_metadata_in("orders", "request", &json!({"lines": [1, 2]})).unwrap();
    subsegment.put_metadata_in("custom-ns", "flags", &["a", "b"]).unwrap();
    subsegment.put_metadata_in("orders", "request", &"replaced").unwrap();
    subsegment.set_namespace(Namespace::Remote);
    subsegment.set_http_request(HttpRequest::new("GET", "http://127.0.0.1:4301/orders/o-1?verbose=1"));
    subsegment.set_http_response(429, Some(12));
    subsegment.set_aws("operation", "GetItem");
    subsegment.set_aws("retries", 0);
    subsegment.set_sql(Sql { database_type: Some("PostgreSQL".into()), ..Sql::default() });
    subsegment.set_user("alice \"the\" user\n");

    let [document] = finish(&subsegment).try_into().unwrap();
    let id = subsegment.id().unwrap().to_string();
    assert_eq!(document["id"], id.as_str());
    assert_eq!(document["trace_id"], TRACE);
    assert_eq!(document["parent_id"], "1111111111111111");
    assert_eq!(document["type"], "subsegment");
    assert_eq!(document["namespace"], "remote");
    assert_eq!(document["name"], "## orders::fetch_order");
    assert_eq!(
        document["annotations"],
        json!({"order_id": "o-1", "priority": 3, "express": true, "ratio": 0.5,
               "note": "longer than twenty-two bytes, kept apart", "city": "Zürich"})
    );
    assert_eq!(document["metadata"], json!({"orders": {"request": "replaced"}, "custom-ns": {"flags": ["a", "b"]}}));
    assert_eq!(
        document["http"],
        json!({"request": {"method": "GET", "url": "http://127.0.0.1:4301/orders/o-1"},
               "response": {"status": 429, "content_length": 12}})
    );
    assert_eq!(document["aws"], json!({"operation": "GetItem", "retries": 0}));
    assert_eq!(document["sql"], json!({"database_type": "PostgreSQL"}));
    assert_eq!(document["user"], "alice \"the\" user\n");
    assert_eq!((document["error"].clone(), document["throttle"].clone()), (json!(true), json!(true)));
    assert!(document.get("fault").is_none());
    let start = document["start_time"].as_f64().unwrap();
    let end = document["end_time"].as_f64().unwrap();
    assert!((end - start - 0.0015).abs() < 1e-6, "{start} {end}");
}

#[test]
fn invalid_annotations_are_refused_with_the_reason() {
    let subsegment = remote_child("work");
    let error = subsegment.put_annotation("order-id", 1).unwrap_err();
    assert_eq!(error.to_string(), r#"annotation key "order-id" must be 1 to 500 letters, digits or _"#);
    let error = subsegment.put_annotation("ratio", f64::NAN).unwrap_err();
    assert_eq!(error.to_string(), "annotation ratio is not finite");
    let error = subsegment.put_annotation("note", "x".repeat(1001)).unwrap_err();
    assert_eq!(error.to_string(), "annotation note is longer than 1000 characters");
    let [document] = finish(&subsegment).try_into().unwrap();
    assert!(document.get("annotations").is_none());
}

#[test]
fn closed_children_are_embedded_in_their_open_parent() {
    let handler = remote_child("## handler");
    let method = child_of(&handler, "## fetch");
    let call = child_of(&method, "127.0.0.1");
    call.end();
    method.clone().end();
    method.put_annotation("late", 1).unwrap();
    let [document] = finish(&handler).try_into().unwrap();
    let method_document = &document["subsegments"][0];
    assert_eq!(method_document["name"], "## fetch");
    assert_eq!(method_document["parent_id"], document["id"]);
    assert_eq!(method_document["trace_id"], TRACE);
    assert!(method_document.get("annotations").is_none(), "recorded after its end");
    assert_eq!(method_document["subsegments"][0]["name"], "127.0.0.1");
    assert_eq!(method_document["subsegments"][0]["parent_id"], method_document["id"]);
}

#[test]
fn an_error_passed_up_is_written_as_the_child_exception_id() {
    let handler = remote_child("## handler");
    let method = child_of(&handler, "## fetch");
    method.record_exception("OrderError", "order service exploded for o-3");
    method.end();
    handler.record_exception("OrderError", "order service exploded for o-3");
    let [document] = finish(&handler).try_into().unwrap();
    let child = &document["subsegments"][0];
    let exception = &child["cause"]["exceptions"][0];
    assert_eq!(child["fault"], true);
    assert_eq!(exception["type"], "OrderError");
    assert_eq!(exception["message"], "order service exploded for o-3");
    assert_eq!(child["cause"]["working_directory"], working_directory());
    assert_eq!(document["fault"], true);
    assert_eq!(document["cause"], exception["id"]);
}

#[test]
fn a_different_error_on_the_parent_is_its_own_exception() {
    let handler = remote_child("## handler");
    let method = child_of(&handler, "## fetch");
    method.record_exception("OrderError", "one");
    method.end();
    handler.record_error(&std::io::Error::other("two"));
    let [document] = finish(&handler).try_into().unwrap();
    assert_eq!(document["cause"]["exceptions"][0]["message"], "two");
    assert!(document["cause"]["exceptions"][0].get("type").is_none());
}

#[test]
fn an_error_chain_links_each_exception_to_its_source() {
    #[derive(Debug, thiserror::Error)]
    #[error("order o-3 failed")]
    struct Outer(#[source] std::io::Error);
    let subsegment = remote_child("work");
    subsegment.record_error(&Outer(std::io::Error::other("connection reset")));
    let [document] = finish(&subsegment).try_into().unwrap();
    let exceptions = document["cause"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 2);
    assert_eq!(exceptions[0]["message"], "order o-3 failed");
    assert_eq!(exceptions[0]["cause"], exceptions[1]["id"]);
    assert_eq!(exceptions[1]["message"], "connection reset");
    assert!(exceptions[1].get("cause").is_none());
}

#[test]
fn an_oversized_document_is_split_into_standalone_subsegments() {
    let handler = remote_child("## handler");
    let big = "x".repeat(30_000);
    for _ in 0..3 {
        let child = child_of(&handler, "big");
        child.put_metadata_in("bulk", "payload", &big).unwrap();
        child.end();
    }
    let documents = finish(&handler);
    assert_eq!(documents.len(), 4);
    let handler_id = handler.id().unwrap().to_string();
    for child in &documents[..3] {
        assert_eq!(child["parent_id"], handler_id.as_str());
        assert_eq!(child["type"], "subsegment");
        assert_eq!(child["trace_id"], TRACE);
    }
    assert_eq!(documents[3]["id"], handler_id.as_str());
    assert!(documents[3].get("subsegments").is_none());
}

#[test]
fn a_parent_holding_too_many_children_lets_them_go() {
    let handler = remote_child("## handler");
    for _ in 0..=STREAM_CHILDREN {
        child_of(&handler, "step").end();
    }
    let Inner::Recording(node) = &handler.0 else { unreachable!() };
    assert!(node.state.lock().children.is_empty(), "streamed to the sender, not held");
    child_of(&handler, "last").end();
    let [document] = finish(&handler).try_into().unwrap();
    assert_eq!(document["subsegments"].as_array().unwrap().len(), 1);
}

#[test]
fn a_sent_tree_is_freed() {
    let handler = remote_child("## handler");
    let child = child_of(&handler, "step");
    let Inner::Recording(node) = &child.0 else { unreachable!() };
    let weak = Arc::downgrade(node);
    child.end();
    finish(&handler);
    drop(handler);
    assert!(weak.upgrade().is_none(), "a child must not keep its parent alive, nor the parent its child");
}

#[test]
fn a_tree_never_ended_is_freed() {
    let handler = remote_child("## handler");
    let (closed, open) = (child_of(&handler, "closed"), child_of(&handler, "open"));
    closed.clone().end();
    let weak = |subsegment: &Subsegment| match &subsegment.0 {
        Inner::Recording(node) => Arc::downgrade(node),
        _ => unreachable!(),
    };
    let nodes = [weak(&handler), weak(&closed), weak(&open)];
    drop((handler, closed, open));
    assert!(nodes.iter().all(|node| node.upgrade().is_none()), "dropped handles free the tree, ended or not");
}

#[test]
fn outgoing_headers_name_the_subsegment_and_carry_lineage() {
    let subsegment = remote_child("call");
    let id = subsegment.id().unwrap();
    assert_eq!(
        subsegment.trace_header().unwrap().to_string(),
        format!("Root={TRACE};Parent={id};Sampled=1;Lineage=a87bd80c:0")
    );
    let unsampled = Subsegment(Inner::Unsampled(TraceContext::from_header(TRACE.parse().unwrap(), None)));
    assert_eq!(
        unsampled.trace_header().unwrap().to_string(),
        format!("Root={TRACE};Parent=0000000000000000;Sampled=0")
    );
    assert!(!unsampled.is_recording());
    assert!(Subsegment::off().trace_header().is_none());

    let w3c_trace = "6744b000aaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(subsegment.traceparent().unwrap().to_string(), format!("00-{w3c_trace}-{id}-01"));
    // W3C has no zero parent id: an unsampled trace's is random, and the sampled flag is off.
    let first = unsampled.traceparent().unwrap();
    assert_eq!((first.trace_id, first.sampled), (TRACE.parse().unwrap(), false));
    assert!(first.to_string().starts_with(&format!("00-{w3c_trace}-")) && first.to_string().ends_with("-00"));
    assert_ne!(first.parent_id, unsampled.traceparent().unwrap().parent_id);
    assert!(Subsegment::off().traceparent().is_none());
    let names: Vec<&str> = subsegment.outgoing_headers().map(|(name, _)| name).collect();
    assert_eq!(names, ["x-amzn-trace-id", "traceparent"]);
    assert_eq!(Subsegment::off().outgoing_headers().count(), 0);
}

#[test]
fn incoming_headers_prefer_x_amzn_trace_id_then_traceparent() {
    let amzn = format!("Root={TRACE};Parent=1111111111111111;Sampled=0");
    let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let incoming = |amzn: Option<&str>, w3c: Option<&str>| {
        Segment::builder("api").incoming_headers(amzn, w3c).header.map(|header| header.to_string())
    };
    assert_eq!(incoming(Some(&amzn), Some(w3c)), Some(amzn.clone()));
    let from_w3c = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1";
    assert_eq!(incoming(None, Some(w3c)).as_deref(), Some(from_w3c));
    assert_eq!(incoming(Some("Root=nonsense"), Some(w3c)).as_deref(), Some(from_w3c));
    // A header without a trace (a load balancer's `Self`, a `Sampled=?` request) gives way to a traceparent.
    assert_eq!(incoming(Some("Sampled=?"), Some(w3c)).as_deref(), Some(from_w3c));
    assert_eq!(incoming(Some("Sampled=?"), Some("00-zz")).as_deref(), Some("Sampled=?"));
    assert_eq!(incoming(None, Some(&w3c.to_uppercase())), None);
    assert_eq!(incoming(None, None), None);
}

#[test]
fn a_segment_names_the_centralized_rule_that_sampled_it() {
    let trace = TraceContext::from_header(TRACE.parse().unwrap(), None);
    let segment = Subsegment::recording(trace, Parent::None, true, "orders");
    segment.state().unwrap().more().sampling_rule = Some("orders-rule".into());
    let [document] = finish(&segment).try_into().unwrap();
    assert_eq!(document["aws"]["xray"]["sampling_rule_name"], "orders-rule");
    assert_eq!(document["aws"]["xray"]["sdk"], "baton-tracer for Rust");
    let plain = Subsegment::recording(TraceContext::from_header(TRACE.parse().unwrap(), None), Parent::None, true, "x");
    let [document] = finish(&plain).try_into().unwrap();
    assert!(document["aws"]["xray"].get("sampling_rule_name").is_none(), "{document:#}");
}

#[test]
fn the_current_subsegment_follows_scopes_and_futures() {
    let outer = remote_child("outer");
    let inner = child_of(&outer, "inner");
    assert!(!context::current_subsegment().is_active());
    outer.in_scope(|| {
        assert_eq!(context::current_subsegment().id(), outer.id());
        inner.in_scope(|| assert_eq!(context::current_subsegment().id(), inner.id()));
        assert_eq!(context::current_subsegment().id(), outer.id());
    });
    assert!(!context::current_subsegment().is_active());

    let future = inner.instrument(async { context::current_subsegment().id() });
    let waker = std::task::Waker::noop();
    let mut future = std::pin::pin!(future);
    let polled = future.as_mut().poll(&mut std::task::Context::from_waker(waker));
    assert_eq!(polled, std::task::Poll::Ready(inner.id()));
    assert!(!context::current_subsegment().is_active());
}

#[test]
fn trace_ids_start_with_the_epoch_second() {
    let id = new_trace_id();
    let now = (now_micros() / 1_000_000) as u32;
    assert!(now - id.epoch() <= 1);
    assert_ne!(new_trace_id(), id);
}

#[test]
fn a_reused_node_records_as_a_new_one() {
    let handler = remote_child("## handler");
    handler.put_annotation("tier", "gold").unwrap();
    handler.put_metadata_in("orders", "request", &[1, 2]).unwrap();
    handler.set_fault();
    let step = child_of(&handler, "step");
    step.put_annotation("order_id", "o-1").unwrap();
    step.end();
    finish(&handler);
    let Inner::Recording(sent) = handler.0 else { unreachable!() };
    let cleared = crate::pool::clear(std::iter::once(sent));
    assert_eq!(cleared.len(), 2, "the segment and its embedded child");
    let pooled = cleared.into_iter().next().unwrap();
    let address = Arc::as_ptr(&pooled);

    let header = header(&format!("Root={TRACE};Parent=1111111111111111;Sampled=1"));
    let new = |pooled| {
        let trace = TraceContext::from_header(header.root.unwrap(), Some(&header));
        Subsegment::new_node(pooled, trace, Parent::Remote(header.parent.unwrap()), false, "fresh".into(), None)
    };
    let (fresh, reused) = (new(None), new(Some(pooled)));
    let Inner::Recording(node) = &reused.0 else { unreachable!() };
    assert_eq!(Arc::as_ptr(node), address, "the pooled node is filled in");
    let [mut expected] = finish(&fresh).try_into().unwrap();
    let [mut got] = finish(&reused).try_into().unwrap();
    for document in [&mut expected, &mut got] {
        let fields = document.as_object_mut().unwrap();
        for field in ["id", "start_time", "end_time"] {
            fields.remove(field);
        }
    }
    assert_eq!(got, expected, "nothing of the sent node's record is left");
}

#[test]
fn a_node_whose_handle_is_still_held_is_not_reused() {
    let handler = remote_child("## handler");
    let step = child_of(&handler, "step");
    let held = step.clone();
    step.end();
    finish(&handler);
    let Inner::Recording(sent) = handler.0 else { unreachable!() };
    let cleared = crate::pool::clear(std::iter::once(sent));
    let Inner::Recording(held) = &held.0 else { unreachable!() };
    assert_eq!(cleared.len(), 1, "only the segment");
    assert!(!Arc::ptr_eq(&cleared[0], held));
    assert_eq!(held.state.lock().name, "step", "the held node keeps its record");
}
