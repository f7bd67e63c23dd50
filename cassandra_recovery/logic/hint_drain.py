"""Watching hint delivery to a returned node until nothing is pending (pure; samples and `now` passed in).

Exact when the counters are there: each coordinator counts the hints it wrote for a target
(`Hints_created-<target>`) and the hints it delivered to it (the count of `Hint_delays-<target>`), both since
its start; delivered >= created with no hint file pending means everything it hinted arrived. Confirmed on
`confirm` consecutive samples. Without counters (JMX unreachable) it falls back to a quiet period: no pending
file and no new hint for `quiet_s` (a file shows in `system_views.pending_hints` only once closed, within one
dispatch round of ~10 s).
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
    confirm: int = 2
    started: float | None = None
    best: int | None = None  # least outstanding work seen (pending files + undelivered hints)
    last_progress: float | None = None
    quiet_since: float | None = None
    balanced: int = 0  # consecutive samples with every hint delivered and no file pending
    last_created: dict[str, int] = field(default_factory=dict)
    history: list[tuple[float, int]] = field(default_factory=list)

    def observe(
        self,
        now: float,
        pending_files: Mapping[str, int],
        created: Mapping[str, int],
        delivered: Mapping[str, int] | None = None,
    ) -> DrainState:
        """Per coordinator, for the target(s): pending hint files, hints created, hints delivered."""
        files = sum(pending_files.values())
        exact = delivered is not None and set(created) <= set(delivered)
        undelivered = sum(max(0, created[c] - delivered[c]) for c in created) if exact and delivered else 0
        outstanding = files + undelivered
        self.history.append((now, outstanding))
        if self.started is None:
            self.started = self.last_progress = now
        grew = any(created.get(c, 0) > self.last_created.get(c, created.get(c, 0)) for c in created)
        self.last_created = {**self.last_created, **created}
        if self.best is None or outstanding < self.best:
            self.best, self.last_progress = outstanding, now
        if exact:
            self.balanced = self.balanced + 1 if outstanding == 0 and not grew else 0
            if self.balanced >= self.confirm:
                return DrainState.DRAINED
        elif files == 0 and not grew:
            self.quiet_since = now if self.quiet_since is None else self.quiet_since
            if now - self.quiet_since >= self.quiet_s:
                return DrainState.DRAINED
            return DrainState.DRAINING
        else:
            self.quiet_since = None
        if grew:
            self.last_progress = now  # new hints for the target: it is not reachable from everyone yet
        assert self.last_progress is not None  # noqa: S101 - set on the first observation
        if outstanding > 0 and now - self.last_progress >= self.stall_s:
            return DrainState.STALLED
        return DrainState.DRAINING
