"""The whole pipeline as background processes on this machine: the served deployments, the detector, the alert
receiver, and Prometheus + Alertmanager pointed at it. Used by the demo and by the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cassandra_recovery.errors import LabError
from cassandra_recovery.lab import monitoring

Progress = Callable[[str], None]
ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback URLs built here
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Stack:
    base_dir: Path  # logs and the monitoring's data
    env: dict[str, str]  # the environment of every process (Prefect client settings, domain, Slack, ...)
    receiver_port: int = 9095  # alerts
    receiver_ops_port: int = monitoring.RECEIVER_OPS_PORT  # /healthz and /metrics: what Prometheus scrapes
    detector_port: int = 9464
    repeat_interval: str = "4h"  # Alertmanager re-sends a firing group this often (tests: seconds)
    progress: Progress = lambda m: None  # noqa: E731
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.base_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "cassandra_recovery.cli", *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        proc = self.procs[name]
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.base_dir / f"{name}.log").read_text(errors="replace").splitlines()[-20:]
                raise LabError(f"{name} did not become ready (exit {proc.poll()}):\n" + "\n".join(tail))
            time.sleep(0.5)
        self.progress(f"{name} ready (log {self.base_dir / (name + '.log')})")

    @property
    def monitoring(self) -> monitoring.MonitoringConfig:
        return monitoring.MonitoringConfig(
            self.base_dir / "monitoring",
            receiver_url=f"http://127.0.0.1:{self.receiver_port}/alerts/alertmanager",
            detector_target=f"127.0.0.1:{self.detector_port}",
            receiver_target=f"127.0.0.1:{self.receiver_ops_port}",
            repeat_interval=self.repeat_interval,
        )

    def receiver_argv(self, token_file: str) -> list[str]:
        """The receiver's arguments: alerts on `receiver_port`, health and metrics on `receiver_ops_port`."""
        ports = ["--port", str(self.receiver_port), "--ops-port", str(self.receiver_ops_port)]
        return ["receiver", *ports, "--token-file", token_file]

    def start(self, deployment_ready: Callable[[], bool], cluster: str = "lab") -> None:
        """serve, receiver, detector (recording incidents; alerts start the runs), and Prometheus + Alertmanager.

        All start at once (each spends seconds importing and connecting): nothing is lost meanwhile, because the
        receiver spools what it cannot deliver yet and Alertmanager re-sends to a receiver not up yet."""
        token = monitoring.ensure_token_file(self.monitoring)
        self._spawn("serve", "serve")
        self._spawn("receiver", *self.receiver_argv(str(token)))
        self._spawn(
            "detector", "detector", "--cluster", cluster, "--metrics-port", str(self.detector_port), "--no-deployment"
        )
        monitoring.up(self.monitoring, self.progress)
        self._wait("receiver", lambda: _answers(f"http://127.0.0.1:{self.receiver_ops_port}/healthz"), 60)
        self._wait("detector", lambda: _answers(f"http://127.0.0.1:{self.detector_port}/metrics"), 60)
        self._wait("serve", deployment_ready, 120)

    def stop(self) -> None:
        monitoring.down(self.monitoring, self.progress)
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            self.progress(f"{name} stopped")
        self.procs.clear()
