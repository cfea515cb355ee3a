"""X-Ray filter expressions end to end: boto3's GetTraceSummaries(FilterExpression=…)
against `baton serve`, on a dataset of traces built so that each keyword separates
them, asserting the exact set of traces each expression selects.

One server and one dataset for the whole module. Times in the dataset are
relative to BASE (a whole second, a few minutes ago); the query window covers
the dataset and nothing else (boto3 sends whole seconds).
"""
from __future__ import annotations

import json
import math
import time

import pytest
from botocore.exceptions import ClientError

from helpers import BatonServer, new_id, new_trace_id

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

NOW = math.floor(time.time())
BASE = NOW - 300         # the dataset: every trace starts in [BASE, BASE + 13)
WINDOW = (BASE - 1, BASE + 20)
BATCH_BASE = NOW - 200   # the pagination traces, outside WINDOW
BATCH_WINDOW = (BATCH_BASE - 1, BATCH_BASE + 20)
BATCH_SIZE = 360         # every 3rd annotated: 120 matches, more than one page of 100

LAMBDA = "AWS::Lambda::Function"
EC2 = "AWS::EC2::Instance"
# Ids that other documents of the same trace refer to.
CALL_BACKEND, CALL_RESIZE = "c000000000000001", "c000000000000002"


def seg(name, at, took, **fields):
    """A segment starting `at` seconds after the trace's start, lasting `took`
    seconds (None: in progress, no end_time)."""
    doc = {"name": name, "id": new_id(), "start_time": at}
    if took is None:
        doc["in_progress"] = True
    else:
        doc["end_time"] = at + took
    doc.update(fields)
    return doc


def sub(name, at, took, namespace=None, seg_id=None, **fields):
    """An embedded subsegment, times as for `seg`."""
    doc = {"name": name, "id": seg_id or new_id(), "start_time": at, "end_time": at + took}
    if namespace:
        doc["namespace"] = namespace
    doc.update(fields)
    return doc


def http(method=None, url=None, status=None, user_agent=None, client_ip=None):
    request = {k: v for k, v in (("method", method), ("url", url), ("user_agent", user_agent),
                                 ("client_ip", client_ip)) if v is not None}
    block = {"request": request} if request else {}
    if status is not None:
        block["response"] = {"status": status}
    return block


