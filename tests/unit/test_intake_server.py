"""The receiver under real uvicorn: a request whose headers never finish is cut off (slowloris)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.server import uvicorn_options
from tests.unit.test_intake_app import make

pytestmark = pytest.mark.area("intake")


@pytest.fixture
def port() -> Iterator[int]:
    h = make()
    options = uvicorn_options(ReceiverConfig(host="127.0.0.1", port=0, header_timeout_s=0.2, max_connections=8))
    server = uvicorn.Server(uvicorn.Config(h.client.app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # readiness, not timing: the loop polls until the socket is bound
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)
    h.intake.close()


def test_headers_that_never_finish_get_the_connection_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\nHost: x\r\n")  # ...and nothing more
        assert s.recv(1024) == b""  # closed by the server (a socket timeout here means it never was)


def test_a_whole_request_is_still_answered(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
