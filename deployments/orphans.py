"""Takes over incidents whose holder is gone (part of the resumer inside `serve`): a dead or frozen host leaves
its incident run RUNNING in Prefect forever (Prefect's own heartbeats are 30 s apart at best and its zombie
detection needs 60-90 s), while the incident's lease, renewed every heartbeat by a live holder, lapses a TTL later.

An incident run whose lease lapsed more than a grace ago (a second TTL: a holder riding out a PostgreSQL blip is
not taken over) is marked CRASHED; the crash resumer then puts the same flow run back to Scheduled and a served
process runs it again: same run key, so the lease comes back at once under a new fencing token, and a holder
that was only frozen is fenced when it wakes (its next beat or write is refused). The holders the runbook names
for other states are left alone: a suspended run waits for its approval (PAUSED, not RUNNING), a monitored
incident waits for its scheduled follow-up, an escalated one for a person.

An open incident that needs a run and has none at all (no run scheduled, pending, running, paused or crashed
for its cluster, and its lease free for longer than a grace) gets a new run of the incident deployment: the
"always exactly one run acting" promise, from the side of a run that vanished without a trace in Prefect."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.deployments import run_deployment
from prefect.states import Crashed

from cassandra_recovery.incident.store import Incident, IncidentStore
from cassandra_recovery.logic.incident_states import IncidentState
from deployments.names import INCIDENT_DEPLOYMENT
from deployments.run_queries import runs_in_state

log = logging.getLogger(__name__)

INCIDENT_FLOW = "incident-response"
# States in which a live incident run must hold the lease (the others have holders of their own, above).
RUN_HELD = frozenset(
    {IncidentState.DETECTED, IncidentState.ASSESSING, IncidentState.MITIGATING, IncidentState.RECOVERING,
     IncidentState.VERIFYING}
)  # fmt: skip


def holder_gone(
    inc: Incident, flow_run_id: str, now: datetime, grace_s: float, running_since: datetime | None = None
) -> bool:
    """Whether this flow run held the incident's lease and let it lapse more than `grace_s` ago. A run that
    started RUNNING again after the lapse (the crash resumer's restart, on its way to taking its lease back: on a
    busy host that can take longer than a watchdog pass) is given the same grace from its restart, so the
    watchdog never crashes the very restart it asked for."""
    if inc.state not in RUN_HELD or inc.lease_run_key != flow_run_id or inc.lease_expires_at is None:
        return False
    since = inc.lease_expires_at
    if running_since is not None and running_since > since:
        since = running_since
    return since < now - timedelta(seconds=grace_s)


def take_over_orphans_once(
    client: Any, store: IncidentStore, grace_s: float, flow_name: str = INCIDENT_FLOW, now: datetime | None = None
) -> list[str]:
    """One pass over RUNNING deployed incident runs: each whose holder is gone is marked CRASHED (the crash
    resumer runs it again) and the takeover goes on the incident's timeline. Returns the flow run ids."""

    now = now or datetime.now(UTC)
    running = runs_in_state(client, "RUNNING", flow_name)
    done: list[str] = []
    for fr in running:
        cluster_id = (fr.parameters or {}).get("cluster_id")
        if fr.deployment_id is None or not cluster_id:
            continue  # only a deployed run can be run again by a served process
        inc = store.open_for(cluster_id)
        since = fr.state.timestamp if fr.state is not None else None  # when this RUNNING began
        if inc is None or not holder_gone(inc, str(fr.id), now, grace_s, running_since=since):
            continue
        assert inc.lease_expires_at is not None  # noqa: S101 - holder_gone says so
        lapsed = (now - inc.lease_expires_at).total_seconds()
        why = f"the incident run's lease lapsed {lapsed:.0f}s ago (holder {inc.lease_holder} gone): taken over"
        store.append_event(inc.id, "holder_gone", "run-watchdog", {"flow_run_id": str(fr.id), "reason": why})
        client.set_flow_run_state(fr.id, Crashed(message=why), force=True)
        done.append(str(fr.id))
        log.error("incident %s: %s", inc.id, why)
    return done


# Prefect states in which an incident run exists and will act again by itself (or the crash resumer runs it).
ALIVE_STATES = ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CRASHED"]


def unheld_for(inc: Incident, now: datetime) -> float | None:
    """Seconds since the incident last had a holder or changed, when it needs a run and its lease is free; None
    when its state has a holder of its own (monitoring, escalated) or its lease is live."""
    if inc.state not in RUN_HELD or inc.fencing_token == 0:
        return None  # never held: whoever opened it starts its run (the detector keeps its trigger until it has)
    if inc.lease_expires_at is not None and inc.lease_expires_at > now:
        return None
    last = max(inc.updated_at, inc.lease_expires_at or inc.updated_at, inc.opened_at)
    return (now - last).total_seconds()


def start_runs_for_unheld_once(
    client: Any,
    store: IncidentStore,
    grace_s: float,
    deployment: str,
    flow_name: str = INCIDENT_FLOW,
    now: datetime | None = None,
) -> list[str]:
    """One pass over open incidents: each that needs a run, has had none for `grace_s` and has no run alive in
    Prefect gets one (idempotent per incident and fencing token). Returns the incident ids started for."""

    now = now or datetime.now(UTC)
    waiting = [(inc, idle) for inc in store.open_incidents() if (idle := unheld_for(inc, now)) is not None]
    waiting = [(inc, idle) for inc, idle in waiting if idle > grace_s]
    if not waiting:
        return []
    alive = {(fr.parameters or {}).get("cluster_id") for fr in runs_in_state(client, ALIVE_STATES, flow_name)}
    started: list[str] = []
    for inc, idle in waiting:
        if inc.cluster_id in alive:
            continue
        why = f"open in {inc.state} with no run acting for {idle:.0f}s (lease free): a new run started"
        trigger = {"source": "watchdog", "incident_id": inc.id, "reason": why}
        run: Any = run_deployment(
            deployment,
            parameters={"cluster_id": inc.cluster_id, "trigger": trigger},
            timeout=0,
            idempotency_key=f"watchdog:{inc.id}:{inc.fencing_token}:{inc.version}",
        )
        store.append_event(inc.id, "holder_gone", "run-watchdog", {"flow_run_id": str(run.id), "reason": why})
        log.error("incident %s: %s (flow run %s)", inc.id, why, run.id)
        started.append(inc.id)
    return started


def watch_incident_runs(client: Any, store: IncidentStore, settings: Any) -> dict[str, list[str]]:
    """The watchdog's pass: runs whose holder is gone crashed (to be resumed), incidents left with no run at all
    given one. Run by the resumer in every `serve` and by the `run-watchdog` deployment."""

    crashed = take_over_orphans_once(client, store, grace_s=settings.runbook.lease_ttl_s)
    started = start_runs_for_unheld_once(client, store, settings.runbook.watchdog_grace_s, INCIDENT_DEPLOYMENT)
    return {"crashed": crashed, "started_for": started}