# === the dataset: name -> the documents of one trace ===
# Response time (entry segment) and duration (whole trace) of each, in seconds:
#   ok-api 1/1, fault-lambda 8.5/8.5, error-lambda .2/.2, throttled .3/.3, in-progress -/-,
#   slow 6/6, v2-http 2.5/2.5, v2-async 1.5/7.5, annotated .1/.1, ec2-worker .5/.5,
#   api-fault .4/.4, data-plane .3/.3
DATASET = {
    # OK API call; DynamoDB (inferred, fault) and an instrumented backend (error, 404).
    "ok-api": [
        seg("api.example.com", 0, 1.0, origin=EC2, user="alice",
            http=http("GET", "https://api.example.com/api/game/7", 200,
                      "Mozilla/5.0 (X11; Linux x86_64)", "203.0.113.7"),
            annotations={"gameid": "817DL6VO", "age": 31, "vip": True},
            aws={"account_id": "123456789012",
                 "ec2": {"instance_id": "i-0abc1234", "availability_zone": "us-east-1a"}},
            subsegments=[sub("DynamoDB", 0.1, 0.1, "aws", fault=True,
                             aws={"operation": "GetItem", "table_name": "games"}),
                         sub("backend.example.com", 0.2, 0.7, "remote", seg_id=CALL_BACKEND, error=True,
                             http=http("GET", "http://backend.example.com/scores", 404))]),
        seg("backend.example.com", 0.3, 0.5, parent_id=CALL_BACKEND, error=True,
            http=http(status=404), annotations={"tier": "gold"}),
    ],
    # 5xx fault at the entry, in a Lambda function.
    "fault-lambda": [
        seg("random-name", 0.5, 8.5, origin=LAMBDA, fault=True, http=http(status=502),
            annotations={"age": 29},
            resource_arn="arn:aws:lambda:us-east-1:123456789012:function:random-name"),
    ],
    # 4xx error at the entry, the same Lambda function.
    "error-lambda": [
        seg("random-name", 1, 0.2, origin=LAMBDA, error=True,
            http=http("POST", "https://api.example.com/upload", 404), annotations={"age": 18},
            resource_arn="arn:aws:lambda:us-east-1:123456789012:function:random-name"),
    ],
    # Throttled: a service of the same name, not a Lambda function.
    "throttled": [
        seg("random-name", 1.5, 0.3, origin=EC2, error=True, throttle=True, user="bob",
            http=http("GET", "https://api.example.com/api/score", 429)),
    ],
    # Still in progress: partial, no response time or duration.
    "in-progress": [
        seg("api.example.com", 2, None, user="carol", annotations={"account": "12345"},
            http=http("GET", "https://api.example.com/api/game/12")),
    ],
    # Slow.
    "slow": [
        seg("report-service", 2.5, 6.0, origin="AWS::ECS::Container", user="alice",
            http=http("GET", "http://reports.example.com/monthly", 200), annotations={"vip": False}),
    ],
    # A /v2/ URL on api.example.com, served by another service.
    "v2-http": [
        seg("frontend", 3, 2.5, origin=EC2, user="dave",
            http=http("GET", "http://api.example.com/v2/items", 200, "python-requests/2.31", "198.51.100.4")),
    ],
    # A /v2/ URL served by api.example.com, which calls a Lambda function that
    # fails (error) and outlives the request: duration 7.5, response time 1.5.
    "v2-async": [
        seg("api.example.com", 3.5, 1.5, http=http("GET", "http://api.example.com/v2/orders", 201),
            annotations={"account": "12345"},
            subsegments=[sub("resize-images", 0, 0.1, "remote", seg_id=CALL_RESIZE)]),
        seg("resize-images", 4.5, 6.5, origin=LAMBDA, parent_id=CALL_RESIZE, error=True, user="erin",
            resource_arn="arn:aws:lambda:us-east-1:123456789012:function:resize-images"),
    ],
    # Annotations only, one of them of an unusual type.
    "annotated": [
        seg("worker", 4, 0.1, annotations={"gameid": "817XYZ", "age": "thirty", "score": 7.5}),
    ],
    # An EC2 worker calling S3 (inferred, ok).
    "ec2-worker": [
        seg("batch-worker", 5, 0.5, origin=EC2,
            aws={"ec2": {"instance_id": "i-0def5678", "availability_zone": "us-west-2b"}},
            subsegments=[sub("S3", 0.1, 0.2, "aws", aws={"operation": "PutObject"})]),
    ],
    # 5xx fault at the entry of api.example.com.
    "api-fault": [
        seg("api.example.com", 5.5, 0.4, origin=EC2, fault=True, user="alice",
            http=http("POST", "https://api.example.com/api/pay", 500),
            annotations={"account": "12345", "score": -2},
            aws={"ec2": {"instance_id": "i-0abc9999", "availability_zone": "us-east-1b"}}),
    ],
    # 5xx fault at the entry of data-plane.
    "data-plane": [
        seg("data-plane", 6, 0.3, fault=True, http=http("PUT", "https://data.example.com/x", 503)),
    ],
}
ALL = sorted(DATASET)
SLOW_GROUP = ("high_response_time", "responsetime > 5")


def everything_but(*names):
    return sorted(set(ALL) - set(names))


