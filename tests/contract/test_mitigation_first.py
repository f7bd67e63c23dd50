"""Mitigation first, by whoever opens the incident (detector, receiver), on real PostgreSQL: applied in the
same call at the `act` level, never below it or with the kill switch set, and only for an incident just opened."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import sql

from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.intake.wiring import StoreIncidents
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.launch import IncidentLauncher
from cassandra_recovery.logic.mitigation_state import mitigation_in_force
from cassandra_recovery.mitigation.apply import mitigate_opened_incident
from cassandra_recovery.settings import ClusterConfig, NodeAccess, Settings
from cassandra_recovery.storage.facade import Storage, open_storage
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]


@pytest.fixture
def storage() -> Iterator[Storage]:
    ensure_postgres(Settings())
    s = open_storage(migrated(Settings()), max_size=2)
    yield s
    with s.pool.connection() as conn:
        conn.execute("DELETE FROM automation_kill_switch WHERE cluster_id LIKE 'mit-test-%'")
        conn.execute("DELETE FROM repair_pauses WHERE cluster_id LIKE 'mit-test-%'")
        policies = sql.Identifier(s.settings.domain.policy_table)
        conn.execute(sql.SQL("DELETE FROM {} WHERE cluster_id LIKE 'mit-test-%'").format(policies))
        conn.commit()
    s.close()


def _cluster(automation: str = "act") -> ClusterConfig:
    cid = f"mit-test-{uuid.uuid4().hex[:8]}"
    node = NodeAccess(name="node1", address="127.0.0.2", datacenter="dc1")
    return ClusterConfig(
        id=cid, contact_points=["127.0.0.2"], local_datacenter="dc1", nodes=[node], automation=automation
    )


def _timeline(storage: Storage, incident_id: str) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "data": e.data} for e in storage.incidents.events(incident_id)]


def test_the_opener_mitigates_at_once_and_the_run_finds_it_in_force(storage: Storage) -> None:
    cluster = _cluster()
    inc, _ = storage.incidents.open_or_join(cluster.id, {"source": "detector", "nodes": ["node1"]}, "detector")
    done = mitigate_opened_incident(storage, cluster, inc.id, ["node1"], "detector")
    assert done == "mitigated (degraded policy, scheduled repairs paused)"
    policy = PolicyStore(storage.pool, storage.settings.domain).get(cluster.id)
    assert (policy.mode, policy.incident_id, policy.read_consistency) == (Mode.DEGRADED, inc.id, "ONE")
    pause = storage.pauses.get(cluster.id)
    assert pause is not None and pause.incident_id == inc.id
    in_force = mitigation_in_force(_timeline(storage, inc.id))
    assert in_force is not None and in_force["by"] == "detector" and in_force["repairs_paused"]


@pytest.mark.parametrize("level", ["observe", "propose"])
def test_below_the_act_level_nothing_is_applied(storage: Storage, level: str) -> None:
    cluster = _cluster(level)
    inc, _ = storage.incidents.open_or_join(cluster.id, {"source": "detector", "nodes": ["node1"]}, "detector")
    assert mitigate_opened_incident(storage, cluster, inc.id, ["node1"], "detector") == (
        f"automation level {level}: no mitigation"
    )
    assert PolicyStore(storage.pool, storage.settings.domain).get(cluster.id).mode is Mode.NORMAL
    assert storage.pauses.get(cluster.id) is None and mitigation_in_force(_timeline(storage, inc.id)) is None


def test_the_kill_switch_holds_the_openers_mitigation(storage: Storage) -> None:
    cluster = _cluster()
    storage.kill_switch.set(cluster.id, True, "vendor upgrade", "alice")
    inc, _ = storage.incidents.open_or_join(cluster.id, {"source": "detector", "nodes": ["node1"]}, "detector")
    done = mitigate_opened_incident(storage, cluster, inc.id, ["node1"], "detector")
    assert done == "automation stopped (vendor upgrade): no mitigation"
    assert PolicyStore(storage.pool, storage.settings.domain).get(cluster.id).mode is Mode.NORMAL
    assert storage.pauses.get(cluster.id) is None


def test_the_receiver_mitigates_only_the_incident_it_opens(storage: Storage) -> None:
    cluster = _cluster()
    opened: list[tuple[str, str, list[str]]] = []
    launcher = IncidentLauncher(storage.incidents, on_opened=lambda c, i, t: opened.append((c, i, t["nodes"])))
    incidents = StoreIncidents(launcher)
    first = incidents.open_or_join(cluster.id, {"source": "alert:alertmanager", "nodes": ["node1"]}, "receiver")
    again = incidents.open_or_join(cluster.id, {"source": "alert:grafana", "nodes": ["node1"]}, "receiver")
    assert first == again and opened == [(cluster.id, first, ["node1"])]
