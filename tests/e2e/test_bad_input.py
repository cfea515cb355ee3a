"""Malformed input over UDP and HTTP: rejected, counted by reason, the valid
documents around it kept, the server still up."""
import json
import time

from helpers import UDP_HEADER, datagram, new_id, new_trace_id, segment_doc

REJECTED = "baton_documents_rejected_total"


def padded_doc(total_bytes: int) -> bytes:
    """A valid segment document of exactly `total_bytes` bytes."""
    doc = segment_doc(new_trace_id(), "big", metadata={"default": {"blob": ""}})
    base = len(json.dumps(doc).encode())
    doc["metadata"]["default"]["blob"] = "x" * (total_bytes - base)
    raw = json.dumps(doc).encode()
    assert len(raw) == total_bytes
    return raw


def wait_metrics(baton, check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        m = baton.metrics()
        problems = check(m)
        if not problems:
            return m
        if time.monotonic() > deadline:
            dump = "\n".join(f"{n}{dict(l)} {v}" for (n, l), v in sorted(m.items(), key=str) if n.startswith("baton_"))
            raise AssertionError(f"{problems}\n/metrics:\n{dump}")
        time.sleep(0.1)


def test_udp_burst_of_bad_datagrams(baton):
    valid_docs = [segment_doc(new_trace_id(), "good-%d" % i) for i in range(4)]
    big = padded_doc(65_000)  # under the 64 KiB document limit: valid
    big_tid = json.loads(big)["trace_id"]
    max_datagram = padded_doc(65_507 - len(UDP_HEADER) - 1)  # the largest IPv4 UDP payload
    max_tid = json.loads(max_datagram)["trace_id"]
    tid = new_trace_id()
    good = segment_doc(tid, "x")

    def doc_with(**changes):
        d = dict(good, id=new_id())
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return datagram(d)

    burst = [
        (datagram(valid_docs[0]), None),
        (json.dumps(good).encode(), "MissingHeader"),                        # no header line
        (datagram(good, b'{"format":"xml","version":1}'), "InvalidHeader"),
        (datagram(good, b'{"format":"json","version":2}'), "InvalidHeader"),
        (datagram(good, b'not a header'), "InvalidHeader"),
        (datagram(valid_docs[1], b'{"format": "JSON", "version": 1}'), None),  # spaces, upper case: valid
        (b"", "EmptyDatagram"),
        (UDP_HEADER + b"\n", "EmptyDocument"),                               # header only
        (UDP_HEADER, "MissingHeader"),                                       # header, no newline, no document
        (datagram(b'{"name": "x", "id": "'), "InvalidJson"),
        (datagram(b'[1, 2, 3]'), "InvalidJson"),
        (datagram(valid_docs[2]), None),
        (doc_with(start_time="yesterday"), "WrongType"),
        (doc_with(in_progress="no"), "WrongType"),
        (doc_with(id="xyz"), "InvalidSegmentId"),
        (doc_with(parent_id="ABCDEFGHIJKLMNOP"), "InvalidSegmentId"),
        (doc_with(trace_id="1-123-abc"), "InvalidTraceId"),
        (doc_with(name=None), "MissingField"),
        (doc_with(end_time=None), "InvalidTime"),
        (doc_with(name=""), "InvalidName"),
        (doc_with(annotations={"bad-key!": 1}), "InvalidAnnotation"),
        (doc_with(type="segment"), "InvalidType"),
        (datagram(big), None),
        (datagram(max_datagram), None),
        (datagram(valid_docs[3]), None),
    ]
    assert len(burst[-2][0]) == 65_507
    baton.send_datagrams(d for d, _ in burst)

    valid_ids = [d["trace_id"] for d in valid_docs] + [big_tid, max_tid]
    traces = baton.wait_for_traces(valid_ids, timeout=5)
    for d in valid_docs:
        assert json.loads(traces[d["trace_id"]]["Segments"][0]["Document"]) == d
    assert json.loads(traces[big_tid]["Segments"][0]["Document"]) == json.loads(big)
    assert json.loads(traces[max_tid]["Segments"][0]["Document"]) == json.loads(max_datagram)
    # None of the rejected documents (trace `tid`) was stored.
    _, unprocessed = baton.batch_get_traces([tid])
    assert unprocessed == [tid]

    expected = {}
    for _, reason in burst:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    n_valid = sum(1 for _, r in burst if r is None)

    def check(m):
        problems = []
        got = {dict(labels)["reason"]: v for labels, v in m.matching(REJECTED, protocol="udp").items() if v}
        if got != expected:
            problems.append(f"rejected by reason: expected {expected}, got {got}")
        accepted = m.get_value("baton_documents_accepted_total", protocol="udp")
        if accepted != n_valid:
            problems.append(f"accepted{{udp}}: expected {n_valid}, got {accepted}")
        # received counts either every datagram, or the documents the framing let through.
        received = m.get_value("baton_documents_received_total", protocol="udp")
        dropped = sum(m.matching("baton_documents_dropped_total", protocol="udp").values())
        framing = sum(v for r, v in got.items() if r in ("MissingHeader", "InvalidHeader", "EmptyDatagram"))
        every = accepted + sum(got.values()) + dropped
        if received not in (every, every - framing):
            problems.append(f"received{{udp}} = {received}: expected accepted {accepted} + rejected "
                            f"{sum(got.values())} (of which framing {framing}) + dropped {dropped}")
        if m.get_value("baton_store_documents_written_total") < n_valid:
            problems.append(f"store written < {n_valid}")
        return problems

    wait_metrics(baton, check)

    # Still up and still ingesting.
    assert baton.alive()
    after = segment_doc(new_trace_id(), "after-burst")
    baton.send_datagram(datagram(after))
    baton.wait_for_traces([after["trace_id"]], timeout=5)


def test_http_bad_input(baton):
    # A body that is not JSON.
    r = baton.post("/TraceSegments", b"this is not json {")
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers.get("x-amzn-ErrorType"), dict(r.headers)
    assert isinstance(r.json().get("message"), str) and r.json()["message"], r.text

    # An operation that does not exist.
    r = baton.post("/NoSuchOperation", {})
    assert r.status_code == 404, (r.status_code, r.text)
    assert isinstance(r.json().get("message"), str) and r.json()["message"], r.text

    # A document over 64 KiB, between two valid ones (only the API can carry one).
    tid = new_trace_id()
    ok1, ok2 = segment_doc(tid, "ok-1"), segment_doc(tid, "ok-2")
    big = json.loads(padded_doc(70_000))
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(ok1), json.dumps(big), json.dumps(ok2)])
    [unprocessed] = resp["UnprocessedTraceSegments"]
    assert unprocessed["ErrorCode"] == "DocumentTooLarge" and unprocessed["Message"], unprocessed
    # Invalid JSON and a bad trace id in the API, each with its code.
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=["{nope", json.dumps(dict(ok1, id=new_id(),
                                                                                         trace_id="1-zz"))])
    codes = sorted(u["ErrorCode"] for u in resp["UnprocessedTraceSegments"])
    assert codes == ["InvalidJson", "InvalidTraceId"], resp["UnprocessedTraceSegments"]

    traces, _ = baton.batch_get_traces([tid, big["trace_id"]])
    assert set(traces) == {tid}
    assert sorted(s["Id"] for s in traces[tid]["Segments"]) == sorted([ok1["id"], ok2["id"]])

    m = baton.metrics()
    got = {dict(labels)["reason"]: v for labels, v in m.matching(REJECTED, protocol="http").items() if v}
    assert got == {"DocumentTooLarge": 1, "InvalidJson": 1, "InvalidTraceId": 1}, got
    assert m.get_value("baton_documents_accepted_total", protocol="http") == 2
    assert m.get_value("baton_documents_received_total", protocol="http") == 5, "2 + 3 documents were sent"
    assert baton.alive()
