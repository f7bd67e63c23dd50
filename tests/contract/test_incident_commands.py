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

from cassandra_recovery.incident.store import Incident, Lease, LeaseLost
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


def _assessing(storage: Storage) -> tuple[str, Incident, Lease]:
    """A new cluster's incident, opened by the detector for node3 and being assessed by a run holding its lease."""
    cluster_id = f"cmd-test-{uuid.uuid4().hex[:8]}"
    store = storage.incidents
    inc, _ = store.open_or_join(cluster_id, {"source": "detector", "nodes": ["node3"]}, "detector")
    run = store.acquire_lease(inc.id, "flow-run/abc", 600, run_key="abc")
    assert run is not None
    return cluster_id, store.transition(inc.id, S.DETECTED, S.ASSESSING, run, {"by": run.holder}), run


def _closed(storage: Storage) -> str:
    """A new cluster's incident, resolved."""
    store = storage.incidents
    inc, _ = store.open_or_join(f"cmd-test-{uuid.uuid4().hex[:8]}", {"source": "manual"}, "pytest")
    lease = store.acquire_lease(inc.id, "pytest", 30, run_key="k")
    assert lease is not None
    store.transition(inc.id, S.DETECTED, S.RESOLVED, lease, {"reason": "test"})
    store.release_lease(lease)
    return inc.id


def test_list_and_show_an_open_incident_with_its_lease_plan_timeline_and_what_it_owns(storage: Storage) -> None:
    cluster_id, inc, lease = _assessing(storage)
    store = storage.incidents
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
    incident_id = _closed(storage)
    assert incident_id not in {r["id"] for r in json.loads(_cli("list", "--json").stdout)}
    assert incident_id in {r["id"] for r in json.loads(_cli("list", "--all", "--json").stdout)}
    shown = json.loads(_cli("show", incident_id, "--json").stdout)
    assert shown["state"] == "resolved" and shown["closed_at"] is not None and shown["lease"] is None

    unknown = _cli("show", "inc-nope", "--json")
    assert unknown.returncode == 2 and "no incident 'inc-nope'" in unknown.stderr
    assert json.loads(unknown.stdout)["error"]["code"] == "bad_input"
    assert _cli("list", "--limit", "0").returncode == 2


def test_ack_records_who_and_escalate_fences_the_acting_run_out_at_once(storage: Storage) -> None:
    """Issue 19: `ack` puts the person on the timeline and changes nothing else; `escalate` takes the incident from
    the run acting on it (its next write is refused, so it stops) and leaves what it applied in force."""
    cluster_id, inc, run = _assessing(storage)
    store = storage.incidents
    apply_mitigation(storage, cluster_id, inc.id, "node3 seen down", run.holder, run)

    acked = _cli("ack", inc.id, "--note", "looking at node3", "--json")
    assert acked.returncode == 0, acked.stderr
    who = json.loads(acked.stdout)["by"]
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
    refused = _cli("ack", _closed(storage))
    assert refused.returncode == 2 and "is closed (resolved)" in refused.stderr
    held = _cli("hold-repairs", _closed(storage), "--reason", "x")
    assert held.returncode == 2 and "is closed (resolved)" in held.stderr


def test_hold_repairs_and_its_release_go_on_the_timeline_with_who(storage: Storage) -> None:
    """Issue 19: a person's explicit hold keeps routine repair off while the incident is escalated, whatever the
    repair age (tasks/scheduled.py reads it); released, the incident gives way again near gc_grace."""
    _, inc, _ = _assessing(storage)
    assert _cli("hold-repairs", inc.id, "--reason", " ").returncode == 2  # a reason is required
    held = _cli("hold-repairs", inc.id, "--reason", "disks being replaced", "--json")
    assert held.returncode == 0 and json.loads(held.stdout)["held"] is True, held.stderr
    released = _cli("hold-repairs", inc.id, "--reason", "disks done", "--release")
    assert released.returncode == 0 and "released its hold on routine repair" in released.stdout, released.stderr
    kinds = [(e.kind, e.data["reason"]) for e in storage.incidents.events(inc.id) if e.kind.startswith("repairs_")]
    assert kinds == [("repairs_held", "disks being replaced"), ("repairs_released", "disks done")]


