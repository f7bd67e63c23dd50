"""Repair checkpoints and repair pauses on real PostgreSQL: a resumed run gets the stored plan and states."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.segments import Segment, SegmentState
from cassandra_recovery.mitigation.pauses import RepairPauses
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.settings import Settings
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("repair"),
]

F0 = Fence.unfenced("ckpt-test")
SEGS = [Segment("ks", i * 10, i * 10 + 10, ("a", "b"), "a") for i in range(3)]


@pytest.fixture
def pool() -> Iterator[object]:
    ensure_postgres(Settings())
    p = make_pool(migrated(Settings()), max_size=2)
    yield p
    with p.connection() as conn:
        conn.execute("DELETE FROM repair_runs WHERE cluster_id LIKE 'ckpt-test-%'")
        conn.execute("DELETE FROM repair_pauses WHERE cluster_id LIKE 'ckpt-test-%'")
        conn.commit()
    p.close()


def test_a_resumed_run_keeps_its_segments_states_and_attempts(pool: object) -> None:
    cp = RepairCheckpoints(pool)  # type: ignore[arg-type]
    key = f"run-{uuid.uuid4().hex}"
    run = cp.start_or_resume(key, "ckpt-test-a", "full", SEGS, F0)
    assert run.created and [r.segment for r in run.segments] == SEGS
    cp.mark_running(key, 0, F0)
    cp.mark_done(key, 0, "parent-0", F0)
    running = cp.mark_running(key, 1, F0)
    assert (running.state, running.attempts, running.started_at is not None) == (SegmentState.RUNNING, 1, True)
    # a new process with the same key, even with another plan, resumes the stored one
    again = cp.start_or_resume(key, "ckpt-test-a", "full", SEGS[:1], F0)
    assert not again.created
    assert [r.state for r in again.segments] == [SegmentState.DONE, SegmentState.RUNNING, SegmentState.PENDING]
    assert again.segments[0].parent_id == "parent-0"
    retry = cp.mark_failed(key, 1, "timed out", False, F0)
    assert (retry.state, retry.last_error, retry.attempts) == (SegmentState.PENDING, "timed out", 1)
    assert cp.mark_failed(key, 2, "boom", True, F0).state is SegmentState.FAILED
    with pytest.raises(ValueError, match="exists for cluster"):
        cp.start_or_resume(key, "ckpt-test-a", "incremental", SEGS, F0)
    with pytest.raises(ValueError, match="full or incremental"):
        cp.start_or_resume(f"run-{uuid.uuid4().hex}", "ckpt-test-a", "sideways", SEGS, F0)
    with pytest.raises(KeyError):
        cp.mark_running(key, 99, F0)


def test_pause_is_owned_by_the_newest_incident_and_an_operator_pause_by_nobody(pool: object) -> None:
    pauses = RepairPauses(pool)  # type: ignore[arg-type]
    first = pauses.pause("ckpt-test-b", "incident inc-1", "flow", incident_id="inc-1")
    assert pauses.pause("ckpt-test-b", "incident inc-1", "flow", incident_id="inc-1") == first  # idempotent
    taken = pauses.pause("ckpt-test-b", "incident inc-2", "flow", incident_id="inc-2")
    assert taken.incident_id == "inc-2"  # inc-1 was escalated and left it; the open incident owns it now
    assert not pauses.resume("ckpt-test-b", incident_id="inc-1")
    assert pauses.resume("ckpt-test-b", incident_id="inc-2")
    assert pauses.get("ckpt-test-b") is None
    manual = pauses.pause("ckpt-test-c", "rolling upgrade", "operator")
    assert pauses.pause("ckpt-test-c", "incident inc-3", "flow", incident_id="inc-3") == manual
    assert not pauses.resume("ckpt-test-c", incident_id="inc-3")
    assert pauses.resume("ckpt-test-c")
