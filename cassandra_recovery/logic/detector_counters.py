"""Restart-aware growth of the partition detector's counters: hints per (coordinator, target), dropped mutations.

Cassandra's counters only grow while the process lives and start again from 0 when it restarts, so a value
lower than the previous sample means a restart; growth then continues from 0 (Prometheus' `increase()` rule).
What a node counted between its last sample and its restart is lost, and a restart whose new count already
exceeds the old one by the next sample cannot be seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cassandra_recovery.parsers.sjk import HintCounters


class HintThresholds(Protocol):
    """What the hint levels need of the detector's configuration (DetectorConfig has both)."""

    @property
    def hint_alert(self) -> int: ...

    @property
    def hint_critical(self) -> int: ...


PairKey = tuple[str, str]  # (coordinator, target)


@dataclass(frozen=True)
class CounterGrowth:
    growth: int  # increase since the baseline sample, restarts included
    restarted: bool  # the counter went down at least once: its process restarted
    samples: int


class RunningCounter:
    """Folds the samples of one counter; samples older than the last one are ignored (a late reply)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.last_at: float | None = None
        self.growth = 0
        self.restarted = False
        self.samples = 0

    def add(self, value: int, at: float) -> bool:
        if value < 0:
            raise ValueError(f"a counter cannot be negative, got {value}")
        if self.last_at is not None and at < self.last_at:
            return False
        if self.last is not None:
            self.restarted |= value < self.last
            self.growth += value - self.last if value >= self.last else value
        self.last, self.last_at = value, at
        self.samples += 1
        return True

    def rebase(self) -> None:
        """A new episode: growth counts from the last sample on."""
        self.growth, self.restarted, self.samples = 0, False, min(self.samples, 1)

    def result(self) -> CounterGrowth:
        return CounterGrowth(self.growth, self.restarted, self.samples)


@dataclass(frozen=True)
class HintSample:
    coordinator: str
    target: str  # "address:port", as in HintCounters
    created_total: int  # Hints_created-<target> on the coordinator
    not_stored_total: int  # Hints_not_stored-<target>: dropped because the target was down past the hint window
    at: float

    def __post_init__(self) -> None:
        if self.created_total < 0 or self.not_stored_total < 0:
            raise ValueError(f"hint counters cannot be negative: {self}")


def hint_samples(coordinator: str, counters: HintCounters, at: float, targets: Iterable[str] = ()) -> list[HintSample]:
    """One sample per target of the coordinator's counters, plus `targets` ("address:port", e.g. every node):
    Cassandra registers a target's counter at its first hint, so pass them all to give each a 0 baseline.
    A coordinator never hints itself: a target at the coordinator's address is left out."""
    keys = sorted(t for t in {*counters.created, *counters.not_stored, *targets} if t.rsplit(":", 1)[0] != coordinator)
    return [HintSample(coordinator, t, counters.created.get(t, 0), counters.not_stored.get(t, 0), at) for t in keys]


class HintSeverity(StrEnum):
    OK = "ok"
    ALERT = "alert"
    CRITICAL = "critical"


@dataclass(frozen=True)
class HintLevel:
    target: str
    level: HintSeverity  # created_growth against hint_alert / hint_critical (reached = that level)
    created_growth: int  # summed over coordinators
    not_stored_growth: int
    not_stored_grew: bool  # writes the target will never get from hints: it needs a repair
    coordinator_restarted: bool
    restarted_coordinators: tuple[str, ...]
    coordinators: tuple[str, ...]


class HintSeries:
    """Running growth of one (coordinator, target) pair."""

    def __init__(self) -> None:
        self.created = RunningCounter()
        self.not_stored = RunningCounter()

    def add(self, sample: HintSample) -> bool:
        if self.created.last_at is not None and sample.at < self.created.last_at:
            return False
        self.created.add(sample.created_total, sample.at)
        self.not_stored.add(sample.not_stored_total, sample.at)
        return True

    def rebase(self) -> None:
        self.created.rebase()
        self.not_stored.rebase()

    @property
    def restarted(self) -> bool:
        return self.created.restarted or self.not_stored.restarted


