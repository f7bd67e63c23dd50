"""A workload that drives the order service: writes and reads at a rate, checking the staleness bound."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cassandra_recovery.degraded.model import Order, ReadSource
from cassandra_recovery.degraded.relay import Relay
from cassandra_recovery.degraded.service import OrderService
from cassandra_recovery.errors import RecoveryError


@dataclass
class WorkloadReport:
    writes: int = 0
    write_errors: int = 0
    reads: int = 0
    reads_cassandra: int = 0
    reads_postgres: int = 0
    read_errors: int = 0
    stale_reads: int = 0  # reads older than the staleness bound allows: must stay 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    postgres_reasons: dict[str, int] = field(default_factory=dict)
    read_latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def cassandra_share(self) -> float:
        served = self.reads_cassandra + self.reads_postgres
        return self.reads_cassandra / served if served else 0.0

    def latency_ms(self, q: float) -> float | None:
        xs = sorted(self.read_latencies_ms)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        lat = d.pop("read_latencies_ms")
        d["read_latency_ms"] = {
            "p50": self.latency_ms(0.5),
            "p99": self.latency_ms(0.99),
            "max": round(max(lat), 1) if lat else None,
        }
        d["cassandra_share"] = round(self.cassandra_share, 4)
        d["errors"] = self.errors[-10:]
        return d


@dataclass(frozen=True)
class WorkloadSpec:
    rate: float = 100.0  # operations per second (reads + writes)
    duration_s: float | None = 10.0
    operations: int | None = None
    keys: int = 500
    read_ratio: float = 0.8
    critical: bool = True
    seed: int = 1
    key_prefix: str = "order-"

    def __post_init__(self) -> None:
        if not 0 <= self.read_ratio <= 1:
            raise ValueError("read ratio must be between 0 and 1")
        if self.rate <= 0 or self.keys < 1:
            raise ValueError("rate and keys must be positive")
        if self.duration_s is None and self.operations is None:
            raise ValueError("give a duration or a number of operations")


def run_workload(
    service: OrderService,
    spec: WorkloadSpec,
    relay: Relay | None = None,
    progress: Callable[[WorkloadReport], None] | None = None,
    stop: threading.Event | None = None,
) -> WorkloadReport:
    """Run the mix; a relay (if given) delivers the queue in a background thread meanwhile."""
    rng = random.Random(spec.seed)  # noqa: S311 - workload keys, not security
    rep = WorkloadReport()
    written: dict[str, list[tuple[float, int]]] = {}  # key -> [(acknowledged_at, version)]
    bound = service.cfg.max_staleness_s + service.cfg.lag_cache_s
    stop = stop or threading.Event()
    relay_stop = threading.Event()
    relay_thread = None
    if relay is not None:
        relay_thread = threading.Thread(target=relay.serve, args=(relay_stop.is_set, 0.05), daemon=True)
        relay_thread.start()
    start = time.monotonic()
    last_progress = start
    i = 0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if spec.duration_s is not None and now - start >= spec.duration_s:
                break
            if spec.operations is not None and i >= spec.operations:
                break
            due = start + i / spec.rate
            if due > now:
                time.sleep(due - now)
            i += 1
            key = f"{spec.key_prefix}{rng.randrange(spec.keys):06d}"
            if not written or rng.random() >= spec.read_ratio:
                _write(service, rng, key, rep, written)
            else:
                _read(service, rng.choice(list(written)), rep, written, bound, spec.critical)
            if progress and time.monotonic() - last_progress >= 1.0:
                last_progress = time.monotonic()
                rep.duration_s = last_progress - start
                progress(rep)
    finally:
        relay_stop.set()
        if relay_thread:
            relay_thread.join(timeout=10)
    rep.duration_s = time.monotonic() - start
    return rep


def _write(
    service: OrderService,
    rng: random.Random,
    key: str,
    rep: WorkloadReport,
    written: dict[str, list[tuple[float, int]]],
) -> None:
    order = Order(
        id=key,
        customer=f"customer-{rng.randrange(1000)}",
        status=rng.choice(["new", "paid", "shipped"]),
        amount_cents=rng.randrange(100, 100_000),
    )
    try:
        stored = service.write(order)
    except RecoveryError as e:
        rep.write_errors += 1
        rep.errors.append(str(e)[:200])
        return
    rep.writes += 1
    written.setdefault(key, []).append((time.monotonic(), stored.version))


def _read(
    service: OrderService,
    key: str,
    rep: WorkloadReport,
    written: dict[str, list[tuple[float, int]]],
    bound: float,
    critical: bool,
) -> None:
    started = time.monotonic()
    try:
        res = service.read(key, critical=critical)
    except RecoveryError as e:
        rep.read_errors += 1
        rep.errors.append(str(e)[:200])
        return
    rep.reads += 1
    rep.read_latencies_ms.append((time.monotonic() - started) * 1000)
    if res.source is ReadSource.CASSANDRA:
        rep.reads_cassandra += 1
    else:
        rep.reads_postgres += 1
        reason = re.sub(r"\d+(\.\d+)?", "N", res.reason)  # "queue lag N.Ns > Ns", "cache error: Type"
        rep.postgres_reasons[reason] = rep.postgres_reasons.get(reason, 0) + 1
    # The newest version acknowledged longer than `bound` before this read started must be visible.
    must_see = max((v for t, v in written.get(key, []) if t < started - bound), default=0)
    got = res.order.version if res.order else 0
    if got < must_see:
        rep.stale_reads += 1
