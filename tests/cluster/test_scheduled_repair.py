"""Scheduled repair on the real lab: a schedule fires (time compressed to seconds) and runs paced segments; a
blackout holds segments back; an open incident skips the run (recorded); a stuck segment hits its timeout and
retry cap and escalates to Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.clients.cql import CqlClient, table_name
from cassandra_recovery.clients.postgres import fetch_all, make_pool
from cassandra_recovery.incident.store import IncidentStore
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.scheduled.schedule_log import ScheduleLog
from cassandra_recovery.settings import Settings
from tests import faults as F
from tests.cluster.incident_env import close_open_incident, run_flow, wait_for
from tests.fakes.slack_server import FakeSlackServer

pytestmark = pytest.mark.area("repair")

KS = "sched_ks"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keyspace(cql: CqlClient) -> str:
    cql.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}",
        timeout_s=30,
    )
    cql.execute("CREATE TABLE IF NOT EXISTS " + table_name(KS, "t") + " (k int PRIMARY KEY, v text)", timeout_s=30)
    return KS


@pytest.fixture
def log(prefect_server: dict[str, str]) -> Iterator[ScheduleLog]:
    pool = make_pool(Settings(), max_size=1)
    sl = ScheduleLog(pool)  # migrated by the prefect_server fixture
    yield sl
    pool.close()


def _segments(run_key: str) -> list[dict[str, Any]]:
    pool = make_pool(Settings(), max_size=1)
    try:
        with pool.connection() as conn:
            return fetch_all(conn.execute("SELECT * FROM repair_segments WHERE run_key = %s ORDER BY seq", (run_key,)))
    finally:
        pool.close()


def _drop_schedule(env: dict[str, str]) -> None:
    """The test's fast schedule must not outlive it: its deployment and future runs go (the next serve
    registers the deployment again with the configured schedules)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates = {PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: env["PREFECT_API_AUTH_STRING"]}
    with temporary_settings(updates=updates), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("scheduled-repair/scheduled-repair")
        waiting = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])))
        ids = DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
        for run in client.read_flow_runs(flow_run_filter=waiting, deployment_filter=ids):
            client.delete_flow_run(run.id)
        client.delete_deployment(dep.id)


