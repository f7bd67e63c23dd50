"""Every kind of process the project starts on this machine, found through /proc: `lab down --postgres` stops
them and `bin/test` proves none survives a run (a failed tier included)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cassandra_recovery.lab import procs

ROOT = Path(__file__).resolve().parents[2]
# The long-running commands of our CLI (the demo stack, `--keep`, hand-started services and workloads).
BASE_DIR_ENV = "CASSANDRA_RECOVERY_LAB__BASE_DIR"
LONG_RUNNING = (("serve",), ("receiver",), ("detector",), ("queue", "worker"), ("regions", "watch"), ("lab", "load"))


@dataclass(frozen=True)
class Leftover:
    pid: int
    kind: str  # lab-jvm, prefect-server, flow-run, pipeline, prometheus, alertmanager
    argv: tuple[str, ...]

    def describe(self) -> str:
        storage = [a for a in self.argv if a.startswith("-Dcassandra.storagedir=")]  # the JVM's flags say nothing
        return f"{self.kind:<14} pid {self.pid:<7} {' '.join(storage or self.argv)[:160]}"


def classify(argv: list[str]) -> str | None:
    """The kind of project process this command line is, or None. Pure: tested on real command lines."""
    if not argv:
        return None
    if argv[-1] == procs.CASSANDRA_MAIN and any(a.startswith(procs.STORAGE_DIR_ARG) for a in argv):
        return "lab-jvm"
    names = [Path(a).name for a in argv[:3]]
    if "prefect" in names and "server" in argv and "start" in argv:
        return "prefect-server"
    if "uvicorn" in argv and any(a.startswith("prefect.server.api.server:") for a in argv):
        return "prefect-server"  # the server's worker process, which can outlive `prefect server start`
    if "-m" in argv and argv[argv.index("-m") + 1 :][:1] == ["prefect.engine"]:
        return "flow-run"
    cli = _cli_args(argv)
    if cli is not None:
        return "pipeline" if any(tuple(cli[: len(c)]) == c for c in LONG_RUNNING) else None
    binary = Path(argv[0]).name
    config = next((a.split("=", 1)[1] for a in argv if a.startswith("--config.file=")), "")
    # Ours write their configuration into a `monitoring` directory of the lab or of a stack.
    if Path(config).parent.name == "monitoring":
        if binary == "prometheus":
            return "prometheus"
        if binary in ("prometheus-alertmanager", "alertmanager"):
            return "alertmanager"
    return None


def _cli_args(argv: list[str]) -> list[str] | None:
    """The arguments after our CLI in `python -m cassandra_recovery.cli ...` or `cassandra-recovery ...`."""
    for i, a in enumerate(argv[:4]):
        if a == "cassandra_recovery.cli" and i > 0 and argv[i - 1] == "-m":
            return argv[i + 1 :]
        if Path(a).name == "cassandra-recovery":
            return argv[i + 1 :]
    return None


def owned(pid: int, base_dir: Path) -> bool:
    """Started for this lab: the lab directory its environment names, else its Prefect home, working directory
    or an argument lies in the lab directory, or it runs from this checkout (the stack's services). A flow run
    under `serve` outlives its parent. A process naming another lab's directory is that lab's, even when it
    runs from this checkout: two labs side by side (CI) never stop each other's services."""
    base = base_dir.resolve()
    try:
        env = _environ(pid)
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    named = env.get(BASE_DIR_ENV)
    if named:
        return Path(named).resolve().is_relative_to(base)
    home = env.get("PREFECT_HOME", "")
    args = procs.cmdline(pid)
    return (
        bool(home)
        and Path(home).resolve().is_relative_to(base)
        or cwd.is_relative_to(base)
        or cwd == ROOT
        or any(str(base) in a for a in args)
    )


def _environ(pid: int) -> dict[str, str]:
    out = {}
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def scan(base_dir: Path | None = None, user_prefix: str | None = None) -> list[Leftover]:
    """Project processes alive now; with base_dir, only those started for that lab (see `owned`), and with
    user_prefix too, only node JVMs run by that lab's node users (procs.lab_node_dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        argv = procs.cmdline(pid)
        kind = classify(argv)
        if kind is None or procs.state(pid) in ("Z", "?"):
            continue
        if base_dir is not None and not owned(pid, base_dir):
            continue
        if kind == "lab-jvm" and base_dir is not None and user_prefix is not None:
            if procs.lab_node_dir(argv, procs.uid(pid), base_dir, partial(procs.node_uid, user_prefix)) is None:
                continue
        found.append(Leftover(pid, kind, tuple(argv)))
    return sorted(found, key=lambda p: (p.kind, p.pid))


def stop(found: list[Leftover], timeout_s: float = 20.0) -> list[Leftover]:
    """SIGTERM (a frozen process gets SIGCONT too), SIGKILL past the timeout; returns those still alive."""
    for p in found:
        procs.signal_pid(p.pid, signal.SIGTERM)
        procs.signal_pid(p.pid, signal.SIGCONT)
    alive = set(procs.wait_gone([p.pid for p in found], timeout_s))
    for p in found:
        if p.pid in alive:
            procs.signal_pid(p.pid, signal.SIGKILL)
    still = set(procs.wait_gone(list(alive), 10.0))
    return [p for p in found if p.pid in still]
