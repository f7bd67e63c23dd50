"""A CQL client limited to some hosts opens no pool to the others (a hung node would hold every session open
for the whole connect timeout), and contacts only them."""

from __future__ import annotations

import pytest
from cassandra import DriverException
from cassandra.policies import HostDistance
from cassandra.pool import Host

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.errors import ConfigError, NodeUnreachableError
from cassandra_recovery.settings import ClusterConfig, NodeAccess
from tests import faults as F

pytestmark = pytest.mark.area("detection")

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
CLUSTER = ClusterConfig(
    id="unit",
    contact_points=["127.0.0.2", "127.0.0.4"],
    local_datacenter="dc1",
    nodes=[NodeAccess(name=f"node{i + 1}", address=a, datacenter="dc1") for i, a in enumerate(ADDRESSES)],
)


def _distances(client: CqlClient) -> dict[str, HostDistance]:
    policy = client._cluster.profile_manager.default.load_balancing_policy
    factory = client._cluster.conviction_policy_factory
    hosts = [Host(a, factory, datacenter="dc1", rack="rack1") for a in ADDRESSES]
    policy.populate(client._cluster, hosts)
    return {h.address: policy.distance(h) for h in hosts}


@pytest.mark.fault(F.NODE_FROZEN)
def test_a_client_limited_to_live_hosts_ignores_the_hung_one() -> None:
    client = CqlClient(CLUSTER, hosts=["127.0.0.2", "127.0.0.3"])
    try:
        assert client._cluster.contact_points == ["127.0.0.2"]  # the configured contact point that is allowed
        d = _distances(client)
        assert d["127.0.0.4"] == HostDistance.IGNORED  # no pool: nothing to wait for
        assert d["127.0.0.2"] == d["127.0.0.3"] == HostDistance.LOCAL
    finally:
        client.close()


def test_without_a_limit_every_host_gets_a_pool_and_an_empty_limit_is_refused() -> None:
    client = CqlClient(CLUSTER)
    try:
        assert client._cluster.contact_points == ["127.0.0.2", "127.0.0.4"]
        assert set(_distances(client).values()) == {HostDistance.LOCAL}
    finally:
        client.close()
    only = CqlClient(CLUSTER, hosts=["127.0.0.3"])  # no configured contact point allowed: the allowed host itself
    try:
        assert only._cluster.contact_points == ["127.0.0.3"]
    finally:
        only.close()
    with pytest.raises(ConfigError, match="no host"):
        CqlClient(CLUSTER, hosts=[])


class _RefusingThenRefreshing:
    """The driver's Cluster while its control connection reconnects: refresh_nodes refuses, then works."""

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.calls = 0

    def refresh_nodes(self) -> None:
        self.calls += 1
        if self.calls <= self.refusals:
            raise DriverException("Node list was not refreshed. See log for details.")

    def shutdown(self) -> None:
        pass


def test_rediscover_retries_while_the_control_connection_reconnects_then_names_the_cluster() -> None:
    client = CqlClient(CLUSTER)
    client._cluster.shutdown()
    client._cluster = _RefusingThenRefreshing(refusals=2)  # type: ignore[assignment]
    client.rediscover(timeout_s=5)
    assert client._cluster.calls == 3  # type: ignore[attr-defined]
    client._cluster = _RefusingThenRefreshing(refusals=1000)  # type: ignore[assignment]
    with pytest.raises(NodeUnreachableError, match="cluster unit: node list not refreshed"):
        client.rediscover(timeout_s=0)
