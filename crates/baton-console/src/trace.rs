//! The trace view (`/traces/{id}`): a header with the trace's figures, the
//! segments timeline (every segment and subsegment a row of one tree, on one
//! time axis) and every row's details, all rendered here. The details are in
//! the page from the start, hidden, so the script only shows and hides.
//!
//! The tree follows `parent_id` across documents: a segment called by a
//! subsegment of another service is nested under that subsegment, so the
//! whole request reads top to bottom. Rows are a flat list with levels rather
//! than nested elements, because HTML parsers flatten elements nested deeper
//! than a few hundred levels and a chain of calls can be that deep.

use std::collections::{HashMap, HashSet};

use baton_model::time::format_iso;
use baton_model::{AnnotationValue, InvocationLog};
use baton_query::TraceSummary;
use serde_json::{Map, Value};

use crate::html::escape;
use crate::page::{self, View};

type Object = Map<String, Value>;

/// How many ticks the time axis aims at.
const TICKS: f64 = 6.0;

/// The origin of a Lambda function's own segment, whose `Initialization`,
/// `Invocation` and `Overhead` subsegments the Lambda service records.
const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";

/// The whole page of trace `id`, from its documents as `BatchGetTraces`
/// assembles them and the logs of its invocations; no documents means the
/// trace is unknown.
pub fn trace_page(id: &str, documents: &[Value], summary: Option<&TraceSummary>, logs: &[InvocationLog]) -> String {
    let title = format!("Trace {id}");
    let rows = rows(documents);
    if rows.is_empty() {
        return page::render(&title, View::Traces, None, "", &unknown(id));
    }
    let axis = Axis::of(&rows);
    let mut body = String::with_capacity(rows.len() * 2048);
    body.push_str("<div class=\"trace-view\">");
    header(&mut body, id, &rows, &axis, summary);
    body.push_str("<div class=\"trace-layout\">");
    timeline(&mut body, &rows, &axis);
    panels(&mut body, id, &rows, &axis);
    body.push_str("</div>");
    log_section(&mut body, logs);
    body.push_str("</div>");
    page::render(&title, View::Traces, None, "", &body)
}

/// The function logs of the trace's invocations (from `baton invoke` and
/// `baton lambda serve`), one block per invocation.
fn log_section(out: &mut String, logs: &[InvocationLog]) {
    if logs.is_empty() {
        return;
    }
    out.push_str("<section class=\"logs\" aria-label=\"Function logs\"><h2>Logs</h2>");
    for log in logs {
        out.push_str(&format!(
            "<h3><span class=\"log-function\">{}</span> <code>{}</code> <time>{}</time></h3><pre class=\"log\">",
            escape(&log.function),
            escape(&log.request_id),
            escape(&format_iso(log.time))
        ));
        for line in &log.lines {
            out.push_str(&escape(line));
            out.push('\n');
        }
        out.push_str("</pre>");
    }
    out.push_str("</section>");
}

fn unknown(id: &str) -> String {
    format!(
        concat!(
            "<section class=\"empty trace-unknown\"><h1>Trace not found</h1>",
            "<p>Baton has no documents for trace <code>{}</code>. The id may be mistyped, the trace may be ",
            "older than the retention, or its documents may not have been sent yet.</p>",
            "<p>Traces reach Baton from X-Ray SDKs and tools pointed at it. SDKs and agents that send to the ",
            "X-Ray daemon over UDP:</p><pre>AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000</pre>",
            "<p>The PutTraceSegments API, from the AWS CLI or an SDK:</p>",
            "<pre>aws xray put-trace-segments --endpoint-url http://127.0.0.1:2000 --trace-segment-documents …</pre>",
            "</section>"
        ),
        escape(id)
    )
}

/// A Lambda function's phase, as the Lambda service names its subsegments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initialization,
    Invocation,
    Overhead,
}

impl Phase {
    fn of(name: &str) -> Option<Phase> {
        match name {
            "Initialization" => Some(Phase::Initialization),
            "Invocation" => Some(Phase::Invocation),
            "Overhead" => Some(Phase::Overhead),
            _ => None,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Phase::Initialization => "phase-initialization",
            Phase::Invocation => "phase-invocation",
            Phase::Overhead => "phase-overhead",
        }
    }
}

