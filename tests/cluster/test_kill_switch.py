"""The kill switch holds at every step, on the real lab: a repair session running when it is set is cancelled
inside Cassandra (not only its nodetool) within the configured bound; a segment is never started while it is on;
a scheduled repair that waited out its pacing pause re-reads it and stops, saying why."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.cql import CqlClient, table_name
from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.controls.killswitch import AutomationStopped, KillSwitch
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.incident.side_effects import SideEffectLog
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.segments import Segment
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.settings import ClusterConfig, Settings
from tests import faults as F
from tests.cluster.incident_env import close_open_incident, run_flow, wait_for

pytestmark = pytest.mark.area("repair")

KS = "killswitch_ks"


@pytest.fixture
def pool(prefect_server: dict[str, str]) -> Iterator[ConnectionPool]:
    p = make_pool(Settings(), max_size=3)  # migrated by the prefect_server fixture
    yield p
    KillSwitch(p).set("lab", False, "test over", "pytest")  # never leave the lab's automation stopped
    p.close()


@pytest.fixture(scope="module")
def keyspace(cql: CqlClient) -> str:
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS " + table_name(KS, "t") + " (k int PRIMARY KEY, v text)", timeout_s=30)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    return KS


def _running(cql: CqlClient, address: str) -> list[dict[str, Any]]:
    return [r for r in cql.repairs(address) if r["keyspace_name"] == KS and not r["completed"]]


def _effects(pool: ConnectionPool, holder: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        q = "SELECT action, outcome FROM side_effects WHERE holder = %s ORDER BY id"
        return fetch_all(conn.execute(q, (holder,)))


@pytest.mark.allow_log_errors(  # the cancelled session, as Cassandra reports one
    r"RepairCoordinator\.java:\d+ - Repair \S+ failed",
    r"RepairSession\.java:\d+ - \[repair #\S+\] ",
)
@pytest.mark.fault(F.KILL_SWITCH_SET, F.NODE_FROZEN)
def test_a_repair_running_when_the_switch_is_set_is_cancelled_in_cassandra_and_no_segment_starts_after(
    lab: Lab, cluster: ClusterConfig, cql: CqlClient, keyspace: str, pool: ConnectionPool
) -> None:
    node1 = cluster.node("node1")
    seg = Segment(KS, 0, 10**18, tuple(n.address for n in cluster.nodes), node1.address)
    holder = f"ks-test-{uuid.uuid4().hex[:8]}"
    switch, effects = KillSwitch(pool), SideEffectLog(pool)
    cfg = EngineConfig(inflight_wait_s=60, poll_s=0.5, halt_check_s=0.5)

    frozen: list[bool] = []

    def freeze_when_it_starts(line: str) -> None:
        # A frozen replica holds the session in its prepare phase (Cassandra's 10 s timeout). Frozen only now: the
        # engine first looks at every replica for repairs already running, which a frozen node cannot answer.
        if "repairing on" in line and not frozen:
            frozen.append(True)
            lab.freeze("node3")

    engine = RepairEngine(
        cluster,
        cql,
        RepairCheckpoints(pool),
        cfg,
        progress=freeze_when_it_starts,
        fence=Fence.unfenced(holder),
        effects=effects,
    )
    outcome: list[BaseException | object] = []

    def repair() -> None:
        try:
            outcome.append(engine.run(f"{holder}/1", [seg]))
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            outcome.append(e)

    try:
        worker = threading.Thread(target=repair)
        worker.start()
        wait_for(lambda: _running(cql, node1.address), 60, "the engine's repair session inside Cassandra")
        switch.set("lab", True, "game day: hands off", "alice@lab")
        worker.join(timeout=60)
    finally:
        p = lab.process(lab.node("node3"))
        if p is not None and p.frozen:
            lab.thaw("node3", wait=False)
    lab.wait_all_up()
    assert not worker.is_alive()
    (err,) = outcome
    # Cancelled in flight: left alone, the session would have failed by itself (node3 stays frozen past Cassandra's
    # prepare timeout) and the switch would only have been met at the retry's start (cancelled False).
    assert isinstance(err, AutomationStopped) and err.cancelled, err
    wait_for(lambda: not _running(cql, node1.address), 30, "the cancelled session to end inside Cassandra")
    acts = _effects(pool, holder)
    assert [a["action"] for a in acts] == ["repair_segment", "repair_cancel"], acts
    assert acts[0]["outcome"].startswith("failed: AutomationStopped") and acts[1]["outcome"] == "done", acts
    # While it stays on, the next run refuses before starting anything: no session, nothing on the log.
    with pytest.raises(AutomationStopped) as refused:
        engine.run(f"{holder}/2", [seg])
    assert not refused.value.cancelled and not _running(cql, node1.address)
    assert len(_effects(pool, holder)) == 2
    assert [s.state.value for s in RepairCheckpoints(pool).segments(f"{holder}/2")] == ["pending"]
    _an_incidents_actions_are_refused_too(lab, cluster, pool)


def _an_incidents_actions_are_refused_too(lab: Lab, cluster: ClusterConfig, pool: ConnectionPool) -> None:
    """The switch still on: an approved replacement of a dead node and the detector's mitigation start nothing."""
    from cassandra_recovery.mitigation.apply import mitigate_opened_incident
    from cassandra_recovery.storage.facade import open_storage
    from tasks.recovery import replace_node

    storage = open_storage(Settings(), max_size=2)
    store = storage.incidents
    try:
        close_open_incident(store, "lab")
        inc, _ = store.open_or_join("lab", {"source": "pytest", "nodes": ["node3"]}, "pytest")
        lease = store.acquire_lease(inc.id, "pytest-run", 60, run_key="pytest-run")
        assert lease is not None
        said = mitigate_opened_incident(storage, cluster, inc.id, ["node3"], "detector")
        assert said.startswith("automation stopped") and storage.policy.get("lab").mode.value == "normal", said
        node3 = cluster.node("node3")
        with pytest.raises(AutomationStopped):  # approved, but nothing is provisioned while the switch is on
            replace_node.fn("lab", inc.id, node3.address, "alice@lab", lease)
        assert not [e for e in store.events(inc.id) if e.kind == "replacement_started"]
        assert [n.address for n in lab.state().spec.nodes] == [n.address for n in cluster.nodes]  # none added
        store.release_lease(lease)
    finally:
        close_open_incident(store, "lab")
        storage.close()


