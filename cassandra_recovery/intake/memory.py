"""In-memory implementations of the ports (spool, incidents, launcher): the unit tests' doubles, with the same rules."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from cassandra_recovery.intake.ports import (
    AlertRejected,
    DeliverFn,
    LauncherUnavailable,
    Outcome,
    SpoolItem,
    StoreUnavailable,
    backoff_s,
)


def _refused_by_postgresql(value: Any) -> bool:
    """What PostgreSQL refuses in text and jsonb: NUL, and strings UTF-8 cannot encode (lone surrogates)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_refused_by_postgresql(k) or _refused_by_postgresql(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_refused_by_postgresql(v) for v in value)
    return False


@dataclass
class _Row:
    item: SpoolItem
    state: str = "received"
    due: float = 0.0
    claimed: bool = False
    flow_run_id: str | None = None
    last_error: str | None = None


class MemorySpool:
    """The Spool contract in a dict; `up=False` makes every call raise StoreUnavailable (PostgreSQL down)."""

    def __init__(self, clock: Any, retry_base_s: float = 2.0, retry_max_s: float = 30.0, max_attempts: int = 100):
        self.clock, self.up = clock, True
        self.retry_base_s, self.retry_max_s, self.max_attempts = retry_base_s, retry_max_s, max_attempts
        self.rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def _check(self) -> None:
        if not self.up:
            raise StoreUnavailable("memory spool is down")

    def put(self, item: SpoolItem, hold_s: float) -> bool:
        with self._lock:
            self._check()
            if _refused_by_postgresql(item.doc):
                raise AlertRejected("alert refused by the inbox: DataError")
            if item.dedup_key in self.rows:
                return False
            self.rows[item.dedup_key] = _Row(item, due=self.clock() + hold_s)
            return True

    def _claim(self, key: str | None) -> _Row | None:
        with self._lock:
            self._check()
            now = self.clock()
            for k, r in sorted(self.rows.items(), key=lambda kv: kv[1].due):
                if r.state == "received" and not r.claimed and (k == key if key else r.due <= now):
                    r.claimed = True
                    return r
            return None

    def _deliver(self, row: _Row, deliver: DeliverFn) -> Outcome:
        try:
            outcome = deliver(row.item)
        except Exception as e:  # same rule as PgSpool: a failing delivery is retried, never lost
            outcome = Outcome(ok=False, error=f"{type(e).__name__}: {e}")
        with self._lock:
            inc = outcome.incident_id or row.item.incident_id
            row.item = replace(row.item, attempts=row.item.attempts + 1, incident_id=inc)
            if outcome.ok:
                row.state = "delivered" if outcome.flow_run_id else "recorded"
                row.flow_run_id, row.last_error = outcome.flow_run_id, None
            else:
                row.last_error = outcome.error
                row.due = self.clock() + backoff_s(row.item.attempts, self.retry_base_s, self.retry_max_s)
                if row.item.attempts >= self.max_attempts:
                    row.state = "dead"
            row.claimed = False
        return outcome

    def deliver_one(self, dedup_key: str, deliver: DeliverFn) -> Outcome | None:
        row = self._claim(dedup_key)
        return None if row is None else self._deliver(row, deliver)

    def deliver_due(self, deliver: DeliverFn, limit: int) -> list[Outcome]:
        out = []
        for _ in range(limit):
            row = self._claim(None)
            if row is None:
                break
            out.append(self._deliver(row, deliver))
        return out

    def pending_count(self) -> int:
        with self._lock:
            self._check()
            return sum(1 for r in self.rows.values() if r.state == "received")


@dataclass
class RecordingLauncher:
    """Records launches; like Prefect, the same idempotency key gives the same run (counted once in `runs`)."""

    up: bool = True
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def launch(self, cluster_id: str, trigger: dict[str, Any], idempotency_key: str) -> str:
        if not self.up:
            raise LauncherUnavailable("prefect is down")
        self.calls.append((cluster_id, trigger, idempotency_key))
        if idempotency_key not in self.runs:
            self.runs[idempotency_key] = f"run-{next(self._ids)}"
        return self.runs[idempotency_key]


@dataclass
class MemoryIncidents:
    """One open incident per cluster, an event list per incident; `close` stands for the flow resolving it."""

    up: bool = True
    open: dict[str, str] = field(default_factory=dict)
    events: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _check(self) -> None:
        if not self.up:
            raise StoreUnavailable("memory incidents are down")

    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> str:
        self._check()
        if cluster_id not in self.open:
            self.open[cluster_id] = f"inc-{next(self._ids)}"
            self.events[self.open[cluster_id]] = [("opened", trigger)]
        else:
            self.events[self.open[cluster_id]].append(("joined", trigger))
        return self.open[cluster_id]

    def note_resolved(self, cluster_id: str, doc: dict[str, Any], actor: str) -> str | None:
        self._check()
        inc = self.open.get(cluster_id)
        if inc is not None:
            self.events[inc].append(("alert_resolved", doc))
        return inc

    def close(self, cluster_id: str) -> None:
        self.open.pop(cluster_id, None)


class MemoryTimeline:
    """The Slack actions' Timeline port in a dict of lists; `up=False` makes every call raise (PostgreSQL down)."""

    def __init__(self) -> None:
        self.up = True
        self.incidents: dict[str, list[dict[str, Any]]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, incident_id: str, kind: str, actor: str, data: Any) -> None:
        with self._lock:
            if not self.up:
                raise StoreUnavailable("memory timeline is down")
            evs = self.incidents.setdefault(incident_id, [])
            evs.append({"seq": next(self._seq), "kind": kind, "actor": actor, "data": dict(data)})

    def events(self, incident_id: str) -> list[dict[str, Any]]:
        with self._lock:
            if not self.up:
                raise StoreUnavailable("memory timeline is down")
            return [
                dict(e) for e in self.incidents.get(incident_id, [])
            ]  # none for an unknown incident, like the store


class MemoryRejectedBodies:
    """RejectedBodies in a dict: name -> (body, reason)."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[bytes, str]] = {}

    def keep(self, source: str, body: bytes, reason: str) -> str | None:
        name = f"{source}-{len(self.kept) + 1}"
        self.kept[name] = (body, reason)
        return name
