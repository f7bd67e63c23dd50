from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.logic.breaker import (
    BreakerConfig,
    BreakerOpenError,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from tests import faults as F

pytestmark = pytest.mark.area("degraded")

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    """Time stands still until a test advances it; values are exact binary floats."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    pass


def make(clock: FakeClock, **config: Any) -> tuple[CircuitBreaker, list[tuple[BreakerState, BreakerState]]]:
    changes: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        BreakerConfig(**config), name="cassandra", clock=clock, on_state_change=lambda o, n: changes.append((o, n))
    )
    return breaker, changes


def feed(breaker: CircuitBreaker, outcomes: str) -> None:
    """'S' records a success, 'F' a failure, in order."""
    for c in outcomes:
        breaker.record_success() if c == "S" else breaker.record_failure()


def trip(breaker: CircuitBreaker) -> None:
    feed(breaker, "F" * breaker.config.failure_threshold)
    assert breaker.state is OPEN


# --- closed-state decisions: consecutive count and failure rate --------------------------------------------------

RATE_12_OF_20 = "SS" + "SFF" * 6  # 12 failures in 20 calls, never more than 2 in a row


@pytest.mark.parametrize(
    ("outcomes", "config", "expected"),
    [
        pytest.param("FFFFF", {}, OPEN, id="5-consecutive-failures-open"),
        pytest.param("FFFF", {}, CLOSED, id="4-consecutive-failures-stay-closed"),
        pytest.param("FFFFSFFFF", {}, CLOSED, id="a-success-resets-the-consecutive-count"),
        pytest.param("FF", {"failure_threshold": 2}, OPEN, id="custom-threshold"),
        pytest.param(RATE_12_OF_20, {}, OPEN, id="rate-12-of-20-opens"),
        pytest.param("S" * 10 + "SF" * 5, {}, CLOSED, id="rate-5-of-20-stays-closed"),
        pytest.param("SF" * 10, {}, OPEN, id="rate-exactly-at-threshold-opens"),
        pytest.param("S" * 2 + "SFF" * 6, {"failure_rate": 0.75}, CLOSED, id="rate-below-custom-threshold"),
        pytest.param("SFF" * 6 + "F", {}, CLOSED, id="13-of-19-below-min-calls-does-not-count"),
        pytest.param("SFF" * 3 + "F", {"min_calls": 10}, OPEN, id="custom-min-calls"),
        pytest.param("F" * 4 + "S" * 16, {}, CLOSED, id="successes-never-trip"),
    ],
)
def test_closed_state_decisions(outcomes: str, config: dict[str, Any], expected: BreakerState) -> None:
    breaker, _ = make(FakeClock(), **config)
    feed(breaker, outcomes)
    assert breaker.state is expected


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_rate_trips_on_the_call_that_crosses_it_without_a_consecutive_run() -> None:
    breaker, changes = make(FakeClock())
    feed(breaker, RATE_12_OF_20[:-1])
    snap = breaker.snapshot()
    assert (snap.state, snap.window_calls, snap.window_failures, snap.consecutive_failures) == (CLOSED, 19, 11, 1)
    breaker.record_failure()
    snap = breaker.snapshot()
    assert (snap.state, snap.window_calls, snap.window_failures, snap.consecutive_failures) == (OPEN, 20, 12, 2)
    assert changes == [(CLOSED, OPEN)]


def test_old_calls_slide_out_of_the_window() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, failure_threshold=100)
    feed(breaker, "F" * 15)
    clock.advance(10.0)  # exactly window_s old: still inside
    feed(breaker, "S" * 4)
    assert breaker.snapshot().window_calls == 19
    clock.advance(0.5)  # the 15 failures are now older than window_s
    assert (breaker.snapshot().window_calls, breaker.snapshot().window_failures) == (4, 0)
    # had the 15 failures stayed, 16 of 20 would open the breaker; now 1 of 5 is below min_calls
    breaker.record_failure()
    assert breaker.state is CLOSED
    feed(breaker, "S" * 5 + "F" * 10)  # 20 calls, 11 failures
    assert breaker.state is OPEN


def test_one_success_sliding_out_can_tip_the_rate() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, failure_threshold=100, min_calls=4, window_s=4.0)
    for outcome in "SSFS":
        feed(breaker, outcome)
        clock.advance(1.0)
    assert (breaker.snapshot().window_calls, breaker.snapshot().window_failures) == (4, 1)  # ages 4, 3, 2, 1 s
    clock.advance(0.5)  # the first success leaves the window
    assert (breaker.snapshot().window_calls, breaker.snapshot().window_failures) == (3, 1)
    breaker.record_failure()
    assert breaker.state is OPEN  # S F S F: 2 of 4; with the old success it would be 2 of 5 and stay closed


# --- open state ---------------------------------------------------------------------------------------------------


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_open_breaker_makes_zero_calls_and_raises() -> None:
    clock = FakeClock()
    breaker, _ = make(clock)
    trip(breaker)
    calls = 0

    def read() -> str:
        nonlocal calls
        calls += 1
        return "row"

    for _ in range(7):
        with pytest.raises(BreakerOpenError, match="'cassandra' is open") as info:
            breaker.call(read)
        assert isinstance(info.value, RecoveryError) and info.value.state is OPEN
    clock.advance(4.75)
    with pytest.raises(BreakerOpenError):
        breaker.call(read)
    assert calls == 0
    assert breaker.snapshot().calls_rejected == 8


def test_late_results_while_open_do_not_move_the_breaker() -> None:
    clock = FakeClock()
    breaker, changes = make(clock)
    trip(breaker)
    opened_at = breaker.snapshot().opened_at
    clock.advance(3.0)
    feed(breaker, "SSFF")  # calls admitted before opening, finishing now
    assert breaker.state is OPEN and breaker.snapshot().opened_at == opened_at
    clock.advance(2.0)  # the cool-down was not restarted by the late failures
    assert breaker.allow() is True
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


# --- half-open: exactly one probe -------------------------------------------------------------------------------


def test_cool_down_admits_exactly_one_probe() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, open_for_s=5.0)
    trip(breaker)
    clock.advance(4.5)
    assert breaker.allow() is False and breaker.state is OPEN
    clock.advance(0.5)  # cool-down elapsed exactly
    assert breaker.allow() is True
    assert breaker.state is HALF_OPEN
    assert [breaker.allow() for _ in range(5)] == [False] * 5
    assert breaker.snapshot().calls_rejected == 6


def _race_allow(breaker: CircuitBreaker, threads: int) -> list[bool]:
    """Release `threads` threads at once on allow(); their answers."""
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    results_lock = threading.Lock()

    def contend() -> None:
        barrier.wait()
        admitted = breaker.allow()
        with results_lock:
            results.append(admitted)

    workers = [threading.Thread(target=contend) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads every microsecond (default 5 ms) so an unlocked check-then-act would be interleaved."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switching")
@pytest.mark.parametrize("threads", [2, 8, 32])
def test_concurrent_allow_after_cool_down_admits_one(threads: int) -> None:
    for _ in range(50):  # several rounds: more chances for the threads to interleave
        clock = FakeClock()
        breaker, changes = make(clock)
        trip(breaker)
        clock.advance(5.0)
        results = _race_allow(breaker, threads)
        assert len(results) == threads
        assert results.count(True) == 1
        assert breaker.state is HALF_OPEN
        assert breaker.snapshot().calls_rejected == threads - 1
        assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]  # one transition, not one per thread


def test_probe_success_closes_and_resets_counters() -> None:
    clock = FakeClock()
    breaker, changes = make(clock)
    feed(breaker, "SSS")
    trip(breaker)
    clock.advance(5.0)
    assert breaker.call(lambda: 42) == 42
    snap = breaker.snapshot()
    assert snap == BreakerSnapshot(CLOSED, 0, 0, 0, None, times_opened=1, calls_rejected=0)
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert all(breaker.allow() for _ in range(10))  # closed admits everyone again


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_probe_failure_reopens_and_restarts_the_cool_down() -> None:
    clock = FakeClock()
    breaker, changes = make(clock, open_for_s=5.0)
    trip(breaker)
    clock.advance(5.0)
    with pytest.raises(Boom):
        breaker.call(_raise, Boom("still down"))
    assert breaker.state is OPEN
    assert breaker.snapshot().opened_at == clock.now and breaker.snapshot().times_opened == 2
    clock.advance(4.5)
    assert breaker.allow() is False  # would have been past the first cool-down
    clock.advance(0.5)
    assert breaker.allow() is True
    breaker.record_success()
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_one_failure_in_half_open_is_enough() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, failure_threshold=3)
    trip(breaker)
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is OPEN


def test_records_in_half_open_without_a_probe_in_flight_are_ignored() -> None:
    clock = FakeClock()
    breaker, _ = make(clock)
    trip(breaker)
    clock.advance(5.0)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(_raise, KeyboardInterrupt())  # the probe is interrupted: slot freed, no outcome
    feed(breaker, "SF")  # nobody holds the probe, so these are late results of older calls
    assert breaker.state is HALF_OPEN
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.state is CLOSED


# --- stale probes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "timeout"), [({}, 5.0), ({"probe_timeout_s": 2.0}, 2.0)])
@pytest.mark.fault(F.CASSANDRA_REQUESTS_FAILING)
def test_probe_that_never_reports_back_counts_as_failure(config: dict[str, Any], timeout: float) -> None:
    clock = FakeClock()
    breaker, changes = make(clock, **config)
    trip(breaker)
    clock.advance(5.0)
    assert breaker.allow() is True  # this caller then crashes without recording anything
    clock.advance(timeout)
    assert breaker.allow() is False and breaker.state is HALF_OPEN  # exactly at the timeout: not stale yet
    clock.advance(0.25)
    assert breaker.allow() is False
    assert breaker.state is OPEN
    assert breaker.snapshot().opened_at == clock.now and breaker.snapshot().times_opened == 2
    breaker.record_success()  # the lost caller reappears: too late, the cool-down stands
    assert breaker.state is OPEN
    clock.advance(5.0)
    assert breaker.allow() is True
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN)]


def test_interrupted_probe_frees_the_slot_without_an_outcome() -> None:
    clock = FakeClock()
    breaker, changes = make(clock)
    trip(breaker)
    clock.advance(5.0)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(_raise, KeyboardInterrupt())
    assert breaker.state is HALF_OPEN
    assert breaker.allow() is True  # a fresh probe, not a stale wait
    assert breaker.allow() is False
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


# --- call(): outcomes, filters, stale admissions ------------------------------------------------------------------


def test_call_passes_arguments_and_returns_the_result() -> None:
    def add(a: int, b: int = 0) -> int:
        return a + b

    breaker, _ = make(FakeClock())
    assert breaker.call(add, 2, b=3) == 5
    assert breaker.snapshot().window_calls == 1


@pytest.mark.parametrize(
    ("exc", "counts_as_failure"),
    [(TimeoutError("read timeout"), True), (ConnectionError("no host"), True), (ValueError("bad cql"), False)],
)
def test_is_failure_filter(exc: Exception, counts_as_failure: bool) -> None:
    breaker = CircuitBreaker(
        BreakerConfig(failure_threshold=2),
        clock=FakeClock(),
        is_failure=lambda e: isinstance(e, (TimeoutError, ConnectionError)),
    )
    breaker.record_failure()
    with pytest.raises(type(exc)):
        breaker.call(_raise, exc)
    snap = breaker.snapshot()
    assert snap.window_failures == (2 if counts_as_failure else 1)
    assert snap.state is (OPEN if counts_as_failure else CLOSED)
    assert snap.consecutive_failures == (2 if counts_as_failure else 0)  # filtered errors count as answers


def test_default_filter_counts_every_exception() -> None:
    breaker, _ = make(FakeClock(), failure_threshold=3)
    for exc in (ValueError(), RuntimeError(), Boom()):
        with pytest.raises(type(exc)):
            breaker.call(_raise, exc)
    assert breaker.state is OPEN


@pytest.mark.parametrize("slow_call_fails", [False, True])
def test_a_slow_call_admitted_while_closed_cannot_decide_the_probe(slow_call_fails: bool) -> None:
    clock = FakeClock()
    breaker, changes = make(clock)

    def slow_read() -> str:
        trip(breaker)  # meanwhile other threads fail and open the breaker...
        clock.advance(5.0)
        assert breaker.allow() is True  # ...and another thread takes the probe
        if slow_call_fails:
            raise Boom("late")
        return "row"

    if slow_call_fails:
        with pytest.raises(Boom):
            breaker.call(slow_read)
    else:
        assert breaker.call(slow_read) == "row"
    assert breaker.state is HALF_OPEN  # the slow outcome was dropped: it predates the outage
    assert breaker.allow() is False  # and the probe is still in flight
    breaker.record_success()  # the real probe reports
    assert breaker.state is CLOSED
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


# --- observability ------------------------------------------------------------------------------------------------


def test_state_change_callback_runs_outside_the_lock_and_sees_the_new_state() -> None:
    clock = FakeClock()
    seen: list[tuple[BreakerState, BreakerState, BreakerState, bool]] = []
    holder: list[CircuitBreaker] = []

    def on_change(old: BreakerState, new: BreakerState) -> None:
        b = holder[0]
        seen.append((old, new, b.snapshot().state, b._lock.locked()))

    breaker = CircuitBreaker(BreakerConfig(failure_threshold=1), clock=clock, on_state_change=on_change)
    holder.append(breaker)
    breaker.record_failure()
    clock.advance(5.0)
    breaker.allow()
    breaker.record_success()
    assert seen == [
        ("closed", "open", OPEN, False),
        ("open", "half_open", HALF_OPEN, False),
        ("half_open", "closed", CLOSED, False),
    ]


def test_a_failing_callback_is_logged_and_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def bad(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("metrics down")

    breaker = CircuitBreaker(BreakerConfig(failure_threshold=1), clock=FakeClock(), on_state_change=bad)
    with caplog.at_level(logging.ERROR), pytest.raises(Boom):
        breaker.call(_raise, Boom())  # the caller sees its own error, not the callback's
    assert breaker.state is OPEN
    assert "on_state_change callback" in caplog.text and "closed -> open" in caplog.text


def test_snapshot_counts_over_a_full_cycle() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, failure_threshold=3)
    feed(breaker, "SSFSFF")
    assert breaker.snapshot() == BreakerSnapshot(CLOSED, 2, 6, 3, None, 0, 0)
    breaker.record_failure()
    opened = clock.now
    assert breaker.snapshot() == BreakerSnapshot(OPEN, 3, 7, 4, opened, 1, 0)
    for _ in range(3):
        breaker.allow()
    clock.advance(5.0)
    breaker.allow()
    breaker.allow()
    # while not CLOSED the window keeps the calls that opened the breaker, for whoever looks
    assert breaker.snapshot() == BreakerSnapshot(HALF_OPEN, 3, 7, 4, opened, 1, 4)
    breaker.record_failure()
    assert breaker.snapshot() == BreakerSnapshot(OPEN, 3, 7, 4, clock.now, 2, 4)
    clock.advance(5.0)
    breaker.allow()
    breaker.record_success()
    assert breaker.snapshot() == BreakerSnapshot(CLOSED, 0, 0, 0, None, 2, 4)


@pytest.mark.parametrize(
    "config",
    [
        {"failure_threshold": 0},
        {"min_calls": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window_s": 0.0},
        {"open_for_s": -1.0},
        {"probe_timeout_s": 0.0},
    ],
)
def test_bad_config_is_rejected(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**config)


def test_probe_timeout_defaults_to_the_cool_down() -> None:
    assert BreakerConfig(open_for_s=7.0).effective_probe_timeout_s == 7.0
    assert BreakerConfig(open_for_s=7.0, probe_timeout_s=1.5).effective_probe_timeout_s == 1.5


def _raise(exc: BaseException) -> None:
    raise exc