@pytest.mark.fault(F.KILL_SWITCH_SET)
def test_a_scheduled_repair_that_waited_out_its_pause_reads_the_switch_again_and_stops(
    lab: Lab, keyspace: str, pool: ConnectionPool, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    from flows.scheduled_repair import scheduled_repair

    close_open_incident(store, "lab")
    schedule = f"test-killswitch-{uuid.uuid4().hex[:6]}"
    switch = KillSwitch(pool)

    def set_after_first_segment() -> None:  # inside the intensity pause that follows segment 1
        def first_done() -> bool:
            with pool.connection() as conn:
                q = "SELECT state FROM repair_segments WHERE run_key LIKE %s AND seq = 0"
                return [r["state"] for r in fetch_all(conn.execute(q, (f"scheduled/{schedule}/%",)))] == ["done"]

        wait_for(first_done, 120, "the scheduled run's first segment")
        switch.set("lab", True, "change freeze", "bob@lab")

    setter = threading.Thread(target=set_after_first_segment, daemon=True)
    setter.start()
    # intensity 0.1: a pause of nine times the segment's duration after it (seconds on the lab)
    res = run_flow(scheduled_repair, prefect_server, schedule=schedule, keyspaces=[keyspace], kind="full",
                   segments_per_range=1, intensity=0.1)  # fmt: skip
    setter.join(timeout=5)
    assert res["outcome"] == "skipped" and "automation stopped by bob@lab" in res["interrupted"], res
    assert res["paused_s"] > 0 and res["ran"] == 1, res
    with pool.connection() as conn:
        q = "SELECT state FROM repair_segments WHERE run_key = %s ORDER BY seq"
        states = [r["state"] for r in fetch_all(conn.execute(q, (res["run_key"],)))]
    assert states == ["done", "pending", "pending"], states
