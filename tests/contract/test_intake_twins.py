"""One contract, two implementations: the in-memory twins the unit tests use (MemorySpool, MemoryIncidents)
against the PostgreSQL stores (PgSpool, IncidentStore behind StoreIncidents), through the receiver's ports only.
A twin that drifted from its store would make the fast tests prove the wrong thing."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.intake.memory import MemoryIncidents, MemorySpool
from cassandra_recovery.intake.ports import Incidents, Outcome, Spool, SpoolItem, StoreUnavailable
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

NAMES = SchemaNames(incident_prefix=f"inc_w{uuid.uuid4().hex[:10]}", inbox=f"alert_inbox_w{uuid.uuid4().hex[:10]}")
RETRY = {"retry_base_s": 30.0, "retry_max_s": 60.0, "max_attempts": 3}
DEAD = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest) -> Iterator[ConnectionPool]:
    s = Settings()
    was_online = any(c.online for c in _clusters(s.postgres.port))
    ensure_postgres(s)
    if not was_online:
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    migrated_names(s, NAMES)
    p = make_pool(s, max_size=12)
    try:
        yield p
    finally:
        p.close()
        p_ = NAMES.incident_prefix
        with owner_conn(s) as conn:
            tables = [f"{p_}_reports", f"{p_}_events", f"{p_}s", NAMES.inbox]
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
            conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(f"{p_}_events_append_only")))
            drop_version_tables(conn, NAMES)


@pytest.fixture(params=["postgres", "memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_spool(kind: str, request: pytest.FixtureRequest) -> Callable[[bool], Spool]:
    """A spool of this kind; up=False: its store refuses every call."""

    def make(up: bool = True) -> Spool:
        if kind == "memory":
            spool = MemorySpool(time.monotonic, **RETRY)  # type: ignore[arg-type]
            spool.up = up
            return spool
        if not up:
            dead = ConnectionPool(DEAD, open=False, timeout=0.3)  # refused at once; no need to wait long
            dead.open(wait=False)
            request.addfinalizer(dead.close)
            return PgSpool(dead, NAMES.inbox, **RETRY)  # type: ignore[arg-type]
        return PgSpool(request.getfixturevalue("pool"), NAMES.inbox, **RETRY)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_incidents(kind: str, request: pytest.FixtureRequest) -> Callable[[bool], Incidents]:
    def make(up: bool = True) -> Incidents:
        if kind == "memory":
            return MemoryIncidents(up=up)
        if not up:
            dead = ConnectionPool(DEAD, open=False, timeout=0.3)  # refused at once; no need to wait long
            dead.open(wait=False)
            request.addfinalizer(dead.close)
            return StoreIncidents(IncidentLauncher(IncidentStore(dead, NAMES.incident_prefix)))
        return StoreIncidents(IncidentLauncher(IncidentStore(request.getfixturevalue("pool"), NAMES.incident_prefix)))

    return make


def item(status: str = "firing") -> SpoolItem:
    key = uuid.uuid4().hex
    return SpoolItem(key, f"launch-{key}", "alertmanager", "twins", status, {"kind": "alert"})  # type: ignore[arg-type]


def ok(it: SpoolItem) -> Outcome:
    return Outcome(ok=True, incident_id="inc-x", flow_run_id=f"run-{it.dedup_key[:6]}")


def drain(spool: Spool, deliver: Callable[[SpoolItem], Outcome]) -> None:
    while spool.deliver_due(deliver, limit=50):  # earlier tests' due items (same table) go too
        pass


def test_one_item_per_key(make_spool: Callable[..., Spool]) -> None:
    spool = make_spool()
    before, it = spool.pending_count(), item()
    assert (spool.put(it, hold_s=60), spool.put(it, hold_s=60)) == (True, False)
    assert spool.pending_count() == before + 1


def test_delivered_once_and_never_again(make_spool: Callable[..., Spool]) -> None:
    spool, it, seen = make_spool(), item(), Counter[str]()
    spool.put(it, hold_s=0)
    drain(spool, lambda x: seen.update([x.dedup_key]) or ok(x))
    assert seen[it.dedup_key] == 1
    assert spool.deliver_one(it.dedup_key, ok) is None


def test_a_held_item_is_left_to_the_inline_path(make_spool: Callable[..., Spool]) -> None:
    spool, it, seen = make_spool(), item(), Counter[str]()
    spool.put(it, hold_s=60)
    drain(spool, lambda x: seen.update([x.dedup_key]) or ok(x))
    assert seen[it.dedup_key] == 0
    assert spool.deliver_one(it.dedup_key, ok) == ok(it)


def test_a_resolved_alert_is_recorded_once(make_spool: Callable[..., Spool]) -> None:
    spool, it = make_spool(), item("resolved")
    spool.put(it, hold_s=60)
    assert spool.deliver_one(it.dedup_key, lambda x: Outcome(ok=True)) == Outcome(ok=True)
    assert spool.deliver_one(it.dedup_key, ok) is None


@pytest.mark.fault(F.PREFECT_DOWN)
def test_failures_back_off_carry_the_incident_and_end_dead(make_spool: Callable[..., Spool]) -> None:
    spool, it = make_spool(), item()
    spool.put(it, hold_s=0)
    fail = Outcome(ok=False, incident_id="inc-7", error="prefect is down")
    assert spool.deliver_one(it.dedup_key, lambda x: fail) == fail
    seen: list[SpoolItem] = []
    drain(spool, lambda x: seen.append(x) or (ok(x) if x.dedup_key != it.dedup_key else fail))
    assert it.dedup_key not in {x.dedup_key for x in seen}  # backing off: not due yet
    spool.deliver_one(it.dedup_key, lambda x: seen.append(x) or fail)
    assert (seen[-1].incident_id, seen[-1].attempts) == ("inc-7", 1)  # the retry knows its incident

    def boom(x: SpoolItem) -> Outcome:
        raise RuntimeError("bug in delivery")

    outcome = spool.deliver_one(it.dedup_key, boom)  # the third and last attempt allowed
    assert outcome is not None and not outcome.ok and "bug in delivery" in (outcome.error or "")
    assert spool.deliver_one(it.dedup_key, ok) is None  # dead: never delivered


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_concurrent_deliverers_never_deliver_one_item_twice(make_spool: Callable[..., Spool]) -> None:
    spool, items = make_spool(), [item() for _ in range(20)]
    for it in items:
        spool.put(it, hold_s=0)
    calls: Counter[str] = Counter()
    lock, start = threading.Lock(), threading.Barrier(6)

    def deliver(x: SpoolItem) -> Outcome:
        with lock:
            calls[x.dedup_key] += 1
        time.sleep(0.01)  # a delivery takes time: widens the window for a double claim
        return ok(x)

    def worker() -> None:
        start.wait(timeout=30)
        drain(spool, deliver)
        spool.deliver_one(items[0].dedup_key, deliver)  # the inline path racing too

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert {it.dedup_key: calls[it.dedup_key] for it in items} == {it.dedup_key: 1 for it in items}


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_a_store_that_is_down_raises_store_unavailable(
    make_spool: Callable[..., Spool], make_incidents: Callable[..., Incidents]
) -> None:
    with pytest.raises(StoreUnavailable):
        make_spool(False).put(item(), hold_s=0)
    with pytest.raises(StoreUnavailable):
        make_incidents(False).open_or_join("twins-down", {"source": "test"}, "test")


def test_one_open_incident_per_cluster_joined_and_noted(make_incidents: Callable[..., Incidents]) -> None:
    incidents, cluster = make_incidents(), f"twins-{uuid.uuid4().hex[:8]}"
    assert incidents.note_resolved(cluster, {"status": "resolved"}, "test") is None  # nothing open: nothing noted
    first = incidents.open_or_join(cluster, {"source": "a"}, "test")
    assert incidents.open_or_join(cluster, {"source": "b"}, "test") == first
    assert incidents.note_resolved(cluster, {"status": "resolved"}, "test") == first
    assert incidents.open_or_join(f"{cluster}-other", {"source": "c"}, "test") != first