# === the cases: expression -> the traces it selects ===
CASES = [
    # Every example of AWS's "Filter expressions" page that Baton runs.
    ("responsetime > 5", ["fault-lambda", "slow"]),
    ("duration >= 5 AND duration <= 8", ["slow", "v2-async"]),
    ("ok", ["annotated", "ec2-worker", "in-progress", "ok-api", "slow", "v2-async", "v2-http"]),
    ("!ok", ["api-fault", "data-plane", "error-lambda", "fault-lambda", "throttled"]),
    ("ok = false", ["api-fault", "data-plane", "error-lambda", "fault-lambda", "throttled"]),
    ("http.status != 200", ["api-fault", "data-plane", "error-lambda", "fault-lambda", "throttled", "v2-async"]),
    ("ok !partial duration <3", ["annotated", "ec2-worker", "ok-api", "v2-http"]),
    ('http.url CONTAINS "/api/game/"', ["in-progress", "ok-api"]),
    ('user CONTAINS ""', ["api-fault", "in-progress", "ok-api", "slow", "throttled", "v2-async", "v2-http"]),
    ('service("api.example.com") { fault }', ["api-fault"]),
    ("service() { fault }", ["api-fault", "data-plane", "fault-lambda", "ok-api"]),
    ('edge("api.example.com", "backend.example.com") { error }', ["ok-api"]),
    ('http.url BEGINSWITH "http://api.example.com/" AND http.url CONTAINS "/v2/" AND !service("api.example.com")',
     ["v2-http"]),
    ("http.url AND responseTime > 2", ["slow", "v2-http"]),
    ('annotation.gameid = "817DL6VO"', ["ok-api"]),
    ("annotation.age", ["annotated", "error-lambda", "fault-lambda", "ok-api"]),
    ("!annotation.age", everything_but("annotated", "error-lambda", "fault-lambda", "ok-api")),
    ("annotation.age > 29", ["ok-api"]),
    ('group.name = "high_response_time" AND user = "alice"', ["slow"]),
    (f'service(id(name: "random-name", type: "{LAMBDA}")) {{ error }}', ["error-lambda"]),
    (f'service(id(type: "{LAMBDA}")) {{ error }}', ["error-lambda", "v2-async"]),
    ('service("data-plane") {root = true and fault = true}', ["data-plane"]),
    ('service("random-name") { error }', ["error-lambda", "throttled"]),
    ('service(id(name: "service-name", type:"service::type")) { fault }', []),
    ('edge(id(name: "service-one", type:"service::type"), id(name: "service-two", type:"service::type")) { fault }',
     []),
    ('service("api.example.com") { fault = true OR responsetime > 2.5 } AND annotation.account = "12345"',
     ["api-fault"]),
    ('edge("api.example.com", "backend.example.com") { fault = true }', []),
    # Boolean keywords.
    ("error", ["error-lambda", "throttled"]),
    ("throttle", ["throttled"]),
    ("fault", ["api-fault", "data-plane", "fault-lambda"]),
    ("partial", ["in-progress"]),
    ("inferred", ["ec2-worker", "ok-api"]),
    ("!inferred AND ok", ["annotated", "in-progress", "slow", "v2-async", "v2-http"]),
    ("ok = true", ["annotated", "ec2-worker", "in-progress", "ok-api", "slow", "v2-async", "v2-http"]),
    ("partial != true AND error != false", ["error-lambda", "throttled"]),
    # Numbers: an unset field satisfies no comparison, != included.
    ("http.status = 429", ["throttled"]),
    ("http.status >= 500", ["api-fault", "data-plane", "fault-lambda"]),
    ("http.status < 300", ["ok-api", "slow", "v2-async", "v2-http"]),
    ("http.status <= 404 AND http.status > 201", ["error-lambda"]),
    ("responsetime < 0.25", ["annotated", "error-lambda"]),
    ("duration > 7", ["fault-lambda", "v2-async"]),
    ("duration != 1", everything_but("ok-api", "in-progress")),
    # Strings of the entry segment's http block.
    ('http.method = "POST"', ["api-fault", "error-lambda"]),
    ('http.method != "GET"', ["api-fault", "data-plane", "error-lambda"]),
    ('http.url ENDSWITH "/monthly"', ["slow"]),
    ('http.url = "https://api.example.com/api/pay"', ["api-fault"]),
    ("http.url", everything_but("annotated", "ec2-worker", "fault-lambda")),
    ('http.useragent CONTAINS "Mozilla"', ["ok-api"]),
    ("http.useragent", ["ok-api", "v2-http"]),
    ('http.clientip = "198.51.100.4"', ["v2-http"]),
    ('http.clientip BEGINSWITH "203.0.113."', ["ok-api"]),
    # Lists of the whole trace.
    ('user = "alice"', ["api-fault", "ok-api", "slow"]),
    ('user != "alice"', ["in-progress", "throttled", "v2-async", "v2-http"]),
    ('user = "erin"', ["v2-async"]),
    ("user = alice", ["api-fault", "ok-api", "slow"]),  # a bare word is a string
    ('availabilityzone = "us-east-1a"', ["ok-api"]),
    ('availabilityzone BEGINSWITH "us-east-1"', ["api-fault", "ok-api"]),
    ('availabilityzone != "us-east-1a"', ["api-fault", "ec2-worker"]),
    ('instance.id = "i-0def5678"', ["ec2-worker"]),
    ('instance.id CONTAINS "abc"', ["api-fault", "ok-api"]),
    ('resource.arn ENDSWITH ":function:random-name"', ["error-lambda", "fault-lambda"]),
    ('resource.arn CONTAINS "resize"', ["v2-async"]),
    ("resource.arn", ["error-lambda", "fault-lambda", "v2-async"]),
    # Annotations: strings, numbers, booleans; of any document of the trace.
    ('annotation.gameid != "817DL6VO"', ["annotated"]),
    ('annotation.gameid BEGINSWITH "817"', ["annotated", "ok-api"]),
    ('annotation.gameid ENDSWITH "VO"', ["ok-api"]),
    ('annotation.gameid CONTAINS "7X"', ["annotated"]),
    ('annotation.gameid = "nope"', []),
    ("annotation.age = 29", ["fault-lambda"]),
    ("annotation.age != 29", ["error-lambda", "ok-api"]),
    ("annotation.age < 29", ["error-lambda"]),
    ("annotation.age <= 29", ["error-lambda", "fault-lambda"]),
    ("annotation.age >= 29", ["fault-lambda", "ok-api"]),
    ('annotation.age = "thirty"', ["annotated"]),
    ("annotation.score > -3 AND annotation.score < 7.6", ["annotated", "api-fault"]),
    ("annotation.vip = true", ["ok-api"]),
    ("annotation.vip = false", ["slow"]),
    ("annotation.vip != true", ["slow"]),
    ("annotation.vip", ["ok-api", "slow"]),
    ('annotation.tier = "gold"', ["ok-api"]),
    ("annotation.nothing", []),
    # service() and edge(): one segment (or inferred call) at a time.
    ("service() { root }", ALL),
    ("service() { !root }", ["ec2-worker", "ok-api", "v2-async"]),  # inferred calls are not root
    ("service() { !root AND !inferred }", ["ok-api", "v2-async"]),
    ('service("api.example.com") { root }', ["api-fault", "in-progress", "ok-api", "v2-async"]),
    ('service("backend.example.com") { root }', []),
    ('service("backend.example.com") { name = "backend.example.com" }', ["ok-api"]),
    ('service() { name = "resize-images" }', ["v2-async"]),
    (f'service() {{ type = "{LAMBDA}" }}', ["error-lambda", "fault-lambda", "v2-async"]),
    ('service(id(type: "AWS::DynamoDB::Table")) { fault }', ["ok-api"]),
    ('service(id(type: "AWS::S3::Bucket"))', ["ec2-worker"]),
    ('service("DynamoDB") { inferred AND fault }', ["ok-api"]),
    ("service() { inferred AND !fault }", ["ec2-worker"]),
    ('service(id(account.id: "123456789012")) { root }', ["ok-api"]),
    ('service("backend.example.com") { error AND http.status = 404 }', ["ok-api"]),
    ('service("api.example.com") { http.status = 404 }', []),
    ('service("resize-images") { responsetime > 6 AND user = "erin" }', ["v2-async"]),
    ("service() { partial }", ["in-progress"]),
    ('service("api.example.com") { user = "alice" }', ["api-fault", "ok-api"]),
    ('service("backend.example.com") { user = "alice" }', []),  # the user of another service of the trace
    ("service() { duration > 6 }", ["fault-lambda", "v2-async"]),  # the segment's own time
    ('edge("api.example.com", "backend.example.com") { http.status = 404 }', ["ok-api"]),
    ('service("api.example.com")', ["api-fault", "in-progress", "ok-api", "v2-async"]),
    ('edge("api.example.com", "DynamoDB")', ["ok-api"]),
    ('edge("api.example.com", "DynamoDB") { fault AND responsetime < 0.5 }', ["ok-api"]),
    # Inside edge braces the call is the caller's view: an asynchronous
    # invocation that answered at once, whatever the function did later.
    ('edge("api.example.com", "resize-images") { error OR duration > 6 }', []),
    ('edge("api.example.com", "resize-images") { ok AND duration < 0.2 }', ["v2-async"]),
    (f'edge("api.example.com", id(type: "{LAMBDA}"))', ["v2-async"]),
    ('edge("batch-worker", "S3") { ok }', ["ec2-worker"]),
    ('edge("backend.example.com", "api.example.com")', []),
    # Precedence: ! then AND then OR; parentheses; juxtaposition.
    ('error OR fault AND user = "alice"', ["api-fault", "error-lambda", "throttled"]),
    ('(error OR fault) AND user = "alice"', ["api-fault"]),
    ("!(ok OR partial)", ["api-fault", "data-plane", "error-lambda", "fault-lambda", "throttled"]),
    ("!ok AND !fault OR inferred", ["ec2-worker", "error-lambda", "ok-api", "throttled"]),
    ("!ok AND (!fault OR inferred)", ["error-lambda", "throttled"]),
    ("((fault) OR (throttle)) AND (http.status >= 500)", ["api-fault", "data-plane", "fault-lambda"]),
    ('http.method = "GET" http.status = 200', ["ok-api", "slow", "v2-http"]),
    ('fault user = "alice" OR throttle', ["api-fault", "throttled"]),
    # Keywords and word operators are case-insensitive.
    ("responseTime > 5", ["fault-lambda", "slow"]),
    ("RESPONSETIME > 5 and Duration < 8", ["slow"]),
    ('HTTP.URL contains "/v2/" or ERROR', ["error-lambda", "throttled", "v2-async", "v2-http"]),
    ('http.url beginsWith "http://" AnD http.url endswith "s"', ["v2-async", "v2-http"]),
    ("OK AND !Partial", ["annotated", "ec2-worker", "ok-api", "slow", "v2-async", "v2-http"]),
    ("ANNOTATION.age > 29", ["ok-api"]),
    ("annotation.AGE > 29", []),  # annotation keys are not keywords: case matters
    ('Service("data-plane") { FAULT } OR Edge("api.example.com", "DynamoDB")', ["data-plane", "ok-api"]),
]


