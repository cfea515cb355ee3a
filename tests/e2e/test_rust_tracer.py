"""baton-tracer in a real Lambda function (crates/baton-tracer/examples/orders.rs,
run by the real `lambda_runtime` crate against a Runtime API), sending to a
real `baton serve`; and the same scenario under Powertools for Python, side by
side, differing only where the Rust tracer's behaviour is documented
(README.md, "Tracing a Rust Lambda function")."""
import json
import os
import subprocess
import time
from pathlib import Path

from helpers import (LAMBDA_PARENTS as PARENTS, REPO, client_env, entities_by_id, lambda_invocations, new_trace_id,
                     parse_trace_header, parsed_documents, powertools_env, run_client)
from lambda_api import RuntimeApi

ORDERS_BIN = Path(os.environ.get("BATON_TRACER_EXAMPLE")
                  or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "examples" / "orders")


def run_rust_function(baton, downstream, tmp_path, calls):
    """Starts the function process once and runs every invocation in it, as Lambda does."""
    assert ORDERS_BIN.exists(), f"{ORDERS_BIN} is missing: cargo test --workspace --all-features builds it"
    api = RuntimeApi()
    env = client_env({
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "order-handler",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address,
        "POWERTOOLS_SERVICE_NAME": "orders",
        "AWS_REGION": "us-east-1",
        "DOWNSTREAM_URL": downstream.url,
    }, home=tmp_path)
    stderr = open(tmp_path / "orders.stderr.log", "wb")
    proc = subprocess.Popen([str(ORDERS_BIN)], env=env, stdout=stderr, stderr=stderr, stdin=subprocess.DEVNULL)
    try:
        outcomes = [api.invoke(call["event"], call["trace_header"]) for call in calls]
    finally:
        proc.kill()
        proc.wait(timeout=10)
        stderr.close()
        api.close()
    assert api.init_errors == [], api.init_errors
    return outcomes


def test_rust_tracer_in_lambda(baton, downstream, tmp_path):
    t0 = time.time()
    trace_ids = [new_trace_id() for _ in range(4)]
    outcomes = run_rust_function(baton, downstream, tmp_path, lambda_invocations(trace_ids))
    assert outcomes[0] == ("response", {"order_id": "o-1", "downstream_status": 200})
    assert outcomes[1] == ("response", {"order_id": "o-2", "downstream_status": 200})
    assert outcomes[2][0] == "error" and outcomes[2][1]["errorMessage"] == "order service exploded for o-3"
    assert outcomes[3] == ("response", {"order_id": "o-4", "downstream_status": 200})

    # The downstream got the propagated header: Parent = the remote subsegment, Lineage kept, Sampled=0 passed on.
    assert [r["path"] for r in downstream.requests] == ["/orders/o-1", "/orders/o-2", "/orders/o-3", "/orders/o-4"]
    headers = [parse_trace_header(r["trace_header"]) for r in downstream.requests]
    for i in range(3):
        assert headers[i]["Root"] == trace_ids[i] and headers[i]["Sampled"] == "1", headers[i]
    assert headers[1]["Lineage"] == "a87bd80c:0", headers[1]
    assert headers[3] == {"Root": trace_ids[3], "Parent": "0000000000000000", "Sampled": "0"}

    request_ids = {headers[i]["Parent"] for i in range(3)}
    traces = baton.wait_for_traces(trace_ids[:3], timeout=5, entity_ids=request_ids)
    handlers = []
    for i in range(3):
        trace = traces[trace_ids[i]]
        [handler] = parsed_documents(trace)
        handlers.append(handler)
        assert len(entities_by_id(trace)) == 3
        assert handler["name"] == "## handler" and handler["type"] == "subsegment"
        assert handler["trace_id"] == trace_ids[i] and handler["parent_id"] == PARENTS[i]
        assert handler["annotations"] == {"ColdStart": i == 0, "Service": "orders"}
        [method] = handler["subsegments"]
        assert method["name"] == "## orders::fetch_order" and method["parent_id"] == handler["id"]
        # Annotations are on the method's subsegment; metadata under the service's namespace.
        assert method["annotations"] == {"order_id": f"o-{i + 1}", "priority": 2}
        assert method["metadata"]["orders"]["order_request"] == {"order_id": f"o-{i + 1}",
                                                                  "lines": [{"sku": "A", "qty": 2}]}
        [remote] = method["subsegments"]
        assert remote["id"] == headers[i]["Parent"] and remote["parent_id"] == method["id"]
        assert remote["namespace"] == "remote" and remote["name"] == "127.0.0.1"
        assert remote["http"]["request"] == {"method": "GET", "url": f"{downstream.url}/orders/o-{i + 1}"}
        assert remote["http"]["response"] == {"status": 200, "content_length": 3}

    for i in range(2):
        assert "fault" not in handlers[i] and "cause" not in handlers[i]
        assert handlers[i]["metadata"]["orders"]["handler response"] == {"order_id": f"o-{i + 1}",
                                                                          "downstream_status": 200}
        method = handlers[i]["subsegments"][0]
        assert method["metadata"]["orders"]["orders::fetch_order response"] == {"order_id": f"o-{i + 1}",
                                                                                 "downstream_status": 200}
    # The failing #[capture_method]: fault + cause on its subsegment, the exception's id on `## handler`.
    method3 = handlers[2]["subsegments"][0]
    assert method3["fault"] is True
    [exception] = method3["cause"]["exceptions"]
    assert exception["type"] == "OrderError" and exception["message"] == "order service exploded for o-3"
    assert handlers[2]["fault"] is True and handlers[2]["cause"] == exception["id"]
    assert handlers[2]["metadata"]["orders"]["handler error"] == "order service exploded for o-3"

    # Sampled=0: nothing was sent.
    time.sleep(1.5)
    traces4, unprocessed = baton.batch_get_traces([trace_ids[3]])
    assert traces4 == {} and unprocessed == [trace_ids[3]]
    assert baton.metrics().get_value("baton_documents_accepted_total", protocol="udp") == 3

    summaries = {s["Id"]: s for s in baton.summaries(t0 - 120, time.time() + 60)}
    assert set(summaries) == set(trace_ids[:3])
    assert [summaries[t]["HasFault"] for t in trace_ids[:3]] == [False, False, True]


