"""Local Prometheus + Alertmanager for the project's own alert rules: config rendering and child processes."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cassandra_recovery.clients.child_env import child_env
from cassandra_recovery.errors import ConfigError, LabError, ToolMissingError
from cassandra_recovery.lab import procs
from cassandra_recovery.paging import PAGE_SOURCE

Progress = Callable[[str], None]

RULES_FILE = Path(__file__).resolve().parents[2] / "deployments" / "prometheus" / "rules.yml"
DETECTOR_JOB = "cassandra-recovery-detector"
RECEIVER_JOB = "cassandra-recovery-receiver"
PROMETHEUS_PORT = 9490  # not 9090/9093: never clash with a standard Prometheus or Alertmanager on the host
ALERTMANAGER_PORT = 9493
# The receiver's health-and-metrics listener (`receiver --ops-port`): scraped there, not on the alert port, whose
# connection limit a flood of alerts fills (intake/server.py).
RECEIVER_OPS_PORT = 9096
READY_TIMEOUT_S = 30.0
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class MonitoringConfig:
    """Where our own Prometheus and Alertmanager run and what they watch; nothing here touches /etc."""

    base_dir: Path  # e.g. <lab base>/monitoring: configs, data dirs, logs, pid files
    cluster: str = "lab"  # external label: the `cluster` of alerts whose series carry none (absent(), receiver)
    receiver_url: str = "http://127.0.0.1:9095/alerts/alertmanager"
    token_file: Path | None = None  # bearer token for the receiver; None: <base_dir>/receiver.token, generated
    detector_target: str = "127.0.0.1:9464"
    receiver_target: str = f"127.0.0.1:{RECEIVER_OPS_PORT}"  # the receiver's ops listener, not its alert port
    host: str = "127.0.0.1"
    prometheus_port: int = PROMETHEUS_PORT
    alertmanager_port: int = ALERTMANAGER_PORT
    group_interval: str = "2s"
    repeat_interval: str = "4h"
    rules_file: Path = field(default=RULES_FILE)

    @property
    def token_path(self) -> Path:
        return self.token_file or self.base_dir / "receiver.token"


def _seconds(duration: str) -> float:
    if not _DURATION.match(duration):
        raise ConfigError(f"bad duration {duration!r}: use Prometheus syntax such as 2s, 5m, 4h")
    return sum(int(n) * _SECONDS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration))


def render_prometheus(cfg: MonitoringConfig) -> str:
    """prometheus.yml: scrape and evaluate every second, alert to our Alertmanager."""
    doc: dict[str, Any] = {
        "global": {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
            "external_labels": {"cluster": cfg.cluster},
        },
        "rule_files": [str(cfg.rules_file.resolve())],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{cfg.host}:{cfg.alertmanager_port}"]}]}]},
        "scrape_configs": [
            {"job_name": DETECTOR_JOB, "static_configs": [{"targets": [cfg.detector_target]}]},
            {"job_name": RECEIVER_JOB, "static_configs": [{"targets": [cfg.receiver_target]}]},
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def render_alertmanager(cfg: MonitoringConfig) -> str:
    """alertmanager.yml: one webhook to the receiver; the token is read from a file, never written here."""
    if not 1 <= _seconds(cfg.group_interval) <= 5:
        raise ConfigError(f"group_interval {cfg.group_interval!r} must lie between 1s and 5s")
    if _seconds(cfg.repeat_interval) < _seconds(cfg.group_interval):
        raise ConfigError(f"repeat_interval {cfg.repeat_interval!r} is shorter than group_interval")
    if not cfg.receiver_url.startswith(("http://", "https://")):
        raise ConfigError(f"receiver URL {cfg.receiver_url!r} must be http:// or https://")
    doc: dict[str, Any] = {
        "route": {
            "receiver": "cassandra-recovery",
            "group_by": ["alertname", "cluster"],
            "group_wait": "1s",
            "group_interval": cfg.group_interval,
            "repeat_interval": cfg.repeat_interval,
            # The tool's own pages (paging.py) go to people, never back into the receiver as a new trigger. The lab
            # has no pager: they wait in Alertmanager's API and UI (a real install routes them to its on-call).
            "routes": [{"matchers": [f'source="{PAGE_SOURCE}"'], "receiver": "people"}],
        },
        "receivers": [
            {
                "name": "cassandra-recovery",
                "webhook_configs": [
                    {
                        "url": cfg.receiver_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(cfg.token_path.resolve())}
                        },
                    }
                ],
            },
            {"name": "people"},
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def prometheus_argv(binary: str, cfg: MonitoringConfig) -> list[str]:
    d = cfg.base_dir
    return [
        binary,
        f"--config.file={d / 'prometheus.yml'}",
        f"--web.listen-address={cfg.host}:{cfg.prometheus_port}",
        f"--storage.tsdb.path={d / 'prometheus-data'}",
        "--storage.tsdb.retention.time=2d",
    ]


def alertmanager_argv(binary: str, cfg: MonitoringConfig) -> list[str]:
    d = cfg.base_dir
    return [
        binary,
        f"--config.file={d / 'alertmanager.yml'}",
        f"--web.listen-address={cfg.host}:{cfg.alertmanager_port}",
        f"--storage.path={d / 'alertmanager-data'}",
        "--cluster.listen-address=",  # empty: no gossip port, a single instance
    ]


# ---- process I/O below ----


def find_binary(name: str) -> str:
    """The program's path; Debian names Alertmanager `prometheus-alertmanager`."""
    candidates = ["prometheus-alertmanager", "alertmanager"] if name == "alertmanager" else [name]
    for c in candidates:
        path = shutil.which(c)
        if path:
            return path
    package = "prometheus-alertmanager" if name == "alertmanager" else "prometheus"
    raise ToolMissingError(
        f"{name} is not installed (none of {', '.join(candidates)} on PATH); "
        f"run bin/install or apt-get install {package}"
    )


