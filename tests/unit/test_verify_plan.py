"""Chunks aligned to replica sets, the majority reference, and the fix-or-repair choice."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.murmur3 import MIN_TOKEN
from cassandra_recovery.logic.narrowing import Summary
from cassandra_recovery.logic.replication import TokenRange
from cassandra_recovery.logic.verify_plan import FixMethod, choose_fix, plan_chunks, reference

pytestmark = pytest.mark.area("verification")

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
THIRD = 3074457345618258602
RING = [
    TokenRange(THIRD, -THIRD - 1, (A, B, C)),  # wraps past the top of the ring
    TokenRange(-THIRD - 1, 0, (B, C, A)),
    TokenRange(0, THIRD, (C, A, B)),
]


def test_chunks_cover_each_range_with_its_replicas_and_split_at_the_top_of_the_ring() -> None:
    chunks = plan_chunks(RING, total_rows=None, target_rows=100, per_range=2)
    # the wrapping range becomes (THIRD, MIN] and (MIN, -THIRD-1], two chunks each
    assert len(chunks) == 2 * 4
    assert chunks[1].end == MIN_TOKEN and chunks[2].start == MIN_TOKEN
    assert {c.replicas for c in chunks[:4]} == {(A, B, C)}
    assert [(c.start, c.end) for c in chunks[4:6]] == [(-THIRD - 1, -THIRD // 2 - 1), (-THIRD // 2 - 1, 0)]
    ends = [c.end for c in chunks]
    starts = [c.start for c in chunks]
    assert starts[1:] == ends[:-1]  # contiguous, nothing skipped


def test_chunk_count_follows_the_table_size() -> None:
    assert len(plan_chunks(RING, total_rows=10_000, target_rows=1000, per_range=1)) in (9, 10, 11, 12)
    assert len(plan_chunks(RING, total_rows=0, target_rows=1000)) == 4  # at least one per piece


def test_reference_needs_a_strict_majority() -> None:
    s1, s2 = Summary(10, 1), Summary(9, 2)
    assert reference({A: s1, B: s1, C: s2}) == s1
    assert reference({A: s1, B: s2}) is None
    assert reference({}) is None


def test_a_handful_of_keys_is_fixed_in_place_many_are_repaired() -> None:
    few = choose_fix(bad_keys=25, rows_in_ranges=520, ranges=3, has_truth=True)
    assert few.method == FixMethod.REWRITE_FROM_SOURCE and "25 key(s)" in few.why
    assert choose_fix(25, 520, 3, has_truth=False).method == FixMethod.READ_AT_ALL
    assert choose_fix(101, 1_000_000, 3, has_truth=True).method == FixMethod.REPAIR  # over the key cap
    assert choose_fix(30, 200, 1, has_truth=True).method == FixMethod.REPAIR  # a large share of the rows
    unknown = choose_fix(0, 500, 2, has_truth=True)  # keys not named: only a repair can fix it
    assert unknown.method == FixMethod.REPAIR and "not known" in unknown.why


def test_keys_every_replica_lacks_alike_are_rewritten_whatever_their_number() -> None:
    many = choose_fix(5000, 6000, 3, has_truth=True, replicas_agree=True)
    assert many.method == FixMethod.REWRITE_FROM_SOURCE and "nothing to copy" in many.why
    assert choose_fix(5000, 6000, 3, has_truth=True, replicas_agree=False).method == FixMethod.REPAIR
    assert choose_fix(20_000, 30_000, 3, has_truth=True, replicas_agree=True).method == FixMethod.REPAIR  # too many


def test_repair_scope_of_differing_chunks_once_each_in_token_order() -> None:
    """Found on the two-datacenter lab: the scope was sorted as TokenRange objects, which do not order."""
    from cassandra_recovery.logic.replication import TokenRange
    from cassandra_recovery.verification.service import repair_scope

    ranges = [TokenRange(-100, 0, ("a", "b")), TokenRange(0, 100, ("b", "a")), TokenRange(100, -100, ("a", "b"))]
    chunks = [(50, 70), (-90, -10), (50, 70)]  # two replicas differed in the first chunk
    assert repair_scope("ks", chunks, ranges) == [
        ("ks", TokenRange(-90, -10, ("a", "b"))),
        ("ks", TokenRange(50, 70, ("b", "a"))),
    ]
