#!/usr/bin/env python3
"""A service whose sampling decisions come from the real aws-xray-sdk's centralized
sampler (DefaultSampler): it fetches the rules and reports its statistics on the
TCP side of $AWS_XRAY_DAEMON_ADDRESS (the server under test), and sends each
sampled segment over UDP to the same address.

usage: xray_sampler_app.py SERVICE

About every 20 ms it decides, as the SDK's middlewares do, for one request to each
of /orders/N, /health and /other, and records a segment for each sampled one,
annotated with its `path` (the route) and `health_rule` ("known" once the sampler
holds the rule named `health`, looked at before deciding). Every 0.2 s it prints
one JSON line of what the SDK's sampler holds (its ClientID, when it last fetched
the rules, each rule's rate and quota) and how many segments it sent per path and
phase. Runs until its stdin closes. It only reads the SDK's objects; it never
changes how the SDK samples or sends.
"""
import json
import sys
import threading
import time
from collections import Counter

from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.models.trace_header import TraceHeader
from aws_xray_sdk.ext.util import calculate_sampling_decision

SERVICE = sys.argv[1]
# The daemon address comes from $AWS_XRAY_DAEMON_ADDRESS; sampling on is the default sampler.
xray_recorder.configure(service=SERVICE, sampling=True, context_missing="LOG_ERROR")

stopped = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
sent = Counter()


def state() -> dict:
    sampler = xray_recorder.sampler
    return {
        "client_id": sampler._connector._client_id,
        "fetched": sampler._cache.last_updated,
        "rules": {rule.name: {"rate": rule.rate, "quota": rule.reservoir.quota, "ttl": rule.reservoir.TTL}
                  for rule in sampler._cache.rules},
        "sent": dict(sent),
    }


def handle(path: str, route: str):
    health_rule = "known" if any(r.name == "health" for r in xray_recorder.sampler._cache.rules) else "unknown"
    request = {"host": "127.0.0.1", "method": "GET", "path": path, "service": SERVICE}
    decision = calculate_sampling_decision(TraceHeader(), xray_recorder, request)
    segment = xray_recorder.begin_segment(SERVICE, sampling=decision)
    if segment.sampled:
        segment.put_http_meta("method", "GET")
        segment.put_http_meta("url", "http://127.0.0.1" + path)
        segment.put_annotation("path", route)
        segment.put_annotation("health_rule", health_rule)
        sent[f"{route} {health_rule}"] += 1
    xray_recorder.end_segment()


last_print = 0.0
n = 0
while not stopped.is_set():
    n += 1
    handle(f"/orders/{n}", "/orders")
    handle("/health", "/health")
    handle("/other", "/other")
    if time.monotonic() - last_print >= 0.2:
        print(json.dumps(state()), flush=True)
        last_print = time.monotonic()
    time.sleep(0.02)
print(json.dumps(state()), flush=True)
