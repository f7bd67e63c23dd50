"""Detection, assessment and the incident flow on the real lab, with Prefect on the project's PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.degraded.model import Order
from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.detector import IncidentKind, NodeHealth
from cassandra_recovery.settings import ClusterConfig, Settings
from cassandra_recovery.wiring import ServiceParts, service_parts
from tests import faults as F
from tests.cluster.incident_env import close_open_incident, run_flow, wait_for
from tests.fakes.slack_server import FakeSlackServer
from tests.migrated import migrated

pytestmark = pytest.mark.area("incident")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def own_application_tables() -> Iterator[None]:
    """The application impact comes from the degraded-mode queue: use this module's own (empty) tables,
    not whatever a demo left in the default ones. Subprocesses (serve) inherit the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASSANDRA_RECOVERY_DOMAIN__OUTBOX_TABLE", "outbox_incident_tests")
        mp.setenv("CASSANDRA_RECOVERY_DOMAIN__ORDERS_TABLE", "orders_incident_tests")
        mp.setenv("CASSANDRA_RECOVERY_DOMAIN__POLICY_TABLE", "policy_incident_tests")
        mp.setenv("CASSANDRA_RECOVERY_DOMAIN__KEYSPACE", "shop_incident_tests")
        yield


class Ticker:
    """The detector loop on a thread, counting rounds (tests compare rounds, never wall time)."""

    def __init__(self, cluster: ClusterConfig):
        self.triggers: list[Any] = []
        self.loop = DetectorLoop(
            cluster, interval_s=1.0, counters_every_s=1e9, on_trigger=lambda t, ev: self.triggers.append(t)
        )
        self.rounds = 0
        self.confirmed_at_round: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.loop.tick()
            self.rounds += 1
            for node, st in self.loop.detector.states().items():
                if st is NodeHealth.CONFIRMED:
                    self.confirmed_at_round.setdefault(node, self.rounds)
            self._stop.wait(1.0)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def wait_rounds(self, n: int) -> None:
        target = self.rounds + n
        while self.rounds < target:
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.loop.close()


@pytest.mark.fault(F.NODE_FROZEN)
def test_frozen_node_one_incident_classified_hung_plan_wait_for_hints_slack_thread(
    lab: Lab, cluster: ClusterConfig, prefect_server: dict[str, str], slack: FakeSlackServer, store: IncidentStore
) -> None:
    from flows.incident import incident_response

    close_open_incident(store, cluster.id)
    parts = _empty_application()
    reader = _DegradedReadWatch(parts)
    with Ticker(cluster) as ticker, reader:
        ticker.wait_rounds(3)
        frozen_at_round = ticker.rounds
        lab.freeze("node3")
        # Acknowledged writes node3 misses: hints carry them, and the verification must find them on node3.
        outage_writes = _write_orders(parts, "outage", 60)
        # No fixed outage: the flow starts once the detector confirmed node3, and node3 stays frozen until the
        # incident is recovering (about 20 s more), long enough for hints to be written for the outage's writes.
        wait_for(lambda: "node3" in ticker.confirmed_at_round and ticker.triggers, 30, "the detector to confirm node3")
        assert ticker.confirmed_at_round["node3"] - frozen_at_round <= 5  # within a few probe intervals
        assert [t.kind for t in ticker.triggers] == [IncidentKind.OPEN]
        # The flow mitigates, then waits for the node to come back: thaw it once the incident is recovering.
        box: dict[str, Any] = {}
        trigger = {"source": "test", "nodes": ["node3"]}
        runner = threading.Thread(
            target=lambda: box.update(
                r=run_flow(incident_response, prefect_server, cluster_id=cluster.id, trigger=trigger)
            )
        )
        runner.start()
        _wait_incident_state(store, cluster.id, "recovering", timeout_s=240)
        lab.thaw("node3")
        runner.join(timeout=300)
        result = box["r"]
        ticker.wait_rounds(10)
        assert len(ticker.triggers) == 1  # recovery is not a new incident
        assert ticker.loop.detector.states()["node3"] in (NodeHealth.RECOVERING, NodeHealth.HEALTHY)
    plan = result["plan"]
    assert result["acting"] is True and result["created"] is True
    assert plan["action"] == "wait_for_hints", plan["reasons"]
    kinds = {c["node"]: c["kind"] for c in plan["classifications"]}
    assert kinds == {lab.node("node3").address: "hung"}  # on whichever addresses the lab was given
    inc = store.get(result["incident_id"])
    assert inc.plan is not None and inc.plan["action"] == "wait_for_hints"
    assert inc.slack_ts is not None and result["slack"]["posted"] is True
    root = [m for m in slack.messages("C0LAB") if m.get("thread_ts") in (None, m["ts"])]
    assert len(root) == 1
    kinds_seen = [e.kind for e in store.events(inc.id)]
    assert kinds_seen[:2] == ["opened", "lease_acquired"] and "plan_set" in kinds_seen
    # Mitigation first: applied as soon as the run saw node3 down, before the assessment's plan (issue 15).
    assert kinds_seen.index("mitigated") < kinds_seen.index("plan_set"), kinds_seen
    # ... and measured at the service: its first read served under the degraded policy came before the plan.
    at: dict[str, datetime] = {}
    for e in store.events(inc.id):
        at.setdefault(e.kind, e.at)  # the first of each kind
    first = reader.first_degraded_at
    assert first is not None and first < at["plan_set"], (reader.seen, at)
    opened = at["opened"]
    print(f"opened -> first degraded read: {(first - opened).total_seconds():.1f}s; plan: {at['plan_set'] - opened}")
    assert result["state"] == "resolved" and result["recovery"]["hints"]["state"] == "drained"
    rows = _pg_rows(parts)
    parts.close()
    assert rows == outage_writes == 60
    verified = [e.data for e in store.events(inc.id) if e.kind == "verified"]
    # every replica's copy (RF 3) of every row, the outage's writes included, proven equal to PostgreSQL
    assert verified and verified[-1]["verdict"] == "converged", verified
    assert verified[-1]["rows_compared"] == 3 * rows, verified[-1]


