//! The trace search page (`/traces`): a filter box, the response-time
//! distribution of the matching traces, and a page of their summaries.
//!
//! Also the pieces the service map shares with it: links to a search,
//! filter text built from values, the distribution chart, and number
//! formatting.

use std::fmt::Write;

use baton_model::AnnotationValue;
use baton_model::time::format_iso;
use baton_query::TraceSummary;
use baton_query::filter::FilterError;

use crate::html::{escape, query_component};
use crate::page::{self, View};
use crate::window::{RANGES, TimeWindow};

/// What the trace search page shows; the server fills it from the URL and
/// the store.
#[derive(Debug, Clone)]
pub struct TracesView {
    /// The window searched.
    pub window: TimeWindow,
    /// The filter expression as typed; empty for every trace.
    pub filter: String,
    /// Why `filter` could not be run, when it could not.
    pub error: Option<FilterError>,
    /// This page of matching traces, in the order to list them.
    pub summaries: Vec<TraceSummary>,
    /// The response times of the matching traces, for the distribution chart.
    pub response_times: Vec<f64>,
    /// `response_times` holds only the first matching traces, not all.
    pub response_times_capped: bool,
    /// The opaque token of the next page, when there is one.
    pub next: Option<String>,
}

/// How to send traces to Baton, for pages with nothing to show.
pub(crate) const SENDING_HELP: &str = concat!(
    "<p>Baton takes the X-Ray daemon protocol on UDP and the X-Ray API on TCP, both on port 2000. ",
    "Point the X-Ray SDKs and Powertools at it with</p>",
    "<pre><code>AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000</code></pre>",
    "<p>or send segment documents with the AWS CLI:</p>",
    "<pre><code>aws xray put-trace-segments --endpoint-url http://127.0.0.1:2000 \\\n",
    "  --trace-segment-documents '{\"name\": \"api\", …}'</code></pre>",
    "<p>Older traces may be outside the time range: pick a longer one above.</p>",
);

/// The trace search page.
pub fn traces_page(view: &TracesView) -> String {
    let window_query = view.window.query();
    let mut body = String::with_capacity(4096 + view.summaries.len() * 1024);
    body.push_str("<div class=\"traces\" id=\"traces\">");
    filter_form(&mut body, view);
    if let Some(error) = &view.error {
        filter_error(&mut body, &view.filter, error);
    } else if view.summaries.is_empty() {
        no_traces(&mut body, view);
    } else {
        if !view.response_times.is_empty() {
            body.push_str("<section class=\"distribution\"><h2>Response time</h2>");
            let count = count_text(view.response_times.len() as i64);
            let described = if view.response_times_capped {
                format!("The first {count} matching traces")
            } else {
                format!("{count} matching traces")
            };
            let _ = write!(
                body,
                "<p class=\"distribution-note\">{described}; choose a bar to narrow the search to it.</p>"
            );
            let buckets = distribution(view.response_times.iter().map(|seconds| (*seconds, 1)));
            body.push_str(&chart(&buckets, "traces", CHART_WIDTH, |bucket| {
                Some(traces_href(&narrowed(&view.filter, &bucket.condition()), &window_query, None))
            }));
            body.push_str("</section>");
        }
        trace_list(&mut body, view, &window_query);
        if let Some(next) = &view.next {
            let href = traces_href(&view.filter, &window_query, Some(next));
            let _ = write!(body, "<p class=\"paging\"><a rel=\"next\" href=\"{}\">Next page</a></p>", escape(&href));
        }
    }
    body.push_str("</div>");
    let carried =
        if view.filter.is_empty() { String::new() } else { format!("filter={}", query_component(&view.filter)) };
    page::render("Traces", View::Traces, Some(&view.window), &carried, &body)
}

/// The width of the search page's chart, pixels.
const CHART_WIDTH: u32 = 640;