/// One segment or subsegment, in the order the timeline shows it.
#[derive(Debug)]
struct Row<'a> {
    entity: &'a Object,
    /// 0 for a row without a parent row.
    depth: usize,
    /// A document of the trace rather than a subsegment embedded in one.
    document: bool,
    /// A document whose `parent_id` is in no document of the trace.
    orphan: bool,
    /// The `parent_id`, or for an embedded subsegment without one, the id of
    /// the entity it is embedded in.
    parent_id: Option<&'a str>,
    phase: Option<Phase>,
    has_children: bool,
}

impl<'a> Row<'a> {
    fn id(&self) -> &'a str {
        text(self.entity, "id").unwrap_or_default()
    }

    fn name(&self) -> &'a str {
        text(self.entity, "name").unwrap_or("(unnamed)")
    }

    fn is_segment(&self) -> bool {
        self.document && text(self.entity, "type") != Some("subsegment")
    }

    fn start(&self) -> Option<f64> {
        number(self.entity, "start_time")
    }

    /// The end, unless the entity is still in progress.
    fn end(&self) -> Option<f64> {
        if flag(self.entity, "in_progress") { None } else { number(self.entity, "end_time") }
    }

    fn elapsed(&self) -> Option<f64> {
        Some((self.end()? - self.start()?).max(0.0))
    }

    fn flags(&self) -> impl Iterator<Item = &'static str> {
        ["error", "throttle", "fault"].into_iter().filter(|name| flag(self.entity, name))
    }
}

/// A document or embedded subsegment waiting to become a row.
struct Pending<'a> {
    entity: &'a Object,
    depth: usize,
    parent: Option<usize>,
    /// Its index among the documents, if it is one.
    document: Option<usize>,
}

/// The rows of the timeline: depth-first, children by start time. Linear in
/// the number of entities (plus sorting each parent's children).
fn rows(documents: &[Value]) -> Vec<Row<'_>> {
    let documents: Vec<&Object> = documents.iter().filter_map(Value::as_object).collect();
    let mut known: HashSet<&str> = HashSet::new();
    let mut unseen: Vec<&Object> = documents.clone();
    while let Some(entity) = unseen.pop() {
        known.extend(text(entity, "id"));
        unseen.extend(embedded(entity));
    }

    let mut adopted: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        match text(document, "parent_id") {
            Some(parent) if known.contains(parent) && Some(parent) != text(document, "id") => {
                adopted.entry(parent).or_default().push(index);
            }
            _ => roots.push(index),
        }
    }
    roots.sort_by(|left, right| start_key(documents[*left]).total_cmp(&start_key(documents[*right])));
    // Documents whose parents form a cycle are reached from no root; they
    // come last, as roots, rather than not at all.
    roots.extend(0..documents.len());

    let mut rows: Vec<Row<'_>> = Vec::with_capacity(documents.len());
    let mut placed = vec![false; documents.len()];
    let mut stack: Vec<Pending<'_>> = Vec::new();
    for root in roots {
        stack.push(Pending { entity: documents[root], depth: 0, parent: None, document: Some(root) });
        while let Some(pending) = stack.pop() {
            if let Some(document) = pending.document {
                if placed[document] {
                    continue;
                }
                placed[document] = true;
            }
            let entity = pending.entity;
            let parent = pending.parent.map(|parent| &rows[parent]);
            let parent_id = text(entity, "parent_id").or_else(|| parent.map(Row::id));
            // The phase names are only Lambda's under a function's segment
            // (or with that segment missing); elsewhere they are an application's.
            let subsegment = pending.document.is_none() || text(entity, "type") == Some("subsegment");
            let under_function = parent
                .is_none_or(|parent| parent.is_segment() && text(parent.entity, "origin") == Some(LAMBDA_FUNCTION));
            let phase = text(entity, "name").and_then(Phase::of).filter(|_| subsegment && under_function);
            let row = rows.len();
            rows.push(Row {
                entity,
                depth: pending.depth,
                document: pending.document.is_some(),
                orphan: pending.document.is_some() && parent_id.is_some_and(|parent| !known.contains(parent)),
                parent_id,
                phase,
                has_children: false,
            });

            let mut children: Vec<(&Object, Option<usize>)> = embedded(entity).map(|child| (child, None)).collect();
            if let Some(adoptees) = text(entity, "id").and_then(|id| adopted.get(id)) {
                children.extend(adoptees.iter().map(|&index| (documents[index], Some(index))));
            }
            children.sort_by(|left, right| start_key(left.0).total_cmp(&start_key(right.0)));
            // Reversed, so that the earliest child is popped first.
            for (child, document) in children.into_iter().rev() {
                stack.push(Pending { entity: child, depth: pending.depth + 1, parent: Some(row), document });
            }
        }
    }
    for index in 1..rows.len() {
        if rows[index].depth > rows[index - 1].depth {
            rows[index - 1].has_children = true;
        }
    }
    rows
}

