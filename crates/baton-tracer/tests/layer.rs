//! `SubsegmentLayer` records `tracing` spans as subsegments: nesting (contextual
//! and explicit parents, the tracer's own subsegments inside spans, async
//! spans across `.await` and `tokio::spawn`, spans exited out of order),
//! annotation and metadata fields, and error events. One test: the tracer
//! initialises once per process.

mod support;

use baton_tracer::layer::SubsegmentLayer;
use baton_tracer::{Sampler, Segment, Subsegment};
use serde_json::{Value, json};
use support::{documents, trace_to_local_daemon};
use tracing::{Instrument, info_span};
use tracing_subscriber::layer::SubscriberExt;

/// The child of `parent` named `name`, checked to point back at it.
fn child<'a>(parent: &'a Value, name: &str) -> &'a Value {
    let children = parent["subsegments"].as_array().unwrap_or_else(|| panic!("{} has no subsegments", parent["name"]));
    let found = children
        .iter()
        .find(|child| child["name"] == name)
        .unwrap_or_else(|| panic!("{} has no subsegment {name}: {children:#?}", parent["name"]));
    assert_eq!(found["parent_id"], parent["id"], "{name}'s parent");
    assert_eq!(found["trace_id"], parent["trace_id"], "{name}'s trace");
    found
}

fn names(parent: &Value) -> Vec<&str> {
    parent["subsegments"]
        .as_array()
        .map_or(Vec::new(), |children| children.iter().map(|child| child["name"].as_str().unwrap()).collect())
}

fn traced_work(runtime: &tokio::runtime::Runtime) {
    // Outside any segment a span records nothing.
    info_span!("orphan", annotation.ignored = 1).in_scope(|| Subsegment::begin("orphan-child").end());

    let segment = Segment::builder("layer-test").begin();
    segment.in_scope(|| {
        let checkout = info_span!(
            "checkout",
            annotation.order_id = %"o-42",
            annotation.items = 3u64,
            annotation.express = true,
            annotation.weight = 1.5,
            cart = ?["a", "b"],
            customer = "c-1",
            retries = tracing::field::Empty,
        );
        checkout.in_scope(|| {
            checkout.record("retries", 2);
            baton_tracer::put_annotation("via_current", "yes").unwrap();
            let own = Subsegment::begin("own");
            own.put_annotation("inner", 1).unwrap();
            own.in_scope(|| tracing::error!("own failed"));
            own.end();
            info_span!("payment", annotation.card.kind = "visa").in_scope(|| {
                tracing::warn!(error = "not an exception", "warnings are ignored");
                tracing::error!(error = %std::io::Error::other("card declined"), "payment failed");
            });
        });
        // Created outside `checkout`, with `checkout` as its explicit parent.
        info_span!(parent: &checkout, "audit").in_scope(|| {});

        let first = info_span!("first").entered();
        let second = info_span!("second").entered();
        drop(first);
        Subsegment::begin("in-second").end();
        drop(second);
        Subsegment::begin("after-both").end();

        runtime.block_on(
            async {
                tokio::task::yield_now().await;
                Subsegment::begin("after-await").end();
                info_span!("async-child").in_scope(|| {});
                let spawned = tokio::spawn(
                    async {
                        tokio::task::yield_now().await;
                        Subsegment::begin("in-spawned").end();
                    }
                    .instrument(info_span!("spawned")),
                );
                spawned.await.unwrap();
            }
            .instrument(info_span!("async-work", annotation.kind = "async")),
        );
    });
    segment.end();
}

#[test]
fn spans_become_subsegments() {
    let all = Sampler::from_json(r#"{"version": 2, "default": {"fixed_target": 0, "rate": 1.0}}"#).unwrap();
    let receiver = trace_to_local_daemon("layer-test", all);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(SubsegmentLayer::default()), || {
        traced_work(&runtime);
    });
    baton_tracer::flush();

    let [segment] = <[Value; 1]>::try_from(documents(&receiver))
        .unwrap_or_else(|documents| panic!("only the segment is sent, everything embedded: {documents:?}"));

    assert_eq!(segment["name"], "layer-test");
    // Children in the order they ended: a span ends when it closes, after its child spans.
    assert_eq!(names(&segment), ["first", "after-both", "async-work", "checkout"], "{segment:#}");

    let checkout = child(&segment, "checkout");
    let annotations = json!({"order_id": "o-42", "items": 3, "express": true, "weight": 1.5, "via_current": "yes"});
    assert_eq!(checkout["annotations"], annotations);
    assert_eq!(checkout["metadata"], json!({"tracing": {"cart": "[\"a\", \"b\"]", "customer": "c-1", "retries": 2}}));
    assert_eq!(checkout["fault"], Value::Null, "a child's failure is not the span's");
    assert_eq!(names(checkout), ["own", "payment", "audit"]);

    let own = child(checkout, "own");
    assert_eq!(own["annotations"], json!({"inner": 1}));
    assert_eq!(own["fault"], true);
    let exceptions = own["cause"]["exceptions"].as_array().unwrap();
    assert_eq!(
        (exceptions.len(), &exceptions[0]["type"], &exceptions[0]["message"]),
        (1, &json!("error"), &json!("own failed"))
    );

    let payment = child(checkout, "payment");
    assert_eq!(payment["annotations"], Value::Null);
    assert_eq!(
        payment["metadata"],
        json!({"tracing": {"annotation.card.kind": "visa"}}),
        "an invalid key stays as metadata"
    );
    assert_eq!(payment["fault"], true);
    let exceptions = payment["cause"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 1, "warnings are not exceptions: {exceptions:?}");
    assert_eq!((&exceptions[0]["type"], &exceptions[0]["message"]), (&json!("error"), &json!("card declined")));

    let audit = child(checkout, "audit");
    assert_eq!(
        (&audit["annotations"], &audit["metadata"], &audit["subsegments"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );

    // `first` was exited before `second`: `second` stayed current until it was exited.
    let first = child(&segment, "first");
    assert_eq!(names(first), ["second"]);
    assert_eq!(names(child(first, "second")), ["in-second"]);
    assert_eq!(child(&segment, "after-both")["subsegments"], Value::Null);

    let async_work = child(&segment, "async-work");
    assert_eq!(async_work["annotations"], json!({"kind": "async"}));
    assert_eq!(names(async_work), ["after-await", "async-child", "spawned"]);
    assert_eq!(names(child(async_work, "spawned")), ["in-spawned"]);
}
