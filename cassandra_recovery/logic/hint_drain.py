"""Watching hint delivery to a returned node until nothing is pending (pure; samples and `now` passed in).

What a coordinator holds for a target shows in its `system_views.pending_hints` only once the hint file is
closed, which happens within one dispatch round (~10 s) of the target being seen up; hints still in memory are
flushed every `hints_flush_period`. So "drained" needs a quiet period: no pending file for the target on any
coordinator and no new hint written for it (the per-target created counter did not grow) for `quiet_s`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class DrainState(StrEnum):
    DRAINING = "draining"
    DRAINED = "drained"
    STALLED = "stalled"  # pending hints stopped going down: escalate to repair


@dataclass
class DrainTracker:
    quiet_s: float = 25.0
    stall_s: float = 120.0
    started: float | None = None
    best: int | None = None  # fewest pending files seen
    last_progress: float | None = None
    quiet_since: float | None = None
    last_created: dict[str, int] = field(default_factory=dict)
    history: list[tuple[float, int]] = field(default_factory=list)

    def observe(self, now: float, pending_files: Mapping[str, int], created: Mapping[str, int]) -> DrainState:
        """pending_files / created: per coordinator, for the target (missing coordinators count as 0 files)."""
        total = sum(pending_files.values())
        self.history.append((now, total))
        if self.started is None:
            self.started = self.last_progress = now
        grew = any(created.get(c, 0) > self.last_created.get(c, created.get(c, 0)) for c in created)
        self.last_created = {**self.last_created, **created}
        if self.best is None or total < self.best:
            self.best, self.last_progress = total, now
        if total == 0 and not grew:
            self.quiet_since = now if self.quiet_since is None else self.quiet_since
            if now - self.quiet_since >= self.quiet_s:
                return DrainState.DRAINED
            return DrainState.DRAINING
        self.quiet_since = None
        if grew:
            self.last_progress = now  # new hints for the target: it is not reachable from everyone yet
        assert self.last_progress is not None  # noqa: S101 - set on the first observation
        if total > 0 and now - self.last_progress >= self.stall_s:
            return DrainState.STALLED
        return DrainState.DRAINING
