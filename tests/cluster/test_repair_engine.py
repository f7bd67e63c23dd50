"""The repair engine meeting a session a killed run left running inside Cassandra (real lab, no Prefect)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.segments import Segment
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.settings import ClusterConfig, Settings
from tests import faults as F
from tests.migrated import migrated

pytestmark = pytest.mark.area("repair")

KS = "inflight_ks"


@pytest.fixture
def checkpoints(lab: Lab, request: pytest.FixtureRequest) -> Iterator[RepairCheckpoints]:
    ensure_postgres(Settings())
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]
    pool = make_pool(migrated(Settings()), max_size=2)
    cp = RepairCheckpoints(pool)
    yield cp
    pool.close()


def _thawed(lab: Lab, thaw: threading.Timer) -> None:
    """node3 running again whether or not its timed thaw came, and the lab all up."""
    thaw.cancel()
    p = lab.process(lab.node("node3"))
    if p is not None and p.frozen:
        lab.thaw("node3", wait=False)
    lab.wait_all_up()


@pytest.mark.fault(F.NODE_FROZEN, F.REPAIR_SESSION_ORPHANED)
def test_a_session_left_in_flight_by_a_killed_run_is_waited_for_and_not_repeated(
    lab: Lab, cluster: ClusterConfig, cql: CqlClient, checkpoints: RepairCheckpoints
) -> None:
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS inflight_ks.t (k int PRIMARY KEY, v text)", timeout_s=30)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    node1 = cluster.node("node1")
    seg = Segment(KS, 0, 10**18, tuple(n.address for n in cluster.nodes), node1.address)
    key = f"inflight-{uuid.uuid4().hex}"
    # What a run killed mid-segment leaves behind: the segment marked running, its session still in Cassandra.
    checkpoints.start_or_resume(key, cluster.id, "full", [seg], Fence.unfenced("killed-run"))
    checkpoints.mark_running(key, 0, Fence.unfenced("killed-run"))
    started = cql.execute("SELECT toTimestamp(now()) AS t FROM system.local")[0]["t"]
    argv = Nodetool(cluster).argv(node1, ["repair", "-full", "-st", str(seg.start), "-et", str(seg.end), KS])
    # A frozen replica holds the session in its prepare phase (up to Cassandra's 10 s request timeout).
    lab.freeze("node3")
    thaw = threading.Timer(3.0, lambda: lab.thaw("node3", wait=False))
    try:
        nodetool = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Only nodetool's start-up is waited on here (a JVM launch, slow on a busy machine); Cassandra's 10 s prepare
        # timeout runs from when the session registers, and the thaw below is timed from that moment.
        deadline = time.monotonic() + 60
        while not [
            r
            for r in cql.repairs(node1.address)
            if r["keyspace_name"] == KS and not r["completed"] and seg.range_text in (r["options_ranges"] or ())
        ]:
            assert time.monotonic() < deadline, "the repair never started inside Cassandra"
            time.sleep(0.1)
        nodetool.kill()  # the run and its nodetool die; the repair goes on inside Cassandra
        nodetool.wait()
        thaw.start()
        report = RepairEngine(cluster, cql, checkpoints, EngineConfig(inflight_wait_s=60, poll_s=0.5)).run(key, [seg])
    finally:
        _thawed(lab, thaw)
    assert (report.waited_in_flight, report.reconciled, report.ran, report.escalated) == (1, 1, 0, False), report
    history = cql.execute(
        "SELECT keyspace_name, requested_ranges, successful_ranges, started_at"
        " FROM system_distributed.parent_repair_history",
        timeout_s=30,
    )
    ours = [h for h in history if h["keyspace_name"] == KS and h["started_at"] and h["started_at"] >= started]
    assert [set(h["successful_ranges"] or ()) for h in ours] == [{seg.range_text}]  # ran once, by the killed run
    assert [r.state.value for r in checkpoints.segments(key)] == ["done"]


def test_repair_command_runs_the_flow_and_the_same_run_key_resumes_without_repeating(
    lab: Lab, cluster: ClusterConfig, cql: CqlClient, prefect_server: dict[str, str]
) -> None:
    import json
    import os
    import sys
    from pathlib import Path

    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}",
        timeout_s=30,
    )
    key = f"cli-{uuid.uuid4().hex}"
    argv = [sys.executable, "-m", "cassandra_recovery.cli", "repair", "--keyspace", KS, "--node", "node3"]
    argv += ["--segments-per-range", "2", "--run-key", key, "--json"]
    env = {**os.environ, **prefect_server}
    root = Path(__file__).resolve().parents[2]
    first = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    doc = json.loads(first.stdout)
    # RF 3 on 3 nodes: node3 replicates all 3 ranges, 2 segments each
    assert (doc["segments"], doc["ran"], doc["escalated"], doc["run_key"]) == (6, 6, False, key), doc
    again = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    doc2 = json.loads(again.stdout)
    assert (doc2["resumed"], doc2["already_done"], doc2["ran"]) == (True, 6, 0), doc2
    inc_key = f"cli-inc-{uuid.uuid4().hex}"
    incremental = [*argv[:-3], "--run-key", inc_key, "--incremental", "--json"]
    third = subprocess.run(incremental, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    doc3 = json.loads(third.stdout)
    assert (doc3["kind"], doc3["segments"], doc3["ran"], doc3["escalated"]) == ("incremental", 6, 6, False), doc3
    history = cql.execute("SELECT parent_id, options FROM system_distributed.parent_repair_history", timeout_s=30)
    ours = {str(h["parent_id"]): dict(h["options"] or {}) for h in history}
    assert all(ours[p]["incremental"] == "true" for p in doc3["parent_ids"])  # Cassandra ran them incremental


@pytest.mark.fault(F.NODE_FROZEN, F.FOREIGN_REPAIR_RUNNING)
def test_a_repair_started_by_hand_is_waited_for_named_and_never_collided_with(
    lab: Lab, cluster: ClusterConfig, cql: CqlClient, checkpoints: RepairCheckpoints
) -> None:
    """Issue 19: another tool's repair (here an operator's `nodetool repair` on node2) on the segment's replicas is
    seen before the segment starts, waited for, named in the report, and ours starts only once it is over."""
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS inflight_ks.t (k int PRIMARY KEY, v text)", timeout_s=30)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    node1, node2 = cluster.node("node1"), cluster.node("node2")
    seg = Segment(KS, 0, 10**18, tuple(n.address for n in cluster.nodes), node1.address)
    by_hand = Nodetool(cluster).argv(node2, ["repair", "-full", KS])  # the whole keyspace, coordinated by node2
    lab.freeze("node3")  # holds the operator's session in its prepare phase (Cassandra's 10 s timeout)
    thaw = threading.Timer(3.0, lambda: lab.thaw("node3", wait=False))
    try:
        operator = subprocess.Popen(by_hand, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not [r for r in cql.repairs(node2.address) if r["keyspace_name"] == KS and not r["completed"]]:
            assert time.monotonic() < deadline, "the operator's repair never started inside Cassandra"
            time.sleep(0.1)
        thaw.start()
        key = f"beside-{uuid.uuid4().hex}"
        report = RepairEngine(cluster, cql, checkpoints, EngineConfig(inflight_wait_s=120, poll_s=0.5)).run(key, [seg])
        assert operator.wait(timeout=120) == 0  # the operator's repair was not disturbed
    finally:
        _thawed(lab, thaw)
    assert (report.ran, report.escalated) == (1, False), report
    (theirs,) = [f for f in report.foreign_repairs if f["keyspace"] == KS]
    assert theirs["coordinator"] is not None and node2.address in theirs["coordinator"], theirs
    history = cql.execute(
        "SELECT parent_id, keyspace_name, started_at, finished_at FROM system_distributed.parent_repair_history",
        timeout_s=30,
    )
    ours = [h for h in history if str(h["parent_id"]) in report.parent_ids]
    other = [h for h in history if h["keyspace_name"] == KS and str(h["parent_id"]) == theirs["id"]]
    assert len(ours) == 1 and len(other) == 1, (ours, other)
    assert ours[0]["started_at"] >= other[0]["finished_at"]  # never beside it
