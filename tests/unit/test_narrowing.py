"""Narrowing on in-memory sides: exactly the differing keys, with reads that follow the differences."""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import pytest

from cassandra_recovery.logic.checksum import MOD, row_hash, token_chunks
from cassandra_recovery.logic.narrowing import Side, Summary, narrow
from cassandra_recovery.logic.ring import token

pytestmark = pytest.mark.area("verification")


class Table:
    """Rows by token; summary = (count, sum of row hashes mod 2^64), as a side computes where the data is."""

    def __init__(self, rows: Mapping[str, int]):
        items = sorted((token(k), k, h) for k, h in rows.items())
        self.tokens = [t for t, _, _ in items]
        self.items = items

    def _slice(self, start: int, end: int) -> list[tuple[int, str, int]]:
        return self.items[bisect.bisect_right(self.tokens, start) : bisect.bisect_right(self.tokens, end)]

    def side(self) -> Side:
        def summary(start: int, end: int) -> Summary:
            part = self._slice(start, end)
            return Summary(len(part), sum(h for _, _, h in part) % MOD)

        return Side(summary, lambda s, e: {k: h for _, k, h in self._slice(s, e)})


def _rows(n: int) -> dict[str, int]:
    return {f"order-{i:07d}": row_hash(f"order-{i:07d}|v1") for i in range(n)}


def test_ten_bad_keys_among_100k_rows_are_named_reading_under_two_percent() -> None:
    truth = _rows(100_000)
    other = dict(truth)
    missing = ["order-0000007", "order-0031337", "order-0099999"]
    different = ["order-0000100", "order-0050000", "order-0077777", "order-0012345"]
    extra = ["ghost-1", "ghost-2", "ghost-3"]
    for k in missing:
        del other[k]
    for k in different:
        other[k] = row_hash(f"{k}|stale")
    for k in extra:
        other[k] = row_hash(k)
    res = narrow(token_chunks(64), Table(truth).side(), Table(other).side(), fanout=16, leaf_rows=256)
    assert (res.diff.missing, res.diff.extra, res.diff.different) == (sorted(missing), extra, sorted(different))
    assert res.rows_listed <= 0.02 * (len(truth) + len(other)), res.rows_listed
    assert 1 <= len(res.leaves) <= 10


def test_equal_sides_cost_one_summary_per_range_and_list_nothing() -> None:
    t = Table(_rows(5_000))
    res = narrow(token_chunks(8), t.side(), t.side())
    assert (res.summaries, res.rows_listed, res.leaves) == (8, 0, [])


def test_a_small_range_is_listed_directly_and_bad_parameters_are_refused() -> None:
    truth = _rows(100)
    other = {k: v for k, v in truth.items() if k != "order-0000042"}
    res = narrow(token_chunks(1), Table(truth).side(), Table(other).side(), leaf_rows=256)
    assert res.diff.missing == ["order-0000042"] and res.summaries == 1 and res.rows_listed == 199
    with pytest.raises(ValueError):
        narrow(token_chunks(1), Table(truth).side(), Table(other).side(), fanout=1)
