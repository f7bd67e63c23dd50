"""The targeted fix's delete tombstone takes its write time from PostgreSQL, never from the local clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from psycopg import sql

from cassandra_recovery.logic.tombstone import micros, tombstone_timestamp
from cassandra_recovery.settings import DomainConfig
from cassandra_recovery.verification import fix

pytestmark = pytest.mark.area("verification")

PG_NOW = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
DELETED = PG_NOW - timedelta(minutes=5)


def test_micros_is_exact_for_aware_and_naive_utc() -> None:
    assert micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert micros(PG_NOW) == 1_796_644_800_123_456
    assert micros(PG_NOW.replace(tzinfo=None)) == micros(PG_NOW)  # the driver's naive UTC
    assert micros(PG_NOW.astimezone(timezone(timedelta(hours=2)))) == micros(PG_NOW)


@pytest.mark.parametrize(
    "deleted_at, last_version, expected",
    [
        (DELETED, None, micros(DELETED)),  # the delete's commit time
        (DELETED, micros(DELETED) - 10, micros(DELETED)),  # the last write came before the delete
        (DELETED, micros(DELETED) + 7, micros(DELETED) + 8),  # a version ahead of the clock: one past it
        (None, None, micros(PG_NOW)),  # no trace of the key: PostgreSQL's clock now
        (None, micros(PG_NOW) + 3, micros(PG_NOW) + 4),  # log pruned, the outbox remembers a version
    ],
)
def test_tombstone_timestamp(deleted_at: datetime | None, last_version: int | None, expected: int) -> None:
    assert tombstone_timestamp(deleted_at, last_version, PG_NOW) == expected


class _Result:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[dict[str, Any]]:
        return self.rows


class _Conn:
    """PostgreSQL with no row for the key, whose change log saw it deleted at DELETED and whose clock reads PG_NOW."""

    def execute(self, query: sql.Composable, params: Any = None) -> _Result:
        text = query.as_string(None)
        if "committed_at" in text:
            return _Result([{"id": "gone", "deleted_at": DELETED, "last_version": None, "pg_now": PG_NOW}])
        return _Result([])

    def rollback(self) -> None:
        pass

    def __enter__(self) -> _Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Pool:
    def connection(self) -> _Conn:
        return _Conn()


class _Session:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, stmt: Any, params: tuple[Any, ...], timeout: float) -> None:
        self.calls.append((stmt.query_string, params))


class _Cql:
    def __init__(self) -> None:
        self.session = _Session()


def test_a_skewed_local_clock_does_not_date_the_tombstone(monkeypatch: pytest.MonkeyPatch) -> None:
    ahead = micros(PG_NOW + timedelta(days=365)) * 1000  # the local clock a year fast, in nanoseconds
    monkeypatch.setattr("time.time_ns", lambda: ahead)
    cql = _Cql()
    out = fix.rewrite_from_source(_Pool(), cql, DomainConfig(), ["gone"])  # type: ignore[arg-type]
    assert out["deleted"] == 1
    ((query, params),) = cql.session.calls
    assert query.startswith("DELETE") and params == (micros(DELETED), "gone")
