"""Crashed deployed runs are resumed a capped number of times, then escalated (real Prefect server on PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.lab.prefect_server import client_env, ensure_prefect_server, healthy, stop_prefect_server
from cassandra_recovery.settings import Settings
from tests import faults as F

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning runs psql through runuser, which needs root"),
    pytest.mark.area("incident"),
]


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    settings = Settings()
    ensure_postgres(settings)
    request.config._cr_postgres_started = True  # type: ignore[attr-defined]  # conftest stops it at the end
    started_here = not healthy(settings)
    ensure_prefect_server(settings)
    yield client_env(settings)
    if started_here:
        stop_prefect_server(settings)


def _with_api(env: dict[str, str]) -> Any:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    auth = env["PREFECT_API_AUTH_STRING"]
    return temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: auth})


@pytest.mark.fault(F.FLOW_RUN_CRASHED)
def test_crashed_run_is_resumed_twice_then_escalated(api: dict[str, str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    from deployments.resume import resume_crashed_once
    from flows.queue import drain_write_queue

    escalated: list[tuple[str, int]] = []
    with _with_api(api):
        deployment = drain_write_queue.to_deployment(name="crash-resume-test")
        deployment.apply()
        run: Any = run_deployment("drain-write-queue/crash-resume-test", parameters={"cluster_id": "lab"}, timeout=0)
        with get_client(sync_client=True) as client:
            outcomes = []
            for _ in range(3):
                client.set_flow_run_state(run.id, Crashed(message="process killed (test)"), force=True)
                done = resume_crashed_once(
                    client, max_resumes=2, on_escalate=lambda fr, n: escalated.append((str(fr.id), n))
                )
                outcomes.append(
                    "resumed"
                    if str(run.id) in done["resumed"]
                    else "escalated"
                    if str(run.id) in done["escalated"]
                    else "untouched"
                )
                state = client.read_flow_run(run.id).state
            assert outcomes == ["resumed", "resumed", "escalated"]
            assert state is not None and state.type.value == "FAILED" and "escalated" in (state.message or "")
            assert escalated == [(str(run.id), 3)]
            client.delete_flow_run(run.id)


def test_the_api_and_ui_refuse_requests_without_the_credentials(api: dict[str, str]) -> None:
    """Whoever reaches the UI could resume a suspended run (approve a replacement): the server wants the
    generated basic-auth credentials, kept in a 0600 file and handed to clients through the environment."""
    import base64
    import stat
    import urllib.error
    import urllib.request

    from cassandra_recovery.lab.prefect_server import prefect_home

    url = api["PREFECT_API_URL"] + "/flows/filter"
    anonymous = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)  # noqa: S310 - loopback test URL
    assert refused.value.code == 401
    token = base64.b64encode(api["PREFECT_API_AUTH_STRING"].encode()).decode()
    allowed = urllib.request.Request(
        url, data=b"{}", headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(allowed, timeout=10) as r:  # noqa: S310
        assert r.status == 200
    mode = (prefect_home(Settings()) / "api-auth").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.fault(F.FLOW_RUN_CRASHED)
def test_a_retried_run_gets_a_tasks_result_back_from_json(api: dict[str, str]) -> None:
    """A project task's persisted result is a JSON record (not a pickle), and the retried run gets it back
    Cached instead of repeating the step: what an upgraded version reads after a crash or a suspension."""
    import json
    import uuid
    from pathlib import Path

    from prefect import flow
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    from tasks.incident import open_or_join
    from tests.migrated import migrated

    migrated(Settings())
    cluster, seen = f"json-{uuid.uuid4().hex[:8]}", []
    storage = Path(api["PREFECT_LOCAL_STORAGE_PATH"])

    @flow(name="json-results-test", retries=1, retry_delay_seconds=0, persist_result=True, result_serializer="json")
    def fails_once_after_the_step() -> dict[str, Any]:
        state = open_or_join(cluster, {"source": "pytest"}, "pytest", return_state=True)
        seen.append(state.name)
        if len(seen) == 1:
            raise RuntimeError("the run fails after the step, then is retried")
        return state.result()

    # No heartbeats (a second per call) and no logs shipped to a server the module stops at its end.
    updates: dict[Any, Any] = {PREFECT_LOCAL_STORAGE_PATH: storage, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    updates[PREFECT_LOGGING_TO_API_ENABLED] = False
    with _with_api(api), temporary_settings(updates=updates):
        result = fails_once_after_the_step()
    assert seen == ["Completed", "Cached"]
    assert (result["cluster_id"], result["created"]) == (cluster, True)  # the first attempt's incident
    # Every file holding the incident is JSON (a pickle would not parse): the task's cache record says its
    # serializer, and its result is the incident as JSON text.
    found = [json.loads(p.read_text()) for p in storage.iterdir() if p.is_file() and cluster in p.read_text()]
    records = [r for r in found if "metadata" in r]
    assert records and {r["metadata"]["serializer"]["type"] for r in records} == {"json"}
    assert any(json.loads(r["result"])["cluster_id"] == cluster for r in records)


@pytest.mark.fault(F.FLOW_RUN_FAILED, F.POSTGRES_DOWN)
def test_a_failed_incident_run_is_retried_with_the_reason_then_the_incident_escalated(api: dict[str, str]) -> None:
    """A deployed incident run that raises (as a PostgreSQL blip in a step without retries did) ends FAILED, which
    Prefect never retries: the resumer puts the same run back to Scheduled while failures <= the bound, the reason
    on the incident timeline, then escalates the incident (state, reason, page) and marks the run handled."""
    import uuid

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.flow_engine import run_flow
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    from cassandra_recovery.storage.facade import process_storage
    from deployments.failed_runs import retry_failed_once
    from tests.migrated import migrated

    settings = migrated(Settings())
    store = process_storage(settings).incidents
    cluster = f"failed-{uuid.uuid4().hex[:8]}"

    @flow(name="failing-incident-test")
    def failing_incident_run(cluster_id: str) -> None:
        actor = f"flow-run/{flow_run.id}"
        store.open_or_join(cluster_id, {"source": "pytest"}, actor)
        raise RuntimeError("connection to PostgreSQL lost (simulated blip)")

    updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_TO_API_ENABLED: False}
    with _with_api(api), temporary_settings(updates=updates), get_client(sync_client=True) as client:
        failing_incident_run.to_deployment(name="failed-run-test").apply()
        run: Any = run_deployment(
            "failing-incident-test/failed-run-test", parameters={"cluster_id": cluster}, timeout=0
        )
        outcomes, states = [], []
        for _ in range(3):
            # The served process would pick the Scheduled run up; here the test runs it in-process.
            state: Any = run_flow(failing_incident_run, flow_run=client.read_flow_run(run.id), return_type="state")
            states.append(state.type.value)
            done = retry_failed_once(client, store, settings, flow_name="failing-incident-test")
            outcomes.append(next((k for k, ids in done.items() if str(run.id) in ids), "untouched"))
        assert states == ["FAILED", "FAILED", "FAILED"]
        assert outcomes == ["retried", "retried", "escalated"]  # runbook.max_run_retries = 2 by default
        final = client.read_flow_run(run.id).state
        assert final is not None and final.type.value == "FAILED" and (final.message or "").startswith("escalated:")
        # Handled: a later pass leaves the run and the escalated incident alone.
        assert retry_failed_once(client, store, settings, flow_name="failing-incident-test") == {
            "retried": [],
            "escalated": [],
        }
        client.delete_flow_run(run.id)
    inc = store.open_for(cluster)
    assert inc is not None and inc.state.value == "escalated"
    events = store.events(inc.id)
    retried = [e.data for e in events if e.kind == "run_retried"]
    assert [(d["failures"], d["limit"]) for d in retried] == [(1, 2), (2, 2)]
    assert all("PostgreSQL lost" in d["reason"] for d in retried)
    (escalation,) = [e.data for e in events if e.kind == "transition" and e.data["to"] == "escalated"]
    assert "a person must take over" in escalation["data"]["reason"] and escalation["data"]["by"] == "run-resumer"
    assert any(e.kind == "slack_not_posted" and "Escalated:" in e.data["text"] for e in events)  # no Slack token


@pytest.mark.fault(F.FLOW_RUN_FAILED)
def test_a_failed_run_of_an_incident_held_by_another_run_is_left_alone(api: dict[str, str]) -> None:
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Failed

    from cassandra_recovery.storage.facade import process_storage
    from deployments.failed_runs import retry_failed_once
    from flows.queue import drain_write_queue
    from tests.migrated import migrated

    settings = migrated(Settings())
    store = process_storage(settings).incidents
    cluster = f"held-{uuid.uuid4().hex[:8]}"
    with _with_api(api), get_client(sync_client=True) as client:
        drain_write_queue.to_deployment(name="failed-held-test").apply()
        run: Any = run_deployment("drain-write-queue/failed-held-test", parameters={"cluster_id": cluster}, timeout=0)
        inc, _ = store.open_or_join(cluster, {"source": "pytest"}, f"flow-run/{run.id}")
        assert store.acquire_lease(inc.id, "flow-run/another", ttl_s=600) is not None  # a live run acts
        client.set_flow_run_state(run.id, Failed(message="boom"), force=True)
        done = retry_failed_once(client, store, settings, flow_name="drain-write-queue")
        state = client.read_flow_run(run.id).state
        client.delete_flow_run(run.id)
    assert str(run.id) not in done["retried"] + done["escalated"]
    assert state is not None and state.type.value == "FAILED" and state.message == "boom"
    assert [e.kind for e in store.events(inc.id)].count("run_retried") == 0


@pytest.mark.fault(F.CONCURRENT_WORKERS)
def test_a_follow_up_finding_the_incident_held_defers_itself_instead_of_failing(api: dict[str, str]) -> None:
    """Issue 15: the follow-up verification raised when a run held the incident's lease (a new failure joined the
    monitored incident), a FAILED run that nobody retries. It now schedules another follow-up and says so."""
    import uuid
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    from cassandra_recovery.logic.incident_states import IncidentState as S
    from cassandra_recovery.storage.facade import process_storage
    from flows.verify import follow_up_verification
    from tests.migrated import migrated

    settings = migrated(Settings())
    store = process_storage(settings).incidents
    inc, _ = store.open_or_join(f"held-fu-{uuid.uuid4().hex[:8]}", {"source": "pytest"}, "pytest")
    holder = store.acquire_lease(inc.id, "flow-run/the-joining-run", ttl_s=600)
    assert holder is not None
    for old, new in ((S.DETECTED, S.ASSESSING), (S.ASSESSING, S.VERIFYING), (S.VERIFYING, S.MONITORING)):
        store.transition(inc.id, old, new, holder, {"by": "pytest"})
    updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_TO_API_ENABLED: False}
    updates[PREFECT_LOCAL_STORAGE_PATH] = Path(api["PREFECT_LOCAL_STORAGE_PATH"])
    with _with_api(api), temporary_settings(updates=updates), get_client(sync_client=True) as client:
        follow_up_verification.to_deployment(name="follow-up-verification").apply()
        out = follow_up_verification(cluster_id=inc.cluster_id, incident_id=inc.id)
        deferred = out["deferred"]
        assert deferred["scheduled"] is True, deferred
        later = client.read_flow_run(deferred["flow_run_id"])
        assert later.state is not None and later.state.type.value == "SCHEDULED"
        assert later.parameters["incident_id"] == inc.id
        client.delete_flow_run(later.id)
    assert store.get(inc.id).state is S.MONITORING  # untouched: the holder's run decides
    assert [e.data["flow_run_id"] for e in store.events(inc.id) if e.kind == "follow_up_deferred"] == [
        deferred["flow_run_id"]
    ]


@pytest.mark.fault(F.LEASE_EXPIRED)
def test_an_incident_run_whose_holder_is_gone_is_crashed_and_resumed_and_a_live_or_monitored_one_is_not(
    api: dict[str, str],
) -> None:
    """A dead host leaves its incident run RUNNING: once the run's lease lapsed more than a grace ago, the
    watchdog marks it CRASHED (reason on the timeline) and the crash resumer schedules the same run again. A run
    still renewing, a lapse inside the grace and a monitored incident (its follow-up holds it) are left alone."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Running

    from cassandra_recovery.logic.incident_states import IncidentState
    from cassandra_recovery.storage.facade import process_storage
    from deployments.orphans import INCIDENT_FLOW, take_over_orphans_once
    from deployments.resume import resume_crashed_once
    from flows.incident import incident_response
    from tests.migrated import migrated

    store = process_storage(migrated(Settings())).incidents
    with _with_api(api), get_client(sync_client=True) as client:
        incident_response.to_deployment(name="orphan-test").apply()

        def running_incident(prefix: str, ttl_s: float) -> tuple[Any, Any]:
            cluster = f"{prefix}-{uuid.uuid4().hex[:8]}"
            run: Any = run_deployment(f"{INCIDENT_FLOW}/orphan-test", parameters={"cluster_id": cluster}, timeout=0)
            client.set_flow_run_state(run.id, Running(), force=True)
            inc, _ = store.open_or_join(cluster, {"source": "pytest"}, f"flow-run/{run.id}")
            lease = store.acquire_lease(inc.id, f"flow-run/{run.id}", ttl_s, run_key=str(run.id))
            assert lease is not None
            return run, lease

        dead, dead_lease = running_incident("orphan", ttl_s=1.0)
        live, _ = running_incident("live", ttl_s=600.0)
        monitored, monitored_lease = running_incident("monitored", ttl_s=1.0)
        for state in (IncidentState.ASSESSING, IncidentState.RECOVERING, IncidentState.VERIFYING):
            store.transition(monitored_lease.incident_id, store.get(monitored_lease.incident_id).state, state,
                             monitored_lease, {})  # fmt: skip
        store.transition(monitored_lease.incident_id, IncidentState.VERIFYING, IncidentState.MONITORING,
                         monitored_lease, {})  # fmt: skip
        soon = datetime.now(UTC) + timedelta(seconds=10)  # 1 s lease lapsed 9 s ago: inside a 20 s grace
        assert take_over_orphans_once(client, store, grace_s=20.0, now=soon) == []
        later = datetime.now(UTC) + timedelta(seconds=40)
        taken = take_over_orphans_once(client, store, grace_s=20.0, now=later)
        assert taken == [str(dead.id)]
        state = client.read_flow_run(dead.id).state
        assert state is not None and state.type.value == "CRASHED" and "lease lapsed" in (state.message or "")
        for other in (live, monitored):
            other_state = client.read_flow_run(other.id).state
            assert other_state is not None and other_state.type.value == "RUNNING"
        resumed = resume_crashed_once(client, max_resumes=2)
        assert str(dead.id) in resumed["resumed"]
        scheduled = client.read_flow_run(dead.id).state
        assert scheduled is not None and scheduled.type.value == "SCHEDULED"
        for run in (dead, live, monitored):
            client.delete_flow_run(run.id)
    gone = [e.data for e in store.events(dead_lease.incident_id) if e.kind == "holder_gone"]
    assert gone and gone[0]["flow_run_id"] == str(dead.id) and "taken over" in gone[0]["reason"]
    # The resumed run takes the lease back at once (same run key) under a new token: the old holder is fenced.
    back = store.acquire_lease(dead_lease.incident_id, f"flow-run/{dead.id}", 20.0, run_key=str(dead.id))
    assert back is not None and back.token > dead_lease.token


