"""Test set-up: PostgreSQL's schema migrated for a settings' table names, as `cassandra-recovery db upgrade` does."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.migrate import upgrade, upgrade_for
from cassandra_recovery.storage.names import TRACKS, SchemaNames


def migrated(settings: Settings) -> Settings:
    """`settings`, after its tables (core and domain, under its names) are at this code's migrations."""
    upgrade_for(settings)
    return settings


def migrated_names(settings: Settings, names: SchemaNames) -> SchemaNames:
    """A test's own table names (session-unique prefixes) migrated, with version tables of their own."""
    upgrade(settings.postgres_conninfo(), names)
    return names


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
