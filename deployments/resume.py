"""Resumes crashed incident runs a capped number of times, then escalates; marks incident runs whose holder is
gone (their lease lapsed) as crashed so they are resumed (`orphans.py`); retries FAILED incident runs that
left their incident open (`failed_runs.py`); resumes suspended runs whose approval expired so they escalate
(runs inside `serve`), and those answered from Slack whose resume by the receiver failed.

A crashed run is put back to Scheduled in the same flow run id: completed steps come back from
persisted results, the lease comes back at once (same run key), and side-effecting steps are idempotent.
After `max_resumes` crashes the run is failed with a message and the incident timeline records it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Failed, Scheduled

from cassandra_recovery.logic.slack_approvals import unapplied_answer
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from deployments.failed_runs import retry_failed_once
from deployments.orphans import INCIDENT_FLOW, watch_incident_runs
from deployments.overdue import page_overdue_repairs_once
from deployments.run_queries import runs_in_state
from flows.replacement import EXPIRED

log = logging.getLogger(__name__)


def crash_count(client: Any, flow_run_id: Any) -> int:
    return sum(1 for s in client.read_flow_run_states(flow_run_id) if s.type.value == "CRASHED")


def resume_crashed_once(
    client: Any, max_resumes: int = 2, on_escalate: Any = None, not_wanted: Any = None
) -> dict[str, list[str]]:
    """One pass over crashed runs of deployed flows: resume or escalate each; returns what was done.
    `not_wanted(flow_run)`: why a crashed run must not run again (None: resume it); such a run is cancelled."""

    crashed = runs_in_state(client, "CRASHED")
    done: dict[str, list[str]] = {"resumed": [], "escalated": [], "cancelled": []}
    for fr in crashed:
        if fr.deployment_id is None:
            continue  # only deployed runs can be picked up again by a served process
        why_not = not_wanted(fr) if not_wanted else None
        if why_not:
            client.set_flow_run_state(fr.id, Cancelled(message=f"not resumed: {why_not}"), force=True)
            done["cancelled"].append(str(fr.id))
            log.warning("flow run %s crashed and is not resumed: %s", fr.id, why_not)
            continue
        crashes = crash_count(client, fr.id)
        if crashes <= max_resumes:
            client.set_flow_run_state(
                fr.id, Scheduled(message=f"resumed after crash {crashes}/{max_resumes}"), force=True
            )
            done["resumed"].append(str(fr.id))
            log.warning("flow run %s crashed (%d/%d): resumed", fr.id, crashes, max_resumes)
        else:
            client.set_flow_run_state(fr.id, Failed(message=f"escalated: crashed {crashes} times"), force=True)
            done["escalated"].append(str(fr.id))
            log.error("flow run %s crashed %d times: escalated", fr.id, crashes)
            if on_escalate:
                on_escalate(fr, crashes)
    return done


def incident_closed_meanwhile(client: Any, flow_run: Any) -> str | None:
    """A crashed incident run when no incident of its cluster is open any more (Prefect's zombie automation can
    crash a run long after its incident closed): resumed, it would open a new incident for an outage that is
    over. With an incident open the run is resumed: it joins it, and acts only if it gets the lease."""

    cluster_id = (flow_run.parameters or {}).get("cluster_id")
    if not cluster_id or client.read_flow(flow_run.flow_id).name != INCIDENT_FLOW:
        return None
    if process_storage().incidents.open_for(cluster_id) is None:
        return f"no incident of {cluster_id} is open any more"
    return None


def escalate_incident(flow_run: Any, crashes: int) -> None:
    """Record the escalation on the cluster's open incident (no lease needed to append an event)."""

    cluster_id = (flow_run.parameters or {}).get("cluster_id")
    if not cluster_id:
        return
    store = process_storage().incidents
    inc = store.open_for(cluster_id)
    if inc is not None:
        store.append_event(
            inc.id,
            "escalated",
            "crash-resumer",
            {
                "flow_run_id": str(flow_run.id),
                "crashes": crashes,
                "reason": "the incident run kept crashing; a human must take over",
            },
        )


def open_approval_request(cluster_id: str, flow_run_id: str) -> dict[str, Any] | None:
    """The undecided approval request this suspended run is waiting on (from the incident timeline)."""

    store = process_storage().incidents
    inc = store.open_for(cluster_id)
    events = store.events(inc.id) if inc else []
    asked = [e for e in events if e.kind == "approval_requested" and e.data.get("flow_run_id") == flow_run_id]
    if not asked or any(e.kind == "approval_decided" and e.seq > asked[-1].seq for e in events):
        return None
    return dict(asked[-1].data)


ANSWER_GRACE_S = 30.0  # the receiver resumes a run right after recording a Slack answer: leave it that long


def slack_answer(cluster_id: str, flow_run_id: str, now: datetime) -> dict[str, Any] | None:
    """A verified Slack answer this suspended run has not taken yet (the receiver could not resume it)."""

    store = process_storage().incidents
    inc = store.open_for(cluster_id)
    events = store.events(inc.id) if inc else []
    views = ({"seq": e.seq, "kind": e.kind, "data": e.data, "at": e.at} for e in events)
    return unapplied_answer(views, flow_run_id, now, ANSWER_GRACE_S)


def expire_approvals_once(client: Any, now: datetime | None = None) -> list[str]:
    """Resume suspended incident runs whose approval deadline passed with a refusal, so the run itself
    escalates the incident (it holds the lease; the resumer does not); and runs answered from Slack that the
    receiver could not resume (the run takes the answer from the timeline). Returns the resumed run ids."""

    now = now or datetime.now(UTC)
    paused = runs_in_state(client, "PAUSED")
    done: list[str] = []
    for fr in paused:
        cluster_id = (fr.parameters or {}).get("cluster_id")
        if fr.deployment_id is None or not cluster_id:
            continue
        req = open_approval_request(cluster_id, str(fr.id))
        if req is None:
            continue
        if (answer := slack_answer(cluster_id, str(fr.id), now)) is not None:
            given = {"approved": bool(answer.get("approved")), "approver": str(answer.get("approver")), "note": ""}
            client.resume_flow_run(fr.id, run_input=given)
            log.warning("flow run %s answered in Slack but not resumed: resumed now", fr.id)
            done.append(str(fr.id))
            continue
        if datetime.fromisoformat(req["deadline"]) > now:
            continue
        note = f"no decision before {req['deadline']}"
        client.resume_flow_run(fr.id, run_input={"approved": False, "approver": EXPIRED, "note": note})
        log.warning("approval for flow run %s expired: resumed to escalate", fr.id)
        done.append(str(fr.id))
    return done


def start_resumer(max_resumes: int = 2, interval_s: float = 5.0) -> threading.Event:
    """Background thread of `serve`; set the returned event to stop it."""

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                with get_client(sync_client=True) as client:
                    resume_crashed_once(
                        client, max_resumes, escalate_incident, lambda fr: incident_closed_meanwhile(client, fr)
                    )
                    settings = Settings()
                    incidents = process_storage(settings).incidents
                    watch_incident_runs(client, incidents, settings)
                    page_overdue_repairs_once(process_storage(settings), settings)
                    retry_failed_once(client, incidents, settings)
                    expire_approvals_once(client)
            except Exception as e:  # the server may be restarting: try again next round
                log.warning("crash resumer: %s", e)

    threading.Thread(target=loop, name="crash-resumer", daemon=True).start()
    return stop
