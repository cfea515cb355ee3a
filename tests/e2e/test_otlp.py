"""OpenTelemetry into `baton serve`: the real OpenTelemetry Python SDK exporting over
OTLP/HTTP and OTLP/gRPC (plain and gzip) with AWS's X-Ray id generator and
propagator; the captured exports of crates/baton-otlp/tests/data replayed byte for
byte; malformed exports. What is stored is read back through boto3 and compared
with what the translation (docs/otlp.md) promises."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import time

import grpc
import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span as ProtoSpan
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from helpers import BATON_BIN, REPO, entities_by_id, parsed_documents

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

CAPTURES = REPO / "crates" / "baton-otlp" / "tests" / "data"
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# The resource of a Lambda function, as the SDK's Lambda detector would describe it.
LAMBDA_RESOURCE = Resource.create({
    "service.name": "checkout", "service.version": "1.4.2",
    "cloud.provider": "aws", "cloud.platform": "aws_lambda", "cloud.region": "us-east-1",
    "cloud.account.id": "123456789012", "faas.name": "checkout-fn", "faas.version": "$LATEST",
})
# The caller's span, named by the incoming X-Amzn-Trace-Id header.
REMOTE_PARENT = "53995c3f42cd8ad8"


def xray_id(w3c: str) -> str:
    """The X-Ray form of a 32-hex-digit trace id."""
    return f"1-{w3c[:8]}-{w3c[8:]}"


class Recording(SpanExporter):
    """The SDK's exporter, unchanged, with what it exported and how each export went."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.results: list[SpanExportResult] = []
        self.spans = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        self.spans.extend(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def exporter_for(transport: str, baton, sent_headers: list) -> SpanExporter:
    if transport.startswith("http"):
        # The SDK's own requests session, watched: what went on the wire.
        session = requests.Session()
        session.hooks["response"].append(lambda response, *_, **__: sent_headers.append(response.request.headers))
        compression = Compression.Gzip if transport == "http-gzip" else Compression.NoCompression
        return HttpSpanExporter(endpoint=baton.otlp_http_endpoint + "/v1/traces", compression=compression,
                                session=session, timeout=10)
    compression = grpc.Compression.Gzip if transport == "grpc-gzip" else grpc.Compression.NoCompression
    return GrpcSpanExporter(endpoint=baton.otlp_grpc_address, insecure=True, compression=compression, timeout=10)


def handle_order(tracer, propagator, trace_header: str) -> dict:
    """What an instrumented function does for one order: a SERVER span continuing the
    caller's trace, an INTERNAL span that fails with an exception, an INTERNAL span that
    succeeds, a CLIENT call answered 503; then a new trace of its own (a CONSUMER span)."""
    parent = propagator.extract({"X-Amzn-Trace-Id": trace_header})
    server_attributes = {
        "http.request.method": "GET", "url.scheme": "https", "server.address": "orders.example.com",
        "url.path": "/orders/42", "http.route": "/orders/{id}", "client.address": "203.0.113.9",
        "app.order_id": 42, "tenant": "acme", "aws.xray.annotations": ["tenant"],
    }
    with tracer.start_as_current_span("GET /orders/{id}", context=parent, kind=SpanKind.SERVER,
                                      attributes=server_attributes) as server:
        with tracer.start_as_current_span("load order", attributes={"app.cache": "miss"}):
            pass
        try:
            with tracer.start_as_current_span("validate"):
                raise ValueError("order 42 failed validation")
        except ValueError:
            pass
        client_attributes = {"http.request.method": "GET", "url.full": "http://inventory.internal:8080/stock/42",
                             "server.address": "inventory.internal", "server.port": 8080}
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes=client_attributes) as client:
            injected: dict[str, str] = {}
            propagator.inject(injected)
            client.set_attribute("http.response.status_code", 503)
            client.set_status(Status(StatusCode.ERROR))
        server.set_attribute("http.response.status_code", 500)
        server.set_status(Status(StatusCode.ERROR, "inventory unavailable"))
    with tracer.start_as_current_span("poll orders", kind=SpanKind.CONSUMER) as consumer:
        pass
    return {"injected": injected, "consumer_trace": format(consumer.get_span_context().trace_id, "032x")}