/// The GET form: the filter and the window, so that a search keeps it.
fn filter_form(body: &mut String, view: &TracesView) {
    body.push_str(concat!(
        "<form class=\"filter\" action=\"/traces\" method=\"get\" role=\"search\">",
        "<label for=\"filter\">Filter</label>",
        "<input id=\"filter\" name=\"filter\" autocomplete=\"off\" spellcheck=\"false\" ",
        "placeholder=\"service(&quot;api&quot;) { fault } AND responsetime &gt; 1\"",
    ));
    let _ = write!(body, " value=\"{}\"", escape(&view.filter));
    if let Some(error) = &view.error {
        // The script puts the cursor there, in UTF-16 units as inputs count.
        let position = view.filter.floor_char_boundary(error.position());
        let at = view.filter[..position].encode_utf16().count();
        let _ = write!(body, " aria-invalid=\"true\" aria-describedby=\"filter-error\" data-error-at=\"{at}\"");
    }
    body.push('>');
    match view.window.range {
        Some(range) => {
            let _ = write!(body, "<input type=\"hidden\" name=\"range\" value=\"{range}\">");
        }
        None => {
            let (start, end) = (view.window.start, view.window.end);
            let _ = write!(
                body,
                "<input type=\"hidden\" name=\"start\" value=\"{start}\"><input type=\"hidden\" name=\"end\" value=\"{end}\">"
            );
        }
    }
    body.push_str("<button>Search</button></form>");
}

/// The error under the box: the line at fault with the spot marked, and why.
fn filter_error(body: &mut String, filter: &str, error: &FilterError) {
    let position = filter.floor_char_boundary(error.position());
    let line_start = filter[..position].rfind('\n').map_or(0, |newline| newline + 1);
    let line_end = filter[position..].find('\n').map_or(filter.len(), |newline| position + newline);
    let marked_end = filter[position..line_end].chars().next().map_or(position, |c| position + c.len_utf8());
    // Past the end, a space stands for the missing text so the mark shows.
    let marked = if marked_end == position { " " } else { &filter[position..marked_end] };
    let indent: String = filter[line_start..position].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let _ = write!(
        body,
        concat!(
            "<div class=\"filter-error\" id=\"filter-error\" role=\"alert\">",
            "<pre><code>{}<mark>{}</mark>{}\n{}^</code></pre>",
            "<p>{} <span class=\"position\">(at byte {})</span></p></div>"
        ),
        escape(&filter[line_start..position]),
        escape(marked),
        escape(&filter[marked_end..line_end]),
        indent,
        escape(error.message()),
        error.position(),
    );
}

/// The empty states: nothing in the window, or nothing the filter matches.
fn no_traces(body: &mut String, view: &TracesView) {
    if view.filter.trim().is_empty() {
        body.push_str("<div class=\"empty\"><h2>No traces in this time range</h2>");
        body.push_str(SENDING_HELP);
        body.push_str("</div>");
        return;
    }
    body.push_str(
        "<div class=\"empty\"><h2>No trace matches this filter</h2><p>No trace in this time range matches it.",
    );
    let length = view.window.end - view.window.start;
    match RANGES.iter().find(|(_, seconds)| *seconds > length) {
        Some((range, _)) => {
            let href = traces_href(&view.filter, &format!("range={range}"), None);
            let _ = write!(body, " Search a longer one: <a href=\"{}\">the last {range}</a>.", escape(&href));
        }
        None => body.push_str(" Check the filter: this is the longest time range."),
    }
    body.push_str("</p></div>");
}

/// The table of this page's traces.
fn trace_list(body: &mut String, view: &TracesView, window_query: &str) {
    body.push_str(concat!(
        "<table class=\"trace-list\"><thead><tr><th>Trace</th><th>Start (UTC)</th><th>Response time</th>",
        "<th>Status</th><th>Method</th><th>URL</th><th>Services</th><th>Annotations</th></tr></thead><tbody>",
    ));
    for summary in &view.summaries {
        let id = summary.id.to_string();
        let start = format_iso(summary.start_time);
        let http = summary.http.as_ref();
        let status = status_of(summary);
        let _ = write!(
            body,
            concat!(
                "<tr><td class=\"id\"><a href=\"/traces/{id}\">{id}</a></td>",
                "<td><time datetime=\"{start}\">{shown}</time></td><td class=\"number\">{response}</td>",
                "<td><span class=\"status status-{status}\">{status}</span>{partial}</td>",
                "<td>{method}</td><td class=\"url\">{url}</td><td>"
            ),
            id = escape(&id),
            start = start,
            shown = start.replacen('T', " ", 1).trim_end_matches('Z'),
            response = summary.response_time.map_or_else(|| "—".to_owned(), seconds_text),
            status = status,
            partial = if summary.is_partial { " <span class=\"partial\">in progress</span>" } else { "" },
            method = escape(http.and_then(|http| http.method.as_deref()).unwrap_or("")),
            url = escape(http.and_then(|http| http.url.as_deref()).unwrap_or("")),
        );
        for service in &summary.service_ids {
            let kind = service.kind.as_deref().unwrap_or("");
            let _ =
                write!(body, "<span class=\"service\" title=\"{}\">{}</span> ", escape(kind), escape(&service.name));
        }
        body.push_str("</td><td>");
        for annotation in &summary.annotations {
            for value in &annotation.values {
                let condition = format!("annotation.{} = {}", annotation.key, literal(&value.value));
                let href = traces_href(&narrowed(&view.filter, &condition), window_query, None);
                let _ = write!(
                    body,
                    "<a class=\"annotation\" href=\"{}\" title=\"Add {} to the filter\">{}: {}</a> ",
                    escape(&href),
                    escape(&condition),
                    escape(&annotation.key),
                    escape(&shown_value(&value.value)),
                );
            }
        }
        body.push_str("</td></tr>");
    }
    body.push_str("</tbody></table>");
}

