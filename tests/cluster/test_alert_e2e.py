"""End to end with real Prometheus and Alertmanager (Debian packages): a frozen lab node -> the detector's metric
-> the rule fires -> Alertmanager posts to the receiver -> one incident, one flow run -> converged. Alertmanager's
repeated deliveries start nothing more; fire -> resolve -> fire opens a second incident."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from cassandra_recovery.degraded.model import Order
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.stack import Stack
from cassandra_recovery.settings import Settings
from cassandra_recovery.wiring import ServiceParts, service_parts
from tests import faults as F
from tests.cluster.incident_env import close_open_incident, prefect_api, wait_for
from tests.migrated import migrated

# Never marked second_lab: its Prometheus and Alertmanager take the fixed ports the demo's do, so it runs in the
# demo's lane, after it.
pytestmark = pytest.mark.area("intake")

DOMAIN = {"KEYSPACE": "shop_alerts", "ORDERS_TABLE": "orders_alerts", "OUTBOX_TABLE": "outbox_alerts",
          "POLICY_TABLE": "policy_alerts"}  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _incident_runs(env: dict[str, str], since: float) -> list[Any]:
    """Flow runs of the incident deployment created after `since` (epoch seconds)."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    from deployments.names import INCIDENT_DEPLOYMENT

    with prefect_api(env), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(INCIDENT_DEPLOYMENT)
        ours = DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
        runs = client.read_flow_runs(deployment_filter=ours, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
        after = datetime.fromtimestamp(since, UTC)
        return [r for r in runs if r.deployment_id == dep.id and r.created and r.created >= after]


def _deployment_exists(env: dict[str, str]) -> bool:
    from prefect.client.orchestration import get_client

    from deployments.names import INCIDENT_DEPLOYMENT

    with prefect_api(env), get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(INCIDENT_DEPLOYMENT)
            return True
        except Exception:
            return False


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:  # noqa: S310 - loopback
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.fixture(scope="module")
def stack(lab: Lab, prefect_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {**os.environ, **prefect_server, "PYTHONDONTWRITEBYTECODE": "1"}
    env |= {f"CASSANDRA_RECOVERY_DOMAIN__{k}": v for k, v in DOMAIN.items()}
    env["CASSANDRA_RECOVERY_VERIFICATION__FOLLOW_UP_S"] = "0"
    st = Stack(
        tmp_path_factory.mktemp("stack"),
        env,
        receiver_port=_free_port(),
        receiver_ops_port=_free_port(),
        detector_port=_free_port(),
        repeat_interval="3s",
        progress=lambda m: print(f"[stack] {m}", flush=True),
    )
    try:
        st.start(deployment_ready=lambda: _deployment_exists(env))
        yield st
    finally:
        st.stop()
        for name in ("serve", "receiver", "detector"):
            log = st.base_dir / f"{name}.log"
            if log.exists():
                (ROOT / f".pytest-{name}.log").write_text(log.read_text(errors="replace")[-200_000:])


def _parts() -> ServiceParts:
    settings = Settings()
    d = settings.domain.model_copy(update={k.lower(): v for k, v in DOMAIN.items()})
    return service_parts(migrated(settings.model_copy(update={"domain": d})))


def _write(prefix: str, rows: int) -> None:
    """Orders written while node3 is frozen: acknowledged by PostgreSQL, relayed at LOCAL_QUORUM without node3."""
    parts = _parts()
    try:
        for i in range(rows):
            parts.service.write(Order(id=f"{prefix}-{i:04d}", customer="c", status="new", amount_cents=i))
        stats, report = parts.relay.drain(timeout_s=120)
        assert stats.queued == 0 and stats.dead == 0 and report.dead == 0, (stats, report)
    finally:
        parts.close()


def _seed(rows: int) -> None:
    parts = _parts()
    d = parts.pg.store.cfg
    try:
        parts.cql.truncate(d.keyspace, d.cassandra_table, timeout_s=30)
        with parts.pg.pool.connection() as conn:
            names = [sql.Identifier(t) for t in (d.orders_table, d.outbox_table, d.policy_table)]
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(names)))
            conn.commit()
        for i in range(rows):
            parts.service.write(Order(id=f"a-{i:04d}", customer="c", status="new", amount_cents=i))
        parts.relay.drain(timeout_s=60)
    finally:
        parts.close()


def _alert_reached(store: IncidentStore, incident_id: str) -> bool:
    """The incident was opened or joined by an alert (the detector records it too, with --no-deployment)."""
    inc = store.get(incident_id)
    if str(inc.trigger.get("source", "")).startswith("alert:"):
        return True
    return any(e.kind == "joined" and str(e.data.get("source", "")).startswith("alert:") for e in store.events(inc.id))


def _episode(lab: Lab, store: IncidentStore, frozen_s: float, writes: str) -> str:
    """node3 frozen for about `frozen_s`, 50 orders written meanwhile (prefix `writes`); the incident the alert
    path opened, once it is closed."""
    lab.freeze("node3")
    t0 = time.monotonic()
    _write(writes, OUTAGE_WRITES)
    inc = wait_for(lambda: store.open_for("lab"), 90, "the detector/alert to open an incident")
    wait_for(lambda: _alert_reached(store, inc.id), 90, "Alertmanager's alert to reach the incident")
    time.sleep(max(0.0, frozen_s - (time.monotonic() - t0)))
    lab.thaw("node3")
    wait_for(lambda: store.get(inc.id).state.value in ("resolved", "escalated"), 420, "the incident to close")
    return str(inc.id)