# === the server and the data ===

def put(xray, docs):
    for i in range(0, len(docs), 50):
        resp = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs[i:i + 50]])
        assert resp.get("UnprocessedTraceSegments", []) == [], resp


def shift(doc, offset):
    """The document with its (and its subsegments') times moved by `offset`."""
    doc = dict(doc, start_time=round(doc["start_time"] + offset, 6))
    if "end_time" in doc:
        doc["end_time"] = round(doc["end_time"] + offset, 6)
    if "subsegments" in doc:
        doc["subsegments"] = [shift(s, offset) for s in doc["subsegments"]]
    return doc


@pytest.fixture(scope="module")
def baton(tmp_path_factory, store):
    """One server for the module (conftest's fixtures are function-scoped)."""
    base = tmp_path_factory.mktemp("baton-filter")
    server = BatonServer.on(store, base).start()
    try:
        yield server
    finally:
        rc = server.stop()
        assert rc == 0, f"baton exited {rc} after SIGTERM; stderr tail:\n{server.stderr_tail()}"


@pytest.fixture(scope="module")
def ids(baton) -> dict[str, str]:
    """Puts the dataset; returns trace id by name."""
    by_name = {}
    docs = []
    for name, trace_docs in DATASET.items():
        trace_id = by_name[name] = new_trace_id(BASE)
        for doc in trace_docs:
            # Times in the table are offsets from BASE.
            docs.append(dict(shift(doc, BASE), trace_id=trace_id))
    put(baton.xray, docs)
    baton.xray.create_group(GroupName=SLOW_GROUP[0], FilterExpression=SLOW_GROUP[1])
    return by_name


