"""The convergence verdict: converged only when every replica's every chunk is proven equal to the truth."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.convergence import ReplicaChunk, Verdict, judge
from cassandra_recovery.logic.narrowing import Summary

pytestmark = pytest.mark.area("verification")

A, B = (0, 10), (10, 20)
TRUTH = {A: Summary(5, 100), B: Summary(3, 7)}


def ok(s: Summary) -> ReplicaChunk:
    return ReplicaChunk(s, proven=True)


def test_all_replicas_proven_equal_is_converged() -> None:
    r = judge(TRUTH, {"n1": {A: ok(TRUTH[A]), B: ok(TRUTH[B])}, "n2": {A: ok(TRUTH[A])}})
    assert (r.verdict, r.rows_compared, r.mismatches, r.unverified) == (Verdict.CONVERGED, 13, [], [])


def test_a_differing_chunk_names_replica_and_range() -> None:
    r = judge(TRUTH, {"n1": {A: ok(TRUTH[A])}, "n3": {A: ok(Summary(4, 90)), B: ok(TRUTH[B])}})
    assert r.verdict is Verdict.DIVERGED
    assert [(m.chunk, m.replica, m.found) for m in r.mismatches] == [(A, "n3", Summary(4, 90))]


def test_unproven_reads_and_down_replicas_are_never_converged() -> None:
    unproven = ReplicaChunk(TRUTH[A], proven=False, reason="trace shows 127.0.0.3 answered")
    r = judge(TRUTH, {"n1": {A: unproven}})
    assert r.verdict is Verdict.CANNOT_VERIFY and r.unverified == [(A, "n1", "trace shows 127.0.0.3 answered")]
    r = judge(TRUTH, {"n1": {A: ok(TRUTH[A])}}, down=["n2"])
    assert r.verdict is Verdict.CANNOT_VERIFY and "n2" in r.reasons[0]
    unread = ReplicaChunk(None, proven=False, reason="timed out")
    r = judge(TRUTH, {"n1": {A: unread, B: ok(Summary(2, 7))}})
    assert r.verdict is Verdict.DIVERGED and r.unverified == [(A, "n1", "timed out")]  # a proof of divergence wins


def test_a_chunk_without_a_truth_summary_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        judge(TRUTH, {"n1": {(20, 30): ok(Summary(1, 1))}})
