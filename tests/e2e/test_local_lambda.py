"""The local Lambda runtime: the walkthrough's functions (examples/user-registration:
Rust without and with baton-tracer, Python with the real Powertools Tracer under
the real awslambdaric) run by `baton invoke` and by `baton lambda serve` (driven
by boto3's `lambda` client), with Active tracing into a real `baton serve`."""
from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time

import boto3
import pytest
import requests
from botocore.config import Config

from helpers import (BATON_BIN, READY_TIMEOUT, REPO, client_env, free_port, new_id, new_trace_id, parsed_documents,
                     walk)

EXAMPLE = REPO / "examples" / "user-registration"
TARGET = BATON_BIN.parent
VALID_USER = EXAMPLE / "events" / "valid_user.json"
INVALID_USER = EXAMPLE / "events" / "invalid_user.json"
# What each instrumented function names its subsegments.
HANDLER = {"InstrumentedFunction": "## handler", "PowertoolsFunction": "## lambda_handler"}
SUBMIT = {"InstrumentedFunction": "## submit_user", "PowertoolsFunction": "## app.submit_user"}
PHASES = ["Initialization", "Invocation", "Overhead"]

EXTRA_FUNCTIONS = """
[functions.Sleeper]
handler = "sleeper.handler"
code = "{code}"
python = "{python}"
timeout = 1

[functions.Broken]
handler = "missing_module.handler"
code = "{code}"
python = "{python}"

[functions.PassThroughFunction]
executable = "{target}/instrumented-function"
tracing = "PassThrough"
environment = {{ USERS_API_URL = "{users}", POWERTOOLS_SERVICE_NAME = "user-registration" }}
"""


