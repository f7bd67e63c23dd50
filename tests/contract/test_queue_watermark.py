"""Waiting for the write queue under sustained writes (real PostgreSQL): the waiter's snapshot watermark.

A waiter finishes once every entry committed before it started is delivered (or dead), however many writes keep
arriving. An entry whose transaction was still open when the waiter started is not waited for, even when its seq
is lower than entries that are: its writer had no acknowledgement yet, and seqs are assigned at insert, not commit.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.degraded.orders import OrderStore
from cassandra_recovery.degraded.outbox import Outbox
from cassandra_recovery.degraded.relay import Relay
from cassandra_recovery.settings import DomainConfig, Settings
from tests import faults as F
from tests.migrated import domain_pool, started_postgres

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("degraded"),
]

SUFFIX = uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def cfg() -> DomainConfig:
    # Small batches: the waiter needs many relay rounds, so the writers really overlap it.
    return DomainConfig(
        orders_table=f"orders_w{SUFFIX}", outbox_table=f"outbox_w{SUFFIX}", policy_table=f"policy_w{SUFFIX}",
        relay_batch=5, backoff_base_s=60.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest, cfg: DomainConfig) -> Iterator[ConnectionPool]:
    with domain_pool(started_postgres(request), cfg) as p:
        yield p


class GatedCache:
    """Records deliveries; refuses the keys in `fail`; its first put waits until `gate` is set (so writers are
    known to have committed while the waiter was running)."""

    def __init__(self, gate: threading.Event, fail: set[str]) -> None:
        self.gate, self.fail, self.delivered = gate, fail, set[str]()
        self.lock = threading.Lock()

    def put(self, payload: dict[str, Any], version: int) -> None:
        assert self.gate.wait(30), "the writers never wrote while the waiter ran"
        if payload["id"] in self.fail:
            raise RuntimeError(f"cache refuses {payload['id']}")
        with self.lock:
            self.delivered.add(payload["id"])

    def delete(self, order_id: str, version: int) -> None:
        raise AssertionError("the writers only upsert")


def _order(oid: str) -> Order:
    return Order(id=oid, customer="c", status="new", amount_cents=1)


def _entries(pool: ConnectionPool, cfg: DomainConfig, cluster: str, watermark: str) -> list[dict[str, Any]]:
    q = sql.SQL(
        "SELECT seq, order_id, status, xid IS NOT NULL AND pg_visible_in_snapshot(xid, %s::pg_snapshot) AS before"
        " FROM {} WHERE cluster_id = %s ORDER BY seq"
    ).format(sql.Identifier(cfg.outbox_table))
    with pool.connection() as conn:
        rows = fetch_all(conn.execute(q, (watermark, cluster)))
        conn.rollback()
    return rows


@pytest.mark.fault(F.SUSTAINED_WRITES, F.CONCURRENT_WORKERS)
def test_the_waiter_finishes_under_sustained_writes_with_everything_committed_before_it_delivered(
    pool: ConnectionPool, cfg: DomainConfig
) -> None:
    cluster = f"wm-{uuid.uuid4().hex[:12]}"
    store, outbox = OrderStore(pool, cfg, cluster), Outbox(pool, cfg, cluster)
    before = [store.write(_order(f"before-{i}")).order.id for i in range(12)]
    # A transaction that queued an entry (a lower seq than what follows) and is still open at the waiter's start.
    late_id = "open-at-start"
    late = psycopg.connect(Settings().postgres_conninfo(), connect_timeout=5)
    enqueue = sql.SQL("INSERT INTO {} (cluster_id, order_id, version, op, payload) VALUES (%s, %s, 1, 'upsert', %s)")
    payload = json.dumps(_order(late_id).payload())
    late.execute(enqueue.format(sql.Identifier(cfg.outbox_table)), (cluster, late_id, payload))
    before += [store.write(_order(f"before-higher-seq-{i}")).order.id for i in range(3)]

    stop, written_after_start = threading.Event(), threading.Event()
    counts = [0, 0, 0]
    started = threading.Event()

    def writer(n: int) -> None:
        while not stop.is_set():
            store.write(_order(f"w{n}-{counts[n] % 40}"))
            counts[n] += 1
            if started.is_set():
                written_after_start.set()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    watermark = outbox.watermark()
    started.set()
    late.commit()  # committed after the waiter started, with a seq below entries it must deliver
    late.close()
    cache = GatedCache(written_after_start, fail={late_id})
    try:
        left, report = Relay(outbox, cache, "waiter").deliver_committed_before(
            watermark, timeout_s=120, idle_wait_s=0.05
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    assert (left.queued, left.dead) == (0, 0)
    entries = _entries(pool, cfg, cluster, watermark)
    committed_before = [e for e in entries if e["before"]]
    assert {e["order_id"] for e in committed_before} >= set(before)
    assert all(e["status"] == "delivered" for e in committed_before)
    assert set(before) <= cache.delivered
    # The open transaction's entry: lower seq than delivered ones, not waited for, still queued (the cache refuses it).
    (late_entry,) = [e for e in entries if e["order_id"] == late_id]
    assert not late_entry["before"] and late_entry["status"] == "queued"
    assert late_entry["seq"] < max(e["seq"] for e in committed_before)
    # The writers kept committing while the waiter ran: the queue was never empty for the old "until 0" rule.
    assert any(not e["before"] and e["order_id"] != late_id for e in entries) and report.delivered > 0


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_dead_entries_committed_before_do_not_hold_the_waiter_and_are_reported(
    pool: ConnectionPool, cfg: DomainConfig
) -> None:
    cluster = f"wm-{uuid.uuid4().hex[:12]}"
    store = OrderStore(pool, cfg, cluster)
    outbox = Outbox(pool, cfg.model_copy(update={"max_attempts": 1}), cluster)
    store.write(_order("doomed"))
    store.write(_order("fine"))
    gate = threading.Event()
    gate.set()
    cache = GatedCache(gate, fail={"doomed"})
    left, _ = Relay(outbox, cache, "waiter").deliver_committed_before(outbox.watermark(), timeout_s=60)
    assert (left.queued, left.dead) == (0, 1)
    assert cache.delivered == {"fine"}
