"""The write time of a delete tombstone, from PostgreSQL's clock and versions (never the local clock)."""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(dt: datetime) -> int:
    """Exact microseconds since the epoch; a naive datetime is UTC (the Cassandra driver's)."""
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def tombstone_timestamp(deleted_at: datetime | None, last_version: int | None, pg_now: datetime) -> int:
    """When PostgreSQL deleted the key (its change log's commit time), else PostgreSQL's clock now, and at least one
    past the newest version it ever gave the key. Versions are PostgreSQL commit-time microseconds (a per-row hybrid
    clock), so the tombstone beats every copy written before the delete and loses to every write after it, however
    far the local clock is off."""
    at = micros(deleted_at if deleted_at is not None else pg_now)
    return at if last_version is None else max(at, last_version + 1)
