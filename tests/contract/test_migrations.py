"""Versioned migrations on the real PostgreSQL, each case in a database of its own (dropped at the end).

An install from before migrations (main's schema with rows in every table, tests/contract/fixtures), complete
or partial, is adopted without losing a row and ends with the schema of a fresh install (pg_dump compared);
`db upgrade` twice, or from two processes at once, changes nothing the second time; an unmigrated database
makes the CLI and the per-process storage refuse with one line naming `cassandra-recovery db upgrade`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cassandra_recovery import cli
from cassandra_recovery.lab.postgres import _clusters, ensure_postgres, lab_password
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import close_process_storage, process_storage
from cassandra_recovery.storage.migrate import SchemaNotCurrent, heads, states, upgrade_for
from cassandra_recovery.storage.names import DOMAIN, SchemaNames
from tests import faults as F
from tests.contract.scratch_db import psql_as_postgres, scratch_databases

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating databases goes through runuser, which needs root"),
    pytest.mark.area("incident"),
]

ROOT = Path(__file__).resolve().parents[2]
BEFORE = Path(__file__).with_name("fixtures") / "schema_before_migrations.sql"
TABLES = (
    "incidents", "incident_events", "incident_reports", "alert_inbox", "maintenance_windows",
    "automation_kill_switch", "repair_pauses", "repair_schedule_log", "repair_runs", "repair_segments",
    "region_views", "orders", "cache_outbox", "degradation_policy",
)  # fmt: skip


@pytest.fixture(scope="module")
def base(request: pytest.FixtureRequest) -> Settings:
    s = Settings()
    was_online = any(c.online for c in _clusters(s.postgres.port))
    ensure_postgres(s)
    if not was_online:
        request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    return s


@pytest.fixture(scope="module")
def new_db(base: Settings) -> Iterator[Callable[[], Settings]]:
    """Makes empty databases owned by the project's migration role (as the lab provisions its own); drops them after."""
    with scratch_databases(base, "crmig") as make:
        yield lambda: make("owner")


def _pg_env(s: Settings) -> dict[str, str]:
    password = s.postgres.password.get_secret_value() if s.postgres.password else lab_password(s.lab)
    return {**os.environ, "PGPASSWORD": password, "LANG": "C"}  # in the environment, never in argv


def schema(s: Settings) -> list[str]:
    """pg_dump --schema-only, without comments, blank lines and psql's per-dump \\restrict keys."""
    pg = s.postgres
    argv = ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-h", pg.host, "-p", str(pg.port),
            "-U", pg.user, "-d", pg.dbname]  # fmt: skip
    out = subprocess.run(argv, env=_pg_env(s), text=True, check=True, capture_output=True, timeout=60).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith(("--", "\\"))]


def rows(s: Settings) -> dict[str, list[str]]:
    """Every row of every project table that exists, as JSON text, sorted."""
    out = {}
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5) as conn:
        for t in TABLES:
            if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() == (None,):
                continue
            q = sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(sql.Identifier(t))
            out[t] = sorted(r[0] for r in conn.execute(q).fetchall())
    return out


# Columns later revisions add to existing tables, with the value every row from before them must get.
ADDED_COLUMNS = {
    "cache_outbox": {"xid": None},  # 0002_domain_outbox_xid: NULL = queued before the upgrade
    "repair_runs": {"owner": None, "owner_token": None},  # 0002_core_fencing: NULL = written unfenced
    "repair_segments": {"holder": None, "fencing_token": None},
    "alert_inbox": {"claimed_by": None, "claimed_until": None},  # 0003_core_inbox_claim: NULL = not claimed
}