def search(baton, expression, window=WINDOW, **kw) -> list[str]:
    """Trace ids of every page; fails on a duplicate."""
    got = [s["Id"] for s in baton.summaries(*window, FilterExpression=expression, **kw)]
    assert len(got) == len(set(got)), f"{expression}: duplicate ids over pages"
    return got


def names(ids, got) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return sorted(by_id.get(i, f"<unknown {i}>") for i in got)


def filter_error(baton, expression) -> str:
    with pytest.raises(ClientError) as err:
        baton.xray.get_trace_summaries(StartTime=WINDOW[0], EndTime=WINDOW[1], FilterExpression=expression)
    response = err.value.response
    assert response["Error"]["Code"] == "InvalidRequestException", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response["Error"]["Message"]


# === tests ===

def test_the_window_holds_exactly_the_dataset(baton, ids):
    assert names(ids, search(baton, "")) == ALL
    assert {n for _, expected in CASES for n in expected} <= set(ALL)


@pytest.mark.parametrize("expression, expected", CASES, ids=[c[0] for c in CASES])
def test_expression_selects_exactly(baton, ids, expression, expected):
    assert names(ids, search(baton, expression)) == sorted(expected), expression


@pytest.mark.parametrize("time_range", ["Service", "Event", "TraceId"])
def test_time_range_types(baton, ids, time_range):
    for expression, expected in CASES[:8]:
        assert names(ids, search(baton, expression, TimeRangeType=time_range)) == sorted(expected), \
            (time_range, expression)


