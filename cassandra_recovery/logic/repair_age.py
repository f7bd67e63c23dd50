"""Repair age per table against gc_grace_seconds (pure): how close each table is to resurrecting deleted data.

A tombstone may be purged once gc_grace_seconds have passed. A replica that missed the delete and is not
repaired before then keeps the old value, and the next repair or read repair spreads it back: the deleted
data resurrects. So every table needs a successful repair more often than its gc_grace_seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

WARN_RATIO = 0.75
CRITICAL_RATIO = 0.9


class AgeStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"
    NEVER = "never"
    NO_GC_GRACE = "no_gc_grace"


@dataclass(frozen=True)
class RepairAge:
    keyspace: str
    table: str
    gc_grace_seconds: int
    last_success: datetime | None  # UTC; None when no successful repair is recorded
    age_seconds: float | None  # at `now`; None when never repaired
    ratio: float | None  # age / gc_grace; None when never repaired or gc_grace is 0
    status: AgeStatus
    reason: str


GaugeRow = tuple[str, str, float, float, float]  # keyspace, table, last_success_epoch, age_seconds, ratio


def _aware_utc(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"repair history: {field} must be a datetime, got {value!r}")
    # a naive timestamp (PostgreSQL `timestamp` without zone) is taken to be UTC, as the store writes it
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(row: Mapping[str, object]) -> tuple[str, str | None, datetime | None]:
    """(keyspace, table or None for every table, finished_at if the repair succeeded else None)."""
    missing = [k for k in ("keyspace", "table", "finished_at", "ok") if k not in row]
    if missing:
        raise ValueError(f"repair history row lacks {', '.join(missing)}: {dict(row)!r}")
    keyspace, table, ok = row["keyspace"], row["table"], row["ok"]
    if not isinstance(keyspace, str) or not (table is None or isinstance(table, str)) or not isinstance(ok, bool):
        raise ValueError(f"repair history row has bad keyspace/table/ok types: {dict(row)!r}")
    return keyspace, table, _aware_utc(row["finished_at"], "finished_at") if ok else None


def last_successes(
    history: Iterable[Mapping[str, object]], tables: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """The latest successful repair of each table; a keyspace-wide row (table None) counts for all its tables."""
    wanted = set(tables)
    latest: dict[tuple[str, str], datetime] = {}
    for raw in history:
        keyspace, table, finished = _row(raw)
        if finished is None:
            continue
        keys = [k for k in wanted if k[0] == keyspace] if table is None else [(keyspace, table)]
        for key in keys:
            if key in wanted and (key not in latest or finished > latest[key]):
                latest[key] = finished
    return latest


def classify(
    keyspace: str,
    table: str,
    gc_grace_seconds: int,
    last_success: datetime | None,
    now: datetime,
) -> RepairAge:
    """One table's repair age and status at `now`."""
    if gc_grace_seconds < 0:
        raise ValueError(f"{keyspace}.{table}: gc_grace_seconds must be >= 0, got {gc_grace_seconds}")
    now_utc = _aware_utc(now, "now")
    last = None if last_success is None else _aware_utc(last_success, "last_success")
    # a finish stamped after `now` (clock skew between hosts) counts as just repaired
    age = None if last is None else max((now_utc - last).total_seconds(), 0.0)
    name = f"{keyspace}.{table}"

    def result(ratio: float | None, status: AgeStatus, reason: str) -> RepairAge:
        return RepairAge(keyspace, table, gc_grace_seconds, last, age, ratio, status, reason)

    if gc_grace_seconds == 0:
        return result(
            None,
            AgeStatus.NO_GC_GRACE,
            f"{name}: gc_grace_seconds is 0, so tombstones purge at once and repair age cannot resurrect data; "
            "hints are disabled for such tables, so a replica that misses a write stays behind until repaired",
        )
    if age is None:
        return result(
            None,
            AgeStatus.NEVER,
            f"{name}: no successful repair recorded; deletes older than gc_grace "
            f"({gc_grace_seconds}s) may already be able to resurrect",
        )
    ratio = age / gc_grace_seconds
    shown = f"{name}: last repaired {age:.0f}s ago, {ratio:.0%} of gc_grace ({gc_grace_seconds}s)"
    if ratio >= CRITICAL_RATIO:
        return result(
            ratio,
            AgeStatus.CRITICAL,
            f"{shown}; data deleted before the last repair can resurrect once gc_grace passes: repair now",
        )
    if ratio >= WARN_RATIO:
        return result(ratio, AgeStatus.WARN, f"{shown}; repair before it reaches {CRITICAL_RATIO:.0%}")
    return result(ratio, AgeStatus.OK, shown)


def repair_ages(
    history: Iterable[Mapping[str, object]],
    gc_grace: Mapping[tuple[str, str], int],
    now: datetime,
) -> list[RepairAge]:
    """Repair age of every table in `gc_grace` (the tables that exist), by keyspace and table;
    history rows about other tables are ignored."""
    latest = last_successes(history, gc_grace)
    return [classify(ks, t, gc_grace[(ks, t)], latest.get((ks, t)), now) for ks, t in sorted(gc_grace)]


def gauge_rows(ages: Iterable[RepairAge]) -> list[GaugeRow]:
    """Rows for the Prometheus gauges: (keyspace, table, last_success_epoch, age_seconds, ratio), NaN if unknown."""
    nan = math.nan
    return [
        (
            a.keyspace,
            a.table,
            nan if a.last_success is None else a.last_success.timestamp(),
            nan if a.age_seconds is None else a.age_seconds,
            nan if a.ratio is None else a.ratio,
        )
        for a in ages
    ]
