"""The incident launcher shared by the detector and the receiver: what it starts, and when it mitigates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.launch import IncidentLauncher
from cassandra_recovery.logic.incident_states import IncidentState as S
from tests import faults as F

pytestmark = pytest.mark.area("incident")


class _Incident:
    def __init__(self, id: str, state: S) -> None:
        self.id, self.state = id, state


class _Incidents:
    """Opens the first call's incident, joins it after (in `state`)."""

    def __init__(self, state: S = S.ASSESSING) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.state = state

    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> tuple[_Incident, bool]:
        self.calls.append((cluster_id, trigger, actor))
        first = len(self.calls) == 1
        return _Incident("inc-1", S.DETECTED if first else self.state), first


def test_only_the_call_that_opens_the_incident_mitigates() -> None:
    opened: list[tuple[str, str, list[str]]] = []
    launcher = IncidentLauncher(
        cast(IncidentStore, _Incidents()), on_opened=lambda c, i, t: opened.append((c, i, list(t["nodes"])))
    )
    trigger = {"source": "detector", "nodes": ["node3"]}
    first, created = launcher.open_or_join("prod", trigger, "detector")
    again, joined_new = launcher.open_or_join("prod", trigger, "receiver")
    assert (first.id, created, again.id, joined_new) == ("inc-1", True, "inc-1", False)
    assert opened == [("prod", "inc-1", ["node3"])]


def test_the_deployment_is_started_with_the_cluster_and_trigger_under_the_callers_key() -> None:
    started: list[tuple[dict[str, Any], str]] = []

    def start_run(parameters: Mapping[str, Any], key: str) -> str:
        started.append((dict(parameters), key))
        return "run-1"

    launcher = IncidentLauncher(cast(IncidentStore, _Incidents()), start_run=start_run)
    trigger = {"source": "alert:alertmanager", "nodes": ["node2"]}
    assert launcher.start("prod", trigger, "key-1") == "run-1"
    assert started == [({"cluster_id": "prod", "trigger": trigger}, "key-1")]


def test_without_an_engine_the_incident_is_only_recorded() -> None:
    launcher = IncidentLauncher(cast(IncidentStore, _Incidents()))
    assert launcher.start("prod", {"source": "detector"}, "key-1") is None


@pytest.mark.fault(F.ESCALATED_INCIDENT_RETRIGGERED)
@pytest.mark.parametrize(("state", "pages"), [(S.ESCALATED, 1), (S.ASSESSING, 0), (S.MONITORING, 0)])
def test_only_a_trigger_joining_an_escalated_incident_pages_a_person(state: S, pages: int) -> None:
    paged: list[tuple[str, list[str]]] = []
    launcher = IncidentLauncher(
        cast(IncidentStore, _Incidents(state)), on_joined_escalated=lambda i, t: paged.append((i.id, t["nodes"]))
    )
    launcher.open_or_join("prod", {"source": "detector", "nodes": ["node3"]}, "detector")  # opens: its run acts
    launcher.open_or_join("prod", {"source": "detector", "nodes": ["node2"]}, "detector")
    assert paged == [("inc-1", ["node2"])] * pages
