"""Before a segment: wait while its replicas take part in any repair; never start beside one started elsewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cassandra_recovery.clients.repair_activity import RepairActivity
from cassandra_recovery.contracts import ForeignRepairDoc
from cassandra_recovery.logic.foreign_repairs import Busy, OwnRepairs, RunningRepair, replicas_verdict
from cassandra_recovery.logic.segments import Segment

log = logging.getLogger(__name__)


@dataclass
class SegmentGate:
    """Remembers which repairs are the engine's own (the ranges of every segment it reached, the ids it learned) and
    which foreign ones it saw, each once, as JSON documents for the run's report."""

    activity: RepairActivity
    # This tool's other runs' segments in flight (checkpoints): a scheduled segment is not another tool's repair.
    elsewhere: Callable[[], Iterable[Segment]] | None = None
    own_ranges: set[tuple[str, str]] = field(default_factory=set)
    seen: dict[str, ForeignRepairDoc] = field(default_factory=dict)

    def wait_until_free(
        self,
        seg: Segment,
        own_ids: Iterable[str],
        wait_s: float,
        poll_s: float,
        progress: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> str | None:
        """None once no replica takes part in a repair (ours or anyone's); else, at the deadline, the reason, which
        names the foreign repairs (the segment is not started, the run escalates)."""
        self.own_ranges.add((seg.keyspace, seg.range_text))
        deadline = clock() + wait_s
        while True:
            own = OwnRepairs(frozenset(own_ids), frozenset(self.own_ranges | self._elsewhere()))
            verdict = replicas_verdict(self.activity.observe(seg.replicas), seg.replicas, own)
            self.note(verdict.foreign)
            if verdict.busy is Busy.FREE:
                return None
            if clock() > deadline:
                return f"replicas {list(verdict.nodes)} still repairing after {wait_s:.0f}s: {verdict.reason()}"
            progress(f"{seg.key}: waiting: {verdict.reason()}")
            sleep(poll_s)

    def _elsewhere(self) -> set[tuple[str, str]]:
        if self.elsewhere is None:
            return set()
        try:
            return {(s.keyspace, s.range_text) for s in self.elsewhere()}
        except Exception as e:  # without them, such a segment is only named foreign: it is waited for all the same
            log.warning("this tool's other repairs in flight not read: %s", e)
            return set()

    def note(self, foreign: Sequence[RunningRepair]) -> None:
        for r in foreign:
            self.seen.setdefault(r.id, r.as_doc())

    def foreign_seen(self) -> list[ForeignRepairDoc]:
        return list(self.seen.values())
