"""Bad input to the CLI is refused before anything runs, with exit code 2 and what is accepted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.area("lab")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"CASSANDRA_RECOVERY_LAB__BASE_DIR": str(tmp_path / "lab"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "cassandra_recovery.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab", "up", "--hint-window", "20x"], "bad duration '20x'"),
        (["lab", "up", "--nodes", "0"], "--nodes must be between 1 and 9"),
        (["lab", "up", "--tokens", "0"], "--tokens must be between 1 and 256"),
    ],
)
def test_bad_lab_up_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "lab").exists()  # nothing was started or written


def test_commands_on_a_lab_that_is_not_up_say_how_to_start_it(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "lab", "freeze", "node1")
    assert proc.returncode == 1
    assert "cassandra-recovery lab up" in proc.stderr


def test_down_is_idempotent_when_nothing_runs(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "lab", "down")
    assert proc.returncode == 0, proc.stderr
    assert "stopped 0 node process(es)" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["repair", "--segments-per-range", "0"], "--segments-per-range must be between 1 and 1024"),
        (["repair", "--segment-timeout", "0"], "--segment-timeout must be positive"),
        (["repair", "--node", "node9"], "unknown node 'node9'"),
        (["repair", "--cluster", "nope"], "nope"),
        (["repair", "--start-token", "5"], "--start-token and --end-token go together"),
        (["repair", "--start-token", "5", "--end-token", str(2**63)], "outside the Murmur3 ring"),
    ],
)
def test_bad_repair_arguments_are_refused_before_anything_is_contacted(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


@pytest.mark.parametrize("node", ["node4", "127.0.0.9", "nodeX"])
def test_demo_on_a_machine_with_no_lab_checks_its_node_against_the_lab_it_would_create(
    tmp_path: Path, node: str
) -> None:
    proc = _cli(tmp_path, "demo", "--node", node)
    assert proc.returncode == 2, proc.stderr
    assert f"unknown node {node!r}; lab nodes: node1 (127.0.0.2), node2 (127.0.0.3), node3 (127.0.0.4)" in proc.stderr
    assert "lab.json" not in proc.stderr  # the first-run failure of the first wave
    assert not (tmp_path / "lab").exists()  # refused before anything was started or written
