"""The real Python X-Ray SDK sends over UDP to `baton serve`; the traces come
back through the X-Ray API (boto3)."""
import json
import time

import pytest

from helpers import (client_env, entities_by_id, name_tree, parse_trace_header, parsed_documents, run_client,
                     strip_children, walk)

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def sdk_env(baton, tmp_path):
    return client_env({"AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address,
                       "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}, home=tmp_path)


def test_basic_segment_comes_back_whole(baton, downstream, tmp_path):
    t0 = time.time()
    out = json.loads(run_client("xray_sdk_app.py", ["basic", downstream.url], sdk_env(baton, tmp_path)).stdout)
    sent = out["segment"]
    trace_id = out["trace_id"]
    sent_ids = {e["id"] for e, _, _ in walk(sent)}
    assert len(sent_ids) == 5, sent  # segment + validate-order, load-schema, charge-card, requests call

    traces = baton.wait_for_traces([trace_id], timeout=5, entity_ids=sent_ids)
    trace = traces[trace_id]

    # One document was sent, nothing to merge: the segment is the one entry, equal to what the SDK sent.
    assert [s["Id"] for s in trace["Segments"]] == [out["segment_id"]]
    [doc] = parsed_documents(trace)
    assert doc == sent
    assert trace["LimitExceeded"] is False
    assert abs(trace["Duration"] - (sent["end_time"] - sent["start_time"])) < 1e-3

    # The tree in detail.
    got = entities_by_id(trace)
    assert set(got) == sent_ids
    assert name_tree(doc) == ("e2e-orders", (("127.0.0.1", ()), ("charge-card", ()),
                                             ("validate-order", (("load-schema", ()),))))
    root = got[out["segment_id"]][0]
    assert root["http"]["request"] == {"method": "POST", "url": "https://orders.example.com/api/orders",
                                       "user_agent": "e2e-agent/1.0", "client_ip": "203.0.113.7"}
    assert root["http"]["response"] == {"status": 200, "content_length": 42}
    assert root["user"] == "alice"
    assert root["annotations"] == {"customer_tier": "gold", "order_count": 3, "order_total": 12.5, "is_vip": True}
    assert root["metadata"] == {"default": {"request_body": {"items": [1, 2, 3], "note": "unicode \u00e9\u4e2d"}},
                                "debug": {"debug_flag": False}}
    assert "fault" not in root and "error" not in root
    load_schema, parent, depth = got[out["ids"]["load-schema"]]
    assert parent["id"] == out["ids"]["validate-order"] and depth == 2
    assert load_schema["annotations"] == {"cache_hit": False}
    charge, parent, _ = got[out["ids"]["charge-card"]]
    assert parent["id"] == root["id"]
    assert charge["fault"] is True
    [exc] = charge["cause"]["exceptions"]
    assert exc["type"] == "ValueError" and exc["message"] == "card declined: insufficient funds"

    # The patched requests call: a remote subsegment, and the downstream saw its id as Parent.
    [remote] = [e for e, p, _ in got.values() if e.get("namespace") == "remote"]
    assert remote["name"] == "127.0.0.1"
    assert remote["http"]["request"] == {"method": "get", "url": downstream.url + "/inventory"}
    assert remote["http"]["response"] == {"status": 200}
    [req] = downstream.requests
    assert req["path"] == "/inventory?sku=ABC-1"
    hdr = parse_trace_header(req["trace_header"])
    assert hdr["Root"] == trace_id and hdr["Parent"] == remote["id"] and hdr["Sampled"] == "1", req

    # The trace summary.
    summaries = baton.summaries(t0 - 120, time.time() + 60)
    [summary] = [s for s in summaries if s["Id"] == trace_id]
    assert summary["Http"] == {"HttpURL": "https://orders.example.com/api/orders", "HttpStatus": 200,
                               "HttpMethod": "POST", "UserAgent": "e2e-agent/1.0", "ClientIp": "203.0.113.7"}
    assert summary["HasFault"] is False and summary["HasError"] is False and summary["HasThrottle"] is False
    assert summary["IsPartial"] is False
    assert abs(summary["ResponseTime"] - (sent["end_time"] - sent["start_time"])) < 1e-3
    assert abs(summary["Duration"] - (sent["end_time"] - sent["start_time"])) < 1e-3
    assert abs(summary["StartTime"].timestamp() - sent["start_time"]) < 1e-3
    assert [u["UserName"] for u in summary["Users"]] == ["alice"]
    assert [s["Name"] for s in summary["Users"][0]["ServiceIds"]] == ["e2e-orders"]
    assert summary["EntryPoint"]["Name"] == "e2e-orders" and "e2e-orders" in summary["EntryPoint"]["Names"]
    assert "e2e-orders" in [s["Name"] for s in summary["ServiceIds"]]
    expected_annotations = {
        "customer_tier": {"StringValue": "gold"}, "order_count": {"NumberValue": 3.0},
        "order_total": {"NumberValue": 12.5}, "is_vip": {"BooleanValue": True},
        "validator": {"StringValue": "v2"}, "cache_hit": {"BooleanValue": False},
        "amount_cents": {"NumberValue": 1250.0},
    }
    assert set(summary["Annotations"]) == set(expected_annotations)
    for key, value in expected_annotations.items():
        [entry] = summary["Annotations"][key]
        assert entry["AnnotationValue"] == value, (key, entry)
        assert [s["Name"] for s in entry["ServiceIds"]] == ["e2e-orders"], (key, entry)


def test_streamed_subsegments_are_merged_into_one_tree(baton, tmp_path):
    out = json.loads(run_client("xray_sdk_app.py", ["streaming"], sdk_env(baton, tmp_path)).stdout)
    trace_id = out["trace_id"]
    sent = {e["id"]: e for e in out["entities"]}
    assert len(sent) == 1 + 1 + 8 + 3
    traces = baton.wait_for_traces([trace_id], timeout=5, entity_ids=set(sent))

    # The SDK streamed: several datagrams arrived for this one trace.
    accepted = baton.metrics().get_value("baton_documents_accepted_total", protocol="udp")
    assert accepted >= 3, f"expected streamed pieces, the server accepted {accepted} UDP documents"

    trace = traces[trace_id]
    assert [s["Id"] for s in trace["Segments"]] == [out["segment_id"]], \
        "every streamed subsegment's parent arrived, so the root segment must be the only entry"
    got = entities_by_id(trace)
    assert set(got) == set(sent)
    for eid, entity in sent.items():
        doc, parent, _ = got[eid]
        assert doc["name"] == entity["name"]
        assert (parent["id"] if parent else None) == entity["parent_id"], (entity, parent and parent["id"])
    [doc] = parsed_documents(trace)
    assert name_tree(doc) == ("e2e-batch", (
        ("batch-loop", tuple(("item-%d" % i, ()) for i in range(8))),
        ("tail-0", ()), ("tail-1", ()), ("tail-2", ())))
    loop = next(e for e, _, _ in got.values() if e["name"] == "batch-loop")
    assert loop["annotations"] == {"batch_size": 8}
    for e, _, _ in got.values():
        if e["name"].startswith("item-"):
            assert e["annotations"] == {"item_index": int(e["name"][5:])}
            assert strip_children(e)["in_progress"] is False and "end_time" in e