@pytest.mark.fault(F.SERVE_HOST_DIED, F.LEASE_EXPIRED)
def test_an_open_incident_left_with_no_run_at_all_gets_one_and_only_one(api: dict[str, str]) -> None:
    """A run can vanish from Prefect's view altogether (deleted, lost with a database, a crash past the resumer's
    bound without an escalation): the watchdog starts a run for an incident that needs one, has had none for a
    grace and has no run alive. Not for one never held (its opener starts it), nor one whose run is alive."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from cassandra_recovery.logic.incident_states import IncidentState
    from cassandra_recovery.storage.facade import process_storage
    from deployments.orphans import INCIDENT_FLOW, start_runs_for_unheld_once
    from deployments.zombies import AUTOMATION, EXPECTED, ensure_zombie_automation
    from flows.incident import incident_response
    from tests.migrated import migrated

    store = process_storage(migrated(Settings())).incidents
    deployment = f"{INCIDENT_FLOW}/unheld-test"

    def held_once(prefix: str) -> str:
        inc, _ = store.open_or_join(f"{prefix}-{uuid.uuid4().hex[:8]}", {"source": "pytest"}, "pytest")
        lease = store.acquire_lease(inc.id, "flow-run/vanished", 1.0, run_key="vanished")
        assert lease is not None
        store.transition(inc.id, IncidentState.DETECTED, IncidentState.ASSESSING, lease, {})
        return inc.id

    with _with_api(api), get_client(sync_client=True) as client:
        incident_response.to_deployment(name="unheld-test").apply()
        vanished = held_once("unheld")
        never_held, _ = store.open_or_join(f"never-{uuid.uuid4().hex[:8]}", {"source": "pytest"}, "detector")
        alive = held_once("alive")
        alive_run: Any = run_deployment(deployment, parameters={"cluster_id": store.get(alive).cluster_id}, timeout=0)
        later = datetime.now(UTC) + timedelta(seconds=120)
        assert vanished not in start_runs_for_unheld_once(client, store, 300.0, deployment, now=later)  # in grace
        started = start_runs_for_unheld_once(client, store, 60.0, deployment, now=later)
        assert vanished in started and never_held.id not in started and alive not in started
        again = start_runs_for_unheld_once(client, store, 60.0, deployment, now=later)
        assert vanished not in again  # its new run is alive (scheduled) now
        (note,) = [e.data for e in store.events(vanished) if e.kind == "holder_gone"]
        run = client.read_flow_run(note["flow_run_id"])
        assert run.parameters["trigger"]["incident_id"] == vanished and "no run acting" in note["reason"]
        for fr_id in {note["flow_run_id"], str(alive_run.id)}:
            client.delete_flow_run(fr_id)
        # Prefect's own zombie view: set up once, kept as is when nothing changed; approvals are never crashed.
        assert ensure_zombie_automation(120) in ("created", "unchanged", "updated")
        assert ensure_zombie_automation(120) == "unchanged"
        assert {"prefect.flow-run.Suspended", "prefect.flow-run.Paused", "prefect.flow-run.AwaitingRetry"} <= EXPECTED
        from prefect.automations import Automation

        found: Any = Automation.read(name=AUTOMATION)
        assert found.enabled and found.trigger.within == timedelta(seconds=120)


@pytest.mark.fault(F.FLOW_RUN_CRASHED)
def test_a_crashed_incident_run_is_not_resumed_once_no_incident_of_its_cluster_is_open(api: dict[str, str]) -> None:
    """Prefect's zombie automation may crash a run long after its incident closed: resuming it would open a new
    incident for an outage that is over. It is cancelled with the reason; one whose incident is open resumes."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    from cassandra_recovery.storage.facade import process_storage
    from deployments.orphans import INCIDENT_FLOW
    from deployments.resume import incident_closed_meanwhile, resume_crashed_once
    from flows.incident import incident_response
    from tests.migrated import migrated

    store = process_storage(migrated(Settings())).incidents
    with _with_api(api), get_client(sync_client=True) as client:
        incident_response.to_deployment(name="closed-test").apply()
        open_cluster, closed_cluster = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("open", "closed"))
        store.open_or_join(open_cluster, {"source": "pytest"}, "detector")
        runs: dict[str, Any] = {}
        for cluster in (open_cluster, closed_cluster):
            runs[cluster] = run_deployment(
                f"{INCIDENT_FLOW}/closed-test", parameters={"cluster_id": cluster}, timeout=0
            )
            client.set_flow_run_state(runs[cluster].id, Crashed(message="zombie"), force=True)
        done = resume_crashed_once(client, 2, None, lambda fr: incident_closed_meanwhile(client, fr))
        assert str(runs[open_cluster].id) in done["resumed"]
        assert str(runs[closed_cluster].id) in done["cancelled"]
        state = client.read_flow_run(runs[closed_cluster].id).state
        assert state is not None and state.type.value == "CANCELLED" and "no incident" in (state.message or "")
        for run in runs.values():
            client.delete_flow_run(run.id)
