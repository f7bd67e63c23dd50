"""Hot-spot report on the lab: a key read far more often than the others tops the sample and the findings."""

from __future__ import annotations

import threading

import pytest
from cassandra import ConsistencyLevel

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.detection.hotspots import collect_hotspots
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.logic.hotspots import key_distribution
from cassandra_recovery.settings import ClusterConfig

pytestmark = pytest.mark.area("observation")

KS = "hot_test"
HOT = "hot-key"
COLD = [f"cold-{i:03d}" for i in range(50)]
SAMPLE_MS = 4000


def _schema(cql: CqlClient, datacenter: str) -> None:
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': 3}}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS hot_test.kv (k text PRIMARY KEY, v text)", timeout_s=30)
    cql.session.cluster.control_connection.wait_for_schema_agreement(wait_time=30)


def _seed(cql: CqlClient) -> None:
    # on every replica: the read sampler only counts reads that find a non-empty partition
    for k in [HOT, *COLD]:
        cql.execute(
            f"INSERT INTO {KS}.kv (k, v) VALUES (%s, %s)", (k, f"value of {k}"), consistency=ConsistencyLevel.ALL
        )


class _Workload(threading.Thread):
    """Reads until stopped: 9 of 10 reads go to HOT, the rest round-robin over COLD.

    CL ALL makes every replica, so also the sampled node, execute each read.
    """

    def __init__(self, cql: CqlClient) -> None:
        super().__init__(name="hot-workload", daemon=True)
        self.cql = cql
        self.stop = threading.Event()
        self.started_reading = threading.Event()
        self.reads = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                key = COLD[(self.reads // 10) % len(COLD)] if self.reads % 10 == 0 else HOT
                rows = self.cql.execute(
                    f"SELECT v FROM {KS}.kv WHERE k = %s", (key,), consistency=ConsistencyLevel.ALL, timeout_s=5
                )
                assert rows == [{"v": f"value of {key}"}], (key, rows)
                self.reads += 1
                self.started_reading.set()
                self.stop.wait(0.002)  # ~ a few hundred reads/s: well within the sampler's queue
        except BaseException as e:  # reported by the test
            self.errors.append(e)
            self.started_reading.set()


def test_hot_key_tops_the_sample_and_the_findings(lab: Lab, cluster: ClusterConfig, cql: CqlClient) -> None:
    spec = lab.state().spec
    _schema(cql, spec.datacenter)
    _seed(cql)
    workload = _Workload(cql)
    workload.start()
    try:
        assert workload.started_reading.wait(30)
        report = collect_hotspots(cluster, KS, "kv", SAMPLE_MS, [HOT, *COLD])
    finally:
        workload.stop.set()
        workload.join(30)
    assert not workload.errors, workload.errors
    assert workload.reads > 100

    addresses = {n.address for n in spec.nodes}
    assert report.sampled_node in addresses
    top = report.top_reads[0]
    assert (top.table, top.partition) == (f"{KS}.kv", HOT), report.top_reads
    assert all(s.count * 5 < top.count for s in report.top_reads[1:]), report.top_reads
    hot_findings = [f for f in report.findings if f.startswith(f"partition {HOT} took ")]
    assert len(hot_findings) == 1, report.findings
    assert "sampled reads" in hot_findings[0]

    # RF 3 on 3 nodes: everyone owns everything
    assert report.ownership == dict.fromkeys(addresses, 100.0)
    assert report.ownership_skew == 1.0
    # the ring read from system.local/peers_v2 is the lab's token layout
    ring = [(t, n.address) for n in spec.nodes for t in n.tokens]
    assert report.key_distribution == key_distribution([HOT, *COLD], ring)
    assert report.key_distribution is not None and sum(report.key_distribution.values()) == 1 + len(COLD)
    assert report.as_dict()["top_reads"][0]["partition"] == HOT


def test_unknown_keyspace_or_table_is_a_config_error(lab: Lab, cluster: ClusterConfig, cql: CqlClient) -> None:
    _schema(cql, lab.state().spec.datacenter)
    with pytest.raises(ConfigError, match=r"unknown keyspace 'no_such_ks' in cluster .*known keyspaces: .*hot_test"):
        collect_hotspots(cluster, "no_such_ks", "kv", 1000, None, cql=cql)
    with pytest.raises(ConfigError, match=r"unknown table 'nope' in keyspace hot_test; known tables: kv"):
        collect_hotspots(cluster, KS, "nope", 1000, None, cql=cql)
