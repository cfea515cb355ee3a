"""X-Ray groups (CreateGroup, GetGroup, GetGroups, UpdateGroup, DeleteGroup) through boto3
and the AWS CLI, and `group.name` / `group.arn` in GetTraceSummaries filters."""
import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from helpers import new_trace_id, segment_doc
from test_api_awscli import aws

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

ARN = re.compile(r"^arn:aws:xray:local:000000000000:group/(?P<name>[\w.-]+)/[0-9A-Z]{26}$")


def invalid_request(call, **kwargs) -> str:
    """Calls a boto3 operation that must fail with 400 InvalidRequestException; returns its message."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    error = err.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, error
    assert error["Error"]["Code"] == "InvalidRequestException", error
    return error["Error"]["Message"]


def put_slow_and_fast_traces(baton) -> tuple[set[str], set[str]]:
    """Three traces longer than 2 s and three short ones; returns (slow ids, fast ids)."""
    now = time.time()
    slow = [segment_doc(new_trace_id(), "groups-svc", start=now - 20 + i, duration=2.5 + i) for i in range(3)]
    fast = [segment_doc(new_trace_id(), "groups-svc", start=now - 10 + i, duration=0.1) for i in range(3)]
    resp = baton.xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in slow + fast])
    assert resp.get("UnprocessedTraceSegments", []) == []
    return {d["trace_id"] for d in slow}, {d["trace_id"] for d in fast}


def summary_ids(baton, expression: str) -> set[str]:
    now = time.time()
    return {s["Id"] for s in baton.summaries(now - 600, now + 60, FilterExpression=expression)}


def test_create_get_update_delete(baton):
    xray = baton.xray
    created = xray.create_group(GroupName="slow", FilterExpression="duration > 2",
                                InsightsConfiguration={"InsightsEnabled": True, "NotificationsEnabled": False},
                                Tags=[{"Key": "team", "Value": "checkout"}])["Group"]
    assert ARN.match(created["GroupARN"])["name"] == "slow", created
    assert created == {"GroupName": "slow", "GroupARN": created["GroupARN"], "FilterExpression": "duration > 2",
                       "InsightsConfiguration": {"InsightsEnabled": True, "NotificationsEnabled": False}}

    assert xray.get_group(GroupName="slow")["Group"] == created
    assert xray.get_group(GroupARN=created["GroupARN"])["Group"] == created
    bare = xray.create_group(GroupName="all.traces_1")["Group"]
    assert "FilterExpression" not in bare
    assert bare["InsightsConfiguration"] == {"InsightsEnabled": False, "NotificationsEnabled": False}
    assert [g["GroupName"] for g in xray.get_groups()["Groups"]] == ["all.traces_1", "slow"]

    # Members left out keep their value.
    updated = xray.update_group(GroupName="slow", FilterExpression="duration > 3")["Group"]
    assert updated == {**created, "FilterExpression": "duration > 3"}
    updated = xray.update_group(GroupARN=created["GroupARN"],
                                InsightsConfiguration={"NotificationsEnabled": True})["Group"]
    assert updated["FilterExpression"] == "duration > 3"
    assert updated["InsightsConfiguration"] == {"InsightsEnabled": True, "NotificationsEnabled": True}
    assert xray.get_group(GroupName="slow")["Group"] == updated

    assert xray.delete_group(GroupName="slow")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert xray.delete_group(GroupARN=bare["GroupARN"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert xray.get_groups()["Groups"] == []
    # A group made again under the same name is a new group, with a new ARN.
    again = xray.create_group(GroupName="slow")["Group"]
    assert again["GroupARN"] != created["GroupARN"]
    invalid_request(xray.get_group, GroupARN=created["GroupARN"])


def test_get_groups_pages(baton):
    names = sorted("group-%03d" % i for i in range(57))
    for name in names:
        baton.xray.create_group(GroupName=name, FilterExpression=f'annotation.name = "{name}"')
    first = baton.xray.get_groups()
    assert first.get("NextToken") and 0 < len(first["Groups"]) < len(names), first
    pages = list(baton.xray.get_paginator("get_groups").paginate())
    assert len(pages) == 2
    listed = [g for page in pages for g in page["Groups"]]
    assert [g["GroupName"] for g in listed] == names
    assert all(g["FilterExpression"] == f'annotation.name = "{g["GroupName"]}"' for g in listed)
    assert "NextToken" in invalid_request(baton.xray.get_groups, NextToken="not a token")


def test_errors(baton):
    xray = baton.xray
    message = invalid_request(xray.create_group, GroupName="typo", FilterExpression="duration > 2 AND responsetme > 1")
    assert message == 'FilterExpression: unknown keyword "responsetme" (did you mean responsetime?) at 17'
    xray.create_group(GroupName="slow", FilterExpression="duration > 2")
    assert invalid_request(xray.create_group, GroupName="slow") == "group slow already exists"
    assert "reserved" in invalid_request(xray.create_group, GroupName="Default")
    assert "1 to 32" in invalid_request(xray.create_group, GroupName="x" * 33)
    assert "only letters" in invalid_request(xray.create_group, GroupName="slow calls")
    assert invalid_request(xray.create_group, GroupName="slower", FilterExpression='group.name = "slow"') \
        == "FilterExpression: a group's filter may not refer to a group"
    assert "InsightsEnabled" in invalid_request(xray.create_group, GroupName="loud",
                                                InsightsConfiguration={"NotificationsEnabled": True})

    assert invalid_request(xray.get_group, GroupName="missing") == "group missing not found"
    assert "not found" in invalid_request(xray.get_group, GroupARN="arn:aws:xray:local:000000000000:group/x/y")
    assert "not found" in invalid_request(xray.update_group, GroupName="missing", FilterExpression="ok")
    assert "not found" in invalid_request(xray.delete_group, GroupName="missing")
    assert "GroupName or GroupARN" in invalid_request(xray.get_group)
    # Both keys must name the same group.
    assert "not found" in invalid_request(xray.get_group, GroupName="slow", GroupARN="arn:aws:xray:local:0:group/x/y")

    assert invalid_request(xray.update_group, GroupName="slow", FilterExpression="duration >").startswith(
        "FilterExpression: ")
    assert "refer to a group" in invalid_request(xray.update_group, GroupName="slow",
                                                 FilterExpression='group.arn = "x"')
    # Failed changes leave the group as it was.
    assert xray.get_group(GroupName="slow")["Group"]["FilterExpression"] == "duration > 2"


def test_filters_by_group_select_the_groups_traces(baton):
    slow, fast = put_slow_and_fast_traces(baton)
    arn = baton.xray.create_group(GroupName="slow", FilterExpression="duration > 2")["Group"]["GroupARN"]
    assert summary_ids(baton, "duration > 2") == slow
    assert summary_ids(baton, 'group.name = "slow"') == slow
    assert summary_ids(baton, f'group.arn = "{arn}"') == slow
    assert summary_ids(baton, '!(group.name = "slow")') >= fast
    assert not summary_ids(baton, '!(group.name = "slow")') & slow

    baton.xray.update_group(GroupName="slow", FilterExpression="duration < 1")
    assert summary_ids(baton, 'group.name = "slow"') == fast
    # A group without a filter selects every trace.
    baton.xray.create_group(GroupName="everything")
    assert summary_ids(baton, 'group.name = "everything"') == slow | fast

    now = time.time()
    message = invalid_request(baton.xray.get_trace_summaries, StartTime=now - 600, EndTime=now + 60,
                              FilterExpression='group.name = "missing"')
    assert message.startswith("FilterExpression: ") and "missing" in message, message
    baton.xray.delete_group(GroupName="slow")
    invalid_request(baton.xray.get_trace_summaries, StartTime=now - 600, EndTime=now + 60,
                    FilterExpression=f'group.arn = "{arn}"')


def test_groups_survive_a_restart(baton_factory):
    first = baton_factory()
    slow, _ = put_slow_and_fast_traces(first)
    first.xray.create_group(GroupName="slow", FilterExpression="duration > 2",
                            InsightsConfiguration={"InsightsEnabled": True, "NotificationsEnabled": True})
    first.xray.create_group(GroupName="gone")
    first.xray.delete_group(GroupName="gone")
    before = first.xray.get_groups()["Groups"]
    assert first.stop() == 0

    second = baton_factory(data_dir=first.data_dir)
    assert second.xray.get_groups()["Groups"] == before
    assert summary_ids(second, 'group.name = "slow"') == slow
    assert summary_ids(second, f'group.arn = "{before[0]["GroupARN"]}"') == slow


def test_aws_cli_create_group_and_get_groups(baton, tmp_path):
    created = aws(baton, tmp_path, "create-group", "--group-name", "cli-slow",
                  "--filter-expression", "duration > 2",
                  "--insights-configuration", "InsightsEnabled=true,NotificationsEnabled=false")["Group"]
    assert created["GroupName"] == "cli-slow" and ARN.match(created["GroupARN"]), created
    assert created["InsightsConfiguration"] == {"InsightsEnabled": True, "NotificationsEnabled": False}
    aws(baton, tmp_path, "create-group", "--group-name", "cli-all")
    listed = aws(baton, tmp_path, "get-groups")["Groups"]
    assert [g["GroupName"] for g in listed] == ["cli-all", "cli-slow"]
    assert listed[1] == created
