"""What only the ClickHouse store promises: several `baton serve` processes on
one database see the same data; a ClickHouse killed during ingest loses no
acknowledged document and Baton carries on by itself once it is back; a
`Distributed` store over a two-shard cluster (`--clickhouse-cluster`).

The servers of the last two are this module's own (scripts/clickhouse), on
loopback in the test's tmp dir; the first uses BATON_CLICKHOUSE_URL's."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import pytest
import requests

from helpers import (BATON_BIN, CLICKHOUSE_URL, ClickHouseTarget, clickhouse_query, clickhouse_script, datagram,
                     new_database, new_id, new_trace_id, segment_doc)

pytestmark = pytest.mark.skipif(not CLICKHOUSE_URL or not shutil.which("clickhouse-server"),
                                reason="needs BATON_CLICKHOUSE_URL and clickhouse-server (scripts/test sets both up)")


def put(baton, docs, timeout=60.0) -> requests.Response:
    body = {"TraceSegmentDocuments": [json.dumps(d) for d in docs]}
    return baton.post("/TraceSegments", body, timeout=timeout)


def wait_for(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def summaries(baton, start, end, **kwargs) -> list[dict]:
    return list(baton.summaries(start, end, **kwargs))


def graph_services(baton, start, end) -> dict[str, int]:
    """The request count of each service of GetServiceGraph."""
    services = {}
    kwargs = {"StartTime": start, "EndTime": end}
    while True:
        page = baton.xray.get_service_graph(**kwargs)
        for service in page["Services"]:
            stats = service.get("SummaryStatistics") or {}
            services[service["Name"]] = services.get(service["Name"], 0) + stats.get("TotalCount", 0)
        if not page.get("NextToken"):
            return services
        kwargs["NextToken"] = page["NextToken"]


@pytest.fixture
def own_clickhouse(tmp_path):
    """Starts ClickHouse servers of the test's own: `own_clickhouse(shards=N)`;
    all stopped at teardown (a test asks for it before `baton_factory`, so that
    its Batons stop first: ClickHouse waits for the connections they hold)."""
    script = clickhouse_script()
    started = []

    def start(shards=1):
        servers = script.ClickHouse(tmp_path / f"clickhouse-{len(started)}", shards=shards).start()
        started.append(servers)
        return servers

    yield start
    for servers in started:
        servers.stop()


def test_two_processes_on_one_database_see_the_same_data(baton_factory):
    """A collector and a query node, as in docs/clickhouse.md: what one takes in,
    over HTTP or UDP, the other reads; groups and sampling rules are shared."""
    target = ClickHouseTarget(CLICKHOUSE_URL, new_database())
    collector = baton_factory(clickhouse=target)
    query = baton_factory(clickhouse=target)
    now = time.time()

    over_http = [segment_doc(new_trace_id(), "shared-http", start=now - 30 + i, annotations={"node": "collector"})
                 for i in range(20)]
    resp = put(collector, over_http)
    assert resp.status_code == 200 and resp.json()["UnprocessedTraceSegments"] == [], resp.text
    over_udp = [segment_doc(new_trace_id(), "shared-udp", start=now - 20 + i) for i in range(20)]
    query.send_datagrams(datagram(d) for d in over_udp)

    everything = {d["trace_id"]: d for d in over_http + over_udp}

    def all_current(server):
        # A summary becomes current after its trace's documents and rollups
        # are in (the writer inserts trace_starts last): wait for that, not
        # only for the documents, before reading the graph.
        traces, unprocessed = server.batch_get_traces(everything)
        current = {s["Id"] for s in summaries(server, now - 60, now + 5)}
        return not unprocessed and current == set(everything) and traces

    for server in (collector, query):
        traces = wait_for(f"all 40 traces through port {server.port}", lambda: all_current(server))
        for trace_id, doc in everything.items():
            assert [json.loads(s["Document"]) for s in traces[trace_id]["Segments"]] == [doc]
        ids = {s["Id"] for s in summaries(server, now - 60, now + 5, FilterExpression='annotation.node = "collector"')}
        assert ids == {d["trace_id"] for d in over_http}
        services = graph_services(server, now - 60, now + 5)
        assert services.get("shared-http") == 20 and services.get("shared-udp") == 20, services

    collector.xray.create_group(GroupName="shared", FilterExpression='service("shared-http")')
    assert query.xray.get_group(GroupName="shared")["Group"]["FilterExpression"] == 'service("shared-http")'
    rule = {"RuleName": "shared-rule", "Priority": 10, "FixedRate": 0.5, "ReservoirSize": 3, "ServiceName": "*",
            "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "/shared", "ResourceARN": "*",
            "Version": 1}
    query.xray.create_sampling_rule(SamplingRule=rule)
    names = {r["SamplingRule"]["RuleName"] for r in collector.xray.get_sampling_rules()["SamplingRuleRecords"]}
    assert "shared-rule" in names, names


def test_killing_clickhouse_during_ingest_loses_no_acknowledged_document(own_clickhouse, baton_factory):
    """Four clients put batches all along; ClickHouse is SIGKILLed in the middle and
    started again on the same data. Every batch Baton acknowledged must be readable,
    from the same Baton, which must take documents again by itself. Documents that
    came over UDP while ClickHouse was down (nobody awaits them) are written once it
    is back."""
    clickhouse = own_clickhouse()
    baton = baton_factory(clickhouse=ClickHouseTarget(clickhouse.url, new_database()))
    acknowledged: dict[str, dict] = {}
    answers: list[int | str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number):
        batch = 0
        while not stop.is_set():
            docs = [segment_doc(new_trace_id(), f"crash-{number}", seg_id=new_id(), annotations={"batch": batch})
                    for _ in range(25)]
            batch += 1
            try:
                resp = put(baton, docs, timeout=120)
            except requests.RequestException as error:
                with lock:
                    answers.append(type(error).__name__)
                continue
            with lock:
                answers.append(resp.status_code)
                if resp.status_code == 200:
                    unprocessed = {u["Id"] for u in resp.json()["UnprocessedTraceSegments"]}
                    acknowledged.update({d["trace_id"]: d for d in docs if d["id"] not in unprocessed})
            if resp.status_code != 200:
                time.sleep(0.05)

    clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for thread in clients:
        thread.start()
    wait_for("acknowledgements before the crash", lambda: len(acknowledged) >= 500)
    clickhouse.kill()
    with lock:
        before_crash = len(acknowledged)
    over_udp = [segment_doc(new_trace_id(), "crash-udp") for _ in range(200)]
    baton.send_datagrams(datagram(d) for d in over_udp)
    time.sleep(3)  # Baton meets a dead ClickHouse: refused connections, retries
    assert baton.alive(), f"baton exited while ClickHouse was down:\n{baton.stderr_tail()}"
    clickhouse.start()
    with lock:
        restarted_at = len(acknowledged)
    # Recovery without help: batches are acknowledged again soon after ClickHouse is back.
    wait_for("acknowledgements after ClickHouse came back", lambda: len(acknowledged) >= restarted_at + 500, 60)
    stop.set()
    for thread in clients:
        thread.join(timeout=150)
        assert not thread.is_alive(), "a client is still waiting for an answer"
    assert baton.alive(), f"baton exited:\n{baton.stderr_tail()}"

    traces, unprocessed = baton.batch_get_traces(acknowledged)
    assert unprocessed == [], (f"{len(unprocessed)} of {len(acknowledged)} acknowledged traces lost "
                               f"({before_crash} acknowledged before the kill); answers: "
                               f"{sorted(set(map(str, answers)))}")
    for trace_id, doc in acknowledged.items():
        assert [json.loads(s["Document"]) for s in traces[trace_id]["Segments"]] == [doc]
    traces, unprocessed = baton.batch_get_traces(d["trace_id"] for d in over_udp)
    assert unprocessed == [], f"{len(unprocessed)} of {len(over_udp)} UDP documents sent during the outage lost"
    for doc in over_udp:
        assert [json.loads(s["Document"]) for s in traces[doc["trace_id"]]["Segments"]] == [doc]
    # What was refused while ClickHouse was down was refused in the API's way, not by a dropped connection.
    assert {str(a) for a in answers} <= {"200", "500", "503"}, sorted(set(map(str, answers)))
    # The UDP documents kept for a retry show on /metrics, and none was given up.
    metrics = baton.metrics()
    assert metrics.get_value("baton_store_documents_retried_total") >= len(over_udp)
    assert metrics.get_value("baton_store_documents_abandoned_total") == 0


def test_distributed_over_two_shards(own_clickhouse, baton_factory):
    """`--clickhouse-cluster`: the tables are Distributed over the cluster's two
    shards; rows land on both, and a Baton on either shard reads everything."""
    clickhouse = own_clickhouse(shards=2)
    database = new_database()
    first = baton_factory(clickhouse=ClickHouseTarget(clickhouse.urls[0], database, cluster="baton"))
    now = time.time()
    docs = [segment_doc(new_trace_id(), f"sharded-{i % 4}", start=now - 60 + i * 0.1,
                        annotations={"customer": f"c-{i % 10}"}, http={"response": {"status": 500 if i % 5 else 200}},
                        fault=bool(i % 5)) for i in range(400)]
    for i in range(0, len(docs), 50):
        resp = put(first, docs[i:i + 50])
        assert resp.status_code == 200 and resp.json()["UnprocessedTraceSegments"] == [], resp.text
    second = baton_factory(clickhouse=ClickHouseTarget(clickhouse.urls[1], database, cluster="baton"))
    udp = [segment_doc(new_trace_id(), "sharded-udp", start=now - 10 + i * 0.01) for i in range(100)]
    second.send_datagrams(datagram(d) for d in udp)

    everything = {d["trace_id"]: d for d in docs + udp}
    for server in (first, second):
        traces = wait_for(f"all traces through port {server.port}",
                          lambda: (lambda got: got[0] if not got[1] else None)(server.batch_get_traces(everything)))
        for trace_id, doc in everything.items():
            assert [json.loads(s["Document"]) for s in traces[trace_id]["Segments"]] == [doc]
        got = {s["Id"] for s in summaries(server, now - 120, now + 5, FilterExpression='annotation.customer = "c-3"')}
        assert got == {d["trace_id"] for d in docs if d["annotations"]["customer"] == "c-3"}
        faults = {s["Id"] for s in summaries(server, now - 120, now + 5, FilterExpression='service("sharded-1") { fault }')}
        assert faults == {d["trace_id"] for d in docs if d["name"] == "sharded-1" and d["fault"]}
        services = graph_services(server, now - 120, now + 5)
        assert {name: services.get(name) for name in ("sharded-0", "sharded-1", "sharded-udp")} == \
            {"sharded-0": 100, "sharded-1": 100, "sharded-udp": 100}, services

    # Both shards hold rows of Baton's tables: the data is spread, not copied to one.
    for url in clickhouse.urls:
        rows = int(clickhouse_query(url, f"SELECT sum(rows) FROM system.parts WHERE database = '{database}' "
                                         "AND active").strip() or 0)
        assert rows > 0, f"no rows of {database} on the shard at {url}"


def test_user_and_password(own_clickhouse, baton_factory, monkeypatch):
    """--clickhouse-user and --clickhouse-password (or BATON_CLICKHOUSE_PASSWORD) reach
    ClickHouse; a wrong password stops `baton serve` at once, saying why, without
    printing the password."""
    script = clickhouse_script()
    clickhouse = own_clickhouse()
    target = ClickHouseTarget(clickhouse.url, new_database())
    user = ["--clickhouse-user", script.USER]
    with_flag = baton_factory(clickhouse=target, extra_args=[*user, "--clickhouse-password", script.PASSWORD])
    doc = segment_doc(new_trace_id(), "with-password")
    resp = put(with_flag, [doc])
    assert resp.status_code == 200 and resp.json()["UnprocessedTraceSegments"] == [], resp.text
    monkeypatch.setenv("BATON_CLICKHOUSE_PASSWORD", script.PASSWORD)
    with_env = baton_factory(clickhouse=target, extra_args=user)
    traces, unprocessed = with_env.batch_get_traces([doc["trace_id"]])
    assert unprocessed == [] and json.loads(traces[doc["trace_id"]]["Segments"][0]["Document"]) == doc

    monkeypatch.delenv("BATON_CLICKHOUSE_PASSWORD")
    wrong = subprocess.run([str(BATON_BIN), "serve", *target.args(), *user, "--clickhouse-password", "not-the-one",
                            "--listen", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1, wrong
    assert wrong.stdout == "", wrong.stdout
    assert f"Wrong password for user {script.USER}" in wrong.stderr, wrong.stderr
    assert "not-the-one" not in wrong.stderr, wrong.stderr
