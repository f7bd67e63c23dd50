"""The engine's control flow with in-memory stand-ins (real captured nodetool output): retries are capped,
then the run escalates; done segments are skipped on resume. The real-cluster behaviour is in tests/cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cassandra_recovery.clients.nodetool import CommandInterrupted, _run
from cassandra_recovery.controls.killswitch import AutomationStopped, Switch
from cassandra_recovery.errors import CommandError
from cassandra_recovery.logic.segments import Segment, SegmentState
from cassandra_recovery.recovery.checkpoints import RepairRun, SegmentRecord
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.settings import ClusterConfig, NodeAccess
from tests import faults as F
from tests.unit.fixtures import load_fixture

pytestmark = pytest.mark.area("repair")

SEGS = [Segment("ks", i * 10, i * 10 + 10, ("127.0.0.2", "127.0.0.3"), "127.0.0.2") for i in range(3)]


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.runs: dict[str, list[SegmentRecord]] = {}
        self.outcome: dict[str, str] = {}

    def start_or_resume(self, key: str, cluster_id: str, kind: str, segments: list[Segment], fence: Any) -> RepairRun:
        created = key not in self.runs
        if created:
            self.runs[key] = [
                SegmentRecord(i, s, SegmentState.PENDING, 0, None, None, None, None) for i, s in enumerate(segments)
            ]
        return RepairRun(key, cluster_id, kind, created, list(self.runs[key]))

    def _set(self, key: str, seq: int, **kw: Any) -> SegmentRecord:
        rec = replace(self.runs[key][seq], **kw)
        self.runs[key][seq] = rec
        return rec

    def mark_running(self, key: str, seq: int, fence: Any) -> SegmentRecord:
        r = self.runs[key][seq]
        return self._set(key, seq, state=SegmentState.RUNNING, attempts=r.attempts + 1, started_at=datetime.now(UTC))

    def mark_done(self, key: str, seq: int, parent_id: str | None, fence: Any) -> SegmentRecord:
        return self._set(key, seq, state=SegmentState.DONE, parent_id=parent_id)

    def mark_failed(self, key: str, seq: int, error: str, final: bool, fence: Any) -> SegmentRecord:
        return self._set(key, seq, state=SegmentState.FAILED if final else SegmentState.PENDING, last_error=error)

    def finish(self, key: str, outcome: str, fence: Any) -> None:
        self.outcome[key] = outcome


class ScriptedNodetool:
    """Answers `repair` with captured outputs in order (the last one repeats); records every call."""

    def __init__(self, fixtures: list[str], hold: bool = False):
        self.fixtures, self.hold = fixtures, hold
        self.calls: list[tuple[str, ...]] = []

    def run(
        self,
        node: Any,
        *args: str,
        timeout_s: float | None = None,
        check: bool = True,
        interrupt: Callable[[], bool] | None = None,
        check_every_s: float = 5.0,
    ) -> Any:
        self.calls.append(args)
        if args[0] == "repair" and self.hold and interrupt is not None:  # a repair still running when asked
            while not interrupt():
                pass
            raise CommandInterrupted(["nodetool", *args], None, "", "", reason="interrupted")
        f = load_fixture(self.fixtures[min(len(self.calls) - 1, len(self.fixtures) - 1)])
        return subprocess.CompletedProcess(["nodetool", *args], f.exit_code, f.stdout, f.stderr)


class NoRepairsView:
    def repairs(self, address: str) -> list[dict[str, Any]]:
        return []


CLUSTER = ClusterConfig(
    id="unit",
    contact_points=["127.0.0.2"],
    local_datacenter="dc1",
    nodes=[NodeAccess(name="n1", address="127.0.0.2", jmx_host="127.0.0.1", jmx_port=7199)],
)


def _engine(nt: ScriptedNodetool, cp: MemoryCheckpoints) -> RepairEngine:
    cfg = EngineConfig(max_attempts=3, inflight_wait_s=0, poll_s=0)
    return RepairEngine(CLUSTER, NoRepairsView(), cp, cfg, nodetool=nt, progress=lambda m: None)  # type: ignore[arg-type]


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_a_segment_failing_every_attempt_escalates_after_three_and_stops_the_run() -> None:
    nt, cp = ScriptedNodetool(["repair_failed_node_down"]), MemoryCheckpoints()
    rep = _engine(nt, cp).run("k", SEGS)
    assert rep.escalated and rep.ran == 3 and rep.retries == 2 and rep.failed == [SEGS[0].key]
    assert [r.state for r in cp.runs["k"]] == [SegmentState.FAILED, SegmentState.PENDING, SegmentState.PENDING]
    assert cp.outcome["k"] == "escalated"
    # a later run of the same key does not retry a segment that was escalated
    again = _engine(nt, cp).run("k", SEGS)
    assert again.escalated and again.ran == 0 and len(nt.calls) == 3


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK, F.FLOW_RUN_CRASHED)
def test_a_failure_then_success_is_retried_and_a_resumed_run_skips_done_segments() -> None:
    nt, cp = ScriptedNodetool(["repair_failed_node_down", "repair_full_ok"]), MemoryCheckpoints()
    cp.start_or_resume("k", "unit", "full", SEGS, None)
    cp.mark_done("k", 0, "earlier", None)  # done by an interrupted run
    rep = _engine(nt, cp).run("k", SEGS)
    assert not rep.escalated and rep.resumed and rep.already_done == 1
    assert (rep.ran, rep.retries) == (3, 1)  # segment 1 twice, segment 2 once; segment 0 never again
    assert all(r.state is SegmentState.DONE for r in cp.runs["k"])
    assert all(c[:2] == ("repair", "-full") and c[-1] == "ks" for c in nt.calls)
    assert nt.calls[0][nt.calls[0].index("-st") + 1] == str(SEGS[1].start)


class SucceededInCassandra:
    """The coordinator recorded a successful repair of every segment asked about (nodetool lost the news)."""

    def repairs(self, address: str) -> list[dict[str, Any]]:
        return [
            {
                "id": f"r{i}",
                "keyspace_name": "ks",
                "options_ranges": {s.range_text},
                "completed": True,
                "status": "success",
                "state_init_timestamp": datetime.now(UTC),
                "options_preview_kind": "NONE",
                "participants": [],
            }
            for i, s in enumerate(SEGS)
        ]


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_a_failure_reported_by_nodetool_is_checked_with_cassandra_before_any_retry() -> None:
    nt, cp = ScriptedNodetool(["repair_failed_node_down"]), MemoryCheckpoints()
    cfg = EngineConfig(max_attempts=3, inflight_wait_s=0, poll_s=0)
    view = SucceededInCassandra()
    engine = RepairEngine(CLUSTER, view, cp, cfg, nodetool=nt, progress=lambda m: None)  # type: ignore[arg-type]
    rep = engine.run("k", SEGS)
    assert (rep.ran, rep.retries, rep.escalated) == (3, 0, False)  # one attempt each, none repeated
    assert [r.parent_id for r in cp.runs["k"]] == ["r0", "r1", "r2"]


class ReplicaAlwaysRepairing:
    """Someone else's repair on a replica never finishes."""

    def repairs(self, address: str) -> list[dict[str, Any]]:
        return [{"id": "theirs", "completed": False, "participants": ["/127.0.0.3:7000"]}]


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_replicas_busy_past_the_wait_escalate_the_run_instead_of_raising() -> None:
    """Issue 15: the TimeoutError of the wait for free replicas escaped the engine and failed the incident run."""
    nt, cp = ScriptedNodetool(["repair_full_ok"]), MemoryCheckpoints()
    cfg = EngineConfig(max_attempts=3, inflight_wait_s=0, poll_s=0)
    engine = RepairEngine(CLUSTER, ReplicaAlwaysRepairing(), cp, cfg, nodetool=nt, progress=lambda m: None)  # type: ignore[arg-type]
    rep = engine.run("k", SEGS)
    assert rep.escalated and rep.ran == 0 and rep.failed == [SEGS[0].key] and nt.calls == []
    assert "still repairing" in rep.reasons[0] and "not started" in rep.reasons[0]
    assert cp.outcome["k"] == "escalated"
    assert [r.state for r in cp.runs["k"]] == [SegmentState.PENDING] * 3  # never started: a later run tries again