def severity(growth: int, config: HintThresholds) -> HintSeverity:
    if growth >= config.hint_critical:
        return HintSeverity.CRITICAL
    return HintSeverity.ALERT if growth >= config.hint_alert else HintSeverity.OK


def levels_of(series: Mapping[PairKey, HintSeries], config: HintThresholds) -> dict[str, HintLevel]:
    by_target: dict[str, list[tuple[str, HintSeries]]] = {}
    for (coordinator, target), s in sorted(series.items()):
        by_target.setdefault(target, []).append((coordinator, s))
    out: dict[str, HintLevel] = {}
    for target, rows in by_target.items():
        created = sum(s.created.growth for _, s in rows)
        not_stored = sum(s.not_stored.growth for _, s in rows)
        restarted = tuple(c for c, s in rows if s.restarted)
        coords = tuple(c for c, _ in rows)
        level = severity(created, config)
        out[target] = HintLevel(target, level, created, not_stored, not_stored > 0, bool(restarted), restarted, coords)
    return out


def hint_levels(
    samples_by_pair: Mapping[PairKey, Iterable[HintSample]], config: HintThresholds
) -> dict[str, HintLevel]:
    """Per target: growth since each pair's first sample (samples are ordered by `at`), summed over coordinators."""
    series: dict[PairKey, HintSeries] = {}
    for pair, samples in samples_by_pair.items():
        s = series[pair] = HintSeries()
        for sample in sorted(samples, key=lambda x: x.at):
            if (sample.coordinator, sample.target) != pair:
                raise ValueError(f"sample of {(sample.coordinator, sample.target)} filed under {pair}")
            s.add(sample)
    return levels_of(series, config)


@dataclass(frozen=True)
class DroppedSample:
    node: str
    mutations_total: int  # e.g. dropped_messages(text)["MUTATION_REQ"]
    at: float


def dropped_growth(samples_by_node: Mapping[str, Iterable[DroppedSample]]) -> dict[str, CounterGrowth]:
    """Dropped mutations per node since its first sample, restart-aware."""
    out: dict[str, CounterGrowth] = {}
    for node, samples in sorted(samples_by_node.items()):
        counter = RunningCounter()
        for sample in sorted(samples, key=lambda x: x.at):
            if sample.node != node:
                raise ValueError(f"sample of {sample.node!r} filed under {node!r}")
            counter.add(sample.mutations_total, sample.at)
        out[node] = counter.result()
    return out


class CounterBook:
    """Running hint series per (coordinator, target) and dropped-mutation counters per node, for one episode."""

    def __init__(self, config: HintThresholds) -> None:
        self.config = config
        self._hints: dict[PairKey, HintSeries] = {}
        self._dropped: dict[str, RunningCounter] = {}

    def add_hints(self, samples: Iterable[HintSample]) -> dict[str, HintLevel]:
        for sample in samples:
            self._hints.setdefault((sample.coordinator, sample.target), HintSeries()).add(sample)
        return self.hint_levels()

    def hint_levels(self) -> dict[str, HintLevel]:
        return levels_of(self._hints, self.config)

    def add_dropped(self, samples: Iterable[DroppedSample]) -> dict[str, CounterGrowth]:
        for sample in samples:
            self._dropped.setdefault(sample.node, RunningCounter()).add(sample.mutations_total, sample.at)
        return self.dropped_growth()

    def dropped_growth(self) -> dict[str, CounterGrowth]:
        return {node: counter.result() for node, counter in sorted(self._dropped.items())}

    def rebase(self) -> None:
        """A new episode: growth counts from each series' last sample on."""
        for series in self._hints.values():
            series.rebase()
        for counter in self._dropped.values():
            counter.rebase()
