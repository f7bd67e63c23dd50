"""The lab's failure injection, observed the way a production tool would: peers' views and probes."""

from __future__ import annotations

import pytest

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.lab.layout import JMX_BASE_PORT
from cassandra_recovery.parsers.info import parse_info
from cassandra_recovery.settings import ClusterConfig
from tests import faults as F

pytestmark = pytest.mark.area("lab")


def _by_name(lab: Lab) -> dict[str, object]:
    return {s.name: s for s in lab.status()}


def test_three_nodes_up_with_the_promised_topology(lab: Lab, cluster: ClusterConfig, cql: CqlClient) -> None:
    status = lab.status()
    assert [(s.name, s.address, s.state, s.process) for s in status] == [
        ("node1", "127.0.0.2", "UN", "running"),
        ("node2", "127.0.0.3", "UN", "running"),
        ("node3", "127.0.0.4", "UN", "running"),
    ]
    assert [n.jmx_port for n in cluster.nodes] == [JMX_BASE_PORT, JMX_BASE_PORT + 100, JMX_BASE_PORT + 200]
    assert cql.release_version().startswith("5.0.")
    for i, node in enumerate(cluster.nodes):
        local = cql.local(node.address)
        assert local["data_center"] == "dc1"
        assert local["rack"] == f"rack{i % 3 + 1}"
        assert str(local["broadcast_address"]) == node.address
        assert {str(p["peer"]) for p in cql.peers(node.address)} == {n.address for n in cluster.nodes} - {node.address}


def test_nodes_run_as_their_own_unprivileged_users(lab: Lab) -> None:
    for n in lab.state().spec.nodes:
        p = lab.process(n)
        assert p is not None
        uid = int(next(ln.split()[1] for ln in open(f"/proc/{p.pid}/status") if ln.startswith("Uid:")))
        import pwd

        assert pwd.getpwuid(uid).pw_name == n.user
        assert uid != 0


@pytest.mark.fault(F.NODE_FROZEN)
def test_frozen_node_is_seen_down_and_fails_the_probe_then_recovers(lab: Lab) -> None:
    node3 = lab.node("node3")
    lab.freeze("node3")
    lab.wait_seen(node3, up=False)
    st = _by_name(lab)["node3"]
    assert (st.state, st.process) == ("DN", "frozen")  # type: ignore[attr-defined]
    probe = probe_node(node3.address, timeout_s=0.5)
    assert not probe.ok and "timed out" in (probe.error or "")
    lab.thaw("node3")
    st = _by_name(lab)["node3"]
    assert (st.state, st.process) == ("UN", "running")  # type: ignore[attr-defined]
    assert probe_node(node3.address, timeout_s=2.0).ok


@pytest.mark.fault(F.NODE_PARTITIONED)
def test_partitioned_node_is_down_for_peers_while_its_process_lives(lab: Lab, cluster: ClusterConfig) -> None:
    node2 = lab.node("node2")
    pid_before = lab.process(node2).pid  # type: ignore[union-attr]
    lab.partition("node2")
    lab.wait_seen(node2, up=False)
    st = _by_name(lab)["node2"]
    assert (st.state, st.process, st.partitioned) == ("DN", "running", True)  # type: ignore[attr-defined]
    assert lab.process(node2).pid == pid_before  # type: ignore[union-attr]
    info = parse_info(Nodetool(cluster).output("node2", "info"))
    assert (info.gossip_active, info.native_transport_active) == (False, False)
    probe = probe_node(node2.address, timeout_s=0.5)
    assert not probe.ok and "refused" in (probe.error or "").lower()
    lab.heal("node2")
    st = _by_name(lab)["node2"]
    assert (st.state, st.partitioned) == ("UN", False)  # type: ignore[attr-defined]
    assert probe_node(node2.address, timeout_s=2.0).ok


@pytest.mark.fault(F.NODE_KILLED)
def test_killed_node_is_down_and_starts_again_with_its_data(lab: Lab, cql: CqlClient) -> None:
    node3 = lab.node("node3")
    host_id = cql.local(node3.address)["host_id"]
    lab.kill("node3")
    lab.wait_seen(node3, up=False)
    assert _by_name(lab)["node3"].process == "stopped"  # type: ignore[attr-defined]
    lab.start("node3")
    assert _by_name(lab)["node3"].state == "UN"  # type: ignore[attr-defined]
    cql.rediscover()
    assert _wait_local(cql, node3.address)["host_id"] == host_id  # same node identity: data dir kept


def _wait_local(cql: CqlClient, address: str) -> dict[str, object]:
    import time

    from cassandra_recovery.errors import NodeUnreachableError

    deadline = time.monotonic() + 60
    while True:
        try:
            return cql.local(address)
        except NodeUnreachableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.fault(F.NODE_FROZEN, F.FLOW_RUN_CRASHED)
def test_a_node_frozen_by_an_injector_that_dies_is_thawed_by_the_faults_guardian(lab: Lab) -> None:
    """The chaos injector's promise on a real node: the process that froze node3 is killed with the fault in
    force; its guardian (a process of its own session) thaws the node."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os, signal
        from cassandra_recovery.chaos.injector import FaultInjector
        inj = FaultInjector()
        with inj.freeze("node3"):
            lab = inj._lab()
            pid = lab.process(lab.node("node3")).pid
            print(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    child = subprocess.run([sys.executable, "-c", script], timeout=120, check=False, capture_output=True, text=True)
    assert (child.returncode, child.stdout.strip()) == (-9, "T"), child.stderr[-2000:]  # killed with node3 stopped
    lab.wait_seen(lab.node("node3"), up=True)  # thawed by the guardian, not by this test
    st = _by_name(lab)["node3"]
    assert (st.state, st.process) == ("UN", "running")  # type: ignore[attr-defined]
