"""The parent incident flow: open or join the cluster's incident, hold its lease, detect, assess, report."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.assess import assess
from flows.detect import detect
from tasks.incident import open_or_join, release_lease, slack_thread, store_plan, take_lease, transition


@flow(name="incident-response", persist_result=True)
def incident_response(
    cluster_id: str = "lab", trigger: dict[str, Any] | None = None, dry_run: bool = False
) -> dict[str, Any]:
    log = get_run_logger()
    if dry_run:  # plan and report without acting: no incident, no lease, no Slack
        plan = assess(cluster_id)
        return {"cluster": cluster_id, "dry_run": True, "plan": plan}
    run_id = str(flow_run.id or "local")
    actor = f"flow-run/{run_id}"
    incident = open_or_join(cluster_id, trigger or {"source": "manual"}, actor)
    lease = take_lease(incident["id"], actor, run_key=run_id)
    if lease is None:
        log.info("incident %s is handled by another run; this trigger joined it", incident["id"])
        return {"cluster": cluster_id, "incident_id": incident["id"], "acting": False}
    try:
        if incident["state"] == "detected":
            transition(incident["id"], "detected", "assessing", lease, {"by": actor})
        detected = detect(cluster_id)
        plan = assess(cluster_id, detected=detected, outage_started=incident["opened_at"])
        store_plan(incident["id"], plan, lease)
        fields = {
            "cluster": cluster_id,
            "plan": plan["action"],
            "down": ", ".join(detected["down"]) or "none",
            "reasons": "; ".join(plan.get("reasons", []))[:1900] or "-",
        }
        slack = slack_thread(cluster_id, incident["id"], f"Cassandra incident on {cluster_id}", fields, lease)
        state = "assessing"
        if plan["action"] == "no_action" and not detected["down"]:
            transition(incident["id"], "assessing", "resolved", lease, {"reason": "no node down"})
            state = "resolved"
        return {
            "cluster": cluster_id,
            "incident_id": incident["id"],
            "acting": True,
            "state": state,
            "created": incident["created"],
            "plan": plan,
            "slack": slack,
            "fencing_token": lease.token,
        }
    finally:
        release_lease(lease)
