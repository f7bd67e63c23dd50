"""A proposed plan behind a person's approval (automation level `propose`): the replacement's suspend-and-form,
inside the top-level incident run. The request is on the timeline before the run suspends; the resumed run finds
it there, decides on the plan that was shown (not a new assessment), and records the decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from cassandra_recovery.incident.store import Lease
from cassandra_recovery.logic.approvals import PLAN, open_request
from cassandra_recovery.logic.slack_approvals import Settled
from flows.approval_answer import EXPIRED, ReplacementApproval, how_to_answer, request_approval, wait_for_answer
from tasks.incident import incident_events
from tasks.recovery import record_event, renew_lease


def pending_request(incident_id: str, action: str) -> dict[str, object] | None:
    """The undecided approval request of this kind on the incident's timeline, if any."""
    return open_request(incident_events(incident_id), action)


def ask_plan_approval(
    cluster_id: str,
    incident_id: str,
    plan: Mapping[str, Any],
    down: list[str],
    steps: list[str],
    reverify: bool,
    timeout_s: float,
    lease: Lease,
) -> Settled:
    """Record the proposal and the request (deadline included) once, then suspend until a person (or the
    expiry) answers; the answer is recorded as `approval_decided`."""
    if pending_request(incident_id, PLAN) is None:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        record_event(incident_id, "proposed", {"level": "propose", "steps": steps}, lease)
        data = {
            "action": PLAN,
            "nodes": list(plan.get("targets") or []),
            "reason": f"{plan['action']}: " + "; ".join(steps),
            "down": down,
            "reverify": reverify,
            "deadline": deadline.isoformat(),
            "flow_run_id": str(flow_run.id),
        }
        text = f"Approval needed (automation level propose): {'; '.join(steps)}. {how_to_answer(deadline)}"
        request_approval(cluster_id, incident_id, data, text, lease)
    asked = sum(1 for e in incident_events(incident_id) if e["kind"] == "approval_requested")
    renew_lease(lease, ttl_s=timeout_s + 900)  # the lease outlives the wait: no rival run takes the incident
    get_run_logger().info("waiting for approval of the plan %s (up to %.0fs)", plan["action"], timeout_s)
    # One key per request: a later proposal on the same incident must not be answered by an earlier decision.
    approval = wait_for_answer(cluster_id, incident_id, f"plan-{incident_id}-{asked}", lease)
    record_event(incident_id, "approval_decided", approval.decision(), lease)
    return approval


def refusal(approval: Settled | ReplacementApproval, steps: list[str]) -> str:
    """The escalation reason for a proposal that was not approved."""
    who = "expired (nobody decided)" if approval.approver == EXPIRED else f"rejected by {approval.approver}"
    return f"proposed plan {who}: " + "; ".join(steps)
