"""The fenced log's checks: overlapping actions of two runs, and a repair session claimed by two runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.logic.fenced_log import Interval, overlapping_runs, sessions_started_by_two_runs

pytestmark = pytest.mark.area("incident")

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_one_run_after_another_does_not_overlap_even_when_the_ends_touch() -> None:
    a = Interval("run-a", "repair_segment", at(0), at(10))
    b = Interval("run-b", "repair_segment", at(10), at(20))
    assert overlapping_runs([b, a]) == []


def test_the_same_run_may_act_in_parallel() -> None:
    a = Interval("run-a", "hint_handoff", at(0), at(30))
    b = Interval("run-a", "repair_segment", at(5), at(10))
    assert overlapping_runs([a, b]) == []


def test_two_runs_acting_at_once_are_found() -> None:
    a = Interval("run-a", "repair_segment", at(0), at(10))
    b = Interval("run-b", "repair_segment", at(9), at(20))
    c = Interval("run-c", "hint_handoff", at(30), at(40))
    assert overlapping_runs([c, b, a]) == [(a, b)]


def test_an_interval_never_closed_overlaps_everything_after_it() -> None:
    killed = Interval("run-a", "repair_segment", at(0), None)
    later = Interval("run-b", "repair_segment", at(600), at(610))
    assert overlapping_runs([killed, later]) == [(killed, later)]
    closed = Interval("run-a", "repair_segment", at(0), at(599))
    assert overlapping_runs([closed, later]) == []


def test_a_session_claimed_by_two_runs_is_found() -> None:
    ok = [
        Interval("run-a", "repair_segment", at(0), at(10), "s1"),
        Interval("run-a", "repair_segment", at(11), at(12), "s1"),  # the same run retrying its own wait
        Interval("run-b", "repair_segment", at(20), at(30), "s2"),
        Interval("run-b", "repair_cancel", at(31), at(32)),
    ]
    assert sessions_started_by_two_runs(ok) == {}
    twice = [*ok, Interval("run-b", "repair_segment", at(40), at(50), "s1")]
    assert sessions_started_by_two_runs(twice) == {"s1": {"run-a", "run-b"}}
