"""The alert inbox on the real PostgreSQL (session-unique tables): one row per key, pending -> delivered, once."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.intake.memory import RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.payload import Alert
from cassandra_recovery.intake.ports import Outcome, SpoolItem, StoreUnavailable
from cassandra_recovery.intake.service import Intake
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.intake.wiring import StoreIncidents
from cassandra_recovery.lab.postgres import _clusters, ensure_postgres
from cassandra_recovery.launch import IncidentLauncher
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.names import SchemaNames
from tests import faults as F
from tests.migrated import drop_version_tables, migrated_names, owner_conn

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("intake"),
]

TABLE = f"alert_inbox_t{uuid.uuid4().hex[:10]}"
INC_PREFIX = f"inc_i{uuid.uuid4().hex[:10]}"
NAMES = SchemaNames(incident_prefix=INC_PREFIX, inbox=TABLE)


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest) -> Iterator[ConnectionPool]:
    s = Settings()
    was_online = any(c.online for c in _clusters(s.postgres.port))
    ensure_postgres(s)
    if not was_online:
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    migrated_names(s, NAMES)
    p = make_pool(s, max_size=20)
    try:
        yield p
    finally:
        p.close()
        with owner_conn(s) as conn:
            names = [f"{INC_PREFIX}_reports", f"{INC_PREFIX}_events", f"{INC_PREFIX}s", TABLE]
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(map(sql.Identifier, names))))
            fn = sql.Identifier(f"{INC_PREFIX}_events_append_only")
            conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(fn))
            drop_version_tables(conn, NAMES)


@pytest.fixture(scope="module")
def spool(pool: ConnectionPool) -> PgSpool:
    return PgSpool(pool, TABLE, retry_base_s=30.0, retry_max_s=60.0, max_attempts=3)


def item(status: str = "firing", cluster: str = "lab") -> SpoolItem:
    key = uuid.uuid4().hex
    doc = {"source": "alert:alertmanager", "kind": "alert", "nodes": ["node2"], "reasons": ["down"]}
    return SpoolItem(key, f"launch-{key}", "alertmanager", cluster, status, doc)  # type: ignore[arg-type]


def rows(pool: ConnectionPool, where: str = "TRUE", params: Any = ()) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        q = sql.SQL("SELECT * FROM {} WHERE " + where).format(sql.Identifier(TABLE))
        out = fetch_all(conn.execute(q, params))
        conn.rollback()
    return out


def ok(it: SpoolItem) -> Outcome:
    return Outcome(ok=True, incident_id="inc-x", flow_run_id=f"run-{it.dedup_key[:6]}")


def test_same_key_twice_is_one_row(spool: PgSpool, pool: ConnectionPool) -> None:
    it = item()
    assert spool.put(it, hold_s=0) is True
    assert spool.put(it, hold_s=0) is False
    (row,) = rows(pool, "dedup_key = %s", (it.dedup_key,))
    assert (row["state"], row["attempts"], row["doc"]) == ("received", 0, it.doc)


def test_pending_then_delivered_and_never_again(spool: PgSpool, pool: ConnectionPool) -> None:
    it = item()
    spool.put(it, hold_s=0)
    delivered: list[str] = []

    def deliver(x: SpoolItem) -> Outcome:
        delivered.append(x.dedup_key)
        return ok(x)

    while spool.deliver_due(deliver, limit=100):  # other tests' leftovers may be due too
        pass
    assert delivered.count(it.dedup_key) == 1
    row = spool.row(it.dedup_key)
    assert row is not None and row["state"] == "delivered" and row["attempts"] == 1
    assert row["flow_run_id"] == f"run-{it.dedup_key[:6]}" and row["incident_id"] == "inc-x" and row["done_at"]
    assert spool.deliver_one(it.dedup_key, deliver) is None and delivered.count(it.dedup_key) == 1


def test_held_item_is_left_to_the_inline_path(spool: PgSpool) -> None:
    it = item()
    spool.put(it, hold_s=60)
    seen: list[str] = []
    spool.deliver_due(lambda x: seen.append(x.dedup_key) or ok(x), limit=100)
    assert it.dedup_key not in seen
    outcome = spool.deliver_one(it.dedup_key, ok)
    assert outcome is not None and outcome.ok
    assert spool.row(it.dedup_key)["state"] == "delivered"  # type: ignore[index]


@pytest.mark.fault(F.PREFECT_DOWN)
def test_failure_backs_off_keeps_the_incident_and_dies_after_max_attempts(spool: PgSpool, pool: ConnectionPool) -> None:
    it = item()
    spool.put(it, hold_s=0)
    fail = Outcome(ok=False, incident_id="inc-7", error="prefect is down")
    assert spool.deliver_one(it.dedup_key, lambda x: fail) == fail
    row = spool.row(it.dedup_key)
    assert row is not None and (row["state"], row["attempts"], row["last_error"]) == ("received", 1, "prefect is down")
    assert row["incident_id"] == "inc-7" and row["next_attempt_at"] > datetime.now(UTC)
    seen: list[SpoolItem] = []
    spool.deliver_due(lambda x: seen.append(x) or fail, limit=100)
    assert it.dedup_key not in {x.dedup_key for x in seen}  # backing off: not due
    spool.deliver_one(it.dedup_key, lambda x: seen.append(x) or fail)
    assert seen[-1].incident_id == "inc-7" and seen[-1].attempts == 1  # the next attempt knows its incident

    def boom(x: SpoolItem) -> Outcome:
        raise RuntimeError("bug in delivery")

    spool.deliver_one(it.dedup_key, boom)  # third attempt, an exception: counted, and the last one allowed
    row = spool.row(it.dedup_key)
    assert row is not None and row["state"] == "dead" and row["attempts"] == 3
    assert "RuntimeError: bug in delivery" in row["last_error"]
    assert spool.deliver_one(it.dedup_key, ok) is None


def test_resolved_is_recorded(spool: PgSpool) -> None:
    it = item("resolved")
    spool.put(it, hold_s=60)
    assert spool.deliver_one(it.dedup_key, lambda x: Outcome(ok=True)) == Outcome(ok=True)
    assert spool.row(it.dedup_key)["state"] == "recorded"  # type: ignore[index]


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_concurrent_deliverers_never_deliver_one_alert_twice(spool: PgSpool, pool: ConnectionPool) -> None:
    items = [item(cluster="concurrent") for _ in range(40)]
    for it in items:
        spool.put(it, hold_s=0)
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    in_flight, most = [0], [0]
    start = threading.Barrier(8)

    def deliver(x: SpoolItem) -> Outcome:
        with lock:
            calls[x.dedup_key] += 1
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.02)  # a delivery takes time (a Prefect call): widens the window for a double claim
        with lock:
            in_flight[0] -= 1
        return ok(x)

    def worker() -> None:
        start.wait(timeout=30)
        while spool.deliver_due(deliver, limit=5):
            pass
        spool.deliver_one(items[0].dedup_key, deliver)  # the inline path racing too

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    keys = {it.dedup_key for it in items}
    assert {k: n for k, n in calls.items() if k in keys and n != 1} == {}
    assert keys <= set(calls)
    assert most[0] > 1  # deliverers really overlapped
    states = {r["state"] for r in rows(pool, "cluster_id = 'concurrent'")}
    assert states == {"delivered"}


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_store_unreachable_raises_store_unavailable() -> None:
    dead = ConnectionPool("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1", open=False, timeout=1.0)
    dead.open(wait=False)
    try:
        with pytest.raises(StoreUnavailable):
            PgSpool(dead, TABLE).put(item(), hold_s=0)
    finally:
        dead.close()


@pytest.mark.fault(F.PREFECT_DOWN, F.ALERT_FLOOD)
def test_intake_end_to_end_on_postgres(spool: PgSpool, pool: ConnectionPool) -> None:
    """Firing with Prefect away: stored and an incident opened in PostgreSQL; delivered once Prefect is back."""
    store = IncidentStore(pool, prefix=INC_PREFIX)
    cluster = f"e2e-{uuid.uuid4().hex[:8]}"
    launcher = RecordingLauncher(up=False)
    intake = Intake(spool, StoreIncidents(IncidentLauncher(store)), launcher, ReceiverMetrics(), inline_timeout_s=10.0)
    now = datetime.now(UTC)
    alert = Alert("alertmanager", "firing", cluster, "CassandraNodeDown", "fp1", now, None, ("node3",), "down")
    try:
        (res,) = intake.ingest([alert]).alerts
        assert res.result == "spooled" and res.incident_id is not None
        incident = store.open_for(cluster)
        assert incident is not None and incident.id == res.incident_id
        assert [e.kind for e in store.events(incident.id)] == ["opened"]
        assert intake.ingest([alert]).alerts[0].result == "duplicate"
        launcher.up = True
        assert spool.deliver_one(res.dedup_key, intake.deliver) == Outcome(True, incident.id, "run-1")
        assert [e.kind for e in store.events(incident.id)] == ["opened"]  # not joined again on retry
        resolved = Alert("alertmanager", "resolved", cluster, "CassandraNodeDown", "fp1", now, now, ("node3",), "down")
        assert intake.ingest([resolved]).alerts[0].result == "recorded"
        assert [e.kind for e in store.events(incident.id)] == ["opened", "alert_resolved"]
        assert len(launcher.calls) == 1 and launcher.calls[0][1]["incident_id"] == incident.id
    finally:
        intake.close()


def _spool_holds(table: str) -> dict[str, int]:
    """Seen from a session of its own: other sessions idle inside a transaction that touched `table`, and the
    locks other sessions hold on it (a row lock taken FOR UPDATE shows as a lock on the table)."""
    s = Settings()
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5, autocommit=True) as conn:
        idle = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND state LIKE 'idle in transaction%%' AND query LIKE '%%' || %s || '%%'",
            (table,),
        ).fetchone()
        locks = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() AND relation = to_regclass(%s)", (table,)
        ).fetchone()
    assert idle is not None and locks is not None
    return {"idle_in_transaction": int(idle[0]), "locks": int(locks[0])}


@pytest.mark.fault(F.PREFECT_DOWN)
@pytest.mark.parametrize("path", ["inline", "due"])
def test_no_transaction_or_lock_is_held_while_prefect_is_called(spool: PgSpool, path: str) -> None:
    it = item(cluster=f"held-{path}")
    spool.put(it, hold_s=60 if path == "inline" else 0)
    seen: dict[str, dict[str, int]] = {}

    def deliver(x: SpoolItem) -> Outcome:  # the Prefect call: the spool's session must be idle by now
        seen[x.dedup_key] = _spool_holds(TABLE)
        return ok(x)

    if path == "inline":
        spool.deliver_one(it.dedup_key, deliver)
    else:
        while it.dedup_key not in seen and spool.deliver_due(deliver, limit=100):
            pass
    assert seen[it.dedup_key] == {"idle_in_transaction": 0, "locks": 0}
    assert spool.row(it.dedup_key)["state"] == "delivered"  # type: ignore[index]


@pytest.mark.fault(F.LEASE_EXPIRED, F.CONCURRENT_WORKERS)
def test_a_deliverer_whose_claim_was_taken_over_records_nothing(pool: ConnectionPool) -> None:
    spool = PgSpool(pool, TABLE, retry_base_s=30.0, retry_max_s=60.0, max_attempts=3, claim_lease_s=60.0)
    it = item(cluster="taken-over")
    spool.put(it, hold_s=60)
    second: list[Outcome | None] = []

    def slow(x: SpoolItem) -> Outcome:  # while the first deliverer waits on Prefect, its lease runs out
        with pool.connection() as conn:
            q = sql.SQL("UPDATE {} SET claimed_until = now() - interval '1 millisecond' WHERE dedup_key = %s")
            assert conn.execute(q.format(sql.Identifier(TABLE)), (x.dedup_key,)).rowcount == 1
        second.append(spool.deliver_one(x.dedup_key, lambda y: Outcome(ok=False, error="second: prefect down")))
        return ok(x)

    assert spool.deliver_one(it.dedup_key, slow) == ok(it)
    assert second == [Outcome(ok=False, error="second: prefect down")]  # the lease had run out: claimable again
    row = spool.row(it.dedup_key)  # the first deliverer's late success did not overwrite the holder's outcome
    assert row is not None and (row["state"], row["attempts"], row["flow_run_id"]) == ("received", 1, None)
    assert (row["last_error"], row["claimed_by"]) == ("second: prefect down", None)


def test_a_claimed_row_is_skipped_by_other_deliverers(spool: PgSpool) -> None:
    it = item(cluster="claimed")
    spool.put(it, hold_s=60)
    inner: list[Outcome | None] = []

    def deliver(x: SpoolItem) -> Outcome:
        inner.append(spool.deliver_one(x.dedup_key, ok))
        return ok(x)

    assert spool.deliver_one(it.dedup_key, deliver) == ok(it)
    assert inner == [None]  # claimed and not expired: not delivered twice
    assert spool.row(it.dedup_key)["state"] == "delivered"  # type: ignore[index]
