"""The per-cluster kill switch on real PostgreSQL, and its CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.controls.killswitch import KillSwitch
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def switch() -> Iterator[KillSwitch]:
    ensure_postgres(Settings())
    pool = make_pool(migrated(Settings()), max_size=1)
    ks = KillSwitch(pool)
    yield ks
    with pool.connection() as conn:
        conn.execute("DELETE FROM automation_kill_switch WHERE cluster_id LIKE 'ks-test-%' OR cluster_id = 'lab'")
        conn.commit()
    pool.close()


def test_stop_then_resume_per_cluster(switch: KillSwitch) -> None:
    assert switch.stopped("ks-test-a") is None
    s = switch.set("ks-test-a", True, "vendor maintenance", "alice")
    assert (s.stopped, s.reason, s.set_by) == (True, "vendor maintenance", "alice")
    assert switch.stopped("ks-test-a") == s
    assert switch.stopped("ks-test-b") is None  # per cluster
    back = switch.set("ks-test-a", False, "done", "bob")
    assert switch.stopped("ks-test-a") is None and back.since >= s.since
    with pytest.raises(ValueError, match="reason"):
        switch.set("ks-test-a", True, "", "alice")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cassandra_recovery.cli", "kill-switch", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


def test_cli_stop_status_resume_and_bad_input(switch: KillSwitch) -> None:
    assert _cli("stop").returncode == 2  # a reason is required
    stopped = _cli("stop", "--reason", "hands off during the vendor's upgrade", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["stopped"] is True
    assert switch.stopped("lab") is not None
    status = json.loads(_cli("status", "--json").stdout)
    assert status["stopped"] is True and status["reason"] == "hands off during the vendor's upgrade"
    assert _cli("resume", "--reason", "upgrade finished").returncode == 0
    assert switch.stopped("lab") is None
