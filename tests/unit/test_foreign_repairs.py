"""Whose repair keeps a replica busy (logic/foreign_repairs.py), from the system_views rows, `repair_admin list` and
`compactionstats` captured while repairs started by hand with nodetool ran on a 2-node 5.0 lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.logic.foreign_repairs import (
    Busy,
    NodeRepairs,
    OwnRepairs,
    foreign_anywhere,
    from_compactionstats,
    from_repair_admin,
    from_views,
    replicas_verdict,
)
from cassandra_recovery.parsers.compactionstats import parse_compactionstats
from cassandra_recovery.parsers.repair_admin import parse_repair_admin_list
from tests import faults as F
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("repair")

VIEWS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "system_views"
N1, N2 = "127.0.0.32", "127.0.0.33"
FULL_ID = "9c7f48e0-f257-11f1-a6b8-73eeeb366404"  # nodetool repair -full on node1
INC_ID = "bd8e6b60-f257-11f1-ad98-23db90c71a3c"  # nodetool repair (incremental) on node2
WHOLE_RING = ("(-9223372036854775808,0]", "(0,-9223372036854775808]")


def views(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VIEWS_DIR / f"{name}.json").read_text())
    assert doc["source"].startswith("Cassandra 5.0")
    return doc


def seen(node: str, name: str) -> NodeRepairs:
    return NodeRepairs(node, tuple(from_views(node, views(name))))


@pytest.mark.fault(F.FOREIGN_REPAIR_RUNNING)
def test_a_full_repair_started_by_hand_is_foreign_and_named() -> None:
    observed = [seen(N1, "full_running_node1"), seen(N2, "full_running_node2")]
    verdict = replicas_verdict(observed, (N1, N2), OwnRepairs())
    assert verdict.busy is Busy.FOREIGN and verdict.nodes == (N1, N2)
    (theirs,) = verdict.foreign  # coordinator row, participation and validations: one repair
    assert (theirs.id, theirs.kind, theirs.coordinator, theirs.keyspace) == (FULL_ID, "full", N1, "foreign")
    assert set(theirs.ranges) == set(WHOLE_RING) and theirs.source == "system_views.repairs"
    assert theirs.started_at is not None and theirs.started_at.tzinfo is not None
    text = verdict.reason()
    assert "started outside this tool" in text and FULL_ID in text and "coordinator 127.0.0.32" in text
    assert "keyspace foreign" in text and "full repair" in text


def test_the_participant_alone_still_sees_the_foreign_repair() -> None:
    """Node2 does not coordinate it: repair_participates and repair_validations name it there."""
    verdict = replicas_verdict([seen(N2, "full_running_node2")], (N2,), OwnRepairs())
    assert verdict.busy is Busy.FOREIGN
    assert [(r.id, r.coordinator) for r in verdict.foreign] == [(FULL_ID, N1)]


@pytest.mark.parametrize(
    "own",
    [OwnRepairs(ids=frozenset({FULL_ID})), OwnRepairs(ranges=frozenset(("foreign", r) for r in WHOLE_RING))],
    ids=["by id", "by the segment's exact ranges"],
)
def test_the_tools_own_repair_is_not_foreign(own: OwnRepairs) -> None:
    verdict = replicas_verdict([seen(N1, "full_running_node1"), seen(N2, "full_running_node2")], (N1, N2), own)
    assert verdict.busy is Busy.OURS and verdict.foreign == ()
    assert "own repair" in verdict.reason()


def test_a_segment_of_only_part_of_those_ranges_does_not_make_it_ours() -> None:
    own = OwnRepairs(ranges=frozenset({("foreign", WHOLE_RING[0])}))
    verdict = replicas_verdict([seen(N1, "full_running_node1")], (N1, N2), own)
    assert verdict.busy is Busy.FOREIGN


@pytest.mark.parametrize("name", ["idle_node1", "full_done_node1", "incremental_done_node2"])
def test_completed_repairs_leave_the_replicas_free(name: str) -> None:
    verdict = replicas_verdict([seen(N1, name)], (N1, N2), OwnRepairs())
    assert verdict.busy is Busy.FREE and verdict.reason() == "replicas free"


@pytest.mark.fault(F.FOREIGN_REPAIR_RUNNING)
def test_an_incremental_session_seen_three_ways_on_a_participant_is_one_foreign_repair() -> None:
    """Node1 takes part in node2's incremental repair: the views, repair_admin and a Validation task."""
    node1 = [
        *from_views(N1, views("incremental_running_node1")),
        *from_repair_admin(N1, parse_repair_admin_list(load_fixture("repair_admin_list_incremental_node1").stdout)),
        *from_compactionstats(
            N1, parse_compactionstats(load_fixture("compactionstats_validation_incremental_node1").stdout)
        ),
    ]
    verdict = replicas_verdict([NodeRepairs(N1, tuple(node1))], (N1,), OwnRepairs())
    assert verdict.busy is Busy.FOREIGN
    (theirs,) = verdict.foreign
    assert (theirs.id, theirs.kind, theirs.coordinator, theirs.keyspace) == (INC_ID, "incremental", N2, "foreign")
    assert N2 in theirs.nodes  # the coordinator is busy too, though only node1 was read


def test_the_coordinator_of_an_incremental_repair_names_its_kind() -> None:
    (theirs,) = foreign_anywhere([seen(N2, "incremental_running_node2")])
    assert (theirs.id, theirs.kind, theirs.coordinator) == (INC_ID, "incremental", N2)


def test_a_validation_no_repair_table_explains_is_foreign() -> None:
    """Where the views could not be read (or say nothing), a merkle tree being built still means a repair."""
    stats = parse_compactionstats(load_fixture("compactionstats_validation_incremental_node1").stdout)
    verdict = replicas_verdict([NodeRepairs(N1, tuple(from_compactionstats(N1, stats)))], (N1, N2), OwnRepairs())
    assert verdict.busy is Busy.FOREIGN and verdict.nodes == (N1,)
    assert verdict.foreign[0].kind == "validation" and verdict.foreign[0].keyspace == "foreign"


def test_a_repair_among_other_nodes_leaves_these_replicas_free() -> None:
    verdict = replicas_verdict([seen(N1, "full_running_node1")], ("127.0.0.40", "127.0.0.41"), OwnRepairs())
    assert verdict.busy is Busy.FREE


def test_an_unreadable_replica_is_listed_without_making_the_replicas_busy() -> None:
    observed = [NodeRepairs(N1, error="unreachable: timed out"), seen(N2, "idle_node1")]
    verdict = replicas_verdict(observed, (N1, N2), OwnRepairs())
    assert verdict.busy is Busy.FREE and verdict.unread == (N1,)


def test_a_running_repair_becomes_a_json_document_naming_it() -> None:
    (theirs,) = foreign_anywhere([seen(N1, "full_running_node1")])
    doc = theirs.as_doc()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["id"] == FULL_ID and doc["described"] == theirs.describe() and isinstance(doc["started_at"], str)
