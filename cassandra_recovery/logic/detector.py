"""Partition detector decisions (pure): node health from probes and peers' views, incident episodes, counters.

Per node: HEALTHY -> SUSPECTED on any symptom (failed or slow probe, a peer seeing it DOWN); SUSPECTED ->
CONFIRMED after `confirm_failures` consecutive failed probes, or as many consecutive observations in which a
majority of its peers see it DOWN (reachable by the client but not by its peers: a partition); SUSPECTED ->
HEALTHY on a clean observation; CONFIRMED -> RECOVERING on the first clean one; RECOVERING -> HEALTHY after
`recover_clean_probes` more; RECOVERING -> CONFIRMED on a failed probe (a flap) or on the peers' evidence.
A clean observation is a probe answered within `suspect_latency_ms` with no peer seeing the node DOWN, so a
node confirmed by its peers recovers only once they see it UP again.

Incidents come in episodes: the first confirmed node triggers "open", a node confirmed later in the same
episode "join"; a node confirmed again (a flap) triggers nothing. The episode ends once every node has been
HEALTHY for `incident_cooldown_s`, or when the caller marks the incident closed; hint and dropped-mutation
growth count from the end of the previous episode (before any: from the first sample), so hints written
while a partition builds up, before anything is confirmed, count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cassandra_recovery.logic.detector_counters import CounterBook, CounterGrowth, DroppedSample, HintLevel, HintSample
from cassandra_recovery.logic.probe_result import ProbeResult


class NodeHealth(StrEnum):
    HEALTHY = "healthy"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    RECOVERING = "recovering"


class IncidentKind(StrEnum):
    OPEN = "open"  # the first confirmed node(s) of an episode: open an incident
    JOIN = "join"  # more nodes confirmed during the open episode: re-assess the open incident


@dataclass(frozen=True)
class DetectorConfig:
    probe_timeout_s: float = 0.5  # for the caller's probe_node(timeout_s=...)
    suspect_latency_ms: float = 300.0  # an answer slower than this is a symptom, not a failure
    confirm_failures: int = 3  # consecutive failed probes (or peer-majority observations) that confirm
    recover_clean_probes: int = 5  # consecutive clean observations while RECOVERING that make it HEALTHY
    hint_alert: int = 1000  # hints created for one target since the episode began, over all coordinators
    hint_critical: int = 10_000
    incident_cooldown_s: float = 300.0  # every node HEALTHY this long ends the episode

    def __post_init__(self) -> None:
        for name in ("probe_timeout_s", "suspect_latency_ms", "incident_cooldown_s"):
            if not (value := getattr(self, name)) > 0:  # also rejects NaN
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("confirm_failures", "recover_clean_probes", "hint_alert"):
            if (value := getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.hint_critical <= self.hint_alert:
            raise ValueError(f"hint_critical ({self.hint_critical}) must be above hint_alert ({self.hint_alert})")
        if self.suspect_latency_ms >= self.probe_timeout_s * 1000:
            raise ValueError(
                f"suspect_latency_ms ({self.suspect_latency_ms:g}) must be below the probe timeout "
                f"({self.probe_timeout_s * 1000:g} ms): a probe would time out before it counts as slow"
            )


@dataclass(frozen=True)
class Observation:
    node: str
    at: float
    probe_ok: bool
    latency_ms: float | None
    error: str | None = None
    peers_seeing_down: int = 0  # peers whose gossip view (nodetool status) has the node DOWN
    peers_total: int = 0  # peers whose view was read

    def __post_init__(self) -> None:
        if not 0 <= self.peers_seeing_down <= self.peers_total:
            raise ValueError(
                f"need 0 <= peers_seeing_down <= peers_total, got {self.peers_seeing_down}/{self.peers_total}"
            )

    @classmethod
    def from_probe(
        cls, probe: ProbeResult, at: float, *, node: str | None = None, peers_seeing_down: int = 0, peers_total: int = 0
    ) -> Observation:
        name = probe.address if node is None else node
        return cls(name, at, probe.ok, probe.latency_ms, probe.error, peers_seeing_down, peers_total)


@dataclass(frozen=True)
class Transition:
    node: str
    old: NodeHealth
    new: NodeHealth
    at: float
    reason: str


@dataclass(frozen=True)
class IncidentTrigger:
    kind: IncidentKind
    nodes: tuple[str, ...]  # confirmed since the last trigger
    reasons: tuple[str, ...]  # why each of `nodes` was confirmed, in the same order
    at: float
    episode_nodes: tuple[str, ...]  # every node triggered in this episode, these included


@dataclass(frozen=True)
class NodeSnapshot:
    state: NodeHealth
    since: float | None  # when it entered `state`; None: HEALTHY from the start
    consecutive_failures: int
    peer_down_streak: int  # consecutive observations with a majority of peers seeing it DOWN
    clean_streak: int  # consecutive clean observations while RECOVERING
    flaps: int  # RECOVERING -> CONFIRMED transitions
    last_latency_ms: float | None
    last_error: str | None
    last_at: float | None
    suspected_at: float | None = None  # when this episode's first failed probe was seen (kept while unhealthy)


@dataclass(frozen=True)
class DetectorSnapshot:
    nodes: dict[str, NodeSnapshot]
    hints: dict[str, HintLevel]  # by target
    dropped_mutations: dict[str, CounterGrowth]  # by node
    episode_open: bool
    episode_nodes: tuple[str, ...]
    pending_nodes: tuple[str, ...]  # confirmed, not yet returned by should_open_incident()
    all_healthy_since: float | None  # None while some node is not HEALTHY (or none ever was unhealthy)


@dataclass
class _Node:  # NodeSnapshot's fields, mutable
    state: NodeHealth = NodeHealth.HEALTHY
    since: float | None = None
    consecutive_failures: int = 0
    peer_down_streak: int = 0
    clean_streak: int = 0
    flaps: int = 0
    last_latency_ms: float | None = None
    last_error: str | None = None
    last_at: float | None = None
    suspected_at: float | None = None


class ClusterDetector:
    """Not thread-safe: one loop feeds it. Observations older than a node's latest one are ignored."""

    def __init__(self, config: DetectorConfig | None, nodes: Iterable[str]) -> None:
        self.config = config or DetectorConfig()
        names = list(nodes)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one node and no duplicates, got {names}")
        self._nodes = {name: _Node() for name in names}
        self._unhealthy: set[str] = set()
        self._all_healthy_since: float | None = None
        self._episode_open = False
        self._reported: set[str] = set()
        self._pending: dict[str, str] = {}  # node -> reason it was confirmed
        self.counters = CounterBook(self.config)

    def states(self) -> dict[str, NodeHealth]:
        return {name: node.state for name, node in self._nodes.items()}

    def observe(self, obs: Observation) -> list[Transition]:
        node = self._nodes.get(obs.node)
        if node is None:
            raise ValueError(f"unknown node {obs.node!r}; the detector watches {sorted(self._nodes)}")
        if node.last_at is not None and obs.at < node.last_at:
            return []  # a slow probe reporting after a newer one: its news is stale
        self._expire(obs.at)
        cfg = self.config
        failed = not obs.probe_ok
        slow = obs.probe_ok and obs.latency_ms is not None and obs.latency_ms > cfg.suspect_latency_ms
        majority = 2 * obs.peers_seeing_down > obs.peers_total > 0
        clean = not failed and not slow and obs.peers_seeing_down == 0
        node.consecutive_failures = node.consecutive_failures + 1 if failed else 0
        node.peer_down_streak = node.peer_down_streak + 1 if majority else 0
        node.last_latency_ms, node.last_error, node.last_at = obs.latency_ms, obs.error, obs.at
        out: list[Transition] = []
        if node.state is NodeHealth.HEALTHY and not clean:
            self._move(obs, NodeHealth.SUSPECTED, _symptoms(obs, slow, cfg), out)
        if node.state is NodeHealth.SUSPECTED:
            if confirm := self._confirm_reason(node, obs):
                self._move(obs, NodeHealth.CONFIRMED, confirm, out)
            elif clean:
                self._move(obs, NodeHealth.HEALTHY, f"clean probe ({_ms(obs)}), no peer sees it DOWN", out)
        elif node.state is NodeHealth.CONFIRMED:
            if clean:
                node.clean_streak = 0
                self._move(obs, NodeHealth.RECOVERING, f"first clean probe ({_ms(obs)}) since confirmed", out)
        elif node.state is NodeHealth.RECOVERING:
            if failed:
                node.flaps += 1
                self._move(obs, NodeHealth.CONFIRMED, f"probe failed while recovering (flap): {obs.error}", out)
            elif confirm := self._confirm_reason(node, obs):
                node.flaps += 1
                self._move(obs, NodeHealth.CONFIRMED, f"{confirm} while recovering (flap)", out)
            elif clean:
                node.clean_streak += 1
                if node.clean_streak >= cfg.recover_clean_probes:
                    self._move(obs, NodeHealth.HEALTHY, f"{node.clean_streak} consecutive clean probes", out)
            else:
                node.clean_streak = 0  # slow, or a peer still sees it DOWN: start counting again
        return out

    def should_open_incident(self, now: float) -> IncidentTrigger | None:
        """A trigger for the nodes confirmed since the last call that this episode has not reported yet."""
        self._expire(now)
        if not self._pending:
            return None
        kind = IncidentKind.JOIN if self._episode_open else IncidentKind.OPEN
        nodes = tuple(sorted(self._pending))
        reasons = tuple(self._pending[n] for n in nodes)
        self._episode_open = True
        self._reported.update(nodes)
        self._pending.clear()
        return IncidentTrigger(kind, nodes, reasons, now, tuple(sorted(self._reported)))

    def mark_incident_closed(self, now: float) -> None:
        """End the episode now. A node still CONFIRMED triggers again only when it is confirmed anew."""
        self._expire(now)
        if self._episode_open:
            self._end_episode()

    def observe_hints(self, samples: Iterable[HintSample]) -> dict[str, HintLevel]:
        """Hint levels per target after these samples (see hint_samples() to build them from HintCounters)."""
        return self.counters.add_hints(samples)

    def observe_dropped(self, samples: Iterable[DroppedSample]) -> dict[str, CounterGrowth]:
        return self.counters.add_dropped(samples)

    def snapshot(self) -> DetectorSnapshot:
        return DetectorSnapshot(
            {name: NodeSnapshot(**vars(n)) for name, n in self._nodes.items()},
            self.counters.hint_levels(),
            self.counters.dropped_growth(),
            self._episode_open,
            tuple(sorted(self._reported)),
            tuple(sorted(self._pending)),
            self._all_healthy_since,
        )

    # --- internals --------------------------------------------------------------------------------------------

    def _confirm_reason(self, node: _Node, obs: Observation) -> str:
        need, parts = self.config.confirm_failures, []
        if node.consecutive_failures >= need:
            parts.append(f"{node.consecutive_failures} consecutive failed probes (last: {obs.error})")
        if node.peer_down_streak >= need:
            tail = " while the client reaches it (partition symptom)" if obs.probe_ok else ""
            parts.append(
                f"peers: {obs.peers_seeing_down} of {obs.peers_total} see it DOWN"
                f" for {node.peer_down_streak} consecutive observations{tail}"
            )
        return "; ".join(parts)

    def _move(self, obs: Observation, new: NodeHealth, reason: str, out: list[Transition]) -> None:
        node = self._nodes[obs.node]
        out.append(Transition(obs.node, node.state, new, obs.at, reason))
        node.state, node.since = new, obs.at
        if new in (NodeHealth.SUSPECTED, NodeHealth.CONFIRMED) and node.suspected_at is None:
            node.suspected_at = obs.at
        if new is NodeHealth.HEALTHY:
            node.suspected_at = None
            self._unhealthy.discard(obs.node)
            if not self._unhealthy:
                self._all_healthy_since = obs.at
        else:
            self._unhealthy.add(obs.node)
            self._all_healthy_since = None
        if new is NodeHealth.CONFIRMED and obs.node not in self._reported:
            self._pending.setdefault(obs.node, reason)

    def _expire(self, now: float) -> None:
        since = self._all_healthy_since
        if self._episode_open and since is not None and now - since >= self.config.incident_cooldown_s:
            self._end_episode()

    def _end_episode(self) -> None:
        self._episode_open = False
        self._reported.clear()
        self.counters.rebase()


def _symptoms(obs: Observation, slow: bool, cfg: DetectorConfig) -> str:
    parts = []
    if not obs.probe_ok:
        parts.append(f"probe failed: {obs.error}")
    if slow:
        parts.append(f"slow probe: {_ms(obs)} > {cfg.suspect_latency_ms:g} ms")
    if obs.peers_seeing_down:
        parts.append(f"{obs.peers_seeing_down} of {obs.peers_total} peers see it DOWN")
    return "; ".join(parts)


def _ms(obs: Observation) -> str:
    return "no latency" if obs.latency_ms is None else f"{obs.latency_ms:.0f} ms"
