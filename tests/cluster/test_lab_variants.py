"""A separately configured lab: several tokens per node and a short hint window."""

from __future__ import annotations

import socket

import pytest

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.errors import LabError
from cassandra_recovery.lab import procs
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import node_address
from cassandra_recovery.lab.registry import lab_cluster_config
from cassandra_recovery.logic.tokens import balanced_tokens
from cassandra_recovery.parsers.hints import parse_getmaxhintwindow
from cassandra_recovery.parsers.info import parse_info
from cassandra_recovery.parsers.status import parse_status
from cassandra_recovery.settings import ClusterConfig
from tests import faults as F
from tests.migrated import migrated

pytestmark = pytest.mark.area("lab")


def _preview_in_sync(nt: Nodetool, node: str) -> bool | None:
    from cassandra_recovery.parsers.repair import parse_repair

    proc = nt.run(node, "repair", "--preview", "--full", "rf2", timeout_s=120, check=False)
    return parse_repair(proc.stdout, proc.stderr).preview_in_sync


def _scoped_repair_touches_only_the_ranges_node3_replicates(lab: Lab, cluster: ClusterConfig) -> None:
    """node3 misses writes (down, no hints); the scoped repair covers exactly its ranges (a strict subset of the
    ring on RF 2), Cassandra's repair history says so, and a preview repair goes from out of sync to in sync."""
    from cassandra import ConsistencyLevel

    from cassandra_recovery.clients.cql import CqlClient
    from cassandra_recovery.clients.postgres import make_pool
    from cassandra_recovery.lab.postgres import ensure_postgres
    from cassandra_recovery.logic.segments import plan_segments
    from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
    from cassandra_recovery.recovery.repair import RepairEngine
    from cassandra_recovery.recovery.scope import current_scope
    from cassandra_recovery.settings import Settings

    nt = Nodetool(cluster)
    node1, node3 = cluster.node("node1").address, cluster.node("node3").address
    with CqlClient(cluster) as cql:
        lab.freeze("node3")
        for n in ("node1", "node2"):
            nt.run(n, "disablehandoff")  # node3 must miss these writes for good: only a repair brings them
        try:
            lab.wait_seen(lab.node("node3"), up=False)
            for i in range(300):
                cql.execute_on(
                    node1,
                    "INSERT INTO rf2.kv (k, v) VALUES (%s, %s)",
                    (f"r-{i}", "v"),
                    consistency=ConsistencyLevel.ONE,
                )
        finally:
            for n in ("node1", "node2"):
                nt.run(n, "enablehandoff")
            lab.thaw("node3")
        assert _preview_in_sync(nt, "node3") is False  # the divergence is real
        started = cql.execute("SELECT toTimestamp(now()) AS t FROM system.local")[0]["t"]
        scope = current_scope(cluster, cql, "node1", [node3], ["rf2"])
        all_ranges = current_scope(cluster, cql, "node1", [], ["rf2"])
        assert 0 < len(scope) < len(all_ranges)
        segments = plan_segments(scope, segments_per_range=1, avoid=[node3])
        ensure_postgres(Settings())
        pool = make_pool(migrated(Settings()), max_size=2)
        try:
            cp = RepairCheckpoints(pool)
            import uuid

            report = RepairEngine(cluster, cql, cp).run(f"scoped-{uuid.uuid4().hex}", segments)
        finally:
            pool.close()
        assert not report.escalated and report.ran == len(segments), report.as_dict()
        history = cql.execute(
            "SELECT keyspace_name, requested_ranges, successful_ranges, started_at"
            " FROM system_distributed.parent_repair_history",
            timeout_s=30,
        )
        repaired = {
            r
            for h in history
            if h["keyspace_name"] == "rf2" and h["started_at"] >= started
            for r in (h["successful_ranges"] or ())
        }
        assert repaired == {s.range_text for s in segments}
        untouched = {f"({r.start},{r.end}]" for _, r in all_ranges} - {f"({r.start},{r.end}]" for _, r in scope}
        assert untouched and not (untouched & repaired)
        assert _preview_in_sync(nt, "node3") is True


@pytest.mark.own_lab
@pytest.mark.fault(F.NODE_FROZEN, F.REPLICA_MISSED_WRITES)
def test_multi_token_lab_with_short_hint_window(lab: Lab) -> None:
    lab.down()
    lab.up(nodes=3, tokens=4, hint_window="20s")
    with pytest.raises(LabError, match="already up with 3 nodes, 4 token"):
        lab.up(nodes=3, tokens=1)  # a different topology is refused while this one runs
    cluster = lab_cluster_config(lab.config)
    nt = Nodetool(cluster)
    rows = parse_status(nt.output("node1", "status"))
    assert [r.tokens for r in rows] == [4, 4, 4]
    assert all(r.code == "UN" for r in rows)
    expected = balanced_tokens(3, 4)
    for i, node in enumerate(cluster.nodes):
        info = parse_info(nt.output(node.name, "info", "-T"))
        assert sorted(info.tokens) == sorted(expected[i])
        assert parse_getmaxhintwindow(nt.output(node.name, "getmaxhintwindow")) == 20_000
    _replicas_and_cl_impact_match_cassandra(lab, cluster)
    _scoped_repair_touches_only_the_ranges_node3_replicates(lab, cluster)
    lab.down()
    assert not (lab.config.base_dir / "lab.json").exists()


