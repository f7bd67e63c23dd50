"""True fencing on the real PostgreSQL: once another run has taken an incident over, the old holder's writes are
refused in every store it writes to (checkpoints, repair pause, degradation policy, the side-effect log), a
takeover waits for a write the holder has in flight, and the side-effect log shows one run acting at a time."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.incident.side_effects import SideEffectLog
from cassandra_recovery.incident.store import IncidentStore, Lease, StaleFencingToken
from cassandra_recovery.lab.postgres import _clusters, ensure_postgres
from cassandra_recovery.logic.fenced_log import overlapping_runs
from cassandra_recovery.logic.segments import Segment, SegmentState
from cassandra_recovery.mitigation.pauses import RepairPauses
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.names import SchemaNames
from tests import faults as F
from tests.migrated import drop_version_tables, migrated, migrated_names, owner_conn

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("incident"),
]

PREFIX = f"fence_t{uuid.uuid4().hex[:10]}"
NAMES = SchemaNames(incident_prefix=PREFIX)
SEGS = [Segment("ks", i * 10, i * 10 + 10, ("a", "b"), "a") for i in range(2)]


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest) -> Iterator[ConnectionPool]:
    s = Settings()
    if not any(c.online for c in _clusters(s.postgres.port)):
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    ensure_postgres(s)
    migrated(s)
    migrated_names(s, NAMES)
    p = make_pool(s, max_size=6)
    yield p
    p.close()
    with owner_conn(s) as conn:
        conn.execute("DELETE FROM side_effects WHERE incident_id LIKE %s", (f"{PREFIX}%",))
        conn.execute("DELETE FROM repair_runs WHERE cluster_id LIKE 'fence-test-%'")
        conn.execute("DELETE FROM repair_pauses WHERE cluster_id LIKE 'fence-test-%'")
        conn.execute("DELETE FROM degradation_policy WHERE cluster_id LIKE 'fence-test-%'")
        idents = [sql.Identifier(f"{PREFIX}{t}") for t in ("_reports", "_events", "s")]
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}, {}").format(*idents))
        conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(f"{PREFIX}_events_append_only")))
        drop_version_tables(conn, NAMES)


@pytest.fixture
def store(pool: ConnectionPool) -> IncidentStore:
    return IncidentStore(pool, prefix=PREFIX)


def _taken_over(store: IncidentStore, pool: ConnectionPool) -> tuple[str, Lease, Lease]:
    """An incident whose first holder's lease lapsed and a second run took it: (cluster, old, new)."""
    cluster = f"fence-test-{uuid.uuid4().hex[:10]}"
    inc, _ = store.open_or_join(cluster, {"source": "test"}, "detector")
    old = store.acquire_lease(inc.id, "flow-run/old", 60.0, run_key="old")
    assert old is not None
    q = sql.SQL("UPDATE {} SET lease_expires_at = clock_timestamp() - interval '1 ms' WHERE id = %s")
    with pool.connection() as conn:
        conn.execute(q.format(sql.Identifier(store.incidents_table)), (inc.id,))
    new = store.acquire_lease(inc.id, "flow-run/new", 60.0, run_key="new")
    assert new is not None and new.token > old.token
    return cluster, old, new


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_a_run_taken_over_writes_nothing_in_any_store(store: IncidentStore, pool: ConnectionPool) -> None:
    cluster, old, new = _taken_over(store, pool)
    stale, current = store.fence(old), store.fence(new)
    cp, pauses, effects = RepairCheckpoints(pool), RepairPauses(pool), SideEffectLog(pool)
    policy = PolicyStore(pool, Settings().domain)
    key = f"incident/{old.incident_id}"
    with pytest.raises(StaleFencingToken):
        cp.start_or_resume(key, cluster, "full", SEGS, stale)
    run = cp.start_or_resume(key, cluster, "full", SEGS, current)
    assert run.created and cp.owner(key) == ("flow-run/new", new.token)
    for write in (
        lambda: cp.mark_running(key, 0, stale),
        lambda: cp.mark_done(key, 0, "parent-x", stale),
        lambda: cp.mark_failed(key, 1, "boom", True, stale),
        lambda: cp.finish(key, "done", stale),
        lambda: pauses.pause(cluster, "stale", old.holder, old.incident_id, stale),
        lambda: policy.set(cluster, Mode.DEGRADED, "stale", old.holder, incident_id=old.incident_id, fence=stale),
        lambda: effects.begin(stale, "repair_segment", {"seq": 0}),
    ):
        with pytest.raises(StaleFencingToken):
            write()
    assert [r.state for r in cp.segments(key)] == [SegmentState.PENDING, SegmentState.PENDING]
    assert pauses.get(cluster) is None and effects.entries(old.incident_id) == []
    assert policy.get(cluster).mode is Mode.NORMAL
    # the current holder's writes go through and say who made them
    rec = cp.mark_running(key, 0, current)
    assert (rec.state, rec.attempts) == (SegmentState.RUNNING, 1)
    with pool.connection() as conn:
        row = conn.execute("SELECT holder, fencing_token FROM repair_segments WHERE run_key = %s AND seq = 0", (key,))
        assert row.fetchone() == {"holder": "flow-run/new", "fencing_token": new.token}
    assert pauses.pause(cluster, "current", new.holder, new.incident_id, current).incident_id == new.incident_id


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_a_takeover_waits_for_the_holders_write_in_flight(store: IncidentStore, pool: ConnectionPool) -> None:
    """The check and the write share one transaction: a takeover cannot slip between them."""
    cluster = f"fence-test-{uuid.uuid4().hex[:10]}"
    inc, _ = store.open_or_join(cluster, {"source": "test"}, "detector")
    old = store.acquire_lease(inc.id, "flow-run/old", 60.0, run_key="old")
    assert old is not None
    order: list[str] = []
    took: list[Lease | None] = []

    def take_over() -> None:
        took.append(store.acquire_lease(inc.id, "flow-run/new", 60.0, run_key="old"))  # same key: granted at once
        order.append("taken over")

    with pool.connection() as conn, conn.transaction():
        store.fence(old).check(conn)
        conn.execute("INSERT INTO repair_pauses (cluster_id, reason, incident_id, set_by) VALUES (%s, 'x', %s, 'y')",
                     (cluster, inc.id))  # fmt: skip
        thief = threading.Thread(target=take_over)
        thief.start()
        time.sleep(1.0)  # room for the takeover to run ahead, if nothing stopped it
        order.append("holder committed")
    thief.join(timeout=30)
    assert order == ["holder committed", "taken over"]
    assert took[0] is not None and took[0].token == old.token + 1