def canonical(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """The same rows, each as JSON with sorted keys (so rows rewritten below compare with untouched ones)."""
    return {t: sorted(json.dumps(json.loads(r), sort_keys=True) for r in found[t]) for t in found}


def without_added_columns(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """canonical(found) without the added columns, after checking each holds its expected value on every row."""
    out = canonical(found)
    for table, columns in ADDED_COLUMNS.items():
        docs = [json.loads(r) for r in out.get(table, [])]
        assert all(d[c] == v for d in docs for c, v in columns.items()), table
        out[table] = sorted(json.dumps({k: v for k, v in d.items() if k not in columns}, sort_keys=True) for d in docs)
    return out


def load_before(s: Settings) -> None:
    """An install from before migrations, made by the runtime role in a database it owned (as old labs were),
    then the database handed to the migration role, as the lab's provisioning now does before `db upgrade`."""
    psql_as_postgres(s, 'ALTER DATABASE :"db" OWNER TO :"role";', s.postgres.dbname)
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5, autocommit=True) as conn:
        conn.execute(BEFORE.read_text())
    psql_as_postgres(s, 'ALTER DATABASE :"db" OWNER TO :"owner";', s.postgres.dbname)


@pytest.fixture(scope="module")
def fresh(new_db: Callable[[], Settings]) -> list[str]:
    """The schema of a fresh install."""
    s = new_db()
    upgrade_for(s)
    return schema(s)


def _at_head(s: Settings) -> bool:
    return all(t.up_to_date for t in states(s.postgres_conninfo(), SchemaNames.from_settings(s)))


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_an_install_from_before_migrations_keeps_every_row_and_ends_as_a_fresh_one(
    new_db: Callable[[], Settings], fresh: list[str]
) -> None:
    s = new_db()
    load_before(s)
    before = rows(s)
    assert set(before) == set(TABLES) and all(before.values())  # the fixture has rows in every table
    found = upgrade_for(s)
    assert [t.current for t in found] == [None, None]  # adopted, not created
    assert without_added_columns(rows(s)) == canonical(before)
    assert schema(s) == fresh
    assert _at_head(s)


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_a_partial_install_gets_its_missing_tables(new_db: Callable[[], Settings], fresh: list[str]) -> None:
    """As a database that never ran a repair nor the example domain: some tables missing, the others with rows."""
    s = new_db()
    load_before(s)
    missing = ["repair_segments", "repair_runs", "region_views", "incident_reports", "orders", "cache_outbox"]
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(map(sql.Identifier, missing))))
    before = rows(s)
    upgrade_for(s)
    after = without_added_columns(rows(s))
    assert {t: after[t] for t in before} == canonical(before)
    assert all(after[t] == [] for t in missing)
    assert schema(s) == fresh


