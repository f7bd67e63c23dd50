"""Who may change what, on the real PostgreSQL: the migration role owns the schema, the runtime role the processes
connect as cannot rewrite the incident timeline nor remove its append-only guard (issue 20).

Each case runs in a database of its own (dropped at the end): a fresh install, an older lab whose runtime role
owned everything (handed over by re-provisioning and `db upgrade`), and an install with one role for both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from alembic import command

from cassandra_recovery import cli
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.migrate import _config, migration_session, upgrade_for
from cassandra_recovery.storage.names import SchemaNames
from tests import faults as F
from tests.contract.scratch_db import psql_as_postgres, scratch_databases
from tests.migrated import started_postgres

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating databases goes through runuser, which needs root"),
    pytest.mark.area("incident"),
]

TIMELINE, GUARD = "incident_events", "incident_events_append_only"
# Everything the runtime role must not be able to do to the timeline, its guard or the other logs.
FORBIDDEN = {
    "update the timeline": "UPDATE incident_events SET kind = 'forged'",
    "delete from the timeline": "DELETE FROM incident_events",
    "truncate the timeline": "TRUNCATE incident_events",
    "disable the guard": "ALTER TABLE incident_events DISABLE TRIGGER incident_events_no_change",
    "disable every trigger": "ALTER TABLE incident_events DISABLE TRIGGER ALL",
    "drop the row trigger": "DROP TRIGGER incident_events_no_change ON incident_events",
    "drop the truncate trigger": "DROP TRIGGER incident_events_no_truncate ON incident_events",
    "drop the guard function": "DROP FUNCTION incident_events_append_only() CASCADE",
    "replace the guard function": "CREATE OR REPLACE FUNCTION incident_events_append_only() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "drop the timeline": "DROP TABLE incident_events CASCADE",
    "rename the timeline": "ALTER TABLE incident_events RENAME TO gone",
    "delete side effects": "DELETE FROM side_effects",
    "truncate side effects": "TRUNCATE side_effects",
    "forge an order change": "INSERT INTO orders_changes (order_id, token, op) VALUES ('x', 0, 'log_start')",
    "disable the order log": "ALTER TABLE orders DISABLE TRIGGER orders_chg_row",
    "drop the order log function": "DROP FUNCTION orders_chg_log() CASCADE",
    "move the schema version": "UPDATE cassandra_recovery_core_version SET version_num = 'x'",
    "create a table": "CREATE TABLE intruder (id int)",
}


@pytest.fixture(scope="module")
def base(request: pytest.FixtureRequest) -> Settings:
    return started_postgres(request)


@pytest.fixture(scope="module")
def new_db(base: Settings) -> Iterator[Callable[[str], Settings]]:
    """Makes an empty database owned by `owner` ("owner" or "role"); drops them after."""
    with scratch_databases(base, "crrole") as make:
        yield make


def _refusals(s: Settings) -> dict[str, str]:
    """What each forbidden statement gets, run as the runtime role in its own transaction: an error class name."""
    out = {}
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (s.postgres.user,)
        for what, statement in FORBIDDEN.items():
            try:
                conn.execute(statement)
                out[what] = "accepted"
            except psycopg.Error as e:
                out[what] = type(e).__name__
    return out


def _works_as_runtime(s: Settings) -> None:
    """The application's own writes still go through: an incident, its timeline, a side effect opened and closed."""
    pool = make_pool(s, max_size=2)
    try:
        store = IncidentStore(pool)
        inc, _ = store.open_or_join(f"roles-{uuid.uuid4().hex[:8]}", {"source": "test"}, "test")
        store.append_event(inc.id, "note", "tester", {"text": "still appendable"})
        assert [e.kind for e in store.events(inc.id)][-1] == "note"
        with pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO side_effects (holder, action) VALUES ('roles-test', 'probe') RETURNING id"
            ).fetchone()
            assert row is not None
            sid = row["id"]  # the pool's rows are dicts
            conn.execute("UPDATE side_effects SET ended_at = clock_timestamp(), outcome = 'ok' WHERE id = %s", (sid,))
            conn.execute("INSERT INTO orders (id, customer, status, amount_cents, updated_at, version, token)"
                         " VALUES ('roles-o', 'c', 'new', 1, now(), 1, 7)")  # fmt: skip
            conn.commit()
            logged = conn.execute("SELECT op FROM orders_changes WHERE order_id = 'roles-o'").fetchall()
            assert [r["op"] for r in logged] == ["upsert"]  # the change log's trigger, now run as the migration role
            conn.rollback()
    finally:
        pool.close()