def ensure_token_file(cfg: MonitoringConfig) -> Path:
    """The token file, which must be readable by its owner only; the default one is generated once."""
    path = cfg.token_path
    if cfg.token_file is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"token file {path} does not exist") from None
    if st.st_mode & 0o077:
        raise ConfigError(f"token file {path} has mode {stat.filemode(st.st_mode)}; it must be 0600 (chmod 600 it)")
    if not path.read_text().strip():
        raise ConfigError(f"token file {path} is empty")
    return path


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None  # our recorded process, when it is still alive
    ready: bool
    url: str


def _url(cfg: MonitoringConfig, name: str) -> str:
    port = cfg.prometheus_port if name == "prometheus" else cfg.alertmanager_port
    return f"http://{cfg.host}:{port}"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=1.0) as r:  # noqa: S310 (our own http URL)
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _our_pid(cfg: MonitoringConfig, name: str) -> int | None:
    """The pid from the pid file if that process still runs with our config file (pids get reused)."""
    try:
        pid = int((cfg.base_dir / f"{name}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError):
        return None
    want = f"--config.file={cfg.base_dir / (name + '.yml')}".encode()
    return pid if want in cmdline and state != "Z" else None


def status(cfg: MonitoringConfig) -> list[ServiceStatus]:
    return [
        ServiceStatus(n, _our_pid(cfg, n), _ready(_url(cfg, n)), _url(cfg, n)) for n in ("prometheus", "alertmanager")
    ]


def up(cfg: MonitoringConfig, progress: Progress | None = None) -> list[ServiceStatus]:
    """Write both configs and start whatever is not running (reload what is); wait for /-/ready. Idempotent."""
    say = progress or (lambda m: None)
    binaries = {"prometheus": find_binary("prometheus"), "alertmanager": find_binary("alertmanager")}
    cfg.base_dir.mkdir(parents=True, exist_ok=True)
    ensure_token_file(cfg)
    (cfg.base_dir / "prometheus.yml").write_text(render_prometheus(cfg))
    (cfg.base_dir / "alertmanager.yml").write_text(render_alertmanager(cfg))
    for name in ("alertmanager", "prometheus"):  # Alertmanager first: Prometheus' first alerts find it
        pid = _our_pid(cfg, name)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # both reload their config (and Prometheus its rules) on SIGHUP
            say(f"monitoring: {name} already running (pid {pid}); configuration reloaded")
        else:
            _start(cfg, name, binaries[name], say)
    return status(cfg)


def _start(cfg: MonitoringConfig, name: str, binary: str, say: Progress) -> None:
    argv = (prometheus_argv if name == "prometheus" else alertmanager_argv)(binary, cfg)
    log_path = cfg.base_dir / f"{name}.log"
    url = _url(cfg, name)
    if _ready(url):
        raise LabError(f"{url} already answers but is not our {name} (pid file {cfg.base_dir / name}.pid)")
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cfg.base_dir,
            start_new_session=True, env=child_env(extra={"LANG": "C"}),
        )  # fmt: skip
    (cfg.base_dir / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            if proc.poll() is None:
                proc.kill()
            raise LabError(f"{name} did not become ready at {url}/-/ready (exit {proc.poll()}); {log_path}:\n{tail}")
        time.sleep(0.1)
    say(f"monitoring: {name} ready at {url} (pid {proc.pid})")


def down(cfg: MonitoringConfig, progress: Progress | None = None, timeout_s: float = 10.0) -> None:
    """SIGTERM both, SIGKILL whatever is left after timeout_s; data dirs stay. Idempotent."""
    say = progress or (lambda m: None)
    for name in ("prometheus", "alertmanager"):
        pid = _our_pid(cfg, name)
        if pid is not None:
            procs.signal_pid(pid, signal.SIGTERM)
            if procs.wait_gone([pid], timeout_s):
                procs.signal_pid(pid, signal.SIGKILL)
                procs.wait_gone([pid], 5.0)
                say(f"monitoring: {name} (pid {pid}) killed after {timeout_s:g}s")
            else:
                say(f"monitoring: {name} (pid {pid}) stopped")
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it was our child (tests)
            except ChildProcessError:
                pass
        (cfg.base_dir / f"{name}.pid").unlink(missing_ok=True)


def cli(action: str, cfg: MonitoringConfig, progress: Progress) -> int:
    """`cassandra-recovery lab monitoring up|down|status`; exit 1 when status finds something not ready."""
    if action == "down":
        down(cfg, progress)
        return 0
    rows = up(cfg, progress) if action == "up" else status(cfg)
    for r in rows:
        state = "ready" if r.ready else ("starting" if r.pid else "stopped")
        print(f"{r.name:<13} {state:<8} pid {r.pid or '-':<8} {r.url}")
    print(f"alerts go to {cfg.receiver_url} with the bearer token in {cfg.token_path}")
    return 0 if all(r.ready and r.pid for r in rows) else 1
