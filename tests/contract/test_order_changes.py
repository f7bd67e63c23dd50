"""The orders change log on the real PostgreSQL (0003_domain_order_changes): every write and delete is logged at
commit time, so a transaction that started before an outage and committed inside it is inside its window; a
TRUNCATE is logged; pruning keeps the log's start honest; the source of truth streams the changed tokens."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.degraded.orders import OrderStore
from cassandra_recovery.degraded.outbox import Outbox
from cassandra_recovery.logic.murmur3 import token_of
from cassandra_recovery.logic.tombstone import micros
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.verification.fix import rewrite_from_source
from cassandra_recovery.verification.truth import SourceOfTruth
from tests.migrated import domain_pool, owner_conn, started_postgres

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("verification"),
]

SUFFIX = uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def settings(request: pytest.FixtureRequest) -> Settings:
    return started_postgres(request)


@pytest.fixture(scope="module")
def cfg() -> DomainConfig:
    names = {"orders_table": f"orders_c{SUFFIX}", "outbox_table": f"outbox_c{SUFFIX}", "policy_table": f"pol_c{SUFFIX}"}
    return DomainConfig(**names)


@pytest.fixture(scope="module")
def pool(settings: Settings, cfg: DomainConfig) -> Iterator[ConnectionPool]:
    with domain_pool(settings, cfg) as p:
        yield p


@pytest.fixture
def truth(pool: ConnectionPool, cfg: DomainConfig) -> SourceOfTruth:
    return SourceOfTruth(pool, cfg)


def _log(pool: ConnectionPool, cfg: DomainConfig, since: object) -> list[tuple[str, str]]:
    q = sql.SQL("SELECT order_id, op FROM {} WHERE committed_at >= %s AND op <> 'log_start' ORDER BY seq")
    with pool.connection() as conn:
        rows = fetch_all(conn.execute(q.format(sql.Identifier(f"{cfg.orders_table}_changes")), (since,)))
        conn.rollback()
    return [(r["order_id"], r["op"]) for r in rows]


def _order(oid: str) -> Order:
    return Order(id=oid, customer="c", status="new", amount_cents=1)


def test_writes_updates_deletes_and_truncates_are_logged_with_their_tokens(
    pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    start = truth.now()
    assert (log_start := truth.change_log_start()) is not None and log_start <= start
    store = OrderStore(pool, cfg, "test")
    a, b = f"a-{SUFFIX}", f"b-{SUFFIX}"
    store.write(_order(a))
    store.write(_order(b))
    store.write(_order(a))  # an update
    t = sql.Identifier(cfg.orders_table)
    with pool.connection() as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(t), (b,))
        conn.commit()
    assert _log(pool, cfg, start) == [(a, "upsert"), (b, "upsert"), (a, "upsert"), (b, "delete")]
    # the deleted key is still a changed key: its tombstone must have reached every replica
    assert list(truth.changed_tokens(start)) == sorted({token_of(a), token_of(b)})
    assert not truth.truncated_since(start)
    before_truncate = truth.now()
    with pool.connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(t))
        conn.commit()
    assert truth.truncated_since(before_truncate) and truth.truncated_since(start)
    assert list(truth.changed_tokens(truth.now())) == []


def test_a_change_is_dated_at_its_commit_not_at_its_statement(
    pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    """The outage window asks "committed since": a transaction whose statement ran before the window opened
    and that committed inside it is in it."""
    slow = f"slow-{SUFFIX}"
    ran = threading.Event()
    go = threading.Event()

    def writer() -> None:
        store = OrderStore(pool, cfg, "test")
        with pool.connection() as conn, conn.transaction():
            conn.execute(store._upsert, {**_order(slow).model_dump(exclude={"updated_at"}),
                                         "updated_at": _order(slow).updated_at, "token": token_of(slow)})  # fmt: skip
            ran.set()
            assert go.wait(30)

    th = threading.Thread(target=writer)
    th.start()
    assert ran.wait(30)
    time.sleep(0.2)
    window_opens = truth.now()  # after the statement ran, before it commits
    go.set()
    th.join(30)
    assert list(truth.changed_tokens(window_opens)) == [token_of(slow)]
    assert _log(pool, cfg, window_opens) == [(slow, "upsert")]


def test_a_change_committed_before_the_window_and_relayed_inside_it_is_in_it(
    pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    """The cache is written by the outbox relay: an entry queued before the outage and delivered during it reached
    the replicas inside the window, so its key is verified too."""
    late = f"late-{SUFFIX}"
    cluster = f"relay-{SUFFIX}"
    OrderStore(pool, cfg, cluster).write(_order(late))
    window_opens = truth.now()
    assert token_of(late) not in set(truth.changed_tokens(window_opens))
    outbox = Outbox(pool, cfg, cluster)
    entries = outbox.claim("test-relay")
    assert [e.order_id for e in entries] == [late]
    outbox.mark_delivered("test-relay", [e.seq for e in entries])
    assert list(truth.changed_tokens(window_opens)) == [token_of(late)]


def test_a_writer_role_without_rights_on_the_log_still_writes_orders_and_they_are_logged(
    settings: Settings, pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    """The log is written by the trigger as its owner: an application role granted the orders table only (as a
    DBA would grant it) writes orders, and cannot read or forge the log."""
    role, password = f"crwriter_{SUFFIX}", uuid.uuid4().hex
    create = f"CREATE ROLE {role} LOGIN PASSWORD '{password}';"  # hex names and secret: nothing to escape
    psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    argv = [*psql, "-p", str(settings.postgres.port), "-f", "-"]
    subprocess.run(argv, input=create, text=True, check=True, capture_output=True, timeout=60, cwd="/")
    try:
        with owner_conn(settings) as conn:  # the owner grants the orders table, nothing else
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                sql.Identifier(cfg.orders_table), sql.Identifier(role)))  # fmt: skip
        start = truth.now()
        key = f"w-{SUFFIX}"
        pg = settings.postgres
        info = f"host={pg.host} port={pg.port} dbname={pg.dbname} user={role} connect_timeout=5"
        with psycopg.connect(info, password=password) as writer:
            writer.execute(
                sql.SQL("INSERT INTO {} (id, customer, status, amount_cents, updated_at, version, token)"
                        " VALUES (%s, 'c', 'new', 1, now(), 1, %s)").format(sql.Identifier(cfg.orders_table)),
                (key, token_of(key)),
            )  # fmt: skip
            writer.commit()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                writer.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(f"{cfg.orders_table}_changes")))
        assert list(truth.changed_tokens(start)) == [token_of(key)]
    finally:
        with owner_conn(settings) as conn:
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(
                sql.Identifier(cfg.orders_table), sql.Identifier(role)))  # fmt: skip
        drop = f"DROP ROLE IF EXISTS {role};"
        subprocess.run(argv, input=drop, text=True, check=True, capture_output=True, timeout=60, cwd="/")


def test_pruning_drops_old_entries_and_moves_the_start_of_the_log(
    pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    OrderStore(pool, cfg, "test").write(_order(f"p-{SUFFIX}"))
    before = truth.change_log_start()
    assert before is not None
    time.sleep(0.3)
    truth.prune_changes(0.1)  # everything older than 0.1 s goes
    after = truth.change_log_start()
    assert after is not None and after > before
    assert after >= truth.now() - timedelta(seconds=1)
    assert _log(pool, cfg, before) == []  # the write above was pruned with the rest


class _RecordingCql:
    """Stands in for the CQL client: records the statements the fix would send to Cassandra."""

    def __init__(self) -> None:
        self.session = self
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def execute(self, stmt: Any, params: tuple[object, ...], timeout: float) -> None:
        self.calls.append((stmt.query_string, params))


def test_the_fix_dates_a_tombstone_by_postgres_delete_and_versions(
    pool: ConnectionPool, cfg: DomainConfig, truth: SourceOfTruth
) -> None:
    deleted, never = f"del-{SUFFIX}", f"never-{SUFFIX}"
    stored = OrderStore(pool, cfg, "test").write(_order(deleted))
    with pool.connection() as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(cfg.orders_table)), (deleted,))
    q = sql.SQL("SELECT committed_at FROM {} WHERE order_id = %s AND op = 'delete'")
    with pool.connection() as conn:
        (row,) = fetch_all(conn.execute(q.format(sql.Identifier(f"{cfg.orders_table}_changes")), (deleted,)))
        conn.rollback()
    before = truth.now()
    cql = _RecordingCql()
    assert rewrite_from_source(pool, cql, cfg, [deleted, never])["deleted"] == 2  # type: ignore[arg-type]
    stamps = {params[1]: params[0] for _, params in cql.calls}
    assert stamps[deleted] == max(micros(row["committed_at"]), stored.version + 1)
    assert stamps[never] >= micros(before)  # no trace in PostgreSQL: its clock, read during the fix
