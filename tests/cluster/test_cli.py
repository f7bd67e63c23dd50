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
