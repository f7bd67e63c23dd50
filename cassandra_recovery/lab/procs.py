"""Finding and signalling the lab's JVMs through /proc, so nothing is left behind."""

from __future__ import annotations

import os
import pwd
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

CASSANDRA_MAIN = "org.apache.cassandra.service.CassandraDaemon"
STORAGE_DIR_ARG = "-Dcassandra.storagedir="


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


def status_uid(text: str) -> int | None:
    """The real uid on the `Uid:` line of /proc/<pid>/status (real, effective, saved, filesystem)."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def uid(pid: int) -> int | None:
    try:
        return status_uid(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def node_uid(user_prefix: str, node_name: str) -> int | None:
    """The uid a lab node runs as: its own user when the lab runs as root (users.py), else ours."""
    if os.geteuid() != 0:
        return os.getuid()
    try:
        return pwd.getpwnam(user_prefix + node_name).pw_uid
    except KeyError:
        return None


def lab_node_dir(
    argv: list[str], uid: int | None, base_dir: Path, expected_uid: Callable[[str], int | None]
) -> Path | None:
    """The node directory when this is one of the lab's nodes: Cassandra's daemon main class, a storage dir
    base_dir/nodes/<node>, run by that node's user. The storage dir alone is not enough: another Cassandra (or
    any process) may name the same directory, and the lab signals what matches. Pure: tested on captured /proc."""
    if not argv or argv[-1] != CASSANDRA_MAIN or uid is None:
        return None
    nodes = base_dir.resolve() / "nodes"
    dirs = [Path(a.split("=", 1)[1]) for a in argv if a.startswith(STORAGE_DIR_ARG)]
    if len(dirs) != 1 or dirs[0].parent != nodes:
        return None
    expected = expected_uid(dirs[0].name)
    return dirs[0] if expected is not None and uid == expected else None


def lab_processes(base_dir: Path, user_prefix: str) -> list[LabProcess]:
    """Every node JVM of the lab in base_dir whose node users are named user_prefix + node (frozen ones too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        node_dir = lab_node_dir(cmdline(pid), uid(pid), base_dir, partial(node_uid, user_prefix))
        if node_dir is not None:
            st = state(pid)
            if st != "Z":
                found.append(LabProcess(pid, node_dir, st))
    return found


def process_for(base_dir: Path, user_prefix: str, node_dir: Path) -> LabProcess | None:
    for p in lab_processes(base_dir, user_prefix):
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
