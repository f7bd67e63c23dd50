"""One fault injector for tests and game days: freeze, partition, kill, flap, split and one-way cut of lab
nodes; PostgreSQL and the Prefect server down (a restart is a short outage); Slack unreachable; a process group
killed or frozen. Each fault is a context manager: on leaving it the fault is undone, and a guardian process
undoes it if the injector dies first (or the fault outlives its deadline).

    inj = FaultInjector(settings)
    with inj.freeze("node3", deadline_s=300):
        ...
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cassandra_recovery.chaos.undo import CHAOS_TABLE_PREFIX, run_undo
from cassandra_recovery.clients.child_env import child_env, own_config
from cassandra_recovery.errors import LabError
from cassandra_recovery.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_DEADLINE_S = 900.0  # no fault outlives this unless asked: a forgotten one is undone by its guardian


@dataclass
class Injected:
    """A fault in force: `undo()` ends it (once; the guardian is disarmed after)."""

    label: str
    undo_kind: str
    args: dict[str, Any]
    guardian: subprocess.Popen[bytes] | None
    started: float = field(default_factory=time.monotonic)
    undone: bool = False

    def undo(self) -> float:
        """Undo the fault; how long it was in force."""
        if not self.undone:
            run_undo(self.undo_kind, self.args)
            self.undone = True
            self.disarm()
        return time.monotonic() - self.started

    def disarm(self) -> None:
        g = self.guardian
        if g is not None and g.poll() is None:
            g.terminate()
            try:
                g.wait(timeout=10)
            except subprocess.TimeoutExpired:
                g.kill()


def _guard(
    label: str, undo: str, args: dict[str, Any], deadline_s: float, log_dir: Path | None
) -> subprocess.Popen[bytes]:
    spec = {"parent": os.getpid(), "deadline_s": deadline_s, "undo": undo, "args": args, "label": label}
    with open(log_dir / "chaos-guardian.log" if log_dir else os.devnull, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cassandra_recovery.chaos.guardian"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlives the injector and its process group
            cwd="/",
            env=child_env(prefixes=["PREFECT_"], extra=own_config()),  # it undoes faults with the tool's settings
        )
    assert proc.stdin is not None  # noqa: S101 - stdin=PIPE
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    return proc


class FaultInjector:
    def __init__(self, settings: Settings | None = None, progress: Callable[[str], None] = log.info):
        self.settings = settings or Settings()
        self.progress = progress
        self.log_dir: Path | None = self.settings.lab.base_dir if self.settings.lab.base_dir.is_dir() else None

    def _lab(self) -> Any:
        from cassandra_recovery.lab.cluster import Lab

        return Lab(self.settings.lab)

    @contextmanager
    def _fault(
        self, label: str, undo: str, args: dict[str, Any], inject: Callable[[], None], deadline_s: float
    ) -> Iterator[Injected]:
        """Guardian armed first (a crash while injecting is covered), then the fault; undone on the way out."""
        guardian = _guard(label, undo, args, deadline_s, self.log_dir)
        fault = Injected(label, undo, args, guardian)
        try:
            inject()
            self.progress(f"chaos: {label}")
            yield fault
        finally:
            lasted = fault.undo()
            self.progress(f"chaos: {label} undone after {lasted:.1f}s")

    # Cassandra nodes ----------------------------------------------------------------------------------
    def freeze(self, node: str, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """SIGSTOP: the process is alive, its sockets open, nothing answers (a GC pause, a hung VM)."""
        return self._fault(f"{node} frozen", "thaw_node", {"node": node}, lambda: self._lab().freeze(node), deadline_s)

    def partition(self, node: str, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """Gossip and native transport off: peers see it down, clients cannot reach it."""
        return self._fault(
            f"{node} partitioned", "heal_node", {"node": node}, lambda: self._lab().partition(node), deadline_s
        )

    def kill(self, node: str, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """SIGKILL; undone by starting it again."""
        return self._fault(f"{node} killed", "start_node", {"node": node}, lambda: self._lab().kill(node), deadline_s)

    def split(self, a: str, b: str, one_way: bool = False, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """Node-to-node traffic between two groups (datacenter or node names) dropped; one way: only A to B."""
        arrow = "->" if one_way else "<->"
        return self._fault(
            f"split {a} {arrow} {b}", "unsplit", {}, lambda: self._lab().split(a, b, one_way=one_way), deadline_s
        )

    @contextmanager
    def flap(
        self, node: str, down_s: float = 3.0, up_s: float = 3.0, deadline_s: float = DEFAULT_DEADLINE_S
    ) -> Iterator[Injected]:
        """Frozen and thawed in turn until the block ends (left thawed)."""
        stop = threading.Event()
        lab = self._lab()

        def cycle() -> None:
            while not stop.is_set():
                lab.freeze(node)
                stop.wait(down_s)
                lab.thaw(node, wait=False)
                stop.wait(up_s)

        flapper = threading.Thread(target=cycle, name=f"flap-{node}", daemon=True)
        with self._fault(f"{node} flapping ({down_s:g}s down, {up_s:g}s up)", "thaw_node", {"node": node},
                         flapper.start, deadline_s) as fault:  # fmt: skip
            try:
                yield fault
            finally:
                stop.set()
                flapper.join(timeout=down_s + up_s + 30)

    # dependencies -------------------------------------------------------------------------------------
    def postgres_down(self, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """The project's PostgreSQL stopped (and with it Prefect's API, which keeps its database there)."""
        from cassandra_recovery.lab.postgres import stop_postgres

        port = self.settings.postgres.port
        return self._fault(
            f"PostgreSQL on {port} down", "start_postgres", {}, lambda: stop_postgres(port=port), deadline_s
        )

    def prefect_down(self, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        from cassandra_recovery.lab.prefect_server import stop_prefect_server

        return self._fault(
            "Prefect server down", "start_prefect", {}, lambda: stop_prefect_server(self.settings), deadline_s
        )

    def unreachable(self, host: str, port: int, how: str = "reject", deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """TCP to host:port refused (`reject`) or silently dropped (`drop`: clients time out), for Slack or any
        other dependency; an nftables table of its own."""
        if how not in ("reject", "drop"):
            raise ValueError(f"how must be reject or drop, got {how!r}")
        if not 0 < port < 65536:
            raise ValueError(f"invalid port {port}")
        import ipaddress

        address = str(ipaddress.IPv4Address(host))
        table = f"{CHAOS_TABLE_PREFIX}{port}"
        verdict = "reject with tcp reset" if how == "reject" else "drop"
        script = (
            f"table inet {table}\ndelete table inet {table}\n"
            f"table inet {table} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n"
            f"    ip daddr {address} tcp dport {port} counter {verdict}\n  }}\n}}\n"
        )

        def inject() -> None:
            from cassandra_recovery.lab import split

            proc = split._run([split._nft(), "-f", "-"], script)
            if proc.returncode != 0:
                raise LabError(f"nft refused the rule for {address}:{port}: {proc.stderr.strip()}")

        return self._fault(f"{address}:{port} {how}ed", "delete_nft_table", {"table": table}, inject, deadline_s)

    # processes ------------------------------------------------------------------------------------------
    def freeze_processes(self, pids: Sequence[int], label: str, deadline_s: float = DEFAULT_DEADLINE_S) -> Any:
        """SIGSTOP to each process (a host frozen: `serve` and its flow runs); SIGCONT on the way out."""
        pids = list(pids)

        def inject() -> None:
            _signal(pids, signal.SIGSTOP)

        return self._fault(f"{label} frozen ({len(pids)} processes)", "continue_processes", {"pids": pids}, inject,
                           deadline_s)  # fmt: skip

    def kill_processes(self, pids: Sequence[int], label: str) -> None:
        """SIGKILL to each process (a host dead): nothing to undo."""
        _signal(list(pids), signal.SIGKILL)
        self.progress(f"chaos: {label} killed ({len(pids)} processes)")


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
