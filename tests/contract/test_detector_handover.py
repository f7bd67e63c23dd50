"""The detector losing PostgreSQL while it opens an incident: the confirmed trigger is kept, the loop goes on,
and once PostgreSQL is back the incident is opened exactly once, mitigated first and its run started once (the
deployment's start is recorded here; Prefect away is the same path, shown in the unit tier)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from cassandra_recovery.chaos.injector import FaultInjector
from cassandra_recovery.detection.handover import TriggerHandover
from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.launch import incident_launcher
from cassandra_recovery.logic.detector import IncidentKind, IncidentTrigger
from cassandra_recovery.settings import ClusterConfig, NodeAccess, Settings
from cassandra_recovery.storage.facade import open_storage
from tests import faults as F
from tests.cluster.incident_env import close_open_incident
from tests.migrated import migrated

pytestmark = [pytest.mark.contract, pytest.mark.area("detection")]


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_the_detector_keeps_a_trigger_while_postgres_is_down_and_opens_its_incident_once_back() -> None:
    settings = Settings()
    ensure_postgres(settings)
    storage = open_storage(migrated(settings), max_size=2)
    cluster = ClusterConfig(
        id=f"detector-{uuid.uuid4().hex[:8]}", contact_points=["127.0.0.250"], local_datacenter="dc1",
        nodes=[NodeAccess(name="node2", address="127.0.0.250", jmx_host="127.0.0.1", jmx_port=7199)],
    )  # fmt: skip
    said: list[str] = []
    started: list[tuple[dict[str, Any], str]] = []
    loop = DetectorLoop(cluster, on_trigger=None)

    def start_run(params: Mapping[str, Any], key: str) -> str:
        started.append((dict(params), key))
        return f"run-{len(started)}"

    launcher = incident_launcher(settings, storage, None, "detector", said.append, cluster_of=lambda _: cluster)
    launcher.start_run = start_run
    loop.on_trigger = TriggerHandover(launcher, cluster, said.append, loop.detector.snapshot)
    trigger = IncidentTrigger(IncidentKind.OPEN, ("node2",), ("probe failed x3",), 100.0, ("node2",))
    try:
        with FaultInjector(progress=said.append).postgres_down(deadline_s=120):
            loop.offer(trigger, {"probes": {}}, now=0.0)  # the round that confirmed node2
            loop.retry_due(now=1.0)  # one more round while PostgreSQL is still away
        kept = loop.pending.waiting
        assert len(kept) == 1 and kept[0].attempts == 2 and kept[0].item == trigger, kept
        assert "OperationalError" in kept[0].last_error or "PoolTimeout" in kept[0].last_error, kept[0].last_error
        assert started == []
        loop.retry_due(now=kept[0].next_at)  # PostgreSQL back: the next try hands it over
        assert loop.pending.waiting == []
        incident = storage.incidents.open_for(cluster.id)
        assert incident is not None
        kinds = [e.kind for e in storage.incidents.events(incident.id)]
        assert kinds.count("opened") == 1 and "joined" not in kinds, kinds
        assert "mitigated" in kinds, kinds  # mitigation first, by the detector that opened it
        assert [(p["trigger"]["nodes"], k.startswith(f"{incident.id}:open:node2:")) for p, k in started] == [
            (["node2"], True)
        ]
        loop.retry_due(now=1e9)  # nothing left to offer: no second incident, no second start
        assert len(started) == 1
    finally:
        ensure_postgres(settings)
        close_open_incident(storage.incidents, cluster.id)
        loop.close()
        storage.pool.close()
