"""The long-running detector of one cluster: probes every second, peers' views, hint counters, metrics,
and the incident deployment started when a node is Confirmed (one incident per episode)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.detection.metrics import DetectorMetrics
from cassandra_recovery.detection.observe import GossipHeartbeats, jmx_counters, peers_seeing_down, probe_all
from cassandra_recovery.logic.detector import (
    ClusterDetector,
    DetectorConfig,
    IncidentTrigger,
    NodeHealth,
    Observation,
)
from cassandra_recovery.logic.detector_counters import DroppedSample, hint_samples
from cassandra_recovery.logic.pending_triggers import Pending, PendingTriggers
from cassandra_recovery.settings import ClusterConfig

log = logging.getLogger(__name__)
TriggerHandler = Callable[[IncidentTrigger, dict[str, Any]], None]


@dataclass
class DetectorLoop:
    cluster: ClusterConfig
    config: DetectorConfig = field(default_factory=DetectorConfig)
    interval_s: float = 1.0
    # Each JMX read is a short-lived JVM (about a second of CPU): every 15 s while a node is not healthy or hints
    # are pending, every minute while all is quiet (dropped mutations of an overloaded node are still seen).
    counters_every_s: float = 15.0
    counters_quiet_every_s: float = 60.0
    on_trigger: TriggerHandler | None = None
    metrics: DetectorMetrics | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.detector = ClusterDetector(self.config, [n.name for n in self.cluster.nodes])
        self.cql = CqlClient(self.cluster, request_timeout_s=2.0, connect_timeout_s=2.0)
        self.gossip = GossipHeartbeats(self.cluster, self.cql, clock=self.clock)
        self._last_counters = -1e9
        self._hints_seen = False  # hints were written between the last two reads
        self._hints_written = 0
        self.triggers: list[IncidentTrigger] = []
        self.pending: PendingTriggers[IncidentTrigger] = PendingTriggers()

    def tick(self) -> list[Any]:
        """One round: probe all nodes, read gossip views from those that answer, feed the state machine."""
        now = self.clock()
        probes = probe_all(self.cluster, self.config.probe_timeout_s)
        reachable = [name for name, p in probes.items() if p.ok]
        try:
            views = self.gossip.sample(reachable)
        except Exception as e:  # the driver can fail in many ways while nodes come and go
            log.warning("gossip views unavailable: %s", e)
            views = {}
        transitions: list[Any] = []
        for node in self.cluster.nodes:
            down, total = peers_seeing_down(views, node.address)
            obs = Observation.from_probe(
                probes[node.name], now, node=node.name, peers_seeing_down=down, peers_total=total
            )
            transitions += self.detector.observe(obs)
        if now - self._last_counters >= self._counters_period() and reachable:
            self._last_counters = now
            self._counters(reachable, now)
        for t in transitions:
            log.warning("%s: %s -> %s (%s)", t.node, t.old, t.new, t.reason)
        self.retry_due(now)
        trigger = self.detector.should_open_incident(now)
        if trigger is not None:
            self.triggers.append(trigger)
            self.offer(trigger, {"probes": {k: v.__dict__ for k, v in probes.items()}, "views": views}, now)
        if self.metrics:
            self.metrics.update(self.detector.snapshot(), probes)
        return transitions

    def offer(self, trigger: IncidentTrigger, evidence: dict[str, Any], now: float) -> None:
        """A confirmed trigger to its handler now; kept for later tries if the handler fails."""
        self._hand_over(Pending(trigger, evidence), now)

    def retry_due(self, now: float) -> None:
        """Offer again the kept triggers whose back-off has passed (oldest first)."""
        for p in self.pending.due(now):
            self._hand_over(p, now)

    def _hand_over(self, p: Pending[IncidentTrigger], now: float) -> None:
        """The trigger to its handler; kept for another try when the handler fails (the detector keeps running)."""
        if self.on_trigger is None:
            return
        try:
            self.on_trigger(p.item, p.context)
        except Exception as e:  # noqa: BLE001 - PostgreSQL or Prefect away: the trigger must not be lost
            delay = self.pending.failed(p, now, f"{type(e).__name__}: {e}")
            log.error(
                "trigger %s %s not handed over (attempt %d: %s); trying again in %.0fs",
                p.item.kind, ",".join(p.item.nodes), p.attempts, p.last_error, delay,
            )  # fmt: skip
            return
        if p.attempts:
            log.warning("trigger %s %s handed over after %d failed attempt(s)", p.item.kind, p.item.nodes, p.attempts)
        self.pending.handed_over(p)

    def _counters_period(self) -> float:
        quiet = not self._hints_seen and all(s == NodeHealth.HEALTHY for s in self.detector.states().values())
        return max(self.counters_every_s, self.counters_quiet_every_s) if quiet else self.counters_every_s

    def _counters(self, nodes: list[str], now: float) -> None:
        targets = [f"{n.address}:7000" for n in self.cluster.nodes]
        samples = jmx_counters(self.cluster, nodes)
        hints = []
        dropped = []
        for name, s in samples.items():
            address = self.cluster.node(name).address
            if s.hints is not None:
                hints += hint_samples(f"{address}:7000", s.hints, now, targets)
            if s.dropped_mutations is not None:
                dropped.append(DroppedSample(name, s.dropped_mutations, now))
        levels = self.detector.observe_hints(hints)
        written = sum(h.created_growth for h in levels.values())  # growth since the detector started
        self._hints_seen, self._hints_written = written > self._hints_written, written
        self.detector.observe_dropped(dropped)

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            started = self.clock()
            self.tick()
            time.sleep(max(0.0, self.interval_s - (self.clock() - started)))

    def close(self) -> None:
        self.cql.close()
