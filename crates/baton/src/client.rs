//! `baton traces` and `baton trace`: the X-Ray API of a running server,
//! printed for a terminal.

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use baton_model::time;
use baton_query::filter;
use serde_json::{Value, json};

use crate::cli::{TraceArgs, TracesArgs, parse_duration};

/// Calls one X-Ray operation and returns the parsed answer.
pub(crate) fn call(endpoint: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let mut response = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().with_context(|| format!("reading the answer of {url}"))?;
    let answer: Value =
        serde_json::from_str(&text).with_context(|| format!("{url} answered {status} with non-JSON: {text}"))?;
    if !status.is_success() {
        let message = answer.get("message").and_then(Value::as_str).unwrap_or(&text);
        bail!("{url} answered {status}: {message}");
    }
    Ok(answer)
}

pub(crate) fn list_traces(args: &TracesArgs) -> anyhow::Result<ExitCode> {
    // Checked here first, so that a typo gets a caret under it rather than
    // the server's one-line message.
    if let Some(expression) = &args.filter
        && let Err(error) = filter::parse(expression)
    {
        eprintln!("error: {error}\n{}", error.caret(expression));
        // 2: a usage error, as clap's (see main.rs).
        return Ok(ExitCode::from(2));
    }
    let since = parse_duration(&args.since).context("--since")?;
    let end = time::now();
    let start = end - since.as_secs_f64();
    let mut summaries = Vec::new();
    let mut next_token: Option<String> = None;
    while summaries.len() < args.limit {
        let mut request = json!({ "StartTime": start, "EndTime": end });
        if let Some(expression) = &args.filter {
            request["FilterExpression"] = json!(expression);
        }
        if let Some(token) = &next_token {
            request["NextToken"] = json!(token);
        }
        let answer = call(&args.endpoint, "/TraceSummaries", &request)?;
        summaries.extend(answer["TraceSummaries"].as_array().cloned().unwrap_or_default());
        next_token = answer.get("NextToken").and_then(Value::as_str).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    summaries.truncate(args.limit);
    if summaries.is_empty() {
        eprintln!("no traces in the last {}; send some to the server's UDP port (AWS_XRAY_DAEMON_ADDRESS)", args.since);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<35}  {:<24}  {:>9}  {:>4}  {:<24}  ANNOTATIONS", "TRACE ID", "START", "DURATION", "CODE", "SERVICES");
    for summary in &summaries {
        println!("{}", summary_line(summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_line(summary: &Value) -> String {
    let seconds = |key: &str| summary.get(key).and_then(Value::as_f64);
    let status = summary
        .pointer("/Http/HttpStatus")
        .and_then(Value::as_u64)
        .map_or_else(|| flag_code(summary), |status| status.to_string());
    let services: Vec<&str> = summary["ServiceIds"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id["Name"].as_str()).collect())
        .unwrap_or_default();
    let mut annotations = String::new();
    if let Some(map) = summary["Annotations"].as_object() {
        for (key, values) in map {
            for value in values.as_array().into_iter().flatten() {
                let value = &value["AnnotationValue"];
                let shown = value
                    .get("StringValue")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| value.get("NumberValue").and_then(Value::as_f64).map(format_number))
                    .or_else(|| value.get("BooleanValue").map(Value::to_string))
                    .unwrap_or_default();
                let _ = write!(annotations, "{key}={shown} ");
            }
        }
    }
    format!(
        "{:<35}  {:<24}  {:>9}  {:>4}  {:<24}  {}",
        summary["Id"].as_str().unwrap_or("?"),
        seconds("StartTime").map(time::format_iso).unwrap_or_default(),
        seconds("Duration").map(|duration| format!("{:.3}s", duration)).unwrap_or_else(|| "-".into()),
        status,
        services.join(","),
        annotations.trim_end()
    )
}

/// Whole numbers without the `.0` JSON doubles carry.
fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 { format!("{}", number as i64) } else { number.to_string() }
}

fn flag_code(summary: &Value) -> String {
    let set = |key: &str| summary.get(key).and_then(Value::as_bool).unwrap_or(false);
    if set("HasFault") {
        "5xx".into()
    } else if set("HasThrottle") {
        "429".into()
    } else if set("HasError") {
        "4xx".into()
    } else {
        "-".into()
    }
}

pub(crate) fn show_trace(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    let answer = call(&args.endpoint, "/Traces", &json!({ "TraceIds": [args.id.to_string()] }))?;
    let Some(trace) = answer["Traces"].as_array().and_then(|traces| traces.first()) else {
        bail!("trace {} not found", args.id);
    };
    let documents: Vec<Value> = trace["Segments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|segment| segment["Document"].as_str().and_then(|text| serde_json::from_str(text).ok()))
        .collect();
    let origin = documents.iter().filter_map(|document| document["start_time"].as_f64()).fold(f64::INFINITY, f64::min);
    let mut out = String::new();
    let duration = trace["Duration"].as_f64().map(|seconds| format!("{:.1} ms", seconds * 1000.0)).unwrap_or_default();
    let _ = writeln!(out, "trace {}  {}  {duration}", args.id, time::format_iso(origin));
    for document in &documents {
        print_entity(&mut out, document, origin, 1);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn print_entity(out: &mut String, entity: &Value, origin: f64, depth: usize) {
    let start = entity["start_time"].as_f64().unwrap_or(origin);
    let timing = match entity["end_time"].as_f64() {
        Some(end) => format!("{:>9.1} ms", (end - start) * 1000.0),
        None => "in progress".to_owned(),
    };
    let mut marks = Vec::new();
    if let Some(origin) = entity["origin"].as_str() {
        marks.push(origin.to_owned());
    }
    if let Some(status) = entity.pointer("/http/response/status").and_then(Value::as_u64) {
        marks.push(status.to_string());
    }
    for flag in ["fault", "error", "throttle"] {
        if entity[flag].as_bool() == Some(true) {
            marks.push(flag.to_owned());
        }
    }
    let name = format!("{}{}", "  ".repeat(depth), entity["name"].as_str().unwrap_or("?"));
    let _ = writeln!(out, "{name:<48} +{:>9.1} ms {timing}  {}", (start - origin) * 1000.0, marks.join(" "));
    for child in entity["subsegments"].as_array().into_iter().flatten() {
        print_entity(out, child, origin, depth + 1);
    }
}