@pytest.mark.fault(F.SERVE_HOST_DIED)
def test_the_successor_closes_a_dead_holders_open_action_so_no_two_runs_overlap(
    store: IncidentStore, pool: ConnectionPool
) -> None:
    _, old, new = _taken_over(store, pool)
    effects = SideEffectLog(pool)
    # what `old` left when its host died: two actions begun before the takeover, never ended
    segment = {"run_key": f"incident/{old.incident_id}", "seq": 3, "keyspace": "ks", "attempt": 1}
    with pool.connection() as conn:
        for action, target in (("hint_handoff", {}), ("repair_segment", segment)):
            conn.execute(
                "INSERT INTO side_effects (incident_id, holder, fencing_token, action, target, started_at)"
                " VALUES (%s, %s, %s, %s, %s, clock_timestamp() - interval '1 minute')",
                (old.incident_id, old.holder, old.token, action, Jsonb(target)),
            )
    current = store.fence(new)
    # the new holder's repair engine first reconciles the interrupted segment in Cassandra (its session is over);
    # only the matching segment's interval closes: the session of another could still be running
    assert effects.close_reconciled_repair(current, {"run_key": segment["run_key"], "seq": 4}) == 0
    assert effects.entries(old.incident_id)[1].ended_at is None
    assert effects.close_reconciled_repair(current, {"run_key": segment["run_key"], "seq": 3}) == 1
    # its first action closes the rest: the dead run's hint handoff ended with its process
    with effects.acting(current, "hint_handoff", {}):
        pass
    with effects.acting(current, "repair_segment", {"run_key": segment["run_key"], "seq": 3}) as act:
        act.detail = {"parent_id": "session-1"}
    entries = {(e.holder, e.action): e for e in effects.entries(old.incident_id) if e.holder == "flow-run/old"}
    assert (entries[("flow-run/old", "hint_handoff")].outcome or "").startswith("abandoned: closed by flow-run/new")
    assert (entries[("flow-run/old", "repair_segment")].outcome or "").startswith("abandoned: its session reconciled")
    log = effects.entries(old.incident_id)
    assert len(log) == 4 and all(e.ended_at is not None for e in log)
    assert overlapping_runs([e.interval() for e in log]) == []
    # the stale run, waking, cannot reopen or rewrite what it did: its late end changes nothing
    closed = entries[("flow-run/old", "hint_handoff")]
    effects.end(closed.id, "done")
    assert next(e for e in effects.entries(old.incident_id) if e.id == closed.id).outcome == closed.outcome
    with pytest.raises(StaleFencingToken):
        effects.close_reconciled_repair(store.fence(old), {"seq": 3})
