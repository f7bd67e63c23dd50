"""What became of a segment, from a coordinator's system_views.repairs rows (shapes as Cassandra 5.0.6 returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cassandra_recovery.logic.repair_sessions import SessionVerdict, busy_nodes, session_verdict
from cassandra_recovery.logic.segments import Segment
from tests import faults as F

pytestmark = pytest.mark.area("repair")

SEG = Segment("ks", 0, 1000, ("127.0.0.2", "127.0.0.3"), "127.0.0.2")
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def row(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "r1",
        "keyspace_name": "ks",
        "options_ranges": {"(0,1000]"},
        "completed": True,
        "status": "success",
        "state_init_timestamp": (T0 + timedelta(seconds=1)).replace(tzinfo=None),  # the driver returns naive UTC
        "options_preview_kind": "NONE",
        "participants": ["/127.0.0.3:7000"],
    }
    return {**base, **kw}


def test_success_of_exactly_this_segment_after_the_attempt_began() -> None:
    v = session_verdict([row()], SEG, T0)
    assert (v.verdict, v.repair_id) == (SessionVerdict.SUCCEEDED, "r1")


def test_other_ranges_keyspaces_previews_and_older_repairs_do_not_count() -> None:
    rows = [
        row(options_ranges={"(0,500]"}),
        row(keyspace_name="other"),
        row(options_preview_kind="FULL"),
        row(state_init_timestamp=(T0 - timedelta(minutes=5)).replace(tzinfo=None)),
    ]
    assert session_verdict(rows, SEG, T0).verdict is SessionVerdict.NONE


@pytest.mark.fault(F.REPAIR_SESSION_ORPHANED)
def test_in_flight_beats_failed_and_success_beats_both() -> None:
    failed = row(id="f", status="failure", failure_cause="Did not get replies from all endpoints.")
    running = row(id="r", completed=False, status="prepare_start")
    assert session_verdict([failed], SEG, T0).verdict is SessionVerdict.FAILED
    assert "Did not get replies" in session_verdict([failed], SEG, T0).detail
    assert session_verdict([failed, running], SEG, T0).verdict is SessionVerdict.IN_FLIGHT
    assert session_verdict([failed, running, row(id="ok")], SEG, T0).repair_id == "ok"


def test_a_repair_cassandra_skipped_for_an_empty_keyspace_is_done_not_failed() -> None:
    """Cassandra skips a keyspace without tables ("Empty keyspace, skipping repair"): nothing to repair is no
    reason to retry or escalate (a full CI run escalated a replacement's repair on such a keyspace)."""
    cause = "r1 Empty keyspace, skipping repair: shop_out_f5817484"
    v = session_verdict([row(status="skip", failure_cause=cause)], SEG, T0)
    assert (v.verdict, v.repair_id) == (SessionVerdict.SUCCEEDED, "r1") and "nothing to repair" in v.detail


def test_busy_nodes_are_coordinators_and_participants_of_unfinished_repairs() -> None:
    rows = {
        "127.0.0.2": [row(completed=False, participants=["/127.0.0.3:7000", "/127.0.0.4:7000"])],
        "127.0.0.5": [row()],
    }
    assert busy_nodes(rows) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
