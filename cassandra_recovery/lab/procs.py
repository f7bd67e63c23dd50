"""Finding and signalling the lab's JVMs through /proc, so nothing is left behind."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabProcess:
    pid: int
    node_dir: Path
    state: str  # /proc state letter: R, S, D, T (stopped), Z...

    @property
    def frozen(self) -> bool:
        return self.state in ("T", "t")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[0]


def lab_processes(base_dir: Path) -> list[LabProcess]:
    """Every Cassandra JVM whose storage dir lies under base_dir (frozen ones included)."""
    prefix = f"-Dcassandra.storagedir={base_dir.resolve()}/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        for arg in cmdline(pid):
            if arg.startswith(prefix):
                st = state(pid)
                if st != "Z":
                    found.append(LabProcess(pid, Path(arg.split("=", 1)[1]), st))
                break
    return found


def process_for(base_dir: Path, node_dir: Path) -> LabProcess | None:
    for p in lab_processes(base_dir):
        if p.node_dir == node_dir.resolve():
            return p
    return None


def signal_pid(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait until the pids have exited; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if state(p) not in ("?", "Z")]
        if alive:
            time.sleep(0.2)
    return alive


def wait_state(pid: int, stopped: bool, timeout_s: float) -> bool:
    """Wait until the process is (or is no longer) in the stopped state; False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (state(pid) in ("T", "t")) == stopped:
            return True
        time.sleep(0.05)
    return False
