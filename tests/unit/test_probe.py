"""The probe against real sockets: a silent listener (like a frozen JVM) and a closed port."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from cassandra_recovery.clients.probe import probe_node
from tests import faults as F

pytestmark = pytest.mark.area("detection")


def _listener(reply: bytes | None) -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(9)
        if reply is not None:
            conn.sendall(reply)
        threading.Event().wait(1.0)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


@pytest.mark.fault(F.NODE_FROZEN)
def test_silent_node_times_out() -> None:
    srv, port = _listener(None)
    res = probe_node("127.0.0.1", port, timeout_s=0.2)
    srv.close()
    assert not res.ok and "timed out" in (res.error or "")


def test_supported_reply_is_healthy_with_latency() -> None:
    srv, port = _listener(struct.pack(">BBhBI", 0x84, 0, 1, 0x06, 0))
    res = probe_node("127.0.0.1", port, timeout_s=1.0)
    srv.close()
    assert res.ok and res.latency_ms is not None and res.latency_ms >= 0


def test_error_reply_is_not_healthy() -> None:
    srv, port = _listener(struct.pack(">BBhBI", 0x84, 0, 1, 0x00, 0))
    res = probe_node("127.0.0.1", port, timeout_s=1.0)
    srv.close()
    assert not res.ok and "opcode 0x00" in (res.error or "")


@pytest.mark.fault(F.NODE_PARTITIONED, F.NODE_KILLED)
def test_closed_port_is_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = probe_node("127.0.0.1", port, timeout_s=0.5)
    assert not res.ok and "refused" in (res.error or "").lower()
