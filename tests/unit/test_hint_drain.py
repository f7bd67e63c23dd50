"""Hint drain watching: quiet period before drained, stalls escalate, new hints reset the quiet period."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.hint_drain import DrainState, DrainTracker
from tests import faults as F

pytestmark = pytest.mark.area("hints")


def test_drained_only_after_a_quiet_period_with_no_pending_and_no_new_hints() -> None:
    t = DrainTracker(quiet_s=20, stall_s=60)
    assert t.observe(0, {"a": 3, "b": 1}, {"a": 100, "b": 40}) is DrainState.DRAINING
    assert t.observe(5, {"a": 1, "b": 0}, {"a": 100, "b": 40}) is DrainState.DRAINING
    assert t.observe(10, {"a": 0, "b": 0}, {"a": 100, "b": 40}) is DrainState.DRAINING
    assert t.observe(25, {}, {"a": 100, "b": 40}) is DrainState.DRAINING
    assert t.observe(30, {}, {"a": 100, "b": 40}) is DrainState.DRAINED


def test_a_new_hint_restarts_the_quiet_period() -> None:
    t = DrainTracker(quiet_s=20, stall_s=60)
    t.observe(0, {}, {"a": 10})
    assert t.observe(15, {}, {"a": 11}) is DrainState.DRAINING  # still being hinted: target not reachable
    assert t.observe(30, {}, {"a": 11}) is DrainState.DRAINING
    assert t.observe(50, {}, {"a": 11}) is DrainState.DRAINED


@pytest.mark.fault(F.HINT_DRAIN_STALLED)
def test_pending_hints_that_stop_going_down_stall() -> None:
    t = DrainTracker(quiet_s=20, stall_s=60)
    t.observe(0, {"a": 5}, {"a": 10})
    t.observe(30, {"a": 4}, {"a": 10})
    assert t.observe(80, {"a": 4}, {"a": 10}) is DrainState.DRAINING
    assert t.observe(91, {"a": 4}, {"a": 10}) is DrainState.STALLED
    assert t.history[-1] == (91, 4)


def test_with_delivery_counters_drained_as_soon_as_every_hint_arrived_twice_in_a_row() -> None:
    t = DrainTracker(quiet_s=25, stall_s=60, confirm=2)
    assert t.observe(0, {"a": 1}, {"a": 100, "b": 40}, {"a": 10, "b": 40}) is DrainState.DRAINING
    assert t.history[-1] == (0, 91)  # one file plus 90 undelivered hints
    assert t.observe(2, {}, {"a": 100, "b": 40}, {"a": 100, "b": 40}) is DrainState.DRAINING
    assert t.observe(4, {}, {"a": 100, "b": 40}, {"a": 100, "b": 40}) is DrainState.DRAINED


def test_with_counters_a_new_hint_or_a_pending_file_resets_the_confirmation() -> None:
    t = DrainTracker(confirm=2)
    t.observe(0, {}, {"a": 5}, {"a": 5})
    assert t.observe(2, {}, {"a": 6}, {"a": 6}) is DrainState.DRAINING  # created grew meanwhile
    assert t.observe(4, {"a": 1}, {"a": 6}, {"a": 6}) is DrainState.DRAINING  # a file from before a restart
    assert t.observe(6, {}, {"a": 6}, {"a": 6}) is DrainState.DRAINING
    assert t.observe(8, {}, {"a": 6}, {"a": 6}) is DrainState.DRAINED


@pytest.mark.fault(F.HINT_DRAIN_STALLED)
def test_undelivered_hints_that_stop_arriving_stall_even_without_files() -> None:
    t = DrainTracker(stall_s=30)
    t.observe(0, {}, {"a": 50}, {"a": 10})
    t.observe(10, {}, {"a": 50}, {"a": 20})
    assert t.observe(39, {}, {"a": 50}, {"a": 20}) is DrainState.DRAINING
    assert t.observe(41, {}, {"a": 50}, {"a": 20}) is DrainState.STALLED
