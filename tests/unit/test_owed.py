"""Nodes an incident still owes hint replay or repair, as the runbook reads them from the timeline, on timelines
captured from real lab incidents (tests/fixtures/timelines, one JSON per incident) and on variations of them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.logic.incident_facts import read_timeline
from cassandra_recovery.logic.runbook import remedied
from cassandra_recovery.logic.runbook_model import RunFacts, RunStatus

pytestmark = pytest.mark.area("incident")

TIMELINES = Path(__file__).resolve().parents[1] / "fixtures" / "timelines"
LAB = {"node1": "127.0.0.2", "node2": "127.0.0.3", "node3": "127.0.0.4"}


def owed_nodes(events: list[dict[str, Any]], addresses: dict[str, str]) -> list[str]:
    """Seen down (a trigger, a run's look, a plan) with no hint replay, repair or replacement after it."""
    view = read_timeline("assessing", events, addresses, RunFacts(RunStatus.SELF))
    return [n.node for n in view.facts.nodes if not remedied(n, frozenset())]


def _events(name: str) -> list[dict[str, Any]]:
    return json.loads((TIMELINES / f"{name}.json").read_text())["events"]  # type: ignore[no-any-return]


def _upto(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return events[: next(i for i, e in enumerate(events) if e["kind"] == kind)]


def _later(events: list[dict[str, Any]], kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event one second after the last one."""
    at = datetime.fromisoformat(events[-1]["at"]) + timedelta(seconds=1)
    return {"at": at.isoformat(), "kind": kind, "data": data}


@pytest.mark.parametrize("name", sorted(p.stem for p in TIMELINES.glob("*.json")))
def test_every_captured_incident_that_closed_owes_nothing(name: str) -> None:
    assert owed_nodes(_events(name), LAB) == []


def test_before_its_hint_replay_finished_the_frozen_node_is_owed() -> None:
    events = _events("frozen_node_mitigated_first")
    assert owed_nodes(_upto(events, "plan_set"), LAB) == ["127.0.0.4"]  # named by the trigger (node3)
    assert owed_nodes(_upto(events, "hints_drained"), LAB) == ["127.0.0.4"]  # and targeted by the plan


def test_a_node_seen_down_again_after_its_replay_is_owed_again() -> None:
    events = _events("monitored_detector_trigger_node_back")
    again = _later(events, "joined", {"source": "detector", "status": "firing", "nodes": ["node3"]})
    assert owed_nodes([*events, again], LAB) == ["127.0.0.4"]
    resolved = _later(events, "joined", {"source": "alert:grafana", "status": "resolved", "nodes": ["node3"]})
    assert owed_nodes([*events, resolved], LAB) == []  # a resolved alert reports a recovery
    seen_by_a_run = _later(events, "transition", {"from": "monitoring", "to": "assessing", "data": {"down": ["node1"]}})
    assert owed_nodes([*events, seen_by_a_run], LAB) == ["127.0.0.2"]
    probed = _later(events, "observed", {"down": ["node1"], "by": "probe"})  # a run's first look, before assessing
    assert owed_nodes([*events, probed], LAB) == ["127.0.0.2"]


def test_stalled_replay_is_no_remedy_a_repair_or_a_replacement_is() -> None:
    events = _upto(_events("frozen_node_mitigated_first"), "hints_drained")
    stalled = _later(events, "hints_drained", {"state": "stalled", "targets": ["127.0.0.4"]})
    assert owed_nodes([*events, stalled], LAB) == ["127.0.0.4"]
    repaired = _later([*events, stalled], "repaired", {"segments": 4, "escalated": False})
    assert owed_nodes([*events, stalled, repaired], LAB) == []
    escalated = {**repaired, "data": {"segments": 4, "escalated": True}}
    assert owed_nodes([*events, stalled, escalated], LAB) == ["127.0.0.4"]
    replaced = _later(events, "node_replaced", {"dead_address": "127.0.0.4", "new_address": "127.0.0.5"})
    assert owed_nodes([*events, replaced], LAB) == []


def test_names_the_cluster_does_not_know_are_left_out() -> None:
    events = [{"at": "2026-12-06T14:00:00+00:00", "kind": "opened", "data": {"nodes": ["cass-9.example", "node2"]}}]
    assert owed_nodes(events, LAB) == ["127.0.0.3"]