def test_a_schedule_fires_and_runs_its_segments_paced(
    lab: Lab, keyspace: str, log: ScheduleLog, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    close_open_incident(store, "lab")
    schedule = f"test-fast-{int(time.time())}"
    spec = [{"name": schedule, "interval_s": 20, "kind": "full", "keyspaces": [keyspace], "segments_per_range": 1,
             "intensity": 0.5}]  # fmt: skip
    env = {**os.environ, **prefect_server, "CASSANDRA_RECOVERY_REPAIR_SCHEDULES": json.dumps(spec)}
    out = open(ROOT / ".pytest-serve-scheduled.log", "w")  # noqa: SIM115 - closed below
    serve = subprocess.Popen([sys.executable, "-m", "cassandra_recovery.cli", "serve"], env=env, cwd=ROOT,
                             stdout=out, stderr=out)  # fmt: skip
    try:
        done = wait_for(
            lambda: [e for e in log.entries("lab", schedule) if e.outcome == "done"], 240, "a scheduled run"
        )
    finally:
        serve.terminate()
        serve.wait(timeout=60)
        out.close()
        _drop_schedule(prefect_server)
    entry = done[0]
    started = [e for e in log.entries("lab", schedule) if e.outcome == "started" and e.run_key == entry.run_key]
    assert started and entry.run_key and entry.run_key.startswith(f"scheduled/{schedule}/")
    segs = _segments(entry.run_key)
    assert len(segs) == 3 and {s["state"] for s in segs} == {"done"}, segs  # one per ring range, RF 3
    assert entry.detail["ran"] == 3 and entry.detail["paused_s"] > 0, entry.detail  # intensity 0.5 paced it
    gaps = [(b["started_at"] - a["finished_at"]).total_seconds() for a, b in zip(segs, segs[1:], strict=False)]
    took = [(s["finished_at"] - s["started_at"]).total_seconds() for s in segs]
    assert all(g >= 0.8 * t for g, t in zip(gaps, took, strict=False)), (gaps, took)


def test_a_blackout_holds_segments_back_until_it_ends(
    lab: Lab, keyspace: str, log: ScheduleLog, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    from flows.scheduled_repair import scheduled_repair

    close_open_incident(store, "lab")
    now = datetime.now(UTC)
    start, end = now.replace(second=0, microsecond=0), now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (end - now).total_seconds() < 15:  # keep the hold measurable: the blackout runs to the next minute
        end += timedelta(minutes=1)
    blackout = f"daily {start:%H:%M}-{end:%H:%M}"
    res = run_flow(scheduled_repair, prefect_server, schedule="test-blackout", keyspaces=[keyspace], kind="full",
                   segments_per_range=1, intensity=1.0, blackouts=[blackout])  # fmt: skip
    assert res["outcome"] == "done" and res["held_s"] > 0, res
    first = _segments(res["run_key"])[0]["started_at"]
    assert first >= end, (first, blackout)


def test_an_open_incident_skips_the_run_and_says_why(
    lab: Lab, keyspace: str, log: ScheduleLog, store: IncidentStore, prefect_server: dict[str, str]
) -> None:
    from flows.scheduled_repair import scheduled_repair

    close_open_incident(store, "lab")
    inc, _ = store.open_or_join("lab", {"source": "test"}, "pytest")
    try:
        res = run_flow(scheduled_repair, prefect_server, schedule="test-skip", keyspaces=[keyspace])
    finally:
        close_open_incident(store, "lab")
    assert res["skipped"] == f"incident {inc.id} is open (detected)", res
    last = log.entries("lab", "test-skip")[-1]
    assert (last.outcome, last.reason) == ("skipped", res["skipped"])


@pytest.mark.allow_log_errors(r"RepairCoordinator\.java:\d+ - Repair \S+ failed")
@pytest.mark.fault(F.NODE_FROZEN, F.REPAIR_SEGMENT_STUCK)
def test_a_stuck_segment_hits_the_retry_cap_and_escalates_to_slack(
    lab: Lab, keyspace: str, log: ScheduleLog, store: IncidentStore, prefect_server: dict[str, str],
    slack: FakeSlackServer,
) -> None:  # fmt: skip
    from flows.scheduled_repair import scheduled_repair

    close_open_incident(store, "lab")
    lab.freeze("node3")  # every range has a replica that cannot answer the repair's prepare
    res = run_flow(scheduled_repair, prefect_server, schedule="test-stuck", keyspaces=[keyspace], kind="full",
                   segments_per_range=1, intensity=1.0, segment_timeout_s=60.0, max_attempts=2)  # fmt: skip
    assert res["outcome"] == "escalated" and res["retries"] == 1, res
    seg = _segments(res["run_key"])[0]
    assert (seg["state"], seg["attempts"]) == ("failed", 2), seg
    assert log.entries("lab", "test-stuck")[-1].outcome == "escalated"
    roots = [m for m in slack.messages("C0LAB") if "Scheduled repair escalated" in m.get("text", "")]
    assert roots, slack.messages("C0LAB")


@pytest.mark.fault(F.ESCALATED_INCIDENT_RETRIGGERED, F.OUTAGE_PAST_GC_GRACE)
def test_an_escalated_incident_gives_way_to_routine_repair_near_gc_grace_unless_a_person_holds_it(
    lab: Lab,
    cql: CqlClient,
    keyspace: str,
    log: ScheduleLog,
    store: IncidentStore,
    prefect_server: dict[str, str],
    slack: FakeSlackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cassandra_recovery.incident.fence import Fence
    from cassandra_recovery.incident_actions import escalate, hold_repairs
    from cassandra_recovery.logic.segments import Segment
    from cassandra_recovery.recovery.checkpoints import RepairCheckpoints
    from cassandra_recovery.storage.facade import open_storage
    from deployments.overdue import page_overdue_repairs_once
    from flows.scheduled_repair import scheduled_repair

    close_open_incident(store, "lab")
    # sched_ks.t: gc_grace one hour, last repaired now, the margin the whole hour: it is due at once.
    cql.execute("ALTER TABLE " + table_name(KS, "t") + " WITH gc_grace_seconds = 3600", timeout_s=30)
    monkeypatch.setenv("CASSANDRA_RECOVERY_PAGING__REPAIR_AGE_MARGIN_S", "3600")
    pool = make_pool(Settings(), max_size=1)
    history = RepairCheckpoints(pool)
    key = f"test-history-{int(time.time())}"
    history.start_or_resume(key, "lab", "full", [Segment(KS, 0, 1, ("127.0.0.2",), "127.0.0.2")], Fence.unfenced("t"))
    history.finish(key, "done", Fence.unfenced("t"))
    pool.close()
    inc, _ = store.open_or_join("lab", {"source": "test", "nodes": ["node3"]}, "pytest")
    escalate(store, inc.id, "alice@lab", "left to a person")
    try:
        ran = run_flow(scheduled_repair, prefect_server, schedule="test-gc-grace", keyspaces=[keyspace], kind="full",
                       segments_per_range=1, intensity=1.0)  # fmt: skip
        assert ran["outcome"] == "done" and ran["ran"] == 3, ran  # not skipped: the incident gave way
        overrides = [e for e in store.events(inc.id) if e.kind == "routine_repair_overrides"]
        assert len(overrides) == 1 and "sched_ks.t" in overrides[0].data["reason"], overrides
        storage = open_storage(Settings(), max_size=1)
        try:  # the watchdog's pass pages once per period, whichever process runs it
            assert page_overdue_repairs_once(storage, Settings()) == [inc.id]
            assert (
                page_overdue_repairs_once(
                    storage,
                    Settings(),
                )
                == []
            )
        finally:
            storage.close()
        pages = [m for m in slack.messages("C0LAB") if m["text"].startswith("<!here>")]
        assert len(pages) == 1 and "repair age near gc_grace_seconds" in pages[0]["text"], pages

        hold_repairs(store, inc.id, "bob@lab", "disks being replaced")
        held = run_flow(scheduled_repair, prefect_server, schedule="test-gc-grace", keyspaces=[keyspace])
        assert "routine repair held by bob@lab: disks being replaced" in held["skipped"], held
    finally:
        close_open_incident(store, "lab")
        cql.execute("ALTER TABLE " + table_name(KS, "t") + " WITH gc_grace_seconds = 864000", timeout_s=30)
