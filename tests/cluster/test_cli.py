"""The `cassandra-recovery lab` verbs as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cassandra_recovery.lab.cluster import Lab

pytestmark = pytest.mark.area("lab")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cassandra_recovery.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_status_json_lists_every_node(lab: Lab) -> None:
    proc = _cli("lab", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["cluster"] == "lab"
    assert [(n["name"], n["address"], n["state"]) for n in doc["nodes"]] == [
        ("node1", "127.0.0.2", "UN"),
        ("node2", "127.0.0.3", "UN"),
        ("node3", "127.0.0.4", "UN"),
    ]


def test_unknown_node_is_a_clear_error_with_exit_code_2(lab: Lab) -> None:
    proc = _cli("lab", "freeze", "node9")
    assert proc.returncode == 2
    assert "unknown node 'node9'" in proc.stderr and "node1 (127.0.0.2)" in proc.stderr


def test_node_addressed_by_ip_and_nodetool_passthrough(lab: Lab) -> None:
    proc = _cli("lab", "nodetool", "127.0.0.3", "statushandoff")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Hinted handoff is running"


def test_up_is_idempotent(lab: Lab) -> None:
    pids = {n.name: lab.process(n).pid for n in lab.state().spec.nodes}  # type: ignore[union-attr]
    proc = _cli("lab", "up")
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr
    assert {n.name: lab.process(n).pid for n in lab.state().spec.nodes} == pids  # type: ignore[union-attr]


def test_verify_runs_the_verify_flow_and_prints_its_verdict(lab: Lab) -> None:
    """`verify` is the flow the incident runs (its retries of an unproven pass included), run here: the verdict it
    prints is that flow run's result, with the CLI's options, and the run is on the Prefect server like any other."""
    import os

    from prefect.client.orchestration import get_client

    from cassandra_recovery.degraded.model import Order
    from cassandra_recovery.lab.prefect_server import client_env
    from cassandra_recovery.settings import Settings
    from cassandra_recovery.wiring import service_parts
    from deployments import names
    from deployments.run_queries import runs_in_state
    from tests.cluster.degraded_env import DOMAIN, degraded_settings, domain_env
    from tests.cluster.incident_env import prefect_api
    from tests.migrated import migrated

    own = {"keyspace": "shop_cli_verify", "orders_table": "orders_clv", "outbox_table": "outbox_clv",
           "policy_table": "policy_clv"}  # fmt: skip
    parts = service_parts(migrated(degraded_settings(**own)))
    try:
        parts.empty()
        for i in range(120):
            parts.service.write(Order(id=f"v-{i:04d}", customer="c", status="new", amount_cents=i))
        stats, _ = parts.relay.drain(timeout_s=60)
        assert stats.queued == 0, stats
    finally:
        parts.close()
    env = {**os.environ, **domain_env(**own)}
    argv = [
        sys.executable,
        "-m",
        "cassandra_recovery.cli",
        "verify",
        "--no-preview",
        "--rows-per-chunk",
        "50",
        "--json",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert (doc["verdict"], doc["keyspace"], doc["table"]) == (
        "converged",
        "shop_cli_verify",
        DOMAIN["cassandra_table"],
    )
    assert doc["rows_compared"] == 3 * 120 and doc["preview"] is None, doc  # every replica; --no-preview reached it
    with prefect_api(client_env(Settings())), get_client(sync_client=True) as client:
        runs = runs_in_state(client, "COMPLETED", names.VERIFY, newest_first=True)
    limits = {"target_rows_per_chunk": 50, "preview": False}
    mine = [r for r in runs[:10] if (r.parameters or {}).get("limits") == limits]
    assert mine, [r.parameters for r in runs[:3]]
