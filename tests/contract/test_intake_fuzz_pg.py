"""The receiver's fuzzing against the real inbox: hostile strings (NUL, lone surrogates, 1 MiB fields) get 2xx or
4xx while PostgreSQL is up, never 5xx, and every alert the receiver took is in the table."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.memory import MemoryIncidents, MemoryRejectedBodies, MemorySpool, RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.service import Deliverer, Intake
from cassandra_recovery.intake.spool import PgSpool
from tests.contract.test_intake_spool import pool, spool  # noqa: F401  # module fixtures
from tests.unit.test_intake_app import SECRET, TOKEN_A, TOKEN_B, Clock, Harness, load

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="ensure_postgres provisions through runuser, which needs root"),
    pytest.mark.area("intake"),
]

MIB = 1024 * 1024
HOSTILE = st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff tail", "x" * MIB, "\x00" * 64, "é\u2028\ufeff"])
TEXT = HOSTILE | st.text(max_size=12) | st.builds(lambda a, b: a + b, st.text(max_size=6), HOSTILE)
# Where a hostile string can go in an Alertmanager or generic alert (keys and values of its maps too).
PLACES = ["label_value", "label_key", "summary", "fingerprint", "name", "url_or_node", "group_key"]
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=SLOW_OK)
TAKEN = ("delivered", "recorded", "spooled", "duplicate")


def _alertmanager(place: str, text: str, n: int) -> dict[str, Any]:
    doc = load("alertmanager_v4_firing")  # two alerts: the second stays clean and must be stored anyway
    doc["alerts"][0]["fingerprint"], doc["alerts"][1]["fingerprint"] = f"fuzz{n:012x}", f"ok{n:014x}"
    alert = doc["alerts"][0]
    if place in ("label_value", "label_key"):
        alert["labels"].update({"note": text} if place == "label_value" else {text: "v"})
    elif place == "group_key":
        doc["groupKey"] = text
    else:
        where = {"summary": ("annotations", "summary"), "name": ("labels", "alertname")}.get(place)
        target, key = (alert[where[0]], where[1]) if where else (alert, place.replace("url_or_node", "generatorURL"))
        target[key] = text
    return doc


def _generic(place: str, text: str, n: int) -> dict[str, Any]:
    doc = load("generic_firing")
    clean = {**doc["alerts"][0], "id": f"ok{n:014x}"}
    alert = doc["alerts"][0] | {"id": f"fuzz{n:012x}"}
    if place in ("label_value", "label_key"):
        alert["labels"] = {**alert["labels"], **({"note": text} if place == "label_value" else {text: "v"})}
    elif place == "url_or_node":
        alert["nodes"] = [text]
    elif place != "group_key":
        alert[{"fingerprint": "id"}.get(place, place)] = text
    doc["alerts"] = [alert, clean]
    return doc


def harness(intake: Intake) -> Harness:
    """The unit tests' HTTP harness (it signs generic requests), on the real inbox."""
    clock = Clock(time.time())
    cfg = ReceiverConfig.model_validate({"tokens": [TOKEN_A, TOKEN_B], "hmac_secrets": [SECRET], "rate_per_s": 1e6,
                                         "rate_burst": 10**6, "max_body_bytes": 4 * MIB})  # fmt: skip
    rejected = MemoryRejectedBodies()
    app = create_app(cfg, intake, "lab", clock=clock, wall_clock=clock, rejected=rejected)
    unused = MemorySpool(clock)  # the app stores in `intake`'s inbox; the harness type wants one
    return Harness(clock, unused, MemoryIncidents(), RecordingLauncher(), intake, Deliverer(intake, 1.0),
                   TestClient(app), rejected)  # fmt: skip


def test_hostile_strings_against_the_real_inbox(spool: PgSpool) -> None:  # noqa: F811
    intake = Intake(spool, MemoryIncidents(), RecordingLauncher(), ReceiverMetrics())
    h = harness(intake)
    seen: dict[int, int] = {}
    counter = iter(range(10**6))

    @SETTINGS
    @given(source=st.sampled_from(["alertmanager", "generic"]), place=st.sampled_from(PLACES), text=TEXT)
    def run(source: str, place: str, text: str) -> None:
        doc = (_generic if source == "generic" else _alertmanager)(place, text, next(counter))
        r = h.post(source, json.dumps(doc).encode())
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert 200 <= r.status_code < 500, (source, place, r.status_code, r.text[:300])
        if r.status_code in (200, 422) and "alerts" in r.json():
            answer = r.json()
            assert answer["store"] == "ok"  # PostgreSQL is up: nothing may be reported as an outage
            for a in answer["alerts"]:
                if a["result"] in TAKEN:  # taken means stored: in the table, whatever happens next
                    row = spool.row(a["dedup_key"])
                    assert row is not None and row["doc"]["dedup_key"] == a["dedup_key"]
            assert sum(a["result"] in TAKEN for a in answer["alerts"]) >= 1  # the clean alert at least

    try:
        run()
    finally:
        intake.close()
    assert seen.get(200) and seen.get(422), seen  # both accepted and refused inputs were reached
