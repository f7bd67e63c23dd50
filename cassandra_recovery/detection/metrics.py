"""Prometheus metrics of the detector: state per node, probe latency, hints per target, dropped mutations."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from cassandra_recovery.logic.detector import NodeHealth
from cassandra_recovery.logic.probe_result import ProbeResult

STATES = [s.value for s in NodeHealth]


class DetectorMetrics:
    def __init__(self, cluster_id: str, registry: CollectorRegistry | None = None):
        self.cluster_id = cluster_id
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            "cr_node_state", "1 for the node's current detector state", ["cluster", "node", "state"], registry=r
        )
        self.latency = Gauge(
            "cr_probe_latency_seconds", "last CQL probe latency (NaN when it failed)", ["cluster", "node"], registry=r
        )
        self.probe_ok = Gauge("cr_probe_up", "1 if the last probe answered", ["cluster", "node"], registry=r)
        self.hints = Gauge(
            "cr_hints_growth", "hints created for a target since the episode began", ["cluster", "target"], registry=r
        )
        self.hint_level = Gauge("cr_hints_level", "0 ok, 1 alert, 2 critical", ["cluster", "target"], registry=r)
        self.dropped = Gauge(
            "cr_dropped_mutations_growth", "dropped mutations since the episode began", ["cluster", "node"], registry=r
        )
        self.incident_open = Gauge(
            "cr_incident_episode_open", "1 while an incident episode is open", ["cluster"], registry=r
        )
        self.heartbeat = Gauge(
            "cr_detector_last_tick_timestamp_seconds", "time of the last detector round", ["cluster"], registry=r
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def update(self, snapshot: Any, probes: dict[str, ProbeResult]) -> None:
        import time

        c = self.cluster_id
        for node, ns in snapshot.nodes.items():
            for s in STATES:
                self.state.labels(c, node, s).set(1.0 if ns.state == s else 0.0)
        for node, p in probes.items():
            self.probe_ok.labels(c, node).set(1.0 if p.ok else 0.0)
            self.latency.labels(c, node).set(p.latency_ms / 1000 if p.latency_ms is not None else float("nan"))
        levels = {"ok": 0, "alert": 1, "critical": 2}
        for target, lvl in snapshot.hints.items():
            self.hints.labels(c, target).set(lvl.created_growth)
            self.hint_level.labels(c, target).set(levels.get(str(lvl.level), 0))
        for node, g in snapshot.dropped_mutations.items():
            self.dropped.labels(c, node).set(g.growth)
        self.incident_open.labels(c).set(1.0 if snapshot.episode_open else 0.0)
        self.heartbeat.labels(c).set(time.time())
