"""What an escalated incident still owes (pure): one page per outage and per period, the tables near gc_grace,
and a person's hold on routine repair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cassandra_recovery.logic.escalated import (
    HELD,
    RELEASED,
    age_page_key,
    already_paged,
    join_page_key,
    near_gc_grace,
    overdue_summary,
    repairs_held,
)
from cassandra_recovery.logic.repair_age import classify
from tests import faults as F

pytestmark = pytest.mark.area("incident")

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ALERT = {"source": "alert:alertmanager", "kind": "alert", "nodes": ["node3"], "fingerprint": "f1",
         "starts_at": "2026-12-07T10:00:00+00:00", "status": "firing", "reasons": ["down"]}  # fmt: skip


@pytest.mark.fault(F.ESCALATED_INCIDENT_RETRIGGERED)
def test_a_page_per_outage_not_per_delivery() -> None:
    key = join_page_key(ALERT)
    assert join_page_key(ALERT | {"reasons": ["re-sent"], "status": "firing"}) == key  # the same episode re-sent
    assert join_page_key(ALERT | {"nodes": ["node3"]}) == key
    assert join_page_key(ALERT | {"starts_at": "2026-12-07T11:00:00+00:00"}) != key  # it fired again
    assert join_page_key(ALERT | {"nodes": ["node2", "node3"]}) != key
    detector = {"source": "detector", "kind": "node_down", "nodes": ["node3"], "confirmed_at": "2026-12-07T10:00:05"}
    assert join_page_key(detector) != join_page_key(detector | {"confirmed_at": "2026-12-07T13:00:00"})
    events = [{"kind": "joined", "data": {}}, {"kind": "paged", "data": {"key": key}}]
    assert already_paged(events, key) and not already_paged(events, join_page_key(detector))


def test_one_repair_age_page_per_period() -> None:
    every = 4 * 3600.0
    assert age_page_key(NOW, every) == age_page_key(NOW + timedelta(hours=1, minutes=59), every)
    assert age_page_key(NOW, every) != age_page_key(NOW + timedelta(hours=4), every)


def test_tables_within_the_margin_of_gc_grace_are_due_and_unknown_ages_are_not() -> None:
    day = 86400
    due = classify("ks", "due", 10 * day, NOW - timedelta(days=8, hours=1), NOW)
    fine = classify("ks", "fine", 10 * day, NOW - timedelta(days=7), NOW)
    never = classify("ks", "never", 10 * day, None, NOW)
    no_grace = classify("ks", "nograce", 0, NOW - timedelta(days=30), NOW)
    assert near_gc_grace([due, fine, never, no_grace], margin_s=2 * day) == [due]
    assert near_gc_grace([fine], margin_s=3 * day + 1) == [fine]
    text = overdue_summary([due] * 7, limit=5)
    assert text.startswith("repair age near gc_grace_seconds: ks.due (193.0h of 240.0h)") and "and 2 more" in text


def test_a_hold_lasts_until_it_is_released() -> None:
    hold = {"kind": HELD, "actor": "bob@h", "data": {"by": "bob@h", "reason": "disks"}}
    release = {"kind": RELEASED, "actor": "bob@h", "data": {"by": "bob@h", "reason": "done"}}
    assert repairs_held([]) is None
    assert repairs_held([hold]) == "held by bob@h: disks"
    assert repairs_held([hold, release]) is None
    assert repairs_held([hold, release, hold]) == "held by bob@h: disks"
