"""The detector reads JMX counters (one JVM per read) every minute while the cluster is quiet, and every 15 s
once a node is not healthy or hints are being written: CPU for what matters, not for a healthy cluster."""

from __future__ import annotations

import pytest

from cassandra_recovery.detection import runner
from cassandra_recovery.detection.observe import CounterSample
from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.logic.probe_result import ProbeResult
from cassandra_recovery.parsers.sjk import HintCounters
from cassandra_recovery.settings import ClusterConfig, NodeAccess

pytestmark = pytest.mark.area("detection")

NODES = [NodeAccess(name=f"node{i}", address=f"127.0.0.{240 + i}", jmx_host="127.0.0.1", jmx_port=7199) for i in (1, 2)]
CLUSTER = ClusterConfig(id="unit", contact_points=[NODES[0].address], local_datacenter="dc1", nodes=NODES)


class World:
    def __init__(self) -> None:
        self.now = 0.0
        self.down: set[str] = set()
        self.hints_for_node2 = 0
        self.reads: list[float] = []

    def probes(self, cluster: ClusterConfig, timeout_s: float) -> dict[str, ProbeResult]:
        return {n.name: ProbeResult(n.address, n.name not in self.down, 1.0) for n in cluster.nodes}

    def counters(self, cluster: ClusterConfig, nodes: list[str]) -> dict[str, CounterSample]:
        self.reads.append(self.now)
        created = {f"{NODES[1].address}:7000": self.hints_for_node2}
        hints = HintCounters(self.hints_for_node2, created, {}, 0, 0, 0, 0)
        return {n: CounterSample(n, hints, 0) for n in nodes}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setattr(runner, "probe_all", w.probes)
    monkeypatch.setattr(runner, "jmx_counters", w.counters)
    return w


def _run(loop: DetectorLoop, world: World, until: float) -> None:
    while world.now < until:
        loop.tick()
        world.now += 1.0


def test_quiet_cluster_is_read_every_minute_then_every_15s_once_a_node_is_down_or_hints_grow(world: World) -> None:
    loop = DetectorLoop(CLUSTER, clock=lambda: world.now)
    loop.gossip.sample = lambda observers=None: {}  # type: ignore[method-assign]
    try:
        _run(loop, world, 180)
        assert world.reads == [0.0, 60.0, 120.0]
        world.down = {"node2"}  # probes fail: the node is suspected, then confirmed
        _run(loop, world, 240)
        assert world.reads[3:] == [180.0, 195.0, 210.0, 225.0]
        world.down = set()
        for until in range(255, 316, 15):  # back, but hints are still being written for it
            world.hints_for_node2 += 50
            _run(loop, world, until)
        later = world.reads[7:]
        assert len(later) > 3 and all(b - a == 15.0 for a, b in zip(later, later[1:], strict=False)), world.reads
        _run(loop, world, 600)  # no more hints: quiet again
        assert world.reads[-1] - world.reads[-2] == 60.0, world.reads
    finally:
        loop.close()
