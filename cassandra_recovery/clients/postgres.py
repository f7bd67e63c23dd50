"""PostgreSQL connections: one pool per process, dict rows, short connect timeout."""

from __future__ import annotations

from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from cassandra_recovery.settings import Settings


def make_pool(
    settings: Settings,
    min_size: int = 1,
    max_size: int = 8,
    open_wait_s: float | None = 10.0,
    name: str = "cassandra-recovery",
) -> ConnectionPool:
    """A pool that checks connections before use, so a PostgreSQL restart heals without a process restart.
    open_wait_s=None opens it without waiting (a process that must start while PostgreSQL is away)."""
    pool = ConnectionPool(
        settings.postgres_conninfo(),
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "connect_timeout": 5, "autocommit": False},
        check=ConnectionPool.check_connection,
        timeout=2.0,  # a write or read waits at most this for a connection during an outage
        reconnect_timeout=30.0,
        open=False,
        name=name,
    )
    if open_wait_s is None:
        pool.open(wait=False)
    else:
        pool.open(wait=True, timeout=open_wait_s)
    return pool


Row = dict[str, Any]


def fetch_all(cur: psycopg.Cursor[Any]) -> list[Row]:
    """Rows of a cursor from a pool made by make_pool (dict rows), typed for callers."""
    return cast(list[Row], cur.fetchall())


def fetch_one(cur: psycopg.Cursor[Any]) -> Row | None:
    return cast(Row | None, cur.fetchone())