# --- side by side with Powertools for Python -------------------------------------------------------------

def as_rust_writes_it(entity, python_module="__main__", rust_module="orders"):
    """The Python document rewritten with each documented difference applied; anything
    else that differs is a bug. Ids and times are compared separately."""
    entity = json.loads(json.dumps(entity))
    entity.pop("in_progress", None)  # Rust writes only complete documents, without in_progress
    entity["name"] = entity["name"].replace(f"## {python_module}.", f"## {rust_module}::")  # Rust paths
    for namespace in entity.get("metadata", {}).values():
        for key in list(namespace):
            value = namespace.pop(key)
            if key.endswith(" error"):  # the error's message, where Python serializes the exception object ({})
                value = "<message>"
            namespace[key.replace(f"{python_module}.", f"{rust_module}::", 1)] = value  # "<module>::<fn> response"
    request = entity.get("http", {}).get("request")
    if request:
        request["method"] = request["method"].upper()  # the HTTP spelling; Python's requests patch lower-cases
        entity["http"]["response"]["content_length"] = "<length>"  # Rust reads Content-Length
    cause = entity.get("cause")
    if isinstance(cause, dict):
        for exception in cause["exceptions"]:
            exception.pop("stack", None)  # Rust errors carry no stack
            exception.pop("remote", None)  # Rust writes `remote` only when true
            exception["type"] = "<type>"  # the language's own type name
        cause["working_directory"] = "<dir>"
    entity["subsegments"] = [as_rust_writes_it(child, python_module, rust_module)
                             for child in entity.get("subsegments", [])]
    if not entity["subsegments"]:
        del entity["subsegments"]
    return entity


def comparable(entity, ids):
    """The entity with ids replaced by their role and times by durations' presence."""
    entity = json.loads(json.dumps(entity))
    for key in ("id", "parent_id"):
        if key in entity:
            entity[key] = ids.setdefault(entity[key], f"<id {len(ids)}>")
    entity["trace_id"] = "<trace>"
    assert entity.pop("start_time") <= entity.pop("end_time")
    for namespace in entity.get("metadata", {}).values():
        for key in namespace:
            if key.endswith(" error"):
                namespace[key] = "<message>"
    if "content_length" in entity.get("http", {}).get("response", {}):
        entity["http"]["response"]["content_length"] = "<length>"
    cause = entity.get("cause")
    if isinstance(cause, dict):
        for exception in cause["exceptions"]:
            exception["id"] = ids.setdefault(exception["id"], f"<id {len(ids)}>")
            exception["type"] = "<type>"
        cause["working_directory"] = "<dir>"
    elif isinstance(cause, str):
        entity["cause"] = ids.setdefault(cause, f"<id {len(ids)}>")
    entity["subsegments"] = [comparable(child, ids) for child in entity.get("subsegments", [])]
    if not entity["subsegments"]:
        del entity["subsegments"]
    return entity


def wait_for_complete_traces(baton, trace_ids, timeout=5.0):
    """The traces once each is one tree of its 3 entities (Python sends them one datagram each)."""
    deadline = time.monotonic() + timeout
    while True:
        traces = baton.wait_for_traces(trace_ids, timeout=timeout)
        if all(len(parsed_documents(t)) == 1 and len(entities_by_id(t)) == 3 for t in traces.values()):
            return traces
        assert time.monotonic() < deadline, json.dumps(traces)[:3000]
        time.sleep(0.1)


def test_rust_and_python_tracers_write_the_same_documents(baton, downstream, tmp_path):
    python_ids = [new_trace_id() for _ in range(4)]
    rust_ids = [new_trace_id() for _ in range(4)]
    env = powertools_env(baton, downstream, tmp_path)
    run_client("powertools_lambda_app.py", [json.dumps(lambda_invocations(python_ids))], env)
    run_rust_function(baton, downstream, tmp_path, lambda_invocations(rust_ids))
    python_traces = wait_for_complete_traces(baton, python_ids[:3])
    rust_traces = wait_for_complete_traces(baton, rust_ids[:3])
    for i in range(3):
        [python_handler] = parsed_documents(python_traces[python_ids[i]])
        [rust_handler] = parsed_documents(rust_traces[rust_ids[i]])
        expected = comparable(as_rust_writes_it(python_handler), {})
        got = comparable(rust_handler, {})
        assert got == expected, f"invocation {i + 1}:\nrust   {json.dumps(got, sort_keys=True)}\n" \
                                f"python {json.dumps(expected, sort_keys=True)}"