SWITCH = Switch("unit", True, "game day", "alice@host", datetime.now(UTC))


@pytest.mark.fault(F.KILL_SWITCH_SET)
def test_the_kill_switch_set_while_a_segment_repairs_cancels_it_in_cassandra_and_stops_the_run() -> None:
    nt, cp = ScriptedNodetool(["repair_full_ok"], hold=True), MemoryCheckpoints()
    asked: list[int] = []

    def halt() -> Switch | None:  # off for three looks, then on
        asked.append(1)
        return SWITCH if len(asked) > 3 else None

    nt.hold = False
    cfg = EngineConfig(max_attempts=3, inflight_wait_s=0, poll_s=0)
    engine = RepairEngine(CLUSTER, NoRepairsView(), cp, cfg, nodetool=nt, progress=lambda m: None, halt=halt)  # type: ignore[arg-type]
    first = engine.run("k1", SEGS[:1])
    assert first.ran == 1 and not first.escalated
    nt.hold = True
    with pytest.raises(AutomationStopped) as stopped:
        engine.run("k2", SEGS)
    assert stopped.value.cancelled and stopped.value.switch.set_by == "alice@host"
    assert any("forceTerminateAllRepairSessions" in c for c in nt.calls)  # stopped inside Cassandra, not only nodetool
    recs = cp.runs["k2"]
    assert recs[0].state is SegmentState.PENDING and "automation stopped" in (recs[0].last_error or "")
    assert [r.state for r in recs[1:]] == [SegmentState.PENDING, SegmentState.PENDING] and recs[1].attempts == 0
    assert "k2" not in cp.outcome  # not finished: the run after the switch resumes it


