"""The fault injector's promise, with real processes: a fault is undone on leaving its block, by its guardian
when the injector dies inside the block, and by its guardian when it outlives its deadline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cassandra_recovery.chaos.injector import FaultInjector
from cassandra_recovery.chaos.undo import run_undo
from tests import faults as F

pytestmark = pytest.mark.area("incident")
REPO = Path(__file__).resolve().parents[2]


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _until(check: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def sleeper() -> Iterator[int]:
    """A process standing in for a host's `serve`: the fault freezes it."""
    p = subprocess.Popen(["sleep", "120"])
    yield p.pid
    p.kill()
    p.wait()


@pytest.mark.fault(F.SERVE_HOST_FROZEN)
def test_a_fault_is_undone_when_its_block_ends_and_the_guardian_goes_away(sleeper: int) -> None:
    inj = FaultInjector(progress=lambda m: None)
    with inj.freeze_processes([sleeper], "sleeper") as fault:
        assert _until(lambda: _state(sleeper) == "T")
        guardian = fault.guardian
    assert fault.undone and _until(lambda: _state(sleeper) != "T")
    assert guardian is not None and guardian.wait(timeout=10) is not None


@pytest.mark.fault(F.SERVE_HOST_FROZEN, F.FLOW_RUN_CRASHED)
def test_the_guardian_undoes_the_fault_when_the_injector_is_killed_inside_its_block(sleeper: int) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from cassandra_recovery.chaos.injector import FaultInjector
        with FaultInjector(progress=lambda m: None).freeze_processes([{sleeper}], "sleeper"):
            os.kill(os.getpid(), signal.SIGKILL)  # the injector dies with the fault in force
    """)
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=60, check=False)
    assert child.returncode == -9
    assert _until(lambda: _state(sleeper) != "T"), "the guardian did not thaw the process"


@pytest.mark.fault(F.SERVE_HOST_FROZEN)
def test_the_guardian_undoes_a_fault_that_outlives_its_deadline(sleeper: int) -> None:
    inj = FaultInjector(progress=lambda m: None)
    with inj.freeze_processes([sleeper], "sleeper", deadline_s=1.0) as fault:
        assert _until(lambda: _state(sleeper) == "T")
        assert _until(lambda: _state(sleeper) != "T"), "the guardian did not undo the fault at its deadline"
        assert fault.guardian is not None and fault.guardian.wait(timeout=10) == 0
    assert fault.undone


def test_unknown_undo_and_foreign_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown undo"):
        run_undo("format_disk", {})
    from cassandra_recovery.errors import LabError

    with pytest.raises(LabError, match="not a chaos table"):
        run_undo("delete_nft_table", {"table": "filter"})
