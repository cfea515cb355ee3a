//! Segment documents as the X-Ray daemon protocol carries them, written by
//! hand on the sender thread, so ending a subsegment costs its caller only
//! a lock and a push.

use std::borrow::Cow;
use std::fmt::Write;

use crate::emit::MAX_DOCUMENT;
use crate::entity::{More, NO_MORE, Node, Parent, Stored, working_directory};

/// The documents that send a closed entity: one, or, when it is over the
/// datagram limit, one per child and one for the rest.
pub(crate) fn documents(node: &Node) -> Vec<String> {
    let mut documents = Vec::new();
    render(node).into_documents(&mut documents);
    documents
}

/// A closed entity: its own fields, and its closed children kept apart so
/// an oversized document can be split into one document per child.
struct Rendered {
    /// The document's fields without `subsegments` and the closing brace.
    head: String,
    children: Vec<Rendered>,
    bytes: usize,
}

impl Rendered {
    fn write(&self, out: &mut String) {
        out.push_str(&self.head);
        if !self.children.is_empty() {
            out.push_str(",\"subsegments\":[");
            for (index, child) in self.children.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                child.write(out);
            }
            out.push(']');
        }
        out.push('}');
    }

    /// The document, or, when it is over the datagram limit, each child on
    /// its own and then the rest (children carry `parent_id`, `trace_id` and
    /// `type`, so they stand alone), as the X-Ray SDKs stream subsegments.
    fn into_documents(self, out: &mut Vec<String>) {
        if self.bytes <= MAX_DOCUMENT {
            let mut document = String::with_capacity(self.bytes);
            self.write(&mut document);
            return out.push(document);
        }
        for child in self.children {
            child.into_documents(out);
        }
        if self.head.len() + 1 > MAX_DOCUMENT {
            tracing::warn!(bytes = self.head.len(), "baton-tracer: a document is over 64 KB on its own and is dropped");
            return;
        }
        let mut document = self.head;
        document.push('}');
        out.push(document);
    }
}

/// Renders a closed node and its closed children.
fn render(node: &Node) -> Rendered {
    let state = node.state.lock();
    let more = state.more.as_deref().unwrap_or(&NO_MORE);
    let mut out = String::with_capacity(512);
    out.push_str("{\"id\":\"");
    let _ = write!(out, "{}", node.id);
    out.push_str("\",\"name\":");
    string(&mut out, &state.name);
    out.push_str(",\"start_time\":");
    seconds(&mut out, node.start);
    out.push_str(",\"end_time\":");
    seconds(&mut out, state.end.unwrap_or(node.start));
    let _ = write!(out, ",\"trace_id\":\"{}\"", node.trace.id);
    match &node.parent {
        Parent::None => {}
        Parent::Remote(id) | Parent::Local(id) => {
            let _ = write!(out, ",\"parent_id\":\"{id}\"");
        }
    }
    if !node.segment {
        out.push_str(",\"type\":\"subsegment\",\"namespace\":\"");
        out.push_str(state.namespace.unwrap_or(crate::Namespace::Local).as_str());
        out.push('"');
    }
    if let Some(origin) = &more.origin {
        out.push_str(",\"origin\":");
        string(&mut out, origin);
    }
    if let Some(user) = &more.user {
        out.push_str(",\"user\":");
        string(&mut out, user);
    }
    http(&mut out, more);
    aws(&mut out, node, more);
    sql(&mut out, more);
    annotations(&mut out, &state.annotations);
    metadata(&mut out, &more.metadata);
    for (flag, name) in [(state.error, "error"), (state.fault, "fault"), (state.throttle, "throttle")] {
        if flag {
            let _ = write!(out, ",\"{name}\":true");
        }
    }
    cause(&mut out, more);
    let children: Vec<Rendered> = state.children.iter().map(|child| render(child)).collect();
    let mut bytes = out.len() + 1;
    if !children.is_empty() {
        bytes += ",\"subsegments\":[]".len() + children.len() - 1;
        bytes += children.iter().map(|child| child.bytes).sum::<usize>();
    }
    Rendered { head: out, children, bytes }
}

/// Epoch seconds with microseconds, as the Python SDK writes them.
fn seconds(out: &mut String, micros: u64) {
    let _ = write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
}

/// A JSON string literal.
pub(crate) fn string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

