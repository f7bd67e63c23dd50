"""The degraded-mode service starting during an outage (issue 15 item 3), as an operator runs `lab load`: with every
node frozen it starts, accepts every write (queued) and serves every read from PostgreSQL, with no traceback; the
cache schema it never got to create is made once Cassandra answers. Tools that need Cassandra fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from cassandra_recovery.clients.cql import CqlClient, identifier
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import pg_parts
from tests import faults as F
from tests.cluster.conftest import restore
from tests.cluster.degraded_env import degraded_settings, domain_env
from tests.migrated import migrated

pytestmark = pytest.mark.area("degraded")

NODES = ("node1", "node2", "node3")


MADE: list[str] = []  # the keyspaces these tests named: dropped when each test ends (the lab is shared)


@pytest.fixture(autouse=True)
def drop_made_keyspaces(lab: Lab, cql: CqlClient) -> Iterator[None]:
    yield
    restore(lab)  # every node answers again, so the drop reaches them all
    while MADE:
        cql.execute("DROP KEYSPACE IF EXISTS " + identifier(MADE.pop()), timeout_s=60)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)


def _names() -> dict[str, str]:
    """A keyspace nobody made yet: the service must start without creating it."""
    tag = uuid.uuid4().hex[:8]
    MADE.append(f"shop_out_{tag}")
    return {
        "keyspace": f"shop_out_{tag}",
        "orders_table": f"orders_out_{tag}",
        "outbox_table": f"outbox_out_{tag}",
        "policy_table": f"policy_out_{tag}",
    }


def _cli(names: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **domain_env(**names)}
    argv = [sys.executable, "-m", "cassandra_recovery.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.fault(F.EVERY_NODE_FROZEN)
def test_lab_load_with_every_node_frozen_accepts_writes_and_reads_from_postgres(lab: Lab) -> None:
    ensure_postgres(Settings())
    names = _names()
    migrated(degraded_settings(**names))
    for n in NODES:
        lab.freeze(n)
    load = _cli(names, "lab", "load", "--operations", "80", "--rate", "80", "--read-ratio", "0.5", "--json")
    assert load.returncode == 0, load.stderr
    assert "Traceback" not in load.stderr
    rep = json.loads(load.stdout)
    assert rep["writes"] > 0 and rep["write_errors"] == 0  # every write acknowledged by PostgreSQL
    assert rep["reads"] > 0 and rep["read_errors"] == 0 and rep["reads_postgres"] == rep["reads"]
    assert rep["cache_connected"] is False and rep["queued"] >= 1
    # Tools that need Cassandra say so in one line.
    compare = _cli(names, "compare", "--json")
    assert compare.returncode != 0 and "Traceback" not in compare.stderr
    assert compare.stderr.count("\n") == 1 and "Cassandra" in compare.stderr
    for n in NODES:
        lab.thaw(n, wait=False)  # no node is up to see it until the others thaw too
    lab.wait_all_up()
    # Once Cassandra answers, the cache schema is made and the queued writes are delivered.
    drained = _cli(names, "queue", "drain", "--json")
    assert drained.returncode == 0, drained.stderr
    doc = json.loads(drained.stdout)
    assert doc["drained"] is True and doc["dead"] == 0
    pg = pg_parts(degraded_settings(**names))
    try:
        assert pg.outbox.stats().queued == 0
    finally:
        pg.close()


@pytest.mark.fault(F.NODE_FROZEN)
def test_lab_load_with_two_of_three_frozen_writes_and_serves_from_the_first_operation(lab: Lab) -> None:
    ensure_postgres(Settings())
    names = _names()
    migrated(degraded_settings(**names))
    lab.freeze("node2")
    lab.freeze("node3")
    load = _cli(names, "lab", "load", "--operations", "40", "--rate", "40", "--read-ratio", "0.5", "--json")
    assert load.returncode == 0, load.stderr
    rep = json.loads(load.stdout)
    assert rep["write_errors"] == 0 and rep["read_errors"] == 0 and rep["stale_reads"] == 0
