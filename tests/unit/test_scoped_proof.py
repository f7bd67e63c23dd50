"""The outage-scoped proof's pure decisions: the window's margins, and the chunks that cover the changed keys
(every changed key in exactly one chunk, inside its ring range, neighbours merged only when cheaper)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN
from cassandra_recovery.logic.replication import SimpleStrategy, TokenRange, token_ranges
from cassandra_recovery.logic.scoped_proof import (
    Margins,
    commitlog_loss_s,
    full_pass_cost,
    group_tokens,
    missed_since,
)

pytestmark = pytest.mark.area("verification")

RING = token_ranges(
    [(-(2**62), "10.0.0.1", "dc1", "r1"), (0, "10.0.0.2", "dc1", "r1"), (2**62, "10.0.0.3", "dc1", "r1")],
    SimpleStrategy(2),
)


def test_the_window_opens_before_the_first_sighting_by_every_margin() -> None:
    seen = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    m = Margins(observation_gap_s=60, write_timeout_s=2, commitlog_loss_s=10, clock_skew_s=0.5)
    assert missed_since(seen, m) == datetime(2026, 12, 7, 11, 58, 47, 500000, tzinfo=UTC)


def test_commitlog_loss_follows_the_sync_mode() -> None:
    assert commitlog_loss_s("periodic", 10000, 0) == 10.0
    assert commitlog_loss_s("batch", 10000, 0) == 0.0
    assert commitlog_loss_s("GROUP", 10000, 15) == 0.015
    assert commitlog_loss_s("something-new", 10000, 0) == 10.0  # unknown: the worst of the known ones


def test_keys_far_apart_get_a_chunk_each_holding_only_their_token() -> None:
    tokens = [-(2**63) + 5, -(2**61), 7, 2**61, MAX_TOKEN]
    got = group_tokens(tokens, RING, rows_per_token=1e-12, merge_rows=100)
    assert got is not None and got.keys == 5
    assert [(c.start, c.end) for c in got.chunks] == [(t - 1, t) for t in tokens]
    assert got.estimated_rows == 5.0


def test_neighbours_merge_while_cheaper_but_never_across_a_ring_range() -> None:
    density = 1e-3  # rows per token
    tokens = [-10, -5, 1000, 10**9]  # -10 and -5: 5 tokens apart (0.005 rows), 1000: 1005 apart (1.005 rows)
    got = group_tokens(tokens, RING, rows_per_token=density, merge_rows=1.0)
    assert got is not None
    assert [(c.start, c.end) for c in got.chunks] == [(-11, -5), (999, 1000), (10**9 - 1, 10**9)]
    # -5 is in the range ending at 0, 1000 in the one ending at 2**62: a chunk has one replica set
    assert got.chunks[0].replicas != got.chunks[1].replicas


def test_the_wrapping_range_is_cut_at_the_top_of_the_ring() -> None:
    tokens = [MIN_TOKEN + 1, 2**62 + 10, MAX_TOKEN]  # both ends of the wrapping range (2**62, -2**62]
    got = group_tokens(tokens, RING, rows_per_token=0.0, merge_rows=1e30)
    assert got is not None
    assert [(c.start, c.end) for c in got.chunks] == [(MIN_TOKEN, MIN_TOKEN + 1), (2**62 + 9, MAX_TOKEN)]


def test_gives_up_when_a_full_pass_is_cheaper() -> None:
    tokens = [i * 2**50 for i in range(-2000, 2000)]  # 4,000 keys, about a million rows apart: a chunk each
    density = 1e-9
    small = full_pass_cost(total_rows=2**64 // 10**9, chunks=1000, merge_rows=2000)  # 18 billion rows
    assert group_tokens(tokens, RING, rows_per_token=density, merge_rows=2000, give_up_above=small) is not None
    tiny = full_pass_cost(total_rows=1_000_000, chunks=50, merge_rows=2000)  # 4,000 reads cost more than this
    assert group_tokens(tokens, RING, rows_per_token=density, merge_rows=2000, give_up_above=tiny) is None


@given(
    tokens=st.lists(st.integers(min_value=MIN_TOKEN + 1, max_value=MAX_TOKEN), min_size=1, max_size=60),
    density=st.sampled_from([0.0, 1e-15, 1e-9, 1.0]),
    merge=st.sampled_from([0.0, 10.0, 1e6]),
)
def test_every_changed_key_is_in_exactly_one_chunk_inside_its_ring_range(
    tokens: list[int], density: float, merge: float
) -> None:
    ordered = sorted(tokens)
    got = group_tokens(ordered, RING, rows_per_token=density, merge_rows=merge)
    assert got is not None and got.keys == len(ordered)
    for t in set(ordered):
        holders = [c for c in got.chunks if TokenRange(c.start, c.end, ()).contains(t)]
        assert len(holders) == 1, (t, got.chunks)
        ring_range = next(r for r in RING if r.contains(t))
        assert holders[0].replicas == ring_range.replicas
        assert ring_range.contains(holders[0].end) and (
            holders[0].start == ring_range.start or ring_range.contains(holders[0].start)
        )


def test_a_merged_range_never_holds_more_rows_than_one_read_may_keep_in_memory() -> None:
    tokens = list(range(1, 101))  # 100 neighbouring keys, all worth merging
    got = group_tokens(tokens, RING, rows_per_token=1.0, merge_rows=1e9, max_rows=30)
    assert got is not None and got.keys == 100
    assert [c.end - c.start for c in got.chunks] == [30, 30, 30, 10]


def test_a_configuration_over_the_memory_budget_is_refused_naming_what_to_change() -> None:
    from pydantic import ValidationError

    from cassandra_recovery.settings import VerificationConfig

    VerificationConfig()  # the defaults fit
    with pytest.raises(ValidationError, match="over memory_budget_mib 256: lower rows_per_chunk or workers"):
        VerificationConfig(rows_per_chunk=200_000, workers=4)
    VerificationConfig(rows_per_chunk=200_000, workers=4, memory_budget_mib=2048)
