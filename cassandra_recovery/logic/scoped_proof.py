"""The outage-scoped proof's decisions (pure): from when a node may have missed writes, and which small token
ranges cover the keys the source of truth changed since then.

The window opens at the last observation that showed the node healthy (the outage as first seen, minus the gap
between two observations), minus the write request timeout (a mutation sent before may still have been in flight),
minus what its commit log may lose on a crash (acknowledged writes not yet synced), minus the clock skew between
the clocks that dated the outage and the change log. Changes are dated at commit, so a transaction that began
before the window and committed inside it is inside it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.verify_plan import Chunk


@dataclass(frozen=True)
class Margins:
    """Seconds subtracted from the first sighting of an outage, each for its own reason (see the module doc)."""

    observation_gap_s: float
    write_timeout_s: float
    commitlog_loss_s: float
    clock_skew_s: float

    def total_s(self) -> float:
        return self.observation_gap_s + self.write_timeout_s + self.commitlog_loss_s + self.clock_skew_s


def missed_since(outage_seen: datetime, margins: Margins) -> datetime:
    """The earliest commit time of a change a node down since `outage_seen` may have missed."""
    return outage_seen - timedelta(seconds=margins.total_s())


def commitlog_loss_s(sync: str, period_ms: int, group_window_ms: int) -> float:
    """Acknowledged writes a crash can lose: up to one sync period in `periodic` mode, one window in `group`
    mode, none in `batch` mode (an unknown mode counts as periodic)."""
    mode = sync.strip().lower()
    if mode == "batch":
        return 0.0
    if mode == "group":
        return group_window_ms / 1000
    return period_ms / 1000


@dataclass(frozen=True)
class ScopedChunks:
    chunks: list[Chunk]
    keys: int  # changed keys (tokens) covered
    estimated_rows: float  # rows of the table inside the chunks, from the table's size (uniform tokens)


def group_tokens(
    tokens: Iterable[int],
    ranges: Sequence[TokenRange],
    rows_per_token: float,
    merge_rows: float,
    give_up_above: float | None = None,
    max_rows: float | None = None,
) -> ScopedChunks | None:
    """Chunks (t0 - 1, tn] covering the ascending `tokens`, each inside one ring range (one replica set).

    Neighbouring tokens share a chunk while the rows expected between them (their distance times
    `rows_per_token`) are at most `merge_rows`, about what one more traced read costs, and the chunk stays within
    `max_rows` (what one read may hold in memory). None as soon as the
    estimated cost (rows read plus `merge_rows` per chunk) passes `give_up_above`: a full pass is cheaper."""
    ordered = sorted(ranges, key=lambda r: r.end)
    ends = [r.end for r in ordered]
    chunks: list[Chunk] = []
    keys = in_chunk = 0
    rows = 0.0
    first = last = 0
    current: TokenRange | None = None

    def flush() -> None:
        nonlocal rows
        if current is not None:
            chunks.append(Chunk(first - 1, last, current.replicas))
            rows += max(float(in_chunk), (last - first + 1) * rows_per_token)

    for t in tokens:
        i = bisect.bisect_left(ends, t)
        r = ordered[i if i < len(ordered) else 0]
        keys += 1
        fits = max_rows is None or (t - first + 1) * rows_per_token <= max_rows and in_chunk < max_rows
        if current is r and _same_piece(r, last, t) and (t - last) * rows_per_token <= merge_rows and fits:
            last, in_chunk = t, in_chunk + 1
            continue
        flush()
        current, first, last, in_chunk = r, t, t, 1
        if give_up_above is not None and rows + merge_rows * len(chunks) > give_up_above:
            return None
    flush()
    if give_up_above is not None and rows + merge_rows * len(chunks) > give_up_above:
        return None
    return ScopedChunks(chunks, keys, rows)


def _same_piece(r: TokenRange, a: int, b: int) -> bool:
    """a <= b both in r: not on either side of the ring's top (a wrapping range holds both ends of the ring)."""
    return not r.wraps or (a > r.start) == (b > r.start)


def full_pass_cost(total_rows: int, chunks: int, merge_rows: float) -> float:
    """The full pass's cost in the same unit: every row, plus one traced read's worth per chunk."""
    return total_rows + merge_rows * chunks
