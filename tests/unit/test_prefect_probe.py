"""Issue 20: the lab sends the Prefect credential only to the server it started, and signals only that server.
Before, `/api/health` (answered without authentication) let any process on the port pass for the project's server
and receive the basic-auth string, and `lab down` signalled whatever process group the pid file named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cassandra_recovery.errors import LabError, ParseError
from cassandra_recovery.lab import prefect_server as ps
from cassandra_recovery.lab.listeners import (
    listening_inodes,
    parse_proc_net_tcp,
    pids_holding,
    proc_stat,
)
from cassandra_recovery.settings import LabConfig, PrefectConfig, Settings

pytestmark = pytest.mark.area("lab")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"


def test_listening_sockets_are_read_from_captured_proc_net_tcp_and_tcp6() -> None:
    v4 = parse_proc_net_tcp((FIXTURES / "net_tcp.txt").read_text())
    assert [(s.address, s.port) for s in v4] == [("0.0.0.0", 2024), ("127.0.0.1", 47311)]  # established ones skipped
    v6 = parse_proc_net_tcp((FIXTURES / "net_tcp6.txt").read_text())
    assert [(s.address, s.port) for s in v6] == [("::1", 47312)]
    assert all(s.inode > 0 for s in v4 + v6)
    with pytest.raises(ParseError):
        parse_proc_net_tcp("garbage\n")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[int]:
    """Something else listening on 127.0.0.1 at the Prefect port, answering 200 to anything."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, port: int) -> Settings:
    return Settings(
        lab=LabConfig(base_dir=tmp_path / "lab"),
        prefect=PrefectConfig(port=port, auth_string="admin:do-not-leak"),  # type: ignore[arg-type]
    )


def test_an_impostor_on_the_port_never_gets_the_credential_and_is_named(tmp_path: Path, impostor: int) -> None:
    settings = _settings(tmp_path, impostor)
    assert pids_holding(listening_inodes("127.0.0.1", impostor)) == {os.getpid()}
    assert not ps.healthy(settings) and not ps.ready(settings)
    with pytest.raises(LabError, match=f"port {impostor} is taken by pid {os.getpid()} .*not the Prefect server"):
        ps.ensure_prefect_server(settings)
    assert _Recorder.seen == []  # not one request, so no credential


def test_lab_down_signals_no_process_the_pid_file_names_unless_it_is_the_server_it_started(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 4299)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        stat = proc_stat(bystander.pid)
        assert stat is not None and stat.session == bystander.pid
        home = ps.prefect_home(settings)
        home.mkdir(parents=True)
        (home / "server.pid").write_text(f"{bystander.pid} {stat.start_ticks}\n")  # a pid reused by another program
        said: list[str] = []
        ps.stop_prefect_server(settings, said.append)
        assert bystander.poll() is None and "nothing stopped" in said[0]  # still running: not signalled
        assert not (home / "server.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_free_port_has_no_listener_and_a_remote_server_is_not_inspected(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening
    settings = _settings(tmp_path, port)
    assert ps.foreign_listener(settings) is None and not ps.healthy(settings, timeout_s=0.5)
    remote = settings.model_copy(update={"prefect": PrefectConfig(host="10.1.2.3", port=port)})
    assert ps.foreign_listener(remote) is None
