"""The per-cluster kill switch on real PostgreSQL, and its CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.controls.killswitch import AutomationStopped, KillSwitch, stopped_in
from cassandra_recovery.degraded.policy import Mode, PolicyStore
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.incident.side_effects import SideEffectLog
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.settings import Settings
from tests import faults as F
from tests.migrated import migrated, owner_conn

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def switch() -> Iterator[KillSwitch]:
    ensure_postgres(Settings())
    pool = make_pool(migrated(Settings()), max_size=2)  # two: a test sets the switch beside an open transaction
    ks = KillSwitch(pool)
    yield ks
    with pool.connection() as conn:
        conn.execute("DELETE FROM automation_kill_switch WHERE cluster_id LIKE 'ks-test-%' OR cluster_id = 'lab'")
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE cluster_id LIKE 'ks-test-%'").format(
                sql.Identifier(Settings().domain.policy_table)
            )
        )
        conn.commit()
    pool.close()
    with owner_conn(Settings()) as conn:  # the fenced log is never deleted from by the processes' role
        conn.execute("DELETE FROM side_effects WHERE holder = 'ks-test-run'")


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


@pytest.mark.fault(F.KILL_SWITCH_SET)
def test_every_automated_start_reads_the_switch_in_its_own_transaction(switch: KillSwitch) -> None:
    """The fenced read before a side effect: a start is refused (nothing written) while the switch is on, a
    cancellation (no cluster named) is not, and setting the switch waits for a start in flight."""
    effects, policies = SideEffectLog(switch.pool), PolicyStore(switch.pool, Settings().domain)
    fence = Fence.unfenced("ks-test-run")
    switch.set("ks-test-a", True, "game day", "alice@host")
    switch.set("ks-test-b", False, "back to normal", "alice@host")
    before = len(effects.entries())
    with pytest.raises(AutomationStopped) as refused:
        effects.begin(fence, "verification_fix", {"keys": 3}, "ks-test-a")
    assert refused.value.switch.set_by == "alice@host" and not refused.value.cancelled
    assert len(effects.entries()) == before  # refused before anything was recorded as started
    with pytest.raises(AutomationStopped):
        policies.set("ks-test-a", Mode.DEGRADED, "node down", "incident/x", "ONE", stoppable=True)
    assert policies.get("ks-test-a").mode is Mode.NORMAL
    effects.end(effects.begin(fence, "repair_cancel", {}, None), "done")  # stopping a repair is never refused
    policies.set("ks-test-a", Mode.NORMAL, "resolved by a person", "alice@host")  # a person's change is not stopped
    effects.end(effects.begin(fence, "repair_segment", {}, "ks-test-b"), "done")  # another cluster acts on
    # A start holding its fenced read: the switch being set waits for it (never set between read and start).
    with switch.pool.connection() as conn, conn.transaction():
        assert stopped_in(conn, "ks-test-b") is None
        setter = threading.Thread(target=switch.set, args=("ks-test-b", True, "now", "bob@host"))
        setter.start()
        setter.join(timeout=1.0)
        assert setter.is_alive()  # blocked on the start's share lock
    setter.join(timeout=30)
    assert not setter.is_alive() and switch.stopped("ks-test-b") is not None
