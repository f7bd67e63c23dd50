"""`lab load`, `queue status|drain` and `compare` as an operator runs them (--json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import service_parts
from tests import faults as F
from tests.cluster.degraded_env import degraded_settings, domain_env
from tests.migrated import migrated

pytestmark = pytest.mark.area("degraded")

NAMES = {
    "keyspace": "shop_cli",
    "orders_table": "orders_cli",
    "outbox_table": "outbox_cli",
    "policy_table": "policy_cli",
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **domain_env(**NAMES)}
    return subprocess.run(
        [sys.executable, "-m", "cassandra_recovery.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.fault(F.RELAY_DOWN)
def test_load_without_relay_then_queue_status_drain_and_compare(lab: Lab) -> None:
    ensure_postgres(Settings())
    settings = degraded_settings(**NAMES)
    parts = service_parts(migrated(settings))  # start from empty stores
    try:
        parts.cql.execute("TRUNCATE shop_cli.orders", timeout_s=30)
        with parts.pg.pool.connection() as conn:
            conn.execute("TRUNCATE orders_cli, outbox_cli, policy_cli")
            conn.commit()
    finally:
        parts.close()
    load = _cli("lab", "load", "--operations", "150", "--rate", "300", "--read-ratio", "0", "--no-relay", "--json")
    assert load.returncode == 0, load.stderr
    report = json.loads(load.stdout)
    assert report["writes"] == 150 and report["write_errors"] == 0

    status = json.loads(_cli("queue", "status", "--json").stdout)
    assert status["queued"] >= 150 and status["dead"] == 0 and status["oldest_queued_age_s"] > 0

    unequal = _cli("compare", "--json", "--chunks", "8")
    assert unequal.returncode == 1  # the cache has not received the queued writes yet
    assert json.loads(unequal.stdout)["missing"]

    drain = _cli("queue", "drain", "--json")
    assert drain.returncode == 0, drain.stderr
    drained = json.loads(drain.stdout)
    assert drained["drained"] is True and drained["queued"] == 0 and drained["run"]["delivered"] >= 150

    equal = _cli("compare", "--json", "--chunks", "8")
    assert equal.returncode == 0, equal.stdout
    doc = json.loads(equal.stdout)
    assert doc["equal"] is True and doc["rows_compared"]["postgres"] == doc["rows_compared"]["cassandra"] > 0


def test_bad_input_is_refused_with_exit_code_2(lab: Lab) -> None:
    assert _cli("compare", "--consistency", "MOSTLY").returncode == 2
    bad = _cli("lab", "load", "--read-ratio", "1.5")
    assert bad.returncode == 2 and "read ratio" in bad.stderr


def test_queue_worker_delivers_as_entries_come_and_stops_on_sigterm(lab: Lab) -> None:
    import signal
    import time

    from cassandra_recovery.degraded.model import Order

    ensure_postgres(Settings())
    parts = service_parts(migrated(degraded_settings(**NAMES)))
    worker = subprocess.Popen(
        [sys.executable, "-m", "cassandra_recovery.cli", "queue", "worker"],
        env={**os.environ, **domain_env(**NAMES)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i in range(20):
            parts.service.write(Order(id=f"worker-{i}", customer="c", status="new", amount_cents=i))
        deadline = time.monotonic() + 60
        while parts.pg.outbox.stats().queued and time.monotonic() < deadline:
            time.sleep(0.5)
        assert parts.pg.outbox.stats().queued == 0
        got = parts.cache.get("worker-19", "ALL")
        assert got is not None and got.order.amount_cents == 19
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        parts.close()
    assert worker.returncode == 0, err