/// The trace's status, as its entry document gives it, worst first.
fn status_of(summary: &TraceSummary) -> &'static str {
    if summary.has_fault {
        "fault"
    } else if summary.has_throttle {
        "throttle"
    } else if summary.has_error {
        "error"
    } else {
        "ok"
    }
}

/// An annotation value as filter text.
fn literal(value: &AnnotationValue) -> String {
    match value {
        AnnotationValue::String(text) => quoted(text),
        AnnotationValue::Number(number) => number.to_string(),
        AnnotationValue::Bool(flag) => flag.to_string(),
    }
}

/// An annotation value as the list shows it.
fn shown_value(value: &AnnotationValue) -> String {
    match value {
        AnnotationValue::String(text) => text.clone(),
        other => literal(other),
    }
}

/// `text` as a filter string literal.
pub(crate) fn quoted(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for character in text.chars() {
        if matches!(character, '"' | '\\') {
            literal.push('\\');
        }
        literal.push(character);
    }
    literal.push('"');
    literal
}

/// `filter` narrowed by `condition`; the user's filter is parenthesised
/// since it may hold an `OR`.
pub(crate) fn narrowed(filter: &str, condition: &str) -> String {
    let filter = filter.trim();
    if filter.is_empty() { condition.to_owned() } else { format!("({filter}) AND {condition}") }
}

/// The search for `filter` in the window of `window_query`, from `next`'s
/// page on; not yet escaped for HTML.
pub(crate) fn traces_href(filter: &str, window_query: &str, next: Option<&str>) -> String {
    let mut href = String::from("/traces?");
    if !filter.is_empty() {
        let _ = write!(href, "filter={}&", query_component(filter));
    }
    href.push_str(window_query);
    if let Some(next) = next {
        let _ = write!(href, "&next={}", query_component(next));
    }
    href
}

/// One bar of a response-time distribution: values in `[low, high)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bucket {
    /// Seconds.
    pub(crate) low: f64,
    /// Seconds; none for the last bucket, which is unbounded.
    pub(crate) high: Option<f64>,
    pub(crate) count: i64,
}

impl Bucket {
    /// The bucket as a filter condition.
    pub(crate) fn condition(&self) -> String {
        match (self.low, self.high) {
            (low, None) => format!("responsetime >= {low}"),
            (0.0, Some(high)) => format!("responsetime < {high}"),
            (low, Some(high)) => format!("responsetime >= {low} AND responsetime < {high}"),
        }
    }
}

/// Bucket bounds, seconds: the R5 preferred numbers (1, 1.6, 2.5, 4, 6.3,
/// evenly spaced on a log scale, and each a two-digit value, so a bucket of
/// the service graph's histograms falls in one of these whole) from 0.1 ms
/// to 100,000 s.
fn bounds() -> Vec<f64> {
    let mut bounds = Vec::with_capacity(46);
    for exponent in -4..5 {
        for mantissa in ["1", "1.6", "2.5", "4", "6.3"] {
            // Parsed from decimal text so that each bound prints as written.
            bounds.extend(format!("{mantissa}e{exponent}").parse::<f64>());
        }
    }
    bounds.push(1e5);
    bounds
}

/// `(seconds, count)` pairs in log buckets, from the lowest bucket holding a
/// value to the highest, empty ones between included.
pub(crate) fn distribution(values: impl IntoIterator<Item = (f64, i64)>) -> Vec<Bucket> {
    let bounds = bounds();
    let mut counts = vec![0; bounds.len() + 1];
    for (seconds, count) in values {
        counts[bounds.partition_point(|bound| *bound <= seconds)] += count;
    }
    let Some(first) = counts.iter().position(|count| *count > 0) else { return Vec::new() };
    let last = counts.iter().rposition(|count| *count > 0).unwrap_or(first);
    (first..=last)
        .map(|index| Bucket {
            low: if index == 0 { 0.0 } else { bounds[index - 1] },
            high: bounds.get(index).copied(),
            count: counts[index],
        })
        .collect()
}