fn http(out: &mut String, more: &More) {
    if more.http_request.is_none() && more.http_response.is_none() {
        return;
    }
    out.push_str(",\"http\":{");
    if let Some(request) = &more.http_request {
        out.push_str("\"request\":{\"method\":");
        string(out, &request.method);
        out.push_str(",\"url\":");
        string(out, &request.url);
        if let Some(agent) = &request.user_agent {
            out.push_str(",\"user_agent\":");
            string(out, agent);
        }
        if let Some(ip) = &request.client_ip {
            out.push_str(",\"client_ip\":");
            string(out, ip);
        }
        if request.x_forwarded_for {
            out.push_str(",\"x_forwarded_for\":true");
        }
        out.push('}');
    }
    if let Some((status, content_length)) = more.http_response {
        if more.http_request.is_some() {
            out.push(',');
        }
        let _ = write!(out, "\"response\":{{\"status\":{status}");
        if let Some(length) = content_length {
            let _ = write!(out, ",\"content_length\":{length}");
        }
        out.push('}');
    }
    out.push('}');
}

fn aws(out: &mut String, node: &Node, more: &More) {
    if !node.segment && more.aws.is_empty() {
        return;
    }
    out.push_str(",\"aws\":{");
    let mut separator = "";
    if node.segment {
        let _ = write!(
            out,
            "\"xray\":{{\"sdk\":\"baton-tracer for Rust\",\"sdk_version\":\"{}\"",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(rule) = &more.sampling_rule {
            out.push_str(",\"sampling_rule_name\":");
            string(out, rule);
        }
        out.push('}');
        separator = ",";
    }
    for (field, json) in &more.aws {
        out.push_str(separator);
        string(out, field);
        out.push(':');
        out.push_str(json);
        separator = ",";
    }
    out.push('}');
}

fn sql(out: &mut String, more: &More) {
    let Some(sql) = &more.sql else { return };
    out.push_str(",\"sql\":{");
    let fields = [
        ("url", &sql.url),
        ("database_type", &sql.database_type),
        ("database_version", &sql.database_version),
        ("driver_version", &sql.driver_version),
        ("user", &sql.user),
        ("sanitized_query", &sql.sanitized_query),
        ("preparation", &sql.preparation),
    ];
    let mut separator = "";
    for (name, value) in fields {
        if let Some(value) = value {
            let _ = write!(out, "{separator}\"{name}\":");
            string(out, value);
            separator = ",";
        }
    }
    out.push('}');
}

fn annotations(out: &mut String, annotations: &[(Cow<'static, str>, Stored)]) {
    if annotations.is_empty() {
        return;
    }
    out.push_str(",\"annotations\":{");
    for (index, (key, value)) in annotations.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        string(out, key);
        out.push(':');
        match value {
            Stored::Short { .. } | Stored::Long(_) => string(out, value.text().unwrap_or_default()),
            Stored::Int(number) => {
                let _ = write!(out, "{number}");
            }
            Stored::Float(number) => {
                let _ = write!(out, "{number:?}");
            }
            Stored::Bool(flag) => {
                let _ = write!(out, "{flag}");
            }
        }
    }
    out.push('}');
}

fn metadata(out: &mut String, metadata: &[(String, String, String)]) {
    if metadata.is_empty() {
        return;
    }
    out.push_str(",\"metadata\":{");
    let mut namespaces: Vec<&str> = Vec::new();
    for (namespace, _, _) in metadata {
        if !namespaces.contains(&namespace.as_str()) {
            namespaces.push(namespace);
        }
    }
    for (index, namespace) in namespaces.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        string(out, namespace);
        out.push_str(":{");
        let entries = metadata.iter().filter(|(entry_namespace, _, _)| entry_namespace == namespace);
        for (position, (_, key, json)) in entries.enumerate() {
            if position > 0 {
                out.push(',');
            }
            string(out, key);
            out.push(':');
            out.push_str(json);
        }
        out.push('}');
    }
    out.push('}');
}

fn cause(out: &mut String, more: &More) {
    if more.exceptions.is_empty() {
        if let Some(id) = &more.cause_id {
            out.push_str(",\"cause\":");
            string(out, id);
        }
        return;
    }
    out.push_str(",\"cause\":{\"working_directory\":");
    string(out, working_directory());
    out.push_str(",\"exceptions\":[");
    for (index, exception) in more.exceptions.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"id\":\"{}\"", exception.id);
        if let Some(kind) = &exception.kind {
            out.push_str(",\"type\":");
            string(out, kind);
        }
        out.push_str(",\"message\":");
        string(out, &exception.message);
        if exception.remote {
            out.push_str(",\"remote\":true");
        }
        if let Some(cause) = &exception.cause {
            let _ = write!(out, ",\"cause\":\"{cause}\"");
        }
        out.push('}');
    }
    out.push_str("]}");
}
