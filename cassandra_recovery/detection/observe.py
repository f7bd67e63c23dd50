"""Observations of a cluster: parallel client probes, each node's gossip view of its peers, JMX counters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.jmx import JmxMetrics
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.errors import CommandError, NodeUnreachableError, ParseError
from cassandra_recovery.logic.probe_result import ProbeResult
from cassandra_recovery.parsers.sjk import HintCounters
from cassandra_recovery.parsers.status import parse_status
from cassandra_recovery.settings import ClusterConfig

log = logging.getLogger(__name__)


def status_views(cluster: ClusterConfig, observers: list[str], timeout_s: float = 30.0) -> dict[str, dict[str, str]]:
    """{observer: {address: UN/DN/...}} from each observer's own `nodetool status` (its failure detector), all
    observers at once (each call is a JVM); an observer whose nodetool fails is left out."""
    nt = Nodetool(cluster)

    def one(name: str) -> dict[str, str] | None:
        try:
            return {r.address: r.code for r in parse_status(nt.output(name, "status", timeout_s=timeout_s))}
        except (CommandError, ParseError):
            return None

    with ThreadPoolExecutor(max_workers=max(1, len(observers))) as pool:
        got = dict(zip(observers, pool.map(one, observers), strict=True))
    return {name: v for name, v in got.items() if v is not None}


def probe_all(cluster: ClusterConfig, timeout_s: float = 0.5) -> dict[str, ProbeResult]:
    """One probe per node, all at once, so a hung node costs one timeout, not one per node."""
    with ThreadPoolExecutor(max_workers=max(1, len(cluster.nodes))) as pool:
        futures = {n.name: pool.submit(probe_node, n.address, cluster.port, timeout_s) for n in cluster.nodes}
        return {name: f.result() for name, f in futures.items()}


class GossipHeartbeats:
    """Which peers each node sees as down: a peer whose gossip heartbeat, read from the observer's own
    `system_views.gossip_info`, has not advanced for `stale_after_s` (heartbeats advance every second)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        cql: CqlClient,
        stale_after_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cluster = cluster
        self.cql = cql
        self.stale_after_s = stale_after_s
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[int, int, float]] = {}  # (observer, peer) -> (gen, hb, changed_at)

    def sample(self, observers: list[str] | None = None) -> dict[str, dict[str, bool]]:
        """{observer: {peer address: seen_up}} for every observer that answered."""
        now = self.clock()
        views: dict[str, dict[str, bool]] = {}
        for node in self.cluster.nodes:
            if observers is not None and node.name not in observers:
                continue
            try:
                rows = self.cql.execute_on(
                    node.address, "SELECT address, generation, heartbeat FROM system_views.gossip_info", timeout_s=1.0
                )
            except NodeUnreachableError:
                continue
            view: dict[str, bool] = {}
            for r in rows:
                peer = str(r["address"])
                if peer == node.address:
                    continue
                gen, hb = int(r["generation"] or 0), int(r["heartbeat"] or 0)
                key = (node.name, peer)
                prev = self._seen.get(key)
                if prev is None or (gen, hb) != prev[:2]:
                    self._seen[key] = (gen, hb, now)
                    view[peer] = True  # advanced since the last sample (or first sight)
                else:
                    view[peer] = now - prev[2] < self.stale_after_s
            views[node.name] = view
        return views


def peers_seeing_down(views: dict[str, dict[str, bool]], address: str) -> tuple[int, int]:
    """(observers seeing `address` down, observers that reported on it)."""
    reports = [v[address] for obs, v in views.items() if address in v]
    return sum(1 for up in reports if not up), len(reports)


@dataclass(frozen=True)
class CounterSample:
    node: str
    hints: HintCounters | None
    dropped_mutations: int | None
    error: str | None = None


def jmx_counters(cluster: ClusterConfig, nodes: list[str], timeout_s: float = 10.0) -> dict[str, CounterSample]:
    """Hint counters and dropped mutations of each given node (each read is one nodetool JVM)."""
    jmx = JmxMetrics(cluster)
    out: dict[str, CounterSample] = {}

    def one(name: str) -> CounterSample:
        try:
            return CounterSample(name, jmx.hint_counters(name), jmx.dropped_mutations(name))
        except (CommandError, ParseError) as e:
            return CounterSample(name, None, None, str(e).splitlines()[0])

    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: never more JVMs than that at once
        for s in pool.map(one, nodes):
            out[s.node] = s
    return out


def jmx_answers(cluster: ClusterConfig, node: str, timeout_s: float = 8.0) -> bool | None:
    """Whether the node's JMX answers (`nodetool info`): a partitioned node answers, a hung one times out,
    a dead one refuses. None when nodetool itself cannot be run."""
    from cassandra_recovery.clients.nodetool import Nodetool

    try:
        Nodetool(cluster).output(node, "info", timeout_s=timeout_s)
        return True
    except CommandError as e:
        # A refused login is an answer from a live JVM, but says nothing of its health: cannot tell, not "no".
        return None if jmx_login_refused(e.stdout + e.stderr) else False
    except OSError:
        return None


# What nodetool prints when JMX refuses its login (Cassandra 5.0: no credentials, or wrong ones).
_LOGIN_REFUSED = ("Authentication failed", "Invalid username or password", "Credentials required")


def jmx_login_refused(output: str) -> bool:
    """Whether nodetool's output says JMX refused the login (a misconfigured jmx_password_file), not the node."""
    return any(m in output for m in _LOGIN_REFUSED)
