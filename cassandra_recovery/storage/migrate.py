"""Run and check the versioned migrations: `upgrade` under a PostgreSQL advisory lock, `require_current` at start-up.

Alembic is configured here, in code: the scripts ship inside the package (no alembic.ini), and the connection
is made by psycopg from the settings' conninfo, so the password reaches neither a URL, argv nor a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.names import TRACKS, SchemaNames

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "cassandra-recovery db upgrade"
# The key the call sites' CREATE ... IF NOT EXISTS used before migrations: an old process still running one
# waits for the upgrade (and the other way round).
_LOCK = "SELECT pg_advisory_lock(hashtext('cassandra_recovery.schema'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('cassandra_recovery.schema'))"
# Session-level (committed with the lock below), so every transaction alembic starts runs without them.
_NO_LIMITS = ("SET statement_timeout = 0", "SET lock_timeout = 0")


class SchemaNotCurrent(RecoveryError):
    """The database is not at the revisions this code needs: the message names the command to run."""


class DatabaseUnreachable(RecoveryError):
    """PostgreSQL did not answer the version check (libpq's reason; never the password)."""


@dataclass(frozen=True)
class TrackState:
    track: str
    version_table: str
    current: str | None  # None: never migrated
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(names: SchemaNames, connection: Connection | None = None, runtime_role: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["names"] = names
    cfg.attributes["runtime_role"] = runtime_role
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def heads() -> dict[str, str]:
    """Track -> the newest revision this code ships."""
    script = ScriptDirectory.from_config(_config(SchemaNames()))
    out = {}
    for track in TRACKS:
        rev = script.get_revision(f"{track}@head")
        assert rev is not None  # noqa: S101 - every track has a baseline
        out[track] = rev.revision
    return out


def _current(conn: psycopg.Connection[Any], table: str) -> str | None:
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() in (None, (None,)):
        return None
    row = conn.execute(sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(table))).fetchone()
    return None if row is None else str(row[0])


def _states_on(conn: psycopg.Connection[Any], names: SchemaNames, tracks: Iterable[str]) -> list[TrackState]:
    return [TrackState(t, names.version_table(t), _current(conn, names.version_table(t)), heads()[t]) for t in tracks]


def states(conninfo: str, names: SchemaNames, tracks: Iterable[str] = TRACKS) -> list[TrackState]:
    """Where each track's version table stands against this code's heads (one short read-only session)."""
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            out = _states_on(conn, names, tracks)
            conn.rollback()
    except psycopg.OperationalError as e:
        where = conninfo_to_dict(conninfo)
        at = f"{where.get('host')}:{where.get('port')}/{where.get('dbname')}"
        raise DatabaseUnreachable(f"cannot check the schema version at {at}: {' '.join(str(e).split())[:300]}") from e
    return out


@cache
def known_revisions() -> frozenset[str]:
    return frozenset(r.revision for r in ScriptDirectory.from_config(_config(SchemaNames())).walk_revisions())


def refusal(found: Iterable[TrackState], known: frozenset[str]) -> str | None:
    """The one-line reason to refuse to start, naming what to run; None when every track is current."""
    for s in found:
        if s.up_to_date:
            continue
        if s.current is None:
            return f"the PostgreSQL schema ({s.track}) has not been created or adopted yet: run `{UPGRADE_COMMAND}`"
        if s.current not in known:
            return (
                f"the PostgreSQL schema ({s.track}) is at {s.current}, newer than this version of cassandra-recovery"
                f" knows (its newest is {s.head}): run the newer version"
            )
        return (
            f"the PostgreSQL schema ({s.track}) is at {s.current}, this version needs {s.head}: run `{UPGRADE_COMMAND}`"
        )
    return None


def require_current(conninfo: str, names: SchemaNames, tracks: Iterable[str] = TRACKS) -> None:
    """SchemaNotCurrent (one line, naming the command to run) unless every track is at this code's head."""
    reason = refusal(states(conninfo, names, tracks), known_revisions())
    if reason is not None:
        raise SchemaNotCurrent(reason)


@contextmanager
def migration_session(conninfo: str) -> Iterator[Connection]:
    """A SQLAlchemy connection over psycopg holding the schema's session advisory lock: concurrent upgrades run
    one after the other, and the later one finds the version table at head and does nothing. The session has no
    statement or lock limit: a migration may rewrite a big table, and a second upgrade waits for the first."""
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for statement in _NO_LIMITS:
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql(_LOCK)
            conn.commit()  # the session lock outlives the transaction; alembic starts its own
            try:
                yield conn
            finally:
                conn.rollback()
                conn.exec_driver_sql(_UNLOCK)
                conn.commit()
    finally:
        engine.dispose()


def upgrade(conninfo: str, names: SchemaNames, runtime_role: str | None) -> list[TrackState]:
    """Bring every track to this code's head (idempotent); returns the states found once the lock was held, so
    of two concurrent upgrades the second reports every track already at head. `conninfo` is the migration role's
    (it owns what it creates); `runtime_role` the role the processes connect as, granted only what they use
    (None: one role for both)."""
    with migration_session(conninfo) as conn:
        psycopg_conn: Any = conn.connection.driver_connection  # the lock holder's own session
        before = _states_on(psycopg_conn, names, TRACKS)
        conn.rollback()
        for track in TRACKS:
            cfg = _config(names, conn, runtime_role)
            cfg.attributes["version_table"] = names.version_table(track)
            command.upgrade(cfg, f"{track}@head")
    return before


def upgrade_for(settings: Settings) -> list[TrackState]:
    """upgrade() with the names this settings' processes use (the lab bring-up, the demo, test fixtures)."""
    return upgrade(settings.migration_conninfo(), SchemaNames.from_settings(settings), runtime_role_of(settings))


def runtime_role_of(settings: Settings) -> str | None:
    """The role the processes connect as when another one owns the schema; None when one role does both."""
    return settings.postgres.user if settings.postgres.split_roles else None


_GUARD_OWNER = """SELECT pg_get_userbyid(c.relowner) AS table_owner, pg_get_userbyid(p.proowner) AS function_owner
FROM pg_class c LEFT JOIN pg_proc p ON p.oid = to_regprocedure(%s) WHERE c.oid = to_regclass(%s)"""


def guard_warning(settings: Settings, names: SchemaNames | None = None) -> str | None:
    """One line when the incident timeline's append-only guard (its table or trigger function) is owned by the
    role the processes connect as, which can then disable or drop it; None when another role owns both."""
    n = names or SchemaNames.from_settings(settings)
    runtime = settings.postgres.user
    events, guard = f"{n.incident_prefix}_events", f"{n.incident_prefix}_events_append_only()"
    with psycopg.connect(settings.migration_conninfo(), connect_timeout=5) as conn:
        row = conn.execute(_GUARD_OWNER, (guard, events)).fetchone()
        conn.rollback()
    if row is None or runtime not in row:
        return None
    how = (
        "postgres.migration_user is the same role"
        if not settings.postgres.split_roles
        else f"the tables were not handed over to {settings.postgres.migration_user}"
    )
    return (
        f"the incident timeline's append-only guard is owned by the runtime role {runtime}, which can disable or drop"
        f" it ({how}): set postgres.migration_user to a role of its own that runs `{UPGRADE_COMMAND}`"
        " (docs/postgres-roles.md)"
    )
