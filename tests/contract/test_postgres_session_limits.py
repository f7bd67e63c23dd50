"""Every PostgreSQL session this tool opens carries server-side time limits and TCP keepalives (real server)."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import tuple_row

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.settings import Settings
from tests.migrated import started_postgres

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("lab"),
]

_LIMITS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


@pytest.fixture(scope="module")
def settings(request: pytest.FixtureRequest) -> Settings:
    return started_postgres(request)


def _with(settings: Settings, **postgres: float) -> Settings:
    return settings.model_copy(update={"postgres": settings.postgres.model_copy(update=postgres)})


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    with conn.cursor(row_factory=tuple_row) as cur:
        (value,) = cur.execute("SELECT current_setting(%s)", (name,)).fetchone() or ("missing",)
    return str(value)


def test_pooled_sessions_carry_the_default_limits_and_keepalives(settings: Settings) -> None:
    with make_pool(settings, max_size=1) as pool, pool.connection() as conn:
        shown = {name: _show(conn, name) for name in _LIMITS}
        params = conn.info.get_parameters()
        conn.rollback()
    assert shown == {"statement_timeout": "30s", "lock_timeout": "10s", "idle_in_transaction_session_timeout": "1min"}
    assert params["keepalives"] == "1"
    assert (params["keepalives_idle"], params["keepalives_interval"], params["keepalives_count"]) == ("30", "10", "3")


def test_a_statement_past_the_timeout_is_cancelled(settings: Settings) -> None:
    with make_pool(_with(settings, statement_timeout_s=0.2), max_size=1) as pool, pool.connection() as conn:
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(5)")
        conn.rollback()
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}  # the session itself lives on


def test_migrations_run_without_the_statement_and_lock_limits(settings: Settings) -> None:
    from cassandra_recovery.storage.migrate import migration_session

    with migration_session(_with(settings, statement_timeout_s=0.2).postgres_conninfo()) as conn:
        psycopg_conn = conn.connection.driver_connection
        assert psycopg_conn is not None
        shown = {name: _show(psycopg_conn, name) for name in _LIMITS}
    assert shown["statement_timeout"] == "0" and shown["lock_timeout"] == "0"
    assert shown["idle_in_transaction_session_timeout"] == "1min"
