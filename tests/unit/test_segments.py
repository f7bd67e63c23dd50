"""Repair segmentation: coverage without gaps or overlaps, the wrap-around range, scheduling and retries."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.replication import NetworkTopologyStrategy, TokenRange, ranges_replicated_by, token_ranges
from cassandra_recovery.logic.segments import Segment, after_failure, next_runnable, plan_segments, split, unwrap
from cassandra_recovery.logic.tokens import MIN_TOKEN, RING_SIZE, balanced_tokens
from tests import faults as F

pytestmark = pytest.mark.area("repair")

MAX = 2**63 - 1


def _covered(pieces: list[tuple[int, int]]) -> int:
    return sum((e - s) % RING_SIZE or RING_SIZE for s, e in pieces)


def test_plain_range_splits_into_contiguous_pieces_of_near_equal_width() -> None:
    pieces = split(0, 1000, 3)
    assert pieces == [(0, 333), (333, 666), (666, 1000)]
    assert _covered(pieces) == 1000


def test_a_range_narrower_than_the_piece_count_gives_one_piece_per_token() -> None:
    assert split(10, 12, 5) == [(10, 11), (11, 12)]
    with pytest.raises(ValueError):
        split(0, 10, 0)


def test_wrapping_range_is_cut_at_the_ring_end_written_min() -> None:
    assert unwrap(MAX - 10, MIN_TOKEN + 10) == [(MAX - 10, MIN_TOKEN), (MIN_TOKEN, MIN_TOKEN + 10)]
    # (x, MIN] already ends at the top of the ring: Cassandra's own "to the end" range, left alone
    assert unwrap(3074457345618258602, MIN_TOKEN) == [(3074457345618258602, MIN_TOKEN)]
    # a single-token ring (t, t] is the whole ring
    assert _covered(unwrap(5, 5)) == RING_SIZE


def test_segments_of_a_multi_token_ring_cover_it_exactly_once_and_never_wrap() -> None:
    ring = [(t, f"10.0.0.{i + 1}", "dc1", f"rack{i + 1}") for i, ts in enumerate(balanced_tokens(3, 4)) for t in ts]
    ranges = token_ranges(ring, NetworkTopologyStrategy({"dc1": 2}))
    segs = plan_segments([("ks", r) for r in ranges], segments_per_range=3)
    assert len(segs) >= 3 * len(ranges)
    assert _covered([(s.start, s.end) for s in segs]) == RING_SIZE
    for s in segs:
        assert s.end == MIN_TOKEN or s.start < s.end  # no piece crosses the top of the ring
        assert s.coordinator in s.replicas
        owner = next(r for r in ranges if r.contains(s.end if s.end != MIN_TOKEN else MAX))
        assert owner.replicas == s.replicas  # each segment lies inside one ring range
    assert len({s.key for s in segs}) == len(segs)


def test_scope_of_one_node_on_rf2_is_only_the_ranges_it_replicates() -> None:
    ring = [(t, f"10.0.0.{i + 1}", "dc1", f"rack{i + 1}") for i, ts in enumerate(balanced_tokens(3, 4)) for t in ts]
    ranges = token_ranges(ring, NetworkTopologyStrategy({"dc1": 2}))
    mine = ranges_replicated_by(ranges, ["10.0.0.3"])
    assert 0 < len(mine) < len(ranges)
    segs = plan_segments([("ks", r) for r in mine], avoid=["10.0.0.3"])
    assert all("10.0.0.3" in s.replicas and s.coordinator != "10.0.0.3" for s in segs)


def test_coordinator_falls_back_to_the_primary_when_every_replica_is_avoided() -> None:
    r = TokenRange(0, 100, ("a", "b"))
    assert plan_segments([("ks", r)], avoid=["a", "b"])[0].coordinator == "a"
    with pytest.raises(ValueError):
        plan_segments([("ks", TokenRange(0, 100, ()))])
    assert plan_segments([("ks", TokenRange(0, 100, ("a",)))]) == []  # RF 1: nothing to repair against


def test_next_runnable_keeps_one_repair_per_node() -> None:
    s1 = Segment("ks", 0, 10, ("a", "b"), "a")
    s2 = Segment("ks", 10, 20, ("b", "c"), "b")
    s3 = Segment("ks", 20, 30, ("c", "d"), "c")
    assert next_runnable([s1, s2, s3], busy_nodes=[]) == s1
    assert next_runnable([s1, s2, s3], busy_nodes=["a"]) == s2
    assert next_runnable([s1, s2, s3], busy_nodes=["b"]) == s3
    assert next_runnable([s1, s2], busy_nodes=["b"]) is None


@pytest.mark.fault(F.REPAIR_SEGMENT_STUCK)
def test_retries_are_capped_then_escalated() -> None:
    assert after_failure(1, 3, "timed out").retry
    assert after_failure(2, 3, "timed out").retry
    last = after_failure(3, 3, "timed out")
    assert not last.retry and "escalating" in last.reason and "timed out" in last.reason
    assert Segment("ks", 1, MIN_TOKEN, ("a",), "a").range_text == f"(1,{MIN_TOKEN}]"


def test_table_names_are_validated_identifiers() -> None:
    from cassandra_recovery.clients.cql import table_name
    from cassandra_recovery.errors import ConfigError

    assert table_name("shop", "orders") == "shop.orders"
    for bad in ("Shop", "shop; DROP", "1ks", ""):
        with pytest.raises(ConfigError):
            table_name(bad, "orders")


def test_clip_keeps_the_replicas_of_each_part_and_handles_wrapping() -> None:
    from cassandra_recovery.logic.replication import TokenRange
    from cassandra_recovery.logic.segments import clip
    from cassandra_recovery.logic.tokens import MAX_TOKEN, MIN_TOKEN

    ring = [TokenRange(100, -100, ("a",)), TokenRange(-100, 0, ("b",)), TokenRange(0, 100, ("c",))]
    assert clip(ring, -50, 50) == [TokenRange(-50, 0, ("b",)), TokenRange(0, 50, ("c",))]
    # an operator's wrapping range: (90, -90] crosses the top of the ring inside a's range
    assert clip(ring, 90, -90) == [
        TokenRange(100, MAX_TOKEN, ("a",)),
        TokenRange(MIN_TOKEN, -100, ("a",)),
        TokenRange(-100, -90, ("b",)),
        TokenRange(90, 100, ("c",)),
    ]
    assert clip(ring, 10, 10) == clip(ring, 10, 10)  # (x, x] is the whole ring
    assert sum(r.width() for r in clip(ring, 10, 20)) == 10
