"""A trigger the detector could not hand over (PostgreSQL or Prefect away) is kept and offered again with a
growing back-off; the detector loop never dies of it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cassandra_recovery.detection.runner import DetectorLoop
from cassandra_recovery.logic.detector import IncidentKind, IncidentTrigger
from cassandra_recovery.logic.pending_triggers import Pending, PendingTriggers
from cassandra_recovery.settings import ClusterConfig, NodeAccess
from tests import faults as F

pytestmark = pytest.mark.area("detection")

TRIGGER = IncidentTrigger(IncidentKind.OPEN, ("node2",), ("probe failed",), 100.0, ("node2",))


def test_backoff_doubles_to_a_cap_and_the_trigger_is_kept_once() -> None:
    q: PendingTriggers[str] = PendingTriggers(first_delay_s=1.0, max_delay_s=8.0)
    p = Pending("t", {})
    delays = [q.failed(p, 0.0, "down") for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert q.waiting == [p] and q.due(7.9) == [] and q.due(8.0) == [p]
    q.handed_over(p)
    assert q.waiting == [] and q.due(1e9) == []


@pytest.mark.fault(F.POSTGRES_DOWN, F.PREFECT_DOWN)
def test_the_detector_keeps_a_trigger_its_handler_could_not_take_and_hands_it_over_later() -> None:
    calls: list[tuple[str, Any]] = []

    def handler(trigger: IncidentTrigger, evidence: dict[str, Any]) -> None:
        calls.append((trigger.nodes[0], evidence))
        if len(calls) < 3:
            raise psycopg.OperationalError("connection refused")

    cluster = ClusterConfig(
        id="unit", contact_points=["127.0.0.250"], local_datacenter="dc1",
        nodes=[NodeAccess(name="node2", address="127.0.0.250", jmx_host="127.0.0.1", jmx_port=7199)],
    )  # fmt: skip
    loop = DetectorLoop(cluster, on_trigger=handler)
    try:
        loop.offer(TRIGGER, {"probes": {}}, now=0.0)  # the round that confirmed the node
        assert len(loop.pending.waiting) == 1 and loop.pending.waiting[0].attempts == 1
        loop.retry_due(0.5)  # not due yet
        assert len(calls) == 1
        for now in (1.0, 3.0):  # the two retries (back-off 1 s, then 2 s)
            loop.retry_due(now)
        assert [c[0] for c in calls] == ["node2", "node2", "node2"] and calls[-1][1] == {"probes": {}}
        assert loop.pending.waiting == []
    finally:
        loop.close()
