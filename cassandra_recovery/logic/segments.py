"""Repair segmentation and scheduling (pure): token ranges split into subrange segments, one repair per node.

A segment is what one `nodetool repair -st START -et END KEYSPACE` repairs: the tokens t with START < t <= END,
inside one ring range, so every replica holds all of it and any replica can coordinate it (a node that does
not replicate a range answers "Nothing to repair"). Ranges that wrap past the top of the ring are cut at the
ring's end first: (start, MIN] (Cassandra's "to the end of the ring") and (MIN, end].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.tokens import MAX_TOKEN, MIN_TOKEN, RING_SIZE


class SegmentState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # attempts exhausted: escalated, never retried automatically


@dataclass(frozen=True)
class Segment:
    keyspace: str
    start: int  # exclusive
    end: int  # inclusive; MIN_TOKEN means "to the end of the ring"
    replicas: tuple[str, ...]  # every replica takes part in the repair (placement order)
    coordinator: str  # the replica the repair is started on

    @property
    def range_text(self) -> str:
        """The range as Cassandra prints it (repair output, repair history): "(start,end]"."""
        return f"({self.start},{self.end}]"

    @property
    def key(self) -> str:
        return f"{self.keyspace}:{self.start}:{self.end}"


def _width(start: int, end: int) -> int:
    return (end - start) % RING_SIZE or RING_SIZE


def unwrap(start: int, end: int) -> list[tuple[int, int]]:
    """(start, end] as pieces that do not cross the top of the ring; (x, MIN] already ends there."""
    if end == MIN_TOKEN or start < end:
        return [(start, end)]
    if start == MIN_TOKEN:  # (MIN, MIN] with start == end: the whole ring
        return [(MIN_TOKEN, MIN_TOKEN)] if start == end else [(start, end)]
    return [(start, MIN_TOKEN), (MIN_TOKEN, end)]


def split(start: int, end: int, pieces: int) -> list[tuple[int, int]]:
    """(start, end] cut into `pieces` contiguous subranges of near-equal width (fewer if the range is narrower)."""
    if pieces < 1:
        raise ValueError(f"pieces must be >= 1, got {pieces}")
    width = _width(start, end)
    n = min(pieces, width)
    bounds = [start + (width * i) // n for i in range(n + 1)]
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        a_tok, b_tok = _wrap_token(a), _wrap_token(b)
        out.append((a_tok, b_tok))
    return out


def _wrap_token(t: int) -> int:
    """A position past the top of the ring folded back; the ring's end is written MIN (Cassandra's marker)."""
    return (t - MIN_TOKEN) % RING_SIZE + MIN_TOKEN


def plan_segments(
    scope: Iterable[tuple[str, TokenRange]],
    segments_per_range: int = 1,
    avoid: Iterable[str] = (),
) -> list[Segment]:
    """Segments for (keyspace, range) pairs, in ring order; the coordinator is the first replica not in `avoid`.

    Ranges with a single replica are left out."""
    avoided = set(avoid)
    out: list[Segment] = []
    for keyspace, rng in scope:
        if not rng.replicas:
            raise ValueError(f"range {rng} of {keyspace} has no replicas")
        if len(rng.replicas) < 2:
            continue  # one copy: nothing to compare it with (Cassandra itself answers "No repair is needed")
        coordinator = next((r for r in rng.replicas if r not in avoided), rng.replicas[0])
        for a, b in unwrap(rng.start, rng.end):
            for s, e in split(a, b, segments_per_range):
                out.append(Segment(keyspace, s, e, tuple(rng.replicas), coordinator))
    return out


def next_runnable(pending: Sequence[Segment], busy_nodes: Iterable[str]) -> Segment | None:
    """The first pending segment none of whose replicas is repairing now (at most one repair per node)."""
    busy = set(busy_nodes)
    return next((s for s in pending if not busy.intersection(s.replicas)), None)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    reason: str


def after_failure(attempts: int, max_attempts: int, error: str) -> RetryDecision:
    """Retry a failed or timed-out segment until `max_attempts` attempts were made, then escalate."""
    if attempts < max_attempts:
        return RetryDecision(True, f"attempt {attempts} of {max_attempts} failed ({error}); retrying")
    return RetryDecision(False, f"{attempts} attempts failed, last: {error}; escalating instead of retrying")


def clip(ranges: Iterable[TokenRange], start: int, end: int) -> list[TokenRange]:
    """The parts of `ranges` inside (start, end] (either may wrap), each keeping its replicas: how an operator's
    "repair this range" becomes segments that each stay inside one replica set."""
    wanted = [(a, MAX_TOKEN if b == MIN_TOKEN else b) for a, b in unwrap(start, end)]
    out = []
    for r in ranges:
        for a, b in unwrap(r.start, r.end):
            top = MAX_TOKEN if b == MIN_TOKEN else b
            for wa, wb in wanted:
                lo, hi = max(a, wa), min(top, wb)
                if lo < hi:
                    out.append(TokenRange(lo, hi, r.replicas))
    return out
