"""Narrowing differing token ranges down to the differing keys; the cost follows the differences.

Each side answers two questions about a token range (start, end]: a cheap summary (row count and a sum,
computed where the data lives: a PostgreSQL aggregate, a Cassandra `count(*)`/`sum(version)` pinned to one
replica) and, only for small ranges, its rows as {key: row hash}. A range whose summaries agree is done; one
that differs is split into `fanout` subranges and summarised again, until it holds at most `leaf_rows` rows
on both sides; then its rows are listed and compared key by key. Pure: the sides are callables, so the walk is
tested on in-memory data and the I/O lives in the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cassandra_recovery.logic.checksum import KeyDiff, diff_keys
from cassandra_recovery.logic.segments import split


def _width(start: int, end: int) -> int:
    return (end - start) % 2**64 or 2**64


Range = tuple[int, int]


@dataclass(frozen=True)
class Summary:
    count: int
    total: int  # a sum over the rows (e.g. of versions, or of row hashes modulo 2^64)


@dataclass
class Side:
    summary: Callable[[int, int], Summary]
    rows: Callable[[int, int], Mapping[str, int]]  # key -> row hash, for a small range


@dataclass
class NarrowingResult:
    diff: KeyDiff
    leaves: list[Range] = field(default_factory=list)  # the smallest ranges that differ
    summaries: int = 0  # summary questions asked of each side
    rows_listed: int = 0  # rows read back by listing leaves (both sides)


def narrow(
    ranges: Iterable[Range], truth: Side, other: Side, fanout: int = 16, leaf_rows: int = 256, max_depth: int = 40
) -> NarrowingResult:
    """Differing keys between `truth` and `other` over `ranges` (start exclusive, end inclusive)."""
    if fanout < 2 or leaf_rows < 1:
        raise ValueError("fanout must be >= 2 and leaf_rows >= 1")
    res = NarrowingResult(KeyDiff([], [], []))
    missing: list[str] = []
    extra: list[str] = []
    different: list[str] = []
    todo = [(r, 0) for r in ranges]
    while todo:
        (start, end), depth = todo.pop()
        a, b = truth.summary(start, end), other.summary(start, end)
        res.summaries += 1
        if a == b:
            continue
        if max(a.count, b.count) > leaf_rows and depth < max_depth and _width(start, end) > fanout:
            todo.extend((sub, depth + 1) for sub in split(start, end, fanout))
            continue
        ra, rb = truth.rows(start, end), other.rows(start, end)
        res.rows_listed += len(ra) + len(rb)
        d = diff_keys(dict(ra), dict(rb))
        if d.missing or d.extra or d.different:
            res.leaves.append((start, end))
        missing += d.missing
        extra += d.extra
        different += d.different
    res.diff = KeyDiff(sorted(missing), sorted(extra), sorted(different))
    res.leaves.sort()
    return res