def test_the_runtime_role_cannot_rewrite_the_timeline_nor_remove_its_guard(new_db: Callable[[str], Settings]) -> None:
    s = new_db("owner")  # as the lab provisions a new install
    upgrade_for(s)
    _works_as_runtime(s)
    refused = _refusals(s)
    assert refused == dict.fromkeys(FORBIDDEN, "InsufficientPrivilege")
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM incident_events").fetchone() == (2,)  # opened + note, untouched


def _as_an_older_lab(s: Settings) -> None:
    """The schema as the previous version left it: every track at 0003, all made and owned by the runtime role."""
    names = SchemaNames.from_settings(s)
    with migration_session(s.postgres_conninfo()) as conn:
        for track, revision in (("core", "0003_core_inbox_claim"), ("domain", "0003_domain_order_changes")):
            cfg = _config(names, conn, None)
            cfg.attributes["version_table"] = names.version_table(track)
            command.upgrade(cfg, revision)


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_an_older_lab_whose_runtime_role_owned_everything_is_handed_over(
    base: Settings, new_db: Callable[[str], Settings]
) -> None:
    s = new_db("role")
    _as_an_older_lab(s)
    pool = make_pool(s, max_size=1)
    try:
        inc, _ = IncidentStore(pool).open_or_join("roles-old", {"source": "test"}, "test")
    finally:
        pool.close()
    # The lab's provisioning again (what `lab postgres` runs before `db upgrade`): the database changes hands.
    psql_as_postgres(base, 'ALTER DATABASE :"db" OWNER TO :"owner";', s.postgres.dbname)
    upgrade_for(s)
    assert _refusals(s) == dict.fromkeys(FORBIDDEN, "InsufficientPrivilege")
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5) as conn:
        assert conn.execute("SELECT kind FROM incident_events WHERE incident_id = %s", (inc.id,)).fetchall() == [
            ("opened",)
        ]
    _works_as_runtime(s)


def test_one_role_for_both_keeps_working_and_db_upgrade_says_the_guard_is_exposed(
    new_db: Callable[[str], Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = new_db("role")
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__DBNAME", s.postgres.dbname)
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__MIGRATION_USER", "")
    assert cli.main(["db", "upgrade"]) == 0
    err = capsys.readouterr().err
    assert "append-only guard is owned by the runtime role" in err and "postgres.migration_user" in err
    single = Settings()
    assert not single.postgres.split_roles
    _works_as_runtime(single)
    # Split later: with a migration role configured the guard stays exposed (0004 already ran) and `db upgrade`
    # keeps saying so, until the documented hand-over (docs/postgres-roles.md) lets 0004 run again.
    monkeypatch.delenv("CASSANDRA_RECOVERY_POSTGRES__MIGRATION_USER")
    assert cli.main(["db", "upgrade"]) == 0
    assert "append-only guard is owned by the runtime role" in capsys.readouterr().err
    split = Settings()
    psql_as_postgres(split, 'ALTER DATABASE :"db" OWNER TO :"owner";', s.postgres.dbname)
    with psycopg.connect(split.migration_conninfo(), connect_timeout=5, autocommit=True) as conn:
        conn.execute("UPDATE cassandra_recovery_core_version SET version_num = '0003_core_inbox_claim'")
        conn.execute("UPDATE cassandra_recovery_domain_version SET version_num = '0003_domain_order_changes'")
    assert cli.main(["db", "upgrade"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert _refusals(split) == dict.fromkeys(FORBIDDEN, "InsufficientPrivilege")


def test_split_roles_db_upgrade_does_not_warn(
    new_db: Callable[[str], Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = new_db("owner")
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__DBNAME", s.postgres.dbname)
    assert cli.main(["db", "upgrade"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "core:" in captured.out
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        assert owners == [(s.postgres.migration_user,)]
