"""boto3's X-Ray client (real botocore model, SigV4-signed) against `baton serve`."""
import datetime as dt
import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import entities_by_id, new_id, new_trace_id, segment_doc

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_put_and_batch_get(baton):
    tid = new_trace_id()
    root = segment_doc(tid, "checkout", origin="AWS::EC2::Instance",
                       http={"request": {"method": "GET", "url": "https://example.com/cart"},
                             "response": {"status": 200}},
                       annotations={"tier": "gold"}, metadata={"default": {"k": [1, None, "x"]}})
    # A second service of the same trace, sent on its own, with an embedded subsegment.
    downstream = segment_doc(tid, "inventory", parent_id=new_id(), start=root["start_time"] + 0.01,
                             duration=0.02)
    downstream["subsegments"] = [{"id": new_id(), "name": "query", "start_time": downstream["start_time"],
                                  "end_time": downstream["end_time"], "namespace": "remote",
                                  "sql": {"url": "postgresql://db/x", "sanitized_query": "SELECT 1"}}]
    other = segment_doc(new_trace_id(), "solo")
    # Each document as a JSON string, with this exact formatting: it must come back byte-identical.
    docs = [json.dumps(root), json.dumps(downstream, separators=(",", ":")), json.dumps(other, indent=None)]
    bad = json.dumps({"name": "broken", "id": "not-a-segment-id", "trace_id": tid,
                      "start_time": 1.0, "end_time": 2.0})
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[docs[0], bad, docs[1], docs[2]])
    [unprocessed] = resp["UnprocessedTraceSegments"]
    assert unprocessed["ErrorCode"] == "InvalidSegmentId", unprocessed
    assert unprocessed["Id"] == "not-a-segment-id", unprocessed
    assert "id" in unprocessed["Message"], unprocessed

    traces, missing = baton.batch_get_traces([tid, other["trace_id"]])
    assert missing == []
    trace = traces[tid]
    assert trace["Id"] == tid and trace["LimitExceeded"] is False
    by_id = {s["Id"]: s["Document"] for s in trace["Segments"]}
    assert by_id == {root["id"]: docs[0], downstream["id"]: docs[1]}, "documents must come back byte-identical"
    expected_duration = max(root["end_time"], downstream["end_time"]) - root["start_time"]
    assert abs(trace["Duration"] - expected_duration) < 1e-3, trace["Duration"]
    assert [s["Document"] for s in traces[other["trace_id"]]["Segments"]] == [docs[2]]

    # Unknown ids (well-formed) are reported, not an error.
    unknown = new_trace_id()
    traces, missing = baton.batch_get_traces([unknown, tid])
    assert set(traces) == {tid} and missing == [unknown]


def test_independent_subsegments_and_in_progress_replacement(baton):
    tid = new_trace_id()
    root = segment_doc(tid, "api", duration=1.0)
    start = root["start_time"]
    child_open = {"id": new_id(), "name": "dynamodb", "trace_id": tid, "parent_id": root["id"],
                  "type": "subsegment", "namespace": "aws", "start_time": start + 0.1, "in_progress": True}
    grandchild = {"id": new_id(), "name": "retry", "trace_id": tid, "parent_id": child_open["id"],
                  "type": "subsegment", "start_time": start + 0.2, "end_time": start + 0.3}
    orphan = {"id": new_id(), "name": "lost-parent", "trace_id": tid, "parent_id": new_id(),
              "type": "subsegment", "start_time": start + 0.4, "end_time": start + 0.5}
    child_done = dict(child_open, in_progress=False, end_time=start + 0.6)
    child_done.pop("in_progress")
    # Children first, parent last, and the in-progress version replaced by the complete one.
    for batch in ([grandchild, child_open], [orphan], [root], [child_done]):
        resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in batch])
        assert resp.get("UnprocessedTraceSegments", []) == []
    traces, _ = baton.batch_get_traces([tid])
    trace = traces[tid]
    assert sorted(s["Id"] for s in trace["Segments"]) == sorted([root["id"], orphan["id"]])
    got = entities_by_id(trace)
    assert set(got) == {root["id"], child_open["id"], grandchild["id"], orphan["id"]}
    child, parent, depth = got[child_open["id"]]
    assert parent["id"] == root["id"] and depth == 1
    assert {k: v for k, v in child.items() if k != "subsegments"} == child_done, "the complete document wins"
    g, parent, depth = got[grandchild["id"]]
    assert parent["id"] == child_open["id"] and depth == 2 and g == grandchild
    assert got[orphan["id"]][0] == orphan


