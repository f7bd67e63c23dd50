"""The Slack actions' timeline on real PostgreSQL (intake/wiring.py StoreTimeline) keeps the in-memory twin's rules:
a verified answer is recorded without the lease while a suspended run holds it (the run's own fenced writes go on),
events come back in order with their seq, and an unknown incident has none."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cassandra_recovery.intake.memory import MemoryTimeline
from cassandra_recovery.intake.wiring import StoreTimeline
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.slack_approvals import ANSWERED, click_outcome
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import Storage, open_storage
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("intake"),
]


@pytest.fixture
def storage() -> Iterator[Storage]:
    ensure_postgres(Settings())
    s = open_storage(migrated(Settings()), max_size=2)
    yield s
    s.close()


def test_a_slack_answer_lands_beside_a_suspended_run_that_holds_the_lease(storage: Storage) -> None:
    store = storage.incidents
    inc, _ = store.open_or_join(f"slack-test-{uuid.uuid4().hex[:8]}", {"source": "detector"}, "detector")
    run = store.acquire_lease(inc.id, "flow-run/abc", 600, run_key="abc")
    assert run is not None
    store.append_event(inc.id, "approval_requested", "pipeline", {"action": "replace", "flow_run_id": "abc"}, run)
    twin = MemoryTimeline()
    for timeline, incident_id in ((StoreTimeline(store), inc.id), (twin, "inc-1")):
        if timeline is twin:
            twin.record("inc-1", "opened", "detector", {})
            twin.record("inc-1", "approval_requested", "pipeline", {"action": "replace", "flow_run_id": "abc"})
        seq = [e["seq"] for e in timeline.events(incident_id) if e["kind"] == "approval_requested"][-1]
        assert click_outcome(timeline.events(incident_id), seq).answers
        timeline.record(incident_id, ANSWERED, "slack T1/U1", {"approved": True, "approver": "slack T1/U1"})
        events = timeline.events(incident_id)
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert events[-1]["kind"] == ANSWERED and events[-1]["data"]["approver"] == "slack T1/U1"
        assert click_outcome(events, seq).why == "decided"  # the second click
        assert timeline.events(f"no-such-incident-{uuid.uuid4().hex}") == []
    # the answer took nothing from the run: its lease and its fenced writes go on
    store.append_event(inc.id, "approval_decided", "pipeline", {"approved": True, "verified": True}, run)
    store.release_lease(run)