@pytest.mark.fault(F.NODE_FROZEN, F.ALERT_FLOOD)
def test_alert_path_end_to_end_one_run_per_incident_and_fire_resolve_fire(
    lab: Lab, stack: Stack, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    close_open_incident(store, "lab")
    _seed(200)
    since = time.time()
    first = _episode(lab, store, frozen_s=30, writes="first")
    assert store.get(first).state.value == "resolved", [(e.kind, e.data) for e in store.events(first)][-6:]
    verified = [e.data for e in store.events(first) if e.kind == "verified"]
    assert verified and verified[-1]["verdict"] == "converged", verified
    # every replica's copy (RF 3), the writes node3 missed included, proven equal to PostgreSQL
    assert verified[-1]["rows_compared"] == 3 * (200 + OUTAGE_WRITES), verified[-1]
    episodes = _runs_per_episode(prefect_server, since)
    assert episodes[DOWN_ALERT] == [1], episodes  # one run for the node-down alert's episode...
    # ...although Alertmanager re-sent the firing group every few seconds while node3 was away.
    assert _metric(stack.receiver_port, "cr_receiver_alerts_duplicate_total") > 0

    # The alert resolved with the thaw; the same node failing again is a new episode: a second incident.
    wait_for(lambda: _metric(stack.receiver_port, "cr_receiver_alerts_accepted_total") >= 2, 60, "the resolved alert")
    second = _episode(lab, store, frozen_s=30, writes="second")
    assert second != first and store.get(second).state.value == "resolved"
    verified = [e.data for e in store.events(second) if e.kind == "verified"]
    assert verified and verified[-1]["verdict"] == "converged", verified
    assert verified[-1]["rows_compared"] == 3 * (200 + 2 * OUTAGE_WRITES), verified[-1]
    episodes = _runs_per_episode(prefect_server, since)
    assert episodes[DOWN_ALERT] == [1, 1], episodes


DOWN_ALERT = "CassandraNodeConfirmedDown"
OUTAGE_WRITES = 50


def _runs_per_episode(env: dict[str, str], since: float) -> dict[str, list[int]]:
    """alertname -> runs per firing episode (startsAt), for the incident runs the receiver started. Another
    outage alert about the same incident (node3 drops the mutations queued while it was frozen once it runs
    again: CassandraDroppedMutationsGrowing) is an episode of its own; its run joins the open incident."""
    from collections import Counter

    per = Counter(
        (str(t.get("alertname")), str(t.get("starts_at")))
        for r in _incident_runs(env, since)
        if str((t := (r.parameters or {}).get("trigger") or {}).get("source", "")).startswith("alert:")
    )
    out: dict[str, list[int]] = {}
    for (name, _), n in sorted(per.items(), key=lambda kv: kv[0][1]):
        out.setdefault(name, []).append(n)
    return out


def _post_alertmanager(stack: Stack, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    import json

    body = {"version": "4", "status": "firing", "receiver": "cassandra-recovery", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "alerts": alerts}  # fmt: skip
    token = stack.monitoring.token_path.read_text().strip()
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack.receiver_port}/alerts/alertmanager",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
        assert r.status == 200
        return dict(json.loads(r.read()))


def _inbox(settings: Settings, fingerprints: list[str]) -> list[dict[str, Any]]:
    from cassandra_recovery.clients.postgres import fetch_all, make_pool

    pool = make_pool(settings, max_size=1)
    try:
        with pool.connection() as conn:
            q = "SELECT state, flow_run_id, incident_id FROM alert_inbox WHERE doc->>'fingerprint' = ANY(%s)"
            return fetch_all(conn.execute(q, (fingerprints,)))
    finally:
        pool.close()


@pytest.mark.fault(F.PREFECT_DOWN, F.ALERT_FLOOD)
def test_alerts_arriving_while_prefect_is_down_are_spooled_then_delivered(
    lab: Lab, stack: Stack, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    from datetime import UTC, datetime

    from cassandra_recovery.lab.prefect_server import ensure_prefect_server, stop_prefect_server

    close_open_incident(store, "lab")
    settings = Settings()
    now = datetime.now(UTC)
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "CassandraNodeDown", "cluster": "lab", "n": str(i)},
            "annotations": {"summary": f"spool test {i}"},
            "startsAt": now.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": f"spooltest{now.timestamp():.0f}{i}",
        }  # fmt: skip
        for i in range(3)
    ]
    fingerprints = [a["fingerprint"] for a in alerts]
    stop_prefect_server(settings)
    try:
        answer = _post_alertmanager(stack, alerts)
        assert [a["result"] for a in answer["alerts"]] == ["spooled"] * 3, answer
        assert {r["state"] for r in _inbox(settings, fingerprints)} == {"received"}
        # a re-send while it is still down is a duplicate, not more alerts
        again = _post_alertmanager(stack, alerts)
        assert [a["result"] for a in again["alerts"]] == ["duplicate"] * 3, again
        assert len(_inbox(settings, fingerprints)) == 3
    finally:
        ensure_prefect_server(settings)
    rows = wait_for(
        lambda: (got := _inbox(settings, fingerprints)) and {r["state"] for r in got} == {"delivered"} and got,
        120,
        "the spooled alerts to be delivered",
    )
    assert len(rows) == 3 and {r["state"] for r in rows} == {"delivered"}, rows
    assert all(r["flow_run_id"] and r["incident_id"] for r in rows), rows  # each opened or joined an incident
    # The runs find nothing down and resolve their incident themselves.
    for inc_id in {r["incident_id"] for r in rows}:
        wait_for(lambda i=inc_id: store.get(i).state.value in ("resolved", "escalated"), 180, "the runs to finish")
        closed = store.get(inc_id)
        assert closed.state.value == "resolved", [(e.kind, e.data) for e in store.events(inc_id)][-6:]
