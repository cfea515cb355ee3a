"""The AWS CLI (v1, with its own botocore) against `baton serve`."""
import json
import subprocess
import time

import pytest

from helpers import VENV_BIN, client_env, new_id, new_trace_id, segment_doc

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def aws(baton, tmp_path, *args) -> dict:
    env = client_env({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                      "AWS_DEFAULT_REGION": "us-east-1",
                      "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
                      "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials")}, home=tmp_path)
    cmd = [str(VENV_BIN / "aws"), "xray", *args, "--endpoint-url", baton.endpoint, "--output", "json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_aws_cli_get_trace_summaries_and_batch_get_traces(baton, tmp_path):
    now = time.time()
    docs = [segment_doc(new_trace_id(), "cli-svc", start=now - 5 + i, seg_id=new_id(),
                        http={"request": {"method": "GET", "url": "http://cli/%d" % i}, "response": {"status": 200}})
            for i in range(3)]
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert resp.get("UnprocessedTraceSegments", []) == []
    ids = sorted(d["trace_id"] for d in docs)

    out = aws(baton, tmp_path, "get-trace-summaries", "--start-time", str(int(now - 600)),
              "--end-time", str(int(now + 60)))
    assert sorted(s["Id"] for s in out["TraceSummaries"]) == ids, out
    for s in out["TraceSummaries"]:
        assert s["Http"]["HttpStatus"] == 200 and s["Http"]["HttpURL"].startswith("http://cli/")

    out = aws(baton, tmp_path, "batch-get-traces", "--trace-ids", *ids)
    assert sorted(t["Id"] for t in out["Traces"]) == ids, out
    by_trace = {t["Id"]: t for t in out["Traces"]}
    for d in docs:
        [seg] = by_trace[d["trace_id"]]["Segments"]
        assert seg["Id"] == d["id"] and json.loads(seg["Document"]) == d