def test_trace_summaries_paginate_and_time_ranges(baton):
    now = time.time()
    id_epoch = now - 7200  # trace ids say 2 h ago; the events happened 30 s ago
    ids = [new_trace_id(id_epoch) for _ in range(250)]
    for i in range(0, 250, 50):
        docs = [json.dumps(segment_doc(t, "svc-%d" % (n % 3), start=now - 30 + n * 0.001,
                                       http={"request": {"method": "GET", "url": "http://x/%d" % n},
                                             "response": {"status": 200 + (n % 2)}}))
                for n, t in enumerate(ids[i:i + 50], start=i)]
        resp = baton.xray.put_trace_segments(TraceSegmentDocuments=docs)
        assert resp.get("UnprocessedTraceSegments", []) == []

    paginator = baton.xray.get_paginator("get_trace_summaries")
    pages = list(paginator.paginate(StartTime=id_epoch - 100, EndTime=id_epoch + 100, TimeRangeType="TraceId"))
    sizes = [len(p["TraceSummaries"]) for p in pages]
    assert len(pages) >= 3 and max(sizes) <= 100, sizes
    got = [s["Id"] for p in pages for s in p["TraceSummaries"]]
    assert sorted(got) == sorted(ids), f"{len(got)} ids, {len(set(got))} distinct, pages {sizes}"

    # By event time: the same traces are found around now, none around the trace-id time.
    event_now = [s["Id"] for p in paginator.paginate(StartTime=now - 120, EndTime=now + 60, TimeRangeType="Event")
                 for s in p["TraceSummaries"]]
    assert sorted(event_now) == sorted(ids)
    event_then = [s["Id"] for p in paginator.paginate(StartTime=id_epoch - 100, EndTime=id_epoch + 100,
                                                      TimeRangeType="Event") for s in p["TraceSummaries"]]
    assert event_then == []
    traceid_now = [s["Id"] for p in paginator.paginate(StartTime=now - 120, EndTime=now + 60,
                                                       TimeRangeType="TraceId") for s in p["TraceSummaries"]]
    assert traceid_now == []

    # A summary's fields for one of them.
    summary = next(s for p in pages for s in p["TraceSummaries"] if s["Id"] == ids[1])
    assert summary["Http"]["HttpURL"] == "http://x/1" and summary["Http"]["HttpStatus"] == 201
    assert summary["Http"]["HttpMethod"] == "GET"
    assert summary["EntryPoint"]["Name"] == "svc-1"
    assert [s["Name"] for s in summary["ServiceIds"]] == ["svc-1"]
    assert abs(summary["Duration"] - 0.05) < 1e-3 and abs(summary["ResponseTime"] - 0.05) < 1e-3
    assert summary["HasFault"] is False and summary["IsPartial"] is False

    # Times as ISO strings and as fractional numbers (other SDKs send those; boto3 never does).
    for start, end in ((iso(id_epoch - 100), iso(id_epoch + 100)), (id_epoch - 100.5, id_epoch + 100.25)):
        r = baton.post("/TraceSummaries", {"StartTime": start, "EndTime": end, "TimeRangeType": "TraceId"})
        assert r.status_code == 200, (start, r.status_code, r.text[:500])
        body = r.json()
        assert len(body["TraceSummaries"]) == 100 and body.get("NextToken"), (start, len(body["TraceSummaries"]))
        assert set(s["Id"] for s in body["TraceSummaries"]) <= set(ids)


def test_a_wrong_filter_expression_is_a_client_error_with_its_position(baton):
    now = time.time()
    with pytest.raises(ClientError) as err:
        baton.xray.get_trace_summaries(StartTime=now - 60, EndTime=now, FilterExpression='responsetime > "slow"')
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidRequestException", err.value.response
    assert error["Message"] == "FilterExpression: cannot compare number keyword responsetime with a string at 15"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_start_time_is_a_client_error(baton):
    r = baton.post("/TraceSummaries", {"EndTime": time.time()})
    assert 400 <= r.status_code < 500 and r.headers.get("x-amzn-ErrorType"), (r.status_code, r.headers, r.text)
    assert r.json().get("message"), r.text
