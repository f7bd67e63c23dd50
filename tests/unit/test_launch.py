"""The incident launcher shared by the detector and the receiver: what it starts, and when it mitigates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.launch import IncidentLauncher

pytestmark = pytest.mark.area("incident")


class _Incident:
    def __init__(self, id: str) -> None:
        self.id = id


class _Incidents:
    """Opens the first call's incident, joins it after."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> tuple[_Incident, bool]:
        self.calls.append((cluster_id, trigger, actor))
        return _Incident("inc-1"), len(self.calls) == 1


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