@pytest.mark.parametrize("transport", ["http", "http-gzip", "grpc", "grpc-gzip"])
def test_the_python_sdk_exports_what_xray_would_store(baton_factory, transport):
    baton = baton_factory(extra_args=["--otlp-annotation", "app.order_id"])
    sent_headers: list = []
    recording = Recording(exporter_for(transport, baton, sent_headers))
    provider = TracerProvider(resource=LAMBDA_RESOURCE, id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(recording))
    tracer = provider.get_tracer("checkout.handler", "1.0.0")
    propagator = AwsXRayPropagator()
    # An X-Ray trace id of 2024-11-25 (epoch 6744c000), as the fixtures' captures carry.
    trace_id = "1-6744c000-" + os.urandom(12).hex()
    started = time.time()
    done = handle_order(tracer, propagator, f"Root={trace_id};Parent={REMOTE_PARENT};Sampled=1")
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert recording.results and all(r == SpanExportResult.SUCCESS for r in recording.results), recording.results
    if transport == "http-gzip":
        assert all(h.get("Content-Encoding") == "gzip" for h in sent_headers), sent_headers
    elif transport == "http":
        assert sent_headers and all("Content-Encoding" not in h for h in sent_headers), sent_headers

    spans = {span.name: span for span in recording.spans}
    span_id = {name: format(span.context.span_id, "016x") for name, span in spans.items()}
    assert format(spans["GET /orders/{id}"].context.trace_id, "032x") == trace_id[2:].replace("-", "")
    assert done["injected"] == {"X-Amzn-Trace-Id": f"Root={trace_id};Parent={span_id['GET']};Sampled=1"}
    consumer_trace = xray_id(done["consumer_trace"])
    assert abs(int(done["consumer_trace"][:8], 16) - started) < 60, "the X-Ray id generator puts the epoch first"

    # Answered once durable: readable right away.
    traces = baton.wait_for_traces([trace_id, consumer_trace], timeout=2)
    trace = traces[trace_id]
    [segment] = parsed_documents(trace)
    assert segment["id"] == span_id["GET /orders/{id}"] and segment["parent_id"] == REMOTE_PARENT
    assert segment["trace_id"] == trace_id
    assert segment["name"] == "checkout"
    assert segment["origin"] == "AWS::Lambda::Function"
    assert segment["resource_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:checkout-fn"
    assert segment["aws"]["account_id"] == "123456789012"
    assert segment["service"] == {"version": "1.4.2"}
    assert segment["http"] == {
        "request": {"method": "GET", "url": "https://orders.example.com/orders/42", "client_ip": "203.0.113.9"},
        "response": {"status": 500},
    }
    assert segment.get("fault") is True and "error" not in segment
    assert segment["annotations"] == {"app_order_id": 42, "tenant": "acme"}
    assert segment["metadata"]["default"] == {"http.route": "/orders/{id}"}

    entities = entities_by_id(trace)
    assert set(entities) == {span_id[name] for name in ("GET /orders/{id}", "load order", "validate", "GET")}
    load, parent, _ = entities[span_id["load order"]]
    assert (load["name"], load["namespace"], parent["id"]) == ("load order", "local", segment["id"])
    assert not any(flag in load for flag in ("fault", "error", "cause"))
    assert load["metadata"]["default"] == {"app.cache": "miss"}
    validate, _, _ = entities[span_id["validate"]]
    assert (validate["name"], validate["namespace"], validate.get("fault")) == ("validate", "local", True)
    [exception] = validate["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("ValueError", "order 42 failed validation")
    assert any(frame["path"] == __file__ and frame.get("label") == "handle_order" for frame in exception["stack"]), \
        exception["stack"]
    call, _, _ = entities[span_id["GET"]]
    assert (call["name"], call["namespace"]) == ("inventory.internal", "remote")
    assert call["http"] == {"request": {"method": "GET", "url": "http://inventory.internal:8080/stock/42"},
                            "response": {"status": 503}}
    assert call.get("fault") is True

    [consumer] = parsed_documents(traces[consumer_trace])
    assert (consumer["name"], consumer["id"], "parent_id" in consumer) == ("checkout", span_id["poll orders"], False)

    # Searched as X-Ray searches.
    def found(expression: str) -> set[str]:
        summaries = baton.summaries(started - 60, time.time() + 60, FilterExpression=expression)
        return {summary["Id"] for summary in summaries}

    assert found('service("checkout") { fault }') == {trace_id}
    assert found("annotation.app_order_id = 42") == {trace_id}
    assert found('annotation.tenant = "acme"') == {trace_id}
    assert found('annotation.tenant = "globex"') == set()
    assert found("fault") == {trace_id}
    [summary] = baton.summaries(started - 60, time.time() + 60, FilterExpression="http.status = 500")
    assert summary["Http"]["HttpURL"] == "https://orders.example.com/orders/42"

    metrics = baton.metrics()
    assert metrics.get_value("baton_otlp_spans_received_total") == 5
    assert metrics.get_value("baton_otlp_spans_accepted_total") == 5
    assert metrics.get_value("baton_documents_accepted_total", protocol="otlp") == 2
    grpc_or_http = "grpc" if transport.startswith("grpc") else "http"
    assert metrics.get_value("baton_otlp_requests_total", transport=grpc_or_http, outcome="success") \
        == len(recording.results)


def test_a_w3c_trace_id_is_stored_in_xray_form_and_found_by_either(baton):
    """The SDK's default ids are random: no epoch in the first 8 hex digits. The trace
    is stored under the dash-inserted form and found by its 32-hex-digit form too."""
    recording = Recording(HttpSpanExporter(endpoint=baton.otlp_http_endpoint + "/v1/traces", timeout=10))
    provider = TracerProvider(resource=LAMBDA_RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(recording))
    with provider.get_tracer("checkout.handler").start_as_current_span("GET /health", kind=SpanKind.SERVER) as span:
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert recording.results == [SpanExportResult.SUCCESS]
    w3c = format(span.get_span_context().trace_id, "032x")

    traces = baton.wait_for_traces([xray_id(w3c)], timeout=2)
    [document] = parsed_documents(traces[xray_id(w3c)])
    assert document["trace_id"] == xray_id(w3c) and document["name"] == "checkout"

    by_w3c = subprocess.run([str(BATON_BIN), "trace", w3c, "--endpoint", baton.endpoint], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert by_w3c.returncode == 0, by_w3c.stderr
    assert "checkout" in by_w3c.stdout and xray_id(w3c) in by_w3c.stdout, by_w3c.stdout


# === captured exports, replayed byte for byte ===

def golden_documents(case: str) -> list[dict]:
    """The documents crates/baton-otlp's golden test expects from a capture."""
    text = (CAPTURES / case / "documents.golden.json").read_text()
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
        while at < len(text) and text[at].isspace():
            at += 1
    return documents


def replay(baton, case: str, body) -> http.client.HTTPResponse:
    """Sends a captured request with its captured headers in their order, Host aside;
    an iterable body goes out chunked."""
    capture = json.loads((CAPTURES / case / "0001-v1_traces.json").read_text())
    host, port = baton.otlp_http_endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest(capture["method"], capture["raw_path"], skip_host=True, skip_accept_encoding=True)
    for name, value in capture["headers"]:
        connection.putheader(name, f"{host}:{port}" if name.lower() == "host" else value)
    chunked = not isinstance(body, bytes)
    connection.endheaders(body, encode_chunked=chunked)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def assert_stored_as_golden(baton, case: str, trace_ids: list[str]):
    golden = golden_documents(case)
    assert {document["trace_id"] for document in golden} == set(trace_ids)
    traces = baton.wait_for_traces(trace_ids, timeout=2)
    stored = {document["id"]: document for trace in traces.values() for document in parsed_documents(trace)}
    assert stored == {document["id"]: document for document in golden}


def test_the_captured_python_protobuf_export_replayed(baton_factory):
    baton = baton_factory(extra_args=["--otlp-annotation", "app.order_id"])
    capture = json.loads((CAPTURES / "python_http_protobuf" / "0001-v1_traces.json").read_text())
    body = (CAPTURES / "python_http_protobuf" / "0001-v1_traces.bin").read_bytes()
    response = replay(baton, "python_http_protobuf", body)
    assert (response.status, response.getheader("Content-Type"), response.body) == \
        (200, "application/x-protobuf", b"")

    ids = json.loads((CAPTURES / "python_http_protobuf" / "ids.json").read_text())
    server_trace = xray_id(ids["server_trace_id_hex"])
    assert server_trace == ids["incoming_header"].split(";")[0].removeprefix("Root=")
    assert_stored_as_golden(baton, "python_http_protobuf", [server_trace, xray_id(ids["consumer_trace_id_hex"])])
    [summary] = baton.summaries(capture["time"] - 60, capture["time"] + 60,
                                FilterExpression="annotation.app_order_id = 42")
    assert summary["Id"] == server_trace


def test_the_captured_javascript_json_export_replayed_chunked(baton_factory):
    baton = baton_factory(extra_args=["--otlp-annotation", "app.order_id"])
    capture = json.loads((CAPTURES / "node_http_json" / "0001-v1_traces.json").read_text())
    assert ["Transfer-Encoding", "chunked"] in capture["headers"]
    assert not any(name.lower() == "content-length" for name, _ in capture["headers"])
    body = (CAPTURES / "node_http_json" / "0001-v1_traces.body.json").read_bytes()
    chunks = (body[at:at + 1000] for at in range(0, len(body), 1000))
    response = replay(baton, "node_http_json", chunks)
    assert (response.status, response.getheader("Content-Type"), response.body) == (200, "application/json", b"{}")

    ids = json.loads((CAPTURES / "node_http_json" / "ids.json").read_text())
    assert_stored_as_golden(baton, "node_http_json", [xray_id(ids["server_trace_id_hex"])])
    assert baton.metrics().get_value("baton_bytes_received_total", protocol="otlp") == len(body)


# === malformed exports ===

def attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def export_request(spans: list[ProtoSpan]) -> ExportTraceServiceRequest:
    resource = ProtoResource(attributes=[attribute("service.name", "checkout")])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource,
                                                                    scope_spans=[ScopeSpans(spans=spans)])])


