//! The captured exports of the real OpenTelemetry SDKs (Python over
//! OTLP/HTTP protobuf, JavaScript over OTLP/HTTP JSON), translated and
//! compared with the golden documents beside them. `BATON_BLESS=1` rewrites
//! the golden files instead (review the diff).

use std::path::Path;

use baton_model::Document;
use baton_otlp::{Translator, decode_json, decode_protobuf};

fn check(case: &str, request: baton_otlp::proto::ExportTraceServiceRequest) {
    let translation = Translator::new(["app.order_id".to_owned()]).translate(&request);
    assert!(translation.rejected.is_empty(), "{case}: rejected {:?}", translation.rejected);
    assert_eq!(
        translation.documents.iter().map(|document| document.spans).sum::<u64>(),
        baton_otlp::span_count(&request),
        "{case}: every span is in one document"
    );
    let mut actual = String::new();
    for document in &translation.documents {
        if let Err(error) = Document::parse(document.text.as_bytes()) {
            panic!("{case}: a translated document is invalid ({error}): {}", document.text);
        }
        let value: serde_json::Value = serde_json::from_str(&document.text).unwrap();
        actual.push_str(&serde_json::to_string_pretty(&value).unwrap());
        actual.push('\n');
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(case).join("documents.golden.json");
    if std::env::var_os("BATON_BLESS").is_some_and(|bless| bless == "1") {
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == actual,
        "{case}: documents differ from {} (BATON_BLESS=1 rewrites it):\n{actual}",
        golden.display()
    );
}

#[test]
fn python_http_protobuf() {
    let body = include_bytes!("data/python_http_protobuf/0001-v1_traces.bin");
    check("python_http_protobuf", decode_protobuf(body).unwrap());
}

#[test]
fn node_http_json() {
    let body = include_bytes!("data/node_http_json/0001-v1_traces.body.json");
    check("node_http_json", decode_json(body).unwrap());
}

/// The JSON and protobuf encodings of one request decode to the same
/// messages.
#[test]
fn json_and_protobuf_agree() {
    let request = decode_json(include_bytes!("data/node_http_json/0001-v1_traces.body.json")).unwrap();
    let encoded = prost::Message::encode_to_vec(&request);
    assert_eq!(decode_protobuf(&encoded).unwrap(), request);
}
