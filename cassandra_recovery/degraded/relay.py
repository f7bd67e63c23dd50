"""The relay: delivers outbox entries to the Cassandra cache, idempotently, with back-off and dead entries."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cassandra_recovery.contracts import RelayRunDoc
from cassandra_recovery.degraded.outbox import Backlog, Outbox, OutboxEntry, QueueStats

log = logging.getLogger(__name__)


class CacheWriter(Protocol):
    def put(self, payload: dict[str, Any], version: int) -> None: ...
    def delete(self, order_id: str, version: int) -> None: ...


@dataclass
class RelayReport:
    claimed: int = 0
    delivered: int = 0
    requeued: int = 0
    dead: int = 0
    stale: int = 0  # outcomes dropped: the relay's claim had run out (another relay may hold the entries now)
    errors: list[str] = field(default_factory=list)

    def add(self, other: RelayReport) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.requeued += other.requeued
        self.dead += other.dead
        self.stale += other.stale
        self.errors = (self.errors + other.errors)[-20:]

    def as_dict(self) -> RelayRunDoc:
        return {
            "claimed": self.claimed,
            "delivered": self.delivered,
            "requeued": self.requeued,
            "dead": self.dead,
            "stale": self.stale,
            "errors": self.errors,
        }


def newest_per_key(entries: list[OutboxEntry]) -> dict[str, OutboxEntry]:
    """Only the highest version of each key needs writing; older ones in the same batch are superseded."""
    out: dict[str, OutboxEntry] = {}
    for e in entries:
        if e.order_id not in out or e.version > out[e.order_id].version:
            out[e.order_id] = e
    return out


class Relay:
    def __init__(self, outbox: Outbox, cache: CacheWriter, relay_id: str | None = None):
        self.outbox = outbox
        self.cache = cache
        self.relay_id = relay_id or f"{socket.gethostname()}:{os.getpid()}"

    def run_once(self, limit: int | None = None) -> RelayReport:
        """Claim one batch, write the newest version per key, record the outcome of every entry."""
        entries = self.outbox.claim(self.relay_id, limit)
        report = RelayReport(claimed=len(entries))
        by_key: dict[str, list[int]] = {}
        for e in entries:
            by_key.setdefault(e.order_id, []).append(e.seq)
        ok: list[int] = []
        failed: dict[str, list[int]] = {}

        def outcome(key: str, exc: BaseException | None) -> None:
            if exc is None:
                ok.extend(by_key[key])
            else:  # any cache failure: back off and retry; the entry is never lost
                failed.setdefault(f"{type(exc).__name__}: {exc}"[:500], []).extend(by_key[key])

        newest = newest_per_key(entries)
        upserts = [e for e in newest.values() if e.op != "delete"]
        put_many = getattr(self.cache, "put_many", None)
        if put_many is not None and upserts:
            for e, exc in zip(upserts, put_many([(e.payload, e.version) for e in upserts]), strict=True):
                outcome(e.order_id, exc)
            upserts = []
        for e in [*upserts, *(e for e in newest.values() if e.op == "delete")]:
            try:
                if e.op == "delete":
                    self.cache.delete(e.order_id, e.version)
                else:
                    self.cache.put(e.payload, e.version)
                outcome(e.order_id, None)
            except Exception as exc:
                outcome(e.order_id, exc)
        report.delivered = self.outbox.mark_delivered(self.relay_id, ok)
        report.stale = len(ok) - report.delivered
        for msg, seqs in failed.items():
            requeued, dead = self.outbox.mark_failed(self.relay_id, seqs, msg)
            report.requeued += requeued
            report.dead += dead
            report.stale += len(seqs) - requeued - dead
            report.errors.append(msg)
        if report.stale:  # the cache writes happened; whoever holds the entries now delivers them again (idempotent)
            log.warning("relay %s: claim lost on %d entries, left to their holder", self.relay_id, report.stale)
        return report

    def drain(
        self,
        timeout_s: float = 300.0,
        idle_wait_s: float = 0.5,
        progress: Callable[[QueueStats, RelayReport], None] | None = None,
    ) -> tuple[QueueStats, RelayReport]:
        """Deliver until nothing is queued (dead entries stay dead) or the deadline passes."""
        total = RelayReport()
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.run_once()
            total.add(report)
            stats = self.outbox.stats()
            if progress:
                progress(stats, total)
            if stats.queued == 0 or time.monotonic() > deadline:
                return stats, total
            if report.claimed == 0 or stats.in_flight == stats.queued:
                time.sleep(idle_wait_s)  # entries backing off or leased by another relay

    def deliver_committed_before(
        self, watermark: str, timeout_s: float = 300.0, idle_wait_s: float = 0.5
    ) -> tuple[Backlog, RelayReport]:
        """Deliver until every entry committed before `watermark` (Outbox.watermark) is delivered or dead, or the
        deadline passes: writes that keep arriving after the watermark never hold it up. Returns what is left."""
        total = RelayReport()
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.run_once()
            total.add(report)
            left = self.outbox.committed_before(watermark)
            if left.queued == 0 or time.monotonic() > deadline:
                return left, total
            if report.claimed == 0:
                time.sleep(idle_wait_s)  # what is left backs off or is leased by another relay

    def serve(self, stop: Callable[[], bool], idle_wait_s: float = 0.5) -> None:
        """Long-lived worker loop: deliver whatever is ready, sleep briefly when idle."""
        while not stop():
            try:
                report = self.run_once()
            except Exception as exc:  # PostgreSQL away: keep the worker alive and try again
                log.warning("relay %s: %s", self.relay_id, exc)
                time.sleep(min(5.0, idle_wait_s * 4))
                continue
            if report.claimed == 0:
                time.sleep(idle_wait_s)
