"""Real Prometheus + Alertmanager with the shipped rules: a gauge we flip fires, resolves, and the dead-man fires."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cassandra_recovery.errors import ToolMissingError
from cassandra_recovery.lab import monitoring
from cassandra_recovery.paging import PAGE_ALERT, post_page_alert
from tests import faults as F

pytestmark = pytest.mark.area("monitoring")

CLUSTER = "contract-mon"
TOKEN = "s3cret-token-for-the-contract-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fake:
    """A detector metrics endpoint we control and a receiver stand-in that records POSTs."""

    confirmed: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def exposition(self) -> str:
        c = f'cluster="{CLUSTER}",node="node2"'
        return (
            "# TYPE cr_node_state gauge\n"
            f'cr_node_state{{{c},state="confirmed"}} {self.confirmed}\n'
            f'cr_node_state{{{c},state="healthy"}} {1 - self.confirmed}\n'
            "# TYPE cr_detector_last_tick_timestamp_seconds gauge\n"
            f'cr_detector_last_tick_timestamp_seconds{{cluster="{CLUSTER}"}} {time.time()}\n'
        )

    def received(self, alertname: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                p
                for p in self.posts
                if p["body"]["status"] == status
                and any(a["labels"].get("alertname") == alertname for a in p["body"]["alerts"])
            ]


def _serve(port: int, fake: Fake, receiver: bool) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"cr_receiver_spooled_pending 0\n" if receiver else fake.exposition().encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with fake.lock:
                fake.posts.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(raw)}
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _wait_for(what: str, check: Callable[[], list[dict[str, Any]]], timeout_s: float, fake: Fake) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found[0]
        time.sleep(0.2)
    with fake.lock:
        seen = [(p["body"]["status"], [a["labels"].get("alertname") for a in p["body"]["alerts"]]) for p in fake.posts]
    raise AssertionError(f"no {what} within {timeout_s}s; received: {seen}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[monitoring.MonitoringConfig, Fake, ThreadingHTTPServer]]:
    try:
        monitoring.find_binary("prometheus")
        monitoring.find_binary("alertmanager")
    except ToolMissingError as e:
        pytest.skip(str(e))
    fake = Fake()
    target_port, sink_port = _free_port(), _free_port()
    target = _serve(target_port, fake, receiver=False)
    sink = _serve(sink_port, fake, receiver=True)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    cfg = monitoring.MonitoringConfig(
        base_dir=tmp_path / "monitoring",
        cluster=CLUSTER,
        receiver_url=f"http://127.0.0.1:{sink_port}/alerts/alertmanager",
        token_file=token_file,
        detector_target=f"127.0.0.1:{target_port}",
        receiver_target=f"127.0.0.1:{sink_port}",
        prometheus_port=_free_port(),
        alertmanager_port=_free_port(),
    )
    try:
        monitoring.up(cfg)
        yield cfg, fake, target
    finally:
        monitoring.down(cfg)
        target.shutdown()
        sink.shutdown()
        sink.server_close()
    assert not any(s.pid for s in monitoring.status(cfg))


@pytest.mark.fault(F.DETECTOR_DOWN)
def test_alerts_fire_resolve_and_dead_man_fires(
    stack: tuple[monitoring.MonitoringConfig, Fake, ThreadingHTTPServer],
) -> None:
    cfg, fake, target = stack
    assert all(s.ready and s.pid for s in monitoring.status(cfg))
    # The tool's own page about an escalated incident: taken by the real Alertmanager, routed to people, never
    # back into the receiver (checked at the end, after the other alerts went through the same route tree).
    am = f"http://127.0.0.1:{cfg.alertmanager_port}"
    assert post_page_alert(am, 600, CLUSTER, "inc-page-test", "incident inc-page-test needs a person") == "posted"

    fake.confirmed = 1
    firing = _wait_for(
        "firing CassandraNodeConfirmedDown", lambda: fake.received("CassandraNodeConfirmedDown", "firing"), 30, fake
    )
    body = firing["body"]
    assert firing["path"] == "/alerts/alertmanager"
    assert firing["auth"] == f"Bearer {TOKEN}"
    assert body["version"] == "4"
    assert body["groupLabels"] == {"alertname": "CassandraNodeConfirmedDown", "cluster": CLUSTER}
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "CassandraNodeConfirmedDown",
        "cluster": CLUSTER,
        "node": "node2",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == f"Cassandra node node2 of {CLUSTER} confirmed down"

    fake.confirmed = 0
    resolved = _wait_for(
        "resolved CassandraNodeConfirmedDown", lambda: fake.received("CassandraNodeConfirmedDown", "resolved"), 30, fake
    )
    assert resolved["auth"] == f"Bearer {TOKEN}"
    assert resolved["body"]["alerts"][0]["status"] == "resolved"
    assert not fake.received("CassandraRecoveryDetectorAbsent", "firing")  # the heartbeat was there all along

    target.shutdown()
    target.server_close()  # the port now refuses: up == 0, stale markers, absent() is true
    dead = _wait_for(
        "firing CassandraRecoveryDetectorAbsent",
        lambda: fake.received("CassandraRecoveryDetectorAbsent", "firing"),
        40,
        fake,
    )
    assert dead["auth"] == f"Bearer {TOKEN}"
    labels = dead["body"]["alerts"][0]["labels"]
    # absent() has no cluster of its own: it comes from the external label set by render_prometheus
    assert labels == {
        "alertname": "CassandraRecoveryDetectorAbsent",
        "cluster": CLUSTER,
        "job": monitoring.DETECTOR_JOB,
        "severity": "critical",
    }
    pages = httpx.get(f"{am}/api/v2/alerts", params={"filter": f'alertname="{PAGE_ALERT}"'}, timeout=5).json()
    assert [(p["labels"]["incident"], p["receivers"][0]["name"]) for p in pages] == [("inc-page-test", "people")]
    assert not fake.received(PAGE_ALERT, "firing")
