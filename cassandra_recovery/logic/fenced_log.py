"""Checks over the fenced log of side effects: one run acting at a time, and no repair session claimed by two
runs. Pure: the caller reads the log (`SideEffectLog.entries`) and passes the intervals in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Interval:
    holder: str
    action: str
    start: datetime
    end: datetime | None  # None: still open (or never closed): it extends without end
    session: str | None = None  # the repair session (parent id) the action started, when one did

    def overlaps(self, other: Interval) -> bool:
        starts_before_other_ends = other.end is None or self.start < other.end
        return starts_before_other_ends and (self.end is None or other.start < self.end)


def overlapping_runs(intervals: Sequence[Interval]) -> list[tuple[Interval, Interval]]:
    """Pairs of actions by two different runs whose intervals overlap (touching ends do not)."""
    ordered = sorted(intervals, key=lambda i: i.start)
    out = []
    for n, a in enumerate(ordered):
        for b in ordered[n + 1 :]:
            if a.end is not None and b.start >= a.end:
                continue
            if a.holder != b.holder and a.overlaps(b):
                out.append((a, b))
    return out


def sessions_started_by_two_runs(intervals: Iterable[Interval]) -> dict[str, set[str]]:
    """Each repair session that more than one run's action claims, with those runs."""
    runs: dict[str, set[str]] = defaultdict(set)
    for i in intervals:
        if i.session:
            runs[i.session].add(i.holder)
    return {s: h for s, h in runs.items() if len(h) > 1}
