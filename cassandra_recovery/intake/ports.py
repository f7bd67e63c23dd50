"""The receiver's two outside parties behind small interfaces: the launcher (Prefect) and the store (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.intake.keys import dedup_key, launch_key, trigger_doc
from cassandra_recovery.intake.payload import Alert, Status

STATES = ("received", "delivered", "recorded", "dead")  # received = pending delivery


class LauncherUnavailable(RecoveryError):
    """The incident deployment could not be started (Prefect away, deployment missing); retry later."""


class StoreUnavailable(RecoveryError):
    """PostgreSQL could not be reached or refused the statement; nothing was written."""


class StoreBusy(StoreUnavailable):
    """Every connection of the pool was busy (PoolTimeout): PostgreSQL may well be up; nothing was written."""


class AlertRejected(RecoveryError):
    """PostgreSQL refused this alert's data (e.g. NUL or a lone surrogate in a field): a retry cannot help."""


@dataclass(frozen=True)
class SpoolItem:
    """One alert as stored: its keys, its trigger document and where its delivery stands."""

    dedup_key: str
    launch_key: str
    source: str
    cluster_id: str
    alert_status: Status
    doc: dict[str, Any]
    incident_id: str | None = None
    attempts: int = 0

    @classmethod
    def of(cls, alert: Alert) -> SpoolItem:
        return cls(
            dedup_key(alert), launch_key(alert), alert.source, alert.cluster_id, alert.status, trigger_doc(alert)
        )


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt achieved; ok=False leaves the item pending (or dead after max attempts)."""

    ok: bool
    incident_id: str | None = None
    flow_run_id: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


DeliverFn = Callable[[SpoolItem], Outcome]


class Launcher(Protocol):
    def launch(self, cluster_id: str, trigger: dict[str, Any], idempotency_key: str) -> str:
        """Start the incident deployment; the same key returns the same flow run (its id is returned).
        Raises LauncherUnavailable on any failure."""
        ...


class Incidents(Protocol):
    def open_or_join(self, cluster_id: str, trigger: dict[str, Any], actor: str) -> str:
        """The id of the cluster's open incident, opened when there is none. Raises StoreUnavailable."""
        ...

    def note_resolved(self, cluster_id: str, doc: dict[str, Any], actor: str) -> str | None:
        """An `alert_resolved` event on the cluster's open incident, if any (its id). Raises StoreUnavailable."""
        ...


class Spool(Protocol):
    """Durable alert inbox. Guarantees: one row per dedup key; an item is handed to `deliver` by at most one
    caller at a time, and never again once delivered; a failed delivery is retried later with backoff."""

    def put(self, item: SpoolItem, hold_s: float) -> bool:
        """Store `item` as received (True), or find its key already stored (False: a duplicate). The deliverer
        leaves a new item alone for `hold_s` so the request that stored it can deliver it inline.
        Raises StoreUnavailable."""
        ...

    def deliver_one(self, dedup_key: str, deliver: DeliverFn) -> Outcome | None:
        """Claim the pending item with this key and deliver it; None when it is not pending or is claimed."""
        ...

    def deliver_due(self, deliver: DeliverFn, limit: int) -> list[Outcome]:
        """Claim and deliver up to `limit` pending items whose retry time has come, one at a time."""
        ...

    def pending_count(self) -> int: ...


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before the next attempt after `attempts` failures: doubling from base, capped."""
    return float(min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 30)))
