"""apply_mitigation and give_back with a Reaper: its pause rides on the incident's timeline and in the `mitigated`
doc, and giving the cluster back resumes exactly what this incident paused (stand-in stores, fake Reaper server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from cassandra_recovery.clients.reaper import ReaperClient
from cassandra_recovery.degraded.policy import Mode
from cassandra_recovery.incident.store import Lease
from cassandra_recovery.mitigation.apply import apply_mitigation, give_back
from cassandra_recovery.mitigation.pauses import RepairPause
from cassandra_recovery.settings import ReaperConfig
from tests.fakes.reaper_server import CLUSTER, FakeReaper

pytestmark = pytest.mark.area("incident")

NOW = datetime(2026, 12, 7, tzinfo=UTC)
LEASE = Lease("inc-1", "run-1", 1, NOW)


@dataclass
class Incidents:
    timeline: list[SimpleNamespace] = field(default_factory=list)

    def fence(self, lease: Lease) -> None:
        return None

    def append_event(self, incident_id: str, kind: str, actor: str, data: Any, lease: Lease | None = None) -> None:
        self.timeline.append(SimpleNamespace(kind=kind, actor=actor, data=dict(data)))

    def events(self, incident_id: str) -> list[SimpleNamespace]:
        return list(self.timeline)


class Policy:
    def set(self, cluster_id: str, mode: Mode, *args: Any, **kw: Any) -> SimpleNamespace:
        return SimpleNamespace(mode=mode, read_consistency="ONE" if mode is Mode.DEGRADED else None)


class Pauses:
    def pause(self, cluster_id: str, reason: str, set_by: str, incident_id: str | None, fence: Any) -> RepairPause:
        return RepairPause(cluster_id, reason, incident_id, set_by, NOW)

    def resume(self, cluster_id: str, incident_id: str | None = None, fence: Any = None) -> bool:
        return True


@dataclass
class Storage:
    incidents: Incidents = field(default_factory=Incidents)
    policy: Policy = field(default_factory=Policy)
    pauses: Pauses = field(default_factory=Pauses)
    kill_switch: None = None


def test_mitigation_pauses_reaper_and_giving_back_resumes_only_its_own_pauses() -> None:
    schedules = {"s-1": {"state": "ACTIVE"}, "s-op": {"state": "PAUSED"}}
    with FakeReaper(schedules, {"r-1": {"state": "RUNNING"}}) as fake:
        reaper = ReaperClient(ReaperConfig(url=fake.url, cluster_name=CLUSTER))
        storage = Storage()
        doc = apply_mitigation(storage, "prod", "inc-1", "node3 down", "run-1", LEASE, reaper=reaper)  # type: ignore[arg-type]
        assert doc["reaper"]["schedules"] == ["s-1"] and doc["reaper"]["runs"] == ["r-1"]
        kinds = [e.kind for e in storage.incidents.timeline]
        assert kinds == ["mitigation_started", "reaper_pause", "reaper_paused", "mitigated"]
        assert storage.incidents.timeline[-1].data["reaper"] == doc["reaper"]
        assert fake.schedules["s-1"]["state"] == "PAUSED" and fake.runs["r-1"]["state"] == "PAUSED"

        lifted = give_back(storage, "prod", "inc-1", "verified", LEASE, reaper=reaper)  # type: ignore[arg-type]
        assert lifted["reaper"] == {"schedules": ["s-1"], "runs": ["r-1"], "unchanged": [], "errors": []}
        assert storage.incidents.timeline[-1].kind == "reaper_resumed"
        assert {k: v["state"] for k, v in fake.schedules.items()} == {"s-1": "ACTIVE", "s-op": "PAUSED"}
        assert fake.runs["r-1"]["state"] == "RUNNING"


def test_without_a_reaper_the_mitigation_doc_has_no_reaper_part() -> None:
    storage = Storage()
    doc = apply_mitigation(storage, "not-registered", "inc-1", "node3 down", "run-1", LEASE)  # type: ignore[arg-type]
    assert "reaper" not in doc and [e.kind for e in storage.incidents.timeline] == ["mitigation_started", "mitigated"]
    assert "reaper" not in give_back(storage, "not-registered", "inc-1", "done", LEASE)  # type: ignore[arg-type]
