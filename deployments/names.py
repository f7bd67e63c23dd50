"""Every deployment's name, in one place. Prefect addresses a deployment as `<flow name>/<deployment name>`; each
of ours is named after its flow. This module imports nothing, so flows and tasks that start a deployment can use
it without importing the rest of the Prefect layer."""

from __future__ import annotations

INCIDENT_RESPONSE = "incident-response"
DETECT = "detect"
ASSESS = "assess"
DRAIN_WRITE_QUEUE = "drain-write-queue"
REPAIR = "repair"
VERIFY = "verify"
FOLLOW_UP_VERIFICATION = "follow-up-verification"
SCHEDULED_REPAIR = "scheduled-repair"
RUN_WATCHDOG = "run-watchdog"
# What a person does to an incident from the UI (flows/operator.py).
INCIDENT_ACK = "incident-ack"
INCIDENT_ESCALATE = "incident-escalate"
INCIDENT_HAND_BACK = "incident-hand-back"
INCIDENT_RESOLVE = "incident-resolve"

SERVED = (INCIDENT_RESPONSE, DETECT, ASSESS, DRAIN_WRITE_QUEUE, REPAIR, VERIFY, FOLLOW_UP_VERIFICATION,
          SCHEDULED_REPAIR, RUN_WATCHDOG, INCIDENT_ACK, INCIDENT_ESCALATE, INCIDENT_HAND_BACK,
          INCIDENT_RESOLVE)  # fmt: skip
TAGS = ["cassandra-recovery"]


def address(name: str) -> str:
    """What run_deployment and read_deployment_by_name take: `<flow name>/<deployment name>`."""
    return f"{name}/{name}"


INCIDENT_DEPLOYMENT = address(INCIDENT_RESPONSE)
FOLLOW_UP_DEPLOYMENT = address(FOLLOW_UP_VERIFICATION)
