"""Powertools Tracer in a simulated Lambda environment: 4 invocations in one
process; the facade segment is never sent, every subsegment is its own datagram."""
import json
import time

from helpers import (LAMBDA_PARENTS as PARENTS, entities_by_id, lambda_invocations, new_trace_id,
                     parse_trace_header, parsed_documents, powertools_env, run_client, strip_children)


def test_powertools_tracer_in_lambda(baton, downstream, tmp_path):
    t0 = time.time()
    trace_ids = [new_trace_id() for _ in range(4)]
    invocations = lambda_invocations(trace_ids)
    env = powertools_env(baton, downstream, tmp_path)
    proc = run_client("powertools_lambda_app.py", [json.dumps(invocations)], env)
    client_done = time.monotonic()
    outcomes = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["invocation"] for o in outcomes] == [1, 2, 3, 4], proc.stdout
    assert "error" not in outcomes[0] and "error" not in outcomes[1] and "error" not in outcomes[3]
    assert "order service exploded for o-3" in outcomes[2]["error"]
    assert "method_subsegment" not in outcomes[3]

    # The downstream saw one request per invocation with the propagated header.
    assert [r["path"] for r in downstream.requests] == ["/orders/o-1", "/orders/o-2", "/orders/o-3", "/orders/o-4"]
    headers = [parse_trace_header(r["trace_header"]) for r in downstream.requests]
    for i in range(3):
        assert headers[i]["Root"] == trace_ids[i] and headers[i]["Sampled"] == "1", headers[i]
    assert headers[1].get("Lineage") == "a87bd80c:0", headers[1]
    assert headers[3]["Root"] == trace_ids[3] and headers[3]["Sampled"] == "0", headers[3]

    method_ids = [outcomes[i]["method_subsegment"]["id"] for i in range(3)]
    request_ids = [headers[i]["Parent"] for i in range(3)]
    traces = baton.wait_for_traces(trace_ids[:3], timeout=5, entity_ids=set(method_ids + request_ids))

    handlers = []
    for i in range(3):
        trace = traces[trace_ids[i]]
        # The facade never arrives: `## handler` is the single entry, everything else below it.
        assert len(trace["Segments"]) == 1, [s["Id"] for s in trace["Segments"]]
        [handler] = parsed_documents(trace)
        handlers.append(handler)
        got = entities_by_id(trace)
        assert len(got) == 3, sorted((e["name"], e["id"]) for e, _, _ in got.values())
        assert handler["name"] == "## handler"
        assert handler["type"] == "subsegment" and handler["trace_id"] == trace_ids[i]
        assert handler["parent_id"] == PARENTS[i]
        assert handler["annotations"]["Service"] == "orders"
        assert handler["annotations"]["ColdStart"] is (i == 0)
        [method] = handler["subsegments"]
        assert method["id"] == method_ids[i]
        assert method["name"] == "## __main__.fetch_order" and method["parent_id"] == handler["id"]
        # The method subsegment is exactly what the SDK sent (plus its merged child).
        assert strip_children(method) == outcomes[i]["method_subsegment"]
        assert method["annotations"] == {"order_id": "o-%d" % (i + 1), "priority": 2}
        assert method["metadata"]["orders"]["order_request"] == {"order_id": "o-%d" % (i + 1),
                                                                  "lines": [{"sku": "A", "qty": 2}]}
        [remote] = method["subsegments"]
        assert remote["id"] == request_ids[i] and remote["parent_id"] == method["id"]
        assert remote["namespace"] == "remote" and remote["name"] == "127.0.0.1"
        assert remote["http"]["request"] == {"method": "get", "url": "%s/orders/o-%d" % (downstream.url, i + 1)}
        assert remote["http"]["response"] == {"status": 200}
        assert "subsegments" not in remote

    # Invocations 1 and 2: no faults, the handler response in metadata.
    for i in range(2):
        assert "fault" not in handlers[i] and "cause" not in handlers[i]
        assert handlers[i]["metadata"]["orders"]["handler response"] == {"order_id": "o-%d" % (i + 1),
                                                                          "downstream_status": 200}
    # Invocation 3: fault + full cause on the method, fault + the exception id on the handler.
    method3 = handlers[2]["subsegments"][0]
    assert method3["fault"] is True
    [exc] = method3["cause"]["exceptions"]
    assert exc["type"] == "RuntimeError" and exc["message"] == "order service exploded for o-3"
    assert handlers[2]["fault"] is True
    assert handlers[2]["cause"] == exc["id"]
    assert handlers[2]["metadata"]["orders"]["handler error"] == {}

    # Invocation 4 was not sampled: nothing was sent, the trace is unknown.
    time.sleep(max(0.0, client_done + 1.5 - time.monotonic()))  # past the 1 s UDP flush
    traces4, unprocessed = baton.batch_get_traces([trace_ids[3]])
    assert traces4 == {} and unprocessed == [trace_ids[3]]
    accepted = baton.metrics().get_value("baton_documents_accepted_total", protocol="udp")
    assert accepted == 9, f"3 sampled invocations x 3 subsegments were sent, server accepted {accepted}"

    # Summaries: the entry document is `## handler` (its parent never arrived).
    summaries = {s["Id"]: s for s in baton.summaries(t0 - 120, time.time() + 60)}
    assert set(summaries) == set(trace_ids[:3]), sorted(summaries)
    for i in range(3):
        s = summaries[trace_ids[i]]
        assert s["HasFault"] is (i == 2), (i, s)
        assert s["HasError"] is False and s["HasThrottle"] is False
        assert abs(s["ResponseTime"] - (handlers[i]["end_time"] - handlers[i]["start_time"])) < 1e-3, s
        ann = {k: [v["AnnotationValue"] for v in vs] for k, vs in s["Annotations"].items()}
        assert ann["ColdStart"] == [{"BooleanValue": i == 0}]
        assert ann["Service"] == [{"StringValue": "orders"}]
        assert ann["order_id"] == [{"StringValue": "o-%d" % (i + 1)}]
        assert ann["priority"] == [{"NumberValue": 2.0}]
