"""The order service: writes to PostgreSQL, reads from the Cassandra cache within a staleness bound.

Staleness bound. Every write commits to PostgreSQL together with an outbox entry; the relay writes
entries to Cassandra at write_consistency and reads use read_consistency (both LOCAL_QUORUM by default,
so a read overlaps every delivered write). A read is served from Cassandra only while the oldest
undelivered entry is at most `max_staleness_s` old and no entry is dead, a condition checked at most
`lag_cache_s` ago. Hence a Cassandra answer reflects every write committed more than
`max_staleness_s + lag_cache_s` seconds earlier (5.5 s by default); otherwise the read goes to
PostgreSQL, which is never stale. Reads at a weaker consistency (the policy's non-critical reads, e.g.
ONE in degraded mode) trade that bound for availability and say so in their result.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from pydantic import TypeAdapter, ValidationError

from cassandra_recovery.degraded.cache import OrderCache
from cassandra_recovery.degraded.model import Order, OrderId, ReadResult, ReadSource, StoredOrder
from cassandra_recovery.degraded.orders import OrderStore, SourceOfTruthUnavailable
from cassandra_recovery.degraded.outbox import Outbox, cache_lag
from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.breaker import CircuitBreaker
from cassandra_recovery.settings import DomainConfig

_ID = TypeAdapter(OrderId)


def validate_id(order_id: object) -> str:
    """A usable order id or ConfigError naming the problem (ids are data: never spliced into SQL/CQL)."""
    try:
        return _ID.validate_python(order_id)
    except ValidationError as e:
        raise ConfigError(f"invalid order id {order_id!r}: {e.errors()[0]['msg']}") from e


class OrderService:
    def __init__(
        self,
        store: OrderStore,
        cache: OrderCache,
        outbox: Outbox,
        policy: PolicyStore,
        breaker: CircuitBreaker,
        cfg: DomainConfig,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.cache = cache
        self.outbox = outbox
        self.policy = policy
        self.breaker = breaker
        self.cfg = cfg
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._lag: tuple[float, float, bool] | None = None  # (checked_at, lag_s, has_dead)
        self._lock = threading.Lock()

    def write(self, order: Order) -> StoredOrder:
        """Acknowledged only once PostgreSQL committed row and queue entry; raises SourceOfTruthUnavailable."""
        stored = self.store.write(order)
        self._count("writes")
        return stored

    def read(self, order_id: object, critical: bool = True) -> ReadResult:
        oid = validate_id(order_id)
        policy = self.policy.get(self.store.cluster_id)
        consistency = None
        if policy.mode is Mode.DEGRADED:
            if critical and policy.fallback_enabled:
                return self._from_postgres(oid, "policy: degraded, critical read")
            consistency = policy.read_consistency
        too_stale = self._staleness_reason()
        if too_stale and policy.fallback_enabled:
            return self._from_postgres(oid, too_stale)
        if not self.breaker.allow():
            if policy.fallback_enabled:
                return self._from_postgres(oid, "breaker open")
            raise SourceOfTruthUnavailable("Cassandra breaker open and fallback disabled by policy")
        try:
            found = self.cache.get(oid, consistency)
        except Exception as e:  # timeouts, unavailable, no host: all count against the breaker
            self.breaker.record_failure()
            if not policy.fallback_enabled:
                raise
            return self._from_postgres(oid, f"cache error: {type(e).__name__}")
        self.breaker.record_success()
        if found is None:
            return self._from_postgres(oid, "cache miss")
        self._count("reads_cassandra")
        reason = "cache" if consistency is None else f"cache at {consistency} (non-critical)"
        return ReadResult(order=found, source=ReadSource.CASSANDRA, reason=reason)

    def _from_postgres(self, oid: str, reason: str) -> ReadResult:
        found = self.store.read(oid)
        self._count("reads_postgres")
        self._count(f"postgres_because:{reason.split(':')[0]}")
        return ReadResult(order=found, source=ReadSource.POSTGRES, reason=reason)

    def _staleness_reason(self) -> str | None:
        now = self.clock()
        with self._lock:
            cached = self._lag
        if cached is None or now - cached[0] >= self.cfg.lag_cache_s:
            try:
                lag, dead = cache_lag(self.outbox)
            except Exception:
                lag, dead = float("inf"), False  # unknown lag: do not trust the cache (remembered too)
            cached = (now, lag, dead)
            with self._lock:
                self._lag = cached
        _, lag, dead = cached
        if dead:
            return "dead queue entries: cache known to miss updates"
        if lag == float("inf"):
            return "cannot measure queue lag"
        if lag > self.cfg.max_staleness_s:
            return f"queue lag {lag:.1f}s > {self.cfg.max_staleness_s:g}s"
        return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1
