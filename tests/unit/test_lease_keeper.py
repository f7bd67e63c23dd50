"""The incident lease's heartbeat: renewed while the run works, and a holder that stops itself before its lease
can lapse unnoticed (PostgreSQL unreachable) or once another run took the incident over."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cassandra_recovery.incident.lease_keeper import LeaseKeeper, LeaseLapsed
from cassandra_recovery.incident.store import Lease, LeaseLost
from cassandra_recovery.logic.lease_heartbeat import check_heartbeat, must_fence

pytestmark = pytest.mark.area("incident")

LEASE = Lease("inc-1", "flow-run/a", 7, datetime(2026, 12, 6, 15, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("since_renewed", "fence"),
    [(0.0, False), (5.0, False), (10.0, False), (14.9, False), (15.0, True), (19.0, True), (30.0, True)],
)
def test_the_holder_fences_itself_once_the_next_beat_could_come_after_the_lease_lapsed(
    since_renewed: float, fence: bool
) -> None:
    assert must_fence(100.0, 100.0 + since_renewed, every_s=5.0, ttl_s=20.0) is fence


@pytest.mark.parametrize(("every_s", "ttl_s"), [(5.0, 14.0), (0.0, 20.0), (5.0, -1.0)])
def test_a_ttl_without_room_for_two_missed_beats_is_refused(every_s: float, ttl_s: float) -> None:
    with pytest.raises(ValueError, match="lease"):
        check_heartbeat(every_s, ttl_s)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_postgres_blip_is_ridden_out_and_an_outage_past_the_ttl_fences() -> None:
    clock, failing = Clock(), [False]

    def renew(lease: Lease, ttl_s: float) -> Lease:
        if failing[0]:
            raise OSError("connection refused")
        return replace(lease, expires_at=datetime.now(UTC))

    keeper = LeaseKeeper(LEASE, renew, every_s=5.0, ttl_s=20.0, clock=clock)
    last = keeper.beat(clock())
    failing[0] = True
    for _ in range(2):  # two missed beats: still inside the TTL
        clock.now += 5.0
        assert keeper.beat(last) == last and keeper.lost is None
    failing[0] = False
    clock.now += 5.0
    last = keeper.beat(last)
    assert last == clock.now and keeper.lost is None and keeper.beats == 2
    failing[0] = True
    for _ in range(3):
        clock.now += 5.0
        keeper.beat(last)
    assert isinstance(keeper.lost, LeaseLapsed) and isinstance(keeper.lost, LeaseLost)
    assert "not renewed for 15s of a 20s lease: OSError: connection refused" in str(keeper.lost)
    with pytest.raises(LeaseLapsed):
        keeper.raise_if_lost()


def test_a_lease_taken_over_stops_the_holder_at_once_and_the_keeper_renews_no_more() -> None:
    calls: list[float] = []

    def renew(lease: Lease, ttl_s: float) -> Lease:
        calls.append(ttl_s)
        raise LeaseLost(lease, "flow-run/b", 8)

    keeper = LeaseKeeper(LEASE, renew, every_s=5.0, ttl_s=20.0, clock=Clock())
    keeper.beat(0.0)
    keeper.beat(0.0)
    assert calls == [20.0]
    with pytest.raises(LeaseLost, match="has token 7, current token 8 held by flow-run/b"):
        keeper.raise_if_lost()


def test_the_heartbeat_thread_renews_until_stopped_and_restarts_after_a_question_to_a_person() -> None:
    renewed: list[float] = []

    def renew(lease: Lease, ttl_s: float) -> Lease:
        renewed.append(ttl_s)
        return lease

    keeper = LeaseKeeper(LEASE, renew, every_s=0.02, ttl_s=0.2).start()
    deadline = time.monotonic() + 10
    while len(renewed) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    keeper.stop()
    stopped_at = len(renewed)
    assert stopped_at >= 4 and set(renewed) == {0.2}
    time.sleep(0.1)
    assert len(renewed) == stopped_at  # stopped: a suspended run's longer lease is left alone
    keeper.start()
    assert len(renewed) == stopped_at + 1  # the answer is in: it beats again at once
    keeper.stop()
