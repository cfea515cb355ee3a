"""Centralized sampling: the real X-Ray SDK's DefaultSampler fetching its rules from Baton,
reporting its statistics and sharing reservoirs with other processes through the quotas
Baton answers; and the rule operations through boto3.

The SDK reports every 10 s, so the SDK scenario runs once for the module (two processes
side by side, about 22 s) and the tests below read what it left."""
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from helpers import CLIENTS_DIR, BatonServer, client_env
from test_groups import invalid_request

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

SERVICE = "e2e-sampling"
ARN_PREFIX = "arn:aws:xray:local:000000000000:sampling-rule/"
DEFAULT_RECORD = {
    "SamplingRule": {"RuleName": "Default", "RuleARN": ARN_PREFIX + "Default", "ResourceARN": "*", "Priority": 10000,
                     "FixedRate": 0.05, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*", "Host": "*",
                     "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {}},
}


def rule(name: str, priority: int, fixed_rate: float, reservoir_size: int, **patterns) -> dict:
    """A SamplingRule for boto3: patterns not given are `*`."""
    members = {"ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*"}
    members.update(patterns)
    return {"RuleName": name, "ResourceARN": "*", "Priority": priority, "FixedRate": fixed_rate,
            "ReservoirSize": reservoir_size, "Version": 1, **members}


def wait_for(what, condition, timeout: float):
    """Polls `condition` until it returns something true; fails after `timeout` seconds saying
    `what` (a string, or a function giving one then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout}s: {what() if callable(what) else what}")
        time.sleep(0.1)


class SamplerClient:
    """tests/e2e/clients/xray_sampler_app.py in a subprocess; `state` is its latest line."""

    def __init__(self, baton: BatonServer):
        env = client_env({"AWS_XRAY_DAEMON_ADDRESS": baton.daemon_address})
        self.proc = subprocess.Popen([sys.executable, str(CLIENTS_DIR / "xray_sampler_app.py"), SERVICE],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, text=True)
        self.state: dict = {"rules": {}, "fetched": None, "sent": {}}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.state = json.loads(line)

    def quota(self, rule_name: str):
        return self.state["rules"].get(rule_name, {}).get("quota")

    def stop(self) -> dict:
        """Closes its stdin (it sends its last segment and prints its last state) and waits for it."""
        self.proc.stdin.close()
        stderr = self.proc.stderr.read()
        assert self.proc.wait(timeout=10) == 0, stderr
        return self.state


@dataclass
class Run:
    baton: BatonServer
    # The final state of each client.
    clients: list[dict]
    # When the `health` rule was created, and when each client held it.
    health_created: float
    health_known: list[float]


@pytest.fixture(scope="module")
def run(tmp_path_factory, store):
    """Baton with a rule `orders` (reservoir 10, nothing beyond it) for /orders/*, two SDK
    processes started together, and, once they have fetched the rules, a rule `health`
    sampling nothing of /health; runs until both hold the `health` rule and a quota of 5."""
    base = tmp_path_factory.mktemp("sampling")
    baton = BatonServer.on(store, base).start()
    clients = []
    try:
        baton.xray.create_sampling_rule(
            SamplingRule=rule("orders", 100, 0.0, 10, ServiceName=SERVICE, URLPath="/orders/*"))
        clients = [SamplerClient(baton), SamplerClient(baton)]
        # At its first decision each SDK fetches the rules.
        wait_for(lambda: f"both SDKs fetched the rules (exit codes {[c.proc.poll() for c in clients]})",
                 lambda: all("orders" in c.state["rules"] for c in clients), 15)
        # The SDK re-fetches when LastRuleModification, in whole seconds, is after its last fetch:
        # a change within the second of that fetch would go unseen until the next 5-minute poll.
        fetched = max(c.state["fetched"] for c in clients)
        time.sleep(max(0.0, fetched + 1 - time.time()))
        health_created = time.time()
        baton.xray.create_sampling_rule(SamplingRule=rule("health", 10, 0.0, 0, URLPath="/health"))
        # Each SDK reports 10 s after it started, learns that the rules changed, and fetches them within 1 s.
        health_known = [None, None]

        def both_know_health():
            for i, client in enumerate(clients):
                if health_known[i] is None and "health" in client.state["rules"]:
                    health_known[i] = time.time()
            return all(health_known)

        wait_for("both SDKs fetched the health rule", both_know_health, 15)
        # Each client's quota is set when it reports: 5 once both have reported since the other's first report.
        wait_for(lambda: f"both SDKs hold a quota of 5: {[c.state['rules'] for c in clients]}",
                 lambda: all(c.quota("orders") == 5 for c in clients), 15)
        finals = [client.stop() for client in clients]
    except BaseException:
        for client in clients:
            client.proc.kill()
        baton.stop()
        raise
    yield Run(baton, finals, health_created, health_known)
    rc = baton.stop()
    assert rc == 0, f"baton exited {rc} after SIGTERM; stderr tail:\n{baton.stderr_tail()}"


def count_traces(baton: BatonServer, expression: str) -> int:
    now = time.time()
    return len(baton.summaries(now - 600, now + 60, FilterExpression=f'service("{SERVICE}") AND {expression}'))


def sent(run: Run, route: str, phase: str) -> int:
    return sum(client["sent"].get(f"{route} {phase}", 0) for client in run.clients)


def test_the_sdk_fetches_rules_and_reports_statistics(run):
    for client in run.clients:
        # Rules that only Baton has: the SDK's local fallback knows no named rule.
        assert {"orders", "health", "Default"} <= set(client["rules"]), client
        assert client["rules"]["health"]["rate"] == 0.0
    assert run.clients[0]["client_id"] != run.clients[1]["client_id"]
    summaries = [summary for page in run.baton.xray.get_paginator("get_sampling_statistic_summaries").paginate()
                 for summary in page["SamplingStatisticSummaries"]]
    by_rule = {}
    for summary in summaries:
        assert summary["SampledCount"] <= summary["RequestCount"], summary
        by_rule[summary["RuleName"]] = by_rule.get(summary["RuleName"], 0) + summary["RequestCount"]
    # Every client reported both rules at least twice (about 20 s of 50 requests a second each).
    assert by_rule.get("orders", 0) > 500 and by_rule.get("Default", 0) > 500, by_rule


def test_a_new_rule_applies_at_the_sdks_next_report(run):
    # Applied within one report interval (10 s, jitter and the rule poller's 1 s tick).
    assert all(known - run.health_created < 12 for known in run.health_known), run
    baton = run.baton
    # Before, /health fell to Default and was sampled; after, nothing of it arrives, while
    # /other (Default) and /orders still do.
    assert sent(run, "/health", "unknown") > 0 and sent(run, "/health", "known") == 0, run.clients
    for route, phase in [("/health", "unknown"), ("/other", "known"), ("/orders", "known")]:
        expected = sent(run, route, phase)
        assert expected > 0, (route, phase, run.clients)
        expression = f'annotation.path = "{route}" AND annotation.health_rule = "{phase}"'
        wait_for(f"{expected} traces of {expression}", lambda: count_traces(baton, expression) == expected, 5)
    assert count_traces(baton, 'annotation.path = "/health" AND annotation.health_rule = "known"') == 0
    # Sampled segments name the rule that sampled them.
    now = time.time()
    for route, rule_name in [("/orders", "orders"), ("/other", "Default")]:
        expression = f'annotation.path = "{route}" AND annotation.health_rule = "known"'
        ids = [s["Id"] for s in baton.summaries(now - 600, now + 60, FilterExpression=expression)][:5]
        traces, _ = baton.batch_get_traces(ids)
        for trace in traces.values():
            document = json.loads(trace["Segments"][0]["Document"])
            assert document["aws"]["xray"]["sampling_rule_name"] == rule_name, document


def test_two_sdks_share_a_reservoir(run):
    for client in run.clients:
        orders = client["rules"]["orders"]
        assert orders["quota"] == 5 and orders["rate"] == 0.0, client
        # The quota holds for a minute from the report that set it.
        assert orders["ttl"] > time.time(), client


# === the rule operations through boto3 ===

def records(baton) -> list[dict]:
    """Every rule record, through boto3's paginator."""
    pages = baton.xray.get_paginator("get_sampling_rules").paginate()
    return [record for page in pages for record in page["SamplingRuleRecords"]]


def plain(record: dict) -> dict:
    """A record with its times as epoch seconds."""
    return {**record, "CreatedAt": record["CreatedAt"].timestamp(), "ModifiedAt": record["ModifiedAt"].timestamp()}


def test_create_get_update_delete(baton_factory):
    baton = baton_factory()
    xray = baton.xray
    assert [plain(r) for r in records(baton)] == [{**DEFAULT_RECORD, "CreatedAt": 0.0, "ModifiedAt": 0.0}]

    before = time.time()
    created = xray.create_sampling_rule(SamplingRule={**rule("b-rule", 5, 0.5, 3, Host="api.*"),
                                                      "Attributes": {"tier": "gold"}},
                                        Tags=[{"Key": "team", "Value": "checkout"}])["SamplingRuleRecord"]
    assert created["SamplingRule"] == {**rule("b-rule", 5, 0.5, 3, Host="api.*"), "RuleARN": ARN_PREFIX + "b-rule",
                                       "Attributes": {"tier": "gold"}}
    assert before - 1 <= created["CreatedAt"].timestamp() == created["ModifiedAt"].timestamp() <= time.time() + 1
    xray.create_sampling_rule(SamplingRule=rule("a-rule", 5, 0.1, 1))
    xray.create_sampling_rule(SamplingRule=rule("c-rule", 1, 1.0, 0))
    # In the order clients try them: by priority, then name.
    assert [r["SamplingRule"]["RuleName"] for r in records(baton)] == ["c-rule", "a-rule", "b-rule", "Default"]

    # Members left out keep their value; CreatedAt stays, ModifiedAt moves.
    time.sleep(0.01)
    updated = xray.update_sampling_rule(SamplingRuleUpdate={"RuleName": "b-rule", "FixedRate": 0.25,
                                                            "URLPath": "/api/*"})["SamplingRuleRecord"]
    assert updated["SamplingRule"] == {**created["SamplingRule"], "FixedRate": 0.25, "URLPath": "/api/*"}
    assert updated["CreatedAt"] == created["CreatedAt"] and updated["ModifiedAt"] > created["ModifiedAt"]
    by_arn = xray.update_sampling_rule(SamplingRuleUpdate={"RuleARN": ARN_PREFIX + "b-rule",
                                                           "Priority": 2})["SamplingRuleRecord"]
    assert by_arn["SamplingRule"]["Priority"] == 2 and by_arn["SamplingRule"]["FixedRate"] == 0.25
    default = xray.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.1,
                                                            "ReservoirSize": 2})["SamplingRuleRecord"]
    assert default["SamplingRule"] == {**DEFAULT_RECORD["SamplingRule"], "FixedRate": 0.1, "ReservoirSize": 2}

    # Rules are durable.
    baton.stop()
    baton = baton_factory(data_dir=baton.data_dir)
    kept = records(baton)
    assert [r["SamplingRule"]["RuleName"] for r in kept] == ["c-rule", "b-rule", "a-rule", "Default"]
    assert plain(kept[1]) == plain(by_arn) and plain(kept[3]) == plain(default)

    deleted = baton.xray.delete_sampling_rule(RuleName="b-rule")["SamplingRuleRecord"]
    assert plain(deleted) == plain(by_arn)
    baton.xray.delete_sampling_rule(RuleARN=ARN_PREFIX + "a-rule")
    assert [r["SamplingRule"]["RuleName"] for r in records(baton)] == ["c-rule", "Default"]
    assert invalid_request(baton.xray.delete_sampling_rule, RuleName="b-rule") == "sampling rule b-rule not found"


def test_errors_name_what_is_wrong(baton):
    xray = baton.xray
    xray.create_sampling_rule(SamplingRule=rule("orders", 10, 0.5, 1))
    for sampling_rule, message in [
        (rule("orders", 10, 0.5, 1), "sampling rule orders already exists"),
        (rule("Default", 10, 0.5, 1), "sampling rule Default already exists"),
        (rule("x" * 33, 10, 0.5, 1), "SamplingRule.RuleName must be 1 to 32 characters, got 33"),
        (rule("late", 10000, 0.5, 1), "SamplingRule.Priority must be between 1 and 9999, got 10000"),
        (rule("often", 10, 1.5, 1), "SamplingRule.FixedRate must be between 0 and 1, got 1.5"),
        ({**rule("v2", 10, 0.5, 1), "Version": 2}, "SamplingRule.Version must be 1 (the only rule format), got 2"),
        (rule("long", 10, 0.5, 1, HTTPMethod="PROPPATCHES"),
         "SamplingRule.HTTPMethod must be at most 10 characters, got 11"),
    ]:
        assert invalid_request(xray.create_sampling_rule, SamplingRule=sampling_rule) == message
    assert invalid_request(xray.update_sampling_rule, SamplingRuleUpdate={"RuleName": "nope", "FixedRate": 0.5}) \
        == "sampling rule nope not found"
    assert invalid_request(xray.update_sampling_rule, SamplingRuleUpdate={"RuleName": "Default", "Priority": 1}) \
        == "Invalid update request for default sampling rule: only FixedRate and ReservoirSize can change, got Priority"
    assert invalid_request(xray.delete_sampling_rule, RuleName="Default") \
        == "the Default sampling rule cannot be deleted"
    assert invalid_request(xray.delete_sampling_rule) == "RuleName or RuleARN is required"
    assert invalid_request(xray.get_sampling_rules, NextToken="page-2") == "NextToken is not one this server issued"


def test_targets_split_reservoirs_and_name_unknown_rules(baton):
    xray = baton.xray
    created = xray.create_sampling_rule(SamplingRule=rule("orders", 10, 0.25, 3))["SamplingRuleRecord"]

    def report(client_id: str, rule_name: str = "orders") -> dict:
        return xray.get_sampling_targets(SamplingStatisticsDocuments=[{
            "RuleName": rule_name, "ClientID": client_id, "RequestCount": 10, "SampledCount": 4, "BorrowCount": 1,
            "Timestamp": time.time()}])

    alone = report("b" * 24)
    assert alone["LastRuleModification"] == created["ModifiedAt"]
    [target] = alone["SamplingTargetDocuments"]
    assert (target["RuleName"], target["FixedRate"], target["ReservoirQuota"], target["Interval"]) == \
        ("orders", 0.25, 3, 10)
    assert 55 < target["ReservoirQuotaTTL"].timestamp() - time.time() <= 60
    # Two clients: 3 split as 2 (first ClientID) and 1.
    assert report("a" * 24)["SamplingTargetDocuments"][0]["ReservoirQuota"] == 2
    assert report("b" * 24)["SamplingTargetDocuments"][0]["ReservoirQuota"] == 1
    unknown = report("a" * 24, "gone")
    assert unknown["SamplingTargetDocuments"] == []
    assert unknown["UnprocessedStatistics"] == [
        {"RuleName": "gone", "ErrorCode": "400", "Message": "no sampling rule named gone"}]
    assert invalid_request(xray.get_sampling_targets, SamplingStatisticsDocuments=[{
        "RuleName": "orders", "ClientID": "c" * 25, "RequestCount": 1, "SampledCount": 1, "Timestamp": 0}]) \
        == "SamplingStatisticsDocuments[0].ClientID must be 24 characters, got 25"
    # Summed per 10 s window: the three reports may straddle two.
    summaries = xray.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
    assert {summary["RuleName"] for summary in summaries} == {"orders"}, summaries
    totals = [sum(summary[count] for summary in summaries) for count in ("RequestCount", "SampledCount", "BorrowCount")]
    assert totals == [30, 12, 3], summaries
