"""Durability: acknowledged documents survive kill -9; UDP documents received
before SIGTERM survive a graceful shutdown. Restarts use the same data dir."""
import json
import signal

import pytest

from helpers import datagram, new_trace_id, segment_doc

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def test_startup_lines(baton):
    # The OTLP receivers were asked for port 0: their lines name the ports picked.
    otlp_http, otlp_grpc = baton.addresses["otlp-http"], baton.addresses["otlp-grpc"]
    assert baton.listening_lines == [
        f"listening udp 127.0.0.1:{baton.port} (X-Ray daemon protocol)",
        f"listening http 127.0.0.1:{baton.port} (X-Ray API, /metrics)",
        f"listening otlp-http {otlp_http} (OTLP/HTTP, POST /v1/traces)",
        f"listening otlp-grpc {otlp_grpc} (OTLP/gRPC, TraceService/Export)",
    ]
    assert all(addr.startswith("127.0.0.1:") and not addr.endswith(":0") for addr in (otlp_http, otlp_grpc))
    m = baton.metrics()
    for name in ("baton_documents_received_total", "baton_documents_accepted_total"):
        for protocol in ("udp", "http"):
            assert (name, frozenset({("protocol", protocol)})) in m, f"{name}{{protocol={protocol!r}}} not exported"
    assert ("baton_store_documents_written_total", frozenset()) in m


def test_acknowledged_documents_survive_kill_9(baton_factory):
    first = baton_factory()
    sent = {}
    for batch in range(10):
        docs = [segment_doc(new_trace_id(), "crash-%d-%d" % (batch, i)) for i in range(20)]
        raw = [json.dumps(d) for d in docs]
        resp = first.xray.put_trace_segments(TraceSegmentDocuments=raw)
        assert resp.get("UnprocessedTraceSegments", []) == []
        sent.update({d["trace_id"]: (d["id"], r) for d, r in zip(docs, raw)})
    rc = first.kill()  # right after the last acknowledgement
    assert rc == -9

    second = baton_factory(data_dir=first.data_dir)
    traces, unprocessed = second.batch_get_traces(sent)
    assert unprocessed == [], f"{len(unprocessed)} of {len(sent)} acknowledged traces lost after kill -9"
    for trace_id, (seg_id, raw) in sent.items():
        assert [(s["Id"], json.loads(s["Document"])) for s in traces[trace_id]["Segments"]] == \
            [(seg_id, json.loads(raw))]


def test_udp_documents_survive_sigterm(baton_factory):
    first = baton_factory()
    docs = [segment_doc(new_trace_id(), "graceful-%d" % i) for i in range(500)]
    first.send_datagrams(datagram(d) for d in docs)
    rc = first.stop()  # SIGTERM right away
    assert rc == 0, f"exit code {rc} after SIGTERM; stderr:\n{first.stderr_tail()}"

    second = baton_factory(data_dir=first.data_dir)
    traces, unprocessed = second.batch_get_traces(d["trace_id"] for d in docs)
    assert unprocessed == [], f"{len(unprocessed)} of {len(docs)} UDP documents lost over a graceful shutdown"
    for d in docs:
        assert [json.loads(s["Document"]) for s in traces[d["trace_id"]]["Segments"]] == [d]


def test_signal_right_after_ready_exits_0(baton_factory):
    """Once the listening lines are out, SIGTERM and SIGINT must give a clean exit 0."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        server = baton_factory()
        rc = server.stop(sig)
        assert rc == 0, f"exit code {rc} after {sig.name} sent right after the listening lines; " \
                        f"stderr:\n{server.stderr_tail()}"
        assert "panick" not in server.stderr_tail(200)
