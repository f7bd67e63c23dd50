"""Contract tests of the degraded-mode PostgreSQL side (orders, outbox, policy) against the real server.

Every table name is unique to the test session, so the real `orders`/`cache_outbox` tables are never touched;
every test uses its own cluster id, so queue entries of one test never show up in another. The Cassandra
relay is tested in tests/cluster; here the cache is a fake that records calls or raises.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.degraded.compare import PG_ROW_HASH, Comparer
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.degraded.orders import OrderStore, SourceOfTruthUnavailable
from cassandra_recovery.degraded.outbox import Outbox, cache_lag
from cassandra_recovery.degraded.policy import Mode, PolicyStore, default_policy
from cassandra_recovery.degraded.relay import Relay
from cassandra_recovery.lab.postgres import ensure_postgres, stop_postgres
from cassandra_recovery.logic.checksum import ChunkSum, canonical, row_hash, to_millis, token_chunks
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN, token_of
from cassandra_recovery.settings import DomainConfig, Settings
from tests import faults as F
from tests.migrated import domain_pool, started_postgres

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("degraded"),
]

SUFFIX = uuid.uuid4().hex[:10]
INJECTION_IDS = [
    "x'); DROP TABLE orders;--",
    'a" OR 1=1 --',
    "'; DELETE FROM cache_outbox; --",
    "%s %(id)s {orders} $1",
    "$$; TRUNCATE orders; $$",
    "back\\slash\\x00 E'\\x1f'",
    "注文-ё-🙂",
]


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    return started_postgres(request)


@pytest.fixture(scope="session")
def cfg() -> DomainConfig:
    return DomainConfig(
        orders_table=f"orders_t{SUFFIX}",
        outbox_table=f"outbox_t{SUFFIX}",
        policy_table=f"policy_t{SUFFIX}",
    )


@pytest.fixture(scope="session")
def pool(settings: Settings, cfg: DomainConfig) -> Iterator[ConnectionPool]:
    with domain_pool(settings, cfg) as p:
        yield p


@pytest.fixture
def cluster_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(pool: ConnectionPool, cfg: DomainConfig, cluster_id: str) -> OrderStore:
    return OrderStore(pool, cfg, cluster_id)


def _outbox(pool: ConnectionPool, cfg: DomainConfig, cluster_id: str, **overrides: Any) -> Outbox:
    return Outbox(pool, cfg.model_copy(update=overrides), cluster_id)


def _order(oid: str, **kw: Any) -> Order:
    fields: dict[str, Any] = {"id": oid, "customer": "cust", "status": "new", "amount_cents": 100}
    return Order(**{**fields, **kw})


def _uid(prefix: str = "o") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _rows(pool: ConnectionPool, query: sql.SQL | sql.Composed, params: Any = None) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = fetch_all(conn.execute(query, params))
        conn.rollback()
    return rows


def _outbox_rows(pool: ConnectionPool, cfg: DomainConfig, cluster_id: str) -> list[dict[str, Any]]:
    q = sql.SQL("SELECT *, next_attempt_at > now() AS backing_off FROM {} WHERE cluster_id = %s ORDER BY seq")
    return _rows(pool, q.format(sql.Identifier(cfg.outbox_table)), (cluster_id,))


class FakeCache:
    """A CacheWriter that records calls, and raises for the keys in `fail`."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.puts: list[tuple[dict[str, Any], int]] = []
        self.deletes: list[tuple[str, int]] = []
        self.fail = fail or set()

    def put(self, payload: dict[str, Any], version: int) -> None:
        if payload["id"] in self.fail:
            raise RuntimeError(f"cache down for {payload['id']}")
        self.puts.append((payload, version))

    def delete(self, order_id: str, version: int) -> None:
        self.deletes.append((order_id, version))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BrokenPool:
    """Stands in for a pool whose server is gone; counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def connection(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise psycopg.OperationalError("connection refused (simulated)")


def _wait_claim(outbox: Outbox, relay_id: str, limit_s: float = 10.0) -> list[Any]:
    """Claim until something is ready (entries backing off for a short, configured time)."""
    deadline = time.monotonic() + limit_s
    while True:
        got = outbox.claim(relay_id)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


# --- writes ---------------------------------------------------------------------------------------------


def test_write_commits_row_version_and_one_outbox_entry(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    order = _order(_uid(), amount_cents=2**62, updated_at=datetime(2026, 5, 6, 7, 8, 9, 123456, UTC))
    before_us = time.time_ns() // 1000
    stored = store.write(order)
    after_us = time.time_ns() // 1000
    # a fresh row's version is the statement's clock in microseconds (same host, same clock)
    assert before_us <= stored.version <= after_us
    assert store.read(order.id) == stored
    assert stored.order.updated_at.microsecond == 123000

    rows = _outbox_rows(pool, cfg, cluster_id)
    assert len(rows) == 1
    (e,) = rows
    assert (e["order_id"], e["version"], e["op"], e["status"], e["attempts"]) == (
        order.id,
        stored.version,
        "upsert",
        "queued",
        0,
    )
    assert e["payload"] == order.payload()
    (row,) = _rows(
        pool,
        sql.SQL("SELECT token, version FROM {} WHERE id = %s").format(sql.Identifier(cfg.orders_table)),
        [order.id],
    )
    assert row == {"token": token_of(order.id), "version": stored.version}


@pytest.mark.fault(F.OUTBOX_INSERT_FAILING)
def test_write_is_atomic_when_the_queue_insert_fails(
    pool: ConnectionPool, cfg: DomainConfig, cluster_id: str, store: OrderStore
) -> None:
    broken = OrderStore(pool, cfg.model_copy(update={"outbox_table": f"missing_t{SUFFIX}"}), cluster_id)
    order = _order(_uid())
    with pytest.raises(psycopg.errors.UndefinedTable):
        broken.write(order)
    assert store.read(order.id) is None  # the row insert was rolled back with the failed enqueue
    assert _outbox_rows(pool, cfg, cluster_id) == []
    assert store.write(order).order == order  # the pool's connection is usable afterwards


def test_versions_strictly_increase_for_writes_in_the_same_microsecond(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    oid = _uid()
    versions = []
    for i in range(50):
        before_us = time.time_ns() // 1000
        v = store.write(_order(oid, amount_cents=i)).version
        assert v >= before_us  # never behind the clock, so it orders against client-timestamp writers
        versions.append(v)
    assert all(a < b for a, b in zip(versions, versions[1:], strict=False))
    stored = store.read(oid)
    assert stored is not None and stored.version == versions[-1] and stored.order.amount_cents == 49
    rows = _outbox_rows(pool, cfg, cluster_id)
    assert [r["version"] for r in rows] == versions  # exactly one entry per write, in commit order
    assert [r["payload"]["amount_cents"] for r in rows] == list(range(50))


def test_injection_ids_are_stored_literally(store: OrderStore, pool: ConnectionPool, cfg: DomainConfig) -> None:
    for oid in INJECTION_IDS:
        order = _order(oid + SUFFIX, customer=oid, status="'; --")
        stored = store.write(order)
        back = store.read(order.id)
        assert back == stored and back.order.id == oid + SUFFIX and back.order.customer == oid
    names = [cfg.orders_table, cfg.outbox_table, cfg.policy_table, "pg_class"]
    (r,) = _rows(pool, sql.SQL("SELECT array_agg(to_regclass(n)::text) AS t FROM unnest(%s::text[]) n"), [names])
    assert r["t"] == names  # every table still exists
    q = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(sql.Identifier(cfg.orders_table))
    stored_ids = {row["id"] for row in _rows(pool, q, [[oid + SUFFIX for oid in INJECTION_IDS]])}
    assert stored_ids == {oid + SUFFIX for oid in INJECTION_IDS}


# --- compare: PostgreSQL's hash is Python's hash --------------------------------------------------------


def test_pg_row_hash_equals_python(pool: ConnectionPool, cfg: DomainConfig) -> None:
    cases = [
        (_uid("plain"), "alice", "new", 0, datetime(2026, 11, 26, 3, 30, 0, 640000, UTC), 1),
        (_uid("ünï"), "Zoë 日本 🙂", "paid", 12345, datetime(2026, 1, 1, 0, 0, 0, 999999, UTC), 2**62),
        (_uid("q'uote\"s"), 'O\'Brien "the" --', "it's", 2**62, datetime(2004, 9, 8, 15, 49, 55, 705123, UTC), 7),
        (_uid("back\\slash"), "C:\\path\\x1f\\n", "st\\", 1, datetime(2038, 5, 19, 1, 15, 36, 963001, UTC), 9),
        (_uid("pre-epoch"), "old", "old", 5, datetime(1969, 12, 31, 23, 59, 59, 999500, UTC), 3),
    ]
    insert = sql.SQL(
        "INSERT INTO {} (id, customer, status, amount_cents, updated_at, version, token)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
    ).format(sql.Identifier(cfg.orders_table))
    with pool.connection() as conn, conn.transaction():
        for c in cases:
            conn.execute(insert, (*c, token_of(c[0])))
    query = sql.SQL("SELECT id, " + PG_ROW_HASH + " AS h FROM {} WHERE id = ANY(%s)").format(
        sql.Identifier(cfg.orders_table)
    )
    pg = {r["id"]: int(r["h"]) for r in _rows(pool, query, [[c[0] for c in cases]])}
    assert len(pg) == len(cases)
    for oid, customer, status, amount, updated, version in cases:
        as_cassandra_stores_it = updated.replace(microsecond=updated.microsecond // 1000 * 1000)
        expected = row_hash(canonical(oid, customer, status, amount, to_millis(as_cassandra_stores_it), version))
        assert pg[oid] == expected, oid


def test_pg_chunk_sums_equal_python_over_the_whole_table(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig
) -> None:
    for i in range(20):
        store.write(_order(_uid("chunk"), customer=f"c'{i}\\", amount_cents=i))
    rows = _rows(
        pool,
        sql.SQL("SELECT id, customer, status, amount_cents, updated_at, version, token FROM {}").format(
            sql.Identifier(cfg.orders_table)
        ),
    )
    assert len(rows) >= 20

    def py_hash(r: dict[str, Any]) -> int:
        ms = to_millis(r["updated_at"])
        return row_hash(canonical(r["id"], r["customer"], r["status"], r["amount_cents"], ms, r["version"]))

    comparer = Comparer(pool, None, cfg)  # type: ignore[arg-type]  # PostgreSQL side only
    assert comparer._pg_chunk(MIN_TOKEN, MAX_TOKEN) == ChunkSum.of(py_hash(r) for r in rows)
    for lo, hi in token_chunks(4):
        inside = [r for r in rows if lo < r["token"] <= hi]
        assert comparer._pg_chunk(lo, hi) == ChunkSum.of(py_hash(r) for r in inside)
        assert comparer._pg_key_hashes(lo, hi) == {r["id"]: py_hash(r) for r in inside}


# --- outbox: PostgreSQL queue semantics -----------------------------------------------------------------


def test_claim_leases_entries_and_counts_attempts(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = Outbox(pool, cfg, cluster_id)
    written = [store.write(_order(_uid())) for _ in range(3)]
    got = outbox.claim("relay-1")
    assert [e.order_id for e in got] == [w.order.id for w in written]
    assert [e.version for e in got] == [w.version for w in written]
    assert all(e.attempts == 1 and e.op == "upsert" for e in got)
    assert got[0].payload == written[0].order.payload()
    assert outbox.claim("relay-2") == []  # leased to relay-1
    rows = _outbox_rows(pool, cfg, cluster_id)
    assert {r["claimed_by"] for r in rows} == {"relay-1"}
    st = outbox.stats()
    assert (st.queued, st.in_flight, st.delivered, st.dead) == (3, 3, 0, 0)


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_concurrent_relays_never_claim_the_same_entry(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = Outbox(pool, cfg, cluster_id)
    for i in range(120):
        store.write(_order(f"conc-{cluster_id}-{i}"))
    claimed: dict[str, list[int]] = {"relay-a": [], "relay-b": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(relay_id: str) -> None:
        try:
            barrier.wait(timeout=30)
            while got := outbox.claim(relay_id, limit=5):
                claimed[relay_id].extend(e.seq for e in got)
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(r,)) for r in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    leftovers = [e.seq for e in outbox.claim("sweeper", limit=1000)]  # skipped while locked, if any
    everything = claimed["relay-a"] + claimed["relay-b"] + leftovers
    assert len(everything) == len(set(everything)) == 120
    by_seq = {r["seq"]: r for r in _outbox_rows(pool, cfg, cluster_id)}
    assert set(by_seq) == set(everything)
    for relay_id, seqs in claimed.items():
        assert all(by_seq[s]["claimed_by"] == relay_id and by_seq[s]["attempts"] == 1 for s in seqs)


@pytest.mark.fault(F.RELAY_KILLED, F.LEASE_EXPIRED)
def test_claimed_entry_is_reclaimable_after_its_lease_expires(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, relay_lease_s=60.0)
    store.write(_order(_uid()))
    (first,) = outbox.claim("relay-1")
    assert outbox.claim("relay-2") == []
    assert outbox.stats().in_flight == 1
    # The lease runs out (a crashed relay never reports back): its end moves into the past, no race with a
    # short lease on a busy machine.
    with pool.connection() as conn:
        q = sql.SQL("UPDATE {} SET claimed_until = now() - interval '1 millisecond' WHERE seq = %s")
        assert conn.execute(q.format(sql.Identifier(cfg.outbox_table)), (first.seq,)).rowcount == 1
    (again,) = outbox.claim("relay-2")
    assert again.seq == first.seq and again.attempts == 2
    (row,) = _outbox_rows(pool, cfg, cluster_id)
    assert row["claimed_by"] == "relay-2" and row["status"] == "queued"


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_failure_backs_off_and_keeps_the_error(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, backoff_base_s=30.0, max_attempts=5)
    store.write(_order(_uid()))
    (e,) = outbox.claim("relay-1")
    assert outbox.mark_failed("relay-1", [e.seq], "boom: " + "x" * 3000) == (1, 0)
    (row,) = _outbox_rows(pool, cfg, cluster_id)
    assert row["status"] == "queued" and row["backing_off"] and row["claimed_by"] is None
    assert row["last_error"].startswith("boom: ") and len(row["last_error"]) == 2000
    assert outbox.claim("relay-1") == []  # not before next_attempt_at
    st = outbox.stats()
    assert (st.queued, st.in_flight, st.dead) == (1, 0, 0)
    assert outbox.mark_failed("relay-1", [], "nothing") == (0, 0)


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_entry_goes_dead_after_max_attempts(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, backoff_base_s=0.05, max_attempts=2)
    store.write(_order(_uid()))
    (e,) = outbox.claim("relay-1")
    assert outbox.mark_failed("relay-1", [e.seq], "first") == (1, 0)
    (e2,) = _wait_claim(outbox, "relay-1")
    assert e2.seq == e.seq and e2.attempts == 2
    assert outbox.mark_failed("relay-1", [e2.seq], "second") == (0, 1)
    (row,) = _outbox_rows(pool, cfg, cluster_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 2, "second")
    time.sleep(0.1)  # past any back-off: dead stays dead
    assert outbox.claim("relay-1") == []
    st = outbox.stats()
    assert (st.queued, st.dead) == (0, 1) and st.oldest_dead_age_s > 0


def test_stats_counts_per_cluster_and_oldest_age(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = Outbox(pool, cfg, cluster_id)
    empty = outbox.stats()
    assert empty.as_dict() == {
        "queued": 0,
        "delivered": 0,
        "dead": 0,
        "in_flight": 0,
        "oldest_queued_age_s": 0.0,
        "oldest_dead_age_s": 0.0,
    }
    for _ in range(3):
        store.write(_order(_uid()))
    OrderStore(pool, cfg, cluster_id + "-other").write(_order(_uid()))  # another cluster's queue
    (first,) = outbox.claim("relay-1", limit=1)
    assert outbox.stats().in_flight == 1
    assert outbox.mark_delivered("relay-1", [first.seq]) == 1
    assert outbox.mark_delivered("relay-1", [first.seq]) == 0  # already delivered
    assert outbox.mark_delivered("relay-1", []) == 0
    st = outbox.stats()
    assert (st.queued, st.delivered, st.dead, st.in_flight) == (2, 1, 0, 0)
    q = sql.SQL(
        "SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS age FROM {}"
        " WHERE cluster_id = %s AND status = 'queued'"
    ).format(sql.Identifier(cfg.outbox_table))
    (later,) = _rows(pool, q, [cluster_id])
    assert 0 < st.oldest_queued_age_s <= later["age"]  # the oldest queued entry, not the delivered one


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_replay_dead_requeues_with_fresh_budget(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, max_attempts=1)
    for _ in range(2):
        store.write(_order(_uid()))
    got = outbox.claim("relay-1")
    assert outbox.mark_failed("relay-1", [e.seq for e in got], "cache down") == (0, 2)
    assert outbox.replay_dead([got[0].seq]) == 1
    rows = {r["seq"]: r for r in _outbox_rows(pool, cfg, cluster_id)}
    r0, r1 = rows[got[0].seq], rows[got[1].seq]
    assert (r0["status"], r0["attempts"], r0["replays"], r0["last_error"]) == ("queued", 0, 1, None)
    assert r1["status"] == "dead" and r1["replays"] == 0
    assert outbox.replay_dead() == 1  # all the remaining dead ones
    assert outbox.replay_dead() == 0
    again = outbox.claim("relay-2")
    assert sorted(e.seq for e in again) == sorted(e.seq for e in got)
    assert all(e.attempts == 1 for e in again)


def test_relay_coalesces_versions_of_a_key_into_one_put(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = Outbox(pool, cfg, cluster_id)
    hot, cold = _uid("hot"), _uid("cold")
    hot_writes = [store.write(_order(hot, amount_cents=i)) for i in range(3)]
    cold_write = store.write(_order(cold))
    cache = FakeCache()
    report = Relay(outbox, cache, "relay-a").run_once()
    assert (report.claimed, report.delivered, report.requeued, report.dead) == (4, 4, 0, 0)
    assert sorted(cache.puts, key=lambda p: p[0]["id"]) == sorted(
        [(hot_writes[-1].order.payload(), hot_writes[-1].version), (cold_write.order.payload(), cold_write.version)],
        key=lambda p: p[0]["id"],
    )
    rows = _outbox_rows(pool, cfg, cluster_id)
    assert all(r["status"] == "delivered" and r["delivered_at"] and r["claimed_by"] is None for r in rows)
    assert Relay(outbox, cache, "relay-a").run_once().claimed == 0


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_relay_backs_off_only_the_failing_key(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, backoff_base_s=30.0)
    bad, good = _uid("bad"), _uid("good")
    store.write(_order(bad))
    store.write(_order(bad, amount_cents=2))
    store.write(_order(good))
    cache = FakeCache(fail={bad})
    report = Relay(outbox, cache, "relay-a").run_once()
    assert (report.claimed, report.delivered, report.requeued, report.dead) == (3, 1, 2, 0)
    assert report.errors == [f"RuntimeError: cache down for {bad}"]
    assert [p[0]["id"] for p in cache.puts] == [good]
    rows = {r["order_id"]: r for r in _outbox_rows(pool, cfg, cluster_id)}
    assert rows[good]["status"] == "delivered"
    assert rows[bad]["status"] == "queued" and rows[bad]["last_error"] == report.errors[0]


def test_drain_returns_when_the_queue_is_empty(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = Outbox(pool, cfg.model_copy(update={"relay_batch": 2}), cluster_id)
    ids = [_uid() for _ in range(5)]
    for oid in ids:
        store.write(_order(oid))
    cache = FakeCache()
    seen: list[int] = []
    stats, total = Relay(outbox, cache, "relay-a").drain(
        timeout_s=60, idle_wait_s=0.05, progress=lambda s, r: seen.append(s.queued)
    )
    assert stats.queued == 0 and stats.delivered == 5
    assert total.claimed == total.delivered == 5
    assert sorted(p[0]["id"] for p in cache.puts) == sorted(ids)
    assert seen[-1] == 0 and len(seen) >= 3  # batches of 2
    stats2, total2 = Relay(outbox, cache, "relay-a").drain(timeout_s=60)
    assert stats2.queued == 0 and total2.claimed == 0


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_cache_lag_reports_lag_and_dead(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, max_attempts=1)
    assert cache_lag(outbox) == (0.0, False)
    store.write(_order(_uid()))
    lag, dead = cache_lag(outbox)
    assert lag > 0 and not dead
    (e,) = outbox.claim("relay-1")
    outbox.mark_failed("relay-1", [e.seq], "down")
    assert cache_lag(outbox) == (0.0, True)  # nothing queued, but the cache is known to miss an update
    outbox.replay_dead()
    lag, dead = cache_lag(outbox)
    assert lag > 0 and not dead


# --- policy ---------------------------------------------------------------------------------------------


def test_policy_default_then_set_and_get(pool: ConnectionPool, cfg: DomainConfig, cluster_id: str) -> None:
    policies = PolicyStore(pool, cfg)
    assert policies.get(cluster_id) == default_policy(cluster_id, cfg)
    set_ = policies.set(
        cluster_id,
        Mode.DEGRADED,
        "node down",
        "tester",
        read_consistency="one",
        fallback_enabled=False,
        incident_id="I1",
    )
    assert (set_.mode, set_.read_consistency, set_.fallback_enabled, set_.reason, set_.set_by, set_.incident_id) == (
        Mode.DEGRADED,
        "ONE",
        False,
        "node down",
        "tester",
        "I1",
    )
    assert set_.since is not None and set_.since.tzinfo is not None
    assert PolicyStore(pool, cfg).get(cluster_id) == set_  # a fresh store reads the same from PostgreSQL
    back = policies.set(cluster_id, Mode.NORMAL, "recovered", "tester")
    assert (back.mode, back.read_consistency, back.fallback_enabled, back.incident_id) == (
        Mode.NORMAL,
        cfg.read_consistency,
        True,
        None,
    )


def test_policy_cache_serves_stale_within_policy_cache_s(
    pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    clock = FakeClock()
    reader = PolicyStore(pool, cfg.model_copy(update={"policy_cache_s": 2.0}), clock=clock)
    assert reader.get(cluster_id).mode is Mode.NORMAL
    PolicyStore(pool, cfg).set(cluster_id, Mode.DEGRADED, "incident", "other-process")
    clock.now += 1.9
    assert reader.get(cluster_id).mode is Mode.NORMAL  # cached
    clock.now += 0.1
    assert reader.get(cluster_id).mode is Mode.DEGRADED  # refreshed


def test_policy_rejects_unknown_consistency(pool: ConnectionPool, cfg: DomainConfig, cluster_id: str) -> None:
    policies = PolicyStore(pool, cfg)
    with pytest.raises(ValueError, match="consistency"):
        policies.set(cluster_id, Mode.DEGRADED, "x", "tester", read_consistency="SOMETIMES")
    assert PolicyStore(pool, cfg).get(cluster_id) == default_policy(cluster_id, cfg)  # nothing stored


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_policy_keeps_last_known_when_postgres_unreachable(
    settings: Settings, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    clock = FakeClock()
    policies = PolicyStore(pool, cfg, clock=clock)
    known = policies.set(cluster_id, Mode.DEGRADED, "incident", "tester")
    broken = BrokenPool()
    policies.pool = broken  # type: ignore[assignment]
    clock.now += cfg.policy_cache_s + 1
    assert policies.get(cluster_id) == known
    assert broken.calls == 1
    # "asks PostgreSQL at most every policy_cache_s" holds during the outage too (each ask may block)
    clock.now += cfg.policy_cache_s / 2
    assert policies.get(cluster_id) == known
    assert broken.calls == 1
    clock.now += cfg.policy_cache_s
    assert policies.get(cluster_id) == known
    assert broken.calls == 2
    with pytest.raises(psycopg.OperationalError):
        policies.get(cluster_id + "-never-seen")  # nothing known: the error surfaces

    own = make_pool(settings, min_size=1, max_size=1)
    closing = PolicyStore(own, cfg, clock=clock)
    assert closing.get(cluster_id) == known
    own.close()
    clock.now += cfg.policy_cache_s + 1
    assert closing.get(cluster_id) == known


# --- PostgreSQL stopped and started again (last: it restarts the server) --------------------------------


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_write_refused_while_postgres_down_and_same_pool_recovers(
    settings: Settings, store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    before = store.write(_order(_uid("before")))
    refused = _order(_uid("refused"))
    try:
        stop_postgres(port=settings.postgres.port)
        with pytest.raises(SourceOfTruthUnavailable) as info:
            store.write(refused)
        msg = str(info.value)
        assert "PostgreSQL unavailable" in msg and refused.id in msg and "not accepted" in msg
    finally:
        ensure_postgres(settings)
    after = store.write(_order(_uid("after")))  # the same store and pool, not rebuilt
    assert after.version > 0 and store.read(after.order.id) == after
    assert store.read(refused.id) is None  # nothing of the refused write was committed
    assert [r["order_id"] for r in _outbox_rows(pool, cfg, cluster_id)] == [before.order.id, after.order.id]


def _expire_lease(pool: ConnectionPool, cfg: DomainConfig, seq: int) -> None:
    """The lease's end moved into the past: no race with a short lease on a busy machine."""
    with pool.connection() as conn:
        q = sql.SQL("UPDATE {} SET claimed_until = now() - interval '1 millisecond' WHERE seq = %s")
        assert conn.execute(q.format(sql.Identifier(cfg.outbox_table)), (seq,)).rowcount == 1


