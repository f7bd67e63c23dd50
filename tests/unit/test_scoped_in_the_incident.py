"""Where the outage-scoped proof enters the incident: its window starts at the earliest sighting of the outage
(before confirmation), only when a follow-up will read the whole table; a follow-up that finds what the incident's
pass did not see never closes the incident."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cassandra_recovery.logic.incident_facts import TimelineView
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook_model import IncidentFacts, NodeHistory, RunFacts, RunStatus
from flows.incident_loop import IncidentRun, _outage_seen
from flows.verify import _missed_by_the_incident_pass

pytestmark = pytest.mark.area("verification")

OPENED = "2026-12-07T12:00:30+00:00"
STARTS_AT = "2026-12-07T12:00:00+00:00"  # the alert's startsAt: the outage began before it was confirmed


def _run(follow_up_s: float) -> IncidentRun:
    trigger = {"source": "alertmanager", "nodes": ["node3"], "starts_at": STARTS_AT}
    return IncidentRun("lab", "inc-1", None, trigger, OPENED, 600, 600, follow_up_s, {"node3": "127.0.0.4"})


def _view(*down_since: datetime) -> TimelineView:
    nodes = tuple(NodeHistory(f"127.0.0.{4 + i}", t, t) for i, t in enumerate(down_since))
    facts = IncidentFacts(IncidentState.VERIFYING, RunFacts(RunStatus.SELF), nodes)
    return TimelineView(facts, None, frozenset())


def test_the_window_starts_at_the_earliest_sighting_when_a_follow_up_will_read_everything() -> None:
    assert _outage_seen(_run(86400), _view(datetime(2026, 12, 7, 12, 0, 31, tzinfo=UTC))) == STARTS_AT
    earlier = datetime(2026, 12, 7, 11, 59, 0, tzinfo=UTC)  # a node seen down before the alert's start
    assert _outage_seen(_run(86400), _view(earlier)) == earlier.isoformat()


def test_no_monitoring_period_means_the_full_pass() -> None:
    assert _outage_seen(_run(0), _view(datetime(2026, 12, 7, 12, 0, 31, tzinfo=UTC))) is None


def _ver(first: str, converged: bool, keys: int = 0) -> dict[str, Any]:
    passes = [{"pass": "follow_up", "verdict": first, "keys": {"missing": keys, "extra": 0, "different": 0}}]
    return {"converged": converged, "passes": passes}


def test_a_follow_up_that_found_differences_does_not_close_even_once_fixed() -> None:
    assert _missed_by_the_incident_pass(_ver("converged", True)) == ""
    why = _missed_by_the_incident_pass(_ver("diverged", True, keys=3))
    assert "3 differing key(s)" in why and "fixed and verified since" in why
    assert "not fixed" in _missed_by_the_incident_pass(_ver("diverged", False, keys=1))