def proto_span(trace: bytes, span_id: bytes, name: str, parent: bytes = b"", kind: int = ProtoSpan.SPAN_KIND_SERVER):
    start = time.time_ns() - 1_000_000_000
    return ProtoSpan(trace_id=trace, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
                     start_time_unix_nano=start, end_time_unix_nano=start + 250_000_000)


def new_trace() -> bytes:
    return int(time.time()).to_bytes(4, "big") + os.urandom(12)


def post_protobuf(baton, body: bytes) -> requests.Response:
    return requests.post(baton.otlp_http_endpoint + "/v1/traces", data=body,
                         headers={"Content-Type": "application/x-protobuf"}, timeout=30)


def test_an_undecodable_body_is_refused_and_nothing_else_lost(baton):
    before, after = new_trace(), new_trace()
    assert post_protobuf(baton, export_request([proto_span(before, os.urandom(8), "before")]).SerializeToString()) \
        .status_code == 200
    refused = post_protobuf(baton, b"\x0a\xff\xff\xff\x0f not protobuf")
    assert refused.status_code == 400
    status = status_pb2.Status.FromString(refused.content)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], status
    assert "not an OTLP ExportTraceServiceRequest in protobuf" in status.message, status
    as_json = requests.post(baton.otlp_http_endpoint + "/v1/traces", data=b'{"resourceSpans": [',
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert as_json.status_code == 400 and as_json.json()["code"] == 3, as_json.text
    assert post_protobuf(baton, export_request([proto_span(after, os.urandom(8), "after")]).SerializeToString()) \
        .status_code == 200

    traces = baton.wait_for_traces([xray_id(before.hex()), xray_id(after.hex())], timeout=2)
    assert len(traces) == 2
    metrics = baton.metrics()
    assert metrics.get_value("baton_otlp_requests_total", transport="http", outcome="refused") == 2
    assert metrics.get_value("baton_otlp_requests_total", transport="http", outcome="success") == 2
    assert metrics.get_value("baton_otlp_spans_received_total") == 2


def one_invalid_among_valid() -> tuple[ExportTraceServiceRequest, bytes, list[str]]:
    """A SERVER span, its CLIENT child and a second SERVER span, and between them a
    span whose id is 3 bytes."""
    trace, root = new_trace(), os.urandom(8)
    child, other = os.urandom(8), os.urandom(8)
    spans = [proto_span(trace, root, "GET /orders"),
             proto_span(trace, bytes.fromhex("0a0b0c"), "broken", parent=root, kind=ProtoSpan.SPAN_KIND_INTERNAL),
             proto_span(trace, child, "GET", parent=root, kind=ProtoSpan.SPAN_KIND_CLIENT),
             proto_span(trace, other, "GET /stock")]
    return export_request(spans), trace, [root.hex(), child.hex(), other.hex()]


def test_one_invalid_span_is_a_partial_success_over_http(baton):
    request, trace, stored_ids = one_invalid_among_valid()
    response = post_protobuf(baton, request.SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "span 0a0b0c: span id must be 8 bytes" in answer.partial_success.error_message

    traces = baton.wait_for_traces([xray_id(trace.hex())], timeout=2, entity_ids=stored_ids)
    assert set(entities_by_id(traces[xray_id(trace.hex())])) == set(stored_ids)
    metrics = baton.metrics()
    assert metrics.get_value("baton_otlp_spans_rejected_total", reason="InvalidSpan") == 1
    assert metrics.get_value("baton_otlp_spans_accepted_total") == 3
    assert metrics.get_value("baton_otlp_requests_total", transport="http", outcome="partial_success") == 1


def test_grpc_partial_success_and_errors_through_grpcs_own_client(baton):
    channel = grpc.insecure_channel(baton.otlp_grpc_address)
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                 response_deserializer=ExportTraceServiceResponse.FromString)
    request, trace, stored_ids = one_invalid_among_valid()
    answer = export(request, timeout=10, compression=grpc.Compression.Gzip)
    assert answer.partial_success.rejected_spans == 1
    assert "span 0a0b0c" in answer.partial_success.error_message
    baton.wait_for_traces([xray_id(trace.hex())], timeout=2, entity_ids=stored_ids)

    raw = channel.unary_unary(EXPORT_METHOD)
    with pytest.raises(grpc.RpcError) as invalid:
        raw(b"\x0a\xff\xff\xff\x0f not protobuf", timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an OTLP ExportTraceServiceRequest" in invalid.value.details()

    logs = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    with pytest.raises(grpc.RpcError) as unknown:
        logs(b"", timeout=10)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()

    metrics = baton.metrics()
    assert metrics.get_value("baton_otlp_requests_total", transport="grpc", outcome="partial_success") == 1
    assert metrics.get_value("baton_otlp_requests_total", transport="grpc", outcome="refused") == 2
