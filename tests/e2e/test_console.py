"""The console in real headless Chromium (Debian's, driven by playwright-core
from tests/browser) against a real `baton serve` loaded by the real clients:
a Powertools function behind the Lambda platform's segments (a cold start,
then a warm invocation), two X-Ray SDK services calling each other, and a
segment with markup in its annotations and metadata sent with boto3.

Screenshots of each view go to screenshots/console/ (named in the README)."""
import json
import os
import subprocess
import time

import pytest

from helpers import REPO, client_env, new_id, new_trace_id, run_client

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

SCREENSHOTS = REPO / "screenshots" / "console"
DRIVER = REPO / "tests" / "browser" / "drive.mjs"
MARKUP = "<script>alert(1)</script>"


def browse(baton, steps):
    """Runs the browser steps (see tests/browser/drive.mjs); returns what they read."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    plan = {"base": baton.endpoint, "screenshots": str(SCREENSHOTS), "steps": steps}
    proc = subprocess.run(["node", str(DRIVER), json.dumps(plan)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BATON_CHROMIUM": os.environ.get("BATON_CHROMIUM", "/usr/bin/chromium")})
    assert proc.returncode == 0, f"drive.mjs exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    results = json.loads(proc.stdout)
    assert results["errors"] == [], results["errors"]
    return results


def lambda_platform(trace_id, function_id, init_start, end):
    """The segments the Lambda platform sends for an invocation with active tracing,
    with an `Initialization` from `init_start` (a cold start) or none."""
    service_id = new_id()
    start = (init_start if init_start is not None else end - 1.0) - 0.01
    invoke = init_start + 0.25 if init_start is not None else start + 0.01
    phases = [("Invocation", invoke, end - 0.06), ("Overhead", end - 0.06, end - 0.02)]
    if init_start is not None:
        phases.insert(0, ("Initialization", init_start, invoke))
    return [
        {"name": "order-handler", "id": service_id, "trace_id": trace_id, "origin": "AWS::Lambda",
         "start_time": start, "end_time": end, "http": {"response": {"status": 200}}},
        {"name": "order-handler", "id": function_id, "trace_id": trace_id, "parent_id": service_id,
         "origin": "AWS::Lambda::Function", "start_time": start + 0.005, "end_time": end - 0.01,
         "subsegments": [{"name": name, "id": new_id(), "start_time": at, "end_time": to}
                         for name, at, to in phases]},
    ]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, downstream_module, store):
    """A server holding the dataset, and the ids of its traces by role."""
    from helpers import BatonServer

    base = tmp_path_factory.mktemp("console")
    baton = BatonServer.on(store, base).start()
    env = client_env({
        "LAMBDA_TASK_ROOT": str(base), "AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "POWERTOOLS_SERVICE_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_NAME": "order-handler", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "DOWNSTREAM_URL": downstream_module.url,
    }, home=base)
    cold, warm = new_trace_id(), new_trace_id()
    functions = {cold: new_id(), warm: new_id()}
    invocations = [{"trace_header": f"Root={trace};Parent={functions[trace]};Sampled=1",
                    "event": {"order_id": f"o-{n}"}} for n, trace in enumerate([cold, warm], 1)]
    before = time.time()
    run_client("powertools_lambda_app.py", [json.dumps(invocations)], env)
    now = time.time()
    # The platform's segments enclose the function's own work, as on Lambda.
    platform = (lambda_platform(cold, functions[cold], before - 0.3, now + 0.2)
                + lambda_platform(warm, functions[warm], None, now + 0.2))
    markup_trace = new_trace_id()
    platform.append({"name": "markup", "id": new_id(), "trace_id": markup_trace, "start_time": now - 0.1,
                     "end_time": now, "annotations": {"note": MARKUP},
                     "metadata": {"default": {"html": MARKUP}}})
    answer = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc) for doc in platform])
    assert answer["UnprocessedTraceSegments"] == []
    sdk_env = client_env({"AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address, "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"},
                         home=base)
    chain = json.loads(run_client("xray_sdk_app.py", ["chain"], sdk_env).stdout)
    baton.wait_for_traces([cold, warm, markup_trace, chain["trace_id"]], timeout=5)
    yield baton, {"cold": cold, "warm": warm, "markup": markup_trace, "chain": chain["trace_id"]}
    assert baton.stop() == 0


@pytest.fixture(scope="module")
def downstream_module():
    from helpers import Downstream

    server = Downstream()
    yield server
    server.close()



def test_the_map_shows_every_service_and_call(loaded):
    baton, _ = loaded
    got = browse(baton, [{"goto": "/?range=1h"}, {"wait": "svg.graph"},
                         {"contents": "a.node text.name", "as": "nodes"},
                         {"contents": "a.edge title", "as": "edges"},
                         {"screenshot": "map"},
                         {"click": "a.node.inferred"}, {"wait": ".map-panel:not([hidden]) a.traces-link"},
                         {"attribute": ".map-panel:not([hidden]) a.traces-link", "name": "href", "as": "link"},
                         {"screenshot": "map-selected"}])
    assert sorted(got["nodes"]) == sorted(["Client", "order-handler", "order-handler", "127.0.0.1", "e2e-front",
                                           "e2e-backend", "DynamoDB", "markup"]), got["nodes"]
    calls = sorted(title.split(":")[0] for title in got["edges"])
    assert calls == sorted(["Client → order-handler", "order-handler → order-handler", "order-handler → 127.0.0.1",
                            "Client → e2e-front", "e2e-front → e2e-backend", "e2e-backend → DynamoDB",
                            "Client → markup"]), calls
    assert got["link"] and got["link"][0].startswith("/traces?filter=service"), got["link"]


def test_a_filter_lists_exactly_the_cold_starts(loaded):
    baton, ids = loaded
    got = browse(baton, [{"goto": "/traces?range=1h"}, {"fill": "#filter", "value": "annotation.ColdStart = true"},
                         {"press": "Enter"}, {"wait": "table.trace-list"},
                         {"texts": "table.trace-list td.id a", "as": "ids"}, {"screenshot": "traces"}])
    assert got["ids"] == [ids["cold"]], got
    everything = browse(baton, [{"goto": "/traces?range=1h"}, {"texts": "table.trace-list td.id a", "as": "ids"}])
    assert sorted(everything["ids"]) == sorted(ids.values())


def test_an_invalid_filter_shows_where_it_is_wrong(loaded):
    baton, _ = loaded
    got = browse(baton, [{"goto": "/traces?range=1h"}, {"fill": "#filter", "value": 'responsetime > "x"'},
                         {"press": "Enter"}, {"wait": ".filter-error"},
                         {"texts": ".filter-error", "as": "error"}, {"screenshot": "filter-error"}])
    [error] = got["error"]
    assert "cannot compare number keyword responsetime with a string" in error and "15" in error, error
    assert '^' in error


def test_the_trace_page_nests_rows_and_shows_annotations_apart_from_metadata(loaded):
    baton, ids = loaded
    handler_row = '#timeline .row:has(.name:text-is("## handler"))'
    got = browse(baton, [{"goto": f"/traces/{ids['cold']}"}, {"wait": "#timeline"},
                         {"texts": "#timeline .row .name", "as": "names"},
                         {"attribute": "#timeline .row", "name": "aria-level", "as": "levels"},
                         {"click": handler_row}, {"wait": "section.details:not([hidden])"},
                         {"texts": "section.details:not([hidden]) table.annotations", "as": "annotations"},
                         {"texts": "section.details:not([hidden]) pre", "as": "blocks"},
                         {"screenshot": "trace"}])
    rows = list(zip(got["names"], map(int, got["levels"])))
    names = [name for name, _ in rows]
    for expected in ["order-handler", "Initialization", "Invocation", "Overhead", "## handler",
                     "## __main__.fetch_order", "127.0.0.1"]:
        assert expected in names, rows
    level = dict(rows)
    assert level["## handler"] > level["Initialization"] - 1 and level["## __main__.fetch_order"] > level["## handler"]
    assert level["127.0.0.1"] > level["## __main__.fetch_order"]
    [annotations] = got["annotations"]
    assert "ColdStart" in annotations and "Service" in annotations and "handler response" not in annotations
    assert any("handler response" in block for block in got["blocks"]), got["blocks"]


def test_markup_in_values_is_shown_as_text(loaded):
    baton, ids = loaded
    got = browse(baton, [{"goto": f"/traces/{ids['markup']}"}, {"wait": "#timeline"},
                         {"click": '#timeline .row:has(.name:text-is("markup"))'},
                         {"wait": "section.details:not([hidden])"},
                         {"texts": "section.details:not([hidden]) table.annotations td", "as": "cells"},
                         {"screenshot": "markup"}])
    assert MARKUP in got["cells"], got["cells"]


def test_a_custom_window_keeps_the_filter(loaded):
    baton, ids = loaded
    utc = lambda seconds: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))  # noqa: E731
    got = browse(baton, [{"goto": "/traces?range=1h&filter=annotation.ColdStart%20%3D%20true"},
                         {"click": "details.custom summary"},
                         {"set": "form.custom-window input[name=start]", "value": utc(time.time() - 600)},
                         {"set": "form.custom-window input[name=end]", "value": utc(time.time() + 600)},
                         {"click": "form.custom-window button"}, {"wait": "table.trace-list"},
                         {"texts": "table.trace-list td.id a", "as": "ids"}])
    assert got["ids"] == [ids["cold"]], got
    assert "filter=annotation.ColdStart" in got["url"] and "start=" in got["url"] and "range=" not in got["url"]


def test_the_trace_id_box_goes_straight_to_the_trace(loaded):
    baton, ids = loaded
    got = browse(baton, [{"goto": "/"}, {"fill": "#trace-id", "value": f"  {ids['chain']} "}, {"press": "Enter"},
                         {"wait": "#timeline"}, {"texts": "#timeline .row .name", "as": "names"}])
    assert got["url"].endswith(f"/traces/{ids['chain']}"), got["url"]
    assert {"e2e-front", "e2e-backend", "DynamoDB"} <= set(got["names"]), got["names"]


def test_the_trace_id_box_redirects_only_to_trace_paths(loaded):
    import requests

    baton, ids = loaded
    for typed, location in [(ids["warm"], f"/traces/{ids['warm']}"), ("//evil.example/x", "/traces/evilexamplex"),
                            ("<>", "/traces")]:
        answer = requests.get(baton.endpoint + "/traces", params={"id": typed}, allow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == location, (typed, answer.headers)
