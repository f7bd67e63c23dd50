"""RepairCheckpoints.in_flight on real PostgreSQL: the segments of a cluster's unfinished runs marked running (what
the engine and the assessment must not take for another tool's repairs)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.segments import Segment
from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
from cassandra_recovery.settings import Settings
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("repair"),
]

F0 = Fence.unfenced("in-flight-test")
SEGS = [Segment("ks", i * 10, i * 10 + 10, ("a", "b"), "a") for i in range(3)]


@pytest.fixture
def checkpoints() -> Iterator[RepairCheckpoints]:
    ensure_postgres(Settings())
    pool = make_pool(migrated(Settings()), max_size=2)
    yield RepairCheckpoints(pool)
    with pool.connection() as conn:
        conn.execute("DELETE FROM repair_runs WHERE cluster_id LIKE 'in-flight-test-%'")
        conn.commit()
    pool.close()


def test_only_running_segments_of_unfinished_runs_of_the_cluster(checkpoints: RepairCheckpoints) -> None:
    cp, live, done, other = checkpoints, f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}"
    cp.start_or_resume(live, "in-flight-test-a", "full", SEGS, F0)
    cp.mark_running(live, 0, F0)
    cp.mark_done(live, 0, "p0", F0)
    cp.mark_running(live, 2, F0)  # in flight (or interrupted by a crash)
    cp.start_or_resume(done, "in-flight-test-a", "full", SEGS, F0)
    cp.mark_running(done, 1, F0)
    cp.finish(done, "escalated", F0)  # finished: its segment is no repair of ours any more
    cp.start_or_resume(other, "in-flight-test-b", "full", SEGS, F0)
    cp.mark_running(other, 1, F0)
    assert cp.in_flight("in-flight-test-a") == [SEGS[2]]
    assert cp.in_flight("in-flight-test-b") == [SEGS[1]]
    assert cp.in_flight("in-flight-test-none") == []
