"""The degraded-mode service on the real lab and real PostgreSQL: freezes, crashes, order, compare."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from cassandra_recovery.degraded.compare import Comparer
from cassandra_recovery.degraded.model import Order, ReadSource
from cassandra_recovery.degraded.policy import Mode
from cassandra_recovery.degraded.workload import WorkloadSpec, run_workload
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.breaker import BreakerConfig, BreakerState
from cassandra_recovery.logic.murmur3 import token_of
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import ServiceParts, service_parts
from tests import faults as F
from tests.cluster.degraded_env import degraded_settings, domain_env
from tests.migrated import migrated

pytestmark = pytest.mark.area("degraded")

ROOT = Path(__file__).resolve().parents[2]
_OUTBOX_ROW = sql.SQL("SELECT status, attempts FROM {} WHERE order_id = %s")


@pytest.fixture(scope="module")
def settings(lab: Lab, request: pytest.FixtureRequest) -> Settings:
    ensure_postgres(Settings())
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]
    return degraded_settings()


@pytest.fixture
def parts(settings: Settings) -> Iterator[ServiceParts]:
    p = service_parts(migrated(settings), breaker=BreakerConfig(failure_threshold=3, open_for_s=2.0))
    p.cql.truncate(settings.domain.keyspace, settings.domain.cassandra_table, timeout_s=30)
    with p.pg.pool.connection() as conn:
        d = settings.domain
        conn.execute(
            sql.SQL("TRUNCATE {}, {}, {}").format(
                sql.Identifier(d.orders_table), sql.Identifier(d.outbox_table), sql.Identifier(d.policy_table)
            )
        )
        conn.commit()
    yield p
    p.close()


def _compare(p: ServiceParts) -> dict[str, object]:
    return Comparer(p.pg.pool, p.cql, p.pg.store.cfg).run(chunks=16).as_dict()


def _pg_rows(p: ServiceParts) -> int:
    q = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(p.pg.store.cfg.orders_table))
    with p.pg.pool.connection() as conn:
        row = conn.execute(q).fetchone()
    assert row is not None
    return int(row[0] if not isinstance(row, dict) else row["n"])


@pytest.mark.fault(F.NODE_FROZEN)
def test_one_frozen_node_keeps_writes_reads_within_bound_and_the_cache_share(lab: Lab, parts: ServiceParts) -> None:
    run_workload(parts.service, WorkloadSpec(rate=200, operations=300, keys=200, read_ratio=0.0), relay=parts.relay)
    lab.freeze("node3")
    rep = run_workload(parts.service, WorkloadSpec(rate=60, duration_s=12, keys=200, read_ratio=0.8), relay=parts.relay)
    print("one node frozen:", rep.as_dict())
    assert rep.write_errors == 0 and rep.read_errors == 0
    assert rep.stale_reads == 0
    assert rep.reads >= 100  # enough reads for the share to mean something
    assert rep.cassandra_share >= 0.95, rep.as_dict()


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_every_node_frozen_writes_queue_reads_fall_back_then_drain_and_compare_equal(
    lab: Lab, parts: ServiceParts
) -> None:
    calls_while_open = 0
    calls = 0
    real_get = parts.cache.get

    def counting_get(order_id: str, consistency: str | None = None):  # type: ignore[no-untyped-def]
        nonlocal calls, calls_while_open
        calls += 1
        if parts.breaker.state is BreakerState.OPEN:
            calls_while_open += 1
        return real_get(order_id, consistency)

    parts.cache.get = counting_get  # type: ignore[method-assign]
    run_workload(parts.service, WorkloadSpec(rate=200, operations=200, keys=100, read_ratio=0.0), relay=parts.relay)
    for n in ("node1", "node2", "node3"):
        lab.freeze(n)
    rep = run_workload(parts.service, WorkloadSpec(rate=40, duration_s=8, keys=100, read_ratio=0.7), relay=parts.relay)
    print("all frozen:", rep.as_dict(), "cassandra calls", calls)
    assert rep.write_errors == 0 and rep.writes > 50  # every write acknowledged by PostgreSQL
    assert rep.stale_reads == 0 and rep.read_errors == 0
    assert rep.reads_postgres == rep.reads  # nothing could come from the frozen cluster
    assert parts.breaker.snapshot().times_opened >= 1
    assert calls_while_open == 0  # an open breaker makes no Cassandra call at all
    assert calls < rep.reads / 4  # the breaker kept nearly every read away from Cassandra
    queued = parts.pg.outbox.stats()
    assert queued.queued > 0 and queued.dead == 0

    for n in ("node1", "node2", "node3"):
        lab.thaw(n, wait=False)
    lab.wait_all_up()
    stats, _ = parts.relay.drain(timeout_s=180)
    assert (stats.queued, stats.dead) == (0, 0)
    result = _compare(parts)
    assert result["equal"] is True, result
    rows = _pg_rows(parts)  # the keys written (the workload picks them at random among 100)
    assert 0 < rows <= 100 and result["rows_compared"] == {"postgres": rows, "cassandra": rows}, (rows, result)


@pytest.mark.fault(F.WRITES_OUT_OF_ORDER)
def test_two_versions_delivered_in_reverse_order_leave_the_newer(parts: ServiceParts) -> None:
    v1 = parts.service.write(Order(id="reverse-1", customer="first", status="new", amount_cents=1))
    v2 = parts.service.write(Order(id="reverse-1", customer="second", status="paid", amount_cents=2))
    assert v2.version > v1.version
    entries = parts.pg.outbox.claim("test-relay")
    by_version = {e.version: e for e in entries}
    parts.cache.put(by_version[v2.version].payload, v2.version)  # newer first...
    parts.cache.put(by_version[v1.version].payload, v1.version)  # ...then the older one, late
    parts.pg.outbox.mark_delivered("test-relay", [e.seq for e in entries])
    got = parts.cache.get("reverse-1", "ALL")
    assert got is not None and got.version == v2.version and got.order.customer == "second"


@pytest.mark.fault(F.RELAY_KILLED, F.LEASE_EXPIRED)
def test_relay_killed_between_cassandra_write_and_marking_delivered(settings: Settings, parts: ServiceParts) -> None:
    stored = parts.service.write(Order(id="crash-1", customer="c", status="new", amount_cents=7))
    env = {**os.environ, **domain_env(relay_lease_s=2)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cluster.crashing_relay"],  # a module: it imports test helpers
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == -9, proc.stderr
    in_cassandra = parts.cache.get("crash-1", "ALL")
    assert in_cassandra is not None and in_cassandra.version == stored.version  # the write happened...
    with parts.pg.pool.connection() as conn:
        row = conn.execute(_OUTBOX_ROW.format(sql.Identifier(settings.domain.outbox_table)), ("crash-1",)).fetchone()
    assert row == {"status": "queued", "attempts": 1}  # ...but was never marked delivered
    time.sleep(2.5)  # the dead relay's lease (2 s) runs out
    stats, report = parts.relay.drain(timeout_s=60)
    assert stats.queued == 0 and report.delivered == 1
    with parts.pg.pool.connection() as conn:
        row = conn.execute(_OUTBOX_ROW.format(sql.Identifier(settings.domain.outbox_table)), ("crash-1",)).fetchone()
    assert row == {"status": "delivered", "attempts": 2}
    again = parts.cache.get("crash-1", "ALL")
    assert again is not None and again.version == stored.version and again.order == stored.order


@pytest.mark.fault(F.CACHE_DIVERGED)
def test_compare_finds_a_row_deleted_in_cassandra_and_one_changed_in_postgres(
    settings: Settings, parts: ServiceParts
) -> None:
    for i in range(30):
        parts.service.write(Order(id=f"cmp-{i:02d}", customer="c", status="new", amount_cents=i))
    parts.relay.drain(timeout_s=60)
    assert _compare(parts)["equal"] is True
    parts.cql.execute(
        f"DELETE FROM {settings.domain.keyspace}.{settings.domain.cassandra_table} WHERE id = %s", ("cmp-03",)
    )
    with parts.pg.pool.connection() as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET status = 'changed' WHERE id = %s").format(
                sql.Identifier(settings.domain.orders_table)
            ),
            ("cmp-17",),
        )
        conn.commit()
    result = _compare(parts)
    assert result["equal"] is False
    assert result["missing"] == ["cmp-03"] and result["different"] == ["cmp-17"] and result["extra"] == []
    assert result["rows_compared"] == {"postgres": 30, "cassandra": 29}


INJECTIONS = [
    "x'); DROP TABLE orders_ct;--",
    'a" OR 1=1 --',
    "id; TRUNCATE shop_test.orders",
    "ünïcødé ✓",
    "%s %(id)s ?",
]


def test_ids_carrying_sql_or_cql_are_stored_literally_on_both_sides(settings: Settings, parts: ServiceParts) -> None:
    for oid in INJECTIONS:
        parts.service.write(Order(id=oid, customer=oid, status="new", amount_cents=1))
    parts.relay.drain(timeout_s=60)
    for oid in INJECTIONS:
        res = parts.service.read(oid)
        assert res.source is ReadSource.CASSANDRA and res.order is not None
        assert res.order.order.id == oid and res.order.order.customer == oid
        token = parts.cql.execute(
            f"SELECT token(id) AS t FROM {settings.domain.keyspace}.{settings.domain.cassandra_table} WHERE id = %s",
            (oid,),
        )[0]["t"]
        assert token == token_of(oid)  # our Murmur3 is Cassandra's
    assert _compare(parts)["equal"] is True


def test_degraded_policy_sends_critical_reads_to_postgres_and_others_to_cassandra_at_one(parts: ServiceParts) -> None:
    parts.service.write(Order(id="pol-1", customer="c", status="new", amount_cents=1))
    parts.relay.drain(timeout_s=60)
    assert parts.service.read("pol-1").source is ReadSource.CASSANDRA
    parts.pg.policy.set(parts.cluster.id, Mode.DEGRADED, reason="test", set_by="pytest", read_consistency="ONE")
    critical = parts.service.read("pol-1")
    relaxed = parts.service.read("pol-1", critical=False)
    assert (critical.source, critical.reason) == (ReadSource.POSTGRES, "policy: degraded, critical read")
    assert (relaxed.source, relaxed.reason) == (ReadSource.CASSANDRA, "cache at ONE (non-critical)")