class ReclaimingCache(FakeCache):
    """While the first relay writes, its lease runs out and a second relay claims the entries."""

    def __init__(self, outbox: Outbox, pool: ConnectionPool, cfg: DomainConfig) -> None:
        super().__init__()
        self.outbox, self.pool, self.cfg = outbox, pool, cfg
        self.reclaimed: list[int] = []

    def put(self, payload: dict[str, Any], version: int) -> None:
        for seq in [r["seq"] for r in _outbox_rows(self.pool, self.cfg, self.outbox.cluster_id)]:
            _expire_lease(self.pool, self.cfg, seq)
        self.reclaimed = [e.seq for e in self.outbox.claim("relay-2")]
        super().put(payload, version)


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_stale_relay_marks_nothing_delivered(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, relay_lease_s=60.0)
    store.write(_order(_uid()))
    cache = ReclaimingCache(outbox, pool, cfg)
    report = Relay(outbox, cache, "relay-1").run_once()
    assert report.claimed == 1 and len(cache.reclaimed) == 1
    assert report.delivered == 0 and report.stale == 1
    (row,) = _outbox_rows(pool, cfg, cluster_id)
    assert (row["status"], row["claimed_by"], row["attempts"]) == ("queued", "relay-2", 2)


@pytest.mark.fault(F.LEASE_EXPIRED, F.CASSANDRA_REQUESTS_FAILING)
def test_stale_relay_cannot_fail_or_deliver_entries_another_relay_holds(
    store: OrderStore, pool: ConnectionPool, cfg: DomainConfig, cluster_id: str
) -> None:
    outbox = _outbox(pool, cfg, cluster_id, relay_lease_s=60.0, max_attempts=1)
    store.write(_order(_uid()))
    (first,) = outbox.claim("relay-1")
    _expire_lease(pool, cfg, first.seq)
    assert outbox.mark_delivered("relay-1", [first.seq]) == 0  # lease over, even with nobody else holding it
    (again,) = outbox.claim("relay-2")
    assert outbox.mark_failed("relay-1", [again.seq], "late") == (0, 0)
    assert outbox.mark_delivered("relay-1", [again.seq]) == 0
    (row,) = _outbox_rows(pool, cfg, cluster_id)
    assert (row["status"], row["claimed_by"], row["last_error"]) == ("queued", "relay-2", None)
    assert outbox.mark_delivered("relay-2", [again.seq]) == 1
