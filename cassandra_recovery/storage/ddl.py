"""Helpers for revision modules: the install's names, and DDL executed through psycopg with quoted identifiers."""

from __future__ import annotations

from typing import Any

from alembic import context, op
from psycopg import sql

from cassandra_recovery.storage.names import SchemaNames


def names() -> SchemaNames:
    found = context.config.attributes["names"]
    assert isinstance(found, SchemaNames)  # noqa: S101 - set by storage.migrate
    return found


def _run(text: str, idents: dict[str, str | sql.Composable]) -> Any:
    conn: Any = op.get_bind().connection.driver_connection  # the psycopg connection under SQLAlchemy
    args = {k: v if isinstance(v, sql.Composable) else sql.Identifier(v) for k, v in idents.items()}
    return conn.execute(sql.SQL(text).format(**args) if args else text)


def execute(text: str, **idents: str | sql.Composable) -> None:
    """Run `text` on the migration's own connection and transaction; `{name}` placeholders become quoted
    identifiers (or the given Composable). Without placeholders the text runs as is ('{}' literals stay)."""
    _run(text, idents)


def scalar(text: str, **idents: str | sql.Composable) -> Any:
    """The first column of the first row of a query, or None."""
    row = _run(text, idents).fetchone()
    return None if row is None else row[0]