def test_nodetool_is_killed_when_the_interrupt_says_stop_and_when_its_deadline_passes() -> None:
    looks: list[int] = []

    def stop_on_third() -> bool:
        looks.append(1)
        return len(looks) >= 3

    with pytest.raises(CommandInterrupted):
        _run(["sleep"], ["sleep", "30"], {}, 60.0, "h", stop_on_third, 0.05)
    assert len(looks) == 3
    with pytest.raises(CommandError) as late:
        _run(["sleep"], ["sleep", "30"], {}, 0.2, "h", None, 5.0)
    assert late.value.reason == "timed out" and not isinstance(late.value, CommandInterrupted)
    done = _run(["echo"], ["echo", "hi"], {}, 10.0, "h", lambda: False, 0.05)
    assert done.returncode == 0 and done.stdout == "hi\n"


@pytest.mark.fault(F.KILL_SWITCH_SET)
def test_a_switch_that_cannot_be_read_while_a_segment_repairs_is_asked_again_not_taken_as_an_error() -> None:
    nt, cp = ScriptedNodetool(["repair_full_ok"], hold=True), MemoryCheckpoints()
    looks: list[int] = []

    def halt() -> Switch | None:  # PostgreSQL away for two looks (nobody can set the switch), then the switch on
        looks.append(1)
        if len(looks) <= 2:
            raise OSError("PostgreSQL restarting")
        return SWITCH

    cfg = EngineConfig(max_attempts=3, inflight_wait_s=0, poll_s=0)
    engine = RepairEngine(CLUSTER, NoRepairsView(), cp, cfg, nodetool=nt, progress=lambda m: None, halt=halt)  # type: ignore[arg-type]
    with pytest.raises(AutomationStopped) as stopped:
        engine.run("k", SEGS[:1])
    assert stopped.value.cancelled and len(looks) == 3
