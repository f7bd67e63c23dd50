"""Per-replica verification on the real lab: a replica that missed writes (its hints truncated) is named with
its missing keys, verification changes nothing, the targeted fix follows and verification then converges; the
outage-scoped proof finds the same keys reading only the changed ones; a down replica gives "cannot verify"."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from psycopg import sql

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN
from cassandra_recovery.settings import Settings
from cassandra_recovery.verification.replica import ReplicaReader
from cassandra_recovery.verification.scoped import read_margins
from cassandra_recovery.verification.service import fix, verify
from cassandra_recovery.verification.tables import orders_spec
from cassandra_recovery.verification.truth import SourceOfTruth
from cassandra_recovery.verification.verifier import VerifyConfig
from cassandra_recovery.wiring import ServiceParts, service_parts
from tests import faults as F
from tests.cluster.degraded_env import degraded_settings
from tests.migrated import migrated

pytestmark = pytest.mark.area("verification")

DOMAIN = {
    "keyspace": "shop_verify",
    "orders_table": "orders_ver",
    "outbox_table": "outbox_ver",
    "policy_table": "policy_ver",
}


@pytest.fixture(scope="module")
def settings(lab: Lab, request: pytest.FixtureRequest) -> Settings:
    ensure_postgres(Settings())
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]
    return degraded_settings(**DOMAIN)


@pytest.fixture
def parts(settings: Settings) -> Iterator[ServiceParts]:
    p = service_parts(migrated(settings))
    d = settings.domain
    p.cql.truncate(d.keyspace, d.cassandra_table, timeout_s=30)
    with p.pg.pool.connection() as conn:
        tables = [sql.Identifier(t) for t in (d.orders_table, d.outbox_table, d.policy_table)]
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
        conn.commit()
    yield p
    p.close()


def _write(p: ServiceParts, ids: list[str], status: str) -> None:
    for i in ids:
        p.service.write(Order(id=i, customer=f"c-{i}", status=status, amount_cents=100))
    stats, report = p.relay.drain(timeout_s=60)
    assert (stats.queued, report.dead, report.delivered) == (0, 0, len(ids)), report.errors


def _address(lab: Lab, name: str) -> str:
    return lab.node(name).address


def _node3_copy(lab: Lab, cql: CqlClient, settings: Settings, keys: list[str]) -> dict[str, int]:
    """node3's own rows among `keys`, by a traced read pinned to it (the proof is the reader's)."""
    reader = ReplicaReader(cql, orders_spec(settings.domain))
    replicas = tuple(_address(lab, n) for n in ("node1", "node2", "node3"))
    rows = reader.rows(MIN_TOKEN, MAX_TOKEN, _address(lab, "node3"), replicas)
    return {k: h for k, h in rows.items() if k in keys}


@pytest.mark.fault(F.NODE_KILLED, F.REPLICA_MISSED_WRITES)
def test_a_replica_that_missed_writes_is_named_left_unchanged_then_fixed(
    lab: Lab, settings: Settings, parts: ServiceParts
) -> None:
    base = [f"v-{i:04d}" for i in range(500)]
    _write(parts, base, "new")
    since = SourceOfTruth(parts.pg.pool, settings.domain).now()  # the outage's window opens here (exactly)
    # Killed, not frozen: a frozen node3 still holds client requests in its socket buffers and would apply
    # them as coordinator once thawed; a dead one cannot, so the writes below reach node1 and node2 only.
    # Its commit log syncs every 10 s: flush first, so the kill loses none of the writes it already took.
    lab.nodetool().run("node3", "flush", DOMAIN["keyspace"], timeout_s=120)
    lab.kill("node3")
    lab.wait_seen(lab.node("node3"), up=False)
    added = [f"v-late-{i:03d}" for i in range(20)]
    updated = base[:5]
    # No hint may reach node3: truncatehints alone leaves the hints file a coordinator still has open for
    # writing (it is delivered when node3 returns), so handoff is off on both coordinators while node3 is away
    # and what they did store is truncated.
    nt = lab.nodetool()
    coordinators = ("node1", "node2")
    try:
        for c in coordinators:
            nt.run(c, "disablehandoff", timeout_s=60)
        _write(parts, added, "new")
        _write(parts, updated, "shipped")
        for c in coordinators:
            nt.run(c, "truncatehints", timeout_s=60)
            assert parts.cql.pending_hints(lab.node(c).address) == []
        lab.start("node3")
        lab.wait_all_up()
    finally:
        for c in coordinators:
            nt.run(c, "enablehandoff", timeout_s=60)

    cfg = VerifyConfig(target_rows_per_chunk=100)
    first = verify(settings, "lab", config=cfg)
    assert first.verdict == "diverged", (first.reasons, first.unverified)
    assert sorted({d.replica for d in first.diffs}) == [_address(lab, "node3")]
    assert first.keys("missing") == sorted(added)
    assert first.keys("different") == sorted(updated)
    assert first.keys("extra") == []
    assert first.preview is not None and first.preview["in_sync"] is False  # the replicas' own second opinion
    assert first.rows_truth == 520 and first.rows_compared == 3 * 520 - 20
    # Verification wrote nothing: node3 still lacks the keys, and a second pass finds exactly the same.
    assert _node3_copy(lab, parts.cql, settings, added) == {}
    again = verify(settings, "lab", config=cfg)
    assert (again.keys("missing"), again.keys("different")) == (first.keys("missing"), first.keys("different"))

    # The outage-scoped proof finds the same keys reading only the changed ones: one range per key (no merging),
    # so each replica's copy of exactly the 25 changed keys is read and compared.
    one_per_key = settings.model_copy(
        update={"verification": settings.verification.model_copy(update={"scoped_merge_rows": 0})}
    )
    scoped = verify(one_per_key, "lab", config=cfg, missed_since=since, exact_window=True)
    assert scoped.scope is not None and scoped.scope["scoped"] is True, scoped.scope
    assert (scoped.scope["changed_keys"], scoped.scope["ranges"]) == (25, 25), scoped.scope
    assert scoped.verdict == "diverged" and sorted({d.replica for d in scoped.diffs}) == [_address(lab, "node3")]
    assert (scoped.keys("missing"), scoped.keys("different")) == (sorted(added), sorted(updated))
    assert scoped.rows_truth == 25 and scoped.rows_compared == 3 * 25 - 20
    # The window's margins, from the lab's own settings (cassandra.yaml: 2000ms, periodic every 10000ms).
    margins, notes = read_margins(parts.cql, "127.0.0.2", 60.0, {}, 0.0)
    assert (margins.write_timeout_s, margins.commitlog_loss_s, notes) == (2.0, 10.0, [])

    done = fix(settings, "lab", first, run_key=f"test-verify/{time.time()}")
    assert done["method"] == "rewrite_from_source", done
    assert (done["written"], done["deleted"]) == (25, 0)
    after = verify(settings, "lab", config=cfg)
    assert after.verdict == "converged", after.reasons
    assert after.diffs == [] and after.unverified == []
    assert after.rows_compared == 3 * 520
    assert after.preview is not None and after.preview["in_sync"] is True
    assert sorted(_node3_copy(lab, parts.cql, settings, added)) == sorted(added)
    clean = verify(one_per_key, "lab", config=cfg, missed_since=since, exact_window=True)
    assert clean.verdict == "converged" and (clean.rows_truth, clean.rows_compared) == (25, 75), clean.reasons
    # Flat memory: no page of the table a verification read is still held once it was consumed (the driver's
    # future and its timer hold each other; only a full collection, which rows never trigger, would free them).
    held = [o for o in gc.get_objects() if type(o).__name__ == "ResponseFuture" and _table_page(o, settings) > 1]
    pages = [(str(getattr(f.query, "query_string", ""))[:120], _table_page(f, settings)) for f in held]
    assert held == [], f"{len(held)} response futures still hold a page of the table's rows: {pages}"


def _table_page(future: object, settings: Settings) -> int:
    """Rows of the domain table a response future still holds (the driver's own trace reads are not counted)."""
    query = str(getattr(getattr(future, "query", None), "query_string", ""))
    rows = getattr(future, "_final_result", None)
    # this test's own keyspace: the session's earlier tests read other keyspaces' `orders` tables
    held = isinstance(rows, list) and f"{settings.domain.keyspace}.{settings.domain.cassandra_table}" in query
    return len(rows) if held and isinstance(rows, list) else 0


@pytest.mark.fault(F.NODE_FROZEN)
def test_a_down_replica_gives_cannot_verify(lab: Lab, settings: Settings, parts: ServiceParts) -> None:
    _write(parts, [f"d-{i:03d}" for i in range(50)], "new")
    lab.freeze("node3")
    rep = verify(settings, "lab", config=VerifyConfig(target_rows_per_chunk=100))
    assert rep.verdict == "cannot_verify", rep.reasons
    assert rep.down == [_address(lab, "node3")]
    assert rep.diffs == []
    assert any(_address(lab, "node3") in r for r in rep.reasons)
    assert rep.preview is not None and rep.preview["ran"] is False
    # what could be read was read and matched: the verdict is about what could not be
    assert rep.rows_compared == 2 * 50
