"""The real OpenTelemetry JavaScript SDK (tests/otel-js, pinned as the OTLP
fixtures were captured) exporting over OTLP/HTTP JSON, which Node sends chunked
without a Content-Length, into `baton serve`; what is stored is read back
through boto3 and searched with filter expressions."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import requests

import pytest

from helpers import REPO, entities_by_id, parsed_documents

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

EXPORTER = REPO / "tests" / "otel-js" / "export.mjs"
CALLER = "Root=1-{epoch:08x}-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


def export(baton, ids: str, incoming: str | None = None) -> dict:
    """Runs the exporter script and returns what it printed."""
    node = shutil.which("node")
    assert node, "node is required (the test command installs tests/otel-js with npm)"
    args = [node, str(EXPORTER), f"{baton.otlp_http_endpoint}/v1/traces", ids] + ([incoming] if incoming else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=EXPORTER.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_js_sdk_exports_json_chunked_and_it_is_stored_as_xray_segments(baton):
    incoming = CALLER.format(epoch=int(time.time()))
    done = export(baton, "xray", incoming)
    trace_id = f"1-{done['trace_id'][:8]}-{done['trace_id'][8:]}"
    assert trace_id == incoming.split(";")[0].removeprefix("Root="), "the propagator continued the caller's trace"
    assert done["injected"]["x-amzn-trace-id"].startswith(f"Root={trace_id};Parent=")

    traces = baton.wait_for_traces([trace_id])
    entities = entities_by_id(traces[trace_id])
    segment, _, _ = entities[done["server_span_id"]]
    assert (segment["name"], segment["parent_id"], segment["origin"]) == (
        "checkout-js", "53995c3f42cd8ad8", "AWS::Lambda::Function")
    assert segment["resource_arn"] == "arn:aws:lambda:eu-west-1:210987654321:function:checkout-js-fn"
    assert segment["http"] == {"request": {"method": "GET", "url": "https://shop.example.com/orders/7"},
                               "response": {"status": 500}}
    assert segment["fault"] is True
    assert segment["annotations"] == {"tenant": "acme"}
    assert segment["metadata"]["default"] == {"http.route": "/orders/{id}", "app.items": 3}
    assert segment["aws"]["xray"] == {"sdk": "opentelemetry for nodejs", "sdk_version": "2.12.1"}

    children = {child["name"]: child for child in segment["subsegments"]}
    validate = children["validate"]
    assert (validate["namespace"], validate["fault"]) == ("local", True)
    exception = validate["cause"]["exceptions"][0]
    assert (exception["type"], exception["message"]) == ("TypeError", "order 7 has no items")
    assert exception["stack"][0]["path"].endswith("export.mjs")
    call = children["stock.internal"]
    assert (call["namespace"], call["http"]["response"]["status"], call["fault"]) == ("remote", 503, True)
    injected_parent = done["injected"]["x-amzn-trace-id"].split("Parent=")[1].split(";")[0]
    assert call["id"] == injected_parent, "the downstream call's header names the remote subsegment"

    now = time.time()
    xray = baton.xray
    for expression in ('service("checkout-js") { fault }', 'annotation.tenant = "acme"', 'http.url CONTAINS "/orders/7"'):
        found = xray.get_trace_summaries(StartTime=now - 600, EndTime=now + 60, FilterExpression=expression)
        assert [summary["Id"] for summary in found["TraceSummaries"]] == [trace_id], expression


def test_a_random_w3c_trace_id_is_stored_under_its_dashed_form_and_found_by_the_w3c_id(baton):
    done = export(baton, "w3c")
    w3c = done["trace_id"]
    trace_id = f"1-{w3c[:8]}-{w3c[8:]}"
    traces = baton.wait_for_traces([trace_id])
    documents = parsed_documents(traces[trace_id])
    assert [document["trace_id"] for document in documents] == [trace_id]
    # The console's trace page takes the W3C form and leads to the trace.
    page = requests.get(f"{baton.endpoint}/traces/{w3c}", timeout=10)
    assert page.status_code == 200 and page.url.endswith(f"/traces/{trace_id}")
    assert "checkout-js" in page.text