fn embedded(entity: &Object) -> impl Iterator<Item = &Object> {
    entity.get("subsegments").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// The start time to order by; entities without one go last.
fn start_key(entity: &Object) -> f64 {
    number(entity, "start_time").unwrap_or(f64::INFINITY)
}

fn text<'a>(entity: &'a Object, key: &str) -> Option<&'a str> {
    entity.get(key).and_then(Value::as_str)
}

fn number(entity: &Object, key: &str) -> Option<f64> {
    entity.get(key).and_then(Value::as_f64)
}

fn flag(entity: &Object, key: &str) -> bool {
    entity.get(key).and_then(Value::as_bool) == Some(true)
}

/// The shared time axis: the earliest start to the latest end (or start,
/// for what is still in progress).
#[derive(Debug)]
struct Axis {
    start: f64,
    /// Seconds; never zero, so that positions can be divided by it.
    span: f64,
    /// The earliest start to the latest end, if anything ended.
    duration: Option<f64>,
    /// Between two ticks, seconds.
    step: f64,
}

impl Axis {
    fn of(rows: &[Row<'_>]) -> Axis {
        let mut start = f64::INFINITY;
        let mut last = f64::NEG_INFINITY;
        let mut end = f64::NEG_INFINITY;
        for row in rows {
            if let Some(row_start) = row.start() {
                start = start.min(row_start);
                last = last.max(row_start);
            }
            if let Some(row_end) = row.end() {
                end = end.max(row_end);
            }
        }
        if !start.is_finite() {
            start = 0.0;
        }
        let duration = end.is_finite().then(|| (end - start).max(0.0));
        let span = (end.max(last) - start).max(0.001);
        Axis { start, span, duration, step: tick_step(span) }
    }

    /// Where `time` falls, as a percentage of the axis.
    fn percent(&self, time: f64) -> f64 {
        ((time - self.start) / self.span * 100.0).clamp(0.0, 100.0)
    }
}

/// A round step (1, 2 or 5 times a power of ten) giving about [`TICKS`]
/// ticks over `span`.
fn tick_step(span: f64) -> f64 {
    let rough = span / TICKS;
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0]
        .into_iter()
        .map(|multiple| multiple * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude)
}

/// A tick's label: milliseconds under a second of span, else seconds, with
/// as many decimals as the step needs.
fn tick_label(value: f64, step: f64, span: f64) -> String {
    let (value, step, unit) = if span < 1.0 { (value * 1000.0, step * 1000.0, "ms") } else { (value, step, "s") };
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    format!("{value:.decimals$} {unit}")
}

/// A duration for people: `0.42 ms`, `12.3 ms`, `450 ms`, `1.25 s`, `312 s`.
fn duration(seconds: f64) -> String {
    let millis = seconds * 1000.0;
    if millis < 1.0 {
        format!("{millis:.2} ms")
    } else if millis < 100.0 {
        format!("{millis:.1} ms")
    } else if seconds < 1.0 {
        format!("{millis:.0} ms")
    } else if seconds < 100.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{seconds:.0} s")
    }
}

fn count(number: usize, noun: &str) -> String {
    if number == 1 { format!("1 {noun}") } else { format!("{number} {noun}s") }
}

fn or_dash(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), duration)
}

/// The status word X-Ray's console would show, the most severe first.
fn status(fault: bool, error: bool, throttle: bool) -> &'static str {
    if fault {
        "fault"
    } else if throttle {
        "throttle"
    } else if error {
        "error"
    } else {
        "ok"
    }
}

/// The trace's entry: its root segment, else its earliest segment without
/// a parent row, else its earliest row without one (as `summarize` picks).
fn entry<'r, 'a>(rows: &'r [Row<'a>]) -> &'r Row<'a> {
    let roots = || rows.iter().filter(|row| row.depth == 0);
    roots()
        .find(|row| row.is_segment() && text(row.entity, "parent_id").is_none())
        .or_else(|| roots().find(|row| row.is_segment()))
        .unwrap_or(&rows[0])
}

