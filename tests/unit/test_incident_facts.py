"""The runbook's facts read from incident timelines captured on the real lab (tests/fixtures/timelines)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.logic.assessment import PlanAction
from cassandra_recovery.logic.incident_facts import read_timeline
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook_model import RunFacts, RunStatus, Step, Verdict

pytestmark = pytest.mark.area("incident")

TIMELINES = Path(__file__).resolve().parents[1] / "fixtures" / "timelines"
ADDRESSES = {"node1": "127.0.0.2", "node2": "127.0.0.3", "node3": "127.0.0.4"}
SELF = RunFacts(RunStatus.SELF)


def _events(name: str) -> list[dict[str, Any]]:
    return json.loads((TIMELINES / f"{name}.json").read_text())["events"]  # type: ignore[no-any-return]


def _at(events: list[dict[str, Any]], seq: int) -> datetime:
    return datetime.fromisoformat(next(e["at"] for e in events if e["seq"] == seq))


def _upto(events: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    return [e for e in events if e["seq"] < seq]


def test_a_frozen_node_incident_reads_as_seen_down_mitigated_replayed_and_verified() -> None:
    events = _events("frozen_node_mitigated_first")
    before_plan = read_timeline("assessing", _upto(events, 144), ADDRESSES, SELF)
    (n3,) = before_plan.facts.nodes
    assert (n3.node, n3.reported_by_trigger, n3.down_since) == ("127.0.0.4", True, _at(events, 139))
    assert before_plan.facts.mitigated and before_plan.plan is None and before_plan.down_now == {"127.0.0.4"}
    healed = read_timeline("recovering", _upto(events, 149), ADDRESSES, SELF)
    assert healed.down_now == frozenset() and healed.plan is not None
    assert (healed.plan.action, healed.plan.targets) == (PlanAction.WAIT_FOR_HINTS, ("127.0.0.4",))
    end = read_timeline("resolved", events, ADDRESSES, SELF).facts
    assert end.state is IncidentState.RESOLVED and not end.mitigated and not end.paged
    assert end.nodes[0].hints_watched_at == _at(events, 149) > end.nodes[0].last_seen_down
    assert end.verification is not None and (end.verification.at, end.verification.verdict) == (
        _at(events, 153),
        Verdict.CONVERGED,
    )


def test_a_monitored_incident_re_opened_by_a_manual_trigger_reads_as_re_opened() -> None:
    events = _events("monitored_reverify_nothing_down")
    facts = read_timeline("verifying", _upto(events, 173), ADDRESSES, SELF).facts
    assert facts.reopened_at == _at(events, 164)  # the trigger that re-opened it, not the run's transition
    assert facts.all_hints_watched_at == _at(events, 170)  # hints to every node watched to the end
    assert facts.nodes == () and facts.last_trigger_at == _at(events, 164)


def test_an_open_plan_approval_is_pending_until_decided() -> None:
    events = _events("propose_approved")
    waiting = read_timeline("assessing", _upto(events, 222), ADDRESSES, RunFacts(RunStatus.SUSPENDED)).facts
    assert waiting.approval is not None and waiting.approval.step is Step.MITIGATE
    assert waiting.approval.deadline == datetime.fromisoformat("2026-12-06T14:40:31.159653+00:00")
    assert read_timeline("assessing", _upto(events, 224), ADDRESSES, SELF).facts.approval is None


def test_an_escalation_is_paged_until_handed_back_and_retries_are_counted() -> None:
    t = "2026-12-06T10:00:{:02d}+00:00"
    events = [
        {"seq": 1, "at": t.format(0), "kind": "opened", "data": {"nodes": ["node9", "127.0.0.3"]}},
        {"seq": 2, "at": t.format(1), "kind": "run_retried", "data": {"failures": 2, "reason": "PostgreSQL lost"}},
        {"seq": 3, "at": t.format(2), "kind": "transition", "data": {"from": "assessing", "to": "escalated"}},
    ]
    facts = read_timeline("escalated", events, ADDRESSES, SELF).facts
    assert facts.paged and (facts.run.failures, facts.run.last_failure) == (2, "PostgreSQL lost")
    assert [n.node for n in facts.nodes] == ["127.0.0.3"]  # a name the cluster does not know is left out
    handed_back = {"from": "escalated", "to": "assessing"}
    back = [*events, {"seq": 4, "at": t.format(3), "kind": "transition", "data": handed_back}]
    assert not read_timeline("assessing", back, ADDRESSES, SELF).facts.paged


def _ev(seq: int, second: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "at": f"2026-12-06T15:00:{second:02d}+00:00", "kind": kind, "data": data}


def test_a_dead_node_replaced_after_approval_is_remedied_and_no_longer_down_so_the_runbook_verifies() -> None:
    from cassandra_recovery.logic.runbook import decide
    from cassandra_recovery.logic.runbook_model import Controls, Observation

    plan = {
        "action": "repair",
        "targets": ["127.0.0.4"],
        "classifications": [{"node": "127.0.0.4", "kind": "node_failure"}],
    }
    events = [
        _ev(1, 0, "opened", nodes=["node3"]),
        _ev(2, 1, "plan_set", plan=plan),
        _ev(3, 40, "approval_requested", action="replace", nodes=["127.0.0.4"], deadline="2026-12-06T16:00:00+00:00"),
        _ev(4, 50, "approval_decided", approved=True, approver="alice"),
        _ev(5, 55, "node_replaced", dead_address="127.0.0.4", new_address="127.0.0.5"),
    ]
    before = read_timeline("recovering", events[:4], ADDRESSES, SELF)
    assert before.down_now == {"127.0.0.4"}
    view = read_timeline("recovering", events, ADDRESSES, SELF)
    assert view.down_now == frozenset() and view.facts.nodes[0].repaired_at is not None
    now = datetime.fromisoformat("2026-12-06T15:01:00+00:00")
    decision = decide(view.facts, Observation(now, view.down_now, view.plan), Controls(heal_timeout_s=30))
    assert decision.step is Step.VERIFY, decision  # never a second replacement of the node just replaced


def test_a_runs_own_look_before_it_assessed_counts_as_seen_down() -> None:
    probe = [_ev(1, 0, "opened", source="manual"), _ev(2, 1, "observed", down=["node1"], by="probe")]
    view = read_timeline("assessing", probe, ADDRESSES, SELF)
    assert [n.node for n in view.facts.nodes] == ["127.0.0.2"] and view.down_now == {"127.0.0.2"}
    detection = [*probe, _ev(3, 9, "observed", down=["node2"], by="detection")]
    view = read_timeline("assessing", detection, ADDRESSES, SELF)  # a detection is the whole view: node1 answers
    assert [n.node for n in view.facts.nodes] == ["127.0.0.2", "127.0.0.3"] and view.down_now == {"127.0.0.3"}
