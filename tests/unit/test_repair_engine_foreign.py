"""The engine never starts a segment beside a repair started elsewhere (Reaper, cron, an operator): it waits, then
escalates naming it; its report lists the foreign repairs it saw. Nodes show the system_views rows captured while a
repair started by hand with nodetool ran (tests/fixtures/system_views)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from cassandra_recovery.assessment.foreign import foreign_repairs_now
from cassandra_recovery.clients.repair_activity import RepairActivity
from cassandra_recovery.errors import CommandError, NodeUnreachableError
from cassandra_recovery.logic.foreign_repairs import OwnRepairs
from cassandra_recovery.logic.segments import Segment, SegmentState
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.settings import ClusterConfig, NodeAccess
from tests import faults as F
from tests.unit.fixtures import load_fixture
from tests.unit.test_foreign_repairs import FULL_ID, INC_ID, N1, N2, views
from tests.unit.test_repair_engine_retries import MemoryCheckpoints, ScriptedNodetool

pytestmark = pytest.mark.area("repair")

SEGS = [Segment("ks", i * 10, i * 10 + 10, (N1, N2), N1) for i in range(2)]
CLUSTER = ClusterConfig(
    id="unit",
    contact_points=[N1],
    local_datacenter="dc1",
    nodes=[
        NodeAccess(name="node1", address=N1, jmx_host="127.0.0.1", jmx_port=10199),
        NodeAccess(name="node2", address=N2, jmx_host="127.0.0.1", jmx_port=10299),
    ],
)


class CapturedViews:
    """Each node answers its system_views repair tables from a captured file; `scenes` move on per observation of
    node1 (the last one repeats)."""

    def __init__(self, *scenes: dict[str, str]):
        self.scenes, self.looks = scenes, 0

    def _doc(self, address: str) -> dict[str, Any]:
        scene = self.scenes[min(max(self.looks - 1, 0), len(self.scenes) - 1)]  # node1 is read first
        return views(scene[address]) if address in scene else {}

    def repairs(self, address: str) -> list[dict[str, Any]]:
        if address == N1:
            self.looks += 1
        return list(self._doc(address).get("repairs", []))

    def execute_on(self, address: str, query: str) -> list[dict[str, Any]]:
        return list(self._doc(address).get(query.rsplit(".", 1)[1], []))


RUNNING = {N1: "full_running_node1", N2: "full_running_node2"}
IDLE = {N1: "full_done_node1", N2: "idle_node1"}


def _engine(view: CapturedViews, nt: ScriptedNodetool, wait_s: float) -> tuple[RepairEngine, list[str]]:
    said: list[str] = []
    cfg = EngineConfig(max_attempts=1, inflight_wait_s=wait_s, poll_s=0)
    engine = RepairEngine(CLUSTER, view, MemoryCheckpoints(), cfg, nodetool=nt, progress=said.append)  # type: ignore[arg-type]
    return engine, said


@pytest.mark.fault(F.FOREIGN_REPAIR_RUNNING, F.REPAIR_SEGMENT_STUCK)
def test_a_foreign_repair_that_never_ends_escalates_naming_it_and_nothing_starts() -> None:
    nt = ScriptedNodetool(["repair_full_ok"])
    engine, _ = _engine(CapturedViews(RUNNING), nt, wait_s=0)
    rep = engine.run("k", SEGS)
    assert rep.escalated and rep.ran == 0 and nt.calls == []  # never collided with
    assert rep.failed == [SEGS[0].key]
    (reason,) = rep.reasons
    assert "still repairing" in reason and "not started" in reason and "started outside this tool" in reason
    assert FULL_ID in reason and "coordinator 127.0.0.32" in reason and "keyspace foreign" in reason
    assert [(d["id"], d["kind"], d["coordinator"]) for d in rep.foreign_repairs] == [(FULL_ID, "full", N1)]
    assert rep.as_dict()["foreign_repairs"][0]["described"].startswith(f"full repair {FULL_ID}")


@pytest.mark.fault(F.FOREIGN_REPAIR_RUNNING)
def test_a_foreign_repair_that_ends_is_waited_for_then_the_segments_run() -> None:
    nt = ScriptedNodetool(["repair_full_ok"])
    engine, said = _engine(CapturedViews(RUNNING, RUNNING, IDLE), nt, wait_s=3600)
    rep = engine.run("k", SEGS)
    assert not rep.escalated and rep.ran == 2 and len(nt.calls) == 2
    assert [d["id"] for d in rep.foreign_repairs] == [FULL_ID]  # seen twice, reported once
    assert any("waiting" in m and FULL_ID in m for m in said)


class OwnSegmentStillRunning(CapturedViews):
    """The first segment's own repair (its exact range) is still in the coordinator's table, then ends."""

    def repairs(self, address: str) -> list[dict[str, Any]]:
        self.looks += address == N1
        if address != N1 or self.looks > 1:
            return []
        row = {"id": "ours", "completed": False, "keyspace_name": "ks", "options_ranges": [SEGS[0].range_text]}
        return [row | {"participants": [f"/{N2}:7000"], "type": "full"}]

    def execute_on(self, address: str, query: str) -> list[dict[str, Any]]:
        return []


def test_the_tools_own_repair_is_waited_for_but_not_reported_as_foreign() -> None:
    nt = ScriptedNodetool(["repair_full_ok"])
    engine, said = _engine(OwnSegmentStillRunning(), nt, wait_s=3600)
    rep = engine.run("k", SEGS)
    assert rep.ran == 2 and rep.foreign_repairs == []
    assert any("own repair" in m for m in said)


class Unreachable(CapturedViews):
    def repairs(self, address: str) -> list[dict[str, Any]]:
        raise NodeUnreachableError(f"query on {address} failed: timed out")

    def execute_on(self, address: str, query: str) -> list[dict[str, Any]]:
        raise NodeUnreachableError(f"query on {address} failed: timed out")


def test_unreadable_replicas_do_not_hold_the_segment_back() -> None:
    """The repair itself fails on an unreachable replica, and says so (issue 15 kept the same rule)."""
    nt = ScriptedNodetool(["repair_full_ok"])
    engine, _ = _engine(Unreachable(), nt, wait_s=0)
    rep = engine.run("k", SEGS)
    assert rep.ran == 2 and [r.state for r in engine.checkpoints.runs["k"]] == [SegmentState.DONE] * 2  # type: ignore[attr-defined]


class CapturedNodetool:
    """`nodetool output` from captured files per (node, verb); a verb without one fails like an unreachable JMX."""

    def __init__(self, files: dict[tuple[str, str], str]):
        self.files, self.calls = files, list[tuple[str, ...]]()

    def output(self, node: str, *args: str, timeout_s: float | None = None) -> str:
        self.calls.append((node, *args))
        if (node, args[0]) not in self.files:
            proc = subprocess.CompletedProcess(["nodetool", *args], 1, "", "nodetool: Failed to connect")
            raise CommandError(["nodetool", *args], proc.returncode, proc.stdout, proc.stderr, host=node)
        return load_fixture(self.files[(node, args[0])]).stdout


def test_the_assessments_reading_asks_nodetool_too_and_keeps_going_past_a_failed_node() -> None:
    nt = CapturedNodetool(
        {
            (N1, "repair_admin"): "repair_admin_list_incremental_node1",
            (N1, "compactionstats"): "compactionstats_validation_incremental_node1",
        }
    )
    seen = RepairActivity(CapturedViews({N1: "idle_node1"}), nt).observe([N1, N2])
    assert [n.node for n in seen] == [N1, N2]
    assert {(r.source, r.id) for r in seen[0].running} == {
        ("repair_admin", INC_ID),
        ("compactionstats", "bd9681b0-f257-11f1-a6b8-73eeeb366404"),
    }
    assert seen[0].error is None
    assert seen[1].running == () and seen[1].error is not None and "nodetool compactionstats" in seen[1].error
    assert (N2, "repair_admin", "list") in nt.calls and (N2, "compactionstats") in nt.calls


WHOLE = (Segment("foreign", -(2**63), 0, (N1, N2), N1), Segment("foreign", 0, -(2**63), (N1, N2), N1))


def test_a_segment_of_another_run_of_this_tool_is_not_foreign() -> None:
    """The captured repair covers exactly two segments that the checkpoints show in flight (a scheduled run's)."""
    view, nt = CapturedViews(RUNNING, IDLE), ScriptedNodetool(["repair_full_ok"])
    cfg = EngineConfig(max_attempts=1, inflight_wait_s=3600, poll_s=0)
    engine = RepairEngine(CLUSTER, view, MemoryCheckpoints(), cfg, nodetool=nt, progress=lambda m: None,  # type: ignore[arg-type]
                          own_elsewhere=lambda: WHOLE)  # fmt: skip
    rep = engine.run("k", SEGS)
    assert rep.ran == 2 and rep.foreign_repairs == []


def test_checkpoints_unreadable_leave_the_repair_named_foreign_and_waited_for() -> None:
    def broken() -> list[Segment]:
        raise OSError("PostgreSQL gone")

    view, nt = CapturedViews(RUNNING, IDLE), ScriptedNodetool(["repair_full_ok"])
    cfg = EngineConfig(max_attempts=1, inflight_wait_s=3600, poll_s=0)
    engine = RepairEngine(CLUSTER, view, MemoryCheckpoints(), cfg, nodetool=nt, progress=lambda m: None,  # type: ignore[arg-type]
                          own_elsewhere=broken)  # fmt: skip
    rep = engine.run("k", SEGS)
    assert rep.ran == 2 and [d["id"] for d in rep.foreign_repairs] == [FULL_ID]


def test_the_assessment_names_every_foreign_repair_once_and_leaves_the_tools_own_out() -> None:
    activity = RepairActivity(CapturedViews({N1: "incremental_running_node1", N2: "incremental_running_node2"}))
    (theirs,) = foreign_repairs_now(CLUSTER, ["node1", "node2"], activity=activity)
    assert (theirs["id"], theirs["kind"], theirs["coordinator"]) == (INC_ID, "incremental", N2)
    ours = OwnRepairs(ranges=frozenset(("foreign", s.range_text) for s in WHOLE))
    assert foreign_repairs_now(CLUSTER, ["node1", "node2"], ours, activity) == []
    assert foreign_repairs_now(CLUSTER, [], activity=activity) == []
