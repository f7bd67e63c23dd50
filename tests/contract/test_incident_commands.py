"""`cassandra-recovery incident list|show` on real PostgreSQL: what an on-call engineer reads of an incident, the
lease holder and what the incident owns included, as a table or as JSON."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from cassandra_recovery.incident.store import LeaseLost
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


def test_ack_records_who_and_escalate_fences_the_acting_run_out_at_once(storage: Storage) -> None:
    """Issue 19: `ack` puts the person on the timeline and changes nothing else; `escalate` takes the incident from
    the run acting on it (its next write is refused, so it stops) and leaves what it applied in force."""
    cluster_id = f"cmd-test-{uuid.uuid4().hex[:8]}"
    store = storage.incidents
    inc, _ = store.open_or_join(cluster_id, {"source": "detector", "nodes": ["node3"]}, "detector")
    run = store.acquire_lease(inc.id, "flow-run/abc", 600, run_key="abc")
    assert run is not None
    store.transition(inc.id, S.DETECTED, S.ASSESSING, run, {"by": run.holder})
    apply_mitigation(storage, cluster_id, inc.id, "node3 seen down", run.holder, run)

    acked = _cli("ack", inc.id, "--note", "looking at node3", "--json")
    assert acked.returncode == 0, acked.stderr
    who = json.loads(acked.stdout)["acknowledged_by"]
    assert who == f"{getpass.getuser()}@{socket.gethostname()}"
    (ack,) = [e for e in store.events(inc.id) if e.kind == "acknowledged"]
    assert (ack.actor, ack.data["note"]) == (who, "looking at node3")
    assert store.get(inc.id).state is S.ASSESSING and store.renew_lease(run, 600).token == run.token  # unchanged

    assert _cli("escalate", inc.id, "--reason", "  ").returncode == 2  # a reason is required
    escalated = _cli("escalate", inc.id, "--reason", "data team asked us to hold", "--json")
    assert escalated.returncode == 0, escalated.stderr
    assert json.loads(escalated.stdout)["state"] == "escalated"
    after = store.get(inc.id)
    assert after.state is S.ESCALATED and after.lease_holder is None and after.closed_at is None
    with pytest.raises(LeaseLost):  # the run that was acting is refused at its next write, and stops
        store.transition(inc.id, S.ASSESSING, S.RECOVERING, run, {"by": run.holder})
    with pytest.raises(LeaseLost):
        store.renew_lease(run, 600)
    seized = next(e for e in store.events(inc.id) if e.kind == "lease_seized")
    assert (seized.actor, seized.data["previous_holder"]) == (who, "flow-run/abc")
    moved = [e.data for e in store.events(inc.id) if e.kind == "transition"][-1]
    assert (moved["to"], moved["data"]["reason"], moved["data"]["by"]) == (
        "escalated",
        "data team asked us to hold",
        who,
    )
    assert storage.pauses.get(cluster_id) is not None  # what it applied stays until someone hands it back or closes it

    again = _cli("escalate", inc.id, "--reason", "twice", "--json")
    assert again.returncode == 2 and json.loads(again.stdout)["error"]["message"].endswith("is already escalated")


def test_ack_of_a_closed_incident_is_refused(storage: Storage) -> None:
    cluster_id = f"cmd-test-{uuid.uuid4().hex[:8]}"
    store = storage.incidents
    inc, _ = store.open_or_join(cluster_id, {"source": "manual"}, "pytest")
    lease = store.acquire_lease(inc.id, "pytest", 30, run_key="k")
    assert lease is not None
    store.transition(inc.id, S.DETECTED, S.RESOLVED, lease, {"reason": "test"})
    refused = _cli("ack", inc.id)
    assert refused.returncode == 2 and "is closed (resolved)" in refused.stderr
