"""Hints for a down replica, seen through each coordinator's JMX counters, then delivered after thaw."""

from __future__ import annotations

import time

import pytest
from cassandra import ConsistencyLevel

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.jmx import JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.murmur3 import MIN_TOKEN
from cassandra_recovery.parsers.hints import parse_listpendinghints
from cassandra_recovery.settings import ClusterConfig
from cassandra_recovery.verification.replica import ReplicaReader
from cassandra_recovery.verification.tables import generic_spec
from tests import faults as F

pytestmark = pytest.mark.area("hints")

KS = "lab_tests"
WRITES_PER_COORDINATOR = 150


def _schema(cql: CqlClient) -> None:
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}"
    )
    cql.execute("CREATE TABLE IF NOT EXISTS lab_tests.hinted (k int PRIMARY KEY, v text)")


@pytest.mark.fault(F.NODE_FROZEN)
def test_hints_accumulate_for_a_frozen_node_and_drain_after_thaw(
    lab: Lab, cluster: ClusterConfig, cql: CqlClient
) -> None:
    _schema(cql)
    metrics = JmxMetrics(cluster)
    node3 = lab.node("node3")
    coordinators = ["node1", "node2"]
    before = {c: metrics.hint_counters(c) for c in coordinators}

    lab.freeze("node3")
    lab.wait_seen(node3, up=False)
    for i, coord in enumerate(coordinators):
        addr = cluster.node(coord).address
        for k in range(WRITES_PER_COORDINATOR):
            cql.execute_on(
                addr,
                f"INSERT INTO {KS}.hinted (k, v) VALUES (%s, %s)",
                (i * 10_000 + k, f"written via {coord}"),
                consistency=ConsistencyLevel.ONE,
            )
    during = {c: metrics.hint_counters(c) for c in coordinators}
    for c in coordinators:
        grown = during[c].created_for(node3.address) - before[c].created_for(node3.address)
        # one hint per mutation this coordinator could not deliver to node3
        assert grown == WRITES_PER_COORDINATOR, (c, grown)
        assert during[c].total_hints - before[c].total_hints == WRITES_PER_COORDINATOR
        assert during[c].not_stored_for(node3.address) == before[c].not_stored_for(node3.address)

    lab.thaw("node3")
    nodetool = Nodetool(cluster)
    deadline = time.monotonic() + 120
    while True:
        after = {c: metrics.hint_counters(c) for c in coordinators}
        delivered = {c: after[c].succeeded - before[c].succeeded for c in coordinators}
        pending = {c: parse_listpendinghints(nodetool.output(c, "listpendinghints")) for c in coordinators}
        if all(delivered[c] >= WRITES_PER_COORDINATOR and not pending[c] for c in coordinators):
            break
        assert time.monotonic() < deadline, f"hints not drained: delivered={delivered} pending={pending}"
        time.sleep(2)
    for c in coordinators:
        assert cql.execute_on(cluster.node(c).address, "SELECT * FROM system_views.pending_hints") == []
        assert after[c].failed == before[c].failed
    # node3's own copy (RF 3: the whole ring), read from it as the query trace proves: every hinted write is there
    replicas = [n.address for n in cluster.nodes]
    own = ReplicaReader(cql, generic_spec(cql, KS, "hinted")).rows(MIN_TOKEN, MIN_TOKEN, node3.address, replicas)
    written = {str(i * 10_000 + k) for i in range(len(coordinators)) for k in range(WRITES_PER_COORDINATOR)}
    assert written <= set(own), sorted(written - set(own))[:10]
