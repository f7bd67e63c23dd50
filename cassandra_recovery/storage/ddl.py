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


def runtime_role() -> str | None:
    """The role the processes connect as, when another role (this migration's) owns the schema; None otherwise."""
    role = context.config.attributes.get("runtime_role")
    if role is None:
        return None
    assert isinstance(role, str)  # noqa: S101 - set by storage.migrate
    return None if role == scalar("SELECT current_user") else role


def version_table() -> str:
    """The version table of the track being migrated (storage.migrate sets it per track)."""
    table = context.config.attributes["version_table"]
    assert isinstance(table, str)  # noqa: S101 - set by storage.migrate
    return table


def hand_over(runtime: str, tables: dict[str, str], functions: tuple[str, ...] = ()) -> None:
    """Make the migration role (current_user) own `tables` (with their indexes and serial sequences) and the
    argument-less `functions`, and grant `runtime` exactly the listed privileges on each table (replacing any it
    had) and USAGE on the tables' sequences. Taking over a table the runtime role owns needs membership in it
    (the lab grants it); triggers belong to their table."""
    for table, privileges in tables.items():
        execute("ALTER TABLE {t} OWNER TO CURRENT_USER", t=table)
        execute("REVOKE ALL ON {t} FROM PUBLIC, {r}", t=table, r=runtime)
        execute("GRANT {p} ON {t} TO {r}", p=sql.SQL(privileges), t=table, r=runtime)  # privileges: revision constants
        seqs = scalar(
            "SELECT array_agg(s.relname::text) FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
            " WHERE d.refobjid = to_regclass({t}) AND s.relkind = 'S' AND d.deptype IN ('a', 'i')",
            t=sql.Literal(table),
        )
        for seq in seqs or ():
            execute("REVOKE ALL ON SEQUENCE {s} FROM PUBLIC, {r}", s=seq, r=runtime)
            execute("GRANT USAGE, SELECT ON SEQUENCE {s} TO {r}", s=seq, r=runtime)
    for fn in functions:
        execute("ALTER FUNCTION {f}() OWNER TO CURRENT_USER", f=fn)
