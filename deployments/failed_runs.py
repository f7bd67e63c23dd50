"""Retries FAILED incident runs that left their incident open with nobody acting, a bounded number of times, then
escalates the incident (part of the resumer inside `serve`).

Prefect never retries a FAILED run by itself, and re-sent alerts of the same episode are de-duplicated onto it, so
without this an incident stays open with nothing acting. The retry puts the same flow run back to Scheduled (same
run key: the lease comes back at once; completed steps come back from persisted results). The decision is the
runbook's (`logic.runbook.decide`, the run seen from outside as FAILED): retry while failures <= the bound
(`runbook.max_run_retries`), then escalate with a page. Each retry's reason goes on the incident timeline.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prefect.states import Failed, Scheduled

from cassandra_recovery.clients.slack import IncidentThread, SlackNotifier
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.incident.store import Incident, IncidentStore
from cassandra_recovery.logic.incident_states import IncidentState
from cassandra_recovery.logic.runbook import decide
from cassandra_recovery.logic.runbook_model import Controls, IncidentFacts, Observation, RunFacts, RunStatus, Step
from cassandra_recovery.settings import Settings
from deployments.run_queries import runs_in_state

log = logging.getLogger(__name__)

ACTOR = "run-resumer"
INCIDENT_FLOW = "incident-response"
HANDLED = "escalated:"  # a FAILED state message starting so was escalated already (here or by the crash resumer)


def failures_of(client: Any, flow_run_id: Any) -> int:
    return sum(1 for s in client.read_flow_run_states(flow_run_id) if s.type.value == "FAILED")


def _lease_live(inc: Incident, now: datetime) -> bool:
    return inc.lease_holder is not None and inc.lease_expires_at is not None and inc.lease_expires_at > now


def _ran_for(store: IncidentStore, incident_id: str, flow_run_id: str) -> bool:
    """Whether this run opened or joined the incident (a failed run of an earlier incident is not its business)."""
    return any(e.actor == f"flow-run/{flow_run_id}" for e in store.events(incident_id))


def escalate_orphaned(store: IncidentStore, inc: Incident, reason: str, settings: Settings) -> bool:
    """Move the incident to escalated with the reason and page as the flow's escalations do (Slack thread marked
    escalated and a reply; the timeline when Slack is not configured). False when a run took the lease meanwhile."""
    lease = store.acquire_lease(inc.id, ACTOR, ttl_s=120)
    if lease is None:
        return False
    try:
        store.transition(inc.id, inc.state, IncidentState.ESCALATED, lease, {"reason": reason, "by": ACTOR})
        try:
            channel = settings.cluster(inc.cluster_id).slack_channel
        except RecoveryError:
            channel = None  # a cluster no longer in the settings: the timeline still records the escalation
        slack = SlackNotifier(settings.slack_token, channel, base_url=settings.slack_base_url)
        known = IncidentThread(inc.slack_channel, inc.slack_ts) if inc.slack_channel and inc.slack_ts else None
        fields = {"cluster": inc.cluster_id, "reason": reason[:1900]}
        thread = slack.open_thread(inc.id, f"Cassandra incident on {inc.cluster_id}", fields, thread=known,
                                   status="escalated")  # fmt: skip
        sent = slack.reply(thread, f"Escalated: {reason}") if thread is not None else None
        if sent is None or not sent.ok:
            why = "logged-only (no Slack token or channel)" if not slack.configured else "Slack unavailable"
            store.append_event(
                inc.id, "slack_not_posted", ACTOR, {"reason": why, "text": f"Escalated: {reason}"}, lease
            )
    finally:
        store.release_lease(lease)
    return True


def retry_failed_once(
    client: Any,
    store: IncidentStore,
    settings: Settings,
    flow_name: str = INCIDENT_FLOW,
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """One pass over FAILED deployed runs of the incident flow whose incident is open, not escalated and not held:
    retry or escalate each (the newest such run per incident). Returns the run ids per outcome."""

    now = now or datetime.now(UTC)
    failed = runs_in_state(client, "FAILED", flow_name, newest_first=True)
    done: dict[str, list[str]] = {"retried": [], "escalated": []}
    seen: set[str] = set()
    limit = settings.runbook.max_run_retries
    for fr in failed:
        message = (fr.state.message if fr.state else None) or ""
        cluster_id = (fr.parameters or {}).get("cluster_id")
        if fr.deployment_id is None or message.startswith(HANDLED) or not cluster_id:
            continue
        inc = store.open_for(cluster_id)
        if inc is None or inc.id in seen or inc.state is IncidentState.ESCALATED or _lease_live(inc, now):
            continue
        if not _ran_for(store, inc.id, str(fr.id)):
            continue
        seen.add(inc.id)
        failures = failures_of(client, fr.id)
        facts = IncidentFacts(inc.state, RunFacts(RunStatus.FAILED, failures, message or None))
        decision = decide(facts, Observation(now), Controls(max_run_retries=limit))
        data = {"flow_run_id": str(fr.id), "failures": failures, "limit": limit, "reason": decision.reason}
        if decision.step is Step.RETRY:
            store.append_event(inc.id, "run_retried", ACTOR, data)
            client.set_flow_run_state(fr.id, Scheduled(message=f"retried after failure {failures}/{limit}"), force=True)
            done["retried"].append(str(fr.id))
            log.warning("incident run %s failed (%d/%d): retried", fr.id, failures, limit)
        elif decision.step is Step.ESCALATE and escalate_orphaned(store, inc, decision.reason, settings):
            client.set_flow_run_state(fr.id, Failed(message=f"{HANDLED} failed {failures} times"), force=True)
            done["escalated"].append(str(fr.id))
            log.error("incident run %s failed %d times: incident %s escalated", fr.id, failures, inc.id)
    return done
