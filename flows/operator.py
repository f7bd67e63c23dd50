"""What a person does to an incident from the Prefect UI (a form per action): acknowledge, escalate, hand back,
resolve. The same actions as the CLI's `incident` verbs (incident_actions.py). Open-source Prefect has no user
identity, so the name typed in the form is required and recorded as unverified (Prefect UI)."""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from pydantic import Field

from deployments import names
from tasks.operator import ack_incident, escalate_incident, hand_back_incident, resolve_incident

Name = Annotated[str, Field(min_length=1, max_length=100, description="who you are (recorded, unverified)")]
Why = Annotated[str, Field(min_length=1, max_length=500)]


def ui_actor(your_name: str) -> str:
    """The timeline's actor for a UI action: the typed name, marked unverified."""
    return f"{your_name.strip()} (unverified: Prefect UI)"


@flow(name=names.INCIDENT_ACK, result_serializer="json")
def incident_ack(incident_id: str, your_name: Name, note: str = "") -> dict[str, str]:
    """A person owns the incident (pages stop); the automation goes on."""
    actor = ui_actor(your_name)
    return {"incident_id": incident_id, "by": actor, "at": ack_incident(incident_id, actor, note)}


@flow(name=names.INCIDENT_ESCALATE, result_serializer="json")
def incident_escalate(incident_id: str, your_name: Name, reason: Why) -> dict[str, str]:
    """Stop the automation acting on the incident now (its run is fenced out); people take it."""
    actor = ui_actor(your_name)
    return {"incident_id": incident_id, "by": actor, "state": escalate_incident(incident_id, actor, reason)}


@flow(name=names.INCIDENT_HAND_BACK, result_serializer="json")
def incident_hand_back(incident_id: str, your_name: Name, note: Why) -> dict[str, str]:
    """An escalated incident back to the automation: assessed again by a new incident run."""
    actor = ui_actor(your_name)
    cluster_id, state, token = hand_back_incident(incident_id, actor, note)
    trigger = {"source": "operator", "incident_id": incident_id, "reason": note.strip(), "by": actor}
    run = run_deployment(
        names.INCIDENT_DEPLOYMENT,
        parameters={"cluster_id": cluster_id, "trigger": trigger},
        timeout=0,
        as_subflow=False,
        idempotency_key=f"hand-back:{incident_id}:{token}",
    )
    get_run_logger().info("incident %s handed back by %s: run %s", incident_id, actor, run.id)  # type: ignore[union-attr]
    return {"incident_id": incident_id, "by": actor, "state": state, "flow_run_id": str(run.id)}  # type: ignore[union-attr]


@flow(name=names.INCIDENT_RESOLVE, result_serializer="json")
def incident_resolve(incident_id: str, your_name: Name, note: Why, unverified: bool = False) -> dict[str, str]:
    """Close the incident and give back the policy and repair pause it applied (refused without a converged last
    verification unless `unverified`)."""
    actor = ui_actor(your_name)
    return {"incident_id": incident_id, "by": actor, "state": resolve_incident(incident_id, actor, note, unverified)}
