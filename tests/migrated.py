"""Test set-up: PostgreSQL's schema migrated for a settings' table names, as `cassandra-recovery db upgrade` does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.lab.postgres import _clusters, ensure_postgres
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.storage.migrate import runtime_role_of, upgrade, upgrade_for
from cassandra_recovery.storage.names import TRACKS, SchemaNames


def migrated(settings: Settings) -> Settings:
    """`settings`, after its tables (core and domain, under its names) are at this code's migrations."""
    upgrade_for(settings)
    return settings


def migrated_names(settings: Settings, names: SchemaNames) -> SchemaNames:
    """A test's own table names (session-unique prefixes) migrated, with version tables of their own."""
    upgrade(settings.migration_conninfo(), names, runtime_role_of(settings))
    return names


def owner_conn(settings: Settings) -> psycopg.Connection[Any]:
    """An autocommit connection as the role that owns the schema (dropping a test's tables, granting): the
    runtime role the processes use may do neither."""
    return psycopg.connect(settings.migration_conninfo(), connect_timeout=5, autocommit=True)


def drop_version_tables(conn: Any, names: SchemaNames) -> None:
    """Forget that `names` were migrated (with the test's own tables, at the end of its session)."""
    tables = sql.SQL(", ").join(sql.Identifier(names.version_table(t)) for t in TRACKS)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tables))


def drop_domain(conn: Any, names: SchemaNames) -> None:
    """A test's own domain tables gone (with the orders change log and its trigger function), migrations forgotten."""
    tables = sql.SQL(", ").join(map(sql.Identifier, (names.orders, names.outbox, names.policy, names.changes)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tables))
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(f"{names.orders}_chg_log")))
    drop_version_tables(conn, names)


def started_postgres(request: pytest.FixtureRequest, settings: Settings | None = None) -> Settings:
    """The settings' PostgreSQL, started if it was not (the session's conftest then stops it at the end)."""
    s = settings or Settings()
    if not any(c.online for c in _clusters(s.postgres.port)):
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]
    ensure_postgres(s)  # idempotent
    return s


@contextmanager
def domain_pool(settings: Settings, cfg: DomainConfig) -> Iterator[ConnectionPool]:
    """A pool on a test's own domain tables (its names migrated), and those tables dropped afterwards."""
    names = migrated_names(
        settings, SchemaNames(orders=cfg.orders_table, outbox=cfg.outbox_table, policy=cfg.policy_table)
    )
    pool = make_pool(settings)
    try:
        yield pool
    finally:
        pool.close()
        with owner_conn(settings) as conn:
            drop_domain(conn, names)
