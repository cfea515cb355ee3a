//! A [`tracing_subscriber`] layer that turns the spans of any crate
//! instrumented with [`tracing`] into subsegments of the current segment.
//!
//! A span becomes a subsegment named after it, under the subsegment current
//! where the span is created (the entered span's, or one begun inside it), or,
//! for a span created with an explicit `parent:`, under that span's. Its
//! fields named `annotation.<key>` become annotations (indexed, searchable);
//! every other field becomes metadata under the `tracing` namespace. An
//! `error`-level event records a fault and an exception (its `error` field,
//! else its message) on the current subsegment. While a span is entered its
//! subsegment is current, so subsegments begun with this crate inside it are
//! its children.
//!
//! ```
//! use baton_tracer::Segment;
//! use baton_tracer::layer::SubsegmentLayer;
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry().with(SubsegmentLayer::default()).init();
//!
//! let segment = Segment::builder("orders").begin();
//! segment.in_scope(|| {
//!     // The subsegment `fetch`: annotation `order_id`, metadata `tracing.attempt`.
//!     let span = tracing::info_span!("fetch", annotation.order_id = "o-42", attempt = 1);
//!     let _entered = span.enter();
//!     // A fault on `fetch`, with the exception `timeout`.
//!     tracing::error!(error = "timeout", "fetch failed");
//! });
//! segment.end();
//! ```

use std::cell::RefCell;
use std::fmt::Debug;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::tracer;
use crate::context::{self, Entered};
use crate::entity::{Annotation, Subsegment};

/// The prefix of the span fields that become annotations.
const ANNOTATION_PREFIX: &str = "annotation.";
/// The metadata namespace of the other span fields.
const METADATA_NAMESPACE: &str = "tracing";

/// The layer that records spans as subsegments: `registry().with(SubsegmentLayer::default())`.
#[derive(Debug, Default)]
pub struct SubsegmentLayer {
    _private: (),
}

/// The subsegment of a span, kept in the span's extensions.
struct SpanSubsegment(Subsegment);

/// A span entered on this thread, with the guard that keeps its subsegment current.
struct Scope {
    span: Id,
    subsegment: Subsegment,
    _entered: Entered,
}

thread_local! {
    /// The spans entered on this thread that made their subsegment current, innermost last.
    static SCOPES: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for SubsegmentLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !tracer().config.enabled {
            return;
        }
        let name = attributes.metadata().name();
        // A contextual parent is entered on this thread, so the current subsegment is its
        // subsegment or one begun inside it, which is the closer parent.
        let explicit_parent = attributes.parent().and_then(|parent| span_subsegment(&ctx, parent));
        let subsegment = match explicit_parent {
            Some(parent) => parent.in_scope(|| Subsegment::begin(name)),
            None => Subsegment::begin(name),
        };
        if !subsegment.is_active() {
            return;
        }
        if subsegment.is_recording() {
            attributes.record(&mut Fields(&subsegment));
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanSubsegment(subsegment));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(subsegment) = span_subsegment(&ctx, id)
            && subsegment.is_recording()
        {
            values.record(&mut Fields(&subsegment));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR || !tracer().config.enabled {
            return;
        }
        // As for spans, a contextual event belongs to the current subsegment.
        let subsegment = match event.parent() {
            Some(parent) => span_subsegment(&ctx, parent),
            None if event.is_contextual() => Some(context::current_subsegment()),
            None => None,
        };
        let Some(subsegment) = subsegment.filter(Subsegment::is_recording) else { return };
        let mut message = ErrorMessage::default();
        event.record(&mut message);
        let text = message.error.or(message.message).unwrap_or_else(|| event.metadata().name().into());
        subsegment.record_exception("error", &text);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !tracer().config.enabled {
            return;
        }
        if let Some(subsegment) = span_subsegment(&ctx, id) {
            let entered = context::enter(&subsegment);
            SCOPES.with(|scopes| scopes.borrow_mut().push(Scope { span: id.clone(), subsegment, _entered: entered }));
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if !tracer().config.enabled {
            return;
        }
        SCOPES.with(|scopes| {
            let mut scopes = scopes.borrow_mut();
            let Some(position) = scopes.iter().rposition(|scope| scope.span == *id) else { return };
            // Each guard restores the subsegment that was current before it, so guards go newest
            // first; spans exited out of order leave the later ones entered, which are made current again.
            let still_entered: Vec<(Id, Subsegment)> =
                scopes.drain(position + 1..).rev().map(|Scope { span, subsegment, .. }| (span, subsegment)).collect();
            scopes.pop();
            for (span, subsegment) in still_entered.into_iter().rev() {
                let entered = context::enter(&subsegment);
                scopes.push(Scope { span, subsegment, _entered: entered });
            }
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !tracer().config.enabled {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        // Taken out, so the closed span keeps no handle to a subsegment that is sent.
        let subsegment = span.extensions_mut().remove::<SpanSubsegment>();
        if let Some(SpanSubsegment(subsegment)) = subsegment {
            subsegment.end();
        }
    }
}

/// The subsegment recorded for a span, if any.
fn span_subsegment<S>(ctx: &Context<'_, S>, id: &Id) -> Option<Subsegment>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    let extensions = span.extensions();
    extensions.get::<SpanSubsegment>().map(|SpanSubsegment(subsegment)| subsegment.clone())
}

/// Records span fields on a subsegment: `annotation.<key>` as annotations, the rest as metadata.
struct Fields<'a>(&'a Subsegment);

impl Fields<'_> {
    fn put<'a, V: Into<Annotation<'a>> + Serialize + Copy>(&self, field: &Field, value: V) {
        let name = field.name();
        if let Some(key) = name.strip_prefix(ANNOTATION_PREFIX)
            && self.0.put_annotation(key, value).is_ok()
        {
            return;
        }
        // Not an annotation, or one X-Ray would reject (a key with `-` or `.`): kept as metadata
        // rather than lost. Serializing these plain values cannot fail.
        let _ = self.0.put_metadata_in(METADATA_NAMESPACE, name, &value);
    }
}

impl Visit for Fields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        // `%value` fields arrive here too, their Debug being the value's Display.
        self.put(field, format!("{value:?}").as_str());
    }
}

/// The `error` field and the message of an event.
#[derive(Default)]
struct ErrorMessage {
    error: Option<String>,
    message: Option<String>,
}

impl ErrorMessage {
    fn slot(&mut self, field: &Field) -> Option<&mut Option<String>> {
        match field.name() {
            "error" => Some(&mut self.error),
            "message" => Some(&mut self.message),
            _ => None,
        }
    }
}

impl Visit for ErrorMessage {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value.into());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        // `error = &err as &dyn Error` and `%err` arrive here with Display as their Debug.
        if let Some(slot) = self.slot(field) {
            *slot = Some(format!("{value:?}"));
        }
    }
}