class _DegradedReadWatch(threading.Thread):
    """Critical reads at the service, a few per second: when the first one is served under the degraded policy."""

    def __init__(self, parts: ServiceParts) -> None:
        super().__init__(daemon=True)
        self.parts, self.stop = parts, threading.Event()
        self.first_degraded_at: datetime | None = None
        self.seen: list[str] = []  # the distinct reasons reads were served for, in order

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                reason = self.parts.service.read("watch-0001", critical=True).reason
            except Exception as e:  # a failing read is reported by the assertion, never fatal here
                reason = f"error: {type(e).__name__}"
            if not self.seen or self.seen[-1] != reason:
                self.seen.append(reason)
            if self.first_degraded_at is None and reason.startswith("policy: degraded"):
                self.first_degraded_at = datetime.now(UTC)

    def __enter__(self) -> _DegradedReadWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(10)


def _empty_application() -> ServiceParts:
    """This module's order service with its tables emptied (tables created on first use)."""
    parts = service_parts(migrated(Settings()))
    parts.empty()
    return parts


def _write_orders(parts: ServiceParts, prefix: str, n: int) -> int:
    """n orders written to PostgreSQL and relayed to Cassandra (at LOCAL_QUORUM: the live replicas suffice)."""
    for i in range(n):
        parts.service.write(Order(id=f"{prefix}-{i:03d}", customer=prefix, status="new", amount_cents=i))
    stats, report = parts.relay.drain(timeout_s=120)
    assert stats.queued == 0 and stats.dead == 0 and report.dead == 0, (stats, report)
    return n


def _pg_rows(parts: ServiceParts) -> int:
    q = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(parts.pg.store.cfg.orders_table))
    with parts.pg.pool.connection() as conn:
        row = conn.execute(q).fetchone()
    assert row is not None
    return int(row["n"] if isinstance(row, dict) else row[0])