ERRORS = [
    # (expression, the message after "FilterExpression: ")
    ('responsetime > "slow"', "cannot compare number keyword responsetime with a string at 15"),
    ("http.url CONTAINS", "unexpected end of expression, expected a value after CONTAINS at 17"),
    ("http.url >", "operator > does not apply to string keyword http.url at 9"),
    ("annotation.vip > true", "expected a number after >, found a boolean at 17"),
    ("responsetme > 5", 'unknown keyword "responsetme" (did you mean responsetime?) at 0'),
    # Unbalanced parentheses and braces: the unclosed opening one, or the stray closing one.
    ("(ok AND fault", 'unclosed "(" at 0'),
    ("((ok) OR (fault)", 'unclosed "(" at 0'),
    ("ok AND fault)", 'unmatched ")" at 12'),
    ("(ok))", 'unmatched ")" at 4'),
    ("service() { fault", 'unclosed "{" at 10'),
    # Keywords where they are not valid.
    ("service() { annotation.age > 3 }", "annotation.age is not valid inside service() { ... } at 12"),
    ("root", "root is not valid at the top level at 0"),
    ('name = "x"', "name is not valid at the top level at 0"),
]


@pytest.mark.parametrize("expression, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_a_wrong_expression_is_a_400_with_its_position(baton, ids, expression, message):
    assert filter_error(baton, expression) == "FilterExpression: " + message


def test_a_filter_over_many_traces_pages_without_duplicates(baton, ids):
    trace_ids = [new_trace_id(BATCH_BASE) for _ in range(BATCH_SIZE)]
    docs = []
    for n, trace_id in enumerate(trace_ids):
        doc = segment_at(trace_id, "batch-%d" % (n % 5), BATCH_BASE + 0.5 + n * 0.01)
        if n % 3 == 0:
            doc["annotations"] = {"batch": "b"}
        else:
            doc["annotations"] = {"batch": "c"}
        docs.append(doc)
    put(baton.xray, docs)
    expected = sorted(trace_ids[::3])

    pages = list(baton.xray.get_paginator("get_trace_summaries").paginate(
        StartTime=BATCH_WINDOW[0], EndTime=BATCH_WINDOW[1], FilterExpression='annotation.batch = "b"'))
    got = [s["Id"] for p in pages for s in p["TraceSummaries"]]
    sizes = [len(p["TraceSummaries"]) for p in pages]
    assert len(got) == len(set(got)), f"duplicates over pages {sizes}"
    assert sorted(got) == expected, f"{len(got)} ids for {len(expected)} expected, pages {sizes}"
    assert len([s for s in sizes if s]) >= 2 and max(sizes) <= 100, sizes

    # A negation and the other value split the batch; the dataset's window still sees only the dataset.
    assert sorted(search(baton, '!(annotation.batch = "b")', BATCH_WINDOW)) == sorted(set(trace_ids) - set(expected))
    assert sorted(search(baton, 'annotation.batch = "c"', BATCH_WINDOW)) == sorted(set(trace_ids) - set(expected))
    assert search(baton, "annotation.batch") == []
    assert names(ids, search(baton, "")) == ALL


def segment_at(trace_id, name, start):
    return {"name": name, "id": new_id(), "trace_id": trace_id, "start_time": round(start, 6),
            "end_time": round(start + 0.05, 6)}
