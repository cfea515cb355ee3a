"""The service graph through boto3: real X-Ray SDK services calling each other,
a Powertools function behind the Lambda platform's segments, and the
statistics of each node and edge."""
import json
import time

import pytest

from helpers import client_env, new_id, new_trace_id, powertools_env, run_client

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")


def graph_by_name(graph):
    """{(name, type): service} and {(from, to): edge} of a GetServiceGraph answer."""
    services = {(s["Name"], s.get("Type")): s for s in graph["Services"]}
    by_ref = {s["ReferenceId"]: (s["Name"], s.get("Type")) for s in graph["Services"]}
    edges = {}
    for key, service in services.items():
        for edge in service["Edges"]:
            edges[(key, by_ref[edge["ReferenceId"]])] = edge
    return services, edges


def counts(statistics):
    return (statistics["TotalCount"], statistics["OkCount"], statistics["ErrorStatistics"]["TotalCount"],
            statistics["ErrorStatistics"]["ThrottleCount"], statistics["FaultStatistics"]["TotalCount"])


def wait_for_graph(baton, start, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        graph = baton.xray.get_service_graph(StartTime=start, EndTime=time.time() + 120)
        if predicate(graph) or time.monotonic() > deadline:
            return graph
        time.sleep(0.1)


def test_an_sdk_service_calling_another_replaces_the_inferred_node(baton, tmp_path):
    start = time.time() - 120
    env = client_env({"AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address, "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"},
                     home=tmp_path)
    runs = [json.loads(run_client("xray_sdk_app.py", ["chain"], env).stdout) for _ in range(2)]
    assert all(run["backend_status"] == 500 for run in runs)
    graph = wait_for_graph(baton, start, lambda g: len(g["Services"]) == 4)

    services, edges = graph_by_name(graph)
    front, backend, dynamodb, client = (("e2e-front", None), ("e2e-backend", None),
                                        ("DynamoDB", "AWS::DynamoDB::Table"), ("client", "client"))
    assert set(services) == {front, backend, dynamodb, client}, sorted(services)
    # The backend sent its own segment: no inferred 127.0.0.1 node.
    assert services[front]["Root"] is True and services[backend]["Root"] is False
    assert services[front]["State"] == "active" and services[dynamodb]["State"] == "unknown"
    assert counts(services[front]["SummaryStatistics"]) == (2, 2, 0, 0, 0)
    assert counts(services[backend]["SummaryStatistics"]) == (2, 0, 0, 0, 2)
    assert counts(services[dynamodb]["SummaryStatistics"]) == (2, 0, 0, 0, 2)
    assert set(edges) == {(client, front), (front, backend), (backend, dynamodb)}, sorted(edges)
    assert counts(edges[(client, front)]["SummaryStatistics"]) == (2, 2, 0, 0, 0)
    # Timed and classed by the caller's subsegment: the 500 makes it a fault.
    assert counts(edges[(front, backend)]["SummaryStatistics"]) == (2, 0, 0, 0, 2)
    assert counts(edges[(backend, dynamodb)]["SummaryStatistics"]) == (2, 0, 0, 0, 2)
    assert sum(entry["Count"] for entry in services[backend]["ResponseTimeHistogram"]) == 2
    assert sum(entry["Count"] for entry in edges[(front, backend)]["ResponseTimeHistogram"]) == 2
    assert graph["ContainsOldGroupVersions"] is False

    # The same traces' graph, from the traces themselves.
    trace_graph = baton.xray.get_trace_graph(TraceIds=[runs[0]["trace_id"]])
    services, edges = graph_by_name(trace_graph)
    assert set(services) == {front, backend, dynamodb, client}
    assert counts(edges[(front, backend)]["SummaryStatistics"]) == (1, 0, 0, 0, 1)

    # Per minute, for one edge and one service.
    minute = time.time() // 60 * 60
    series = baton.xray.get_time_series_service_statistics(
        StartTime=minute - 600, EndTime=minute + 120, Period=60,
        EntitySelectorExpression='edge("e2e-front", "e2e-backend")')["TimeSeriesServiceStatistics"]
    assert len(series) == 12
    assert [point["Timestamp"].timestamp() for point in series] == [minute - 600 + 60 * i for i in range(12)]
    assert sum(point["EdgeSummaryStatistics"]["FaultStatistics"]["TotalCount"] for point in series) == 2
    series = baton.xray.get_time_series_service_statistics(
        StartTime=minute - 600, EndTime=minute + 120, Period=300,
        EntitySelectorExpression='service(id(name: "DynamoDB", type: "AWS::DynamoDB::Table"))'
    )["TimeSeriesServiceStatistics"]
    assert sum(point["ServiceSummaryStatistics"]["TotalCount"] for point in series) == 2

    # The fault started in the DynamoDB call, passed through the backend and
    # stopped at the front's HTTP call: the client saw no fault.
    trace_ids = sorted(run["trace_id"] for run in runs)

    def matching(expression):
        summaries = baton.xray.get_trace_summaries(StartTime=start, EndTime=time.time() + 60,
                                                  FilterExpression=expression)["TraceSummaries"]
        return sorted(summary["Id"] for summary in summaries), summaries

    found, summaries = matching('rootcause.fault.service { last and inferred and name = "DynamoDB" }')
    assert found == trace_ids
    [cause] = summaries[0]["FaultRootCauses"]
    assert [service["Name"] for service in cause["Services"]] == ["e2e-front", "e2e-backend", "DynamoDB"]
    assert cause["ClientImpacting"] is False
    assert cause["Services"][-1]["Inferred"] is True
    assert cause["Services"][-1]["EntityPath"][-1]["Remote"] is True
    assert summaries[0]["ErrorRootCauses"] == []
    assert matching('rootcause.fault.service { name = "e2e-backend" }')[0] == trace_ids
    assert matching('rootcause.fault.service { last and name = "e2e-backend" }')[0] == []
    assert matching('rootcause.responsetime.service { name = "e2e-front" }')[0] == trace_ids


def test_a_powertools_function_behind_the_lambda_platform(baton, downstream, tmp_path):
    start = time.time() - 120
    trace_id, function_id, service_id = new_trace_id(), new_id(), new_id()
    env = powertools_env(baton, downstream, tmp_path)
    invocation = {"trace_header": f"Root={trace_id};Parent={function_id};Sampled=1", "event": {"order_id": "o-1"}}
    run_client("powertools_lambda_app.py", [json.dumps([invocation])], env)
    # What the Lambda platform sends for an invocation with active tracing.
    now = time.time()
    platform = [
        {"name": "order-handler", "id": service_id, "trace_id": trace_id, "origin": "AWS::Lambda",
         "start_time": now - 1.0, "end_time": now, "http": {"response": {"status": 200}}},
        {"name": "order-handler", "id": function_id, "trace_id": trace_id, "parent_id": service_id,
         "origin": "AWS::Lambda::Function", "start_time": now - 0.9, "end_time": now - 0.05},
    ]
    answer = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc) for doc in platform])
    assert answer["UnprocessedTraceSegments"] == []
    graph = wait_for_graph(baton, start, lambda g: len(g["Services"]) == 4)

    services, edges = graph_by_name(graph)
    lambda_service, function, remote, client = (("order-handler", "AWS::Lambda"),
                                                ("order-handler", "AWS::Lambda::Function"),
                                                ("127.0.0.1", "remote"), ("client", "client"))
    assert set(services) == {lambda_service, function, remote, client}, sorted(services)
    assert set(edges) == {(client, lambda_service), (lambda_service, function), (function, remote)}, sorted(edges)
    assert services[lambda_service]["Root"] is True
    for key in (lambda_service, function, remote):
        assert counts(services[key]["SummaryStatistics"]) == (1, 1, 0, 0, 0), key
    assert counts(edges[(function, remote)]["SummaryStatistics"]) == (1, 1, 0, 0, 0)
    assert abs(services[lambda_service]["SummaryStatistics"]["TotalResponseTime"] - 1.0) < 1e-3
