"""The parent incident flow: open or join the cluster's incident, hold its lease, and run the runbook's loop
(`flows/incident_loop.py`) until nothing is left for this run. A resumed run continues from the timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.exceptions import Abort, Pause
from prefect.runtime import flow_run

from cassandra_recovery.contracts import IncidentResult, Trigger
from cassandra_recovery.incident.lease_keeper import LeaseKeeper
from cassandra_recovery.incident.store import IncidentNotFound, Lease, LeaseLost
from cassandra_recovery.logic.incident_states import IncidentState as S
from cassandra_recovery.logic.reported import episode_start
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from deployments import names
from flows.assess import assess
from flows.clusters import cluster_named
from flows.incident_loop import IncidentRun, run_runbook
from tasks.incident import get_incident, open_or_join, release_lease, take_lease, transition


def _closed(incident_id: str) -> bool:
    """Whether the incident a trigger names is resolved or escalated (an unknown one is not)."""

    try:
        return get_incident(incident_id)["state"] in (S.RESOLVED, S.ESCALATED)
    except IncidentNotFound:
        return False


@flow(name=names.INCIDENT_RESPONSE, persist_result=True, result_serializer="json")
def incident_response(
    cluster_id: str | None = None,
    trigger: Trigger | None = None,
    dry_run: bool = False,
    heal_timeout_s: float = 900.0,
    approval_timeout_s: float = 3600.0,
    follow_up_s: float | None = None,
) -> IncidentResult:
    """heal_timeout_s: how long recovery waits for a down node to come back before a dead one is proposed for
    replacement; approval_timeout_s: how long that replacement waits for a human before escalating;
    follow_up_s: when the follow-up verification runs (settings' verification.follow_up_s by default; 0 closes
    the incident right after the first passing verification)."""
    cluster_id = cluster_named(cluster_id)

    log = get_run_logger()
    if dry_run:  # plan and report without acting: no incident, no lease, no Slack
        plan = assess(cluster_id)
        return {"cluster": cluster_id, "dry_run": True, "plan": plan}
    run_id = str(flow_run.id or "local")
    actor = f"flow-run/{run_id}"
    named = str(trigger.get("incident_id") or "") if trigger else ""
    if named and _closed(named):
        # The receiver opened or joined `named` for this alert and it was closed before this run started: the
        # outage it reported was handled. A new failure is a new alert episode, which opens its own incident.
        log.info("incident %s named by the trigger is already closed; nothing to do", named)
        return {"cluster": cluster_id, "incident_id": named, "acting": False, "skipped": "incident already closed"}
    incident = open_or_join(cluster_id, trigger or {"source": "manual"}, actor)
    bounds = Settings().runbook
    lease = take_lease(incident["id"], actor, run_key=run_id, ttl_s=bounds.lease_ttl_s)
    if lease is None:
        log.info("incident %s is handled by another run; this trigger joined it", incident["id"])
        return {"cluster": cluster_id, "incident_id": incident["id"], "acting": False}
    waiting = False
    keeper = LeaseKeeper(lease, _renew, bounds.lease_heartbeat_s, bounds.lease_ttl_s)
    try:
        keeper.start()
        current = get_incident(incident["id"])
        if current["state"] == S.DETECTED:  # this run takes charge: it assesses the incident
            transition(incident["id"], S.DETECTED, S.ASSESSING, lease, {"by": actor})
        # A re-opened monitored incident measures its new outage from the trigger's start, not from when it opened.
        monitored = current["state"] == S.MONITORING
        run = IncidentRun(
            cluster_id=cluster_id,
            incident_id=incident["id"],
            lease=lease,
            trigger=trigger or {"source": "manual"},
            outage_started=episode_start(trigger, default=_utcnow()) if monitored else incident["opened_at"],
            heal_timeout_s=heal_timeout_s,
            approval_timeout_s=approval_timeout_s,
            follow_up_s=Settings().verification.follow_up_s if follow_up_s is None else follow_up_s,
            addresses={n.name: n.address for n in Settings().cluster(cluster_id).nodes},
            keeper=keeper,
        )
        state = run_runbook(run)
        return {
            "cluster": cluster_id,
            "incident_id": incident["id"],
            "acting": True,
            "state": str(state),
            "created": incident["created"],
            "plan": run.plan,
            "plans": run.plans,
            "slack": run.slack,
            "recovery": run.recovery,
            "fencing_token": lease.token,
        }
    except Pause:
        waiting = True  # suspended for an approval: the lease stays ours until the run resumes
        raise
    except LeaseLost as e:  # StaleFencingToken too: another attempt of this incident holds it now
        # Superseded (this process was frozen or partitioned and a retry took over): stop without touching
        # the incident or the flow run's state; Abort makes Prefect's engine exit quietly (code 0).
        waiting = True
        log.warning("superseded by a newer attempt, stopping without acting: %s", e)
        raise Abort(f"superseded: {e}") from e
    finally:
        keeper.stop()
        if not waiting:
            release_lease(keeper.lease)


def _renew(lease: Lease, ttl_s: float) -> Lease:
    """The heartbeat's renewal: straight to the store from its thread (no Prefect task run per beat)."""

    return process_storage().incidents.renew_lease(lease, ttl_s)


def _utcnow() -> str:
    return datetime.now(UTC).isoformat()