def _replicas_and_cl_impact_match_cassandra(lab: Lab, cluster: ClusterConfig) -> None:
    """Our replica placement equals `nodetool getendpoints`; with two nodes down, exactly the ranges we
    predict lose ONE refuse a CL ONE read (RF 2 keyspace on the 3-node x 4-token lab)."""
    from cassandra import ConsistencyLevel

    from cassandra_recovery.assessment.inputs import ring
    from cassandra_recovery.clients.cql import CqlClient
    from cassandra_recovery.logic.murmur3 import token_of
    from cassandra_recovery.logic.replication import (
        ConsistencyLevel as CL,
    )
    from cassandra_recovery.logic.replication import (
        NetworkTopologyStrategy,
        range_of,
        ranges_at_risk,
        token_ranges,
    )

    nt = Nodetool(cluster)
    node1 = cluster.node("node1").address
    with CqlClient(cluster) as cql:
        cql.execute(
            "CREATE KEYSPACE IF NOT EXISTS rf2 WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2}",
            timeout_s=30,
        )
        cql.execute("CREATE TABLE IF NOT EXISTS rf2.kv (k text PRIMARY KEY, v text)", timeout_s=30)
        ranges = token_ranges(ring(cql, node1), NetworkTopologyStrategy({"dc1": 2}))
        keys = [f"key-{i}" for i in range(12)]
        for k in keys:
            endpoints = {
                ln.strip() for ln in nt.output("node1", "getendpoints", "rf2", "kv", k).splitlines() if ln.strip()
            }
            assert set(range_of(token_of(k), ranges).replicas) == endpoints, k
        lab.freeze("node2")
        lab.freeze("node3")
        try:
            lab.wait_seen(lab.node("node2"), up=False)
            lab.wait_seen(lab.node("node3"), up=False)
            at_risk = ranges_at_risk(ranges, {node1}, {"dc1": 2}, {n.address: "dc1" for n in cluster.nodes}, "dc1")
            lost_one = {(r.start, r.end) for r in at_risk[CL.ONE]}
            assert 0 < len(lost_one) < len(ranges)  # RF 2 with two of three nodes down: some ranges, not all
            for k in keys:
                r = range_of(token_of(k), ranges)
                try:
                    cql.execute_on(
                        node1,
                        "SELECT v FROM rf2.kv WHERE k = %s",
                        (k,),
                        timeout_s=5,
                        consistency=ConsistencyLevel.ONE,
                    )
                    refused = False
                except Exception as e:  # Unavailable, possibly wrapped by the driver's retry to a next host
                    if "Unavailable" not in f"{type(e).__name__} {e}":
                        raise
                    refused = True
                assert refused == ((r.start, r.end) in lost_one), (k, r)
        finally:
            lab.thaw("node2", wait=False)
            lab.thaw("node3", wait=False)
            lab.wait_all_up()


@pytest.mark.ends_shared_lab(2)  # takes down whatever lab is up (the replaced one), saving a lab start
@pytest.mark.fault(F.NODE_FROZEN)
def test_down_leaves_no_process_behind_frozen_ones_included(lab: Lab) -> None:
    if not procs.lab_processes(lab.config.base_dir, lab.config.user_prefix):
        lab.up(nodes=2)
    first = lab.state().spec.nodes[0]
    lab.freeze(first.name)
    assert lab.process(first).frozen  # type: ignore[union-attr]
    stopped = lab.down()
    assert stopped >= 2
    assert procs.lab_processes(lab.config.base_dir, lab.config.user_prefix) == []
    assert lab.down() == 0  # idempotent


@pytest.mark.own_lab
@pytest.mark.allow_log_errors(r"127\.0\.0\.\d+:7000 is in use by another process")  # provoked: node1's port
@pytest.mark.fault(F.NODE_CANNOT_START)
def test_a_node_that_cannot_start_is_reported_with_its_log(lab: Lab) -> None:
    lab.down()
    node1 = node_address(1, lab.config.address_offset)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((node1, 7000))  # node1's storage port is taken
    blocker.listen(1)
    try:
        with pytest.raises(LabError) as err:
            lab.up(nodes=1)
    finally:
        blocker.close()
        lab.down()
    text = str(err.value)
    assert "node1 did not start" in text
    assert "system.log ---" in text
    assert "ERROR" in text and f"/{node1}:7000 is in use by another process" in text
