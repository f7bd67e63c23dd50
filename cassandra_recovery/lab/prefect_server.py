"""The project's persistent Prefect server (`prefect server start`) on the project's PostgreSQL."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from cassandra_recovery.clients.child_env import child_env
from cassandra_recovery.errors import LabError
from cassandra_recovery.lab import procs
from cassandra_recovery.lab.listeners import ProcStat, listening_inodes, pids_holding, proc_stat
from cassandra_recovery.settings import Settings

Progress = Callable[[str], None]
START_TIMEOUT_S = 180.0


def prefect_home(settings: Settings) -> Path:
    return settings.lab.base_dir / "prefect"


def _db_url(settings: Settings) -> str:
    from cassandra_recovery.lab.postgres import lab_password

    pg = settings.postgres
    pw = pg.password.get_secret_value() if pg.password else lab_password(settings.lab)
    return f"postgresql+asyncpg://{quote(pg.user)}:{quote(pw, safe='')}@{pg.host}:{pg.port}/{settings.prefect.database}"


def api_auth(settings: Settings) -> str:
    """The server's basic-auth string ("user:password"): configured, or generated once into a 0600 file in the
    Prefect home. Whoever reaches the UI could otherwise resume a suspended run and approve a replacement."""
    if settings.prefect.auth_string:
        return settings.prefect.auth_string.get_secret_value()
    path = prefect_home(settings) / "api-auth"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write("admin:" + secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def client_env(settings: Settings) -> dict[str, str]:
    """Environment for any Prefect client of this server (CLI, serve, flows, tests)."""
    env = {
        "PREFECT_API_URL": settings.prefect.api_url,
        "PREFECT_HOME": str(prefect_home(settings)),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        # JSON, not pickle: results persisted by one version of the tool load in the next (open incidents and
        # suspended approvals outlive upgrades); every flow and task also sets it explicitly.
        "PREFECT_RESULTS_DEFAULT_SERIALIZER": "json",
        "PREFECT_LOCAL_STORAGE_PATH": str(prefect_home(settings) / "storage"),
    }
    env["PREFECT_API_AUTH_STRING"] = api_auth(settings)
    return env


def ready(settings: Settings, timeout_s: float = 2.0) -> bool:
    """The server answers and reaches its database (`/api/ready`; `/api/health` answers without it)."""
    return healthy(settings, timeout_s, path="/ready")


def healthy(settings: Settings, timeout_s: float = 2.0, path: str = "/health") -> bool:
    """The project's server answers, authenticated. Its credential goes only to a port held by the server the lab
    started (verified by pid, start time, command line and session): Prefect answers `/api/health` without
    authentication, so any process on the port would otherwise pass for it and receive the credential."""
    if _loopback(settings) is not None and (foreign_listener(settings) is not None or our_server(settings) is None):
        return False
    token = base64.b64encode(api_auth(settings).encode()).decode()
    url = settings.prefect.api_url + path  # http(s) from settings, never user input
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _pidfile(settings: Settings) -> Path:
    return prefect_home(settings) / "server.pid"


def our_server(settings: Settings) -> ProcStat | None:
    """The server process the lab started, when the pid in its file still names it: same start time (pids are
    reused) and `prefect server start` on the configured port; None otherwise."""
    try:
        recorded = [int(v) for v in _pidfile(settings).read_text().split()]
    except (OSError, ValueError):
        return None
    if not recorded:
        return None
    stat = proc_stat(recorded[0])
    argv = procs.cmdline(recorded[0])
    port = str(settings.prefect.port)
    is_server = any(a.endswith("prefect") for a in argv[:2]) and "server" in argv and "start" in argv
    if stat is None or not is_server or port not in argv:
        return None
    if len(recorded) == 1:  # written by an earlier version (pid only): the command line decides, once
        _pidfile(settings).write_text(f"{stat.pid} {stat.start_ticks}\n")
    elif stat.start_ticks != recorded[1]:
        return None
    return stat


def _loopback(settings: Settings) -> str | None:
    """The server's address when it is on this host's loopback (the lab's), else None."""
    host = "127.0.0.1" if settings.prefect.host == "localhost" else settings.prefect.host
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None  # a host name: remote


def foreign_listener(settings: Settings) -> str | None:
    """A process listening on the server's port that is not the lab's server (nor one of its children): who."""
    host = _loopback(settings)
    if host is None:
        return None  # a remote server: not this host's to inspect (reach it over TLS)
    ours = our_server(settings)
    pids = pids_holding(listening_inodes(host, settings.prefect.port))
    strangers = sorted(p for p in pids if ours is None or (s := proc_stat(p)) is None or s.session != ours.pid)
    if not strangers:
        return None
    return ", ".join(f"pid {p} ({' '.join(procs.cmdline(p))[:200]})" for p in strangers)


def server_env(settings: Settings) -> dict[str, str]:
    """The server's own settings only: Prefect's (from this environment and the lab's), its database URL and its
    API's auth; none of this tool's other secrets."""
    env = child_env(prefixes=["PREFECT_"], extra=client_env(settings))
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = _db_url(settings)
    env["PREFECT_SERVER_API_AUTH_STRING"] = api_auth(settings)
    env.pop("PREFECT_API_URL", None)  # the server itself must not talk to another API
    return env


def ensure_prefect_server(settings: Settings, progress: Progress | None = None) -> None:
    """Start the server in the background unless one already answers; wait until /api/health is OK."""
    say = progress or (lambda m: None)
    if healthy(settings):
        say(f"prefect: server already up at {settings.prefect.api_url}")
        return
    if (who := foreign_listener(settings)) is not None:
        raise LabError(
            f"port {settings.prefect.port} is taken by {who}, which is not the Prefect server the lab started; the"
            " credential is not sent there: stop it, or set prefect.port (CASSANDRA_RECOVERY_PREFECT__PORT)"
        )
    home = prefect_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    env = server_env(settings)
    prefect = str(Path(sys.executable).with_name("prefect"))
    argv = [prefect, "server", "start", "--host", settings.prefect.host, "--port", str(settings.prefect.port)]
    log_path = home / "server.log"
    say(f"prefect: starting server on {settings.prefect.api_url} (database {settings.prefect.database})")
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=home,
        )
    stat = proc_stat(proc.pid)
    _pidfile(settings).write_text(f"{proc.pid} {stat.start_ticks if stat else 0}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(settings):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise LabError(f"prefect server did not become healthy (exit {proc.poll()}):\n{tail}")
        time.sleep(0.5)
    say("prefect: server healthy; UI at " + settings.prefect.api_url.removesuffix("/api"))


def stop_prefect_server(settings: Settings, progress: Progress | None = None) -> None:
    say = progress or (lambda m: None)
    pidfile = _pidfile(settings)
    if not pidfile.exists():
        say("prefect: no server started by the lab")
        return
    ours = our_server(settings)
    if ours is None:  # never signal a pid the file names unless it is still the server the lab started
        say(f"prefect: {pidfile} names no server the lab started (it exited, or the pid was reused); nothing stopped")
        pidfile.unlink(missing_ok=True)
        return
    pid = ours.pid
    try:
        os.killpg(pid, signal.SIGTERM)  # the server runs uvicorn workers in its own session
    except ProcessLookupError:
        pass
    if procs.wait_gone([pid], 30):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    say("prefect: server stopped")
