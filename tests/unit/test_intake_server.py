"""The receiver under real uvicorn: a request whose headers never finish is cut off (slowloris), and health and
metrics have a listener of their own that a full ingest listener does not starve."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.ops import create_ops_app
from cassandra_recovery.intake.server import OpsListener, uvicorn_options
from tests.unit.test_intake_app import Harness, make

pytestmark = pytest.mark.area("intake")


def _serve(h: Harness, config: ReceiverConfig) -> tuple[uvicorn.Server, threading.Thread, int]:
    server = uvicorn.Server(uvicorn.Config(h.client.app, **uvicorn_options(config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # readiness, not timing: poll until the socket is bound
        time.sleep(0.01)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


@pytest.fixture
def served() -> Iterator[tuple[Harness, ReceiverConfig, uvicorn.Server, int]]:
    h = make()
    # Two connections at most (uvicorn counts the asking one), and a header deadline short enough for a test.
    config = ReceiverConfig(host="127.0.0.1", port=0, header_timeout_s=0.2, max_connections=2, ops_port=0)
    server, thread, port = _serve(h, config)
    yield h, config, server, port
    server.should_exit = True
    thread.join(10)
    h.intake.close()


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return s.recv(1024)


def test_headers_that_never_finish_get_the_connection_closed(
    served: tuple[Harness, ReceiverConfig, uvicorn.Server, int],
) -> None:
    *_, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\nHost: x\r\n")  # ...and nothing more
        assert s.recv(1024) == b""  # closed by the server (a socket timeout here means it never was)
    assert _get(port, "/healthz").startswith(b"HTTP/1.1 200")  # a whole request is still answered


def test_health_and_metrics_answer_on_their_own_listener_when_ingest_is_full(
    served: tuple[Harness, ReceiverConfig, uvicorn.Server, int],
) -> None:
    h, config, server, port = served
    ops = OpsListener(create_ops_app(h.intake.metrics), config)
    ops_port = ops.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as held:
            held.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")  # no body
            while not server.server_state.connections:  # readiness: the held connection has been accepted
                time.sleep(0.01)
            assert _get(port, "/healthz").startswith(b"HTTP/1.1 503")  # the ingest listener is full
            assert _get(ops_port, "/healthz").startswith(b"HTTP/1.1 200")
            assert b"200" in _get(ops_port, "/metrics").split(b"\r\n", 1)[0]
    finally:
        ops.stop()
