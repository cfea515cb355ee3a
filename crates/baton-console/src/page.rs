//! The page shell every view shares: head, navigation, the trace-id box and
//! the time-window picker; and the embedded stylesheet and script.

use crate::html::escape;
use crate::window::{RANGES, TimeWindow};

/// The console's stylesheet, served at `/console/baton.css`.
pub const STYLESHEET: &str = concat!(
    include_str!("../assets/page.css"),
    include_str!("../assets/map.css"),
    include_str!("../assets/traces.css"),
    include_str!("../assets/trace.css"),
);

/// The console's script, served at `/console/baton.js`.
pub const SCRIPT: &str = concat!(
    include_str!("../assets/page.js"),
    include_str!("../assets/map.js"),
    include_str!("../assets/traces.js"),
    include_str!("../assets/trace.js"),
);

/// Which view a page is, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Map,
    Traces,
}

/// A whole page around `body`. `window` and `carried` (other query
/// parameters, already encoded, e.g. `filter=…`) make the picker's links.
pub(crate) fn render(title: &str, view: View, window: Option<&TimeWindow>, carried: &str, body: &str) -> String {
    let mut page = String::with_capacity(body.len() + 4096);
    page.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<link rel=\"stylesheet\" href=\"/console/baton.css\"><script src=\"/console/baton.js\" defer></script>",
    ));
    page.push_str(&format!("<title>{} · Baton</title></head><body>", escape(title)));
    page.push_str("<header class=\"top\"><a class=\"brand\" href=\"/\">Baton</a><nav class=\"views\">");
    let window_query = window.map(TimeWindow::query).unwrap_or_default();
    for (name, href, this) in [("Service map", "/", View::Map), ("Traces", "/traces", View::Traces)] {
        let current = if view == this { " aria-current=\"page\"" } else { "" };
        page.push_str(&format!("<a href=\"{href}?{}\"{current}>{name}</a>", escape(&window_query)));
    }
    page.push_str(concat!(
        "</nav><form class=\"trace-id\" action=\"/traces\" method=\"get\" role=\"search\">",
        "<label for=\"trace-id\">Trace id</label>",
        "<input id=\"trace-id\" name=\"id\" placeholder=\"1-5f84c7a1-…\" autocomplete=\"off\" spellcheck=\"false\">",
        "<button>Go</button></form>",
    ));
    if let Some(window) = window {
        page.push_str("<nav class=\"window\" aria-label=\"Time range\">");
        for (range, _) in RANGES {
            let current = if window.range == Some(range) { " aria-current=\"true\"" } else { "" };
            let separator = if carried.is_empty() { "" } else { "&" };
            let href = format!("?{carried}{separator}range={range}");
            page.push_str(&format!("<a href=\"{}\"{current}>{range}</a>", escape(&href)));
        }
        let (open, start, end) = match window.range {
            Some(_) => ("", String::new(), String::new()),
            None => (" open", local_input(window.start), local_input(window.end)),
        };
        page.push_str(&format!(
            concat!(
                "<details class=\"custom\"{open}><summary>custom</summary>",
                "<form class=\"custom-window\" method=\"get\" action=\"\">",
                "<label>From <input type=\"datetime-local\" step=\"1\" name=\"start\" value=\"{start}\" required></label>",
                "<label>to <input type=\"datetime-local\" step=\"1\" name=\"end\" value=\"{end}\" required></label>",
                "<span class=\"muted\">UTC</span><button>Show</button></form></details>"
            ),
            open = open,
            start = start,
            end = end,
        ));
        page.push_str("</nav>");
    }
    page.push_str("</header><main>");
    page.push_str(body);
    page.push_str("</main></body></html>\n");
    page
}

/// Epoch seconds as a `datetime-local` input's value, in UTC.
fn local_input(seconds: f64) -> String {
    let iso = baton_model::time::format_iso(seconds);
    iso.get(..19).unwrap_or(&iso).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_escapes_the_title_and_keeps_the_window_in_links() {
        let window = TimeWindow { start: 0.0, end: 3600.0, range: Some("1h") };
        let page = render("<b>", View::Traces, Some(&window), "filter=fault", "<p>body</p>");
        assert!(page.contains("<title>&lt;b&gt; · Baton</title>"));
        assert!(page.contains("<a href=\"/traces?range=1h\" aria-current=\"page\">Traces</a>"));
        assert!(page.contains("<a href=\"?filter=fault&amp;range=6h\">6h</a>"));
        assert!(page.contains("<a href=\"?filter=fault&amp;range=1h\" aria-current=\"true\">1h</a>"));
        assert!(page.contains("<main><p>body</p></main>"));
    }
}