/// Bars of `buckets` as SVG, `width` pixels wide, counting `noun`s; a bar
/// `link` gives a URL for is a link to it.
pub(crate) fn chart(buckets: &[Bucket], noun: &str, width: u32, link: impl Fn(&Bucket) -> Option<String>) -> String {
    const HEIGHT: f64 = 110.0;
    const TOP: f64 = 14.0;
    const AXIS: f64 = 16.0;
    const LABEL_SPACING: f64 = 44.0;
    let plot = HEIGHT - TOP - AXIS;
    let max = buckets.iter().map(|bucket| bucket.count).max().unwrap_or(0).max(1) as f64;
    let step = f64::from(width) / buckets.len().max(1) as f64;
    let mut svg = format!(
        concat!(
            "<svg class=\"chart\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" ",
            "role=\"group\" aria-label=\"Response-time distribution\">",
            "<text class=\"chart-axis\" x=\"0\" y=\"10\">{max} {noun}</text>",
        ),
        width = width,
        height = HEIGHT,
        max = count_text(max as i64),
        noun = escape(noun),
    );
    let mut last_label = f64::NEG_INFINITY;
    for (index, bucket) in buckets.iter().enumerate() {
        let x = index as f64 * step;
        let bar = (bucket.count as f64 / max * plot).max(if bucket.count > 0 { 1.0 } else { 0.0 });
        let range = match bucket.high {
            Some(high) => format!("{} – {}", seconds_text(bucket.low), seconds_text(high)),
            None => format!("≥ {}", seconds_text(bucket.low)),
        };
        let title = format!("{range}: {} {noun}", count_text(bucket.count));
        let rect = format!(
            "<rect class=\"chart-bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\"/>",
            x + 0.5,
            TOP + plot - bar,
            (step - 1.0).max(1.0),
        );
        match link(bucket).filter(|_| bucket.count > 0) {
            Some(href) => {
                let _ = write!(
                    svg,
                    concat!(
                        "<a href=\"{href}\" aria-label=\"{title}\"><title>{title}</title>",
                        "<rect class=\"chart-hit\" x=\"{x:.1}\" y=\"{top}\" width=\"{step:.1}\" height=\"{plot}\"/>{rect}</a>"
                    ),
                    href = escape(&href),
                    title = escape(&title),
                    x = x,
                    top = TOP,
                    step = step,
                    plot = plot,
                    rect = rect,
                );
            }
            None => {
                let _ = write!(svg, "<g><title>{}</title>{rect}</g>", escape(&title));
            }
        }
        // Decades only, and only where a label has room.
        let exponent = bucket.low.log10();
        let decade = bucket.low == 0.0 || (exponent - exponent.round()).abs() < 1e-9;
        if decade && x - last_label >= LABEL_SPACING {
            let _ = write!(
                svg,
                "<text class=\"chart-axis\" x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                HEIGHT - 4.0,
                escape(&seconds_text(bucket.low))
            );
            last_label = x;
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Seconds for people: `850 µs`, `35.2 ms`, `1.25 s`, `2.5 min`.
pub(crate) fn seconds_text(seconds: f64) -> String {
    match seconds {
        0.0 => "0".to_owned(),
        s if s < 1e-3 => format!("{} µs", number_text(s * 1e6)),
        s if s < 1.0 => format!("{} ms", number_text(s * 1e3)),
        s if s < 60.0 => format!("{} s", number_text(s)),
        s => format!("{} min", number_text(s / 60.0)),
    }
}

/// A positive amount with three significant digits at most, and whole
/// thousands grouped: `0.05`, `12.3`, `456`, `1,234`.
pub(crate) fn number_text(value: f64) -> String {
    let text = match value {
        v if v >= 1000.0 => return count_text(v.round() as i64),
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v > 0.0 && v < 0.01 => return "<0.01".to_owned(),
        v => format!("{v:.2}"),
    };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// A count with thousands grouped: `1,234,567`.
pub(crate) fn count_text(count: i64) -> String {
    let digits = count.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if count < 0 {
        grouped.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests;
