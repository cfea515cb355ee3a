"""Datagrams captured from the real clients (tests/e2e/data/udp, byte for byte)
replayed to `baton serve`: every document comes back through BatchGetTraces."""
import pytest

from helpers import DATA_DIR, child_ids, entities_by_id, read_datagram_file, strip_children, walk

# The API and what it reads from the store: on both stores (conftest.py).
pytestmark = pytest.mark.stores("sqlite", "clickhouse")

SCENARIOS = ["xray_sdk_basic", "xray_sdk_streaming", "powertools_lambda"]


def load(scenario):
    files = sorted((DATA_DIR / "udp" / scenario).glob("*.txt"))
    assert files, f"no fixture datagrams for {scenario}"
    return [read_datagram_file(f) for f in files]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replayed_fixtures_come_back_complete(baton, scenario):
    datagrams = load(scenario)
    baton.send_datagrams(raw for raw, _ in datagrams)

    # What was sent: every entity (documents and their embedded subsegments), by trace.
    sent: dict[str, dict[str, dict]] = {}
    for _, doc in datagrams:
        for entity, _, _ in walk(doc):
            entity_trace = entity.get("trace_id", doc["trace_id"])
            assert entity_trace == doc["trace_id"]
            assert entity["id"] not in sent.setdefault(entity_trace, {}), f"duplicate id {entity['id']} in fixture"
            sent[entity_trace][entity["id"]] = entity
    all_ids = {eid for entities in sent.values() for eid in entities}
    traces = baton.wait_for_traces(sent, timeout=5, entity_ids=all_ids)

    for trace_id, entities in sent.items():
        trace = traces[trace_id]
        got = entities_by_id(trace)
        assert set(got) == set(entities), f"{trace_id}: extra {set(got) - set(entities)}, " \
                                          f"missing {set(entities) - set(got)}"
        for eid, original in entities.items():
            returned, parent, _ = got[eid]
            # Every field as sent (the merged-in children aside).
            assert strip_children(returned) == strip_children(original), eid
            # Children sent embedded stay; streamed ones are merged under their parent_id.
            assert set(child_ids(original)) <= set(child_ids(returned)), eid
            if original.get("type") == "subsegment" and original.get("parent_id") in entities:
                assert parent is not None and parent["id"] == original["parent_id"], \
                    f"{eid} must be merged under {original['parent_id']}"
        # The entries: segments, and subsegments whose parent never arrived (the Lambda facade).
        expected_entries = {eid for eid, e in entities.items()
                            if e.get("type") != "subsegment" or e.get("parent_id") not in entities}
        # (embedded subsegments of a document are never entries)
        embedded = {c for e in entities.values() for c in child_ids(e)}
        expected_entries -= embedded
        assert sorted(s["Id"] for s in trace["Segments"]) == sorted(expected_entries), trace_id

    accepted = baton.metrics().get_value("baton_documents_accepted_total", protocol="udp")
    assert accepted == len(datagrams)
