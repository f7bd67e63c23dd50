"""Repair age: last success per table, keyspace-wide rows, statuses against gc_grace, gauge rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cassandra_recovery.logic.repair_age import AgeStatus, classify, gauge_rows, last_successes, repair_ages

pytestmark = pytest.mark.area("repair")

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
TEN_DAYS = 864_000  # Cassandra's default gc_grace_seconds


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def row(keyspace: str, table: str | None, finished_at: datetime | None, ok: bool = True) -> dict[str, object]:
    return {"keyspace": keyspace, "table": table, "finished_at": finished_at, "ok": ok}


@pytest.mark.parametrize(
    ("gc_grace", "age", "status", "ratio", "reason_part"),
    [
        (TEN_DAYS, 0, AgeStatus.OK, 0.0, "0% of gc_grace"),
        (TEN_DAYS, 86_400, AgeStatus.OK, 0.1, "last repaired 86400s ago"),
        (TEN_DAYS, 647_999, AgeStatus.OK, 647_999 / TEN_DAYS, "75% of gc_grace"),  # rounds, status does not
        (TEN_DAYS, 648_000, AgeStatus.WARN, 0.75, "repair before it reaches 90%"),
        (TEN_DAYS, 777_599, AgeStatus.WARN, 777_599 / TEN_DAYS, "repair before"),
        (TEN_DAYS, 777_600, AgeStatus.CRITICAL, 0.9, "can resurrect once gc_grace passes"),
        (TEN_DAYS, 2 * TEN_DAYS, AgeStatus.CRITICAL, 2.0, "200% of gc_grace"),
        (3600, 3000, AgeStatus.WARN, 3000 / 3600, "(3600s)"),
        (3600, -60, AgeStatus.OK, 0.0, "last repaired 0s ago"),  # a finish after `now` (clock skew) is age 0
    ],
)
def test_status_follows_the_age_to_gc_grace_ratio(
    gc_grace: int, age: float, status: AgeStatus, ratio: float, reason_part: str
) -> None:
    result = classify("ks", "t", gc_grace, ago(age), NOW)
    assert result.status is status
    assert result.ratio == pytest.approx(ratio)
    assert result.age_seconds == pytest.approx(max(age, 0))
    assert result.last_success == ago(age)
    assert result.reason.startswith("ks.t: ") and reason_part in result.reason


def test_never_repaired_tables_report_never_without_age_or_ratio() -> None:
    result = classify("ks", "t", TEN_DAYS, None, NOW)
    assert (result.status, result.last_success, result.age_seconds, result.ratio) == (AgeStatus.NEVER, None, None, None)
    assert "no successful repair" in result.reason


@pytest.mark.parametrize("last", [None, ago(10 * TEN_DAYS), ago(5)])
def test_gc_grace_zero_says_age_is_irrelevant_and_hints_are_off(last: datetime | None) -> None:
    result = classify("ks", "queue", 0, last, NOW)
    assert result.status is AgeStatus.NO_GC_GRACE and result.ratio is None
    assert "tombstones purge at once" in result.reason and "hints are disabled" in result.reason
    assert result.age_seconds == (None if last is None else (NOW - last).total_seconds())


def test_negative_gc_grace_is_rejected() -> None:
    with pytest.raises(ValueError, match="gc_grace_seconds must be >= 0"):
        classify("ks", "t", -1, None, NOW)


def test_latest_success_wins_failures_are_ignored_and_keyspace_rows_cover_every_table() -> None:
    history = [
        row("ks", "a", ago(500)),
        row("ks", "a", ago(100)),
        row("ks", "a", ago(10), ok=False),  # a failed repair does not count
        row("ks", "a", None, ok=False),  # nor does one that never finished
        row("ks", None, ago(300)),  # keyspace-wide: every table of ks
        row("other", None, ago(1)),  # another keyspace entirely
        row("ks", "gone", ago(1)),  # a table no longer in the schema
    ]
    latest = last_successes(history, [("ks", "a"), ("ks", "b"), ("ks2", "c")])
    assert latest == {("ks", "a"): ago(100), ("ks", "b"): ago(300)}


def test_timestamps_are_normalised_to_utc() -> None:
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None)  # PostgreSQL `timestamp`: taken as UTC
    paris = (NOW - timedelta(hours=2)).astimezone(ZoneInfo("Europe/Paris"))
    latest = last_successes([row("ks", "a", naive), row("ks", "b", paris)], [("ks", "a"), ("ks", "b")])
    assert latest[("ks", "a")] == ago(3600) and latest[("ks", "a")].tzinfo is UTC
    assert latest[("ks", "b")] == ago(7200) and latest[("ks", "b")].tzinfo is UTC


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"keyspace": "ks", "table": "a", "ok": True}, "lacks finished_at"),
        ({"table": "a", "finished_at": NOW}, "lacks keyspace, ok"),
        (row("ks", "a", NOW) | {"ok": "yes"}, "bad keyspace/table/ok types"),
        (row("ks", "a", None), "finished_at must be a datetime"),
        (row("ks", "a", "2026-05-10"), "finished_at must be a datetime"),  # type: ignore[arg-type]
    ],
)
def test_malformed_history_rows_are_rejected(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        last_successes([bad], [("ks", "a")])


def test_repair_ages_covers_every_known_table_sorted() -> None:
    gc_grace = {("ks", "b"): TEN_DAYS, ("ks", "a"): TEN_DAYS, ("ks", "q"): 0, ("aa", "z"): 3600, ("ks", "n"): TEN_DAYS}
    history = [
        row("ks", "a", ago(86_400)),
        row("ks", "b", ago(800_000)),
        row("ks", "b", ago(1), ok=False),
        row("aa", "z", ago(2800)),
        row("ks", "unknown", ago(1)),
    ]
    ages = repair_ages(history, gc_grace, NOW)
    assert [(a.keyspace, a.table, a.status) for a in ages] == [
        ("aa", "z", AgeStatus.WARN),
        ("ks", "a", AgeStatus.OK),
        ("ks", "b", AgeStatus.CRITICAL),
        ("ks", "n", AgeStatus.NEVER),
        ("ks", "q", AgeStatus.NO_GC_GRACE),
    ]
    assert [a.gc_grace_seconds for a in ages] == [3600, TEN_DAYS, TEN_DAYS, TEN_DAYS, 0]


def test_gauge_rows_use_nan_for_unknowns() -> None:
    gc_grace = {("ks", "a"): TEN_DAYS, ("ks", "n"): TEN_DAYS, ("ks", "q"): 0}
    rows = gauge_rows(repair_ages([row("ks", "a", ago(86_400)), row("ks", "q", ago(60))], gc_grace, NOW))
    a, n, q = rows
    assert a[:4] == ("ks", "a", ago(86_400).timestamp(), 86_400.0) and a[4] == pytest.approx(0.1)
    assert n[:2] == ("ks", "n") and all(math.isnan(v) for v in n[2:])
    assert q[:4] == ("ks", "q", ago(60).timestamp(), 60.0) and math.isnan(q[4])
    assert all(isinstance(v, float) for r in rows for v in r[2:])
