#!/usr/bin/env python3
"""A Lambda function traced by the real Powertools Tracer, invoked several times
in ONE process as the Lambda runtime would, in a simulated Lambda environment.

The caller sets LAMBDA_TASK_ROOT, AWS_XRAY_DAEMON_ADDRESS, AWS_XRAY_CONTEXT_MISSING,
POWERTOOLS_SERVICE_NAME, AWS_LAMBDA_FUNCTION_NAME and DOWNSTREAM_URL before start
(the X-Ray SDK reads LAMBDA_TASK_ROOT at import time).

usage: powertools_lambda_app.py INVOCATIONS_JSON
  INVOCATIONS_JSON: [{"trace_header": "Root=..;Parent=..;Sampled=1", "event": {...}}, ...]

Prints one JSON line per invocation: the outcome and, for sampled ones, the
method subsegment as the SDK serialized it (read after it was sent).
"""
import json
import os
import sys

from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import xray_recorder

tracer = Tracer()

import requests  # noqa: E402  (patched by Tracer)

DOWNSTREAM = os.environ["DOWNSTREAM_URL"]
seen = {}


class FakeContext:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 128
    aws_request_id = "req-0"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "2026/11/23/[$LATEST]e2e"

    def get_remaining_time_in_millis(self):
        return 3000


@tracer.capture_method
def fetch_order(order_id, fail=False):
    seen["method_subsegment"] = xray_recorder.current_subsegment()
    tracer.put_annotation("order_id", order_id)
    tracer.put_annotation("priority", 2)
    tracer.put_metadata("order_request", {"order_id": order_id, "lines": [{"sku": "A", "qty": 2}]})
    r = requests.get("%s/orders/%s" % (DOWNSTREAM, order_id))
    if fail:
        raise RuntimeError("order service exploded for %s" % order_id)
    return {"order_id": order_id, "downstream_status": r.status_code}


@tracer.capture_lambda_handler
def handler(event, context):
    return fetch_order(event["order_id"], event.get("fail", False))


for i, inv in enumerate(json.loads(sys.argv[1]), 1):
    os.environ["_X_AMZN_TRACE_ID"] = inv["trace_header"]
    ctx = FakeContext()
    ctx.aws_request_id = "req-%d" % i
    seen.clear()
    out = {"invocation": i}
    try:
        out["result"] = handler(inv["event"], ctx)
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)
    sub = seen.get("method_subsegment")
    if sub is not None and getattr(sub, "sampled", False):
        out["method_subsegment"] = json.loads(sub.serialize())
    print(json.dumps(out), flush=True)