def test_db_upgrade_twice_is_a_no_op(
    new_db: Callable[[], Settings],
    fresh: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = new_db()
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__DBNAME", s.postgres.dbname)
    reports = []
    for _ in range(2):
        assert cli.main(["db", "upgrade", "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert [d["before"] for d in reports[0]] == [None, None]
    assert [(d["before"], d["current"]) for d in reports[1]] == [(h, h) for h in heads().values()]
    assert schema(s) == fresh


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_two_upgrades_at_once_run_one_after_the_other(new_db: Callable[[], Settings], fresh: list[str]) -> None:
    """The test holds the schema lock until both processes wait on it, so they really do start together."""
    s = new_db()
    env = {**os.environ, "CASSANDRA_RECOVERY_POSTGRES__DBNAME": s.postgres.dbname}
    argv = [sys.executable, "-m", "cassandra_recovery.cli", "db", "upgrade", "--json"]
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('cassandra_recovery.schema'))")
        procs = [
            subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        waiting_q = """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
        deadline = time.monotonic() + 60
        while (holder.execute(waiting_q).fetchone() or (0,))[0] < 2:
            assert time.monotonic() < deadline, "both upgrades should be waiting on the schema lock"
            time.sleep(0.1)
        holder.execute("SELECT pg_advisory_unlock(hashtext('cassandra_recovery.schema'))")
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    befores = sorted(tuple(d["before"] or "none" for d in json.loads(out)) for out, _ in outs)
    assert befores == sorted([("none", "none"), tuple(heads().values())])  # the second found nothing to do
    assert schema(s) == fresh


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_cli_verbs_refuse_an_unmigrated_database_in_one_line(
    new_db: Callable[[], Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = new_db()
    load_before(s)  # tables as the old version left them, but never adopted
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__DBNAME", s.postgres.dbname)
    monkeypatch.setenv("CASSANDRA_RECOVERY_RECEIVER__TOKENS", "a-token-of-sixteen-chars")
    verbs = [["serve"], ["receiver"], ["detector", "--rounds", "1"], ["kill-switch", "status"], ["db", "check"]]
    for argv in [*verbs, ["silence", "--for", "1h", "--reason", "x"], ["queue", "status"]]:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "run `cassandra-recovery db upgrade`" in err and "Traceback" not in err
    assert rows(s)["automation_kill_switch"]  # refused before touching anything


def test_one_storage_per_process_shares_one_pool_and_checks_the_schema_first(new_db: Callable[[], Settings]) -> None:
    s = new_db()
    with pytest.raises(SchemaNotCurrent, match="run `cassandra-recovery db upgrade`"):
        process_storage(s)
    upgrade_for(s)
    first = process_storage(s)
    try:
        assert process_storage(s) is first  # tasks ask for it on every call; one pool per process
        stores = (first.incidents, first.inbox, first.silences, first.kill_switch, first.pauses, first.checkpoints)
        assert all(store.pool is first.pool for store in (*stores, first.schedule_log, first.region_views))
        incident, created = first.incidents.open_or_join("facade-test", {"source": "test"}, "test")
        assert created and first.pauses.pause("facade-test", "test", "test", incident.id).incident_id == incident.id
        # The domain track is checked when its first store is used, not by processes that never touch it.
        with psycopg.connect(s.migration_conninfo(), connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SchemaNames().version_table(DOMAIN))))
        with pytest.raises(SchemaNotCurrent, match=r"\(domain\) has not been created"):
            first.policy.get("facade-test")
        upgrade_for(s)
        assert first.policy.get("facade-test").mode.value == "normal"
    finally:
        close_process_storage()
    assert first.pool.closed


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_outbox_entries_from_before_the_xid_column_are_waited_for_and_delivered(new_db: Callable[[], Settings]) -> None:
    """0002_domain_outbox_xid on a queue with entries: they keep a NULL xid, count as committed before any
    waiter's watermark (they were committed before the upgrade), and deliver; new entries record their xid."""
    from cassandra_recovery.clients.postgres import make_pool
    from cassandra_recovery.degraded.model import Order
    from cassandra_recovery.degraded.orders import OrderStore
    from cassandra_recovery.degraded.outbox import Outbox
    from cassandra_recovery.degraded.relay import Relay

    s = new_db()
    load_before(s)
    upgrade_for(s)
    with psycopg.connect(s.postgres_conninfo(), connect_timeout=5) as conn:
        queued = conn.execute(
            "SELECT cluster_id, count(*) FROM cache_outbox WHERE status = 'queued' GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    assert queued is not None, "the fixture has queued entries"
    cluster, old = queued
    pool = make_pool(s, max_size=2)
    try:
        outbox = Outbox(pool, s.domain, cluster)
        mark = outbox.watermark()
        OrderStore(pool, s.domain, cluster).write(Order(id="after-upgrade", customer="c", status="new", amount_cents=1))
        assert outbox.committed_before(mark).queued == old  # the new write came after the watermark

        class Cache:
            def put(self, payload: dict[str, object], version: int) -> None:
                pass

            def delete(self, order_id: str, version: int) -> None:
                pass

        left, report = Relay(outbox, Cache(), "upgrade-test").deliver_committed_before(mark, timeout_s=60)
        assert left.queued == 0 and report.delivered >= old
        with pool.connection() as conn:
            xids = conn.execute(
                "SELECT order_id, xid IS NOT NULL AS has_xid FROM cache_outbox WHERE cluster_id = %s AND order_id = %s",
                (cluster, "after-upgrade"),
            ).fetchall()
        assert xids == [{"order_id": "after-upgrade", "has_xid": True}]
    finally:
        pool.close()