@pytest.fixture
def users_api(baton):
    """The example's users API, traced into the same `baton serve`."""
    port = free_port()
    env = client_env({"USERS_API_ADDR": f"127.0.0.1:{port}", "AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address})
    proc = subprocess.Popen([str(TARGET / "users-api")], env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout.readline().decode().startswith("listening http"), "the users API did not start"
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def functions_file(tmp_path, users_api):
    """The example's baton.toml, pointed at the debug build, this interpreter and the test's users API."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "sleeper.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(30)\n")
    text = (EXAMPLE / "baton.toml").read_text()
    text = text.replace("../../target/release", str(TARGET)).replace("http://127.0.0.1:4400", users_api)
    text = text.replace('python = ".venv/bin/python"', f'python = "{sys.executable}"')
    text = text.replace('code = "python"', f'code = "{EXAMPLE / "python"}"')
    text += EXTRA_FUNCTIONS.format(code=code, python=sys.executable, target=TARGET, users=users_api)
    path = tmp_path / "baton.toml"
    path.write_text(text)
    return path


def invoke(functions_file, baton, function, event=VALID_USER, *args, repeat=1):
    """Runs `baton invoke`; returns its stdout's invocations: [(log lines, payload)]."""
    cmd = [str(BATON_BIN), "invoke", function, "--event", str(event), "--repeat", str(repeat),
           "--config", str(functions_file), "--daemon-address", baton.daemon_address, "--sampling", "always", *args]
    done = subprocess.run(cmd, capture_output=True, timeout=120, env=client_env(), cwd=functions_file.parent)
    assert done.returncode == 0, done.stderr.decode()
    return split_invocations(done.stdout.decode().splitlines())


def split_invocations(lines):
    """Each invocation's lines up to its REPORT (and XRAY), and the payload line after."""
    out, current = [], []
    for line in lines:
        if current and (current[-1].startswith("XRAY ") or (current[-1].startswith("REPORT ")
                                                             and not line.startswith("XRAY "))):
            out.append((current, json.loads(line)))
            current = []
        else:
            current.append(line)
    return out


def report(log):
    """The REPORT line's fields, and the XRAY line's."""
    fields = {}
    for line in log:
        if line.startswith(("REPORT ", "XRAY ")):
            for part in line.split(" ", 1)[1].split("\t"):
                key, value = part.split(": ", 1)
                fields[key] = value.split(" ")[0]
    return fields


def documents_by_name(baton, trace_id, names, timeout=10.0):
    """Polls until the trace holds an entity of every name; returns {name: [(entity, the id of its parent)]}
    (BatchGetTraces merges a subsegment sent on its own into its parent)."""
    deadline = time.monotonic() + timeout
    while True:
        traces, _ = baton.batch_get_traces([trace_id])
        found = {}
        for doc in parsed_documents(traces[trace_id]) if trace_id in traces else []:
            for entity, parent, _ in walk(doc):
                parent_id = entity.get("parent_id") or (parent or {}).get("id")
                found.setdefault(entity["name"], []).append((entity, parent_id))
        if all(name in found for name in names):
            return found
        assert time.monotonic() < deadline, f"{trace_id}: missing {set(names) - set(found)}, have {sorted(found)}"
        time.sleep(0.1)


def check_platform_segments(found, function, function_segment_id, cold, overhead=True):
    """The AWS::Lambda and AWS::Lambda::Function segments, and the function segment's phases."""
    [(service, _)] = [pair for pair in found[function] if pair[0].get("origin") == "AWS::Lambda"]
    [(segment, _)] = [pair for pair in found[function] if pair[0].get("origin") == "AWS::Lambda::Function"]
    assert segment["id"] == function_segment_id
    assert segment["parent_id"] == service["id"]
    assert service["http"]["response"]["status"] == 200
    assert service["resource_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{function}"
    phases = [sub["name"] for sub in segment["subsegments"] if sub["name"] in PHASES]
    assert phases == [phase for phase in PHASES if (cold or phase != "Initialization") and (overhead or phase != "Overhead")]
    return service, segment


def check_instrumented(found, function, function_segment_id, cold):
    """The function's own subsegments under the function segment: handler, method, remote call, users-api."""
    [(handler, handler_parent)] = found[HANDLER[function]]
    assert handler_parent == function_segment_id, "## handler hangs under the function segment"
    assert handler["annotations"]["ColdStart"] is cold
    assert handler["annotations"]["Service"] == "user-registration"
    [(submit, _)] = found[SUBMIT[function]]
    assert re.fullmatch(r"u-[0-9a-f]{12}", submit["annotations"]["user_id"])
    assert submit["metadata"]["user-registration"]["request"]["email"] == "ada@example.com"
    assert "request" not in submit.get("annotations", {}), "metadata is not indexed"
    [remote] = [sub for sub in submit["subsegments"] if sub.get("namespace") == "remote"]
    assert remote["http"]["response"]["status"] == 201
    [(_, api_parent)] = found["users-api"]
    assert api_parent == remote["id"], "the users API continued the trace from the propagated header"


@pytest.mark.parametrize("function", ["InstrumentedFunction", "PowertoolsFunction"])
def test_baton_invoke_an_instrumented_function_twice(baton, functions_file, function):
    invocations = invoke(functions_file, baton, function, repeat=2)
    assert len(invocations) == 2
    for n, (log, payload) in enumerate(invocations):
        cold = n == 0
        start = next(i for i, line in enumerate(log) if line.startswith("START RequestId: "))
        end = next(i for i, line in enumerate(log) if line.startswith("END RequestId: "))
        assert start < log.index("registering ada@example.com") < end, log
        fields = report(log)
        assert ("Init Duration" in fields) is cold, log
        assert fields["Memory Size"] == ("128" if function == "InstrumentedFunction" else "256")
        assert int(fields["Max Memory Used"]) > 0
        assert fields["Sampled"] == "true"
        assert payload["status"] == 201
        names = [function, HANDLER[function], SUBMIT[function], "users-api"]
        found = documents_by_name(baton, fields["TraceId"], names)
        check_platform_segments(found, function, fields["SegmentId"], cold)
        check_instrumented(found, function, fields["SegmentId"], cold)


def test_baton_invoke_a_vanilla_function_gives_the_platform_segments_only(baton, functions_file):
    invocations = invoke(functions_file, baton, "VanillaFunction", repeat=2)
    for n, (log, payload) in enumerate(invocations):
        fields = report(log)
        assert payload["status"] == 201 and ("Init Duration" in fields) is (n == 0)
        found = documents_by_name(baton, fields["TraceId"], ["VanillaFunction", "Invocation"])
        check_platform_segments(found, "VanillaFunction", fields["SegmentId"], n == 0)
        time.sleep(0.3)
        traces, _ = baton.batch_get_traces([fields["TraceId"]])
        assert len(traces[fields["TraceId"]]["Segments"]) == 2, "nothing but the platform's two segments"


@pytest.mark.parametrize("function,error_type,message", [
    ("PowertoolsFunction", "InvalidUser", "'charles-at-example.com' is not an e-mail address"),
    ("InstrumentedFunction", None, '"charles-at-example.com" is not an e-mail address'),
])
def test_a_failing_function_gives_a_fault_with_its_cause(baton, functions_file, function, error_type, message):
    [(log, payload)] = invoke(functions_file, baton, function, INVALID_USER)
    assert payload["errorMessage"] == message
    if error_type:
        assert payload["errorType"] == error_type
        assert any(line.startswith(f"[ERROR] {error_type}: {message}") for line in log), log
    fields = report(log)
    found = documents_by_name(baton, fields["TraceId"], [function, HANDLER[function]])
    _, segment = check_platform_segments(found, function, fields["SegmentId"], cold=True)
    assert segment["fault"] is True
    assert any(exception["message"] == message for exception in segment["cause"]["exceptions"]), segment["cause"]
    if error_type:
        # From the runtime's Lambda-Runtime-Function-XRay-Error-Cause header: the stack is only there.
        [exception] = segment["cause"]["exceptions"]
        assert any(frame["path"].endswith("app.py") for frame in exception["stack"]), exception
    assert segment["subsegments"][1]["fault"] is True, "the Invocation phase failed"
    [(handler, _)] = found[HANDLER[function]]
    assert handler["fault"] is True


def test_a_timeout_is_reported_traced_and_the_next_start_is_cold(baton, functions_file):
    invocations = invoke(functions_file, baton, "Sleeper", repeat=2)
    for log, payload in invocations:
        assert payload["errorType"] == "Sandbox.Timedout"
        assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
        assert any(line.endswith("Task timed out after 1.00 seconds") for line in log), log
        fields = report(log)
        assert "Init Duration" in fields, "the killed process is not reused"
        assert 1000 <= float(fields["Duration"]) < 3000
        found = documents_by_name(baton, fields["TraceId"], ["Sleeper"])
        _, segment = check_platform_segments(found, "Sleeper", fields["SegmentId"], cold=True, overhead=False)
        assert segment["fault"] is True
        assert segment["cause"]["exceptions"][0]["message"].endswith("Task timed out after 1.00 seconds")


def test_an_init_error_is_the_invocations_error(baton, functions_file):
    [(log, payload)] = invoke(functions_file, baton, "Broken")
    assert payload["errorType"] == "Runtime.ImportModuleError", payload
    assert "missing_module" in payload["errorMessage"]


def test_sampled_0_from_the_caller_gives_no_trace(baton, functions_file):
    unsampled = new_trace_id()
    [(log, payload)] = invoke(functions_file, baton, "InstrumentedFunction", VALID_USER, "--trace-header",
                              f"Root={unsampled};Parent={new_id()};Sampled=0")
    fields = report(log)
    assert payload["status"] == 201
    assert (fields["TraceId"], fields["Sampled"]) == (unsampled, "false")
    # A sampled invocation after it arrives; by then the unsampled one would have too.
    [(log, _)] = invoke(functions_file, baton, "InstrumentedFunction")
    documents_by_name(baton, report(log)["TraceId"], ["InstrumentedFunction", "## handler", "users-api"])
    traces, _ = baton.batch_get_traces([unsampled])
    assert traces == {}


def test_passthrough_records_only_the_functions_own_subsegments_under_the_caller(baton, functions_file):
    caller = new_id()
    trace_id = new_trace_id()
    [(log, payload)] = invoke(functions_file, baton, "PassThroughFunction", VALID_USER, "--trace-header",
                              f"Root={trace_id};Parent={caller};Sampled=1")
    assert payload["status"] == 201
    assert not any(line.startswith("XRAY ") for line in log), "no XRAY line without Active tracing"
    found = documents_by_name(baton, trace_id, ["## handler", "## submit_user", "users-api"])
    assert found["## handler"][0][1] == caller
    assert "PassThroughFunction" not in found, "no platform segments"


def lambda_client(endpoint):
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def lambda_serve(baton, functions_file):
    port = free_port()
    cmd = [str(BATON_BIN), "lambda", "serve", "--listen", f"127.0.0.1:{port}", "--config", str(functions_file),
           "--daemon-address", baton.daemon_address, "--sampling", "always"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env=client_env())
    deadline = time.monotonic() + READY_TIMEOUT
    line = proc.stdout.readline().decode()
    assert line.startswith("listening http") and time.monotonic() < deadline, line
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("function", ["InstrumentedFunction", "PowertoolsFunction"])
def test_boto3_invokes_through_the_invoke_api(baton, lambda_serve, function):
    client = lambda_client(lambda_serve)
    for n in range(2):
        response = client.invoke(FunctionName=function, Payload=VALID_USER.read_bytes(), LogType="Tail")
        assert response["StatusCode"] == 200 and "FunctionError" not in response
        assert response["ExecutedVersion"] == "$LATEST"
        assert json.loads(response["Payload"].read())["status"] == 201
        log = base64.b64decode(response["LogResult"]).decode().splitlines()
        fields = report(log)
        assert ("Init Duration" in fields) is (n == 0), log
        found = documents_by_name(baton, fields["TraceId"], [function, HANDLER[function], SUBMIT[function], "users-api"])
        check_platform_segments(found, function, fields["SegmentId"], n == 0)
        check_instrumented(found, function, fields["SegmentId"], n == 0)


def test_the_invoke_api_answers_as_lambda_does(baton, lambda_serve):
    client = lambda_client(lambda_serve)
    failed = client.invoke(FunctionName="PowertoolsFunction", Payload=INVALID_USER.read_bytes())
    assert (failed["StatusCode"], failed["FunctionError"]) == (200, "Unhandled")
    assert json.loads(failed["Payload"].read())["errorType"] == "InvalidUser"
    arn = "arn:aws:lambda:us-east-1:000000000000:function:VanillaFunction"
    assert client.invoke(FunctionName=arn, InvocationType="DryRun")["StatusCode"] == 204
    assert client.invoke(FunctionName="VanillaFunction", InvocationType="Event",
                         Payload=VALID_USER.read_bytes())["StatusCode"] == 202
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="NoSuchFunction")
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="VanillaFunction", Payload=b"{not json")

    # A caller's Sampled=0, sent as the X-Amzn-Trace-Id header, gives no trace.
    unsampled = new_trace_id()

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = f"Root={unsampled};Parent={new_id()};Sampled=0"

    client.meta.events.register("before-sign.lambda.Invoke", add_header)
    response = client.invoke(FunctionName="InstrumentedFunction", Payload=VALID_USER.read_bytes(), LogType="Tail")
    fields = report(base64.b64decode(response["LogResult"]).decode().splitlines())
    assert (fields["TraceId"], fields["Sampled"]) == (unsampled, "false")
    client.meta.events.unregister("before-sign.lambda.Invoke", add_header)
    response = client.invoke(FunctionName="InstrumentedFunction", Payload=VALID_USER.read_bytes(), LogType="Tail")
    sampled = report(base64.b64decode(response["LogResult"]).decode().splitlines())["TraceId"]
    documents_by_name(baton, sampled, ["InstrumentedFunction", "## handler", "users-api"])
    assert baton.batch_get_traces([unsampled])[0] == {}


def test_the_console_shows_the_logs_of_a_traces_invocation(baton, functions_file):
    [(log, _)] = invoke(functions_file, baton, "PowertoolsFunction")
    fields = report(log)
    documents_by_name(baton, fields["TraceId"], ["PowertoolsFunction", "## lambda_handler"])
    request_id = log[next(i for i, line in enumerate(log) if line.startswith("START "))].split()[2]
    deadline = time.monotonic() + 10
    while True:
        page = requests.get(f"{baton.endpoint}/traces/{fields['TraceId']}", timeout=10).text
        if "class=\"logs\"" in page or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    logs = page[page.index("<section class=\"logs\""):]
    assert f"<code>{request_id}</code>" in logs
    assert "registering ada@example.com" in logs and "REPORT RequestId: " + request_id in logs


def test_function_logs_are_checked(baton):
    bad = baton.post("/FunctionLogs", {"Logs": [{"TraceId": "nope", "RequestId": "r", "FunctionName": "f",
                                                  "Time": time.time(), "Lines": []}]})
    assert bad.status_code == 400 and "TraceId" in bad.json()["message"]