fn header(out: &mut String, id: &str, rows: &[Row<'_>], axis: &Axis, summary: Option<&TraceSummary>) {
    let entry = entry(rows);
    let (response_time, total, word, partial) = match summary {
        Some(summary) => (
            summary.response_time,
            summary.duration,
            status(summary.has_fault, summary.has_error, summary.has_throttle),
            summary.is_partial,
        ),
        None => (
            entry.elapsed(),
            axis.duration,
            status(flag(entry.entity, "fault"), flag(entry.entity, "error"), flag(entry.entity, "throttle")),
            rows.iter().any(|row| row.end().is_none()),
        ),
    };
    let segment_count = rows.iter().filter(|row| row.is_segment()).count();
    let (id, response, total, started) = (escape(id), or_dash(response_time), or_dash(total), format_iso(axis.start));
    let (segments, subsegments) = (count(segment_count, "segment"), count(rows.len() - segment_count, "subsegment"));
    out.push_str(&format!(
        "<header class=\"trace-head\"><h1>Trace <code>{id}</code></h1><dl class=\"trace-facts\">\
         <div><dt>Status</dt><dd class=\"status-{word}\">{word}</dd></div>\
         <div><dt>Response time</dt><dd>{response}</dd></div>\
         <div><dt>Duration</dt><dd>{total}</dd></div>\
         <div><dt>Started</dt><dd>{started}</dd></div>\
         <div><dt>Entities</dt><dd>{segments}, {subsegments}</dd></div></dl>"
    ));
    let cold = rows.iter().any(|row| row.phase == Some(Phase::Initialization));
    if cold || partial {
        out.push_str("<p class=\"trace-tags\">");
        if cold {
            out.push_str("<span class=\"tag cold-start\" title=\"The Lambda function initialised for this request\">cold start</span>");
        }
        if partial {
            out.push_str("<span class=\"tag in-progress\">in progress</span>");
        }
        out.push_str("</p>");
    }
    if let Some(summary) = summary {
        summary_lists(out, summary);
    }
    out.push_str("</header>");
}

fn summary_lists(out: &mut String, summary: &TraceSummary) {
    if !summary.service_ids.is_empty() {
        out.push_str("<div class=\"trace-services\"><h2>Services</h2><ul>");
        for service in &summary.service_ids {
            out.push_str(&format!("<li><span class=\"name\">{}</span>", escape(&service.name)));
            if let Some(kind) = &service.kind {
                out.push_str(&format!(" <span class=\"origin\">{}</span>", escape(kind)));
            }
            if let Some(account) = &service.account_id {
                out.push_str(&format!(" <span class=\"account\">{}</span>", escape(account)));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul></div>");
        let elements = baton_query::graph::contributions(summary);
        if !elements.is_empty() {
            out.push_str("<div class=\"trace-map\"><h2>Map of this trace</h2>");
            out.push_str(&crate::map::trace_map(&elements));
            out.push_str("</div>");
        }
    }
    if !summary.annotations.is_empty() {
        out.push_str("<div class=\"trace-annotations\"><h2>Annotations</h2><ul>");
        for annotation in &summary.annotations {
            for value in &annotation.values {
                let shown = match &value.value {
                    AnnotationValue::String(text) => format!("\"{text}\""),
                    AnnotationValue::Number(number) => number.to_string(),
                    AnnotationValue::Bool(flag) => flag.to_string(),
                };
                out.push_str(&format!("<li><code>{} = {}</code></li>", escape(&annotation.key), escape(&shown)));
            }
        }
        out.push_str("</ul></div>");
    }
}

fn timeline(out: &mut String, rows: &[Row<'_>], axis: &Axis) {
    out.push_str(&format!(
        concat!(
            "<div class=\"timeline\" style=\"--step:{:.4}%\"><div class=\"axis\" aria-hidden=\"true\">",
            "<span class=\"axis-label\">Segment</span><span class=\"ticks\">",
        ),
        axis.step / axis.span * 100.0
    ));
    // Multiples of the step rather than a running sum, which drifts.
    let ticks = (axis.span / axis.step * (1.0 + 1e-9)).floor() as usize;
    for index in 0..=ticks {
        let tick = index as f64 * axis.step;
        let left = tick / axis.span * 100.0;
        // A label at the right end is drawn left of its line, to stay on the axis.
        let class = if left > 90.0 { "tick end" } else { "tick" };
        out.push_str(&format!(
            "<span class=\"{class}\" style=\"left:{left:.4}%\">{}</span>",
            tick_label(tick, axis.step, axis.span)
        ));
    }
    out.push_str(concat!(
        "</span><span class=\"axis-label\">Duration</span></div>",
        "<div id=\"timeline\" class=\"rows\" role=\"tree\" aria-label=\"Segments timeline\">",
    ));
    for (index, row) in rows.iter().enumerate() {
        timeline_row(out, row, axis, index == 0);
    }
    out.push_str(concat!(
        "</div><p class=\"hint\">Click a row, or press Enter, for its details. Keys: ↑ ↓ move, ",
        "← → collapse and expand, Space toggles.</p></div>",
    ));
}

fn timeline_row(out: &mut String, row: &Row<'_>, axis: &Axis, first: bool) {
    let id = escape(row.id());
    let mut classes = String::from(if row.is_segment() { "row segment" } else { "row subsegment" });
    for name in row.flags() {
        classes.push(' ');
        classes.push_str(name);
    }
    if row.end().is_none() {
        classes.push_str(" in-progress");
    }
    if let Some(phase) = row.phase {
        classes.push(' ');
        classes.push_str(phase.class());
    }
    out.push_str(&format!(
        "<div class=\"{classes}\" role=\"treeitem\" id=\"seg-{id}\" aria-controls=\"panel-{id}\" aria-level=\"{}\"{} aria-selected=\"false\" tabindex=\"{}\">",
        row.depth + 1,
        if row.has_children { " aria-expanded=\"true\"" } else { "" },
        if first { 0 } else { -1 },
    ));
    out.push_str(&format!(
        "<span class=\"label\" style=\"--depth:{}\"><span class=\"toggle\" aria-hidden=\"true\"></span><span class=\"name\">{}</span>",
        row.depth,
        escape(row.name())
    ));
    if row.is_segment()
        && let Some(origin) = text(row.entity, "origin")
    {
        out.push_str(&format!("<span class=\"origin\">{}</span>", escape(origin)));
    }
    marks(out, row);
    out.push_str("</span><span class=\"lane\">");
    if let Some(start) = row.start() {
        let left = axis.percent(start);
        let (right, title) = match row.elapsed() {
            Some(elapsed) => (axis.percent(start + elapsed), duration(elapsed)),
            None => (100.0, "in progress".to_owned()),
        };
        out.push_str(&format!(
            "<span class=\"bar\" style=\"left:{left:.3}%;width:{:.3}%\" title=\"+{} · {title}\"></span>",
            right - left,
            duration(start - axis.start),
        ));
    }
    let shown = match (row.start(), row.elapsed()) {
        (Some(_), Some(elapsed)) => duration(elapsed),
        (Some(_), None) => "in progress".to_owned(),
        (None, _) => String::new(),
    };
    out.push_str(&format!("</span><span class=\"duration\">{shown}</span></div>"));
}

/// The row's badges: flags, Lambda phase, cold start, a missing parent.
fn marks(out: &mut String, row: &Row<'_>) {
    for name in row.flags() {
        out.push_str(&format!("<span class=\"mark mark-{name}\">{name}</span>"));
    }
    if row.phase.is_some() {
        out.push_str(
            "<span class=\"tag lambda\" title=\"A phase of the Lambda function, recorded by Lambda\">λ</span>",
        );
    }
    if row.phase == Some(Phase::Initialization) {
        out.push_str("<span class=\"tag cold-start\">cold start</span>");
    }
    if row.orphan {
        out.push_str("<span class=\"note\">parent not received</span>");
    }
}

fn panels(out: &mut String, trace_id: &str, rows: &[Row<'_>], axis: &Axis) {
    // Which row records each exception, for causes that only name one.
    let mut recorded_by: HashMap<&str, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        for exception in exception_list(row.entity) {
            if let Some(id) = text(exception, "id") {
                recorded_by.entry(id).or_insert(index);
            }
        }
    }
    out.push_str(concat!(
        "<aside class=\"panel\" aria-label=\"Segment details\">",
        "<p id=\"panel-empty\" class=\"panel-empty\">Select a row of the timeline to see its details here.</p>",
    ));
    for row in rows {
        panel(out, trace_id, row, rows, axis, &recorded_by);
    }
    out.push_str("</aside>");
}

fn exception_list(entity: &Object) -> impl Iterator<Item = &Object> {
    entity
        .get("cause")
        .and_then(|cause| cause.get("exceptions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn panel(
    out: &mut String,
    trace_id: &str,
    row: &Row<'_>,
    rows: &[Row<'_>],
    axis: &Axis,
    recorded_by: &HashMap<&str, usize>,
) {
    let entity = row.entity;
    let id = escape(row.id());
    out.push_str(&format!(
        "<section id=\"panel-{id}\" class=\"details\" hidden><h2><span class=\"name\">{}</span>",
        escape(row.name())
    ));
    marks(out, row);
    out.push_str("</h2><dl class=\"overview\">");
    let kind = if row.is_segment() { "segment" } else { "subsegment" };
    item(out, "Kind", kind);
    item(out, "Id", &format!("<code>{id}</code>"));
    if let Some(parent) = row.parent_id {
        let parent = escape(parent);
        let shown = if row.orphan {
            format!("<code>{parent}</code> <span class=\"note\">parent not received</span>")
        } else {
            format!("<a href=\"#seg-{parent}\"><code>{parent}</code></a>")
        };
        item(out, "Parent id", &shown);
    }
    item(out, "Trace id", &format!("<code>{}</code>", escape(text(entity, "trace_id").unwrap_or(trace_id))));
    if let Some(start) = row.start() {
        let offset = duration(start - axis.start);
        item(out, "Start", &format!("{} <span class=\"muted\">+{offset}</span>", format_iso(start)));
    }
    match row.end() {
        Some(end) => item(out, "End", &format_iso(end)),
        None => item(out, "End", "<span class=\"tag in-progress\">in progress</span>"),
    }
    if let Some(elapsed) = row.elapsed() {
        item(out, "Duration", &duration(elapsed));
    }
    for (label, key) in
        [("Origin", "origin"), ("Namespace", "namespace"), ("User", "user"), ("Resource ARN", "resource_arn")]
    {
        if let Some(value) = text(entity, key) {
            item(out, label, &escape(value));
        }
    }
    let flags: Vec<&str> = row.flags().collect();
    let word = status(flags.contains(&"fault"), flags.contains(&"error"), flags.contains(&"throttle"));
    let shown = if flags.is_empty() { "ok".to_owned() } else { flags.join(", ") };
    item(out, "Status", &format!("<span class=\"status-{word}\">{shown}</span>"));
    out.push_str("</dl>");

    annotations(out, entity);
    metadata(out, entity);
    for (title, key) in [("HTTP", "http"), ("AWS", "aws"), ("SQL", "sql")] {
        if let Some(block) = entity.get(key) {
            out.push_str(&format!("<h3>{title}</h3>"));
            json(out, block);
        }
    }
    exceptions(out, entity, rows, recorded_by);
    raw(out, entity);
    out.push_str("</section>");
}

/// One line of the overview; `html` is already escaped.
fn item(out: &mut String, label: &str, html: &str) {
    out.push_str(&format!("<dt>{label}</dt><dd>{html}</dd>"));
}

fn annotations(out: &mut String, entity: &Object) {
    out.push_str("<h3>Annotations</h3>");
    let Some(annotations) = entity.get("annotations").and_then(Value::as_object).filter(|map| !map.is_empty()) else {
        out.push_str("<p class=\"muted\">None.</p>");
        return;
    };
    out.push_str("<table class=\"annotations\"><thead><tr><th>Key</th><th>Value</th><th>Type</th></tr></thead><tbody>");
    for (key, value) in annotations {
        let (shown, kind) = match value {
            Value::String(text) => (escape(text).into_owned(), "string"),
            Value::Number(number) => (number.to_string(), "number"),
            Value::Bool(flag) => (flag.to_string(), "boolean"),
            other => (escape(&other.to_string()).into_owned(), "json"),
        };
        out.push_str(&format!(
            "<tr><td><code>{}</code></td><td class=\"value-{kind}\">{shown}</td><td>{kind}</td></tr>",
            escape(key)
        ));
    }
    out.push_str("</tbody></table>");
}

fn metadata(out: &mut String, entity: &Object) {
    out.push_str("<h3>Metadata</h3>");
    match entity.get("metadata") {
        Some(Value::Object(namespaces)) if !namespaces.is_empty() => {
            for (namespace, value) in namespaces {
                out.push_str(&format!("<h4>{}</h4>", escape(namespace)));
                json(out, value);
            }
        }
        None | Some(Value::Null | Value::Object(_)) => out.push_str("<p class=\"muted\">None.</p>"),
        Some(other) => json(out, other),
    }
}

fn exceptions(out: &mut String, entity: &Object, rows: &[Row<'_>], recorded_by: &HashMap<&str, usize>) {
    match entity.get("cause") {
        Some(Value::String(exception)) => {
            out.push_str(&format!(
                "<h3>Exceptions</h3><p class=\"cause-ref\">Failed with exception <code>{}</code>, recorded on a child: ",
                escape(exception)
            ));
            match recorded_by.get(exception.as_str()).map(|&index| &rows[index]) {
                Some(child) => {
                    out.push_str(&format!("<a href=\"#seg-{}\">{}</a>.</p>", escape(child.id()), escape(child.name())))
                }
                None => out.push_str("that child is not in this trace.</p>"),
            }
        }
        Some(Value::Object(cause)) => {
            out.push_str("<h3>Exceptions</h3>");
            if let Some(directory) = text(cause, "working_directory") {
                out.push_str(&format!("<p class=\"muted\">Working directory <code>{}</code></p>", escape(directory)));
            }
            for exception in exception_list(entity) {
                exception_html(out, exception);
            }
        }
        _ => {}
    }
}

fn exception_html(out: &mut String, exception: &Object) {
    out.push_str(&format!(
        "<div class=\"exception\"><p><strong>{}</strong>",
        escape(text(exception, "type").unwrap_or("Exception"))
    ));
    if let Some(message) = text(exception, "message") {
        out.push_str(&format!(": <span class=\"message\">{}</span>", escape(message)));
    }
    if flag(exception, "remote") {
        out.push_str(" <span class=\"tag\">remote</span>");
    }
    out.push_str("</p>");
    if let Some(cause) = text(exception, "cause") {
        out.push_str(&format!("<p class=\"muted\">Caused by exception <code>{}</code></p>", escape(cause)));
    }
    let frames: Vec<&Object> =
        exception.get("stack").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    if !frames.is_empty() {
        out.push_str("<ol class=\"stack\">");
        for frame in frames {
            let line = frame.get("line").map(|line| format!(":{line}")).unwrap_or_default();
            out.push_str(&format!(
                "<li><code>{}{}</code> {}</li>",
                escape(text(frame, "path").unwrap_or("?")),
                escape(&line),
                escape(text(frame, "label").unwrap_or_default())
            ));
        }
        out.push_str("</ol>");
    }
    if let Some(truncated) = exception.get("truncated").and_then(Value::as_u64).filter(|count| *count > 0) {
        out.push_str(&format!("<p class=\"muted\">{truncated} more frames not recorded</p>"));
    }
    if let Some(skipped) = exception.get("skipped").and_then(Value::as_u64).filter(|count| *count > 0) {
        out.push_str(&format!("<p class=\"muted\">{skipped} more exceptions not recorded</p>"));
    }
    out.push_str("</div>");
}

/// The entity's own JSON: its subsegments are rows of their own, and
/// repeating them under every ancestor would grow the page with the square
/// of the depth.
fn raw(out: &mut String, entity: &Object) {
    let children = entity.get("subsegments").and_then(Value::as_array).map_or(0, Vec::len);
    let own: Object = entity
        .iter()
        .filter(|(key, _)| *key != "subsegments")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    out.push_str("<details class=\"raw\"><summary>Raw document");
    if children > 0 {
        let children = count(children, "subsegment");
        out.push_str(&format!(" <span class=\"muted\">({children} left out: each is a row of its own)</span>"));
    }
    out.push_str("</summary>");
    json(out, &Value::Object(own));
    out.push_str("</details>");
}

/// `value` pretty-printed, as text.
fn json(out: &mut String, value: &Value) {
    let pretty = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
    out.push_str("<pre>");
    out.push_str(&escape(&pretty));
    out.push_str("</pre>");
}

#[cfg(test)]
mod tests;
