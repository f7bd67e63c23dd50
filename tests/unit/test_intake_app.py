"""The receiver over HTTP (TestClient) with in-memory store and launcher: status codes, idempotency, spooling."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.auth import sign
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.memory import MemoryIncidents, MemoryRejectedBodies, MemorySpool, RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.service import Deliverer, Intake
from tests import faults as F
from tests.unit import asgi_raw

pytestmark = pytest.mark.area("intake")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"
TOKEN_A, TOKEN_B = "token-a-0123456789abcdef", "token-b-0123456789abcdef"
SECRET = "generic-secret-0123456789"
WALL = 1_741_944_000.0


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return doc


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Harness:
    clock: Clock
    spool: MemorySpool
    incidents: MemoryIncidents
    launcher: RecordingLauncher
    intake: Intake
    deliverer: Deliverer
    client: TestClient
    rejected: MemoryRejectedBodies

    def post(self, source: str, doc: Any, token: str | None = TOKEN_A, **kw: Any) -> httpx.Response:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        headers = dict(kw.pop("headers", {}))
        if source == "generic":
            ts = str(int(self.clock.t))
            headers |= {"X-CR-Timestamp": ts, "X-CR-Signature": sign(SECRET, ts, body)}
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.post(f"/alerts/{source}", content=body, headers=headers, **kw)

    def launch_keys(self) -> list[str]:
        return [key for _, _, key in self.launcher.calls]

    def metric(self, name: str) -> float:
        for line in self.client.get("/metrics").text.splitlines():
            series, _, value = line.rpartition(" ")
            if series == name:
                return float(value)
        raise AssertionError(f"metric {name} not exported")


def make(**overrides: Any) -> Harness:
    clock = Clock(WALL)
    cfg = ReceiverConfig.model_validate({"tokens": [TOKEN_A, TOKEN_B], "hmac_secrets": [SECRET], **overrides})
    spool = MemorySpool(clock)
    incidents, launcher = MemoryIncidents(), RecordingLauncher()
    intake = Intake(spool, incidents, launcher, ReceiverMetrics(), inline_timeout_s=5.0)
    rejected = MemoryRejectedBodies()
    app = create_app(
        cfg, intake, "lab", known_cluster=lambda c: c != "ghost", clock=clock, wall_clock=clock, rejected=rejected
    )
    return Harness(clock, spool, incidents, launcher, intake, Deliverer(intake, 0.01), TestClient(app), rejected)


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = make()
    yield harness
    harness.intake.close()


def first_alert_only(name: str) -> dict[str, Any]:
    doc = load(name)
    doc["alerts"] = doc["alerts"][:1]
    return doc


# --- authentication ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["alertmanager", "grafana"])
def test_both_rotated_tokens_are_accepted(h: Harness, source: str) -> None:
    doc = first_alert_only(f"{source}_v4_firing" if source == "alertmanager" else "grafana_v1_firing")
    assert h.post(source, doc, token=TOKEN_A).status_code == 200
    assert h.post(source, doc, token=TOKEN_B).status_code == 200  # same alert: a duplicate, still 2xx
    assert len(h.launcher.calls) == 1


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", TOKEN_A + "x"])
def test_missing_or_wrong_token_is_401_and_nothing_happens(h: Harness, token: str | None) -> None:
    r = h.post("alertmanager", load("alertmanager_v4_firing"), token=token)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert h.spool.rows == {} and h.launcher.calls == []
    assert h.metric('cr_receiver_requests_rejected_total{reason="auth"}') == 1.0


def test_generic_needs_a_fresh_valid_signature(h: Harness) -> None:
    body = json.dumps(load("generic_firing")).encode()
    ts = str(int(WALL))
    ok = {"X-CR-Timestamp": ts, "X-CR-Signature": sign(SECRET, ts, body)}
    old = str(int(WALL) - 301)
    cases = [
        ({}, 401),
        ({"X-CR-Timestamp": ts, "X-CR-Signature": sign("another-secret-0000000", ts, body)}, 401),
        ({"X-CR-Timestamp": old, "X-CR-Signature": sign(SECRET, old, body)}, 401),  # outside the replay window
        ({"Authorization": f"Bearer {TOKEN_A}"}, 401),  # a bearer token does not open the signed endpoint
        (ok, 200),
        (ok, 200),  # the same signed request replayed within the window: a duplicate, no second launch
    ]
    for headers, status in cases:
        assert h.client.post("/alerts/generic", content=body, headers=headers).status_code == status
    assert len(h.launcher.calls) == 1
    assert h.metric('cr_receiver_alerts_duplicate_total{source="generic"}') == 1.0


# --- limits and malformed input -------------------------------------------------------------------------------


def test_body_over_the_limit_is_413_with_or_without_content_length() -> None:
    h = make(max_body_bytes=2048)
    big = json.dumps({**load("alertmanager_v4_firing"), "padding": "x" * 4096}).encode()
    assert h.post("alertmanager", big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    r = h.client.post("/alerts/alertmanager", content=chunks(), headers=headers)
    assert r.status_code == 413 and "2048" in r.json()["detail"]
    assert h.launcher.calls == [] and h.spool.rows == {}
    assert h.post("alertmanager", first_alert_only("alertmanager_v4_firing")).status_code == 200


def test_more_alerts_than_the_cap_is_413_saying_so_and_nothing_is_taken() -> None:
    h = make(max_alerts_per_request=2)
    doc = load("alertmanager_v4_firing")
    doc["alerts"] = [doc["alerts"][0] | {"fingerprint": f"{i:016x}"} for i in range(3)]
    r = h.post("alertmanager", doc)
    assert r.status_code == 413 and r.json()["detail"] == "3 alerts in one request; at most 2"
    assert h.launcher.calls == [] and h.spool.rows == {}
    doc["alerts"] = doc["alerts"][:2]
    assert h.post("alertmanager", doc).status_code == 200


def test_a_body_that_never_arrives_is_408() -> None:
    h = make(body_timeout_s=0.05)
    headers = [(b"authorization", f"Bearer {TOKEN_A}".encode()), (b"content-length", b"100")]
    assert asgi_raw.post(h.client.app, "/alerts/alertmanager", headers, asgi_raw.body_never_comes) == 408
    assert h.metric('cr_receiver_requests_rejected_total{reason="timeout"}') == 1.0


@pytest.mark.fault(F.ALERT_FLOOD)
def test_rate_limit_per_client_answers_429_until_the_bucket_refills() -> None:
    h = make(rate_per_s=1.0, rate_burst=2)
    doc = first_alert_only("alertmanager_v4_firing")
    codes = [h.post("alertmanager", doc).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert h.post("alertmanager", doc).headers["Retry-After"] == "1"
    h.clock.t += 1.0
    assert h.post("alertmanager", doc).status_code == 200
    assert h.metric('cr_receiver_requests_rejected_total{reason="rate_limited"}') == 2.0


@pytest.mark.fault(F.ALERT_FLOOD)
def test_unauthenticated_flood_gets_401_and_leaves_the_senders_bucket_alone() -> None:
    """Everyone local shares the loopback address: limits go per credential, checked after authentication."""
    h = make(rate_per_s=1.0, rate_burst=2)
    doc = first_alert_only("alertmanager_v4_firing")
    flood = [h.post("alertmanager", doc, token="wrong-token-0123456789").status_code for _ in range(5)]
    generic_flood = [h.client.post("/alerts/generic", content=b"{}").status_code for _ in range(5)]
    assert flood == [401] * 5 and generic_flood == [401] * 5
    assert [h.post("alertmanager", doc).status_code for _ in range(3)] == [200, 200, 429]
    # Each credential has its own bucket: the rotated second token and the generic secret are still served.
    assert h.post("alertmanager", doc, token=TOKEN_B).status_code == 200
    assert h.post("generic", load("generic_firing")).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"version": "4",', "\xff\xfe{}".encode("latin-1")])
def test_malformed_json_is_400(h: Harness, body: bytes) -> None:
    r = h.post("alertmanager", body)
    assert r.status_code == 400 and r.json()["detail"].startswith("malformed JSON")


def test_invalid_field_is_422_naming_it(h: Harness) -> None:
    doc = load("alertmanager_v4_firing")
    doc["alerts"][1]["startsAt"] = 1741944000
    doc["alerts"][0]["labels"]["severity"] = ["critical"]
    r = h.post("alertmanager", doc)
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", "alerts", 1, "startsAt"] in locs and ["body", "alerts", 0, "labels", "severity"] in locs
    assert h.launcher.calls == [] and h.spool.rows == {}  # nothing of an invalid document is taken


def test_unknown_cluster_is_422_naming_the_label(h: Harness) -> None:
    doc = first_alert_only("alertmanager_v4_firing")
    doc["alerts"][0]["labels"]["cluster"] = "ghost"
    r = h.post("alertmanager", doc)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "alerts", 0, "labels", "cluster"]


def test_unknown_extra_fields_are_accepted(h: Harness) -> None:
    doc = load("grafana_v1_firing")
    doc |= {"futureField": {"x": 1}, "imageURL": None}
    doc["alerts"][0]["annotations"]["runbook_url"] = "https://wiki.example/cassandra"
    doc["alerts"][0]["brandNew"] = [1, "two"]
    r = h.post("grafana", doc)
    assert r.status_code == 200 and r.json()["alerts"][0]["result"] == "delivered"


def test_an_alert_the_inbox_refuses_is_422_kept_and_not_a_store_outage(h: Harness) -> None:
    """NUL in a field (a lone surrogate is already a 422 from validation): PostgreSQL refuses the alert. A retry
    cannot help, so no 503 loop; PostgreSQL is not down, so store_up stays 1. The raw body is kept to look at."""
    doc = load("alertmanager_v4_firing")
    doc["alerts"][1]["annotations"]["summary"] = "bad \u0000 value"
    body = json.dumps(doc).encode()  # JSON's \u0000 escape arrives as a NUL character
    r = h.post("alertmanager", body)
    assert r.status_code == 422, r.text
    assert [a["result"] for a in r.json()["alerts"]] == ["delivered", "rejected"]
    assert r.json()["store"] == "ok" and h.metric("cr_receiver_store_up") == 1.0
    assert h.rejected.kept[r.json()["kept_as"]][0] == body
    assert h.metric('cr_receiver_requests_rejected_total{reason="refused_by_store"}') == 1.0


# --- idempotency and incidents ----------------------------------------------------------------------------


def test_firing_group_opens_one_incident_and_launches_each_alert_once(h: Harness) -> None:
    doc = load("alertmanager_v4_firing")
    r = h.post("alertmanager", doc)
    assert r.status_code == 200
    results = r.json()["alerts"]
    assert [a["result"] for a in results] == ["delivered", "delivered"]
    assert {a["incident_id"] for a in results} == {h.incidents.open["lab"]}
    assert [e[0] for e in h.incidents.events[h.incidents.open["lab"]]] == ["opened", "joined"]
    cluster, trigger, key = h.launcher.calls[0]
    assert cluster == "lab" and trigger["nodes"] == ["127.0.0.3"] and trigger["incident_id"] == "inc-1"
    assert key == h.spool.rows[results[0]["dedup_key"]].item.launch_key
    # Alertmanager re-sends the same group (repeat_interval, a retry after a lost answer): 2xx, nothing new.
    again = h.post("alertmanager", doc)
    assert again.status_code == 200 and [a["result"] for a in again.json()["alerts"]] == ["duplicate"] * 2
    assert len(h.launcher.calls) == 2 and len(h.incidents.events["inc-1"]) == 2
    assert h.metric('cr_receiver_alerts_accepted_total{source="alertmanager"}') == 2.0
    assert h.metric('cr_receiver_alerts_duplicate_total{source="alertmanager"}') == 2.0


def test_fire_resolve_fire_gives_two_incidents_and_two_launches(h: Harness) -> None:
    firing = first_alert_only("alertmanager_v4_firing")
    assert h.post("alertmanager", firing).json()["alerts"][0]["result"] == "delivered"
    resolved = h.post("alertmanager", load("alertmanager_v4_resolved")).json()["alerts"][0]
    assert resolved["result"] == "recorded" and resolved["incident_id"] == "inc-1"
    assert h.incidents.events["inc-1"][-1][0] == "alert_resolved"
    assert len(h.launcher.calls) == 1  # a resolved alert is recorded, not acted on
    h.incidents.close("lab")  # the incident flow resolves the incident
    again = copy.deepcopy(firing)
    again["alerts"][0]["startsAt"] = "2025-03-14T11:02:31.114Z"
    third = h.post("alertmanager", again).json()["alerts"][0]
    assert third["result"] == "delivered" and third["incident_id"] == "inc-2"
    keys = h.launch_keys()
    assert len(keys) == 2 and keys[0] != keys[1]


def test_resolved_without_open_incident_is_stored_only(h: Harness) -> None:
    r = h.post("grafana", load("grafana_v1_resolved"))
    assert r.status_code == 200 and r.json()["alerts"][0] == r.json()["alerts"][0] | {"result": "recorded"}
    assert r.json()["alerts"][0]["incident_id"] is None and h.incidents.events == {}
    assert [row.state for row in h.spool.rows.values()] == ["recorded"]


# --- outages -------------------------------------------------------------------------------------------------


@pytest.mark.fault(F.PREFECT_DOWN)
def test_launcher_down_spools_then_the_deliverer_delivers(h: Harness) -> None:
    h.launcher.up = False
    r = h.post("alertmanager", first_alert_only("alertmanager_v4_firing"))
    assert r.status_code == 200  # stored durably: the sender must not retry
    (a,) = r.json()["alerts"]
    assert a["result"] == "spooled" and "prefect is down" in a["detail"] and a["incident_id"] == "inc-1"
    assert h.deliverer.run_once() == []  # not due yet (backoff)
    assert h.metric("cr_receiver_spooled_pending") == 1.0
    h.launcher.up = True
    h.clock.t += 2.0
    (outcome,) = h.deliverer.run_once()
    assert outcome.ok and outcome.incident_id == "inc-1"
    assert len(h.launcher.calls) == 1 and h.spool.rows[a["dedup_key"]].state == "delivered"
    assert [e[0] for e in h.incidents.events["inc-1"]] == ["opened"]  # joined once, not once per attempt
    assert h.metric("cr_receiver_spooled_pending") == 0.0
    assert h.metric('cr_receiver_alerts_delivered_total{path="deliverer"}') == 1.0
    assert h.metric("cr_receiver_alerts_spooled_total") == 1.0
    assert h.deliverer.run_once() == [] and len(h.launcher.calls) == 1


@pytest.mark.fault(F.PREFECT_DOWN)
def test_the_deliverer_thread_delivers_in_the_background(h: Harness) -> None:
    launched = threading.Event()
    original = h.launcher.launch

    def launch(cluster_id: str, trigger: dict[str, Any], key: str) -> str:
        run = original(cluster_id, trigger, key)
        launched.set()
        return run

    h.launcher.up = False
    h.post("alertmanager", first_alert_only("alertmanager_v4_firing"))
    h.launcher.up, h.launcher.launch = True, launch  # type: ignore[method-assign]
    h.clock.t += 60.0
    h.deliverer.start()
    try:
        assert launched.wait(timeout=10)
    finally:
        h.deliverer.stop()
    assert len(h.launcher.calls) == 1 and h.spool.pending_count() == 0


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_store_down_launcher_up_delivers_directly_and_says_so(h: Harness) -> None:
    h.spool.up = h.incidents.up = False
    doc = first_alert_only("alertmanager_v4_firing")
    r = h.post("alertmanager", doc)
    assert r.status_code == 200 and r.json()["store"] == "unavailable"
    (a,) = r.json()["alerts"]
    assert a["result"] == "direct" and "not stored" in a["detail"] and a["flow_run_id"] == "run-1"
    # PostgreSQL back; Alertmanager re-sends: stored now, and the same idempotency key finds the same run.
    h.spool.up = h.incidents.up = True
    again = h.post("alertmanager", doc).json()["alerts"][0]
    assert again["result"] == "delivered" and again["flow_run_id"] == "run-1"
    assert len(set(h.launch_keys())) == 1 and len(h.launcher.runs) == 1


@pytest.mark.fault(F.POSTGRES_DOWN, F.PREFECT_DOWN)
def test_both_down_is_503_and_a_retry_later_is_taken_once(h: Harness) -> None:
    h.spool.up = h.incidents.up = h.launcher.up = False
    doc = first_alert_only("alertmanager_v4_firing")
    r = h.post("alertmanager", doc)
    assert r.status_code == 503 and r.headers["Retry-After"] == "10"
    assert r.json()["alerts"][0]["result"] == "failed"
    assert h.metric('cr_receiver_requests_rejected_total{reason="unavailable"}') == 1.0
    h.spool.up = h.incidents.up = h.launcher.up = True
    assert h.post("alertmanager", doc).status_code == 200
    assert h.post("alertmanager", doc).status_code == 200
    assert len(h.launcher.calls) == 1


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_store_down_resolved_alert_is_503_so_it_is_retried(h: Harness) -> None:
    h.spool.up = h.incidents.up = False
    r = h.post("alertmanager", load("alertmanager_v4_resolved"))
    assert r.status_code == 503 and h.launcher.calls == []


# --- service endpoints ----------------------------------------------------------------------------------------


def test_healthz_metrics_and_openapi(h: Harness) -> None:
    assert h.client.get("/healthz").json()["status"] == "ok"
    text = h.client.get("/metrics").text
    for name in ("cr_receiver_alerts_accepted", "cr_receiver_requests_rejected_total", "cr_receiver_spooled_pending"):
        assert name in text
    spec = h.client.get("/openapi.json").json()
    body = spec["paths"]["/alerts/alertmanager"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/AlertmanagerWebhook"}
    am = spec["components"]["schemas"]["AlertmanagerWebhook"]
    assert {"version", "status", "alerts"} <= set(am["required"])
    assert spec["components"]["schemas"]["GenericAlert"]["required"] == ["id", "status", "name", "starts_at"]
    assert spec["paths"]["/alerts/generic"]["post"]["security"] == [{"hmac": []}]
    assert set(spec["paths"]["/alerts/grafana"]["post"]["responses"]) >= {"400", "401", "413", "422", "429", "503"}


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_store_down_is_tried_once_per_request(h: Harness) -> None:
    calls = []
    put = h.spool.put

    def counting_put(*args: Any, **kw: Any) -> bool:
        calls.append(args)
        return put(*args, **kw)

    h.spool.put = counting_put  # type: ignore[method-assign]
    h.spool.up = h.incidents.up = False
    r = h.post("alertmanager", load("alertmanager_v4_firing"))
    assert [a["result"] for a in r.json()["alerts"]] == ["direct", "direct"] and len(calls) == 1


def test_only_outage_alerts_start_the_flow_others_are_recorded() -> None:
    """A warning about the tool itself (a failed repair segment, the spool) is stored and noted, not an outage."""
    clock = Clock(WALL)
    spool, incidents, launcher = MemorySpool(clock), MemoryIncidents(), RecordingLauncher()
    intake = Intake(spool, incidents, launcher, ReceiverMetrics(), inline_timeout_s=5.0,
                    act_on=ReceiverConfig().act_on)  # fmt: skip
    cfg = ReceiverConfig.model_validate({"tokens": [TOKEN_A]})
    app = create_app(cfg, intake, "lab", known_cluster=lambda c: True, clock=clock, wall_clock=clock)
    client = TestClient(app)
    doc = first_alert_only("alertmanager_v4_firing")
    down, repair = json.loads(json.dumps(doc)), json.loads(json.dumps(doc))
    down["alerts"][0]["labels"]["alertname"] = "CassandraNodeConfirmedDown"
    repair["alerts"][0]["labels"]["alertname"] = "CassandraRepairSegmentsFailed"
    repair["alerts"][0]["fingerprint"] = "feedfacefeedface"
    headers = {"Authorization": f"Bearer {TOKEN_A}", "Content-Type": "application/json"}
    try:
        r1 = client.post("/alerts/alertmanager", content=json.dumps(repair), headers=headers)
        assert r1.status_code == 200 and r1.json()["alerts"][0]["result"] == "recorded", r1.json()
        assert launcher.calls == []
        r2 = client.post("/alerts/alertmanager", content=json.dumps(down), headers=headers)
        assert r2.status_code == 200 and r2.json()["alerts"][0]["result"] == "delivered", r2.json()
        assert len(launcher.calls) == 1
    finally:
        intake.close()
