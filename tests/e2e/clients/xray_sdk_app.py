#!/usr/bin/env python3
"""An application instrumented with the real aws-xray-sdk, sending to the daemon
address in $AWS_XRAY_DAEMON_ADDRESS (the server under test).

usage: xray_sdk_app.py basic DOWNSTREAM_URL
       xray_sdk_app.py streaming
       xray_sdk_app.py chain

`chain` runs two instrumented services in one process: e2e-front calls, over
HTTP (patched requests), e2e-backend, which reads the trace header as the
SDK's middlewares do, records a DynamoDB call that faults and answers 500.

Prints one JSON object on stdout describing what it recorded (ids, and for
`basic` the segment as the SDK serialized it), so the test can compare what
the server gives back. It only reads the SDK's objects; it never changes how
the SDK sends.
"""
import json
import os
import sys
import time

from aws_xray_sdk.core import patch, xray_recorder

patch(["requests"])
import requests  # noqa: E402

DAEMON = os.environ["AWS_XRAY_DAEMON_ADDRESS"]
xray_recorder.configure(service="e2e-orders", sampling=False, daemon_address=DAEMON,
                        context_missing="LOG_ERROR")


def basic(downstream):
    seg = xray_recorder.begin_segment("e2e-orders")
    seg.put_http_meta("method", "POST")
    seg.put_http_meta("url", "https://orders.example.com/api/orders")
    seg.put_http_meta("user_agent", "e2e-agent/1.0")
    seg.put_http_meta("client_ip", "203.0.113.7")
    seg.set_user("alice")
    seg.put_annotation("customer_tier", "gold")
    seg.put_annotation("order_count", 3)
    seg.put_annotation("order_total", 12.5)
    seg.put_annotation("is_vip", True)
    seg.put_metadata("request_body", {"items": [1, 2, 3], "note": "unicode \u00e9\u4e2d"})
    seg.put_metadata("debug_flag", False, "debug")

    ids = {}
    with xray_recorder.in_subsegment("validate-order") as sub:
        ids["validate-order"] = sub.id
        sub.put_annotation("validator", "v2")
        sub.put_metadata("rules_checked", 14, "validation")
        with xray_recorder.in_subsegment("load-schema") as inner:
            ids["load-schema"] = inner.id
            inner.put_annotation("cache_hit", False)
            time.sleep(0.002)

    try:
        with xray_recorder.in_subsegment("charge-card") as sub:
            ids["charge-card"] = sub.id
            sub.put_annotation("amount_cents", 1250)
            raise ValueError("card declined: insufficient funds")
    except ValueError:
        pass

    r = requests.get(downstream + "/inventory?sku=ABC-1")
    assert r.status_code == 200, r.status_code
    seg.put_http_meta("status", 200)
    seg.put_http_meta("content_length", 42)
    xray_recorder.end_segment()
    # What the emitter sent is entity.serialize() of this (closed) segment.
    print(json.dumps({"trace_id": seg.trace_id, "segment_id": seg.id, "ids": ids,
                      "segment": json.loads(seg.serialize())}))


def streaming():
    xray_recorder.configure(streaming_threshold=3)
    seg = xray_recorder.begin_segment("e2e-batch")
    entities = [{"id": seg.id, "name": seg.name, "parent_id": None}]

    def note(sub):
        entities.append({"id": sub.id, "name": sub.name, "parent_id": sub.parent_id})

    with xray_recorder.in_subsegment("batch-loop") as loop:
        note(loop)
        loop.put_annotation("batch_size", 8)
        for i in range(8):
            with xray_recorder.in_subsegment("item-%d" % i) as s:
                note(s)
                s.put_annotation("item_index", i)
                time.sleep(0.001)
    for i in range(3):
        with xray_recorder.in_subsegment("tail-%d" % i) as s:
            note(s)
    xray_recorder.end_segment()
    print(json.dumps({"trace_id": seg.trace_id, "segment_id": seg.id, "entities": entities}))


def chain():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Backend(BaseHTTPRequestHandler):
        def do_GET(self):
            header = dict(part.split("=", 1) for part in self.headers["X-Amzn-Trace-Id"].split(";"))
            seg = xray_recorder.begin_segment("e2e-backend", traceid=header["Root"], parent_id=header["Parent"],
                                              sampling=1)
            seg.put_http_meta("method", "GET")
            seg.put_http_meta("url", "http://127.0.0.1/items")
            sub = xray_recorder.begin_subsegment("DynamoDB", namespace="aws")
            sub.set_aws({"operation": "GetItem", "table_name": "items"})
            sub.put_http_meta("status", 500)
            sub.add_fault_flag()
            xray_recorder.end_subsegment()
            seg.put_http_meta("status", 500)
            seg.add_fault_flag()
            xray_recorder.end_segment()
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seg = xray_recorder.begin_segment("e2e-front")
    r = requests.get("http://127.0.0.1:%d/items" % server.server_address[1])
    seg.put_http_meta("status", 200)
    xray_recorder.end_segment()
    server.shutdown()
    print(json.dumps({"trace_id": seg.trace_id, "backend_status": r.status_code}))


if sys.argv[1] == "basic":
    basic(sys.argv[2])
elif sys.argv[1] == "chain":
    chain()
else:
    streaming()
