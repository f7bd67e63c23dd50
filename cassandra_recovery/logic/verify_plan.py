"""Pure planning for verification: chunks aligned to replica sets, the reference without a source of truth,
and whether a handful of bad keys is fixed in place or repaired."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.segments import split, unwrap


@dataclass(frozen=True)
class Chunk:
    start: int  # exclusive
    end: int  # inclusive
    replicas: tuple[str, ...]

    @property
    def range(self) -> tuple[int, int]:
        return (self.start, self.end)


def plan_chunks(
    ranges: Iterable[TokenRange], total_rows: int | None, target_rows: int, per_range: int = 4
) -> list[Chunk]:
    """Chunks inside ring ranges (so every chunk has one replica set), about `target_rows` rows each when the
    table's size is known (`per_range` chunks per range otherwise)."""
    if target_rows < 1 or per_range < 1:
        raise ValueError("target_rows and per_range must be >= 1")
    pieces = [(a, b, r.replicas) for r in ranges for a, b in unwrap(r.start, r.end)]
    if not pieces:
        return []
    ring = sum(_width(a, b) for a, b, _ in pieces)
    wanted = None if total_rows is None else max(1, -(-total_rows // target_rows))
    out = []
    for a, b, reps in pieces:
        n = per_range if wanted is None else max(1, round(wanted * _width(a, b) / ring))
        out += [Chunk(s, e, reps) for s, e in split(a, b, n)]
    return out


def _width(a: int, b: int) -> int:
    return (b - a) % 2**64 or 2**64


def reference(summaries: Mapping[str, object]) -> object | None:
    """Without a source of truth, the copy most replicas agree on; None when no strict majority exists."""
    if not summaries:
        return None
    value, n = Counter(summaries.values()).most_common(1)[0]
    return value if n * 2 > len(summaries) else None


class FixMethod(StrEnum):
    REWRITE_FROM_SOURCE = "rewrite_from_source"  # the source of truth's rows written at CL ALL
    READ_AT_ALL = "read_at_all"  # a CL ALL read of each key: blocking read repair writes the newest copy back
    REPAIR = "repair"  # a full repair of the differing ranges


@dataclass(frozen=True)
class FixChoice:
    method: FixMethod
    why: str


def choose_fix(
    bad_keys: int, rows_in_ranges: int, ranges: int, has_truth: bool, max_keys: int = 100, replicas_agree: bool = False
) -> FixChoice:
    """A key rewrite costs one write per bad key; a repair builds merkle trees over every row of the ranges on
    every replica. Fix in place only for a handful of keys that are a small share of the ranges' rows, unless
    the replicas agree with one another (a repair has nothing to copy) and only the source of truth has them."""
    if has_truth and replicas_agree and 0 < bad_keys <= max_keys * 100:
        return FixChoice(
            FixMethod.REWRITE_FROM_SOURCE,
            f"{bad_keys} key(s) differ from PostgreSQL on every replica alike (the preview finds the replicas in"
            " sync): a repair has nothing to copy, so they are rewritten from the source of truth at CL ALL",
        )
    if bad_keys == 0:
        return FixChoice(FixMethod.REPAIR, "the differing keys are not known: repairing the differing ranges")
    in_place = FixMethod.REWRITE_FROM_SOURCE if has_truth else FixMethod.READ_AT_ALL
    how = "rewritten from the source of truth at CL ALL" if has_truth else "read at CL ALL (read repair)"
    if bad_keys <= max_keys and bad_keys * 10 <= max(rows_in_ranges, 1):
        return FixChoice(
            in_place,
            f"{bad_keys} key(s) {how}: {bad_keys} single-key operations instead of a repair of {ranges} range(s)"
            f" holding ~{rows_in_ranges} rows",
        )
    return FixChoice(
        FixMethod.REPAIR,
        f"{bad_keys} differing key(s) among ~{rows_in_ranges} rows of {ranges} range(s): more than {max_keys} keys"
        " or over a tenth of the rows, so a repair of the ranges is cheaper than fixing keys one by one",
    )