def _escalated_with_mitigation(storage: Storage) -> tuple[str, str]:
    """An incident that mitigated (degraded policy, repairs paused), was verified diverged, then was escalated."""
    cluster_id, inc, run = _assessing(storage)
    store = storage.incidents
    apply_mitigation(storage, cluster_id, inc.id, "node3 seen down", run.holder, run)
    store.append_event(inc.id, "verified", run.holder, {"verdict": "diverged"}, run)
    store.transition(inc.id, S.ASSESSING, S.ESCALATED, run, {"reason": "still diverged after the fix"})
    store.release_lease(run)
    return cluster_id, inc.id


def test_hand_back_returns_an_escalated_incident_to_the_automation(storage: Storage) -> None:
    """Issue 19: nothing could take an escalated incident back. `hand-back` moves it to assessing (recorded with who)
    and starts its run; with no orchestrator to start one, it says so (exit 1) and the watchdog starts it."""
    cluster_id, incident_id = _escalated_with_mitigation(storage)
    env = {**os.environ, "CASSANDRA_RECOVERY_ORCHESTRATOR": "not-installed"}  # no engine here: the run is not started
    cmd = [
        sys.executable,
        "-m",
        "cassandra_recovery.cli",
        "incident",
        "hand-back",
        incident_id,
        "--note",
        "node3 fixed",
    ]
    back = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False)
    assert back.returncode == 1, back.stderr
    doc = json.loads(back.stdout)
    assert doc["state"] == "assessing" and "a running `serve` starts one" in doc["not_started"], doc
    inc = storage.incidents.get(incident_id)
    assert inc.state is S.ASSESSING and inc.lease_holder is None and inc.closed_at is None
    moved = [e.data for e in storage.incidents.events(incident_id) if e.kind == "transition"][-1]
    assert (moved["from"], moved["to"], moved["data"]["note"]) == ("escalated", "assessing", "node3 fixed")
    assert storage.pauses.get(cluster_id) is not None  # the automation, back in charge, decides what to lift
    again = _cli("hand-back", incident_id, "--note", "twice")
    assert again.returncode == 2 and "only an escalated incident is handed back" in again.stderr


def test_resolve_needs_a_converged_verification_or_says_unverified_and_gives_back_what_it_applied(
    storage: Storage,
) -> None:
    """Issue 19: an escalated incident could not be closed. `resolve` closes it and lifts the degraded policy and the
    repair pause it set; without a converged last verification it is refused unless --unverified (recorded)."""
    cluster_id, incident_id = _escalated_with_mitigation(storage)
    refused = _cli("resolve", incident_id, "--note", "data checked by hand", "--json")
    assert refused.returncode == 2 and "last verification of" in refused.stderr and "diverged" in refused.stderr
    assert storage.incidents.get(incident_id).state is S.ESCALATED  # nothing changed

    done = _cli("resolve", incident_id, "--note", "data checked by hand", "--unverified", "--json")
    assert done.returncode == 0, done.stderr
    inc = storage.incidents.get(incident_id)
    assert inc.state is S.RESOLVED and inc.closed_at is not None and inc.lease_holder is None
    events = storage.incidents.events(incident_id)
    lifted = next(e for e in events if e.kind == "mitigation_lifted")
    assert lifted.data["policy"] == "normal" and lifted.data["repairs_resumed"] is True
    closed = [e.data for e in events if e.kind == "transition"][-1]["data"]
    assert (closed["note"], closed["last_verdict"], closed["unverified"]) == ("data checked by hand", "diverged", True)
    assert storage.pauses.get(cluster_id) is None and storage.policy.get(cluster_id).mode.value == "normal"


def test_resolving_mid_recovery_fences_the_run_and_passes_through_escalated(storage: Storage) -> None:
    cluster_id, inc, run = _assessing(storage)
    store = storage.incidents
    store.transition(inc.id, S.ASSESSING, S.RECOVERING, run, {"by": run.holder})  # recovering cannot go to resolved
    store.append_event(inc.id, "verified", run.holder, {"verdict": "converged"}, run)
    done = _cli("resolve", inc.id, "--note", "recovered by hand")
    assert done.returncode == 0, done.stderr
    moves = [(e.data["from"], e.data["to"]) for e in store.events(inc.id) if e.kind == "transition"]
    assert moves[-2:] == [("recovering", "escalated"), ("escalated", "resolved")]
    with pytest.raises(LeaseLost):
        store.renew_lease(run, 600)
