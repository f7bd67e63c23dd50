"""`cassandra-recovery incident list|show` on real PostgreSQL: what an on-call engineer reads of an incident, the
lease holder and what the incident owns included, as a table or as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.mitigation.apply import apply_mitigation
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage, open_storage
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def storage() -> Iterator[Storage]:
    ensure_postgres(Settings())
    s = open_storage(migrated(Settings()), max_size=2)
    yield s
    with s.pool.connection() as conn:
        conn.execute("DELETE FROM repair_pauses WHERE cluster_id LIKE 'cmd-test-%'")
        policies = sql.Identifier(s.settings.domain.policy_table)
        conn.execute(sql.SQL("DELETE FROM {} WHERE cluster_id LIKE 'cmd-test-%'").format(policies))
        conn.commit()
    s.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cassandra_recovery.cli", "incident", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


def test_list_and_show_an_open_incident_with_its_lease_plan_timeline_and_what_it_owns(storage: Storage) -> None:
    cluster_id = f"cmd-test-{uuid.uuid4().hex[:8]}"
    store = storage.incidents
    inc, _ = store.open_or_join(cluster_id, {"source": "detector", "nodes": ["node3"]}, "detector")
    lease = store.acquire_lease(inc.id, "flow-run/abc", 600, run_key="abc")
    assert lease is not None
    store.transition(inc.id, S.DETECTED, S.ASSESSING, lease, {"by": "flow-run/abc"})
    store.set_plan(inc.id, {"action": "wait_for_hints", "targets": ["127.0.0.4"]}, lease)
    apply_mitigation(storage, cluster_id, inc.id, "node3 seen down", lease.holder, lease)

    listed = _cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == inc.id]
    assert (row["cluster"], row["state"], row["nodes"], row["plan"]) == (
        cluster_id,
        "assessing",
        "node3",
        "wait_for_hints",
    )
    assert row["held_by"] == "flow-run/abc" and row["closed_at"] is None

    shown = _cli("show", inc.id, "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["lease"]["holder"] == "flow-run/abc" and doc["lease"]["live"] is True
    assert doc["automation"] == "unknown (cluster not configured)"  # not in this machine's settings: still shown
    assert doc["plan"]["targets"] == ["127.0.0.4"]
    assert doc["owns"]["policy"]["mode"] == "degraded" and doc["owns"]["repair_pause"]["set_by"] == "flow-run/abc"
    kinds = [e["kind"] for e in doc["timeline"]]
    assert kinds[0] == "opened" and "mitigated" in kinds and doc["events"] == len(kinds)

    table = _cli("show", inc.id)  # for people: field/value rows, then the timeline as a table
    assert table.returncode == 0 and inc.id in table.stdout and "mitigated" in table.stdout, table.stderr


def test_a_closed_incident_is_listed_only_with_all_and_an_unknown_one_is_bad_input(storage: Storage) -> None:
    cluster_id = f"cmd-test-{uuid.uuid4().hex[:8]}"
    store = storage.incidents
    inc, _ = store.open_or_join(cluster_id, {"source": "manual"}, "pytest")
    lease = store.acquire_lease(inc.id, "pytest", 30, run_key="k")
    assert lease is not None
    store.transition(inc.id, S.DETECTED, S.RESOLVED, lease, {"reason": "test"})
    store.release_lease(lease)
    assert inc.id not in {r["id"] for r in json.loads(_cli("list", "--json").stdout)}
    assert inc.id in {r["id"] for r in json.loads(_cli("list", "--all", "--json").stdout)}
    shown = json.loads(_cli("show", inc.id, "--json").stdout)
    assert shown["state"] == "resolved" and shown["closed_at"] is not None and shown["lease"] is None

    unknown = _cli("show", "inc-nope", "--json")
    assert unknown.returncode == 2 and "no incident 'inc-nope'" in unknown.stderr
    assert json.loads(unknown.stdout)["error"]["code"] == "bad_input"
    assert _cli("list", "--limit", "0").returncode == 2
