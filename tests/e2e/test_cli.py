"""`baton traces` and `baton trace ID` against a running server."""
import json
import subprocess
import time

import pytest

from helpers import BATON_BIN, new_id, new_trace_id, segment_doc

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def baton_cli(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BATON_BIN), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"baton {args} exited {proc.returncode}\nstdout:\n{proc.stdout}\n" \
                                     f"stderr:\n{proc.stderr}"
    return proc


def test_traces_and_trace_tree(baton):
    now = time.time()
    tid = new_trace_id()
    root = segment_doc(tid, "cli-frontend", start=now - 3, duration=0.5,
                       http={"request": {"method": "GET", "url": "http://cli/x"}, "response": {"status": 503}},
                       annotations={"tier": "gold"}, fault=True)
    level1 = {"id": new_id(), "name": "cli-level-one", "start_time": now - 2.9, "end_time": now - 2.7}
    level2 = {"id": new_id(), "name": "cli-level-two", "start_time": now - 2.85, "end_time": now - 2.8}
    level1["subsegments"] = [level2]
    root["subsegments"] = [level1]
    # A streamed grandchild of the second level, sent on its own.
    level3 = {"id": new_id(), "name": "cli-level-three", "trace_id": tid, "parent_id": level2["id"],
              "type": "subsegment", "start_time": now - 2.84, "end_time": now - 2.83}
    other = segment_doc(new_trace_id(), "cli-other", start=now - 2)
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in (root, level3, other)])
    assert resp.get("UnprocessedTraceSegments", []) == []

    out = baton_cli("traces", "--endpoint", baton.endpoint, "--since", "1h").stdout
    lines = [line for line in out.splitlines() if line.strip()]
    mine = [line for line in lines if tid in line]
    assert len(mine) == 1, out
    assert "503" in mine[0] and "cli-frontend" in mine[0], mine[0]
    assert "tier" in mine[0] and "gold" in mine[0], mine[0]
    assert len([line for line in lines if other["trace_id"] in line]) == 1, out

    limited = baton_cli("traces", "--endpoint", baton.endpoint, "--since", "1h", "--limit", "1").stdout
    assert sum(1 for t in (tid, other["trace_id"]) if t in limited) == 1, limited

    out = baton_cli("trace", tid, "--endpoint", baton.endpoint).stdout
    columns = {}
    for name in ("cli-frontend", "cli-level-one", "cli-level-two", "cli-level-three"):
        found = [line.index(name) for line in out.splitlines() if name in line]
        assert len(found) == 1, f"{name!r} must appear on exactly one line:\n{out}"
        columns[name] = found[0]
    assert columns["cli-frontend"] < columns["cli-level-one"] < columns["cli-level-two"] \
        < columns["cli-level-three"], f"names must be indented deeper than their parents: {columns}\n{out}"
    order = [out.index(n) for n in ("cli-frontend", "cli-level-one", "cli-level-two", "cli-level-three")]
    assert order == sorted(order), out

    unknown = baton_cli("trace", new_trace_id(), "--endpoint", baton.endpoint, check=False)
    assert unknown.returncode != 0, unknown
    assert unknown.stderr.strip(), "an unknown trace id needs a message on stderr"


def test_traces_filter(baton):
    now = time.time()
    slow = [segment_doc(new_trace_id(), "cli-filter", start=now - 20 + i, duration=3) for i in range(2)]
    fast = [segment_doc(new_trace_id(), "cli-filter", start=now - 10 + i, duration=0.1) for i in range(2)]
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in slow + fast])
    assert resp.get("UnprocessedTraceSegments", []) == []

    expression = "duration > 2 AND responsetme > 1"
    wrong = baton_cli("traces", "--endpoint", baton.endpoint, "--filter", expression, check=False)
    assert wrong.returncode == 2, wrong
    assert wrong.stdout == "", wrong
    message, echoed, caret = wrong.stderr.splitlines()
    assert message == 'error: unknown keyword "responsetme" (did you mean responsetime?) at 17', wrong.stderr
    assert echoed == expression
    assert caret == " " * expression.index("responsetme") + "^", wrong.stderr

    out = baton_cli("traces", "--endpoint", baton.endpoint, "--since", "1h", "--filter", "duration > 2").stdout
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert listed == {d["trace_id"] for d in slow}, out

    # Checked by the server only: a group no one created.
    unknown = baton_cli("traces", "--endpoint", baton.endpoint, "--filter", 'group.name = "missing"', check=False)
    assert unknown.returncode == 1, unknown
    assert "missing" in unknown.stderr, unknown.stderr
