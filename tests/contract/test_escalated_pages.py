"""An escalated incident is not a black hole (real PostgreSQL, the strict Slack stub, an HTTP sink in Alertmanager's
place): a new outage joining it pages a person once per outage, in Slack and as an alert; a re-sent trigger does
not page again; joining an incident the automation still runs pages nobody."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from cassandra_recovery.incident_actions import escalate
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.launch import incident_launcher
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.paging import PAGE_ALERT, PAGE_SOURCE
from cassandra_recovery.settings import ClusterConfig, NodeAccess, PagingConfig, Settings
from cassandra_recovery.storage.facade import Storage, open_storage
from tests import faults as F
from tests.fakes.slack_server import FakeSlackServer
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("incident"),
]


class _AlertSink(BaseHTTPRequestHandler):
    posted: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).posted.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def storage() -> Iterator[Storage]:
    ensure_postgres(Settings())
    s = open_storage(migrated(Settings()), max_size=2)
    yield s
    s.close()


@pytest.fixture
def alertmanager() -> Iterator[str]:
    _AlertSink.posted = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlertSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.fault(F.ESCALATED_INCIDENT_RETRIGGERED)
def test_a_new_outage_joining_an_escalated_incident_pages_once_in_slack_and_alertmanager(
    storage: Storage, alertmanager: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    cluster = ClusterConfig(
        id=f"page-test-{uuid.uuid4().hex[:8]}",
        contact_points=["127.0.0.2"],
        local_datacenter="dc1",
        nodes=[NodeAccess(name="node3", address="127.0.0.4")],
        slack_channel="incidents",
    )
    with FakeSlackServer() as slack:
        settings = storage.settings.model_copy(
            update={
                "slack_token": SecretStr(slack.token),
                "slack_base_url": slack.url,
                "paging": PagingConfig(alertmanager_url=alertmanager),
            }
        )
        launcher = incident_launcher(settings, storage, None, "receiver", cluster_of=lambda _: cluster)
        first = {"source": "alert:alertmanager", "kind": "alert", "nodes": ["node3"], "fingerprint": "f1",
                 "starts_at": "2026-12-07T10:00:00+00:00"}  # fmt: skip
        inc, created = launcher.open_or_join(cluster.id, first, "receiver")
        assert created and not slack.messages()  # a new incident has its run; nobody is paged
        launcher.open_or_join(cluster.id, first | {"status": "firing"}, "receiver")  # joined while the run acts
        assert not slack.messages() and not _AlertSink.posted
        escalate(storage.incidents, inc.id, "alice@host", "the automation could not repair it")

        second = first | {"nodes": ["node2"], "fingerprint": "f2", "starts_at": "2026-12-07T11:00:00+00:00"}
        joined, created = launcher.open_or_join(cluster.id, second, "receiver")
        assert not created and joined.id == inc.id and joined.state is S.ESCALATED
        (msg,) = slack.messages()
        assert msg["text"].startswith("<!here> ") and inc.id in msg["text"] and "node2" in msg["text"]
        ((path, alerts),) = _AlertSink.posted
        assert path == "/api/v2/alerts"
        assert alerts[0]["labels"] == {"alertname": PAGE_ALERT, "cluster": cluster.id, "incident": inc.id,
                                       "severity": "page", "source": PAGE_SOURCE}  # fmt: skip
        assert alerts[0]["endsAt"] > alerts[0]["startsAt"]  # it resolves by itself unless paged again

        launcher.open_or_join(cluster.id, second, "detector")  # the same outage offered again: no second page
        assert len(slack.messages()) == 1 and len(_AlertSink.posted) == 1
        third = second | {"starts_at": "2026-12-07T12:00:00+00:00"}  # it fired again: a new outage, a new page
        launcher.open_or_join(cluster.id, third, "receiver")
        assert len(slack.messages()) == 2 and len(_AlertSink.posted) == 2
    paged = [e for e in storage.incidents.events(inc.id) if e.kind == "paged"]
    assert [(e.data["slack"], e.data["alert"]) for e in paged] == [("posted", "posted")] * 2, paged