def _wait_incident_state(store: IncidentStore, cluster_id: str, state: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        inc = store.open_for(cluster_id)
        if inc is not None and inc.state == state:
            return inc.id
        assert time.monotonic() < deadline, f"incident never reached {state}: {inc}"
        time.sleep(1)


@pytest.mark.fault(F.NODE_BLIP, F.NODE_FLAPPING)
def test_a_blip_opens_nothing_and_a_flapping_node_opens_one_incident(lab: Lab, cluster: ClusterConfig) -> None:
    with Ticker(cluster) as ticker:
        ticker.wait_rounds(3)
        lab.freeze("node3")
        ticker.wait_rounds(1)  # shorter than the 3 failed probes that confirm
        lab.thaw("node3", wait=False)
        ticker.wait_rounds(4)
        assert ticker.triggers == []
        for _ in range(4):  # flapping: frozen and thawed every few seconds
            lab.freeze("node3")
            ticker.wait_rounds(4)
            lab.thaw("node3", wait=False)
            ticker.wait_rounds(2)
        assert [t.kind for t in ticker.triggers] == [IncidentKind.OPEN]
    lab.wait_all_up()


def _assess(env: dict[str, str], cluster_id: str, outage_started: datetime) -> dict[str, Any]:
    from flows.assess import assess

    return run_flow(assess, env, cluster_id=cluster_id, outage_started=outage_started.isoformat())  # type: ignore[no-any-return]


@pytest.mark.fault(F.NODE_PARTITIONED, F.NODE_KILLED)
def test_partition_and_kill_are_classified_differently(
    lab: Lab, cluster: ClusterConfig, prefect_server: dict[str, str]
) -> None:
    node2 = lab.node("node2")
    lab.partition("node2")
    lab.wait_seen(node2, up=False)
    partitioned = _assess(prefect_server, cluster.id, datetime.now(UTC))
    lab.heal("node2")
    lab.kill("node2")
    lab.wait_seen(node2, up=False)
    killed = _assess(prefect_server, cluster.id, datetime.now(UTC))
    lab.start("node2")
    by_kind = {p["action"]: {c["node"]: c["kind"] for c in p["classifications"]} for p in (partitioned, killed)}
    assert {c["node"]: c["kind"] for c in partitioned["classifications"]} == {node2.address: "partition"}, by_kind
    assert {c["node"]: c["kind"] for c in killed["classifications"]} == {node2.address: "node_failure"}, by_kind


@pytest.mark.fault(F.NODE_FROZEN, F.OUTAGE_PAST_HINT_WINDOW)
def test_hint_window_exceeded_means_repair(lab: Lab, cluster: ClusterConfig, prefect_server: dict[str, str]) -> None:
    nt = Nodetool(cluster)
    for n in cluster.nodes:
        nt.run(n.name, "setmaxhintwindow", "2000")  # 2 s instead of 3 h, on the running lab
    try:
        node3 = lab.node("node3")
        started = datetime.now(UTC)
        lab.freeze("node3")
        lab.wait_seen(node3, up=False)
        plan = _assess(prefect_server, cluster.id, started)
    finally:
        lab.thaw("node3")
        for n in cluster.nodes:
            nt.run(n.name, "setmaxhintwindow", "10800000")
    # Repair is the decision, not held back: the flow waits for the node to answer before it repairs.
    assert (plan["action"], plan.get("held_action")) == ("repair", None), plan["reasons"]
    assert any("max_hint_window" in r for r in plan["reasons"])
    assert plan["scope"], "a repair plan names its scope"


@pytest.mark.fault(F.NODE_FROZEN, F.OUTAGE_PAST_GC_GRACE)
def test_down_longer_than_gc_grace_means_wipe_and_replace(
    lab: Lab, cluster: ClusterConfig, prefect_server: dict[str, str], cql: Any
) -> None:
    # Schema changes happen while every node is up, so no node misses them.
    cql.execute(
        "CREATE KEYSPACE IF NOT EXISTS gc_test WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS gc_test.t (k int PRIMARY KEY) WITH gc_grace_seconds = 1", timeout_s=30)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    try:
        node3 = lab.node("node3")
        started = datetime.now(UTC)
        lab.freeze("node3")
        lab.wait_seen(node3, up=False)  # several seconds: longer than the table's gc_grace_seconds
        plan = _assess(prefect_server, cluster.id, started)
    finally:
        lab.thaw("node3")
        cql.execute("DROP KEYSPACE IF EXISTS gc_test", timeout_s=60)
        cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    assert plan["action"] == "wipe_and_replace", plan["reasons"]
    assert plan["targets"] == [node3.address]


def test_respond_runs_through_the_served_deployment(
    lab: Lab, prefect_server: dict[str, str], store: IncidentStore
) -> None:
    close_open_incident(store, "lab")
    env = {**os.environ, **prefect_server}
    serve = subprocess.Popen(
        [sys.executable, "-m", "cassandra_recovery.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_deployment(prefect_server)  # `serve` registers it; run alone, nothing else has
        proc = subprocess.run(
            [sys.executable, "-m", "cassandra_recovery.cli", "respond", "--json", "--timeout", "240"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        acted = _ui_actions(prefect_server, store)
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert acted == {"acknowledged": "alice (unverified: Prefect UI)", "state": "resolved"}, acted
    import json

    doc = json.loads(proc.stdout)
    assert doc["state"] == "COMPLETED"
    plan = doc["result"]["plan"]
    assert plan["action"] == "no_action" and doc["result"]["state"] == "resolved", plan["reasons"]


def _ui_actions(prefect_server: dict[str, str], store: IncidentStore) -> dict[str, str]:
    """Issue 19: the UI's forms are served deployments. An incident is acknowledged, escalated and resolved through
    them; the timeline names the person as typed, marked unverified."""
    import uuid

    from prefect.deployments import run_deployment

    from deployments import names
    from tests.cluster.incident_env import prefect_api

    inc, _ = store.open_or_join(f"ui-test-{uuid.uuid4().hex[:8]}", {"source": "manual"}, "pytest")
    steps = [
        (names.INCIDENT_ACK, {"note": "on it"}),
        (names.INCIDENT_ESCALATE, {"reason": "holding the automation while we look"}),
        (names.INCIDENT_RESOLVE, {"note": "checked by hand", "unverified": True}),
    ]
    with prefect_api(prefect_server):
        for name, params in steps:
            run: Any = run_deployment(
                names.address(name), parameters={"incident_id": inc.id, "your_name": "alice", **params}, timeout=120
            )
            assert run.state is not None and run.state.is_completed(), (name, run.state)
    ack = next(e for e in store.events(inc.id) if e.kind == "acknowledged")
    return {"acknowledged": ack.actor, "state": store.get(inc.id).state.value}


def _wait_for_deployment(prefect_server: dict[str, str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from deployments.names import INCIDENT_DEPLOYMENT
    from tests.cluster.incident_env import prefect_api, wait_for

    def registered() -> bool:
        with prefect_api(prefect_server), get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(INCIDENT_DEPLOYMENT)
            except ObjectNotFound:
                return False
            return True

    wait_for(registered, 120, "serve to register the incident deployment", every_s=1)
