"""The incident run's loop (flows/incident_loop.py) against an in-memory incident and cluster: each decided step
runs, lands on the timeline, and the next decision reads it back. The real-lab incident tests prove the steps
themselves; these prove the wiring, including what happens between steps (a kill switch, a flap, no end)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cassandra_recovery.controls.killswitch import AutomationStopped, Switch
from cassandra_recovery.logic.incident_states import ALLOWED, IncidentState
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from flows import incident_loop as loop
from tests import faults as F

pytestmark = pytest.mark.area("incident")

ADDRESSES = {"node1": "127.0.0.2", "node2": "127.0.0.3", "node3": "127.0.0.4"}
N2, N3 = ADDRESSES["node2"], ADDRESSES["node3"]


@dataclass
class FakeIncident:
    """The incident store and the cluster as the loop's tasks and phase flows see them."""

    state: str = "assessing"
    plan: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # addresses the client cannot reach
    stop: dict[str, Any] | None = None  # the kill switch
    on_step: dict[str, Any] = field(default_factory=dict)  # event kind -> what happens right after it

    def add(self, kind: str, data: dict[str, Any]) -> None:
        last = datetime.fromisoformat(self.events[-1]["at"]) if self.events else datetime.now(UTC)
        at = max(datetime.now(UTC), last + timedelta(milliseconds=1))
        self.events.append({"seq": len(self.events) + 1, "at": at.isoformat(), "kind": kind, "data": data})
        if (then := self.on_step.pop(kind, None)) is not None:
            then(self)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    def steps(self) -> list[str]:
        return [e["data"]["step"] for e in self.events if e["kind"] == "runbook_step"]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> FakeIncident:
    inc = FakeIncident()
    inc.add("opened", {"source": "detector", "nodes": ["node3"]})
    inc.down.add(N3)

    def move(incident_id: str, old: str, new: str, lease: Any, data: dict[str, Any]) -> None:
        assert inc.state == old and IncidentState(new) in ALLOWED[IncidentState(old)], (inc.state, old, new)
        inc.state = new
        inc.add("transition", {"from": old, "to": new, "data": data})

    def assess(cluster_id: str, detected: Any = None, outage_started: Any = None, reported_down: Any = None) -> Any:
        targets = sorted({ADDRESSES.get(n, n) for n in reported_down or []})
        return {"action": "wait_for_hints" if targets else "no_action", "targets": targets, "down": sorted(inc.down)}

    def store_plan(incident_id: str, plan: dict[str, Any], lease: Any) -> None:
        inc.plan = plan
        inc.add("plan_set", {"plan": plan})

    def recover(cluster_id: str, incident_id: str, plan: dict[str, Any], **kw: Any) -> dict[str, Any]:
        hints = {"state": "drained", "targets": plan["targets"], "elapsed_s": 1}
        inc.add("hints_drained", hints)
        return {"targets": plan["targets"], "hints": hints, "steps": [f"hints to {plan['targets']}"]}

    def wait_until_up(cluster_id: str, targets: list[str], timeout_s: float) -> dict[str, Any]:
        inc.down -= set(targets)  # they come back
        return {"up": True, "waited_s": 1}

    def verify(cluster_id: str, **kw: Any) -> dict[str, Any]:
        inc.add("verification_started", {"pass": "initial"})
        inc.add("verified", {"pass": "initial", "verdict": "converged"})
        return {"converged": True, "verdict": "converged", "passes": [{"verdict": "converged"}]}

    def record(incident_id: str, kind: str, data: dict[str, Any], lease: Any) -> None:
        inc.add(kind, data)

    follow_up = {"scheduled": True, "at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    fakes: dict[str, Any] = {
        "get_run_logger": lambda: logging.getLogger("test"),
        "get_incident": lambda incident_id: {"state": inc.state, "plan": inc.plan},
        "incident_events": lambda incident_id: list(inc.events),
        "_move": move,
        "record_event": record,
        "automation_level": lambda cluster_id: "act",
        "automation_stopped": lambda cluster_id: inc.stop,
        "probe_nodes": lambda cluster_id: {a: {"ok": a not in inc.down} for a in ADDRESSES.values()},
        "detect": lambda cluster_id: {"down": sorted(inc.down), "nodes": {}},
        "assess": assess,
        "store_plan": store_plan,
        "mitigation_on": lambda incident_id: mitigation_in_force(inc.events),
        "mitigate": lambda c, i, reason, lease: inc.add("mitigated", {"policy": "degraded", "read_consistency": "ONE"}),
        "lift_mitigation": lambda c, i, reason, lease: inc.add("mitigation_lifted", {"reason": reason}),
        "restore_normal": lambda c, i, evidence, lease: inc.add("policy_restored", {}) or {"policy": "normal"},
        "wait_until_up": wait_until_up,
        "recover": recover,
        "slack_thread": lambda *a, **kw: {"posted": False},
        "slack_reply": lambda *a, **kw: {"posted": False},
        "_progress": lambda incident_id: None,
        "_postmortem": lambda run: inc.add("postmortem_written", {}),
        "verify": verify,
        "schedule_follow_up": lambda c, i, after_s, lease: (
            inc.add("follow_up_scheduled", {"at": follow_up["at"]}) or follow_up
        ),
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(loop, name, fake)
    return inc


def _run(follow_up_s: float = 86400.0) -> loop.IncidentRun:
    return loop.IncidentRun(
        cluster_id="lab",
        incident_id="inc-1",
        lease=object(),
        trigger={"source": "detector", "nodes": ["node3"]},
        outage_started=datetime.now(UTC).isoformat(),
        heal_timeout_s=900.0,
        approval_timeout_s=3600.0,
        follow_up_s=follow_up_s,
        addresses=ADDRESSES,
    )


def test_a_frozen_node_is_mitigated_first_then_assessed_replayed_verified_and_monitored(world: FakeIncident) -> None:
    state = loop.run_runbook(_run())
    assert state is IncidentState.MONITORING
    assert world.steps() == [
        "mitigate",
        "assess",
        "wait_for_heal",
        "watch_hints",
        "verify",
        "restore_normal",
        "schedule_follow_up",
        "nothing",
    ]
    moves = [e["data"]["to"] for e in world.events if e["kind"] == "transition"]
    assert moves == ["mitigating", "recovering", "verifying", "monitoring"]  # recovery under the mitigation
    assert world.kinds().index("mitigated") < world.kinds().index("plan_set")


def test_the_kill_switch_set_while_the_node_is_away_stops_the_replay_and_pages_with_the_mitigation_kept(
    world: FakeIncident,
) -> None:
    world.on_step["healed"] = lambda inc: setattr(inc, "stop", {"set_by": "alice", "reason": "vendor upgrade"})
    state = loop.run_runbook(_run())
    assert state is IncidentState.ESCALATED
    assert world.steps()[-1] == "escalate" and "hints_drained" not in world.kinds()
    (escalation,) = [
        e["data"]["data"] for e in world.events if e["kind"] == "transition" and e["data"]["to"] == "escalated"
    ]
    assert escalation["reason"].startswith("automation stopped (for lab by alice: vendor upgrade): watch_hints not run")
    assert escalation["kill_switch"] == {"set_by": "alice", "reason": "vendor upgrade"}
    assert mitigation_in_force(world.events) is not None  # the degraded policy stays for the person


@pytest.mark.fault(F.KILL_SWITCH_SET)
def test_an_action_the_kill_switch_cancels_in_flight_stops_the_run_which_says_so_and_escalates(
    world: FakeIncident, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = Switch("lab", True, "vendor upgrade", "alice@host", datetime.now(UTC))

    def recover(cluster_id: str, incident_id: str, plan: dict[str, Any], **kw: Any) -> dict[str, Any]:
        raise AutomationStopped(switch, "repair of ks (0,10]", cancelled=True)  # set after the step was decided

    monkeypatch.setattr(loop, "recover", recover)
    state = loop.run_runbook(_run())
    assert state is IncidentState.ESCALATED
    (stopped,) = [e["data"] for e in world.events if e["kind"] == "automation_stopped"]
    assert (stopped["action"], stopped["cancelled"], stopped["set_by"]) == ("repair of ks (0,10]", True, "alice@host")
    (escalation,) = [
        e["data"]["data"] for e in world.events if e["kind"] == "transition" and e["data"]["to"] == "escalated"
    ]
    assert "repair of ks (0,10] cancelled in flight" in escalation["reason"] and escalation["kill_switch"] is True
    assert world.kinds()[-1] == "postmortem_written" and mitigation_in_force(world.events) is not None


def test_a_node_reported_down_while_the_verification_runs_is_reassessed_replayed_and_verified_again(
    world: FakeIncident,
) -> None:
    def flap(inc: FakeIncident) -> None:
        inc.add("joined", {"source": "detector", "nodes": ["node2"]})

    world.on_step["verification_started"] = flap
    state = loop.run_runbook(_run(follow_up_s=0))
    assert state is IncidentState.RESOLVED
    drained = [e["data"]["targets"] for e in world.events if e["kind"] == "hints_drained"]
    assert drained == [[N3], [N2]]
    verified = [i for i, e in enumerate(world.events) if e["kind"] == "verified"]
    replayed = max(i for i, e in enumerate(world.events) if e["kind"] == "hints_drained")
    assert len(verified) == 2 and verified[-1] > replayed
    plans = [e["data"]["plan"]["targets"] for e in world.events if e["kind"] == "plan_set"]
    assert plans == [[N3], [N2]]  # node3 was remedied: the second assessment is node2's alone


def test_a_runbook_that_never_settles_is_handed_to_a_person(world: FakeIncident) -> None:
    def again(inc: FakeIncident) -> None:  # every verification meets a new trigger naming node2
        inc.add("joined", {"source": "detector", "nodes": ["node2"]})
        inc.on_step["verification_started"] = again

    world.on_step["verification_started"] = again
    state = loop.run_runbook(_run(follow_up_s=0))
    assert state is IncidentState.ESCALATED
    assert len(world.steps()) == loop.MAX_STEPS
    last = [e["data"]["data"] for e in world.events if e["kind"] == "transition"][-1]
    assert last["reason"] == f"the runbook did not settle after {loop.MAX_STEPS} steps in one run: a person decides"


def test_an_alert_confirming_the_node_the_plan_covers_is_not_assessed_again_but_a_new_node_is(
    world: FakeIncident,
) -> None:
    """Alertmanager's alert for node3 lands after the detector's plan for node3: nothing new, no second plan.
    A trigger naming node2 (not in the plan) is assessed."""
    world.on_step["plan_set"] = lambda inc: inc.add("joined", {"source": "alert:alertmanager", "nodes": ["node3"]})
    assert loop.run_runbook(_run(follow_up_s=0)) is IncidentState.RESOLVED
    assert [e["data"]["plan"]["targets"] for e in world.events if e["kind"] == "plan_set"] == [[N3]]

    world.events.clear()
    world.state, world.plan, world.down = "assessing", None, {N3}
    world.add("opened", {"source": "detector", "nodes": ["node3"]})
    world.on_step["plan_set"] = lambda inc: inc.add("joined", {"source": "alert:alertmanager", "nodes": ["node2"]})
    assert loop.run_runbook(_run(follow_up_s=0)) is IncidentState.RESOLVED
    plans = [e["data"]["plan"]["targets"] for e in world.events if e["kind"] == "plan_set"]
    assert plans == [[N3], [N2, N3]]  # node3 still owed its replay when node2 was reported: both assessed
