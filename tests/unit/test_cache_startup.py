"""The degraded-mode service starts during a full Cassandra outage (issue 15 item 3): nothing connects or runs DDL
at start-up, cache calls fail at once while Cassandra is away (reads fall back to PostgreSQL, the relay backs
off), the connection is tried in the background at a bounded pace, and its failure is one line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from cassandra.cluster import NoHostAvailable

from cassandra_recovery.degraded import service as service_module
from cassandra_recovery.degraded.cache import OrderCache
from cassandra_recovery.degraded.connect import BackgroundConnect, CacheUnavailable
from cassandra_recovery.degraded.model import Order, ReadSource, StoredOrder
from cassandra_recovery.degraded.policy import default_policy
from cassandra_recovery.degraded.schema import SPECULATIVE_RETRY, schema_in_place
from cassandra_recovery.degraded.service import OrderService
from cassandra_recovery.logic.breaker import BreakerConfig, CircuitBreaker
from cassandra_recovery.settings import DomainConfig
from tests import faults as F

pytestmark = pytest.mark.area("degraded")

DOWN = NoHostAvailable("Unable to connect to any servers", {"127.0.0.2:9042": OSError("timed out")})


class Spawned:
    """Collects background attempts; the test runs them when it chooses (no threads, no timing)."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, fn: Callable[[], None]) -> None:
        self.pending.append(fn)

    def run(self) -> None:
        while self.pending:
            self.pending.pop(0)()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_calls_fail_at_once_while_connecting_then_use_the_connection() -> None:
    spawned, outcomes = Spawned(), [DOWN, "session"]
    calls = []

    def connect() -> str:
        calls.append(1)
        got = outcomes.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    clock = Clock()
    link = BackgroundConnect(connect, "Cassandra (lab)", retry_s=5.0, clock=clock, spawn=spawned)
    with pytest.raises(CacheUnavailable, match="connecting in the background"):
        link.get()
    assert calls == [] and len(spawned.pending) == 1  # the caller never ran the connect itself
    with pytest.raises(CacheUnavailable):
        link.get()
    assert len(spawned.pending) == 1  # one attempt at a time
    spawned.run()
    with pytest.raises(CacheUnavailable) as failed:
        link.get()
    message = str(failed.value)
    assert "NoHostAvailable" in message and "\n" not in message
    assert spawned.pending == []  # the failed attempt is not repeated before retry_s
    clock.now += 5.0
    with pytest.raises(CacheUnavailable):
        link.get()
    spawned.run()
    assert link.get() == "session" and link.ready and calls == [1, 1]


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_connect_now_reports_an_unreachable_cluster_in_one_line() -> None:
    def connect() -> str:
        raise DOWN

    with pytest.raises(CacheUnavailable) as e:
        BackgroundConnect(connect, "Cassandra (lab)").connect_now()
    assert str(e.value).startswith("cannot reach Cassandra (lab): NoHostAvailable") and "\n" not in str(e.value)


class FrozenCql:
    """A CqlClient whose every node is frozen: opening the session blocks until released, then fails."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(id="lab", local_datacenter="datacenter1")
        self.release = threading.Event()
        self.asked = threading.Event()

    @property
    def session(self) -> Any:
        self.asked.set()
        self.release.wait(30)
        raise DOWN


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_the_service_cache_does_not_wait_for_a_frozen_cluster() -> None:
    cql = FrozenCql()
    try:
        cache = OrderCache(cql, DomainConfig(), background=True)  # type: ignore[arg-type]
        assert cql.asked.wait(30)  # the background attempt is stuck in the driver's connect...
        assert not cache.connected
        with pytest.raises(CacheUnavailable):  # ...and callers are not
            cache.get("o-1")
        payload = {"id": "o-1", "customer": "c", "status": "new", "amount_cents": 1, "updated_at_ms": 0}
        errors = cache.put_many([(payload, 1), (payload, 2)])
        assert [type(e) for e in errors] == [CacheUnavailable, CacheUnavailable]  # the relay backs them off
    finally:
        cql.release.set()


class MemoryStore:
    cluster_id = "lab"

    def __init__(self) -> None:
        self.rows: dict[str, StoredOrder] = {}

    def write(self, order: Order) -> StoredOrder:
        stored = StoredOrder(order=order, version=len(self.rows) + 1)
        self.rows[order.id] = stored
        return stored

    def read(self, order_id: str) -> StoredOrder | None:
        return self.rows.get(order_id)


class UnavailableCache:
    def get(self, order_id: str, consistency: str | None = None) -> StoredOrder | None:
        raise CacheUnavailable("Cassandra (lab) not connected yet: connecting in the background")


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_with_cassandra_away_writes_are_accepted_and_reads_served_from_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service_module, "cache_lag", lambda outbox: (0.0, False))  # the queue is not lagging
    cfg, store = DomainConfig(), MemoryStore()
    policy = SimpleNamespace(get=lambda cluster_id: default_policy(cluster_id, cfg))
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2))
    service = OrderService(store, UnavailableCache(), None, policy, breaker, cfg)  # type: ignore[arg-type]
    stored = service.write(Order(id="o-1", customer="c", status="new", amount_cents=1))
    reads = [service.read("o-1") for _ in range(3)]
    assert all(r.source is ReadSource.POSTGRES and r.order == stored for r in reads)
    assert [r.reason for r in reads] == ["cache error: CacheUnavailable"] * 2 + ["breaker open"]


def _metadata(options: dict[str, Any] | None) -> Any:
    tables = {} if options is None else {"orders": SimpleNamespace(options=options)}
    return SimpleNamespace(keyspaces={"shop": SimpleNamespace(tables=tables)})


@pytest.mark.parametrize(
    ("options", "in_place"),
    [(None, False), ({"speculative_retry": "99p"}, False), ({"speculative_retry": SPECULATIVE_RETRY}, True)],
)
def test_no_ddl_when_the_cache_schema_is_in_place(options: dict[str, Any] | None, in_place: bool) -> None:
    cfg = DomainConfig(keyspace="shop", cassandra_table="orders")
    assert schema_in_place(_metadata(options), cfg) is in_place
    assert schema_in_place(SimpleNamespace(keyspaces={}), cfg) is False
